"""A link checker for the built site, with the standard library's HTML parser.

It finds every href, src and srcset, resolves relative ones against the page, and
reports targets that are missing, anchors that no element carries, paths that
start at the root, anything the page would load from the network, and images
without alt text.
"""

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LOADING = {("img", "src"), ("script", "src"), ("link", "href"), ("source", "src"), ("source", "srcset"),
           ("iframe", "src")}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs, self.ids, self.imgs = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.ids.add(a["name"])
        if tag == "img":
            self.imgs.append(a)
        for attr in ("href", "src"):
            if attr in a and a[attr] is not None:
                self.refs.append((tag, attr, a[attr]))
        for candidate in (a.get("srcset") or "").split(","):  # "url [descriptor], ...": every url
            if candidate.strip():
                self.refs.append((tag, "srcset", candidate.split()[0]))


def parse(path):
    page = _Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    return page


EXPLORER_STATE = {"image", "class", "layer", "epoch", "method", "net"}  # the keys explorer.js reads


def check_site(root):
    """A list of problems (empty when the site is sound)."""
    root = Path(root).resolve()
    pages = {p: parse(p) for p in root.rglob("*.html")}
    problems = []
    for path, page in pages.items():
        rel = path.relative_to(root)
        for img in page.imgs:
            if not (img.get("alt") or "").strip():
                problems.append(f"{rel}: <img src={img.get('src')!r}> has no alt text")
        for tag, attr, value in page.refs:
            url = urlsplit(value)
            if url.scheme in ("http", "https") or value.startswith("//"):
                if (tag, attr) in LOADING:
                    problems.append(f"{rel}: <{tag} {attr}={value!r}> loads from the network")
                continue
            if url.scheme in ("mailto", "data"):
                continue
            if url.scheme:
                problems.append(f"{rel}: <{tag} {attr}={value!r}> has an unexpected scheme")
                continue
            if value.startswith("/"):
                problems.append(f"{rel}: <{tag} {attr}={value!r}> is root-absolute")
                continue
            target = (path.parent / unquote(url.path)).resolve() if url.path else path
            if root not in target.parents and target != root:
                problems.append(f"{rel}: <{tag} {attr}={value!r}> points outside the site")
                continue
            if not target.is_file():
                problems.append(f"{rel}: <{tag} {attr}={value!r}> -> missing {target.relative_to(root)}")
                continue
            if url.fragment and target.suffix == ".html":
                if "=" in url.fragment:  # a view of the explorer (#image=12&class=3): state, not an anchor
                    state = dict(part.partition("=")[::2] for part in url.fragment.split("&"))
                    if "explorer" not in pages[target].ids or not set(state) <= EXPLORER_STATE:
                        problems.append(f"{rel}: <{tag} {attr}={value!r}> -> not a view of the explorer")
                elif url.fragment not in pages[target].ids:
                    problems.append(f"{rel}: <{tag} {attr}={value!r}> -> no id {url.fragment!r} in "
                                    f"{target.relative_to(root)}")
    return problems
