"""Chapters and templates to HTML.

Each content/*.md file is first a Jinja2 template -- it places figures, tables,
code and measured numbers -- and then Markdown. Pages are gathered first (a
sorted walk of content/, front matter read), then rendered, then poured into
templates/*.html; every link is made relative to the page that holds it, so
the site works from file:// and under any path on a web server.
"""

import ast
import html
import posixpath
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import jinja2.nodes
import markdown
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from cnn.errors import UserError

from .mathtex import MathRenderer
from .words import with_article

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN_EXTENSIONS = ["toc", "tables", "attr_list", "admonition", "md_in_html", "footnotes",
                       "pymdownx.superfences", "pymdownx.highlight", "pymdownx.arithmatex"]
MARKDOWN_CONFIG = {
    "toc": {"permalink": "#", "permalink_title": "Link to this section", "toc_depth": "2-3"},
    "pymdownx.highlight": {"css_class": "highlight", "guess_lang": False},
    "pymdownx.arithmatex": {"generic": True},
}
_INLINE_MATH = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK_MATH = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


@dataclass
class Page:
    source: Path  # the chapter file
    dest: str  # path of the output file inside the site, '/'-separated
    title: str
    order: float
    slug: str
    body: str = ""  # the chapter text after the front matter (line numbers kept)
    html: str = ""
    toc: list = field(default_factory=list)


def relative_url(from_page, to_path):
    """The URL of to_path (site-relative, may end in #anchor) from the page at from_page."""
    path, hash_, anchor = to_path.partition("#")
    if not path:
        return hash_ + anchor
    rel = posixpath.relpath(path, posixpath.dirname(from_page) or ".")
    return rel + hash_ + anchor


# ---------------------------------------------------------------- gathering

def read_front_matter(path):
    """(metadata dict, body) of a chapter; the front matter lines become blank lines in body."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not UTF-8 text (byte {e.object[e.start]:#x}); "
                        "save the chapter as UTF-8.") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror}).") from None
    lines = text.split("\n")
    meta = {}
    if lines and lines[0].strip() == "---":
        try:
            end = lines.index("---", 1)
        except ValueError:
            raise UserError(f"{path}: front matter opened with '---' on line 1 is never closed; "
                            "end it with a line holding only '---'.") from None
        for number, line in enumerate(lines[1:end], start=2):
            if not line.strip():
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise UserError(f"{path}, line {number}: front matter lines are 'key: value', "
                                f"got {line!r}.")
            meta[key.strip()] = value.strip()
        lines[: end + 1] = [""] * (end + 1)
    return meta, "\n".join(lines)


def gather_pages(content_dir):
    """Every chapter in content_dir, in reading order; the first becomes index.html."""
    content_dir = Path(content_dir)
    if not content_dir.is_dir():
        raise UserError(f"{content_dir}: no such folder; --content must name a folder of chapters.")
    pages, by_dest = [], {}
    for path in sorted(content_dir.glob("*.md")):
        meta, body = read_front_matter(path)
        if "title" not in meta:
            raise UserError(f"{path}: no 'title:' in the front matter; start the file with\n"
                            "---\ntitle: The chapter's title\norder: 1\n---")
        try:
            order = float(meta.get("order", len(pages) + 1))
        except ValueError:
            raise UserError(f"{path}: 'order: {meta['order']}' is not a number.") from None
        slug = re.sub(r"^\d+[-_]", "", path.stem)
        if slug == "index":
            raise UserError(f"{path}: a chapter may not be named index; the first chapter becomes "
                            "index.html. Rename the file.")
        dest = f"{slug}.html"
        if dest in by_dest:
            raise UserError(f"{path} and {by_dest[dest]} would both be written to {dest}; "
                            "rename one of them.")
        by_dest[dest] = path
        pages.append(Page(path, dest, meta["title"], order, slug, body))
    if not pages:
        raise UserError(f"{content_dir}: no chapters (*.md files) found.")
    pages.sort(key=lambda p: (p.order, p.source.name))
    pages[0].dest = "index.html"
    return pages


def chapter_environment():
    """The chapters' Jinja2: sandboxed (a chapter cannot reach Python's internals), strict, autoescaped."""
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True)
    env.filters.update(pct=_pct, num=_num, fixed=_fixed, a=with_article)
    return env


def check_chapters(pages, figure_names=None, series=None):
    """Before any training: every chapter parses, and every source(), figure() and frames() it
    calls with a constant name names something that exists (figure_names and series, when given)."""
    env = chapter_environment()
    for page in pages:
        try:
            tree = env.parse(page.body)
        except jinja2.TemplateSyntaxError as e:
            raise _syntax_error(page, e) from None
        for call in tree.find_all(jinja2.nodes.Call):
            helper = call.node.name if isinstance(call.node, jinja2.nodes.Name) else None
            wanted = {"source": 2, "figure": 1, "frames": 1}.get(helper, 0)
            args = call.args[:wanted]
            if not wanted or len(args) < wanted or not all(isinstance(a, jinja2.nodes.Const) for a in args):
                continue  # not a helper, or a name computed in the chapter: checked when the page is rendered
            values = [a.value for a in args]
            try:
                if helper == "source":
                    source_snippet(*values)
                elif helper == "figure" and figure_names is not None:
                    _known("figure", values[0], figure_names)
                elif helper == "frames" and series is not None:
                    _known("frames", values[0], series)
            except UserError as e:
                raise UserError(f"{page.source}, line {call.lineno}: {e}") from None


def _known(helper, name, names):
    """UserError unless name is one of names (a figure for figure(), a series for frames())."""
    if name not in names:
        kind = "figure" if helper == "figure" else "figure series"
        raise UserError(f"{helper}({name!r}): no such {kind}; the names are {', '.join(sorted(names))}.")


# ---------------------------------------------------------------- code from source

def source_snippet(relpath, name):
    """Source of the function or class `name` ('Class.method' for a method) in a project's .py file."""
    where = f"source({relpath!r}, {name!r})"
    path = (ROOT / str(relpath)).resolve()
    if not path.is_relative_to(ROOT) or path.suffix != ".py":
        raise UserError(f"{where}: only the project's own Python files can be shown; name one by its "
                        "path in the project, like 'cnn/layers.py'.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{where}: no such file in the project.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{where}: cannot be read ({e}).") from None
    nodes, parts = ast.parse(text).body, name.split(".")
    for part in parts:
        match = next((n for n in nodes if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                      and n.name == part), None)
        if match is None:
            raise UserError(f"source({relpath!r}, {name!r}): {part!r} is not defined in {relpath}.")
        nodes = match.body
    first = min([match.lineno] + [d.lineno for d in match.decorator_list])
    lines = text.split("\n")[first - 1 : match.end_lineno]
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[indent:] for l in lines), first


def highlight_python(code, first_line=None):
    formatter = HtmlFormatter(cssclass="highlight", linenos="inline" if first_line else False,
                              linenostart=first_line or 1)
    return highlight(code, PythonLexer(), formatter)


def pygments_css():
    light = HtmlFormatter(style="friendly").get_style_defs(".highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs(".highlight")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


# ---------------------------------------------------------------- rendering

class Renderer:
    """Renders gathered pages with a chapter context and the site's templates."""

    def __init__(self, templates_dir, context, figures, math=None):
        self.context = context  # numbers and tables for the chapters
        self.figures = figures  # name -> {"src", "alt", "caption", "width", "height"}
        self.math = math or MathRenderer()
        self.chapter_env = chapter_environment()
        self.site_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)),
                                           undefined=jinja2.StrictUndefined, autoescape=True)
        self.site_env.filters.update(pct=_pct, num=_num, a=with_article)

    # -- the helpers a chapter can call, bound to the page being rendered

    def _helpers(self, page):
        url = lambda target: relative_url(page.dest, target)
        macros = self.site_env.get_template("macros.html").module

        def one_figure(name, caption=None, alt=None, id=None, frame=None):
            fig = self.figures[name]
            shown = Markup(fig.get("caption", "") if caption is None else caption)
            if fig.get("kind") == "map-grid":  # small maps as images in the page, their numbers as text
                return macros.map_grid(fig, shown, alt or fig["alt"], id)
            if fig.get("kind") == "panels":  # a few small images under their titles
                return macros.panels(fig, shown, alt or fig["alt"], id)
            if fig.get("kind") == "bars":  # a bar chart as a table: its numbers as text
                return macros.bars(fig, shown, id)
            return macros.figure(fig, url(fig["src"]), shown, alt or fig["alt"], id, frame,
                                 url(fig["dark"]) if fig.get("dark") else None)

        def figure(name, caption=None, alt=None, id=None):
            _known("figure", name, self.figures)
            return one_figure(name, caption, alt, id or f"fig-{name}")

        def frames(name, label="Epoch"):
            """All frames of a figure series (one per epoch, say), with a slider when JavaScript runs."""
            _known("frames", name, {n.split("/")[0] for n in self.figures if "/" in n})
            names = [n for n in self.figures if n.startswith(name + "/")]
            names.sort(key=lambda n: self.figures[n].get("frame", 0))
            return macros.frames(name, label, [one_figure(n, frame=self.figures[n].get("frame_label", ""))
                                               for n in names])

        def source(relpath, name, summary=None, open=False):
            code, first = source_snippet(relpath, name)
            title = Markup(summary) if summary else \
                Markup("The code: <code>{}</code> in <code>{}</code>").format(name, relpath)
            return macros.code(title, Markup(highlight_python(code, first)), open)

        def link(target):
            return url(target)

        def gallery_grid():
            """Thumbnails of the gallery, each linking to its image's own page."""
            names = self.context["dataset"]["class_names"]
            items = [{"why": item["why"], "index": item["index"], "said": names[item["pred"]],
                      "confidence": 100 * item["confidence"], "href": url(f"gallery/{item['index']}.html"),
                      "explore": url("explorer.html") + f"#image={item['index']}",
                      "src": url(self.figures[f"gallery/{item['index']}/class-{item['pred']}"]["src"]),
                      "verdict": f"labelled {names[item['label']]}" + ("" if item["correct"] else ": wrong")}
                     for item in self.context["explain"]["gallery"]]
            return macros.gallery_grid(items)

        return dict(figure=figure, frames=frames, source=source, link=link, gallery_grid=gallery_grid)

    def render_chapter(self, page, pages):
        """Jinja2, then Markdown, then math: page.html and page.toc."""
        try:
            template = self.chapter_env.from_string(page.body)
            text = template.render(**self.context, **self._helpers(page), page=page, pages=pages)
        except jinja2.TemplateSyntaxError as e:
            raise _syntax_error(page, e) from None
        except Exception as e:  # anything a placeholder can raise: a helper's UserError, 1/0, a missing key
            if isinstance(e, UserError):
                what = str(e)
            elif isinstance(e, SecurityError):
                what = f"{str(e).rstrip('.')}; chapters may use the chapter context and helpers only"
            else:
                what = (f"{type(e).__name__}: {e}. Check the placeholder on that line against the chapter "
                        "context (see report/context.py)")
            line = _template_line(e)
            raise UserError(f"{page.source}{f', line {line}' if line else ''}: {what}") from None
        md = markdown.Markdown(extensions=MARKDOWN_EXTENSIONS, extension_configs=MARKDOWN_CONFIG)
        body = md.convert(text)
        url = lambda name: relative_url(page.dest, "math/" + name)
        try:
            body = _BLOCK_MATH.sub(lambda m: self.math.display(html.unescape(m.group(1)), url), body)
            body = _INLINE_MATH.sub(lambda m: self.math.inline(html.unescape(m.group(1)), url), body)
        except UserError as e:
            raise UserError(f"{page.source}: {e}") from None
        page.html, page.toc = body, md.toc_tokens

    def write_page(self, page, pages, out_dir, template="chapter.html", **extra):
        """Render a page into its template and write it under out_dir."""
        i = pages.index(page) if page in pages else None  # gallery pages are not chapters
        context = dict(self.context, **self._helpers(page), page=page, pages=pages,
                       prev=pages[i - 1] if i else None,
                       next=pages[i + 1] if i is not None and i + 1 < len(pages) else None,
                       url=lambda target: relative_url(page.dest, target),
                       content=Markup(page.html), **extra)
        try:
            text = self.site_env.get_template(template).render(**context)
        except jinja2.TemplateError as e:
            line = getattr(e, "lineno", None) or _template_line(e, chapter=False)
            raise UserError(f"templates/{template}{f', line {line}' if line else ''}: {e}") from None
        dest = Path(out_dir) / page.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")


def _syntax_error(page, e):
    return UserError(f"{page.source}, line {e.lineno}: {e.message}. Fix the placeholder "
                     "({{ ... }} or {% ... %}) on that line.")


def _template_line(exc, chapter=True):
    """The line of the chapter (or, chapter=False, of a site template) an exception was raised from.

    Jinja2 rewrites its traceback frames to point at template lines; a chapter is
    compiled from a string ("<template>"), so a frame of a macro that the chapter
    called is not mistaken for the chapter's own line."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>" if chapter else frame.filename.endswith(".html"):
            return frame.lineno
    return None


def _fixed(text, width):
    """text right-aligned in `width` characters: a measured time keeps the page's size in bytes the same
    from build to build (the browser collapses the padding)."""
    return str(text).rjust(width)


def _pct(value, digits=2):
    return f"{100 * value:.{digits}f} %"


def _num(value, digits=None):
    if isinstance(value, int) or digits is None and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{2 if digits is None else digits}f}"
