"""Run the "Try it" page's self-test in a headless Chromium and read its results from the page.

The page checks its JavaScript network against NumPy's answers for a few test
images and times one forward pass plus Grad-CAM; it writes the results into the
data-* attributes of its #selftest element. Chromium's --dump-dom prints the
page after its scripts have run, so no driver is needed. Without a Chromium or
Chrome on the machine, the build says so in run.json and carries on.
"""

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")
FIELDS = {"status": str, "images": int, "max-prob-diff": float, "max-cam-diff": float, "same-class": int,
          "ms": float}


def find_browser():
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _SelfTest(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attrs = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == "selftest":
            self.attrs = attrs


def selftest(page, timeout=120):
    """The self-test's results as a dict (with "measured": False and a reason when it could not run)."""
    browser = find_browser()
    if browser is None:
        return {"measured": False, "reason": "no Chromium or Chrome found on this machine"}
    with tempfile.TemporaryDirectory() as profile:
        try:
            done = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
                 "--dump-dom", Path(page).resolve().as_uri()],
                capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"measured": False, "reason": f"{browser} did not run the page: {e}"}
        version = subprocess.run([browser, "--version"], capture_output=True, text=True).stdout.strip()
    parser = _SelfTest()
    parser.feed(done.stdout)
    if parser.attrs is None or parser.attrs.get("data-status") != "done":
        status = (parser.attrs or {}).get("data-status", "missing")
        return {"measured": False, "reason": f"the self-test did not finish (status {status})", "browser": version}
    result = {"measured": True, "browser": version}
    for field, kind in FIELDS.items():
        result[field.replace("-", "_")] = kind(parser.attrs[f"data-{field}"])
    return result
