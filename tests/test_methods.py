"""The further explanation methods, each tested against the property that defines it."""

import numpy as np
import pytest

from cnn import attribution as A
from cnn.gradcam import bilinear_matrix, grad_cam

from .conftest import train_default


@pytest.fixture(scope="module")
def trained(mnist):
    return train_default(mnist, 512, lr=1e-3)


@pytest.mark.parametrize("baseline", ["black", "blurred"])
def test_integrated_gradients_add_up_to_the_score_difference(trained, mnist, baseline):
    x = mnist.x_test[:6]
    c = trained.predict(x)
    base = np.zeros_like(x) if baseline == "black" else A.blur(x, 4.0)
    attr = A.integrated_gradients(trained.astype(np.float64), x.astype(np.float64), c, base.astype(np.float64),
                                  steps=256)
    expected = A.class_scores(trained.astype(np.float64), x.astype(np.float64), c) - \
        A.class_scores(trained.astype(np.float64), base.astype(np.float64), c)
    gap = np.abs(attr.reshape(len(x), -1).sum(axis=1) - expected)
    assert (gap <= 0.02 * np.abs(expected) + 1e-3).all(), (gap, expected)
    coarse = A.integrated_gradients(trained.astype(np.float64), x.astype(np.float64), c, base.astype(np.float64),
                                    steps=4)
    coarse_gap = np.abs(coarse.reshape(len(x), -1).sum(axis=1) - expected)
    assert coarse_gap.mean() > gap.mean()  # the midpoint rule converges: more steps, a smaller gap


def test_the_blurred_baseline_keeps_the_mean_and_loses_the_detail(mnist):
    x = mnist.x_test[:3]
    b = A.blur(x, 4.0)
    assert b.shape == x.shape and b.dtype == x.dtype
    assert np.abs(b.mean() - x.mean()) < 0.01
    assert np.abs(np.diff(b, axis=3)).mean() < 0.3 * np.abs(np.diff(x, axis=3)).mean()


def test_smoothgrad_with_no_noise_is_saliency(trained, mnist, rng):
    x = mnist.x_test[:5]
    c = trained.predict(x)
    np.testing.assert_array_equal(A.smoothgrad(trained, x, c, rng, samples=3, noise=0.0), A.saliency(trained, x, c))
    noisy = A.smoothgrad(trained, x, c, rng, samples=3, noise=0.2)
    assert not np.allclose(noisy, A.saliency(trained, x, c))


def _grad_cam_pp_loop(model, image, c, layer):
    """Grad-CAM++ for one image, position by position, as the paper writes it."""
    g = grad_cam(model, image[None], [c], layer)
    a, grad = g.activations[0].astype(np.float64), g.gradients[0].astype(np.float64)
    k, h, w = a.shape
    weights = np.zeros(k)
    for m in range(k):
        total_a = sum(a[m, i, j] for i in range(h) for j in range(w))
        for i in range(h):
            for j in range(w):
                gij = grad[m, i, j]
                if gij == 0:
                    continue
                denominator = 2 * gij ** 2 + total_a * gij ** 3
                alpha = gij ** 2 / denominator if denominator != 0 else 0.0
                weights[m] += alpha * max(gij, 0.0)
    cam = np.zeros((h, w))
    for m in range(k):
        cam += weights[m] * a[m]
    cam = np.maximum(cam, 0)
    rows, cols = bilinear_matrix(image.shape[1], h), bilinear_matrix(image.shape[2], w)
    up = rows @ cam @ cols.T
    return up / up.max() if up.max() > 0 else up


def _score_cam_loop(model, image, c, layer):
    """Score-CAM for one image, map by map."""
    g = grad_cam(model, image[None], [c], layer)
    a = g.activations[0].astype(np.float64)
    k, h, w = a.shape
    rows, cols = bilinear_matrix(image.shape[1], h), bilinear_matrix(image.shape[2], w)
    scores = []
    for m in range(k):
        up = rows @ a[m] @ cols.T
        mask = (up - up.min()) / (up.max() - up.min()) if up.max() > up.min() else np.zeros_like(up)
        p = model.predict_proba((image * mask.astype(image.dtype))[None], workers=1)[0, c]
        scores.append(p)
    e = np.exp(np.array(scores) - max(scores))
    weights = e / e.sum()
    cam = np.maximum(sum(weights[m] * a[m] for m in range(k)), 0)
    up = rows @ cam @ cols.T
    return up / up.max() if up.max() > 0 else up


@pytest.mark.parametrize("fn", [A.saliency, A.guided_backprop])
def test_several_classes_of_each_image_from_one_forward_pass_equal_one_class_at_a_time(trained, mnist, fn):
    x = mnist.x_test[:6]
    classes = np.array([[c, (c + 3) % 10, 9 - c] for c in range(6)])  # (N, K): three classes of each image
    together = fn(trained, x, classes)
    assert together.shape == (6, 3, 28, 28)
    for j in range(3):
        np.testing.assert_array_equal(together[:, j], fn(trained, x, classes[:, j]))


@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_grad_cam_plus_plus_and_score_cam_equal_direct_loops(trained, mnist, layer):
    x = mnist.x_test[10:14]
    c = trained.predict(x)
    pp = A.grad_cam_plus_plus(trained, x, c, layer)
    sc = A.score_cam(trained, x, c, layer, workers=1)
    for i in range(len(x)):
        np.testing.assert_allclose(pp[i], _grad_cam_pp_loop(trained, x[i], c[i], layer), atol=1e-6)
        np.testing.assert_allclose(sc[i], _score_cam_loop(trained, x[i], c[i], layer), atol=1e-5)
    assert pp.shape == sc.shape == (len(x), 28, 28)
    assert pp.max() == pytest.approx(1.0) and sc.max() == pytest.approx(1.0)


def test_a_bootstrap_interval_holds_the_mean_and_narrows_with_more_images(rng):
    few, many = rng.normal(0.5, 0.1, 50), rng.normal(0.5, 0.1, 5000)
    lo, hi = A.bootstrap_interval(few, rng)
    assert lo < few.mean() < hi
    lo2, hi2 = A.bootstrap_interval(many, rng)
    assert lo2 < many.mean() < hi2 and (hi2 - lo2) < (hi - lo) / 5  # ~ 1 / sqrt(n)
    assert (hi - lo) == pytest.approx(2 * 1.96 * few.std() / np.sqrt(50), rel=0.3)


def test_the_auc_of_the_mean_curve_is_the_mean_of_the_per_image_aucs(rng):
    fractions = np.linspace(0, 1, 11)
    curves = A.Curves(fractions, rng.random((7, 11)), rng.random((7, 11)))
    assert curves.per_image_auc("deletion").mean() == pytest.approx(curves.deletion_auc)
    assert curves.per_image_auc("insertion").mean() == pytest.approx(curves.insertion_auc)


def _dense_imputation(image, removed):
    """The same linear system, written out and solved directly: v_p = sum_q w_pq v_q for removed p."""
    h, w = image.shape
    idx = {p: k for k, p in enumerate(zip(*np.nonzero(removed)))}
    m = np.eye(len(idx))
    b = np.zeros(len(idx))
    for (i, j), k in idx.items():
        near = [((i + dy, j + dx), wt) for (dy, dx), wt in A.NEIGHBOURS if 0 <= i + dy < h and 0 <= j + dx < w]
        total = sum(wt for _, wt in near)
        for q, wt in near:
            if q in idx:
                m[k, idx[q]] -= wt / total
            else:
                b[k] += wt / total * image[q]
    v = image.astype(np.float64).copy()
    for (i, j), value in zip(idx, np.linalg.solve(m, b)):
        v[i, j] = value
    return v


def test_noisy_linear_imputation_solves_the_neighbour_system_and_keeps_the_rest(mnist, rng):
    x = mnist.x_test[:3, :, 6:18, 6:18]  # 12 x 12 crops, small enough for a direct solve
    removed = rng.random((3, 12, 12)) < 0.6
    removed[1, 3:10, 2:11] = True  # a large hole
    filled = A.noisy_linear_imputation(x, removed, rng, noise=0.0, tol=1e-9)
    np.testing.assert_array_equal(filled[~np.broadcast_to(removed[:, None], x.shape)],
                                  x[~np.broadcast_to(removed[:, None], x.shape)])
    for i in range(3):
        np.testing.assert_allclose(filled[i, 0], _dense_imputation(x[i, 0], removed[i]), atol=1e-5)
    noisy = A.noisy_linear_imputation(x, removed, rng, noise=0.01, tol=1e-9)
    assert 0.005 < np.std((noisy - filled)[np.broadcast_to(removed[:, None], x.shape)]) < 0.015


def test_road_removes_the_ranked_pixels_most_or_least_relevant_first(trained, mnist, rng):
    x = mnist.x_test[:8]
    c = trained.predict(x)
    maps = A.grad_cam(trained, x, c).upsampled
    score = A.class_probability(trained, c, workers=1)
    fractions, morf = A.road(score, x, maps, rng, fractions=[0.0, 0.3, 0.6])
    _, lerf = A.road(score, x, maps, rng, fractions=[0.0, 0.3, 0.6], most_relevant_first=False)
    np.testing.assert_allclose(morf[:, 0], trained.predict_proba(x, workers=1)[np.arange(8), c], atol=1e-5)
    assert morf.shape == lerf.shape == (8, 3)
    assert morf[:, 2].mean() < lerf[:, 2].mean()  # removing what Grad-CAM ranks first hurts more
