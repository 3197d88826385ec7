"""Other attributions to compare Grad-CAM with, and tests of whether a map can be trusted.

Maps, for images x (N, C, H, W) and classes (N,), each (N, H, W):
- saliency: |d y^c / d x|, the vanilla gradient (Simonyan et al. 2014, arXiv:1312.6034);
- guided backpropagation: the gradient where every ReLU also blocks negative
  gradients on the way back (Springenberg et al. 2015, arXiv:1412.6806);
- guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map (Selvaraju et al.);
- occlusion: how much the class probability drops when a patch of the image is
  blanked, averaged over the patches covering each pixel (Zeiler and Fergus 2014);
- integrated gradients: the input minus a baseline, times the gradient averaged
  along the straight path from the baseline to the input (Sundararajan et al.
  2017, arXiv:1703.01365); the attributions add up to y^c(x) - y^c(baseline);
- SmoothGrad: saliency averaged over noisy copies of the input (Smilkov et al.
  2017, arXiv:1706.03825);
- Grad-CAM++: Grad-CAM with each gradient position weighted by the second- and
  third-order terms of an exponential score (Chattopadhyay et al. 2018,
  arXiv:1710.11063);
- Score-CAM: each feature map, upsampled and scaled to [0, 1], used as a mask on
  the input; its weight is how much the masked input keeps of the class
  probability (Wang et al. 2020, arXiv:1910.01279).

Faithfulness:
- deletion and insertion curves (Petsiuk et al. 2018, RISE, arXiv:1806.07421):
  blank the pixels a map ranks highest, a few at a time, and follow the class
  probability (deletion: a faithful map makes it fall fast, low area under the
  curve); or start from a blank image and put them back (insertion: high area);
- ROAD, remove and debias (Rong et al. 2022, arXiv:2202.00449): like deletion, but
  each removed pixel is filled by noisy linear imputation -- the weighted mean of
  its neighbours, plus a little noise -- instead of black, so that the image stays
  like the ones the network saw; most relevant first (MoRF) and least relevant
  first (LeRF);
- the model-randomisation check (Adebayo et al. 2018, arXiv:1810.03292):
  re-initialise the layers from the top down and measure how similar the maps
  stay (Spearman rank correlation). A map that does not change when the
  network's weights are destroyed cannot be explaining what the network learned.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .gradcam import block_outputs, class_onehot, grad_cam, normalize, upsample
from .losses import softmax
from .model import INFERENCE_BATCH, Sequential
from .parallel import DEFAULT_WORKERS


def input_gradient(model, x, classes, guided=False):
    """d y^c / d x for each image, optionally with the guided-backpropagation rule at every ReLU.

    classes (N,) gives (N, C, H, W); classes (N, K) gives (N, K, C, H, W), the gradient of each of
    K classes of every image, from one forward pass and K backward passes."""
    classes = np.asarray(classes)
    scores = model.forward(x)
    out = []
    for column in classes.reshape(len(classes), -1).T:
        d = class_onehot(scores, column)
        for layer in reversed(model.layers):
            if guided and layer.kind == "relu":
                d = np.maximum(d, 0)  # guided: only positive gradient passes back through a ReLU...
            d = layer.backward(d, need_params=False)  # ...and, as always, only where its input was positive
        out.append(d)
    model.clear_cache()
    return out[0] if classes.ndim == 1 else np.stack(out, axis=1)


def saliency(model, x, classes):
    """|d y^c / d x|, the largest over input channels: (N, H, W), or (N, K, H, W) for classes (N, K)."""
    return np.abs(input_gradient(model, x, classes)).max(axis=-3)


def guided_backprop(model, x, classes):
    """Guided backpropagation, positive part, largest over input channels: (N, H, W), or (N, K, H, W)
    for classes (N, K)."""
    return np.maximum(input_gradient(model, x, classes, guided=True), 0).max(axis=-3)


def guided_grad_cam(model, x, classes, layer=None):
    """Guided backpropagation times the upsampled Grad-CAM map: (N, H, W)."""
    return guided_backprop(model, x, classes) * grad_cam(model, x, classes, layer).upsampled


def occlusion(model, x, classes, patch=7, stride=3, fill=0.0, batch_size=INFERENCE_BATCH, workers=DEFAULT_WORKERS):
    """Drop in class probability when a patch x patch square is set to `fill`, per pixel (N, H, W).

    Every patch position of every image is one row of a batched forward pass. A
    pixel's value is the mean drop over the patches that covered it. The patches
    start every `stride` pixels until one reaches the border; when patch and
    stride do not tile the image, that last one is clipped at the border (as in
    Captum), so every pixel is covered at least once. A patch over pixels that
    are all `fill` already (a digit's black background) leaves the image as it
    is: its drop is 0, and it is not passed through the network.
    """
    n, c, h, w = x.shape
    ys, xs = _window_starts(h, patch, stride), _window_starts(w, patch, stride)
    masks = np.ones((len(ys) * len(xs), h, w), dtype=x.dtype)  # 1 = keep, one mask per patch position
    for i, (y0, x0) in enumerate((y0, x0) for y0 in ys for x0 in xs):
        masks[i, y0 : y0 + patch, x0 : x0 + patch] = 0
    classes = np.asarray(classes)
    base = model.predict_proba(x, workers=workers)[np.arange(n), classes]
    covered = 1 - masks  # (P, H, W)
    visible = (x != fill).any(axis=1).reshape(n, -1).astype(x.dtype)  # (N, H*W)
    image, where = np.nonzero(visible @ covered.reshape(len(masks), -1).T > 0)  # the patches that change an image
    kept = masks[where][:, None]  # (changed, 1, H, W)
    occluded = x[image] * kept + x.dtype.type(fill) * (1 - kept)
    drop = np.zeros((n, len(masks)))
    drop[image, where] = base[image] - model.predict_proba(occluded, batch_size, workers)[np.arange(len(image)),
                                                                                           classes[image]]
    return np.einsum("np,phw->nhw", drop, covered) / covered.sum(axis=0)


def blur(x, sigma):
    """Gaussian blur of images (N, C, H, W), each axis separately, edges repeated: the blurred baseline."""
    radius = int(np.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-t * t / (2 * sigma * sigma))
    kernel /= kernel.sum()
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="edge")
    rows = sum(k * padded[:, :, i : i + h, :] for i, k in enumerate(kernel))  # (N, C, H, W + 2r)
    return sum(k * rows[:, :, :, i : i + w] for i, k in enumerate(kernel)).astype(x.dtype)


def integrated_gradients(model, x, classes, baseline=None, steps=32):
    """Integrated gradients of the score of classes (N,) for images x: (N, C, H, W), signed.

    The integral of the gradient along the path baseline + t (x - baseline), t in
    [0, 1], by the midpoint rule with `steps` points; baseline: an array like x
    (default black, all zeros). Completeness: the attributions of an image add up
    to y^c(x) - y^c(baseline), up to the error of the midpoint rule.
    """
    baseline = np.zeros_like(x) if baseline is None else baseline.astype(x.dtype)
    total = np.zeros(x.shape)
    for t in (np.arange(steps) + 0.5) / steps:
        total += input_gradient(model, baseline + x.dtype.type(t) * (x - baseline), classes)
    return (x - baseline) * total / steps


def class_scores(model, x, classes):
    """y^c, the score before the softmax, of classes (N,) for images x."""
    scores = model.forward(x)
    model.clear_cache()
    return scores[np.arange(len(x)), np.asarray(classes)]


def smoothgrad(model, x, classes, rng, samples=25, noise=0.15, draws=None):
    """Saliency averaged over `samples` noisy copies of each image, (N, H, W).

    The noise is Gaussian with a standard deviation of `noise` times the range of
    pixel values of each image; with noise=0 every copy is the image itself, and
    this is saliency exactly. draws: the standard normal numbers to use instead of
    rng's, (samples, N, C, H, W) (the explorer's self-test hands them to the page).
    """
    spread = noise * (x.reshape(len(x), -1).max(axis=1) - x.reshape(len(x), -1).min(axis=1))
    total = np.zeros((len(x),) + x.shape[2:])
    for s in range(samples):
        normal = rng.standard_normal(x.shape) if draws is None else draws[s]
        eps = normal.astype(x.dtype) * spread[:, None, None, None].astype(x.dtype)
        total += saliency(model, x + eps, classes)
    return total / samples


def grad_cam_plus_plus(model, x, classes, layer=None):
    """Grad-CAM++ maps, upsampled to the input and divided by their maximum, (N, H, W).

    With g = d y^c / d A^k (y^c the score; the exponential of the paper makes its
    higher derivatives powers of g), each position's weight is
        a_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)      (0 where g_ij = 0),
    a map's weight is w_k = sum_ij a_ij ReLU(g_ij), and the map is ReLU(sum_k w_k A^k).
    """
    cam = grad_cam(model, x, classes, layer)
    a, g = cam.activations.astype(np.float64), cam.gradients.astype(np.float64)
    g2, g3 = g * g, g * g * g
    denominator = 2 * g2 + a.sum(axis=(2, 3), keepdims=True) * g3
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(g != 0, g2 / np.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))  # (N, K)
    maps = np.maximum(np.einsum("nk,nkhw->nhw", weights, a), 0)
    return normalize(upsample(maps, x.shape[2], x.shape[3]))


def score_cam(model, x, classes, layer=None, batch_size=INFERENCE_BATCH, workers=DEFAULT_WORKERS):
    """Score-CAM maps, upsampled to the input and divided by their maximum, (N, H, W).

    Each of the K maps A^k of the layer is upsampled to the input's size and scaled
    to [0, 1]; the input times that mask goes through the network, and the class
    probability it keeps is the map's score. The weights are the softmax of the K
    scores (as in the reference implementation), the map ReLU(sum_k w_k A^k).
    """
    blocks = block_outputs(model)
    layer = layer or list(blocks)[-1]
    classes = np.asarray(classes)
    acts = model.forward_all(x)[blocks[layer]]  # (N, K, h, w)
    model.clear_cache()
    n, k = acts.shape[:2]
    up = upsample(acts.reshape(n * k, *acts.shape[2:]), x.shape[2], x.shape[3]).reshape(n, k, *x.shape[2:])
    lo, hi = up.min(axis=(2, 3), keepdims=True), up.max(axis=(2, 3), keepdims=True)
    masks = np.where(hi > lo, (up - lo) / np.where(hi > lo, hi - lo, 1), 0).astype(x.dtype)  # (N, K, H, W)
    masked = (x[:, None] * masks[:, :, None]).reshape(n * k, *x.shape[1:])  # (N*K, C, H, W)
    probs = model.predict_proba(masked, batch_size, workers).reshape(n, k, -1)
    scores = probs[np.arange(n), :, classes]  # (N, K)
    weights = softmax(scores)
    maps = np.maximum(np.einsum("nk,nkhw->nhw", weights, acts.astype(np.float64)), 0)
    return normalize(upsample(maps, x.shape[2], x.shape[3]))


def _window_starts(size, patch, stride):
    """Starts 0, stride, 2 * stride, ... up to the first window that reaches the end of the axis."""
    last = -(-max(size - patch, 0) // stride)  # ceil: the first start whose window reaches the end
    return [i * stride for i in range(last + 1)]


# ---------------------------------------------------------------- deletion and insertion

@dataclass
class Curves:
    fractions: np.ndarray  # (S,) fraction of the pixels removed (deletion) or inserted (insertion)
    deletion: np.ndarray  # (N, S) class probability along the way
    insertion: np.ndarray  # (N, S)

    @property
    def deletion_auc(self):
        return float(_auc(self.fractions, self.deletion.mean(axis=0)))

    @property
    def insertion_auc(self):
        return float(_auc(self.fractions, self.insertion.mean(axis=0)))

    def per_image_auc(self, kind):
        """(N,) the area under each image's own curve; their mean is the AUC of the mean curve."""
        y = getattr(self, kind)
        return ((self.fractions[1:] - self.fractions[:-1]) * (y[:, 1:] + y[:, :-1]) / 2).sum(axis=1)


def bootstrap_interval(values, rng, resamples=2000, level=0.95):
    """Percentile bootstrap interval of the mean of values (one per image): (low, high).

    Resample the images with replacement `resamples` times and take the middle
    `level` of the means: how much the mean could move with another sample of images.
    """
    values = np.asarray(values, dtype=float)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _auc(x, y):
    """Area under a curve by the trapezoid rule."""
    return np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)


def deletion_insertion(score_fn, x, maps, per_step=28, fill=0.0, chunk=64, full=None, empty=None,
                       kinds=("deletion", "insertion")):
    """Deletion and insertion curves of each image under its map.

    score_fn(images, owner) -> the probability of the explained class of each
    image, where owner[i] is the index (in x) of the image images[i] was made from.
    The pixels are ranked by the map, highest first (ties in a fixed, stable
    order); each step removes (or inserts) the next `per_step` of them, replaced
    by `fill`. Both curves have 1 + ceil(H*W / per_step) points. Images are
    processed `chunk` at a time, each chunk as one batch of all its steps.

    A step that changes only pixels already equal to `fill` (the black background
    of a digit, when fill is 0) leaves the image as it was, so its probability is
    the previous step's: only the steps that change the image are scored. Each
    curve starts at one of two images and ends at the other: the image itself and
    the image with every pixel `fill`. When their scores are given -- full (N,) and
    empty (N,), the same for every map of the same images -- those steps are not
    scored again. kinds: the curves to make (the others are None).
    """
    n, c, h, w = x.shape
    steps = np.unique(np.arange(0, h * w + per_step, per_step).clip(max=h * w))  # pixels changed so far
    curves = {kind: [] for kind in kinds}
    ends = {"deletion": (full, empty), "insertion": (empty, full)}  # the scores of its first and last image
    known = full is not None and empty is not None
    for start in range(0, n, chunk):
        xs, ms = x[start : start + chunk], maps[start : start + chunk]
        m = len(xs)
        order = np.argsort(-ms.reshape(m, -1), axis=1, kind="stable")  # (m, H*W) most important first
        rank = np.empty_like(order)
        rank[np.arange(m)[:, None], order] = np.arange(h * w)  # each pixel's place in that order
        changed = (rank[:, None, :] < steps[None, :, None]).reshape(m, len(steps), 1, h, w)  # (m, S, 1, H, W)
        # new[i, s]: step s of image i changes a pixel that is not already `fill` (step 0 is always scored)
        visible = (xs != fill).any(axis=1).reshape(m, -1)  # (m, H*W)
        step_of = np.searchsorted(steps, rank, side="right")  # the step that changes each pixel
        new = np.zeros((m, len(steps)), dtype=bool)
        new[:, 0] = True
        new[np.nonzero(visible)[0], step_of[visible]] = True
        latest = np.maximum.accumulate(np.where(new, np.arange(len(steps)), 0), axis=1)  # the step each one equals
        image, step = np.nonzero(new)  # the scored steps, image by image
        last = np.where(visible, step_of, 0).max(axis=1)  # from this step on, every visible pixel is changed
        at_first, at_last = step == 0, (step == last[image]) & (step > 0)
        todo = ~(at_first | at_last) if known else np.ones(len(image), dtype=bool)
        gone = changed[image[todo], step[todo]]  # (steps to score, 1, H, W)
        for name in kinds:
            scores = np.zeros((m, len(steps)))
            if known:
                first_score, last_score = ends[name]
                scores[image[at_first], 0] = first_score[start + image[at_first]]
                scores[image[at_last], step[at_last]] = last_score[start + image[at_last]]
            keep = ~gone if name == "deletion" else gone
            if todo.any():
                scores[image[todo], step[todo]] = score_fn(np.where(keep, xs[image[todo]], xs.dtype.type(fill)),
                                                           start + image[todo])
            curves[name].append(scores[np.arange(m)[:, None], latest])
    joined = {kind: np.concatenate(curves[kind]) if kind in curves else None for kind in ("deletion", "insertion")}
    return Curves(steps / (h * w), joined["deletion"], joined["insertion"])


def end_scores(score_fn, x, fill=0.0):
    """(full, empty) for deletion_insertion: the scores of the images x themselves, and of the
    images with every pixel `fill`."""
    owner = np.arange(len(x))
    return score_fn(x, owner), score_fn(np.full_like(x, fill), owner)


# The neighbours of a pixel and their weights in noisy linear imputation (ROAD): the four
# sides count twice as much as the four corners; at the border, the weights of the
# neighbours inside the image are scaled up to add to 1.
NEIGHBOURS = (((-1, 0), 1 / 6), ((1, 0), 1 / 6), ((0, -1), 1 / 6), ((0, 1), 1 / 6),
              ((-1, -1), 1 / 12), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((1, 1), 1 / 12))


def _stencil(u, padded):
    """sum over each pixel's neighbours of weight * value, for maps u (M, H, W), zero outside the image.

    The weights (NEIGHBOURS) are (1/12) * ([1 2 1] outer [1 2 1] - 4 at the centre), so two
    one-dimensional passes do the work of eight shifted sums. padded: a zero (>= M, H+2, W+2) buffer."""
    buf = padded[: len(u)]
    buf[:, 1:-1, 1:-1] = u
    rows = buf[:, :, :-2] + 2 * buf[:, :, 1:-1] + buf[:, :, 2:]
    total = rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]
    total -= 4 * u
    total *= 1 / 12
    return total


def noisy_linear_imputation(x, removed, rng, noise=0.01, tol=1e-7, max_iterations=500, precision=np.float64):
    """Images x (N, C, H, W) with the pixels where removed (N, H, W) is True filled in.

    Every removed pixel takes the weighted mean of its neighbours (NEIGHBOURS), some of
    which may be removed too: for the removed pixels R and the kept ones K,
        W_p v_p - sum_{q in R} w_pq v_q = sum_{q in K} w_pq x_q      (p in R),
    with W_p the weight of p's in-image neighbours. The matrix is symmetric and positive
    definite (a graph Laplacian with the kept pixels held fixed), so conjugate gradients
    solve it, every image and channel at once, until each one's residual is below tol (an
    image that has converged leaves the batch). An image with every pixel removed has
    nothing to hold it: it takes its mean. Then Gaussian noise of standard deviation
    `noise` is added to the filled pixels. precision: the dtype the solver works in.
    """
    n, ch, h, w = x.shape
    mask = np.broadcast_to(removed[:, None], x.shape).reshape(n * ch, h, w).astype(precision)
    images = x.reshape(n * ch, h, w).astype(precision)
    kept = images * (1 - mask)
    padded = np.zeros((n * ch, h + 2, w + 2), precision)
    weight = _stencil(np.ones((1, h, w), precision), np.zeros((1, h + 2, w + 2), precision))
    r = _stencil(kept, padded) * mask  # the right-hand side; u = 0 to start
    u, p = np.zeros_like(r), r.copy()
    rs = np.einsum("ijk,ijk->i", r, r)
    live = np.arange(n * ch)  # the images still being solved; m and u_live: their rows of mask and u
    m, u_live = mask, u.copy()
    for _ in range(max_iterations):
        going = np.sqrt(rs) > tol
        if not going.all():
            u[live] = u_live  # the images that converged keep their solution
            live, r, p, rs, m, u_live = live[going], r[going], p[going], rs[going], m[going], u_live[going]
            if not len(live):
                break
        ap = weight * p
        ap -= _stencil(p, padded)
        ap *= m  # (W - A) p on the removed pixels
        pap = np.einsum("ijk,ijk->i", p, ap)
        alpha = np.divide(rs, pap, out=np.zeros_like(rs), where=pap > 0)[:, None, None]
        u_live += alpha * p
        r -= alpha * ap
        rs_new = np.einsum("ijk,ijk->i", r, r)
        p *= np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)[:, None, None]
        p += r
        rs = rs_new
    else:
        u[live] = u_live
    v = kept + u
    everything = mask.min(axis=(1, 2)) == 1  # nothing kept: the image's mean
    v[everything] = images[everything].mean(axis=(1, 2))[:, None, None]
    v += mask * rng.standard_normal(v.shape) * noise
    return v.reshape(x.shape).astype(x.dtype)


ROAD_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
ROAD_CHUNK = 250  # images imputed together; the chunks, and so the noise each one draws, never depend on workers


def road(score_fn, x, maps, rng, fractions=ROAD_FRACTIONS, most_relevant_first=True, noise=0.01,
         workers=DEFAULT_WORKERS, tol=1e-4):
    """ROAD curves: the class probability after removing each fraction of the pixels by imputation.

    score_fn(images, owner) as in deletion_insertion. The pixels are ranked by the map,
    highest first for MoRF (most_relevant_first) and lowest first for LeRF, ties in a
    fixed order. The imputation works in float32 to a residual of tol (an error of about
    1e-3 at most in a filled pixel, a tenth of the noise), on chunks of images in
    `workers` threads. Returns (fractions, probabilities (N, len(fractions))).
    """
    n, c, h, w = x.shape
    flat = maps.reshape(n, -1)
    order = np.argsort(-flat if most_relevant_first else flat, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(h * w)
    starts = range(0, n, ROAD_CHUNK)
    out = np.empty((n, len(fractions)))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for j, f in enumerate(fractions):
            removed = (rank < int(round(f * h * w))).reshape(n, h, w)
            chunk_rngs = rng.spawn(len(starts))
            filled = pool.map(lambda s, g: noisy_linear_imputation(x[s : s + ROAD_CHUNK], removed[s : s + ROAD_CHUNK], g,
                                                                     noise, tol, precision=np.float32),
                              starts, chunk_rngs)
            out[:, j] = score_fn(np.concatenate(list(filled)), np.arange(n))
    return np.asarray(fractions), out


def class_probability(model, classes, workers=DEFAULT_WORKERS):
    """A score_fn for deletion_insertion: the probability of classes[owner] for each image."""
    classes = np.asarray(classes)

    def score(images, owner):
        return model.predict_proba(images, workers=workers)[np.arange(len(images)), classes[owner]]

    return score


# ---------------------------------------------------------------- randomisation check

def spearman(a, b):
    """Spearman rank correlation of each pair of maps: (N,) for a, b of shape (N, ...).

    Ties get their average rank, so a map with many exact zeros (Grad-CAM after
    its ReLU) is ranked fairly; a constant map has no correlation (nan).
    """
    ra, rb = _ranks(a.reshape(len(a), -1)), _ranks(b.reshape(len(b), -1))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=1) / denom


def _ranks(v):
    """Average ranks (1-based) along the last axis of (N, P), ties sharing the mean of their positions."""
    n, p = v.shape
    order = np.argsort(v, axis=1, kind="stable")
    sorted_v = np.take_along_axis(v, order, axis=1)
    new_run = np.ones((n, p), dtype=bool)
    new_run[:, 1:] = sorted_v[:, 1:] != sorted_v[:, :-1]
    run_id = np.cumsum(new_run, axis=1) - 1  # (N, P) which run of equal values each sorted entry is in
    positions = np.broadcast_to(np.arange(1, p + 1, dtype=float), (n, p))
    # mean position of each run: sum of positions / count, per row, via bincount over (row, run)
    flat_id = (run_id + np.arange(n)[:, None] * p).ravel()
    sums = np.bincount(flat_id, weights=positions.ravel(), minlength=n * p)
    counts = np.bincount(flat_id, minlength=n * p)
    mean_rank = (sums / np.maximum(counts, 1))[flat_id].reshape(n, p)
    ranks = np.empty((n, p))
    np.put_along_axis(ranks, order, mean_rank, axis=1)
    return ranks


def cascading_randomization(model, x, classes, rng, methods):
    """Adebayo et al.'s cascading model-parameter randomisation.

    methods: {name: fn(model, x, classes) -> (N, H, W) map}. Starting from the
    top, each stage re-initialises one more layer with parameters (conv, dense,
    batch norm) -- freshly drawn for conv and dense, reset for batch norm -- and
    recomputes every map. Returns (stage names, {method: (S, N) Spearman rho
    between the original and the randomised maps}, {method: [original maps,
    maps after each stage]}). The model itself is not changed.
    """
    original = {name: fn(model, x, classes) for name, fn in methods.items()}
    copy = Sequential.from_architecture(model.architecture(), rng)
    copy.set_state(model.state())
    fresh = Sequential.from_architecture(model.architecture(), rng)  # the random weights to swap in
    stages, rho, maps = [], {m: [] for m in methods}, {m: [original[m]] for m in methods}
    for layer, new in zip(reversed(copy.layers), reversed(fresh.layers)):
        if not layer.params:
            continue
        layer.params = {k: v.copy() for k, v in new.params.items()}
        layer.buffers = {k: v.copy() for k, v in new.buffers.items()}
        stages.append(layer.name)
        for name, fn in methods.items():
            m = fn(copy, x, classes)
            rho[name].append(spearman(original[name], m))
            maps[name].append(m)
    return stages, {m: np.array(r) for m, r in rho.items()}, maps
