"""Explanations for the site: the gallery, Grad-CAM of every step, other methods, and the trust tests.

Two steps, each returning a JSON-able context and the arrays its figures are
drawn from: ``explain_gallery`` (the gallery, picked by a seeded rule; its
Grad-CAM maps for all ten classes come from one batched pass per image) and
``explain_trust`` (the trust chapter's measurements, report/trust.py, over a
stratified, seeded set of test images). The build draws the gallery's figures
while the second runs; ``merged`` joins their contexts.
"""

import time

import numpy as np

from cnn.attribution import (blur, cascading_randomization, class_scores, grad_cam_plus_plus, guided_backprop,
                             integrated_gradients, occlusion, saliency, score_cam, smoothgrad)
from cnn.gradcam import block_outputs, grad_cam
from cnn.model import fold_batchnorm

from . import trust
from .trust import BLUR_SIGMA, IG_STEPS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES

CONFIDENT = 0.99


def pick_gallery(proba, labels, n, rng):
    """Exactly min(n, len(labels)) test indices for the gallery, and why each was picked.

    A third (rounded up) are confident correct answers, one class after another
    (a random one among those above 99 % for that class); then the most
    confident mistakes, up to a third; then the hesitant correct answers, lowest
    confidence first, fill the rest. When one kind runs short, the next fills in.
    """
    n = min(n, len(labels))
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    correct = pred == labels
    k = proba.shape[1]
    picks, reasons = [], []
    for j in range(-(-n // 3)):
        pool = np.flatnonzero(correct & (labels == j % k) & (conf >= CONFIDENT))
        pool = np.setdiff1d(pool, picks)
        if len(pool):
            picks.append(int(rng.choice(pool)))
            reasons.append("confident")
    wrong = np.flatnonzero(~correct)
    wrong = [int(i) for i in wrong[np.argsort(-conf[wrong], kind="stable")]][: max(0, min(n // 3, n - len(picks)))]
    taken = set(picks)
    rest = np.argsort(np.where(correct, conf, 2.0 + conf), kind="stable")  # hesitant right answers first
    hesitant = [int(i) for i in rest if int(i) not in taken and int(i) not in wrong][: n - len(picks) - len(wrong)]
    picks += hesitant + wrong
    reasons += ["hesitant" if correct[i] else "mistake" for i in hesitant] + ["mistake"] * len(wrong)
    return picks, reasons


def _methods(layer):
    return {
        "gradcam": lambda m, x, c: grad_cam(m, x, c, layer).upsampled,
        "guided": lambda m, x, c: guided_backprop(m, x, c),
    }


def merged(gallery_context, trust_context):
    """The Grad-CAM and trust chapters' context ("explain"): explain_gallery's and explain_trust's."""
    timings = dict(gallery_context["timings"], **trust_context["timings"])
    return {**gallery_context, **trust_context, "timings": timings}


def explain_gallery(config, run, data, proba, rngs):
    """(context, arrays) of the gallery: Grad-CAM of every gallery image for every class, with every step,
    and every other method's map of it. rngs["gallery"] is the one stream it draws from."""
    model = run.model
    timings = {}
    start = time.perf_counter()
    labels, x = data.y_test, data.x_test
    k = proba.shape[1]
    blocks = list(block_outputs(model))
    last = blocks[-1]
    picks, reasons = pick_gallery(proba, labels, config.gallery, rngs["gallery"])
    pred = proba.argmax(axis=1)
    fast = fold_batchnorm(model)  # for the explanations made of forward passes only

    # Grad-CAM of every gallery image for all ten classes: one batch of (image, class) pairs
    xg = x[picks]
    cams = grad_cam(model, np.repeat(xg, k, axis=0), np.tile(np.arange(k), len(picks)), last)
    shape = lambda a: a.reshape((len(picks), k) + a.shape[1:])
    gallery_arrays = {
        "activations": shape(cams.activations)[:, 0],  # the same for every class of an image
        "gradients": shape(cams.gradients), "weights": shape(cams.weights),
        "weighted_sum": shape(cams.weighted_sum), "cam": shape(cams.cam),
        "upsampled": shape(cams.upsampled), "normalized": shape(cams.normalized),
        "probabilities": shape(cams.probabilities)[:, 0], "scores": shape(cams.scores)[:, 0],
    }
    gp = pred[picks]
    others = {f"gradcam-{b}": grad_cam(model, xg, gp, b).normalized for b in blocks if b != last}
    gb = guided_backprop(model, xg, gp)
    ig = {"black": np.zeros_like(xg), "blurred": blur(xg, BLUR_SIGMA)}
    ig_maps = {k: integrated_gradients(model, xg, gp, b, IG_STEPS) for k, b in ig.items()}
    # completeness: the attributions add up to y^c(x) - y^c(baseline), up to the midpoint rule's error
    score = class_scores(model, xg, gp)
    target = {k: score - class_scores(model, b, gp) for k, b in ig.items()}
    gaps = {k: np.abs(ig_maps[k].sum(axis=(1, 2, 3)) - target[k]) / np.maximum(np.abs(target[k]), 1e-12) for k in ig}
    methods = {
        "saliency": saliency(model, xg, gp),
        "guided": gb,
        "guided-gradcam": gb * gallery_arrays["upsampled"][np.arange(len(picks)), gp],
        "occlusion": occlusion(fast, xg, gp),
        "gradcampp": grad_cam_plus_plus(model, xg, gp, last),
        "scorecam": score_cam(fast, xg, gp, last),
        "smoothgrad": smoothgrad(model, xg, gp, rngs["gallery"], SMOOTHGRAD_SAMPLES, SMOOTHGRAD_NOISE),
        # integrated gradients from a black and a blurred image
        "ig-black": trust.evidence_map(ig_maps["black"]),
        "ig-blurred": trust.evidence_map(ig_maps["blurred"]),
        **others,
    }
    timings["gallery_explanations"] = time.perf_counter() - start

    gallery = []
    for g, (i, why) in enumerate(zip(picks, reasons)):
        c = int(gp[g])
        w = gallery_arrays["weights"][g, c]
        order = np.argsort(-w, kind="stable")
        zero_classes = [int(j) for j in range(k) if gallery_arrays["cam"][g, j].max() == 0]
        gallery.append({
            "index": int(i), "label": int(labels[i]), "pred": c, "why": why,
            "confidence": float(proba[i, c]), "correct": bool(c == labels[i]),
            "probabilities": [float(p) for p in gallery_arrays["probabilities"][g]],
            "top_channels": [int(j) for j in order[:3]], "bottom_channels": [int(j) for j in order[-3:][::-1]],
            "weights": [float(v) for v in w],
            "worked_channel": int(order[0]),
            "worked_gradient": (gallery_arrays["gradients"][g, c, order[0]].round(5) + 0.0).tolist(),
            "alpha": float(w[order[0]]),
            "positive_channels": int((w > 0).sum()), "channels": int(len(w)),
            "zero_classes": zero_classes,
            "cam_max": float(gallery_arrays["cam"][g, c].max()),
        })

    # a worked example for the step-by-step chapter, and a class whose map is blank
    worked = next((g for g, item in enumerate(gallery) if item["why"] == "confident"), 0)
    blank = _blank_example(gallery, gallery_arrays)

    context = {
        "gallery": gallery, "layer": last, "layers": blocks, "methods": list(methods),
        "layer_shape": list(gallery_arrays["activations"].shape[2:]),
        "channels": int(gallery_arrays["activations"].shape[1]),
        "worked": worked, "blank": blank,
        "timings": {k2: round(v, 3) for k2, v in timings.items()},
    }
    arrays = {"gallery": gallery_arrays, "methods": methods, "picks": np.array(picks),
              # integrated gradients' completeness on the gallery, reported in the trust chapter
              "completeness": {k: {"median": float(np.median(g)), "max": float(g.max()), "steps": IG_STEPS}
                               for k, g in gaps.items()}}
    return context, arrays


def explain_trust(config, run, data, proba, rngs, last, completeness):
    """(context, arrays) of the trust chapter: report/trust.py's measurements on a stratified set of test
    images and the cascading randomisation of the weights, for the block `last`; completeness is
    explain_gallery's. rngs["faithfulness"] and rngs["randomization"] are the streams it draws from."""
    model = run.model
    timings = {}
    start = time.perf_counter()
    measured, trust_arrays = trust.measure(model, fold_batchnorm(model), run, data, proba, rngs, last,
                                           config.faithfulness, config.jobs)
    timings["trust"] = time.perf_counter() - start
    measured["completeness"] = completeness
    start = time.perf_counter()
    sanity = randomization(model, data, proba, rngs["randomization"], last, trust_arrays["indices"][: measured["sanity_images"]])
    timings["randomization"] = time.perf_counter() - start
    context = {"trust": measured, "randomization": {k2: v for k2, v in sanity.items() if k2 != "maps"},
               "timings": {k2: round(v, 3) for k2, v in timings.items()}}
    arrays = {"trust": trust_arrays, "randomization_maps": sanity["maps"],
              "randomization_images": trust_arrays["indices"][: len(next(iter(sanity["maps"].values()))[0])]}
    return context, arrays


def _blank_example(gallery, arrays):
    """(gallery position, class) of a map that the ReLU wiped out entirely, preferring one with every alpha < 0."""
    best = None
    for g, item in enumerate(gallery):
        for c in item["zero_classes"]:
            all_negative = bool((arrays["weights"][g, c] < 0).all())
            candidate = {"position": g, "class": c, "all_negative": all_negative,
                         "negative": int((arrays["weights"][g, c] < 0).sum()),
                         "min": float(arrays["weighted_sum"][g, c].min()),
                         "max": float(arrays["weighted_sum"][g, c].max())}
            if best is None or (all_negative and not best["all_negative"]):
                best = candidate
    return best


def chunked(fn, x, classes, size=100):
    """fn(images, classes) over slices of `size` images, joined: the same maps in bounded memory
    (a pass keeps every layer's output). fn may return an array or a nested dict of arrays."""
    return _join([fn(x[i : i + size], classes[i : i + size]) for i in range(0, len(x), size)])


def _join(parts):
    if isinstance(parts[0], dict):
        return {key: _join([p[key] for p in parts]) for key in parts[0]}
    return np.concatenate(parts)


def randomization(model, data, proba, rng, layer, indices):
    """Cascading randomisation of the weights, top down, for Grad-CAM and guided backpropagation."""
    idx = indices
    x, c = data.x_test[idx], proba[idx].argmax(axis=1)
    stages, rho, maps = cascading_randomization(model, x, c, rng, _methods(layer))
    summary = {}
    for name, r in rho.items():
        summary[name] = {"mean": [float(np.nanmean(s)) if np.isfinite(s).any() else None for s in r],
                         "undefined": [int(np.isnan(s).sum()) for s in r]}
    return {"images": int(len(idx)), "stages": stages, "rho": summary,
            "maps": {name: [m[:4] for m in ms] for name, ms in maps.items()}}
