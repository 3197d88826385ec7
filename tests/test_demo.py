"""The in-browser demo: the export, and the JavaScript network checked in headless Chromium."""

import json
import os
import shutil
import time

import pytest



def test_the_exported_model_is_compact_and_loads_with_a_script_tag(quick_site):
    script = quick_site / "static" / "js" / "trained-model.js"
    assert script.stat().st_size <= 1_000_000
    text = script.read_text()
    assert text.count("window.CNN_MODEL = ") == 1 and text.count("window.CNN_SAMPLES = ") == 1
    model = json.loads(text.split("window.CNN_MODEL = ", 1)[1].split(";\n", 1)[0])
    assert [l["type"] for l in model["layers"]][:3] == ["conv", "relu", "maxpool"]  # batch norm folded away
    page = (quick_site / "try-it.html").read_text()
    assert '<script src="static/js/trained-model.js"></script>' in page
    assert "fetch(" not in (quick_site / "static" / "js" / "demo.js").read_text()


def test_run_json_keeps_the_browser_measurement(quick_site):
    browser = json.loads((quick_site / "run.json").read_text())["browser"]
    if not browser["measured"] and not os.environ.get("CI"):
        pytest.skip(browser["reason"])
    assert browser["measured"] and browser["passed"]
    assert browser["max_prob_diff"] <= 1e-4 and browser["max_cam_diff"] <= 1e-3
    print(f"\nin-browser forward pass + Grad-CAM at build time: {browser['ms']:.2f} ms")


def _open_demo(browser, site):
    from selenium.webdriver.common.by import By

    browser.get((site / "try-it.html").as_uri())
    selftest = browser.find_element(By.ID, "selftest")
    for _ in range(100):
        if selftest.get_attribute("data-status") != "pending":
            break
        time.sleep(0.1)
    return selftest


def test_the_javascript_network_matches_numpy_in_chromium(quick_site, browser):
    from .browser import console_errors

    selftest = _open_demo(browser, quick_site)
    assert selftest.get_attribute("data-status") == "done", selftest.text
    images = int(selftest.get_attribute("data-images"))
    assert images == 20
    assert float(selftest.get_attribute("data-max-prob-diff")) <= 1e-4
    assert float(selftest.get_attribute("data-max-cam-diff")) <= 1e-3
    assert int(selftest.get_attribute("data-same-class")) == images
    print(f"\nforward pass + Grad-CAM in headless Chromium: {selftest.get_attribute('data-ms')} ms (median)")
    assert console_errors(browser) == []


def test_a_drawn_stroke_gets_a_prediction_in_chromium(quick_site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from .browser import console_errors, screenshot_is_not_blank

    _open_demo(browser, quick_site)
    prediction = browser.find_element(By.ID, "prediction")
    assert prediction.text.startswith("Draw a digit")
    pad = browser.find_element(By.ID, "pad")
    actions = ActionChains(browser).move_to_element_with_offset(pad, -10, -100).click_and_hold()
    for _ in range(10):
        actions.move_by_offset(2, 20)  # a vertical stroke: a one
    actions.release().perform()
    time.sleep(0.2)
    assert prediction.text.startswith("The network says ")
    said = prediction.text.split("says ", 1)[1].split(",")[0]
    shown = [b for b in browser.find_elements(By.CSS_SELECTOR, "#cam-classes button")
             if b.get_attribute("aria-pressed") == "true"]
    assert [b.text for b in shown] == [said]
    other = browser.find_elements(By.CSS_SELECTOR, "#cam-classes button")[0 if said != "0" else 1]
    other.click()
    assert browser.find_element(By.ID, "cam-note").text.startswith(f"Grad-CAM for class {other.text}")
    browser.find_element(By.ID, "clear").click()
    assert prediction.text.startswith("Draw a digit")
    assert console_errors(browser) == []
    assert screenshot_is_not_blank(browser.get_screenshot_as_png())


def _draw(browser, points):
    """One stroke through points (x, y), in CSS pixels from the middle of the drawing box; then the
    prepared 28 x 28 input as the page shows it, black ink on white."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "clear").click()
    pad = browser.find_element(By.ID, "pad")
    actions = ActionChains(browser).move_to_element_with_offset(pad, *points[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for k in range(1, 6):
            actions.move_to_element_with_offset(pad, round(x0 + (x1 - x0) * k / 5), round(y0 + (y1 - y0) * k / 5))
    actions.release().perform()
    time.sleep(0.2)
    red = browser.execute_script(
        "const c = document.getElementById('input-view');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).filter((v, i) => i % 4 === 0);")
    return [1 - v / 255 for v in red]


def test_a_drawing_gets_the_same_stroke_width_small_or_large(quick_site, browser):
    """The strokes are drawn again with a pen in proportion to the drawing (issue: MNIST's strokes are
    1.7-3.9 px wide; a tiny drawing used to become a blob and a huge one a hairline)."""
    from .browser import console_errors

    _open_demo(browser, quick_site)
    widths = {}
    for size in (15, 120):  # half the height of a one, in CSS pixels: tiny and nearly the whole box
        ink = _draw(browser, [(0, -size), (0, size)])
        # the ink over the length of the line: 20 px tall less a pen's width (the 2.5 px pen covers 3 columns:
        # scaled into the 20 px box, the line's width is rounded to whole pixels)
        widths[size] = sum(ink) / 17.5
    assert all(1.7 <= w <= 3.9 for w in widths.values()), widths
    assert abs(widths[15] - widths[120]) < 0.25 * widths[120], widths
    masses = {size: sum(_draw(browser, [(-size, -size), (-size, size), (size, size)])) for size in (15, 120)}  # an L
    assert abs(masses[15] - masses[120]) < 0.15 * masses[120], masses
    assert console_errors(browser) == []


def test_a_test_digit_from_the_picker_is_classified(quick_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from .browser import console_errors

    _open_demo(browser, quick_site)
    select = Select(browser.find_element(By.ID, "samples"))
    assert len(select.options) == 21  # "choose" and the twenty test digits
    select.select_by_index(1)
    said = browser.find_element(By.ID, "prediction").text
    assert said.startswith("The network says ")
    # the test image itself, unchanged: the page's confidence is NumPy's (written into the page's data)
    samples = browser.execute_script("return window.CNN_SAMPLES")
    numpy = browser.execute_script("return Array.from(CNN.decodeFloats(window.CNN_SAMPLES.proba)).slice(0, 10)")
    assert f"{100 * max(numpy):.1f} %" in said, (said, max(numpy))
    assert said.startswith(f"The network says {samples['pred'][0]},")  # MNIST's class names are its digits
    browser.find_element(By.ID, "clear").click()  # Clear, then the same digit again: it loads again
    assert select.first_selected_option.get_attribute("value") == ""
    select.select_by_index(1)
    assert browser.find_element(By.ID, "prediction").text == said
    assert console_errors(browser) == []


def test_without_javascript_the_page_shows_the_digits_statically(quick_site):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from .browser import CHROMEDRIVER, CHROMIUM, browser_or_skip, driver_env

    driver, tmp = browser_or_skip()  # skips (or fails under CI) without Chromium
    driver.quit()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", f"--user-data-dir={tmp}/nojs"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    nojs = webdriver.Chrome(service=Service(CHROMEDRIVER, env=driver_env(tmp)), options=options)
    try:
        nojs.get((quick_site / "try-it.html").as_uri())
        assert not nojs.find_element(By.ID, "demo").is_displayed()
        static = nojs.find_element(By.ID, "demo-static")
        assert static.is_displayed() and "JavaScript is off" in static.text
        images = static.find_elements(By.TAG_NAME, "img")
        assert len(images) == 20
        assert all(nojs.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
        assert "needs JavaScript" in nojs.find_element(By.ID, "selftest").text
    finally:
        nojs.quit()
        shutil.rmtree(tmp, ignore_errors=True)
