"""The measurements of "Can we trust the heat map?": every method, the same test images, the same tests.

One stratified, seeded set of test images (config.faithfulness, 1,000 by default)
and, for each method in METHODS:
- deletion and insertion curves (blanked pixels) and ROAD (imputed pixels, most and
  least relevant first), each summarised per image and averaged;
- the model-randomisation check on a tenth of those images: the rank correlation
  between the map of the trained network and the map of the same network with its
  top layer, or every layer, re-initialised;
- the data-randomisation check on the same tenth: a network of the same
  architecture trained on training images whose labels were shuffled by the seed,
  and the rank correlation between its maps and the trained network's.
And, for Grad-CAM and saliency, the deletion area and the correlations after every
epoch of training. Every mean has a 95 % bootstrap interval over the images.

The maps come from the network with batch norm folded in (cnn.model.fold_batchnorm):
the same function, a third faster. Gradient methods run on fixed chunks of images,
`workers` chunks at a time, each on its own replica of the network; a method that
draws random numbers draws them per chunk from its own seed, so the maps do not
depend on the number of workers, and the randomised networks see the same noise.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from cnn.attribution import (blur, bootstrap_interval, class_probability, deletion_insertion, end_scores,
                             grad_cam_plus_plus, guided_backprop, integrated_gradients, occlusion, road, saliency,
                             score_cam, smoothgrad, spearman)
from cnn.data import stratified_indices
from cnn.gradcam import grad_cam
from cnn.model import Sequential, default_cnn, fold_batchnorm, pool_before_relu
from cnn.optim import OPTIMIZERS
from cnn.train import fit

IG_STEPS = 32  # integrated gradients: points of the midpoint rule along the path
BLUR_SIGMA = 4.0  # the blurred baseline's Gaussian, in pixels
SMOOTHGRAD_SAMPLES = 25
SMOOTHGRAD_NOISE = 0.15  # the noise's standard deviation, as a fraction of each image's range of values
DELETION_STEP = 56  # pixels blanked (or put back) per step of the deletion and insertion curves: two rows
CHUNK = 50  # images per piece of work (a pass keeps every layer's output); the sanity checks' 100 make two
# The network trained on shuffled labels: a subset small enough to memorise in seconds.
SHUFFLED = {"images": 500, "epochs": 15, "batch_size": 32, "lr": 1e-3}


def evidence_map(attributions):
    """The map of integrated gradients' attributions (N, C, H, W) the site shows and ranks pixels by:
    summed over the channels, positive part (where they add evidence for the class)."""
    return np.maximum(attributions.sum(axis=1), 0)


def integrated(blurred):
    """Integrated gradients from a black or a blurred baseline, as evidence_map."""
    def fn(net, x, c, rng):
        b = blur(x, BLUR_SIGMA) if blurred else None
        return evidence_map(integrated_gradients(net, x, c, b, IG_STEPS))
    return fn


def methods(layer):
    """{name: fn(network, images, classes, rng) -> (N, H, W) maps}, in the order of the chapter's tables."""
    return {
        "Grad-CAM": lambda net, x, c, rng: grad_cam(net, x, c, layer).upsampled,
        "Grad-CAM++": lambda net, x, c, rng: grad_cam_plus_plus(net, x, c, layer),
        "Score-CAM": lambda net, x, c, rng: score_cam(net, x, c, layer, workers=1),
        "saliency": lambda net, x, c, rng: saliency(net, x, c),
        "SmoothGrad": lambda net, x, c, rng: smoothgrad(net, x, c, rng, SMOOTHGRAD_SAMPLES, SMOOTHGRAD_NOISE),
        "IG (black)": integrated(blurred=False),
        "IG (blurred)": integrated(blurred=True),
        "guided backprop": lambda net, x, c, rng: guided_backprop(net, x, c),
        "Guided Grad-CAM": lambda net, x, c, rng: guided_backprop(net, x, c) * grad_cam(net, x, c, layer).upsampled,
        "occlusion": lambda net, x, c, rng: occlusion(pool_before_relu(net), x, c, workers=1),  # scores only
        "random": lambda net, x, c, rng: rng.random((len(x),) + x.shape[2:]),
    }


def maps_of(fn, net, x, classes, seed, workers):
    """fn over fixed chunks of CHUNK images, `workers` at a time, each thread on its own replica of net.

    Chunk i draws its random numbers from a Generator spawned as the i-th child of `seed`."""
    starts = range(0, len(x), CHUNK)
    rngs = np.random.default_rng(seed).spawn(len(starts))
    local = threading.local()

    def one(start, rng):
        if not hasattr(local, "net"):
            local.net = net.replica()
        return fn(local.net, x[start : start + CHUNK], classes[start : start + CHUNK], rng)

    return np.concatenate(threaded(one, workers, starts, rngs))


def threaded(fn, workers, *iterables):
    """[fn(*items) for items in zip(*iterables)], `workers` at a time in threads with one BLAS thread
    each: every call computes whole in one thread, so its numbers do not depend on `workers`."""
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(fn, *iterables))


def summary(values, rng):
    """Mean and 95 % bootstrap interval of per-image values, leaving out the undefined (nan) ones."""
    values = np.asarray(values, dtype=float)
    ok = values[np.isfinite(values)]
    if not len(ok):
        return {"mean": None, "ci": None, "undefined": int(len(values))}
    return {"mean": float(ok.mean()), "ci": list(bootstrap_interval(ok, rng)), "undefined": int(len(values) - len(ok))}


def randomized(model, rng, top=None):
    """A copy of model with its `top` highest layers with parameters re-initialised (all of them if None)."""
    fresh = Sequential.from_architecture(model.architecture(), rng)
    if top is None:
        return fresh
    copy = Sequential.from_architecture(model.architecture(), rng)
    copy.set_state(model.state())
    for layer, new in list(zip(copy.layers, fresh.layers))[::-1]:
        if top == 0:
            break
        if layer.params:
            layer.params = {k: v.copy() for k, v in new.params.items()}
            layer.buffers = {k: v.copy() for k, v in new.buffers.items()}
            top -= 1
    return copy


def train_shuffled(data, rng, indices, workers):
    """(network, record): the default architecture trained on SHUFFLED["images"] training images with their
    labels permuted by rng, so that nothing but memorisation can fit them."""
    s = SHUFFLED
    pick = stratified_indices(data.y_train, min(s["images"], len(data.y_train)), rng)
    x, y = data.x_train[pick], rng.permutation(data.y_train[pick])
    net = default_cnn(rng, num_classes=len(data.class_names))
    watch_x, watch_y = data.x_test[indices], data.y_test[indices]
    fit(net, OPTIMIZERS["adam"](lr=s["lr"]), x, y, watch_x, watch_y, epochs=s["epochs"], batch_size=s["batch_size"],
        rng=rng, workers=workers)
    record = dict(s, images=int(len(pick)),
                  train_accuracy=net.evaluate(x, y, workers=workers).accuracy,
                  test_accuracy=net.evaluate(data.x_test, data.y_test, workers=workers).accuracy,
                  chance=float(np.bincount(data.y_test).max() / len(data.y_test)))
    return net, record


def measure(model, fast, run, data, proba, rngs, layer, images, workers):
    """(context, arrays) of the trust chapter; rngs: {"faithfulness", "randomization": Generator}."""
    timings = {}
    clock = time.perf_counter()
    rng = rngs["faithfulness"]
    n = min(images, len(data.y_test))
    idx = stratified_indices(data.y_test, n, rng)
    x, c = data.x_test[idx], proba[idx].argmax(axis=1)
    table = methods(layer)
    seeds = {name: int(rng.integers(2**63)) for name in table}  # each method's noise, the same for every network

    maps = {}
    for name, fn in table.items():
        start = time.perf_counter()
        maps[name] = maps_of(fn, fast, x, c, seeds[name], workers)
        timings[f"maps {name}"] = time.perf_counter() - start
    start = time.perf_counter()
    score = class_probability(pool_before_relu(fast), c, workers=workers)  # the same scores, sooner
    full, empty = end_scores(score, x)  # each curve's ends, the same for every method
    rows, curves, road_curves = [], {}, {}
    for name, m in maps.items():
        started = time.perf_counter()
        cv = deletion_insertion(score, x, m, per_step=DELETION_STEP, full=full, empty=empty)
        fractions, morf = road(score, x, m, rng, most_relevant_first=True, workers=workers)
        _, lerf = road(score, x, m, rng, most_relevant_first=False, workers=workers)
        curves[name] = {"deletion": cv.deletion.mean(axis=0).tolist(), "insertion": cv.insertion.mean(axis=0).tolist()}
        road_curves[name] = {"morf": morf.mean(axis=0).tolist(), "lerf": lerf.mean(axis=0).tolist()}
        rows.append({"method": name,
                     "deletion": summary(cv.per_image_auc("deletion"), rng),
                     "insertion": summary(cv.per_image_auc("insertion"), rng),
                     # ROAD: the probability left, averaged over the removed fractions
                     "morf": summary(morf.mean(axis=1), rng), "lerf": summary(lerf.mean(axis=1), rng)})
        timings[f"curves {name}"] = time.perf_counter() - started
    timings["curves"] = time.perf_counter() - start

    # the sanity checks, on the first tenth of the images (at least 10)
    r = min(n, max(10, n // 10))
    xr, cr = x[:r], c[:r]
    rrng = rngs["randomization"]
    start = time.perf_counter()
    nets = {"top": fold_batchnorm(randomized(model, rrng, top=1)), "all": fold_batchnorm(randomized(model, rrng))}
    for key, net in nets.items():
        for row in rows:
            m = maps_of(table[row["method"]], net, xr, cr, seeds[row["method"]], workers)
            row[f"model_{key}"] = summary(spearman(maps[row["method"]][:r], m), rng)
    timings["model randomisation"] = time.perf_counter() - start

    start = time.perf_counter()
    shuffled, record = train_shuffled(data, rrng, idx[:r], workers)
    timings["shuffled training"] = time.perf_counter() - start
    start = time.perf_counter()
    shuffled_fast = fold_batchnorm(shuffled)
    shown = min(3, r)
    data_maps = {}
    for row in rows:
        m = maps_of(table[row["method"]], shuffled_fast, xr, cr, seeds[row["method"]], workers)
        row["data"] = summary(spearman(maps[row["method"]][:r], m), rng)
        data_maps[row["method"]] = np.stack([maps[row["method"]][:shown], m[:shown]])  # (2, shown, H, W)
    timings["data randomisation"] = time.perf_counter() - start

    start = time.perf_counter()
    epochs = over_training(run, xr, cr, layer, {k: table[k] for k in ("Grad-CAM", "saliency", "random")}, seeds, rng, workers)
    timings["over training"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - clock

    context = {
        "images": int(n), "sanity_images": int(r), "per_step": DELETION_STEP, "road_fractions": list(fractions),
        "ig_steps": IG_STEPS, "blur_sigma": BLUR_SIGMA, "smoothgrad_samples": SMOOTHGRAD_SAMPLES,
        "fractions": cv.fractions.tolist(),
        "table": rows, "curves": curves, "road_curves": road_curves, "shuffled": record,
        "over_training": epochs, "readings": readings(rows),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    arrays = {"indices": idx, "examples": {name: m[:4] for name, m in maps.items()}, "data_maps": data_maps}
    return context, arrays


def over_training(run, x, classes, layer, chosen, seeds, rng, workers):
    """For each snapshot of training: each chosen method's deletion area under that snapshot's network, and the
    rank correlation of its maps with those at initialisation and at the end. The random map's deletion area is
    the baseline of each epoch: an untrained network's probabilities are near 1/K whatever is deleted."""
    nets = {epoch: fold_batchnorm(run.model_at(epoch)) for epoch in sorted(run.snapshots)}
    first, last = min(nets), max(nets)
    scores = {e: class_probability(pool_before_relu(net), classes, workers) for e, net in nets.items()}
    ends = {e: end_scores(score, x) for e, score in scores.items()}
    out = {}
    for name, fn in chosen.items():
        maps = {e: maps_of(fn, net, x, classes, seeds[name], workers) for e, net in nets.items()}
        # only the deletion curve is reported per epoch
        out[name] = [{"epoch": int(e),
                      "deletion": summary(deletion_insertion(scores[e], x, maps[e], per_step=DELETION_STEP,
                                                             full=ends[e][0], empty=ends[e][1], kinds=("deletion",))
                                          .per_image_auc("deletion"), rng),
                      "vs_start": summary(spearman(maps[e], maps[first]), rng),
                      "vs_end": summary(spearman(maps[e], maps[last]), rng)} for e, net in nets.items()]
    return out


def _separated(a, b, lower_is_better):
    """True when interval a is entirely on the better side of interval b."""
    return a[1] < b[0] if lower_is_better else a[0] > b[1]


def readings(rows):
    """Facts for the chapter's plain reading, from the intervals alone.

    For each metric: the best method by its mean, the methods whose interval overlaps the
    best one's (not distinguishable from it on these images), and the methods whose interval
    is not clearly on the better side of the random map's."""
    random = next(r for r in rows if r["method"] == "random")
    out = {}
    for key, lower in (("deletion", True), ("insertion", False), ("morf", True), ("lerf", False)):
        real = [r for r in rows if r["method"] != "random" and r[key]["mean"] is not None]
        best = (min if lower else max)(real, key=lambda r: r[key]["mean"])
        out[key] = {
            "best": best["method"],
            "tied": [r["method"] for r in real if r is not best
                     and not _separated(best[key]["ci"], r[key]["ci"], lower)],
            "not_better_than_random": [r["method"] for r in real
                                       if not _separated(r[key]["ci"], random[key]["ci"], lower)],
        }
    for key in ("model_top", "model_all", "data"):
        out[key] = {
            # a map that keeps a rank correlation above 0.5 with the trained network's has not changed much
            "unchanged": [r["method"] for r in rows if r["method"] != "random" and r[key]["mean"] is not None
                          and r[key]["ci"][0] > 0.5],
            "changed": [r["method"] for r in rows if r["method"] != "random" and r[key]["mean"] is not None
                        and r[key]["ci"][1] < 0.5],
        }
    # the methods whose maps changed in all three randomisation checks, and the most faithful of them
    passing = [r for r in rows if all(r["method"] in out[k]["changed"] for k in ("model_top", "model_all", "data"))]
    out["sane"] = {"methods": [r["method"] for r in passing],
                   "best_deletion": min(passing, key=lambda r: r["deletion"]["mean"])["method"] if passing else None}
    return out
