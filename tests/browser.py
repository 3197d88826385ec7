"""Headless Chromium through selenium, for the tests that look at the site as a reader does.

Without Chromium the tests that need it skip -- except under CI (CI=true),
where a missing browser is a failure: .ci/run installs Debian's chromium and
chromium-driver.
"""

import io
import os
import shutil
import tempfile

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def browser_or_skip():
    if not (shutil.which(CHROMEDRIVER) and shutil.which(CHROMIUM)):
        message = f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    tmp = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", "--window-size=1280,900",
                 f"--user-data-dir={tmp}/profile", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=driver_env(tmp)), options=options)
    driver.set_page_load_timeout(60)
    return driver, tmp


def driver_env(tmp):
    """The environment for a ChromeDriver and its Chromium: TMPDIR is tmp, where they leave their folders
    (removed with it), and this process's own TMPDIR stays as it was."""
    return dict(os.environ, TMPDIR=tmp)


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot_is_not_blank(png_bytes):
    """True if the screenshot has real content: many distinct colours and some contrast."""
    from PIL import Image

    img = Image.open(io.BytesIO(png_bytes)).convert("L")
    hist = img.histogram()
    used = sum(1 for h in hist if h)
    lo, hi = img.getextrema()
    return used > 20 and hi - lo > 100
