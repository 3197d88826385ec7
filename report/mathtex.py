"""TeX formulas typeset at build time as SVG files, with matplotlib's mathtext.

No JavaScript and no font download: each formula becomes a small SVG of glyph
outlines (Computer Modern shapes), placed with an <img> whose alt text is the
TeX source. Its size is given in em, so it scales with the text around it, and
its baseline sits on the text's baseline.

Display formulas use display-style fractions. ``\\begin{aligned} ... \\end{aligned}``
is laid out here, since mathtext has no environments: each line is split at
``&`` into a right-aligned left part and a left-aligned right part, each its
own image, in a two-column grid, so that the lines align at their relation signs.
"""

import hashlib
import io
import re
from dataclasses import dataclass
from html import escape

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.mathtext import MathTextParser  # noqa: E402

from cnn.errors import UserError  # noqa: E402

_SIZE = 12.0  # points at which formulas are laid out; sizes are then given in em
_STYLE = {"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "mathtex"}
_ALIGNED = re.compile(r"^\s*\\begin\{aligned\}(.*)\\end\{aligned\}\s*$", re.S)


@dataclass(frozen=True)
class Formula:
    """One rendered piece of TeX: the SVG bytes and its size in em."""

    tex: str
    svg: bytes
    width: float
    height: float
    depth: float  # below the baseline

    @property
    def filename(self):
        return hashlib.sha256(self.svg).hexdigest()[:16] + ".svg"


def _mathtext(tex, display):
    """mathtext's dialect: one line, display-style fractions in display math."""
    tex = " ".join(tex.split())
    if display:
        tex = re.sub(r"\\frac(?![a-z])", r"\\dfrac", tex)
    return tex


def render(tex):
    """Typeset one TeX formula (no environments) into a Formula."""
    source = f"${tex}$"
    prop = FontProperties(size=_SIZE, math_fontfamily="cm")
    with matplotlib.rc_context(_STYLE):
        try:
            width, height, depth, _, _ = MathTextParser("path").parse(source, dpi=72, prop=prop)
        except ValueError as e:
            raise UserError(f"cannot typeset the formula {tex!r}: {str(e).splitlines()[-1]}") from None
        fig = Figure(figsize=(width / 72, height / 72))
        fig.text(0, depth / height, source, fontproperties=prop)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", transparent=True,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return Formula(tex, buf.getvalue(), width / _SIZE, height / _SIZE, depth / _SIZE)


class MathRenderer:
    """Turns TeX into HTML that points at SVG files, remembering every file it made."""

    def __init__(self):
        self.files = {}  # filename -> svg bytes
        self._memo = {}

    def _formula(self, tex):
        if tex not in self._memo:
            self._memo[tex] = render(tex)
        f = self._memo[tex]
        self.files[f.filename] = f.svg
        return f

    def _img(self, tex, url_of, alt, hidden=False):
        f = self._formula(tex)
        extra = ' aria-hidden="true"' if hidden else ""
        return (f'<img class="math" src="{escape(url_of(f.filename))}" alt="{escape(alt)}"{extra} '
                f'style="width:{f.width:.3f}em;height:{f.height:.3f}em;vertical-align:{-f.depth:.3f}em">')

    def inline(self, tex, url_of):
        return f'<span class="math-inline">{self._img(_mathtext(tex, False), url_of, tex)}</span>'

    def display(self, tex, url_of):
        aligned = _ALIGNED.match(tex)
        if not aligned:
            return f'<div class="math-display">{self._img(_mathtext(tex, True), url_of, tex)}</div>'
        cells = []
        for line in re.split(r"\\\\", aligned.group(1)):
            if not line.strip():
                continue
            left, _, right = line.partition("&")
            right = "{}" + right.strip()  # a relation sign keeps its spacing on the left
            for part, cls in ((left.strip(), "math-left"), (right, "math-right")):
                img = self._img(_mathtext(part, True), url_of, part, hidden=True) if part.strip("{} ") else ""
                cells.append(f'<span class="{cls}">{img}</span>')
        return (f'<div class="math-display math-aligned" role="math" aria-label="{escape(tex)}">'
                + "".join(cells) + "</div>")
