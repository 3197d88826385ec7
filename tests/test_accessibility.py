"""Every page as every reader meets it: on a phone (360 px) and a desktop (1280 px), in light
and dark mode, with the keyboard and a screen reader -- checked in headless Chromium.

The accessibility rules are axe-core's, a test-only npm package (tests/package.json):
`npm ci --prefix tests` installs it; .ci/run does. Without it the axe test skips, except
under CI (CI=true), where it fails.
"""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .browser import browser_or_skip, console_errors

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (360, 1280)
SCHEMES = ("light", "dark")


def axe_or_skip():
    if AXE.is_file():
        return AXE.read_text()
    message = f"the accessibility test needs axe-core in {AXE}: run `npm ci --prefix tests`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def every_page(site):
    return sorted(site.glob("*.html")) + sorted((site / "gallery").glob("*.html"))


def set_scheme(browser, scheme):
    """Emulate the reader's colour-scheme preference (None: the browser's own)."""
    features = [{"name": "prefers-color-scheme", "value": scheme}] if scheme else []
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def open_settled(browser, page):
    """Load a page and wait until the explorer and the lab (if it is one of them) have set themselves up."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#explorer, #lab'))"
        ".every(function (r) { return ['ready', 'done', 'failed'].indexOf(r.dataset.status) >= 0; })"))
    browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                 "requestAnimationFrame(function () { requestAnimationFrame(done); });")


# the boxes that scroll sideways inside the page but cannot be reached by the keyboard
UNREACHABLE = """return Array.from(document.querySelectorAll('main table, main .math-display')).filter(function (t) {
    const b = t.matches('table') && t.parentElement.classList.contains('table-scroll') ? t.parentElement : t;
    return b.scrollWidth > b.clientWidth + 1 && b.tabIndex !== 0; }).map(function (t) { return t.outerHTML.slice(0, 80); })"""


def test_every_page_fits_a_phone_and_a_desktop_with_no_console_error(quick_site, browser):
    """At 360 and 1280 px wide, wide tables and equations scroll inside their own box, reachable by
    the keyboard; the page itself never scrolls sideways, and nothing is logged as an error."""
    problems = []
    try:
        for width in WIDTHS:
            browser.set_window_size(width, 900)
            for page in every_page(quick_site):
                open_settled(browser, page)
                name = f"{page.relative_to(quick_site)} at {width} px"
                scroll, visible = browser.execute_script(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                if scroll > visible:
                    problems.append((name, f"the page is {scroll} px wide in a {visible} px window"))
                unreachable = browser.execute_script(UNREACHABLE)
                if unreachable:
                    problems.append((name, "boxes that scroll but cannot be focused", unreachable))
                errors = console_errors(browser)
                if errors:
                    problems.append((name, errors))
        assert problems == []
    finally:
        browser.set_window_size(1280, 900)


def axe_violations(browser, axe, site, width):
    """axe's violations on every page of site at one window width, in light and dark mode."""
    found = []
    browser.set_window_size(width, 900)
    for scheme in SCHEMES:
        set_scheme(browser, scheme)
        for page in every_page(site):
            open_settled(browser, page)
            console_errors(browser)  # on file:// axe's own requests log errors: clear the log first
            browser.execute_script(axe)
            violations = browser.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']}).then(function (r) {"
                "  done(r.violations.map(function (v) { return [v.id, v.impact,"
                "    v.nodes.slice(0, 3).map(function (n) { return n.target.join(' '); })]; })); },"
                "  function (e) { done([['axe failed', String(e), []]]); });")
            found += [(f"{page.relative_to(site)} at {width} px, {scheme}", *v) for v in violations]
    return found


def test_axe_finds_no_violation_on_any_page_in_light_or_dark_mode(quick_site, browser):
    axe = axe_or_skip()
    index = quick_site / "index.html"
    background = {}
    for scheme in SCHEMES:  # the emulation works: the page follows it
        set_scheme(browser, scheme)
        open_settled(browser, index)
        background[scheme] = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background["light"] != background["dark"]

    # one width in the session's browser and the other in a second one, at the same time: axe is
    # single-threaded JavaScript, and two cores check the pages in half the time
    second, tmp = browser_or_skip()
    try:
        with ThreadPoolExecutor(2) as pool:
            found = sum(pool.map(lambda job: axe_violations(job[0], axe, quick_site, job[1]),
                                 ((browser, WIDTHS[1]), (second, WIDTHS[0]))), [])
        assert found == []
    finally:
        second.quit()
        shutil.rmtree(tmp, ignore_errors=True)
        set_scheme(browser, None)
        browser.set_window_size(1280, 900)
