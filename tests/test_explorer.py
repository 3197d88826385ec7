"""The explorer: every test image and every epoch in the page, explained live, checked against NumPy."""

import base64
import json
import zlib

import numpy as np
import pytest

from cnn.data import load_dataset
from report.browsercheck import find_browser
from report.config import ROOT


def _script_doc(path, name):
    text = path.read_text()
    return json.loads(text.split(f"window.{name} = ", 1)[1].rsplit(";", 1)[0])


def test_every_test_image_ships_compact_with_numpys_answers(quick_site):
    js = quick_site / "static" / "js"
    doc = _script_doc(js / "test-set.js", "CNN_TEST")
    raw = zlib.decompress(base64.b64decode(doc["deflate"]))
    n, size = doc["count"], int(np.prod(doc["shape"]))
    record = json.loads((quick_site / "run.json").read_text())
    assert n == record["explorer"]["test_images"] == 1000  # the --quick test split, every image of it
    assert len(raw) == n * size + 2 * n + 4 * n
    mnist = load_dataset("mnist")
    labels = np.frombuffer(raw[n * size : n * size + n], np.uint8)
    assert np.bincount(labels, minlength=10).min() > 0
    confidence = np.frombuffer(raw[n * size + 2 * n :], "<f4")
    assert ((confidence > 0.1) & (confidence <= 1)).all()
    pixels = np.frombuffer(raw[: n * size], np.uint8).reshape(n, size)
    assert any((pixels[0] == (mnist.x_test[i, 0] * 255).round().ravel()).all() for i in range(10_000)
               if mnist.y_test[i] == labels[0])
    snaps = _script_doc(js / "snapshots.js", "CNN_SNAPSHOTS")
    assert [s["epoch"] for s in snaps] == [0, 1]  # --quick trains 2 epochs; the last is trained-model.js
    assert all(l["weight"]["dtype"] == "float16" for s in snaps for l in s["layers"] if "weight" in l)


def test_the_build_checked_the_page_against_numpy_in_chromium(quick_site):
    record = json.loads((quick_site / "run.json").read_text())["explorer"]
    check = record["selftest"]
    if not check["measured"]:
        pytest.fail(f"the explorer self-test did not run: {check['reason']}") if find_browser() else \
            pytest.skip(check["reason"])
    assert check["passed"] and check["tolerance"] == 1e-4
    assert check["images"] >= 50 and check["classes"] == 10 and check["networks"] == 3
    assert set(check["worst"]) == {"probabilities", "alpha", "weighted_sum", "cam", "upsampled", "saliency", "guided",
                                   "gradcampp", "scorecam", "ig_black", "ig_blurred", "smoothgrad"}
    assert max(w["abs"] for w in check["worst"].values()) <= 1e-4
    for kind in ("ig_black", "ig_blurred", "smoothgrad"):  # compared as whole maps, their largest pixel beside
        assert 0 <= check["worst"][kind]["pixel"] < 1e-2
    # 3 layers x 4 Grad-CAM steps + saliency + guided, per (network, image, class), + probabilities;
    # and for the final network and 5 images: 3 layers x (Grad-CAM++, Score-CAM) + 2 IG + SmoothGrad
    assert check["compared"] == 3 * check["images"] * (10 * (3 * 4 + 2) + 1) + 5 * (3 * 2 + 3)
    timings = record["timings"]  # measured by the build in real time; reported, not asserted
    assert timings["measured"] and timings["ready_ms"] > 0
    assert set(timings["redraw_ms"]) == {"image", "cls", "layer", "epoch", "occlusion", "scorecam", "smoothgrad", "ig"}
    for row in record["float16"]["epochs"]:
        assert row["max_probability_change"] < 0.05


def _float32s(text):
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def test_the_self_tests_pixel_maps_do_not_depend_on_an_images_place_in_its_batch(mnist):
    """Saliency and guided backpropagation route each window's gradient to its first maximum. In float32
    matrix products two identical windows (a saturated stroke) can round differently by their column,
    so NumPy's float32 answer for an image changed with its batch (by 0.4 on one machine), and the
    page, whose equal windows tie exactly, was judged wrong. The reference is computed as the page
    computes, and an image gets the same answer alone as among the others."""
    from types import SimpleNamespace

    from cnn.attribution import guided_backprop, saliency
    from cnn.model import fold_batchnorm
    from report.explorer import page_arithmetic, selftest_reference

    from .conftest import train_default

    net = fold_batchnorm(train_default(mnist, 1024, 2e-3))
    data = SimpleNamespace(x_test=mnist.x_test[:500], y_test=mnist.y_test[:500])
    header, docs = selftest_reference({0: net}, data, np.random.default_rng(0), n=30)
    (_, doc), = [(kind, doc) for kind, doc in docs if kind == "maps"]
    n, k = header["images"], header["classes"]
    x = _float32s(header["pixels"]).reshape(n, 1, 28, 28).astype(np.float64)
    page = page_arithmetic(net)
    for name, fn in (("saliency", saliency), ("guided", guided_backprop)):
        batch = _float32s(doc[name]).reshape(n, k, 28, 28)
        for i in range(n):
            alone = fn(page, np.repeat(x[i : i + 1], k, axis=0), np.arange(k))
            assert np.abs(batch[i] - alone).max() <= 1e-6, (name, i)


def _two_network_page(tmp_path, mnist):
    """The explorer's scripts for two untrained networks (a snapshot and the final one), and
    selftest_reference's (header, docs) for them on 3 test images."""
    from types import SimpleNamespace

    from cnn.model import default_cnn, fold_batchnorm
    from report.export import export_layers
    from report.explorer import js_global, selftest_reference

    nets = {e: default_cnn(np.random.default_rng(e)) for e in (0, 1)}
    doc = lambda net, dtype: {"format": 1, "input_shape": [1, 28, 28], "classes": [str(c) for c in range(10)],
                              "gradcam_layer": "relu3", "layers": export_layers(net, dtype)}
    model, snapshots = tmp_path / "model.js", tmp_path / "snapshots.js"
    model.write_text(js_global("CNN_MODEL", doc(nets[1], np.float32), "test"))
    snapshots.write_text(js_global("CNN_SNAPSHOTS", [doc(nets[0], np.float32)], "test"))
    data = SimpleNamespace(x_test=mnist.x_test[:200], y_test=mnist.y_test[:200])
    scripts = [model, snapshots, ROOT / "templates" / "static" / "js" / "cnn.js"]
    return scripts, selftest_reference({e: fold_batchnorm(n) for e, n in nets.items()}, data,
                                       np.random.default_rng(0), n=3)


def test_the_self_test_reports_a_wrong_reference_and_stops_when_numpys_side_does(tmp_path, mnist, browser):
    """The tabs check the references as NumPy writes them. One the page disagrees with in its shape
    fails the check with the page's message; NumPy's side failing stops the browser and the error
    comes through, without waiting for the references that never come."""
    import time

    from report.browsercheck import explorer_selftest

    scripts, (header, docs) = _two_network_page(tmp_path, mnist)
    docs = list(docs)
    check = explorer_selftest(scripts, header, iter(docs))
    assert check["measured"] and check["networks"] == 2 and check["tabs"] == 2, check
    assert max(w["abs"] for w in check["worst"].values()) <= 1e-4

    kind, doc = docs[2]  # the second network's maps: one value short
    short = dict(doc, saliency=base64.b64encode(base64.b64decode(doc["saliency"])[:-4]).decode())
    check = explorer_selftest(scripts, header, iter(docs[:2] + [(kind, short)] + docs[3:]))
    assert not check["measured"] and "saliency" in check["reason"] and "values against NumPy's" in check["reason"]

    def failing():
        yield docs[0]
        raise ValueError("NumPy's side failed")

    start = time.monotonic()
    with pytest.raises(ValueError, match="NumPy's side failed"):
        explorer_selftest(scripts, header, failing())
    assert time.monotonic() - start < 60


def test_a_cancelled_run_in_tabs_closes_its_browser_at_once(tmp_path, browser):
    """The explorer's self-test drives its tabs from a thread; when the builder stops (an error,
    Ctrl-C) it cancels them, and the browser is closed while its tabs are still busy."""
    import threading
    import time
    from pathlib import Path

    from report.browsercheck import run_in_tabs

    page = tmp_path / "page.html"
    page.write_text("<!doctype html><title>waits</title><p>waiting</p>")
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    start = time.monotonic()
    values, reason = run_in_tabs(page.as_uri(), 2, ["new Promise(function (done) { setTimeout(done, 120000); })"] * 3,
                                 "1", timeout=300, cancel=cancel)
    assert values is None and "cancelled" in reason
    assert time.monotonic() - start < 30
    # no browser driven over a pipe is left (selenium's, for the other tests, listens on a port)
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"--remote-debugging-pipe" in cmdline.read_bytes():
                left.append(cmdline.parent.name)
        except OSError:  # a process that ended meanwhile
            pass
    assert left == []


def test_explanations_over_training_are_measured_and_shown(quick_site):
    record = json.loads((quick_site / "run.json").read_text())["explorer"]
    rows = record["over_training"]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[-1]["rho_mean"] == pytest.approx(1.0) and rows[-1]["agrees_with_final"] == 1.0
    page = (quick_site / "explorer.html").read_text()
    assert "figures/explorer-over-training.png" in page
    assert "at initialisation" in page and f"{rows[0]['deletion']:.3f}" in page


def test_links_lead_into_the_explorer(quick_site):
    gallery = sorted((quick_site / "gallery").glob("*.html"))[0]
    assert f'href="../explorer.html#image={gallery.stem}' in gallery.read_text()
    assert 'explorer.html#image=' in (quick_site / "mistakes.html").read_text()
    assert 'explorer.html#image=' in (quick_site / "gallery.html").read_text()


def _wait_ready(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.getElementById('explorer').dataset.status") in ("ready", "failed"))
    assert browser.execute_script("return document.getElementById('explorer').dataset.status") == "ready"


def test_the_explorer_in_chromium(quick_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from .browser import console_errors

    page = (quick_site / "explorer.html").as_uri()
    browser.get(page + "#image=7&class=3&layer=conv1&epoch=0&method=saliency")
    _wait_ready(browser)
    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)
    summary = lambda: find("#ex-summary").text
    pixels = lambda css: browser.execute_script(
        f"return Array.from(document.querySelector('{css}').getContext('2d').getImageData(0, 0, 28, 28).data).join()")
    # the deep link opens that view
    assert find("#ex-index").get_attribute("value") == "7" and "#7" in summary()
    assert find("#ex-layer").get_attribute("value") == "conv1" and find("#ex-method").get_attribute("value") == "saliency"
    assert find("#ex-epoch").get_attribute("value") == "0" and "initialisation" in summary()
    assert find("input[name=ex-class][value='3']").is_selected()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ex-features canvas")) == 16  # conv1's maps

    before = pixels("#ex-map")
    find("#ex-method").send_keys("Grad-CAM")  # the method picker, by keyboard
    assert "method=gradcam" in browser.current_url and pixels("#ex-map") != before
    maps = {}
    for method in ("gradcampp", "scorecam", "smoothgrad", "ig-black", "ig-blurred"):  # the methods of many passes
        browser.execute_script(f"location.hash = 'image=7&class=3&layer=conv1&epoch=0&method={method}'")
        WebDriverWait(browser, 30).until(lambda d: find("#ex-method").get_attribute("value") == method)
        maps[method] = pixels("#ex-map")
        assert len(set(maps[method].split(","))) > 4, method  # drawn, not blank
    assert len(set(maps.values())) == len(maps)  # each its own map
    browser.back()
    WebDriverWait(browser, 30).until(lambda d: find("#ex-method").get_attribute("value") == "ig-black")
    browser.execute_script("location.hash = 'image=7&class=3&layer=conv1&epoch=0&method=gradcam'")
    WebDriverWait(browser, 30).until(lambda d: find("#ex-method").get_attribute("value") == "gradcam")

    before = pixels("#ex-map")
    find("input[name=ex-class][value='5']").click()  # a class
    assert "class=5" in browser.current_url and pixels("#ex-map") != before

    find("#ex-layer").send_keys("conv3")  # a layer
    assert "layer=conv3" in browser.current_url
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ex-features canvas")) == 32

    before = summary()
    browser.execute_script("const e = document.getElementById('ex-epoch'); e.value = 2; e.dispatchEvent(new Event('input'));")
    assert "epoch=2" in browser.current_url and summary() != before  # an epoch

    index = find("#ex-index")  # typing an index
    index.clear()
    index.send_keys("123" + Keys.ENTER)
    assert "image=123" in browser.current_url and "#123" in summary()
    find("body").send_keys(Keys.ARROW_RIGHT)  # the arrow keys
    assert "image=124" in browser.current_url
    browser.back()  # back and forward step through the views
    assert "image=123" in browser.current_url and "#123" in summary()

    find(".ex-browse summary").click()  # the grid of 50, filtered
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ex-grid button")) == 50
    find("#ex-mistakes").click()
    wrong = browser.find_elements(By.CSS_SELECTOR, "#ex-grid button")
    assert 0 < len(wrong) <= 50 and all("wrong" in b.get_attribute("class") for b in wrong)
    assert "wrong" in summary()  # the first mistake is shown
    find("#ex-true").send_keys("3")
    for b in browser.find_elements(By.CSS_SELECTOR, "#ex-grid button"):
        assert "labelled 3" in b.get_attribute("aria-label")
    assert console_errors(browser) == []


def test_the_explorer_is_quick_in_chromium(quick_site, browser):
    """Measured and reported, not asserted: how long to interactive, and a redraw."""
    browser.get((quick_site / "explorer.html").as_uri() + "?bench")
    _wait_ready(browser)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.getElementById('explorer').dataset.bench"))
    data = browser.execute_script("return Object.assign({}, document.getElementById('explorer').dataset)")
    print("\nexplorer timings (ms):", {k: v for k, v in data.items() if k.startswith(("bench", "ready", "unpack"))})
    assert float(data["readyMs"]) > 0 and float(data["benchImage"]) > 0


def test_every_explorer_control_is_reachable_by_keyboard(quick_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get((quick_site / "explorer.html").as_uri() + "#image=5")
    _wait_ready(browser)
    browser.find_element(By.CSS_SELECTOR, ".ex-browse summary").click()  # open the grid's filters
    browser.execute_script("document.getElementById('ex-prev').focus()")  # the first control
    reached = set()
    for _ in range(120):
        active = browser.switch_to.active_element
        reached.add(active.get_attribute("id") or active.get_attribute("name") or active.tag_name)
        active.send_keys(Keys.TAB)
    wanted = {"ex-index", "ex-prev", "ex-next", "ex-true", "ex-pred", "ex-right", "ex-sort", "ex-mistakes",
              "ex-class", "ex-layer", "ex-method", "ex-epoch"}
    assert wanted <= reached, wanted - reached
    assert "button" in reached  # the thumbnails of the grid


def test_the_self_test_is_reused_while_nothing_changes_and_redone_when_its_record_is_damaged(
        quick_site, cache_dir, tmp_path):
    from .conftest import build

    # the explorer's self-test, its timings (explorer-timings-*.json) and the lab's checks (lab-*.json)
    stored = sorted((cache_dir / "browser").glob("*.json"))
    if not stored:
        pytest.skip("no browser on this machine: nothing was stored")
    assert any(p.name.startswith("explorer-timings-") for p in stored)
    result = build("--quick", "--out", tmp_path / "a", "--cache-dir", cache_dir)
    assert result.returncode == 0 and "reusing the explorer self-test" in result.stderr
    assert "reusing the lab's checks" in result.stderr and "reusing the explorer's timings" in result.stderr
    for p in stored:
        p.write_text('{"measured": true}')
    result = build("--quick", "--out", tmp_path / "b", "--cache-dir", cache_dir)
    assert result.returncode == 0 and "reusing the explorer self-test" not in result.stderr
    assert "reusing the lab's checks" not in result.stderr and "reusing the explorer's timings" not in result.stderr
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["explorer"]["selftest"]["passed"] and record["lab"]["selftest"]["passed"]
    assert record["explorer"]["timings"]["measured"]
    for p in stored:  # written whole again
        again = json.loads(p.read_text())
        if p.name.startswith("lab-"):
            assert again["selftest"]["passed"]
        elif p.name.startswith("explorer-timings-"):
            assert again["measured"] and again["ready_ms"] > 0
        else:
            assert again["passed"]
