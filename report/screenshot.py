"""A screenshot of a built page, taken with headless Chromium (for the README).

    python -m report.screenshot [--site site] [--page training.html] [--top px] [--width 360] [--dark]
                                [--out .github/screenshot.png]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from .browsercheck import BROWSER_FLAGS, find_browser


def screenshot(page, out, width=1280, height=900, top=0, dark=False, fragment=""):
    """A width x height picture of page, starting `top` pixels down the page (in dark mode if dark).

    The page's scripts get a few seconds (of virtual time) to run first: the explorer unpacks its data."""
    browser = find_browser()
    if browser is None:
        sys.exit("screenshot: no Chromium or Chrome found on this machine (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height + top}",
                        "--hide-scrollbars", f"--screenshot={out}", "--virtual-time-budget=5000",
                        *(["--force-dark-mode", "--blink-settings=preferredColorScheme=0"] if dark else []),
                        Path(page).resolve().as_uri() + fragment], check=True, capture_output=True)
    if top:
        from PIL import Image

        with Image.open(out) as img:
            img.crop((0, top, width, top + height)).save(out, optimize=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", default="site")
    p.add_argument("--page", default="index.html")
    p.add_argument("--top", type=int, default=0, help="start this many pixels down the page")
    p.add_argument("--out", default=".github/screenshot.png")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--dark", action="store_true", help="as a reader in dark mode sees it")
    args = p.parse_args()
    name, hash_, fragment = args.page.partition("#")  # explorer.html#image=8: a view of the explorer
    page = Path(args.site) / name
    if not page.is_file():
        sys.exit(f"error: {page} not found; build the site first")
    screenshot(page, args.out, args.width, args.height, args.top, args.dark, hash_ + fragment)
    print(args.out)


if __name__ == "__main__":
    main()
