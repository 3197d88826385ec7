"""Run the "Try it" page's self-test in a headless Chromium and read its results from the page.

The page checks its JavaScript network against NumPy's answers for a few test
images and times one forward pass plus Grad-CAM; it writes the results into the
data-* attributes of its #selftest element. Chromium's --dump-dom prints the
page after its scripts have run, so no driver is needed. Without a Chromium or
Chrome on the machine, the build says so in run.json and carries on.
"""

import html
import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")
HERE = Path(__file__).resolve().parent
FIELDS = {"status": str, "images": int, "max-prob-diff": float, "max-cam-diff": float, "same-class": int,
          "ms": float}


def find_browser():
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Attrs(HTMLParser):
    """The attributes (and, with text=True, the text) of the element with a given id."""

    def __init__(self, element_id, text=False):
        super().__init__(convert_charrefs=False)
        self.id, self.want_text, self.attrs, self.text, self._inside = element_id, text, None, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == self.id:
            self.attrs, self._inside, self.text = attrs, self.want_text, ""

    def handle_endtag(self, tag):
        self._inside = False

    def handle_data(self, data):
        if self._inside:
            self.text += data

    def handle_entityref(self, name):
        if self._inside:
            self.text += f"&{name};"

    def handle_charref(self, name):
        if self._inside:
            self.text += f"&#{name};"


def _dump_dom(url, timeout, budget_ms=None):
    """(the page's DOM after its scripts ran, browser version), or (None, reason)."""
    browser = find_browser()
    if browser is None:
        return None, "no Chromium or Chrome found on this machine"
    budget = [f"--virtual-time-budget={budget_ms}"] if budget_ms else []
    with tempfile.TemporaryDirectory() as profile:
        try:
            done = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
                 *budget, "--dump-dom", url],
                capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{browser} did not run the page: {e}"
    version = subprocess.run([browser, "--version"], capture_output=True, text=True).stdout.strip()
    return done.stdout, version


def selftest(page, timeout=120):
    """The self-test's results as a dict (with "measured": False and a reason when it could not run)."""
    dom, version = _dump_dom(Path(page).resolve().as_uri(), timeout)
    if dom is None:
        return {"measured": False, "reason": version}
    parser = _Attrs("selftest")
    parser.feed(dom)
    if parser.attrs is None or parser.attrs.get("data-status") != "done":
        status = (parser.attrs or {}).get("data-status", "missing")
        return {"measured": False, "reason": f"the self-test did not finish (status {status})", "browser": version}
    result = {"measured": True, "browser": version}
    for field, kind in FIELDS.items():
        result[field.replace("-", "_")] = kind(parser.attrs[f"data-{field}"])
    return result


HARNESS = """<!doctype html><html><head><meta charset="utf-8"><title>explorer self-test</title></head>
<body><pre id="result" data-status="running"></pre>
{scripts}
</body></html>
"""


def explorer_selftest(scripts, header, docs, timeout=600):
    """Run report/explorer_selftest.js in headless Chromium on NumPy's reference answers.

    scripts: the page's scripts (paths) in the order the explorer loads them; header and
    docs: from report.explorer.selftest_reference. Returns the largest differences found."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for epoch, doc in docs:
            name = f"reference-{epoch}.js"
            (tmp / name).write_text(f"window.EXPLORER_REFERENCE_EPOCH = {json.dumps(doc)};\n")
            files.append(name)
        (tmp / "reference.js").write_text(f"window.EXPLORER_REFERENCE = {json.dumps(dict(header, files=files))};\n")
        tags = [Path(p).resolve().as_uri() for p in scripts] + ["reference.js", (HERE / "explorer_selftest.js").as_uri()]
        (tmp / "selftest.html").write_text(HARNESS.format(scripts="\n".join(f'<script src="{t}"></script>' for t in tags)))
        dom, version = _dump_dom((tmp / "selftest.html").as_uri(), timeout, budget_ms=600_000)
    if dom is None:
        return {"measured": False, "reason": version}
    parser = _Attrs("result", text=True)
    parser.feed(dom)
    if parser.attrs is None or parser.attrs.get("data-status") != "done":
        return {"measured": False, "browser": version,
                "reason": f"the self-test did not finish: {html.unescape(parser.text or '')[:500]}"}
    result = json.loads(html.unescape(parser.text))
    return {"measured": True, "browser": version, **result}
