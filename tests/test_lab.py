"""The lab: a network trained in the page, in a Web Worker, checked against NumPy."""

import json
import math

import pytest

from report.browsercheck import find_browser


def _record(quick_site):
    return json.loads((quick_site / "run.json").read_text())["lab"]


def test_the_build_checked_the_lab_against_numpy_and_measured_it_in_chromium(quick_site):
    record = _record(quick_site)
    test, bench = record["selftest"], record["bench"]
    if not test["measured"]:
        pytest.fail(f"the lab's self-test did not run: {test['reason']}") if find_browser() else \
            pytest.skip(test["reason"])
    assert test["passed"] and test["tolerance"] == 1e-4
    assert set(test["worst"]) == {"loss", "gradient", "parameters after 3 steps", "running statistics"}
    assert max(w["abs"] for w in test["worst"].values()) <= 1e-4
    # 2 optimisers x 3 steps x (loss + 7 gradients: conv1, conv2 weights, 2 x gamma/beta, dense weight/bias)
    # + after the third step 8 parameters and 4 running statistics each
    assert test["compared"] == 2 * 3 * (1 + 8) + 2 * 12
    assert bench["measured"] and bench["seconds"] == 5 and bench["steps"] > 0
    assert bench["images_per_second"] > 0 and bench["test_accuracy"] > 0.5  # it learned in 5 s
    # 3 epochs of 5,000 images take longer than 5 s: the limit stopped it once it had trained 5 s (its time
    # counts training steps only, so it ends within a step of the limit)
    assert bench["stopped"] == "time" and 5.0 <= bench["trained_seconds"] <= 5.5
    assert record["sizes"]["train"] == 5000  # --quick: every training image it has (at most 10,000)


def test_the_lab_data_is_a_stratified_subset_with_numpys_curves(quick_site):
    text = (quick_site / "static" / "js" / "lab-data.js").read_text()
    doc = json.loads(text.split("window.CNN_LAB = ", 1)[1].rsplit(";", 1)[0])
    assert {doc[s]["count"] for s in ("train", "validation", "test")} == {5000, 1000}
    assert doc["numpy"]["steps"] and 0 < doc["numpy"]["test_accuracy"] <= 1
    assert {p["name"] for p in doc["presets"]} == {"too-high", "too-low", "no-bn", "plain-sgd"}


def _open(browser, quick_site):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((quick_site / "lab.html").as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.getElementById('lab').dataset.status") in ("ready", "failed"))
    assert browser.execute_script("return document.getElementById('lab').dataset.status") == "ready"


def _data(browser, key):
    return browser.execute_script(f"return document.getElementById('lab').dataset.{key}")


def _set_up(browser, quick_site, images, epochs):
    """The lab open and ready, set to train on `images` training images for `epochs` epochs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, quick_site)
    Select(browser.find_element(By.ID, "lab-train")).select_by_value(str(images))
    box = browser.find_element(By.ID, "lab-epochs")
    box.clear()
    box.send_keys(str(epochs))


KERNEL_PIXELS = ("return Array.from(document.querySelectorAll('#lab-kernels canvas')).map(function (c) {"
                 "  return Array.from(c.getContext('2d').getImageData(0, 0, 3, 3).data).join(','); })")


def test_before_start_the_page_shows_the_kernels_the_settings_start_from_and_the_empty_charts(quick_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from .browser import console_errors

    _open(browser, quick_site)
    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)
    first = browser.execute_script(KERNEL_PIXELS)
    assert len(first) == 8 and len(set(first)) == 8  # conv1 of the default widths, 8 and 16 channels
    assert find("#lab-loss").get_attribute("aria-label").endswith("0 to 15,000")  # 5,000 images x 3 epochs
    Select(find("#lab-widths")).select_by_value("16-32")
    assert len(browser.execute_script(KERNEL_PIXELS)) == 16
    Select(find("#lab-widths")).select_by_value("8-16")
    assert browser.execute_script(KERNEL_PIXELS) == first  # the same seed draws the same start
    seed = find("#lab-seed")
    seed.clear()
    seed.send_keys("2", Keys.TAB)
    other = browser.execute_script(KERNEL_PIXELS)
    assert len(other) == 8 and not set(other) & set(first)
    box = find("#lab-epochs")
    box.clear()
    box.send_keys("2", Keys.TAB)
    assert find("#lab-acc").get_attribute("aria-label").endswith("0 to 10,000")
    assert console_errors(browser) == []


def test_start_pause_resume_and_reset_in_chromium(quick_site, browser):
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from .browser import console_errors

    _set_up(browser, quick_site, 1000, 2)
    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)
    kernels = int(_data(browser, "kernelDraws"))
    start = browser.execute_script(KERNEL_PIXELS)
    find("#lab-start").click()
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: int(_data(browser, "steps") or 0) >= 5)
    assert _data(browser, "state") == "running" and find("#lab-start").get_attribute("disabled")
    find("#lab-pause").click()  # pause: the steps stop
    assert _data(browser, "state") == "paused"
    time.sleep(0.5)
    paused_at = int(_data(browser, "steps"))
    time.sleep(1.0)
    assert int(_data(browser, "steps")) == paused_at
    find("#lab-pause").click()  # resume
    wait.until(lambda d: int(_data(browser, "steps")) > paused_at)
    wait.until(lambda d: _data(browser, "status") == "done")
    assert _data(browser, "stopped") == "epochs" and float(_data(browser, "seconds")) > 0
    lr = float(browser.execute_script("return Math.pow(10, Number(document.getElementById('lab-lr').value))"))
    assert find("#lab-schedule").get_attribute("value") == "cosine"  # the default: the second of 2 epochs at lr/2
    assert float(_data(browser, "lr")) == pytest.approx(lr * (1 + math.cos(math.pi / 2)) / 2)
    assert float(_data(browser, "lossLast")) < float(_data(browser, "lossFirst"))  # the loss fell
    assert int(_data(browser, "kernelDraws")) > kernels + 1  # the kernels were redrawn as they learned
    assert 0.5 < float(_data(browser, "testAccuracy")) <= 1
    assert "test images right" in find("#lab-result").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#lab-confusion td")) == 100
    find("#lab-compare").click()
    assert find("#lab-compare").get_attribute("aria-pressed") == "true"
    find("#lab-reset").click()
    assert _data(browser, "state") == "idle" and _data(browser, "steps") is None
    assert browser.execute_script(KERNEL_PIXELS) == start  # back where the training started from
    assert not find("#lab-start").get_attribute("disabled") and not find("#lab-explain").is_displayed()
    assert console_errors(browser) == []


def test_the_explorer_explains_the_network_the_reader_trained(quick_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from .browser import console_errors

    _set_up(browser, quick_site, 1000, 1)
    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)
    find("#lab-start").click()
    WebDriverWait(browser, 60).until(lambda d: _data(browser, "status") == "done")
    find("#lab-explain").click()  # to the explorer, on the reader's weights
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.getElementById('explorer') && document.getElementById('explorer').dataset.status") == "ready")
    assert "net=lab" in browser.current_url
    assert "you trained in the lab (1,000 images" in find("#ex-summary").text
    assert [o.get_attribute("value") for o in find("#ex-layer").find_elements(By.TAG_NAME, "option")] == ["conv1", "conv2"]
    assert not find("#ex-epoch").is_displayed()
    find("#ex-next").click()  # the state keeps the network
    assert "image=1" in browser.current_url and "net=lab" in browser.current_url
    assert console_errors(browser) == []


def test_a_learning_rate_far_too_high_ends_in_a_message_not_a_frozen_page(quick_site, browser):
    """The loss explodes (and sometimes overflows to NaN): the page stops and says so."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from .browser import console_errors

    _open(browser, quick_site)
    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)
    preset = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#lab-presets button") if "too high" in b.text)
    preset.click()
    assert "explodes" in find("#lab-lesson").text and find("#lab-opt").get_attribute("value") == "sgd"
    find("#lab-start").click()
    WebDriverWait(browser, 60).until(lambda d: _data(browser, "diverged") is not None or _data(browser, "status") == "done")
    assert _data(browser, "diverged") is not None, "the loss never exploded"
    result = find("#lab-result").text
    assert ("exploded" in result or "NaN" in result) and "too high" in result
    assert _data(browser, "state") == "diverged" and not find("#lab-start").get_attribute("disabled")  # still usable
    assert console_errors(browser) == []


def test_a_constant_schedule_keeps_the_learning_rate(quick_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    _set_up(browser, quick_site, 1000, 2)
    Select(browser.find_element(By.ID, "lab-schedule")).select_by_value("constant")
    lr = float(browser.execute_script("return Math.pow(10, Number(document.getElementById('lab-lr').value))"))
    browser.find_element(By.ID, "lab-start").click()
    WebDriverWait(browser, 60).until(lambda d: _data(browser, "status") == "done")
    assert float(_data(browser, "lr")) == pytest.approx(lr)
    assert "learning rate" in browser.find_element(By.ID, "lab-status").text


def test_every_lab_control_is_reachable_by_keyboard(quick_site, browser):
    from selenium.webdriver.common.keys import Keys

    _open(browser, quick_site)
    browser.execute_script("document.querySelector('#lab-presets button').focus()")
    reached = set()
    for _ in range(40):
        active = browser.switch_to.active_element
        reached.add(active.get_attribute("id") or active.text)
        active.send_keys(Keys.TAB)
    wanted = {"lab-lr", "lab-opt", "lab-batch", "lab-epochs", "lab-schedule", "lab-train", "lab-bn", "lab-dropout", "lab-widths",
              "lab-seed", "lab-start", "lab-reset", "lab-compare", "Default", "Learning rate far too high"}
    assert wanted <= reached, wanted - reached
