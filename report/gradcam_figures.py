"""Figures of the Grad-CAM chapters and of each gallery image's breakdown page.

Small maps -- the ten class overlays and the other methods of every gallery
image -- are written straight to PNG from their arrays (a colour map applied in
NumPy, saved with Pillow), not drawn as matplotlib figures: they are cheap, and
the browser scales them up pixel for pixel. The rest of a gallery page is not
matplotlib either: a layer's feature maps and their gradients (``map_grid``) and
Grad-CAM's last steps (``steps_figure``) are small PNGs inside the page, their
numbers, titles and colour bars HTML text; the probabilities and the channel
weights are tables (``probability_bars``, ``weight_bars``). Only the chapters'
charts with axes and curves (the trust chapter's, the maps over training) are
matplotlib figures.
"""

import base64
import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from .context import pretty
from .figures import (C_ACCENT, C_TEST, C_TRAIN, COLUMN, DIVERGING, INK, MAPS, _blank, _entry,
                      for_a_phone)
from .words import with_article

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


def _rgb(values, cmap, lo, hi):
    """values through the colour map, lo to hi, as an (..., 3) uint8 array."""
    return (_colour(values, cmap, lo, hi) * 255).round().astype(np.uint8)


def _png_uri(rgb):
    """An (H, W, 3) uint8 array as a data: URI of a PNG, for an <img> inside the page."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _css_gradient(cmap, stops=11):
    """The colour map as a CSS linear-gradient, left to right: the page's colour bar."""
    colours = (matplotlib.colormaps[cmap](np.linspace(0, 1, stops))[:, :3] * 255).round().astype(int)
    return "linear-gradient(to right, " + ", ".join(
        f"rgb({r}, {g}, {b}) {100 * j / (stops - 1):g}%" for j, (r, g, b) in enumerate(colours)) + ")"


def _tick(value):
    return f"{value:.3g}".replace("-", "−")


def map_grid(name, maps, cmap, label, alt, caption):
    """Every map of a layer, on one colour scale: (K, H, W) -> an entry the pages show as a grid of K small
    images (data: URIs, scaled up pixel for pixel) under their channel numbers, with a colour bar in HTML.

    No matplotlib figure: the words are the page's own text, in its colours, light or dark."""
    lim = float(np.abs(maps).max()) or 1.0
    lo = -lim if cmap == DIVERGING else 0.0
    return {"name": name, "kind": "map-grid", "alt": pretty(alt), "caption": pretty(caption),
            "tiles": [_png_uri(_rgb(m, cmap, lo, lim)) for m in maps],
            "tile_height": int(maps.shape[1]), "tile_width": int(maps.shape[2]), "scale": _scale(cmap, lo, lim, label)}


def _scale(cmap, lo, hi, label=""):
    """An HTML colour bar: the colour map as a CSS gradient, its ends (and 0 between them, if it is signed)."""
    ticks = [lo, 0.0, hi] if lo < 0 < hi else [lo, hi]
    return {"label": label, "gradient": _css_gradient(cmap), "ticks": [_tick(t) for t in ticks]}


def overlay(image, heat):
    """The digit in grey with a heat map over it; heat in [0, 1]. (H, W, 3) uint8."""
    grey = np.repeat((1 - 0.6 * image)[..., None], 3, axis=2)  # ink dark grey on white
    alpha = (0.75 * heat)[..., None]  # no evidence: the digit as it is
    rgb = (1 - alpha) * grey + alpha * _colour(heat, HEAT, 0, 1)
    return (rgb * 255).round().astype(np.uint8)


def _map_png(values):
    """A non-negative map on its own scale, as an RGB array."""
    peak = values.max()
    return _rgb(values, MAPS, 0, peak if peak > 0 else 1)


# ---------------------------------------------------------------- one gallery image

def gallery_item(f, out_dir, g):
    """Every figure of gallery image number g (its position in the gallery)."""
    item = f.gallery[g]
    a = f.gallery_arrays
    names = f.class_names
    i, c = item["index"], item["pred"]
    image = f.x_test[i, 0]
    base = f"gallery/{i}"
    who = f"test image #{i} ({with_article(names[item['label']])})"
    entries = [probability_bars(f"{base}/probs", image, a["probabilities"][g], item, names)]
    acts, grads = a["activations"][g], a["gradients"][g, c]
    entries.append(map_grid(f"{base}/features", acts, DIVERGING if acts.min() < 0 else MAPS, "activation",
                            f"All {len(acts)} feature maps A^k of {f.layer} for {who}, on one colour scale "
                            f"from {_tick(min(0.0, float(acts.min())))} to {_tick(float(np.abs(acts).max()))}.",
                            f"The {len(acts)} feature maps <i>A</i><sup>k</sup> of <code>{f.layer}</code> for this "
                            "image, numbered by channel, one colour scale for all."))
    entries.append(map_grid(f"{base}/gradients", grads, DIVERGING, "gradient",
                            f"The gradient of the score of class {names[c]} with respect to each of the "
                            f"{len(grads)} feature maps, for {who}; red positive, blue negative, on one scale of "
                            f"±{_tick(float(np.abs(grads).max()))}.",
                            f"How much the score of class {names[c]} moves when each activation moves, numbered by "
                            "channel: red raises it, blue lowers it."))
    entries.append(weight_bars(f"{base}/weights", a["weights"][g, c], names[c], who))
    entries.append(steps_figure(f"{base}/steps", image, a["weighted_sum"][g, c], a["cam"][g, c],
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


def probability_bars(name, image, probs, item, names):
    """The input and the network's probability for each class, in class order, as an HTML table beside the
    input (a small PNG in the page): each class's probability as text and a bar from 0 to 100 %, the
    predicted class in its own colour. No matplotlib figure."""
    p = item["probabilities"][item["pred"]]
    second = int(np.argsort(probs)[-2])
    rows = [{"label": names[k], "value": f"{100 * float(q):.1f} %", "sign": "pos" if k == item["pred"] else "neg",
             "width": round(100 * float(q), 2), "marked": k == item["pred"]} for k, q in enumerate(probs)]
    return {"name": name, "kind": "bars", "one_sided": True, "rows": rows, "colours": [C_TEST, "#b9c3d3"],
            "head": ["class", "probability"],
            "input": {"src": _png_uri(_rgb(image, INK, 0, 1)),
                      "width": int(image.shape[1]), "height": int(image.shape[0]),
                      "alt": f"test image #{item['index']}", "label": f"#{item['index']}, labelled "
                                                                        f"{names[item['label']]}"},
            "alt": pretty(f"Test image #{item['index']}, labelled {names[item['label']]}, and the network's "
                          f"probabilities: {names[item['pred']]} {100 * p:.1f} %, next {names[second]} "
                          f"{100 * probs[second]:.1f} %."),
            "caption": pretty("The input and the probability the network gives each class.")}


def weight_bars(name, w, class_name, who):
    """The channel weights, largest first, as an HTML table: each channel's number and weight as text, and a
    bar from a zero line in the middle (red for the class, blue against it), on the scale of the largest
    |weight|. The three largest and the three most negative are outlined. No matplotlib figure."""
    order = np.argsort(-w, kind="stable")
    peak = float(np.abs(w).max()) or 1.0
    marked = {0, 1, 2, len(w) - 3, len(w) - 2, len(w) - 1}
    rows = [{"label": int(k), "value": f"{w[k]:.4f}".replace("-", "\u2212"), "sign": "pos" if w[k] > 0 else "neg",
             "width": round(100 * abs(float(w[k])) / peak, 2), "marked": j in marked} for j, k in enumerate(order)]
    positive = int((w > 0).sum())
    return {"name": name, "kind": "bars", "one_sided": False, "input": None, "rows": rows,
            "colours": [C_ACCENT, C_TRAIN], "head": ["channel", "weight"],
            "alt": pretty(f"The {len(w)} channel weights alpha_k for class {class_name}, {who}, sorted: {positive} "
                          f"positive, the largest {w[order[0]]:.4f} (channel {order[0]}), the most negative "
                          f"{w[order[-1]]:.4f} (channel {order[-1]})."),
            "caption": pretty(f"The weight <i>\u03b1</i><sub>k</sub> of each channel for class {class_name}, largest "
                              "first: red channels speak for the class, blue ones against it. Outlined: the three "
                              "largest and the three most negative.")}


def steps_figure(name, image, weighted, cam, normalized, class_name, who):
    """Grad-CAM's last steps as four small images in the page, each under its title, with HTML colour bars:
    the weighted sum of the maps, its positive part (the ReLU), that upsampled to the input's size and
    normalised, and laid over the input. No matplotlib figure."""
    lim = float(np.abs(weighted).max()) or 1.0
    peak = float(cam.max()) if cam.max() > 0 else 1.0
    panels = [
        {"title": "1. weighted sum <i>\u2211</i><sub>k</sub> <i>\u03b1</i><sub>k</sub><i>A</i><sup>k</sup>",
         "alt": "the weighted sum of the maps",
         "rgb": _rgb(weighted, DIVERGING, -lim, lim), "scale": _scale(DIVERGING, -lim, lim)},
        {"title": "2. after the ReLU", "alt": "its positive part",
         "rgb": _rgb(cam, MAPS, 0, peak), "scale": _scale(MAPS, 0, peak)},
        {"title": "3. upsampled, normalised", "alt": "upsampled and normalised",
         "rgb": _rgb(normalized, MAPS, 0, 1), "scale": _scale(MAPS, 0, 1)},
        {"title": "4. over the input", "alt": "the heat map over the input", "rgb": overlay(image, normalized)},
    ]
    for panel in panels:
        rgb = panel.pop("rgb")
        panel.update(src=_png_uri(rgb), width=int(rgb.shape[1]), height=int(rgb.shape[0]))
    h, w = weighted.shape
    return {"name": name, "kind": "panels", "panels": panels,
            "alt": pretty(f"Grad-CAM for class {class_name}, {who}: the weighted sum of the {h}x{w} maps ranges from "
                          f"{weighted.min():.3f} to {weighted.max():.3f}; after the ReLU "
                          + ("nothing is left" if cam.max() == 0 else f"its peak is {cam.max():.3f}")
                          + "; then the map upsampled to the input's size and laid over it."),
            "caption": pretty(f"From channel weights to heat map, for class {class_name}: the weighted sum of the "
                              f"maps, its positive part, the same upsampled to {image.shape[0]} × {image.shape[1]}, "
                              "and over the input.")}


# ---------------------------------------------------------------- chapter figures

def blank_steps(f, out_dir):
    b = f.blank
    g, c = b["position"], b["class"]
    item = f.gallery[g]
    a = f.gallery_arrays
    image = f.x_test[item["index"], 0]
    return steps_figure("gradcam-blank", image, a["weighted_sum"][g, c], a["cam"][g, c],
                        a["normalized"][g, c], f.class_names[c], f"test image #{item['index']}")


# One colour per method of the trust chapter, the same in every figure; the CAM family in reds,
# the gradient family in blues and greens, occlusion in brown, the random map grey and dashed.
TRUST_COLOURS = {"Grad-CAM": "#c44e52", "Grad-CAM++": "#e17c05", "Score-CAM": "#b07aa1", "saliency": "#4c72b0",
                 "SmoothGrad": "#64b5cd", "IG (black)": "#2a9d8f", "IG (blurred)": "#8ab17d",
                 "guided backprop": "#1d3557", "Guided Grad-CAM": "#e377c2", "occlusion": "#8c564b",
                 "random": "#888888"}


def _own_scale(ax, m):
    """A non-negative map on its own scale: 0 to its largest value (or to 1 if it is all 0)."""
    ax.imshow(m, cmap=MAPS, vmin=0, vmax=m.max() if m.max() > 0 else 1)


def _method_line(name):
    return dict(color=TRUST_COLOURS.get(name, INK), lw=1.2 if name == "random" else 1.5,
                ls="--" if name == "random" else "-")


@for_a_phone
def trust_curves(f, out_dir):
    t = f.trust
    rows = {r["method"]: r for r in t["table"]}
    panels = [("deletion", "deletion: lower is better", "pixels blanked (%)", t["fractions"], t["curves"]),
              ("insertion", "insertion: higher is better", "pixels put back (%)", t["fractions"], t["curves"]),
              ("morf", "ROAD, most relevant first: lower is better", "pixels imputed (%)", t["road_fractions"],
               t["road_curves"]),
              ("lerf", "ROAD, least relevant first: higher is better", "pixels imputed (%)", t["road_fractions"],
               t["road_curves"])]
    fig = Figure(figsize=(COLUMN, 10.2), layout="constrained")
    axes = fig.subplots(4, 1)
    for ax, (key, title, xlabel, fractions, curves) in zip(axes, panels):
        x = 100 * np.asarray(fractions)
        for name, cv in curves.items():
            ax.plot(x, cv[key], label=name, **_method_line(name))
        ax.set_title(title.replace(": ", ":\n") if len(title) > 32 else title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("probability\nof the class")
        ax.set_ylim(0, 1.02)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    numbers = "; ".join(f"{name}: deletion {r['deletion']['mean']:.3f}, insertion {r['insertion']['mean']:.3f}, "
                        f"ROAD MoRF {r['morf']['mean']:.3f}, LeRF {r['lerf']['mean']:.3f}" for name, r in rows.items())
    return _entry(fig, out_dir, "trust-curves",
                  f"Four line charts of the mean probability of the class over {t['images']} test images as "
                  f"pixels are blanked, put back, or imputed in the order each method ranks them. Mean areas: "
                  f"{numbers}.",
                  f"The four tests, averaged over {t['images']} test images, one line per method. First, pixels "
                  "blanked (deletion) or put back into a blank image (insertion), most important first. Then "
                  "ROAD, where removed pixels are filled from their neighbours instead of blanked, removing the "
                  "most relevant or the least relevant first.")


@for_a_phone
def trust_methods(f, out_dir):
    """Every method's map of the same test images, one row per method."""
    examples = f.trust_arrays["examples"]
    images = f.trust_arrays["indices"]
    names = list(examples)
    shown = min(3, len(images))
    side = (COLUMN - 1.3) / shown
    fig = Figure(figsize=(COLUMN, (len(names) + 1) * (side + 0.04) + 0.3), layout="constrained")
    axes = fig.subplots(len(names) + 1, shown, squeeze=False)
    for r in range(shown):
        axes[0, r].imshow(f.x_test[images[r], 0], cmap="gray_r")
        axes[0, r].set_title(f"#{images[r]}")
        for j, name in enumerate(names):
            _own_scale(axes[j + 1, r], examples[name][r])
    for ax in axes.flat:
        _blank(ax)
    for j, title in enumerate(["input"] + names):
        axes[j, 0].set_ylabel(title, rotation=0, ha="right", va="center")
    return _entry(fig, out_dir, "trust-methods",
                  f"Maps of {shown} test images ({', '.join('#' + str(i) for i in images[:shown])}) under each of "
                  f"the {len(names)} methods, one row per method: {', '.join(names)}.",
                  "The same test images under every method, each map on its own scale (brighter: ranked higher). "
                  "These are the maps the tests above rank the pixels by.")


@for_a_phone
def trust_data(f, out_dir):
    """Each method's maps under the trained network beside those of the network trained on shuffled labels."""
    data_maps = f.trust_arrays["data_maps"]  # method -> (2, shown, H, W)
    images = f.trust_arrays["indices"]
    names = [n for n in data_maps if n != "random"]
    shown = min(2, data_maps[names[0]].shape[1])
    side = (COLUMN - 1.4) / (2 * shown)
    fig = Figure(figsize=(COLUMN, len(names) * (side + 0.04) + 0.75), layout="constrained")
    axes = fig.subplots(len(names), 2 * shown, squeeze=False)
    for j, name in enumerate(names):
        for r in range(shown):
            for k in range(2):
                _own_scale(axes[j, 2 * r + k], data_maps[name][k, r])
        axes[j, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    for ax in axes.flat:
        _blank(ax)
    for r in range(shown):
        for k, label in enumerate(("trained", "shuffled")):
            axes[0, 2 * r + k].set_title(f"#{images[r]}\n{label}")
    return _entry(fig, out_dir, "trust-data",
                  f"Maps of {shown} test images under each method, one row per method: for each image, the map of "
                  f"the trained network and beside it that of the network trained on shuffled labels: "
                  f"{', '.join(names)}.",
                  "Each method's map for the trained network, and beside it the map of the network that memorised "
                  "shuffled labels, for the same image and class. A method that explains what the network learned "
                  "should draw two different pictures.")


@for_a_phone
def trust_over_training(f, out_dir):
    """Deletion area and rank correlations after every epoch, for Grad-CAM and saliency."""
    ot = f.trust["over_training"]
    fig = Figure(figsize=(COLUMN, 6.2), layout="constrained")
    a1, a2 = fig.subplots(2, 1)
    for name, rows in ot.items():
        epochs = [r["epoch"] for r in rows]
        style = _method_line(name)
        a1.plot(epochs, [r["deletion"]["mean"] for r in rows], "o", label=name, **style)
        if name == "random":
            continue  # the same random map at every epoch: its correlations are 1 by construction
        a2.plot(epochs, [np.nan if r["vs_start"]["mean"] is None else r["vs_start"]["mean"] for r in rows], "o--",
                color=style["color"], label=f"{name}: with the start")
        a2.plot(epochs, [np.nan if r["vs_end"]["mean"] is None else r["vs_end"]["mean"] for r in rows], "o-",
                color=style["color"], label=f"{name}: with the end")
    a1.set_title("deletion area (lower: more faithful)")
    a2.set_title("rank correlation of the maps")
    for ax in (a1, a2):
        ax.set_xlabel("epoch (0: initialisation)")
        ax.set_xticks(epochs)
    a2.set_ylim(-0.2, 1.05)
    a1.legend(frameon=False)
    a2.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=1)
    text = "; ".join(f"{name}: deletion " + ", ".join(f"{r['deletion']['mean']:.3f}" for r in rows)
                     for name, rows in ot.items())
    return _entry(fig, out_dir, "trust-over-training",
                  f"Two line charts over the epochs of training. Deletion area per epoch, {text}. Below: the rank "
                  "correlation of each epoch's maps with the maps at initialisation and at the end.",
                  f"Grad-CAM and saliency under the network after every epoch, on {f.trust['sanity_images']} test "
                  "images: how faithful the maps are (top), and how much they resemble the maps of the untrained "
                  "network and those of the final one (bottom).")


@for_a_phone
def trust_randomization(f, out_dir):
    r = f.randomization
    fig = Figure(figsize=(COLUMN, 3.4), layout="constrained")
    ax = fig.subplots()
    labels = ["original"] + r["stages"]
    for name, colour in (("gradcam", C_ACCENT), ("guided", C_TRAIN)):
        values = [1.0] + [np.nan if v is None else v for v in r["rho"][name]["mean"]]
        ax.plot(range(len(labels)), values, "o-", color=colour,
                label="Grad-CAM" if name == "gradcam" else "guided backprop")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_xlabel("layers re-initialised,\nfrom the top down (cumulative)")
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


@for_a_phone
def trust_examples(f, out_dir):
    maps = f.randomization_maps  # method -> [original, after stage 1, ...], each (n, H, W)
    stages = ["original"] + f.randomization["stages"]
    images = f.randomization_images
    shown = min(2, len(images))
    rows = [(name, j) for j in range(shown) for name in ("gradcam", "guided")]
    side = (COLUMN - 1.0) / len(rows)
    fig = Figure(figsize=(COLUMN, len(stages) * (side + 0.05) + 0.6), layout="constrained")
    axes = fig.subplots(len(stages), len(rows), squeeze=False)
    for c, (name, j) in enumerate(rows):
        for s in range(len(stages)):
            ax = axes[s, c]
            _own_scale(ax, maps[name][s][j])
            _blank(ax)
        axes[0, c].set_title(f"#{images[j]}\n{'Grad-CAM' if name == 'gradcam' else 'guided BP'}")
    for s, stage in enumerate(stages):
        axes[s, 0].set_ylabel(stage, rotation=0, ha="right", va="center")
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
                            f"Test image #{i}, {with_article(names[f.y_test[i]])}, with its Grad-CAM map for class "
                            f"{names[c]}", f"#{i}: says {names[c]}, {100 * d['proba'][j].max():.1f} %"))
    return entries


@for_a_phone
def over_training(f, out_dir):
    """Grad-CAM of the first gallery images after every epoch, one row per image."""
    maps = f.over_training  # (epochs + 1, images, H, W)
    epochs, n = maps.shape[0], min(4, maps.shape[1])
    width = min(COLUMN, 0.75 * epochs + 0.5)  # a column of labels, then one square map per epoch
    fig = Figure(figsize=(width, (width - 0.5) / epochs * n + 0.4), layout="constrained")
    axes = fig.subplots(n, epochs, squeeze=False)
    for r in range(n):
        item = f.gallery[r]
        for e in range(epochs):
            ax = axes[r, e]
            _blank(ax)
            ax.imshow(overlay(f.x_test[item["index"], 0], maps[e, r]))
            if r == 0:
                ax.set_title("start" if e == 0 else f"{e}")
        axes[r, 0].set_ylabel(f"#{item['index']}")
    names = f.class_names
    rows = "; ".join(f"#{f.gallery[r]['index']} ({names[f.gallery[r]['pred']]})" for r in range(n))
    return _entry(fig, out_dir, "explorer-over-training",
                  f"Grad-CAM maps at {f.layer} of {n} gallery images, one row each ({rows}), for the class the "
                  f"final network chooses, from initialisation (left) to the last epoch (right).",
                  f"The same {n} test images, the Grad-CAM map of the final answer's class at {f.layer} under the "
                  "network at initialisation and after each epoch.")


def jobs(f):
    """(function, args) for every figure of the gallery and the Grad-CAM chapters but the trust chapter's."""
    out = [(gallery_item, (g,)) for g in range(len(f.gallery))]
    if f.over_training is not None:
        out.append((over_training, ()))
    out.append((demo_samples, ()))
    if f.blank:
        out.append((blank_steps, ()))
    return out


def trust_jobs(f):
    """(function, args) for the trust chapter's figures: they need FigureInputs.trust and the rest (with_trust)."""
    return [(trust_curves, ()), (trust_randomization, ()), (trust_examples, ()), (trust_methods, ()), (trust_data, ()),
            (trust_over_training, ())]
