"""Figures of the Grad-CAM chapters and of each gallery image's breakdown page.

Small maps -- the ten class overlays and the other methods of every gallery
image -- are written straight to PNG from their arrays (a colour map applied in
NumPy, saved with Pillow), not drawn as matplotlib figures: they are cheap, and
the browser scales them up pixel for pixel. Only the panels with axes, numbers
and colour bars are matplotlib figures.
"""

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from .figures import (C_ACCENT, C_TEST, C_TRAIN, DIVERGING, INK, MAPS, _blank, _entry)

HEAT = "turbo"  # the heat map over the digit
METHOD_TITLES = {"saliency": "saliency |dy/dx|", "guided": "guided backprop",
                 "guided-gradcam": "guided Grad-CAM", "occlusion": "occlusion", "gradcampp": "Grad-CAM++",
                 "scorecam": "Score-CAM", "smoothgrad": "SmoothGrad", "ig-black": "integrated gradients, black",
                 "ig-blurred": "integrated gradients, blurred"}
CAM_LIKE = ("gradcampp", "scorecam")  # maps of a layer, upsampled: drawn over the image like Grad-CAM


def _png(out_dir, name, rgb, alt, caption, **extra):
    """Write an (H, W, 3) uint8 array as figures/<name>.png; entry shown at 4 px per pixel."""
    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    h, w = rgb.shape[:2]
    scale = max(1, 112 // max(h, w))
    return {"name": name, "src": f"figures/{name}.png", "alt": alt, "caption": caption, "width": w * scale,
            "height": h * scale, "pixelated": True, **extra}


def _colour(values, cmap, lo, hi):
    norm = np.clip((values - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return matplotlib.colormaps[cmap](norm)[..., :3]


def overlay(image, heat):
    """The digit in grey with a heat map over it; heat in [0, 1]. (H, W, 3) uint8."""
    grey = np.repeat((1 - 0.6 * image)[..., None], 3, axis=2)  # ink dark grey on white
    alpha = (0.75 * heat)[..., None]  # no evidence: the digit as it is
    rgb = (1 - alpha) * grey + alpha * _colour(heat, HEAT, 0, 1)
    return (rgb * 255).round().astype(np.uint8)


def _map_png(values):
    """A non-negative map on its own scale, as an RGB array."""
    peak = values.max()
    return (_colour(values, MAPS, 0, peak if peak > 0 else 1) * 255).round().astype(np.uint8)


# ---------------------------------------------------------------- one gallery image

def gallery_item(f, out_dir, g):
    """Every figure of gallery image number g (its position in the gallery)."""
    item = f.gallery[g]
    a = f.gallery_arrays
    names = f.class_names
    i, c = item["index"], item["pred"]
    image = f.x_test[i, 0]
    base = f"gallery/{i}"
    who = f"test image #{i} (a {names[item['label']]})"
    entries = [_probabilities(out_dir, base, image, a["probabilities"][g], item, names)]
    entries.append(_feature_grid(out_dir, f"{base}/features", a["activations"][g], DIVERGING if
                                 a["activations"][g].min() < 0 else MAPS, "feature maps",
                                 f"All {a['activations'].shape[1]} feature maps A^k of {f.layer} for {who}, "
                                 "on one colour scale.",
                                 f"The {a['activations'].shape[1]} feature maps <i>A</i><sup>k</sup> of "
                                 f"<code>{f.layer}</code> for this image, one colour scale for all."))
    entries.append(_feature_grid(out_dir, f"{base}/gradients", a["gradients"][g, c], DIVERGING, "gradients",
                                 f"The gradient of the score of class {names[c]} with respect to each of the "
                                 f"{a['gradients'].shape[2]} feature maps, for {who}; red positive, blue negative.",
                                 f"How much the score of class {names[c]} moves when each activation moves: "
                                 "red raises it, blue lowers it."))
    entries.append(_weights(out_dir, base, a["weights"][g, c], names[c], who))
    entries.append(steps_figure(out_dir, f"{base}/steps", image, a["weighted_sum"][g, c], a["cam"][g, c],
                                a["normalized"][g, c], names[c], who))
    for k in range(a["normalized"].shape[1]):
        blank = a["cam"][g, k].max() == 0
        entries.append(_png(out_dir, f"{base}/class-{k}", overlay(image, a["normalized"][g, k]),
                            f"Grad-CAM of {who} for class {names[k]}" + (": an empty map, no positive evidence"
                                                                          if blank else ""),
                            f"class {names[k]} ({100 * item['probabilities'][k]:.1f} %)" + (" — empty" if blank
                                                                                            else ""), cls=k))
    for name, maps in f.methods.items():
        m = maps[g]
        rgb = overlay(image, m) if name.startswith("gradcam-") or name in CAM_LIKE else _map_png(m)
        title = f"Grad-CAM on {name.split('-', 1)[1]}" if name.startswith("gradcam-") else METHOD_TITLES[name]
        entries.append(_png(out_dir, f"{base}/method-{name}", rgb, f"{title} of {who} for class {names[c]}",
                            title))
    return entries


def _probabilities(out_dir, base, image, probs, item, names):
    fig = Figure(figsize=(6.2, 2.2), layout="constrained")
    a1, a2 = fig.subplots(1, 2, width_ratios=[1, 2.6])
    a1.imshow(image, cmap=INK, vmin=0, vmax=1)
    a1.set_title(f"#{item['index']}, labelled {names[item['label']]}")
    _blank(a1)
    colours = [C_TEST if k == item["pred"] else "#b9c3d3" for k in range(len(probs))]
    a2.bar(range(len(probs)), 100 * np.asarray(probs), color=colours)
    a2.set_xticks(range(len(probs)), names, rotation=30 if max(map(len, names)) > 2 else 0)
    a2.set_ylim(0, 105)
    a2.set_ylabel("probability (%)")
    p = item["probabilities"][item["pred"]]
    a2.text(item["pred"], 100 * p + 2, f"{100 * p:.1f} %", ha="center", fontsize=7)
    second = int(np.argsort(probs)[-2])
    return _entry(fig, out_dir, f"{base}/probs",
                  f"Test image #{item['index']}, labelled {names[item['label']]}, and the network's probabilities: "
                  f"{names[item['pred']]} {100 * p:.1f} %, next {names[second]} {100 * probs[second]:.1f} %.",
                  "The input and the probability the network gives each class.")


def _feature_grid(out_dir, name, maps, cmap, label, alt, caption):
    """All maps in one image: tiles of H x W in rows of 8, one pixel apart, numbered, on one colour scale.

    One mosaic in one axes rather than one axes per map: the same picture, drawn many times faster."""
    k, h, w = maps.shape
    cols = 8
    rows = -(-k // cols)
    lim = float(np.abs(maps).max()) or 1.0
    lo = -lim if cmap == DIVERGING else 0.0
    mosaic = np.full((rows * (h + 2) - 2, cols * (w + 2) - 2), np.nan)  # NaN: the gaps between tiles
    for j in range(k):
        r, c = divmod(j, cols)
        mosaic[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = maps[j]
    fig = Figure(figsize=(cols * 0.78 + 0.7, rows * 0.84 + 0.1), layout="constrained")
    ax = fig.subplots()
    _blank(ax)
    im = ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=lo, vmax=lim, interpolation="nearest")
    for j in range(k):
        r, c = divmod(j, cols)
        ax.text(c * (w + 2) + (w - 1) / 2, r * (h + 2) - 0.6, str(j), ha="center", va="bottom", fontsize=6.5)
        ax.add_patch(Rectangle((c * (w + 2) - 0.5, r * (h + 2) - 0.5), w, h, fill=False, lw=0.4, ec="#8a8a8a"))
    ax.set_ylim(rows * (h + 2) - 2.3, -2.2)
    ax.set_xlim(-0.7, cols * (w + 2) - 2.3)
    fig.colorbar(im, ax=ax, shrink=0.9, pad=0.01, aspect=30, label=label)
    return _entry(fig, out_dir, name, alt, caption)


def _weights(out_dir, base, w, class_name, who):
    order = np.argsort(-w, kind="stable")
    fig = Figure(figsize=(7.0, 2.3), layout="constrained")
    ax = fig.subplots()
    colours = [C_ACCENT if v > 0 else C_TRAIN for v in w[order]]
    marked = {0, 1, 2, len(w) - 3, len(w) - 2, len(w) - 1}  # the three largest and three most negative
    ax.bar(range(len(w)), w[order], color=colours, edgecolor=["black" if j in marked else "none" for j in range(len(w))],
           linewidth=0.9)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(w)), [str(j) for j in order], fontsize=6)
    ax.set_xlabel("channel k, sorted by its weight (outlined: the three largest and the three most negative)")
    ax.set_ylabel(r"$\alpha_k$")
    ax.margins(y=0.15)
    positive = int((w > 0).sum())
    return _entry(fig, out_dir, f"{base}/weights",
                  f"Bar chart of the {len(w)} channel weights alpha_k for class {class_name}, {who}, sorted: "
                  f"{positive} positive, the largest {w[order[0]]:.4f} (channel {order[0]}), the most negative "
                  f"{w[order[-1]]:.4f} (channel {order[-1]}).",
                  f"The weight <i>\u03b1</i><sub>k</sub> of each channel for class {class_name}, largest first: red "
                  "channels speak "
                  "for the class, blue ones against it.")


def steps_figure(out_dir, name, image, weighted, cam, normalized, class_name, who):
    """Weighted sum before and after the ReLU, the upsampled map, the overlay."""
    fig = Figure(figsize=(8.2, 2.35), layout="constrained")
    axes = fig.subplots(1, 4)
    lim = float(np.abs(weighted).max()) or 1.0
    im = axes[0].imshow(weighted, cmap=DIVERGING, vmin=-lim, vmax=lim)
    axes[0].set_title(r"$\sum_k \alpha_k A^k$ (before ReLU)")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    im = axes[1].imshow(cam, cmap=MAPS, vmin=0, vmax=float(cam.max()) if cam.max() > 0 else 1.0)
    axes[1].set_title("after the ReLU")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    axes[2].imshow(normalized, cmap=MAPS, vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title("upsampled, normalised")
    axes[3].imshow(overlay(image, normalized))
    axes[3].set_title("over the input")
    for ax in axes:
        _blank(ax)
    h, w = weighted.shape
    return _entry(fig, out_dir, name,
                  f"Grad-CAM for class {class_name}, {who}: the weighted sum of the {h}x{w} maps ranges from "
                  f"{weighted.min():.3f} to {weighted.max():.3f}; after the ReLU "
                  + ("nothing is left" if cam.max() == 0 else f"its peak is {cam.max():.3f}")
                  + "; then the map upsampled to the input's size and laid over it.",
                  f"From channel weights to heat map, for class {class_name}: the weighted sum of the maps, its "
                  "positive part, the same upsampled to 28 × 28, and over the input.")


# ---------------------------------------------------------------- chapter figures

def blank_steps(f, out_dir):
    b = f.blank
    g, c = b["position"], b["class"]
    item = f.gallery[g]
    a = f.gallery_arrays
    image = f.x_test[item["index"], 0]
    return steps_figure(out_dir, "gradcam-blank", image, a["weighted_sum"][g, c], a["cam"][g, c],
                        a["normalized"][g, c], f.class_names[c], f"test image #{item['index']}")


def trust_curves(f, out_dir):
    faith = f.faithfulness
    x = 100 * np.array(faith["fractions"])
    colours = {"Grad-CAM": C_ACCENT, "saliency": C_TRAIN, "occlusion": "#55a868", "random": "#999999"}
    fig = Figure(figsize=(7.4, 2.8), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    for name, curves in faith["mean_curves"].items():
        style = dict(color=colours.get(name, "black"), lw=1.6 if name != "random" else 1.2,
                     ls="--" if name == "random" else "-")
        auc = {r["method"]: r for r in faith["table"]}[name]
        a1.plot(x, curves["deletion"], label=f"{name} ({auc['deletion']:.3f})", **style)
        a2.plot(x, curves["insertion"], label=f"{name} ({auc['insertion']:.3f})", **style)
    a1.set_title("deletion: lower is better")
    a2.set_title("insertion: higher is better")
    for ax in (a1, a2):
        ax.set_xlabel("pixels removed (%)" if ax is a1 else "pixels inserted (%)")
        ax.set_ylabel("probability of the class")
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False, fontsize=7)
    table = ", ".join(f"{r['method']} {r['deletion']:.3f} / {r['insertion']:.3f}" for r in faith["table"])
    return _entry(fig, out_dir, "trust-curves",
                  f"Mean deletion and insertion curves over {faith['images']} test images, with the area under each "
                  f"curve (deletion / insertion): {table}.",
                  f"Deletion (left) and insertion (right), averaged over {faith['images']} test images: the "
                  "probability of the predicted class as the pixels a map ranks highest are removed from the "
                  "image, or put back into a blank one. In brackets, the area under each curve.")


def trust_randomization(f, out_dir):
    r = f.randomization
    fig = Figure(figsize=(6.4, 2.6), layout="constrained")
    ax = fig.subplots()
    labels = ["original"] + r["stages"]
    for name, colour in (("gradcam", C_ACCENT), ("guided", C_TRAIN)):
        values = [1.0] + [np.nan if v is None else v for v in r["rho"][name]["mean"]]
        ax.plot(range(len(labels)), values, "o-", color=colour,
                label="Grad-CAM" if name == "gradcam" else "guided backprop")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_xlabel("layers re-initialised, from the top down (cumulative)")
    ax.set_ylabel("Spearman rank correlation\nwith the original map")
    ax.set_ylim(-0.3, 1.05)
    ax.legend(frameon=False)
    values = {name: [v for v in r["rho"][name]["mean"]] for name in r["rho"]}
    return _entry(fig, out_dir, "trust-randomization",
                  f"Line chart of the mean Spearman correlation between original and randomised maps over "
                  f"{r['images']} images, as layers {', '.join(r['stages'])} are re-initialised in turn. Grad-CAM: "
                  + ", ".join("n/a" if v is None else f"{v:.2f}" for v in values["gradcam"])
                  + "; guided backpropagation: " + ", ".join("n/a" if v is None else f"{v:.2f}" for v in values["guided"])
                  + ".",
                  "How much each method's map still resembles the original as the trained weights are replaced "
                  "by random ones, layer by layer from the output down. 1 means unchanged.")


def trust_examples(f, out_dir):
    maps = f.randomization_maps  # method -> [original, after stage 1, ...], each (n, H, W)
    stages = ["original"] + f.randomization["stages"]
    images = f.randomization_images
    shown = min(2, len(images))
    rows = [(name, j) for j in range(shown) for name in ("gradcam", "guided")]
    fig = Figure(figsize=(len(stages) * 0.95 + 0.6, len(rows) * 1.0 + 0.3), layout="constrained")
    axes = fig.subplots(len(rows), len(stages), squeeze=False)
    for r, (name, j) in enumerate(rows):
        for s, ax in enumerate(axes[r]):
            m = maps[name][s][j]
            ax.imshow(m, cmap=MAPS, vmin=0, vmax=m.max() if m.max() > 0 else 1)
            _blank(ax)
            if r == 0:
                ax.set_title(stages[s], fontsize=7)
        axes[r, 0].set_ylabel(f"#{images[j]}\n{'Grad-CAM' if name == 'gradcam' else 'guided BP'}",
                              rotation=0, ha="right", va="center", fontsize=7)
    return _entry(fig, out_dir, "trust-examples",
                  f"Maps of {shown} test images under Grad-CAM and guided backpropagation as the layers are "
                  f"re-initialised from the top: {', '.join(stages)}.",
                  "The maps themselves, stage by stage. Each map is on its own scale.")


def demo_samples(f, out_dir):
    """The demo's test digits with NumPy's Grad-CAM map, for the page without JavaScript."""
    d, names = f.demo, f.class_names
    entries = []
    for j, i in enumerate(d["indices"]):
        c = int(d["pred"][j])
        entries.append(_png(out_dir, f"demo/{i}", overlay(f.x_test[i, 0], d["cam"][j]),
                            f"Test image #{i}, a {names[f.y_test[i]]}, with its Grad-CAM map for class "
                            f"{names[c]}", f"#{i}: says {names[c]}, {100 * d['proba'][j].max():.1f} %"))
    return entries


def over_training(f, out_dir):
    """Grad-CAM of the first gallery images after every epoch, one row per image."""
    maps = f.over_training  # (epochs + 1, images, H, W)
    epochs, n = maps.shape[0], min(4, maps.shape[1])
    fig = Figure(figsize=(1.05 * epochs + 0.5, 1.1 * n + 0.35), layout="constrained")
    axes = fig.subplots(n, epochs, squeeze=False)
    for r in range(n):
        item = f.gallery[r]
        for e in range(epochs):
            ax = axes[r, e]
            _blank(ax)
            ax.imshow(overlay(f.x_test[item["index"], 0], maps[e, r]))
            if r == 0:
                ax.set_title("start" if e == 0 else f"epoch {e}", fontsize=8)
        axes[r, 0].set_ylabel(f"#{item['index']}", fontsize=8)
    names = f.class_names
    rows = "; ".join(f"#{f.gallery[r]['index']} ({names[f.gallery[r]['pred']]})" for r in range(n))
    return _entry(fig, out_dir, "explorer-over-training",
                  f"Grad-CAM maps at {f.layer} of {n} gallery images, one row each ({rows}), for the class the "
                  f"final network chooses, from initialisation (left) to the last epoch (right).",
                  f"The same {n} test images, the Grad-CAM map of the final answer's class at {f.layer} under the "
                  "network at initialisation and after each epoch.")


def jobs(f):
    out = [(gallery_item, (g,)) for g in range(len(f.gallery))]
    if f.over_training is not None:
        out.append((over_training, ()))
    out.append((demo_samples, ()))
    out += [(trust_curves, ()), (trust_randomization, ()), (trust_examples, ())]
    if f.blank:
        out.append((blank_steps, ()))
    return out
