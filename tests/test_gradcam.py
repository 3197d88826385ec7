"""Grad-CAM and the other attributions: their maths, their invariants, and the faithfulness metrics."""

import numpy as np
import pytest

from cnn import attribution as A
from cnn.gradcam import bilinear_matrix, block_outputs, grad_cam, grad_cam_all_classes, upsample
from cnn.layers import AvgPool2D, BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU
from cnn.model import Sequential, default_cnn

from .conftest import train_default


@pytest.fixture(scope="module")
def trained(mnist):
    """The default network after one short epoch: trained enough for meaningful maps."""
    return train_default(mnist, 3000, lr=2e-3)


def test_the_block_output_of_each_conv_layer_is_after_its_relu_and_before_pooling(rng):
    model = default_cnn(rng)
    blocks = block_outputs(model)
    assert list(blocks) == ["conv1", "conv2", "conv3"]
    assert [model.layers[i - 1].name for i in blocks.values()] == ["relu1", "relu2", "relu3"]


def test_alpha_is_the_spatial_mean_of_the_gradient(trained, mnist):
    g = grad_cam(trained, mnist.x_test[:6], np.arange(6))
    np.testing.assert_allclose(g.weights, g.gradients.mean(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_allclose(g.weighted_sum, np.einsum("nk,nkhw->nhw", g.weights, g.activations), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(g.cam, np.maximum(g.weighted_sum, 0))


def test_the_class_score_gradient_at_the_layer_matches_central_differences(trained, mnist, rng):
    model = trained.astype(np.float64)
    x = mnist.x_test[:2].astype(np.float64)
    classes = np.array([3, 7])
    g = grad_cam(model, x, classes)
    start = block_outputs(model)[g.layer]  # the layers after the block output map A to the scores
    head = model.layers[start:]

    def score(acts, n, c):
        a = acts[n : n + 1]
        for layer in head:
            a = layer.forward(a)
        return a[0, c]

    eps, acts = 1e-6, g.activations.copy()
    for n in range(2):
        for _ in range(25):
            k, i, j = (int(rng.integers(s)) for s in acts.shape[1:])
            old = acts[n, k, i, j]
            acts[n, k, i, j] = old + eps
            plus = score(acts, n, classes[n])
            acts[n, k, i, j] = old - eps
            minus = score(acts, n, classes[n])
            acts[n, k, i, j] = old
            assert g.gradients[n, k, i, j] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


def test_with_global_average_pooling_and_one_dense_layer_grad_cam_is_cam(rng, mnist):
    """The identity of the Grad-CAM paper: alpha_k^c = w_k^c / Z, so the map is CAM / Z."""
    model = Sequential([Conv2D(1, 6, 3, padding=1, rng=rng), BatchNorm2D(6), ReLU(), MaxPool2D(2),
                        Conv2D(6, 8, 3, padding=1, rng=rng), ReLU(),
                        AvgPool2D(14), Flatten(), Dense(8, 10, rng=rng)])
    model.forward(mnist.x_train[:64], training=True)  # batch-norm statistics that are not the defaults
    x = mnist.x_test[:5].astype(np.float64)
    model = model.astype(np.float64)
    classes = np.array([0, 1, 2, 3, 4])
    g = grad_cam(model, x, classes)
    w = model.layer("dense1").params["weight"]  # (K, C)
    z = 14 * 14
    cam = np.maximum(np.einsum("kn,nkhw->nhw", w[:, classes], g.activations), 0)
    np.testing.assert_allclose(g.weights, w[:, classes].T / z, rtol=1e-10)
    np.testing.assert_allclose(g.cam, cam / z, rtol=1e-9, atol=1e-15)


def test_maps_are_deterministic_shaped_and_non_negative(trained, mnist):
    x = mnist.x_test[:4]
    a, b = grad_cam(trained, x, [1, 2, 3, 4]), grad_cam(trained, x, [1, 2, 3, 4])
    np.testing.assert_array_equal(a.upsampled, b.upsampled)
    assert a.activations.shape == a.gradients.shape == (4, 32, 7, 7)
    assert a.weights.shape == (4, 32) and a.cam.shape == (4, 7, 7)
    assert a.upsampled.shape == a.normalized.shape == (4, 28, 28)
    assert (a.cam >= 0).all() and (a.upsampled >= 0).all()
    assert a.normalized.max() <= 1 + 1e-6
    np.testing.assert_allclose(a.probabilities.sum(axis=1), 1, rtol=1e-5)


def test_ten_class_maps_from_one_batched_pass_equal_ten_single_passes(trained, mnist):
    image = mnist.x_test[7]
    batched = grad_cam_all_classes(trained, image)
    for c in range(10):
        single = grad_cam(trained, image[None], [c])
        np.testing.assert_allclose(batched.weights[c], single.weights[0], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(batched.upsampled[c], single.upsampled[0], rtol=1e-5, atol=1e-7)


def test_grad_cam_on_each_conv_layer_has_that_layers_resolution(trained, mnist):
    x = mnist.x_test[:2]
    assert grad_cam(trained, x, [0, 1], "conv1").cam.shape == (2, 28, 28)
    assert grad_cam(trained, x, [0, 1], "conv2").cam.shape == (2, 14, 14)
    with pytest.raises(ValueError, match="conv layer"):
        grad_cam(trained, x, [0, 1], "dense1")


def test_bilinear_upsampling_matches_a_direct_computation(rng):
    m = rng.random((2, 7, 7))
    up = upsample(m, 28, 28)
    # the half-pixel rule computed point by point for a few output pixels
    for (oy, ox) in [(0, 0), (5, 17), (27, 27), (13, 2)]:
        sy = min(max((oy + 0.5) * 7 / 28 - 0.5, 0), 6)
        sx = min(max((ox + 0.5) * 7 / 28 - 0.5, 0), 6)
        y0, x0 = int(sy), int(sx)
        y1, x1 = min(y0 + 1, 6), min(x0 + 1, 6)
        fy, fx = sy - y0, sx - x0
        expected = ((1 - fy) * ((1 - fx) * m[:, y0, x0] + fx * m[:, y0, x1])
                    + fy * ((1 - fx) * m[:, y1, x0] + fx * m[:, y1, x1]))
        np.testing.assert_allclose(up[:, oy, ox], expected, rtol=1e-12)
    np.testing.assert_allclose(bilinear_matrix(28, 7).sum(axis=1), 1)  # a constant map stays constant


# ------------------------------------------------------------------ other methods

def test_saliency_is_the_absolute_input_gradient(trained, mnist):
    x = mnist.x_test[:3]
    classes = np.array([5, 5, 9])
    trained.forward_all(x)
    grads = trained.backward_all(np.eye(10)[classes])
    np.testing.assert_allclose(A.saliency(trained, x, classes), np.abs(grads[0]).max(axis=1), rtol=1e-5, atol=1e-6)


def test_guided_backprop_blocks_negative_gradients_at_every_relu(rng):
    """On dense -> relu -> dense the guided gradient is W1 (relu'(h) * max(W2[:, c], 0)), by hand."""
    model = Sequential([Flatten(), Dense(16, 12, rng=rng), ReLU(), Dense(12, 3, rng=rng)], input_shape=(1, 4, 4))
    model = model.astype(np.float64)
    x = rng.standard_normal((2, 1, 4, 4))
    w1, b1 = model.layer("dense1").params["weight"], model.layer("dense1").params["bias"]
    w2 = model.layer("dense2").params["weight"]
    h = x.reshape(2, -1) @ w1 + b1
    for n, c in enumerate([0, 2]):
        expected = w1 @ ((h[n] > 0) * np.maximum(w2[:, c], 0))
        got = A.input_gradient(model, x[n : n + 1], [c], guided=True).reshape(-1)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert (A.guided_backprop(model, x, [0, 2]) >= 0).all()


def test_occlusion_of_a_blank_region_changes_nothing(trained, mnist):
    """The top-left pixel is covered by the top-left patch alone; where that patch is blank, nothing drops."""
    blank = np.flatnonzero(mnist.x_test[:200, 0, :7, :7].max(axis=(1, 2)) == 0)[:3]
    x = mnist.x_test[blank]
    pred = trained.predict(x)
    passed = []

    class Counting:  # the network, counting the images it is given
        def predict_proba(self, images, *args, **kwargs):
            passed.append(len(images))
            return trained.predict_proba(images)

    occ = A.occlusion(Counting(), x, pred, patch=7, stride=3)
    assert occ.shape == (3, 28, 28)
    assert (occ[:, 0, 0] == 0).all()  # exactly: that patch left the image as it was, and was not passed on
    assert np.abs(occ).max() > 1e-3  # while patches over the digit do change the probability
    # 8 x 8 patch positions; those over nothing but background (a border's) are not passed through the network
    assert passed[0] == 3 and 0 < sum(passed[1:]) < 3 * 64


@pytest.mark.parametrize("patch, stride", [(5, 4), (7, 3), (6, 5), (28, 3)])
def test_occlusion_covers_every_pixel_when_patches_do_not_tile_the_image(trained, mnist, patch, stride):
    """Patch 5, stride 4 leaves the last 3 columns uncovered by whole windows; a clipped last
    window covers them. Checked against a loop over every window, clipped at the border."""
    x = mnist.x_test[:2]
    pred = trained.predict(x)
    got = A.occlusion(trained, x, pred, patch=patch, stride=stride)
    assert np.isfinite(got).all()
    base = trained.predict_proba(x)[np.arange(2), pred]
    total, count = np.zeros((2, 28, 28)), np.zeros((28, 28))
    y0 = 0
    while True:
        x0 = 0
        while True:
            blanked = x.copy()
            blanked[:, :, y0 : y0 + patch, x0 : x0 + patch] = 0
            drop = base - trained.predict_proba(blanked)[np.arange(2), pred]
            total[:, y0 : y0 + patch, x0 : x0 + patch] += drop[:, None, None]
            count[y0 : y0 + patch, x0 : x0 + patch] += 1
            if x0 + patch >= 28:
                break
            x0 += stride
        if y0 + patch >= 28:
            break
        y0 += stride
    assert count.min() >= 1
    np.testing.assert_allclose(got, total / count, atol=1e-6)


# ------------------------------------------------------------------ faithfulness

def _toy(rng, n=200):
    """Images of random positive pixels, and a score that is the fraction of the image's mass left."""
    x = rng.random((n, 1, 28, 28)) ** 3
    total = x.sum(axis=(1, 2, 3))
    score = lambda images, owner: images.sum(axis=(1, 2, 3)) / total[owner]
    return x, score


def test_an_oracle_map_beats_random_and_random_is_near_its_expected_area(rng):
    x, score = _toy(rng)
    oracle = A.deletion_insertion(score, x, x[:, 0])  # the true importance of each pixel is its value
    random = A.deletion_insertion(score, x, rng.random((len(x), 28, 28)))
    # removing random pixels leaves, on average, a straight line from 1 to 0: area 1/2
    assert random.deletion_auc == pytest.approx(0.5, abs=0.01)
    assert random.insertion_auc == pytest.approx(0.5, abs=0.01)
    assert oracle.deletion_auc < random.deletion_auc - 0.2
    assert oracle.insertion_auc > random.insertion_auc + 0.2
    assert random.fractions[0] == 0 and random.fractions[-1] == 1 and len(random.fractions) == 29
    np.testing.assert_allclose(oracle.deletion[:, 0], 1)
    np.testing.assert_allclose(oracle.insertion[:, -1], 1)



def test_deletion_and_insertion_score_only_the_steps_that_change_the_image(rng, mnist):
    """On digits, most steps past the ink blank (or put back) black pixels: the image is the previous
    step's, and so is its probability. The curves equal those of scoring every step's image."""
    x = mnist.x_test[:40]
    maps = rng.random((len(x), 28, 28)) + (x[:, 0] > 0)  # the ink first, in random order, then the rest
    maps[:20] = rng.random((20, 28, 28))  # and for half the images, any order
    weights = rng.standard_normal(28 * 28)
    seen = []

    def score(images, owner):
        seen.append(len(images))
        return np.tanh(images.reshape(len(images), -1) @ weights) + owner  # any function of the image

    got = A.deletion_insertion(score, x, maps, per_step=56)
    steps = np.unique(np.arange(0, 784 + 56, 56).clip(max=784))
    for i in range(len(x)):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        for s, k in enumerate(steps):
            deleted, inserted = x[i, 0].ravel().copy(), np.zeros(784, dtype=x.dtype)
            deleted[order[:k]] = 0
            inserted[order[:k]] = x[i, 0].ravel()[order[:k]]
            assert got.deletion[i, s] == pytest.approx(np.tanh(deleted @ weights) + i, abs=1e-9)
            assert got.insertion[i, s] == pytest.approx(np.tanh(inserted @ weights) + i, abs=1e-9)
    assert sum(seen) < 0.9 * 2 * len(x) * len(steps)  # the repeated images were not scored again

    # given the scores of each curve's two ends (the image and the blank image), the same curves,
    # with neither end scored again; and a deletion curve alone is the same deletion curve
    full, empty = A.end_scores(score, x)
    ends = []
    score_ends = lambda images, owner: ends.append((images == x[owner]).all(axis=(1, 2, 3)).sum()
                                                   + (images == 0).all(axis=(1, 2, 3)).sum()) or score(images, owner)
    seen.clear()
    shared = A.deletion_insertion(score_ends, x, maps, per_step=56, full=full, empty=empty)
    np.testing.assert_allclose(shared.deletion, got.deletion, atol=1e-12)
    np.testing.assert_allclose(shared.insertion, got.insertion, atol=1e-12)
    assert sum(ends) == 0 and 0 < sum(seen) <= 2 * len(x) * (len(steps) - 2)
    alone = A.deletion_insertion(score, x, maps, per_step=56, full=full, empty=empty, kinds=("deletion",))
    np.testing.assert_allclose(alone.deletion, got.deletion, atol=1e-12)
    assert alone.insertion is None

def test_spearman_handles_ties_with_average_ranks():
    a = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert A.spearman(a, a)[0] == pytest.approx(1)
    assert A.spearman(a, -a)[0] == pytest.approx(-1)
    tied = np.array([[0.0, 0.0, 1.0, 2.0]])  # ranks 1.5, 1.5, 3, 4
    ranks_a, ranks_t = np.array([1, 2, 3, 4.0]), np.array([1.5, 1.5, 3, 4])
    expected = np.corrcoef(ranks_a, ranks_t)[0, 1]
    assert A.spearman(a, tied)[0] == pytest.approx(expected)
    assert np.isnan(A.spearman(a, np.zeros((1, 4)))[0])  # a flat map has no ranking


def test_cascading_randomization_goes_top_down_and_leaves_the_model_alone(trained, mnist):
    x = mnist.x_test[:8]
    pred = trained.predict(x)
    before = {k: v.copy() for k, v in trained.state().items()}
    stages, rho, maps = A.cascading_randomization(
        trained, x, pred, np.random.default_rng(1),
        {"gradcam": lambda m, x, c: grad_cam(m, x, c).upsampled})
    assert stages == ["dense2", "dense1", "bn3", "conv3", "bn2", "conv2", "bn1", "conv1"]
    assert rho["gradcam"].shape == (8, 8) and len(maps["gradcam"]) == 9
    assert np.nanmean(rho["gradcam"][-1]) < 0.9  # a fully random network does not reproduce the maps
    for k, v in trained.state().items():
        np.testing.assert_array_equal(v, before[k])
