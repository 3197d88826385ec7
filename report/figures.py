"""The figures: one function per figure, arrays in, a PNG out.

All figures share one style (``STYLE``), are drawn with matplotlib's object
API on the Agg backend, and are saved at 150 DPI without metadata that would
change from build to build, so the same run always gives the same bytes. Each
function returns the figure's entry for the chapters: its path inside the site,
its alt text -- which says what the picture shows, with its numbers -- and a
caption.

A figure with words in it (titles, labels, ticks) is saved twice: as drawn, and
recoloured for dark mode (``dark_variant``: a transparent background, its greys
inverted) as <name>-dark.png, which the pages offer to a reader whose browser
prefers a dark colour scheme. The data -- images, heat maps, coloured bars and
curves -- keep their colours. A figure of pictures alone has no dark variant.

``Drawing`` draws the figures in processes forked from the builder, so the
arrays are shared rather than copied, while the builder goes on with the trust
chapter's measurements; the figures of those are drawn last.
"""

import dataclasses
import functools
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .context import pretty  # noqa: E402
from .words import with_article  # noqa: E402
import matplotlib.patches  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import Collection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.image import AxesImage, imsave  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

DPI = 150
STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": False, "figure.facecolor": "white", "savefig.facecolor": "white",
    "image.interpolation": "nearest", "font.family": "DejaVu Sans",
}
# A figure drawn for a phone's column: at most COLUMN inches wide (350 CSS pixels: a 360 px screen has
# 328 px for it, so the figure shrinks by 6 % at most), its words at NARROW_PT or more (11 CSS px or more
# on that screen). Each entry records the size of its smallest words on a 360 px screen: text_px_at_360.
COLUMN = 3.5
NARROW_PT = 9
PHONE_COLUMN_PX = 328
PHONE_TEXT_PX = 11  # the smallest readable chart text on that screen, in CSS pixels
PHONE_STYLE = {"font.size": NARROW_PT, "axes.titlesize": NARROW_PT, "axes.labelsize": NARROW_PT,
               "xtick.labelsize": NARROW_PT, "ytick.labelsize": NARROW_PT, "legend.fontsize": NARROW_PT}
INK = "gray_r"  # digits as dark ink on white
MAPS = "viridis"  # activations and other signed or positive maps
DIVERGING = "RdBu_r"  # weights: red positive, blue negative, white zero
C_TRAIN, C_TEST, C_ACCENT = "#4c72b0", "#dd8452", "#c44e52"



@dataclass(frozen=True)
class FigureInputs:
    """What the figure functions draw from, as raw values: the data, the run and the analysis.

    Every figure function is fn(f: FigureInputs, out_dir, *args) -> entry (or a list of entries).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    train_counts: np.ndarray  # (K,) images per class
    test_counts: np.ndarray
    summary_rows: list  # Sequential.summary_rows(): (name, description, output shape, parameters)
    input_shape: tuple
    conv: dict  # the worked convolution example (report/context.py)
    conv_map: np.ndarray
    epochs: list  # History epochs as dicts
    steps: list
    log_every: int
    snapshots: dict  # epoch -> the model's state() after it ({"conv1.weight": ..., ...})
    kernel_lim: float
    acts: list  # per showcase image: {layer name: (C, H, W) activation}
    blocks: list  # layer names of each conv block
    showcase: list
    final_weights: dict
    per_class: list
    proba: np.ndarray
    mistake_idx: np.ndarray
    gallery: list  # the Grad-CAM chapters and the gallery
    gallery_arrays: dict
    methods: dict
    layer: str
    blank: dict
    # the trust chapter's (None until report/explain.py's explain_trust has run: see with_trust)
    trust: dict = None  # the trust chapter's measurements (report/trust.py)
    trust_arrays: dict = None  # its example maps: {"examples": {method: (4, H, W)}, "data_maps": {method: (2, 3, H, W)}}
    randomization: dict = None
    randomization_maps: dict = None
    randomization_images: np.ndarray = None
    demo: dict = None  # the "Try it" page's test images and NumPy's answers
    over_training: np.ndarray = None  # (epochs + 1, gallery, H, W) Grad-CAM of the gallery after each epoch


_WORKER_INPUTS = None  # in a drawing process: the FigureInputs it was started with


def _grey(rgba):
    """Is this colour a grey (black, white and the greys between: no hue to speak of)?"""
    r, g, b, _ = rgba
    return max(r, g, b) - min(r, g, b) < 0.12


def _inverted(colour):
    """A grey with its lightness turned over (black ink becomes light ink); any other colour as it is."""
    rgba = to_rgba(colour)
    return (1 - rgba[0], 1 - rgba[1], 1 - rgba[2], rgba[3]) if _grey(rgba) else rgba


def _paper(colour):
    """A fill on a dark page: near-white (paper) becomes transparent, so that the page shows through;
    near-black ink becomes light; any other fill stays."""
    rgba = to_rgba(colour)
    if _grey(rgba) and min(rgba[:3]) > 0.9:
        return (0, 0, 0, 0)
    return _inverted(rgba) if _grey(rgba) and max(rgba[:3]) < 0.35 else rgba


def _on_image(point, ax, im, renderer):
    """Is this point (display coordinates) on a pixel of the image that is drawn (not masked)?"""
    if not im.get_window_extent(renderer).contains(*point):
        return False
    data = im.get_array()
    rows, cols = data.shape[:2]
    x, y = ax.transData.inverted().transform(point)
    left, right, bottom, top = im.get_extent()
    col = int(np.floor((x - left) / (right - left) * cols))
    if im.origin == "upper":  # row 0 at the top
        row = int(np.floor((y - top) / (bottom - top) * rows))
    else:
        row = int(np.floor((y - bottom) / (top - bottom) * rows))
    if not (0 <= row < rows and 0 <= col < cols):
        return False
    return not np.ma.getmaskarray(data)[row, col].any()


def _has_words(fig):
    return any(t.get_visible() and t.get_text().strip() for t in fig.findobj(Text))


def dark_variant(fig):
    """Recolour fig, in place, for a dark page: transparent paper; grey ink (text, axes, ticks, outlines,
    grey lines) turned light. Images and coloured marks keep their colours, and so do words written
    over an image (their colour was chosen for the image beneath)."""
    fig.patch.set_facecolor(_paper(fig.patch.get_facecolor()))
    renderer = FigureCanvasAgg(fig).get_renderer()
    images = [(ax, a) for ax in fig.axes for a in ax.get_children() if isinstance(a, AxesImage)]
    over_image = {id(t) for t in fig.findobj(Text) if t.get_text().strip()
                  and any(_on_image(t.get_window_extent(renderer).get_points().mean(axis=0), ax, im, renderer)
                          for ax, im in images)}
    for artist in fig.findobj():
        if isinstance(artist, Text):
            if id(artist) not in over_image:
                artist.set_color(_inverted(artist.get_color()))
            box = artist.get_bbox_patch()
            if box is not None:
                box.set_facecolor(_paper(box.get_facecolor()))
                box.set_edgecolor(_inverted(box.get_edgecolor()))
        elif isinstance(artist, Line2D):
            artist.set_color(_inverted(artist.get_color()))
            artist.set_markeredgecolor(_inverted(artist.get_markeredgecolor()))
            artist.set_markerfacecolor(_inverted(artist.get_markerfacecolor()))
        elif isinstance(artist, Patch) and artist is not fig.patch:
            artist.set_facecolor(_paper(artist.get_facecolor()))
            artist.set_edgecolor(_inverted(artist.get_edgecolor()))
        elif isinstance(artist, Collection) and artist.get_array() is None:  # not a colour-mapped mesh
            artist.set_edgecolor([_inverted(c) for c in artist.get_edgecolor()])
            artist.set_facecolor([_paper(c) for c in artist.get_facecolor()])


def _save(fig, out_dir, name):
    """Write fig as figures/<name>.png, and, if it has words in it, its dark variant as
    figures/<name>-dark.png; return (site path, dark site path or None, width, height in CSS pixels)."""
    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(DPI)  # the size the figure is drawn at, so that dark_variant finds every word where it was drawn
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    dark = None
    if _has_words(fig):
        # The first save placed the axes; recolouring moves nothing, so the dark variant keeps those places:
        # it is drawn once, as it is, and written as savefig writes a PNG (savefig would first run a
        # layout pass, then draw).
        fig.set_layout_engine("none")
        dark_variant(fig)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        imsave(path.with_name(f"{path.stem}-dark.png"), canvas.buffer_rgba(), format="png", dpi=DPI,
               metadata={"Software": None})
        dark = f"figures/{name}-dark.png"
    w, h = fig.get_size_inches() * DPI
    return f"figures/{name}.png", dark, int(round(w / 1.5)), int(round(h / 1.5))


def _smallest_words_px(fig, width):
    """The size, in CSS pixels on a 360 px screen, of the smallest words in fig (None if it has none)."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    if not sizes:
        return None
    return round(min(sizes) * DPI / 72 / 1.5 * min(1.0, PHONE_COLUMN_PX / width), 1)


def _entry(fig, out_dir, name, alt, caption, **extra):
    src, dark, w, h = _save(fig, out_dir, name)
    return {"name": name, "src": src, "alt": pretty(alt), "caption": pretty(caption), "width": w, "height": h,
            "text_px_at_360": _smallest_words_px(fig, w), **({"dark": dark} if dark else {}), **extra}


def for_a_phone(draw):
    """A figure function whose words are all NARROW_PT or more (it sizes itself to COLUMN)."""
    @functools.wraps(draw)  # the same name in the module: the drawing processes find it by that name
    def drawn(*args, **kwargs):
        with matplotlib.rc_context(PHONE_STYLE):
            return draw(*args, **kwargs)
    return drawn


def _blank(ax):
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


# ---------------------------------------------------------------- data

@for_a_phone
def data_samples(f, out_dir):
    x, y, names = f.x_train, f.y_train, f.class_names
    k, per = len(names), 10
    h, w = x.shape[2:]
    gap = 4  # pixels of the images between two of them
    side = (COLUMN - (0.25 if max(map(len, names)) < 3 else 0.9)) / per
    # One mosaic in one axes rather than an axes per image: the same picture, drawn many times faster.
    mosaic = np.full((k * (h + gap) - gap, per * (w + gap) - gap), np.nan)  # NaN: the gaps, left transparent
    for c in range(k):
        for j, i in enumerate(np.flatnonzero(y == c)[:per]):
            mosaic[c * (h + gap) : c * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = x[i, 0]
    fig = Figure(figsize=(COLUMN, k * side + 0.1), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=INK, vmin=0, vmax=1)
    _blank(ax)
    ax.set_yticks([c * (h + gap) + (h - 1) / 2 for c in range(k)], names)
    ax.tick_params(axis="y", length=0)
    return _entry(fig, out_dir, "data-samples",
                  f"A grid of real training images: {per} per class, one row for each of the {k} classes "
                  f"({', '.join(names)}).",
                  f"The first {per} training images of each class, as they are stored: 28 \u00d7 28 grey levels.")


@for_a_phone
def data_balance(f, out_dir):
    tr, te, names = f.train_counts, f.test_counts, f.class_names
    fig = Figure(figsize=(COLUMN, 2.8), layout="constrained")
    ax = fig.subplots()
    pos = np.arange(len(names))
    ax.bar(pos - 0.2, tr, 0.4, label=f"training ({tr.sum():,})", color=C_TRAIN)
    ax2 = ax.twinx()
    ax2.bar(pos + 0.2, te, 0.4, label=f"test ({te.sum():,})", color=C_TEST)
    ax.set_xticks(pos, names, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_ylabel("training images")
    ax2.set_ylabel("test images")
    ax2.spines["right"].set_visible(True)
    ax.set_ylim(0, tr.max() * 1.25)
    ax2.set_ylim(0, te.max() * 1.25)
    fig.legend(loc="outside upper center", ncols=2, frameon=False)
    lo, hi = int(np.argmin(tr)), int(np.argmax(tr))
    return _entry(fig, out_dir, "data-balance",
                  f"Bar chart of images per class. Training: from {tr[lo]:,} ({names[lo]}) to "
                  f"{tr[hi]:,} ({names[hi]}). Test: from {te.min():,} to {te.max():,}.",
                  "How many images of each class there are in the training set (left axis) and the test set (right axis).")


@for_a_phone
def data_means(f, out_dir):
    x, y, names = f.x_train, f.y_train, f.class_names
    k = len(names)
    cols = int(np.ceil(k / 2))
    fig = Figure(figsize=(COLUMN, 2 * (COLUMN / cols + 0.2)), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False)
    for ax in axes.flat:
        _blank(ax)
    for c, ax in enumerate(axes.flat[:k]):
        ax.imshow(x[y == c, 0].mean(axis=0), cmap=INK, vmin=0, vmax=1)
        ax.set_title(names[c] if len(names[c]) < 9 else names[c].replace("/", "/\n").replace(" ", "\n"))
    return _entry(fig, out_dir, "data-means",
                  f"The average training image of each of the {k} classes: blurred but recognisable shapes.",
                  "The mean of all training images of each class: where the ink usually is.")


# ---------------------------------------------------------------- architecture

def _stages(rows):
    """Group the summary rows into what a diagram shows: (label, output shape) per stage."""
    stages = []
    for name, _, shape, _ in rows:
        kind = name.rstrip("0123456789")
        if kind in ("bn", "relu") and stages and stages[-1][2] in ("conv", "dense"):
            label, _, k = stages[-1]
            stages[-1] = (label + ("\n+ BN" if kind == "bn" else "\n+ ReLU"), tuple(shape), k)
        else:
            label = {"conv": "conv 3x3", "maxpool": "max pool\n2x2", "flatten": "flatten",
                     "dense": "dense"}.get(kind, kind)
            stages.append((label, tuple(shape), kind))
    return [(label, shape) for label, shape, _ in stages]


@for_a_phone
def architecture(f, out_dir):
    """The stages from the input (top) to the class scores (bottom): each a block of maps or a bar of
    numbers, its name on the left and its output's shape on the right."""
    stages = [("input", tuple(f.input_shape))] + _stages(f.summary_rows)
    fig = Figure(figsize=(COLUMN, 0.62 * len(stages) + 0.1))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-1.75, 1.75)
    ax.set_ylim(len(stages) - 0.45, -0.55)
    ax.axis("off")
    top = max(s[1] for _, s in stages if len(s) == 3)
    for y, (label, shape) in enumerate(stages):
        if len(shape) == 3:  # a stack of maps: width by the map size, thickness by the channels
            c, h, _ = shape
            ww = 0.9 * h / top
            hh = 0.08 + 0.06 * np.log2(c)
            d = 0.1
            face = "#dbe4f3" if y else "#eeeeee"
            ax.add_patch(matplotlib.patches.Polygon(
                [(-ww / 2, y + hh / 2), (ww / 2, y + hh / 2), (ww / 2, y - hh / 2), (-ww / 2, y - hh / 2)],
                fc=face, ec=C_TRAIN, lw=0.9))
            ax.add_patch(matplotlib.patches.Polygon(
                [(-ww / 2, y - hh / 2), (-ww / 2 + d, y - hh / 2 - d), (ww / 2 + d, y - hh / 2 - d), (ww / 2, y - hh / 2)],
                fc="#c5d3ec", ec=C_TRAIN, lw=0.9))
            ax.add_patch(matplotlib.patches.Polygon(
                [(ww / 2, y + hh / 2), (ww / 2 + d, y + hh / 2 - d), (ww / 2 + d, y - hh / 2 - d), (ww / 2, y - hh / 2)],
                fc="#b0c2e3", ec=C_TRAIN, lw=0.9))
            text = pretty("x".join(map(str, shape)))
        else:  # a vector: a bar whose length grows with its length
            n = shape[0]
            ww = 0.15 + 0.09 * np.log2(n)
            ax.add_patch(Rectangle((-ww / 2, y - 0.05), ww, 0.1, fc="#f6dcc8", ec=C_TEST, lw=0.9))
            text = str(n)
        ax.text(0.75, y, text, ha="left", va="center", color=C_ACCENT)
        ax.text(-0.75, y, pretty(label).replace("\n", " "), ha="right", va="center", wrap=True)
        if y:
            ax.annotate("", (0, y - 0.3), (0, y - 0.62), arrowprops=dict(arrowstyle="->", lw=0.8))
    params = sum(r[3] for r in f.summary_rows)
    return _entry(fig, out_dir, "architecture",
                  "Diagram of the network from top to bottom: "
                  + ", then ".join(f"{pretty(label.replace(chr(10), ' '))} ({pretty('x'.join(map(str, shape)))})"
                                   for label, shape in stages)
                  + f"; {params:,} parameters in all.",
                  "The network from input (top) to class scores (bottom). Each block is what a stage passes on: "
                  "its width shows the size of the maps, its thickness the number of channels (shapes on the "
                  "right, as channels \u00d7 height \u00d7 width).")


# ---------------------------------------------------------------- convolution

def _annotate_grid(ax, values, fmt="{:.2f}", fontsize=7):
    vmax = np.abs(values).max() or 1
    for (i, j), v in np.ndenumerate(values):
        text = fmt.format(v)
        if float(text) == 0:
            text = text.lstrip("-")  # no "-0.00"
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                color="white" if abs(v) > 0.6 * vmax else "black")


@for_a_phone
def conv_example(f, out_dir):
    ex, x, cmap = f.conv, f.x_test, f.conv_map
    image = x[ex["digit_index"], 0]
    k, p, i, j = ex["kernel_size"], ex["padding"], ex["row"], ex["col"]
    patch, kernel = np.array(ex["patch"]), np.array(ex["kernel"])
    fig = Figure(figsize=(COLUMN, 3.9), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    first, last = top.subplots(1, 2)
    axes = [first, *bottom.subplots(1, 3), last]
    ax = axes[0]
    ax.imshow(image, cmap=INK, vmin=0, vmax=1)
    ax.add_patch(Rectangle((j - p - 0.5, i - p - 0.5), k, k, fill=False, ec=C_ACCENT, lw=1.6))
    ax.set_title(f"test image #{ex['digit_index']}\nwindow at ({i}, {j})")
    _blank(ax)
    for ax, values, title, cm in ((axes[1], patch, "the 3x3 patch", INK),
                                  (axes[2], kernel, f"kernel {ex['channel']} of conv1", DIVERGING),
                                  (axes[3], patch * kernel, "patch x kernel", DIVERGING)):
        lim = np.abs(values).max() or 1
        ax.imshow(values, cmap=cm, vmin=0 if cm == INK else -lim, vmax=1 if cm == INK else lim)
        _annotate_grid(ax, values, "{:.1f}", NARROW_PT)
        ax.set_title(title.replace(" of conv1", "\nof conv1"))
        _blank(ax)
    ax = axes[4]
    im = ax.imshow(cmap, cmap=MAPS)
    ax.plot(j, i, marker="s", ms=5, mfc="none", mec=C_ACCENT, mew=1.4)
    ax.set_title(f"output map {ex['channel']}\nsum + bias = {ex['output']:.3f}")
    _blank(ax)
    top.colorbar(im, ax=ax, shrink=0.8)
    return _entry(fig, out_dir, "conv-example",
                  f"Kernel {ex['channel']} of the first layer over test image #{ex['digit_index']}: the 3x3 patch at "
                  f"row {i}, column {j}, the kernel's weights, their products, which sum to {ex['sum']:.3f}; "
                  f"with the bias {ex['bias']:.3f} the output there is {ex['output']:.3f}, the brightest point of "
                  f"the output map.",
                  "One output value of the first convolution, computed by hand: multiply the patch by the kernel, "
                  "add up, add the bias.")


@for_a_phone
def conv_slide(f, out_dir, step):
    """The window at one of several positions along a row, and the output map filled in up to there."""
    ex, x, full = f.conv, f.x_test, f.conv_map
    image = x[ex["digit_index"], 0]
    k, p, i = ex["kernel_size"], ex["padding"], ex["row"]
    cols = _slide_columns(image.shape[1])
    j = cols[step]
    shown = np.full(full.shape, np.nan)
    shown[:i] = full[:i]
    shown[i, : j + 1] = full[i, : j + 1]
    fig = Figure(figsize=(COLUMN, 2.2), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    a1.imshow(image, cmap=INK, vmin=0, vmax=1)
    a1.add_patch(Rectangle((j - p - 0.5, i - p - 0.5), k, k, fill=False, ec=C_ACCENT, lw=1.8))
    a1.set_title(f"window at row {i},\ncolumn {j}")
    _blank(a1)
    cmap = matplotlib.colormaps[MAPS].with_extremes(bad="#eeeeee")
    a2.imshow(shown, cmap=cmap, vmin=np.nanmin(full), vmax=np.nanmax(full))
    a2.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec=C_ACCENT, lw=1.5))
    a2.set_title(f"output there:\n{full[i, j]:.3f}")
    _blank(a2)
    return _entry(fig, out_dir, f"conv-slide/{step}",
                  f"Kernel {ex['channel']} at row {i}, column {j} of test image #{ex['digit_index']}: the output "
                  f"there is {full[i, j]:.3f}; the output map is filled in up to that position.",
                  f"The window of kernel {ex['channel']} moving along row {i}: every position gives one value of "
                  "the output map, in reading order.",
                  frame=step, frame_label=f"column {j}")


def _slide_columns(width, count=8):
    """Evenly spaced columns from the left edge to the right edge."""
    return [int(round(c)) for c in np.linspace(0, width - 1, count)]


@for_a_phone
def conv_im2col(f, out_dir):
    """The im2col matrix, transposed, wrapped into strips of a few image rows' windows each."""
    ex, x = f.conv, f.x_test
    from cnn.functional import im2col, pad_hw, to_nhwc
    image = x[ex["digit_index"] : ex["digit_index"] + 1]
    p, k = ex["padding"], ex["kernel_size"]
    cols = im2col(pad_hw(to_nhwc(image), p, p, p, p), k, k, 1)  # (784, 9)
    row = ex["row"] * image.shape[3] + ex["col"]
    strips = 4
    per = int(np.ceil(cols.shape[0] / strips))
    fig = Figure(figsize=(COLUMN, 0.95 * strips + 0.7), layout="constrained")
    axes = fig.subplots(strips, 1)
    for s_, ax in enumerate(axes):
        lo, hi = s_ * per, min(cols.shape[0], (s_ + 1) * per)
        ax.imshow(cols[lo:hi].T, cmap=INK, vmin=0, vmax=1, aspect="auto", extent=(lo - 0.5, hi - 0.5, k * k - 0.5, -0.5))
        if lo <= row < hi:
            ax.axvline(row, color=C_ACCENT, lw=1.2)
        ax.set_yticks([0, k * k - 1])
        ax.set_xticks([lo, hi - 1])
    axes[0].set_title(f"im2col of test image #{ex['digit_index']}, transposed;\nred: the window at "
                      f"({ex['row']}, {ex['col']}), position {row}")
    axes[-1].set_xlabel(f"output position (row x 28 + column), {cols.shape[0]} in all")
    fig.supylabel("offset in the 3x3 window", fontsize=NARROW_PT)
    return _entry(fig, out_dir, "conv-im2col",
                  f"The im2col matrix of the image drawn as a picture: {cols.shape[0]} windows side by side, each a "
                  f"column of {cols.shape[1]} pixel values, wrapped into {strips} strips; its bright pixels show up "
                  "as dark bands.",
                  "Every 3x3 window of the padded image, laid side by side (wrapped into strips to fit). Multiplying "
                  "this matrix by the kernels computes every output of the layer in one product.")


# ---------------------------------------------------------------- training

@for_a_phone
def train_curves(f, out_dir):
    epochs = f.epochs
    e = [r["epoch"] for r in epochs]
    fig = Figure(figsize=(COLUMN, 4.4), layout="constrained")
    a1, a2 = fig.subplots(2, 1, sharex=True)
    a1.plot(e, [r["train_loss"] for r in epochs], "o-", color=C_TRAIN, label="training")
    a1.plot(e, [r["val_loss"] for r in epochs], "o-", color=C_TEST, label="validation")
    a1.set_ylabel("cross-entropy loss")
    a1.legend(frameon=False)
    a2.plot(e, [100 * r["train_accuracy"] for r in epochs], "o-", color=C_TRAIN, label="training")
    a2.plot(e, [100 * r["val_accuracy"] for r in epochs], "o-", color=C_TEST, label="validation")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.legend(frameon=False)
    for a in (a1, a2):
        a.set_xticks(e)
    first, last = epochs[0], epochs[-1]
    return _entry(fig, out_dir, "train-curves",
                  f"Two line charts over {len(e)} epochs. Validation loss goes from {first['val_loss']:.4f} to "
                  f"{last['val_loss']:.4f}; validation accuracy from {100 * first['val_accuracy']:.2f} % to "
                  f"{100 * last['val_accuracy']:.2f} %.",
                  "Loss and accuracy after each epoch, on the training batches (as they were seen, in training "
                  "mode) and on the validation images held out of the training set.")


@for_a_phone
def train_steps(f, out_dir):
    steps, epochs, every = f.steps, f.epochs, f.log_every
    fig = Figure(figsize=(COLUMN, 4.2), layout="constrained")
    a1, a2 = fig.subplots(2, 1, height_ratios=[3, 2])
    if steps:
        a1.plot([s[1] for s in steps], [s[2] for s in steps], color=C_TRAIN, lw=1)
        a1.set_yscale("log")
    a1.set_xlabel("epoch")
    a1.set_ylabel(f"mean loss of {every} batches")
    e = [r["epoch"] for r in epochs]
    a2.step(e, [r["lr"] for r in epochs], where="mid", color=C_ACCENT)
    a2.plot(e, [r["lr"] for r in epochs], "o", color=C_ACCENT)
    a2.set_xticks(e)
    a2.set_xlabel("epoch")
    a2.set_ylabel("learning rate")
    a2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    desc = (f"falls from {steps[0][2]:.3f} to {steps[-1][2]:.4f}" if steps else "has too few batches to plot")
    return _entry(fig, out_dir, "train-steps",
                  f"Top: the training loss, averaged over every {every} batches, {desc} (log scale). Bottom: the "
                  f"learning rate of each epoch, from {epochs[0]['lr']:.2g} to {epochs[-1]['lr']:.2g}.",
                  f"Top: the training loss, averaged over every {every} batches. Bottom: the learning rate, set "
                  "once per epoch by the schedule.")


@for_a_phone
def confusion(f, out_dir, epoch):
    rec = f.epochs[epoch - 1]
    cm = np.array(rec["confusion"])
    names = f.class_names
    fig = Figure(figsize=(COLUMN, COLUMN + (0.9 if max(map(len, names)) > 2 else 0.1)), layout="constrained")
    ax = fig.subplots()
    shown = np.where(np.eye(len(cm), dtype=bool), 0, cm)  # colour the errors; the diagonal would swamp them
    ax.imshow(shown, cmap="Reds", vmin=0, vmax=max(shown.max(), 1))
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=NARROW_PT if v < 1000 else NARROW_PT - 1.5,
                    color="black" if i != j else C_TRAIN, fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(len(names)), names, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"after epoch {epoch}:\n{cm.trace():,} of {cm.sum():,} right")
    off = np.where(np.eye(len(cm), dtype=bool), -1, cm)
    i, j = np.unravel_index(np.argmax(off), off.shape)
    return _entry(fig, out_dir, f"confusion/{epoch}",
                  f"Confusion matrix after epoch {epoch}: {cm.trace():,} of {cm.sum():,} validation images on the "
                  f"diagonal; the most frequent mistake is {names[i]} taken for {names[j]} ({off[i, j]} times).",
                  f"Confusion matrix on the validation images after epoch {epoch}: row = true class, column = predicted "
                  "class. Off the diagonal, darker red means more mistakes.",
                  frame=epoch, frame_label=f"{epoch}")


@for_a_phone
def kernels(f, out_dir, epoch):
    w = f.snapshots[epoch]["conv1.weight"][:, 0]  # (F, 3, 3)
    lim = f.kernel_lim
    n = len(w)
    cols = 8
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(COLUMN, rows * (COLUMN / cols + 0.22) + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for j, ax in enumerate(axes.flat):
        _blank(ax)
        if j < n:
            ax.imshow(w[j], cmap=DIVERGING, vmin=-lim, vmax=lim)
            ax.set_title(str(j))
    title = "before training (random)" if epoch == 0 else f"after epoch {epoch}"
    fig.suptitle(f"conv1 kernels {title}")
    return _entry(fig, out_dir, f"kernels/{epoch}",
                  f"The {n} 3x3 kernels of the first layer {title}, red for positive and blue for negative "
                  f"weights, on one colour scale from -{lim:.2f} to {lim:.2f}.",
                  f"The first layer's {n} kernels {title}. Red weights add the pixel under them, blue ones "
                  "subtract it.",
                  frame=epoch, frame_label="start" if epoch == 0 else str(epoch))


# ---------------------------------------------------------------- layers

@for_a_phone
def activations(f, out_dir, digit, block):
    acts = f.acts[digit]  # layer name -> (C, H, W) for one image
    names = f.blocks[block]
    channels = 8
    side = (COLUMN - 0.85) / channels
    # One mosaic in one axes: every map at the size of the block's largest (a pooled map's pixels repeated),
    # each divided by its channel's largest |value| (one colour scale per channel), NaN in the gaps.
    h, w = max(acts[name].shape[1] for name in names), max(acts[name].shape[2] for name in names)
    gap = max(1, h // 7)
    mosaic = np.full((len(names) * (h + gap) - gap, channels * (w + gap) - gap), np.nan)
    for c in range(channels):
        lim = max(np.abs(acts[name][c]).max() for name in names) or 1.0
        for r, name in enumerate(names):
            a = acts[name][c]
            grown = a[np.arange(h) * a.shape[0] // h][:, np.arange(w) * a.shape[1] // w]  # nearest neighbour
            mosaic[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = grown / lim
    fig = Figure(figsize=(COLUMN, len(names) * (side + 0.03) + 0.55), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=DIVERGING, vmin=-1, vmax=1)
    _blank(ax)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(channels)], [str(c) for c in range(channels)])
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(len(names))], names)
    ax.tick_params(length=0)
    ax.set_xlabel("channel")
    index = f.showcase[digit]
    label = f.class_names[f.y_test[index]]
    shape = acts[names[0]].shape
    return _entry(fig, out_dir, f"acts-{digit}-{block}",
                  f"Feature maps of test image #{index} (a {label}) in block {block + 1}: the first {channels} "
                  f"channels of {', '.join(names)}, each {shape[1]}\u00d7{shape[2]}, red for positive values, blue "
                  "for negative ones, white for zero.",
                  f"Block {block + 1}, layer by layer, for test image #{index} ({label}): the first {channels} "
                  "channels. Red is positive, blue negative, white zero; each column (one channel) has one colour "
                  "scale, so the rows can be compared.")


@for_a_phone
def learned_kernels(f, out_dir, layer):
    w = f.final_weights[layer]  # (F, C, 3, 3)
    f, c = w.shape[:2]
    lim = np.abs(w).max()
    if c == 1:
        per_row = 4
        fig = Figure(figsize=(COLUMN, int(np.ceil(f / per_row)) * (COLUMN / per_row + 0.2)), layout="constrained")
        axes = fig.subplots(int(np.ceil(f / per_row)), per_row, squeeze=False)
        for i, ax in enumerate(axes.flat):
            _blank(ax)
            if i < f:
                ax.imshow(w[i, 0], cmap=DIVERGING, vmin=-lim, vmax=lim)
                _annotate_grid(ax, w[i, 0], "{:.1f}", NARROW_PT)
                ax.set_title(str(i))
    else:  # one tile per (output, input) channel pair, tiled into one image with gaps
        k = w.shape[2]
        tile = np.full((f * (k + 1), c * (k + 1)), np.nan)
        for o in range(f):
            for i in range(c):
                tile[o * (k + 1) : o * (k + 1) + k, i * (k + 1) : i * (k + 1) + k] = w[o, i]
        fig = Figure(figsize=(COLUMN, COLUMN * f / c * 0.75 + 0.6), layout="constrained")
        ax = fig.subplots()
        cmap = matplotlib.colormaps[DIVERGING].with_extremes(bad="white")
        ax.imshow(tile, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xlabel(f"input channel (0 to {c - 1})")
        ax.set_ylabel(f"output channel (0 to {f - 1})")
        ax.set_xticks([])
        ax.set_yticks([])
    return _entry(fig, out_dir, f"learned-{layer}",
                  f"The trained kernels of {layer}: {f} output channels x {c} input channel(s), each 3x3, red "
                  f"positive and blue negative, largest magnitude {lim:.2f}.",
                  f"All trained kernels of {layer}" + (" with their weights." if c == 1 else
                                                       ": one 3x3 tile for every pair of output and input channel."))


# ---------------------------------------------------------------- results

@for_a_phone
def per_class(f, out_dir):
    """Accuracy per class as horizontal bars: the ten values written beside them, readable on a phone."""
    rows, names = f.per_class, f.class_names
    acc = np.array([100 * r["accuracy"] for r in rows])
    fig = Figure(figsize=(COLUMN, 0.5 + 0.26 * len(acc)), layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(acc)), acc, color=C_TEST, height=0.7)
    ax.set_yticks(range(len(acc)), names)
    ax.invert_yaxis()
    lo = max(0.0, np.floor(acc.min() - 2))
    ax.set_xlim(lo, 100 + (100 - lo) * 0.16)
    ax.set_xlabel("test accuracy (%)")
    for i, a in enumerate(acc):
        ax.text(a, i, f" {a:.1f}", ha="left", va="center")
    worst, best = int(np.argmin(acc)), int(np.argmax(acc))
    return _entry(fig, out_dir, "per-class",
                  f"Bar chart of test accuracy per class, from {acc[worst]:.1f} % ({names[worst]}) to "
                  f"{acc[best]:.1f} % ({names[best]}); the axis starts at {lo:.0f} %.",
                  f"Accuracy on the test images of each class. The axis starts at {lo:.0f} %, not 0.")


@for_a_phone
def mistakes(f, out_dir):
    x, y, proba = f.x_test, f.y_test, f.proba
    idx, names = f.mistake_idx, f.class_names
    cols = 3
    rows = max(1, int(np.ceil(len(idx) / cols)))
    fig = Figure(figsize=(COLUMN, rows * 1.62), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        _blank(ax)
    for ax, i in zip(axes.flat, idx):
        p = int(proba[i].argmax())
        ax.imshow(x[i, 0], cmap=INK, vmin=0, vmax=1)
        ax.set_title(f"#{i}: true {names[y[i]]}\nsaid {names[p]} {100 * proba[i, p]:.1f} %")
    alt = ("The test images the network got wrong with the most confidence: "
           + "; ".join(f"#{i}, {with_article(names[y[i]])} read as {names[int(proba[i].argmax())]} "
                       f"({100 * proba[i].max():.0f} %)" for i in idx)) if len(idx) else "No mistakes."
    return _entry(fig, out_dir, "mistakes", alt,
                  "The most confident mistakes on the test set: the true label, what the network said, and how "
                  "sure it was.")


# ---------------------------------------------------------------- all of them

def figure_inputs(run, data, context, arrays, explained, demo, over_training=None):
    """The FigureInputs of a run: the data, the run, the analysis and the explanations, as raw values."""
    model = run.model
    show = context["showcase"]
    acts = model.forward_all(data.x_test[show])
    model.clear_cache()
    blocks, current = [], None
    for layer in model.layers:
        if layer.kind == "conv":
            current = []
            blocks.append(current)
        elif layer.kind == "flatten":
            current = None
        if current is not None:
            current.append(layer.name)
    per_digit = [{layer.name: a[d] for layer, a in zip(model.layers, acts[1:]) if a.ndim == 4}
                 for d in range(len(show))]
    epochs = context["history"]["epochs"]
    first_conv = [l.name for l in model.layers if l.kind == "conv"][0]
    k = len(data.class_names)
    return FigureInputs(**{
        "x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test,
        "class_names": list(data.class_names),
        "train_counts": np.bincount(data.y_train, minlength=k), "test_counts": np.bincount(data.y_test, minlength=k),
        "summary_rows": model.summary_rows(), "input_shape": model.input_shape,
        "conv": context["conv"], "conv_map": arrays["conv_map"],
        "epochs": epochs, "steps": run.history.steps, "log_every": run.history.log_every,
        "snapshots": run.snapshots,
        "kernel_lim": float(max(np.abs(s[f"{first_conv}.weight"]).max() for s in run.snapshots.values())),
        "acts": per_digit, "blocks": blocks, "showcase": show,
        "final_weights": {l.name: l.params["weight"] for l in model.layers if l.kind == "conv"},
        "per_class": context["metrics"]["per_class"], "proba": arrays["proba"],
        "mistake_idx": arrays["mistakes"],
        # the Grad-CAM chapters and the gallery
        "gallery": context["explain"]["gallery"], "gallery_arrays": explained["gallery"],
        "methods": explained["methods"], "layer": context["explain"]["layer"],
        "blank": context["explain"]["blank"],
    }, demo=demo, over_training=over_training)


def with_trust(inputs, explain_context, explained):
    """inputs with the trust chapter's values: explain_trust's context and arrays."""
    return dataclasses.replace(inputs, trust=explain_context["trust"], trust_arrays=explained["trust"],
                               randomization=explain_context["randomization"],
                               randomization_maps=explained["randomization_maps"],
                               randomization_images=explained["randomization_images"])


# The figures a chapter may ask for by a constant name, and the series frames() shows: known
# before anything is trained, so that check_chapters catches a misspelt name in seconds. The
# rest (gallery/<i>/..., acts-<d>-<b>, demo/<i>) are named from the run's own numbers.
# tests/test_site.py checks these against what a build draws.
FIXED_NAMES = ("data-samples", "data-balance", "data-means", "architecture", "conv-example", "conv-im2col",
               "train-curves", "train-steps", "per-class", "mistakes",
               "trust-curves", "trust-randomization", "trust-examples", "trust-methods", "trust-data",
               "trust-over-training", "gradcam-blank", "explorer-over-training")
SERIES = ("confusion", "kernels", "conv-slide")


def names_before_training(conv_layers):
    """({figure names}, {series names}) a chapter may name, for a network with these conv layers."""
    return set(FIXED_NAMES) | {f"learned-{name}" for name in conv_layers}, set(SERIES)


def jobs(f):
    """(function, args) for every figure of chapters 1 to 8, in a fixed order."""
    epochs = len(f.epochs)
    out = [(data_samples, ()), (data_balance, ()), (data_means, ()), (architecture, ()),
           (conv_example, ()), (conv_im2col, ()), (train_curves, ()), (train_steps, ()),
           (per_class, ()), (mistakes, ())]
    out += [(confusion, (e,)) for e in range(1, epochs + 1)]
    out += [(kernels, (e,)) for e in range(0, epochs + 1)]
    out += [(conv_slide, (i,)) for i in range(len(_slide_columns(f.x_test.shape[3])))]
    out += [(activations, (d, b)) for d in range(len(f.showcase)) for b in range(len(f.blocks))]
    out += [(learned_kernels, (name,)) for name in f.final_weights]
    return out


def _start_worker(inputs):
    """In a drawing process: ignore Ctrl-C (the main process alone stops the build), keep the inputs,
    and give way to the builder: its measurements, meanwhile, are the build's critical path, and
    the drawing takes the CPU time they leave (os.nice; the figures are the same bytes).

    The processes are forked, so `inputs` arrives as inherited memory, not pickled."""
    global _WORKER_INPUTS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)
    _WORKER_INPUTS = inputs


def _run(job, inputs=None):
    """Draw one job (function, args, out_dir): (its entry or entries, the seconds it took)."""
    fn, args, out_dir = job
    start = time.perf_counter()
    with matplotlib.rc_context(STYLE):
        made = fn(inputs or _WORKER_INPUTS, out_dir, *args)
    return made, time.perf_counter() - start


def _run_changed(job, changes):
    """_run in a drawing process on its inputs with `changes`: {field: value} set since it was forked."""
    return _run(job, dataclasses.replace(_WORKER_INPUTS, **changes) if changes else None)


class Drawing:
    """Figures drawn while the builder goes on with other work.

    ``Drawing(inputs, out_dir, processes)`` forks processes - 1 drawing processes at once; they
    inherit ``inputs`` as it is then, and the builder's own process stays free for its work.
    ``draw(group, jobs)`` hands them jobs, which they take in order. ``finish(group, jobs, inputs)``
    hands them the last jobs too, which may need values the early inputs lacked (the fields of
    ``inputs`` that changed since the fork go with each of them, pickled), while this process draws,
    from the end of the list, every job that no drawing process has started. It returns every entry,
    {name: entry} in the order the jobs were given, and the seconds each group's jobs took to draw,
    summed over the processes. With one process, everything is drawn by finish.
    """

    def __init__(self, inputs, out_dir, processes):
        self.inputs, self.out_dir = inputs, out_dir
        self.jobs, self.futures = [], []  # (group, job) and its Future (None: drawn by finish)
        self.pool = None
        if processes > 1:
            # A worker that dies makes the executor raise BrokenProcessPool (multiprocessing.Pool would wait forever).
            self.pool = ProcessPoolExecutor(processes - 1, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_start_worker, initargs=(inputs,))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def draw(self, group, job_list, changes=None):
        for fn, args in job_list:
            job = (fn, args, self.out_dir)
            self.jobs.append((group, job))
            self.futures.append(self.pool.submit(_run_changed, job, changes) if self.pool else None)

    def finish(self, group, job_list, inputs):
        changes = {f.name: getattr(inputs, f.name) for f in dataclasses.fields(inputs)
                   if getattr(inputs, f.name) is not getattr(self.inputs, f.name)}
        self.draw(group, job_list, changes)
        results = [None] * len(self.jobs)
        for j in reversed(range(len(self.jobs))):
            if self.futures[j] is None or self.futures[j].cancel():
                results[j] = _run(self.jobs[j][1], inputs)
        for j in range(len(self.jobs)):
            if results[j] is None:
                results[j] = self.futures[j].result()
        entries, seconds = {}, {}
        for (group, _), (made, took) in zip(self.jobs, results):
            seconds[group] = seconds.get(group, 0.0) + took
            for entry in made if isinstance(made, list) else [made]:
                entries[entry.pop("name")] = entry
        return entries, {g: round(t, 3) for g, t in seconds.items()}
