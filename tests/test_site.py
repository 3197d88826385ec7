"""The site builder end to end: quick builds, links, determinism, caching, errors, a real browser."""

import dataclasses
import hashlib
import html
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import build
from .sitecheck import check_site

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.stem for p in (ROOT / "content").glob("*.md"))


def fingerprint(folder):
    """{relative path: sha256} of every file in a folder."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_quick_build_produces_every_chapter(quick_site):
    pages = {p.name for p in quick_site.glob("*.html")}
    slugs = {re.sub(r"^\d+[-_]", "", c) for c in CHAPTERS}
    assert "index.html" in pages
    assert {s + ".html" for s in slugs} - pages <= {"introduction.html"}  # the first chapter is index.html
    assert (quick_site / ".nojekyll").exists()
    assert (quick_site / "static" / "css" / "site.css").exists()
    for page in quick_site.glob("*.html"):
        text = page.read_text()
        assert "<h1>" in text and "</html>" in text
        assert "{{" not in text and "{%" not in text, f"{page.name} has an unrendered placeholder"


def test_every_link_and_image_resolves_inside_the_site(quick_site):
    assert check_site(quick_site) == []


def test_nothing_is_loaded_from_the_network(quick_site):
    for page in quick_site.rglob("*.html"):
        assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(js|css|woff2?|png|svg)', page.read_text())
    for css in quick_site.rglob("*.css"):
        assert "url(http" not in css.read_text() and "@import" not in css.read_text()


def test_run_json_holds_the_metrics(quick_site):
    record = json.loads((quick_site / "run.json").read_text())
    m = record["metrics"]
    assert 0.9 < m["test_accuracy"] <= 1
    assert len(m["per_class_accuracy"]) == 10
    assert len(m["epoch_seconds"]) == record["config"]["train"]["epochs"] == 2
    assert m["images_per_second"] > 0
    assert max(max(e.values()) for e in record["gradcheck"].values()) < 1e-6
    assert {"data", "train", "figures", "pages", "total"} <= set(record["timings"])
    parts = record["timings"]["browser_pages"]  # the browser phase, page by page
    assert set(parts) == {"try_it", "lab", "explorer"}
    assert sum(parts.values()) == pytest.approx(record["timings"]["browser"], abs=0.1)
    assert record["versions"]["numpy"]
    assert record["site"]["bytes"] > 0
    memory = record["memory_mb"]
    if memory["all_processes"] is not None:  # where /proc tells
        phases = memory["all_processes_by_phase"]
        timings = record["timings"]
        lasted = {name for name, s in timings.items() if name not in ("total", "browser_pages") and s > 1}
        lasted |= {f"browser/{name}" for name, s in timings["browser_pages"].items() if s > 1}
        assert lasted and lasted <= set(phases)  # sampled four times a second
        assert 0 < max(phases.values()) <= memory["all_processes"]


def test_the_peak_memory_is_counted_for_the_phase_that_held_it():
    from report.memory import PeakMemory

    with PeakMemory(interval=0.05) as m:
        if not m.available:
            pytest.skip("no /proc on this system")
        with m.phase("outer"):
            with m.phase("big"):
                held = np.ones(200 * 2**20 // 8)  # 200 MB, touched
                time.sleep(0.5)
                del held
            time.sleep(0.5)
        with m.phase("small"):
            time.sleep(0.5)
    phases = m.by_phase_mb
    assert set(phases) == {"outer", "outer/big", "small"}
    assert phases["outer/big"] > phases["small"] + 150
    assert phases["outer"] == phases["outer/big"]  # a phase's peak counts what its parts held
    assert m.peak_mb == max(phases.values())


def test_the_page_shows_the_measured_accuracy(quick_site):
    record = json.loads((quick_site / "run.json").read_text())
    shown = f"{100 * record['metrics']['test_accuracy']:.2f} %"
    assert shown in (quick_site / "index.html").read_text()


def _comparable(folder):
    """File contents with the measured times taken out (seconds differ from run to run)."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if p.name == "run.json":
            record = json.loads(data)
            for key in ("timings", "made", "site", "flags", "memory_mb"):
                record.pop(key)
            for key in ("epoch_seconds", "train_seconds", "images_per_second"):
                record["metrics"].pop(key)
            record["cache"] = None
            record["browser"].pop("ms", None)  # measured in the browser at build time
            record["explorer"].pop("timings", None)
            record["explorer"]["selftest"].pop("seconds", None)
            record["explorer"]["selftest"].pop("seconds_by_tab", None)
            record["explanation_metrics"].pop("seconds")  # how long each part took
            record["lab"].pop("bench", None)  # trained for a fixed time: how far it got varies
            record["lab"]["selftest"].pop("seconds", None)
            data = json.dumps(record, sort_keys=True).encode()
        elif p.suffix == ".html":
            data = re.sub(rb'<span class="measured">.*?</span>', b"", data)
        out[str(p.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return out


def test_the_same_seed_builds_the_same_bytes_even_when_trained_again(quick_site, cache_dir, tmp_path):
    again = tmp_path / "site"
    result = build("--quick", "--out", again, "--cache-dir", cache_dir, "--retrain")
    assert result.returncode == 0, result.stderr
    record = json.loads((again / "run.json").read_text())
    assert record["cache"]["run"] == "trained"
    # the measured times are padded to a fixed width, so even the size of the site is the same
    assert record["site"] == json.loads((quick_site / "run.json").read_text())["site"]
    a, b = _comparable(quick_site), _comparable(again)
    assert a.keys() == b.keys()
    differing = [k for k in a if a[k] != b[k]]
    assert differing == []


def test_a_content_only_change_reuses_the_cached_run(quick_site, cache_dir, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    chapter = sorted(content.glob("*.md"))[1]
    chapter.write_text(chapter.read_text() + "\nA sentence added by the test.\n")
    out = tmp_path / "site"
    result = build("--quick", "--out", out, "--cache-dir", cache_dir, "--content", content)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["cache"]["run"] == "reused" and record["cache"]["figures"] == "reused"
    assert "A sentence added by the test." in (out / "data.html").read_text()
    assert "reusing the cached run" in result.stderr


def test_a_broken_placeholder_exits_2_names_chapter_and_line_and_keeps_the_site(quick_site, cache_dir, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    before = fingerprint(out)
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    chapter = content / "03-architecture.md"
    lines = chapter.read_text().split("\n")
    lines.insert(9, "The accuracy was {{ metrics.test_acuracy }}.")
    chapter.write_text("\n".join(lines))
    result = build("--quick", "--out", out, "--cache-dir", cache_dir, "--content", content)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr
    assert "03-architecture.md, line 10" in result.stderr
    assert "test_acuracy" in result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content", "site"]


def test_the_figure_names_checked_before_training_are_the_ones_a_build_draws(quick_site):
    from report.figures import names_before_training
    from report.run import conv_layer_names

    fixed, series = names_before_training(conv_layer_names())
    figures = quick_site / "figures"
    dark = lambda p: p.stem.endswith("-dark") and p.with_name(p.stem[: -len("-dark")] + ".png").exists()
    drawn = {p.relative_to(figures).with_suffix("").as_posix() for p in figures.rglob("*.png") if not dark(p)}
    drawn_fixed = {n for n in drawn if "/" not in n and not n.startswith("acts-")}
    assert drawn_fixed <= fixed, "a figure with a constant name that check_chapters does not know"
    assert fixed - drawn_fixed <= {"gradcam-blank"}, "check_chapters knows a name the build never draws"
    assert {n.split("/")[0] for n in drawn if "/" in n} - {"gallery", "demo"} == series


@pytest.mark.parametrize("placeholder,message", [("{{ figure('data-sample') }}", "no such figure"),
                                                 ("{{ frames('kernel') }}", "no such figure series")])
def test_a_misspelt_figure_fails_in_seconds_before_any_training(tmp_path, placeholder, message):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    chapter = content / "06-training.md"
    lines = chapter.read_text().split("\n")
    lines.insert(5, placeholder)
    chapter.write_text("\n".join(lines))
    cache = tmp_path / "cache"
    result = build("--quick", "--out", tmp_path / "site", "--cache-dir", cache, "--content", content)
    assert result.returncode == 2
    assert "06-training.md, line 6" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr and "training:" not in result.stderr
    assert not (cache / "runs").exists() and not (tmp_path / "site").exists()


def test_a_syntax_error_in_a_chapter_names_its_line(cache_dir, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    chapter = content / "02-data.md"
    lines = chapter.read_text().split("\n")
    lines[11] = "Broken {{ figure('data-samples' }} here."
    chapter.write_text("\n".join(lines))
    result = build("--quick", "--out", tmp_path / "site", "--cache-dir", cache_dir, "--content", content)
    assert result.returncode == 2
    assert "02-data.md, line 12" in result.stderr
    assert not (tmp_path / "site").exists()


def test_a_crash_in_the_middle_of_rendering_leaves_the_previous_site_whole(quick_site, cache_dir, tmp_path,
                                                                         monkeypatch):
    from build import make_config, parse_args
    from report import pages, site

    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    before = fingerprint(out)
    calls = []

    def failing_write(self, page, *args, **kwargs):
        calls.append(page.dest)
        if len(calls) == 3:
            raise RuntimeError("simulated crash while writing a page")
        return original(self, page, *args, **kwargs)

    original = pages.Renderer.write_page
    monkeypatch.setattr(pages.Renderer, "write_page", failing_write)
    config = make_config(parse_args(["--quick", "--out", str(out), "--cache-dir", str(cache_dir)]))
    with pytest.raises(RuntimeError, match="simulated crash"):
        site.build(config, log=lambda m: None)
    assert len(calls) == 3
    assert fingerprint(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_a_corrupt_cached_run_is_reported_and_trained_again(quick_site, cache_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    for entry in (cache / "runs").iterdir():  # every cached run, whichever the build looks for
        model = entry / "model.npz"
        model.write_bytes(model.read_bytes()[:1000])
    out = tmp_path / "site"
    result = build("--quick", "--out", out, "--cache-dir", cache)
    assert result.returncode == 0, result.stderr
    assert "cached run is unusable" in result.stderr and "model.npz" in result.stderr
    assert json.loads((out / "run.json").read_text())["cache"]["run"] == "trained"


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "0"], "--epochs: 0 must be at least 1"),
    (["--lr", "fast"], "--lr: 'fast' is not a number"),
    (["--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_a_wrong_flag_exits_2_with_a_message(flags, message):
    result = build(*flags)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_missing_data_dir_exits_2(tmp_path):
    result = build("--quick", "--out", tmp_path / "site", "--data-dir", tmp_path / "nowhere",
                   "--cache-dir", tmp_path / "cache")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("holding the four MNIST IDX files.")
    assert "nowhere: no such folder" in result.stderr
    assert not (tmp_path / "site").exists()


# ------------------------------------------------------------------ in a real browser

def test_index_and_training_pages_in_chromium(quick_site, browser):
    from selenium.webdriver.common.by import By

    from .browser import console_errors, screenshot_is_not_blank

    browser.get((quick_site / "index.html").as_uri())
    assert browser.title.startswith("Introduction")
    assert console_errors(browser) == []
    assert screenshot_is_not_blank(browser.get_screenshot_as_png())

    browser.get((quick_site / "training.html").as_uri())
    frames = browser.find_element(By.ID, "frames-confusion")
    visible = lambda: [f for f in frames.find_elements(By.TAG_NAME, "figure") if f.is_displayed()]
    assert len(visible()) == 1
    shown = visible()[0].find_element(By.TAG_NAME, "img").get_attribute("src")
    controls = browser.find_elements(By.CSS_SELECTOR, ".frames-controls")[0]
    slider = controls.find_element(By.CSS_SELECTOR, "input[type=range]")
    assert slider.get_attribute("value") == slider.get_attribute("max")
    controls.find_element(By.CSS_SELECTOR, "button[aria-label^='Previous']").click()
    now = visible()
    assert len(now) == 1
    assert now[0].find_element(By.TAG_NAME, "img").get_attribute("src") != shown
    assert controls.find_element(By.TAG_NAME, "output").text == "Epoch 1"
    assert console_errors(browser) == []
    assert screenshot_is_not_blank(browser.get_screenshot_as_png())


def test_without_javascript_every_epoch_is_listed(quick_site):
    text = (quick_site / "training.html").read_text()
    block = text[text.index('id="frames-confusion"'):]
    block = block[: block.index("</div>")]
    assert block.count("<figure") == 2  # both epochs of the quick run, none hidden in the HTML
    assert "hidden" not in block


def test_the_gallery_has_a_breakdown_page_for_every_image(quick_site):
    record = json.loads((quick_site / "run.json").read_text())
    pages = sorted((quick_site / "gallery").glob("*.html"))
    assert len(pages) == record["config"]["gallery"] == 12
    gallery = (quick_site / "gallery.html").read_text()
    for page in pages:
        assert f'href="gallery/{page.name}"' in gallery
        text = page.read_text()
        assert text.count("data-class=") == 10  # a map for every class
        for section in ("feature-maps", "gradients", "averaging", "weights", "map", "classes", "methods"):
            assert f'id="{section}"' in text
        for method in ("saliency", "guided", "guided-gradcam", "occlusion", "gradcam-conv1", "gradcam-conv2"):
            assert f"method-{method}.png" in text


def test_a_layers_maps_are_small_images_in_the_page_under_their_channel_numbers(quick_site):
    """The gallery's feature maps and gradients: one PNG per channel inside the page, numbered in order,
    all on one colour scale that the colour bar names; one picture, with its alt text, to a screen reader."""
    import base64
    import io

    from PIL import Image

    page = sorted((quick_site / "gallery").glob("*.html"))[0]
    text = page.read_text()
    channels = int(re.search(r"passes on (\d+) maps of (\d+) × (\d+)", text).group(1))
    for name, ticks in (("features", 2), ("gradients", 3)):
        grid = re.search(rf'<figure class="map-grid" id="fig-gallery/\d+/{name}">(.*?)</figure>', text, re.S).group(1)
        assert re.search(r'<div class="tiles" role="img" aria-label="[^"]{40,}">', grid)
        assert [int(n) for n in re.findall(r'<span class="n" aria-hidden="true">(\d+)</span>', grid)] == \
            list(range(channels))
        tiles = re.findall(r'<img class="pixelated" src="data:image/png;base64,([^"]+)" alt="channel (\d+)" '
                           r'width="(\d+)" height="(\d+)">', grid)
        assert [int(t[1]) for t in tiles] == list(range(channels))
        for data, _, w, h in tiles:
            image = Image.open(io.BytesIO(base64.b64decode(data)))
            assert image.format == "PNG" and image.size == (int(w), int(h))
        shown = re.findall(r'<span class="tick">([^<]+)</span>', grid)
        assert len(shown) == ticks and "linear-gradient(to right, rgb(" in grid
        if ticks == 3:  # red and blue around a white zero
            assert shown[1] == "0" and shown[0] == "\u2212" + shown[2]


def test_the_channel_weights_are_a_table_of_every_channel_largest_first(quick_site):
    """The gallery's weights chart: a row per channel, its weight as text, sorted, with a bar as long as
    |weight| / the largest |weight|, red for the class and blue against it, the 3 + 3 extremes outlined."""
    for page in sorted((quick_site / "gallery").glob("*.html"))[:3]:
        text = page.read_text()
        channels = int(re.search(r"passes on (\d+) maps", text).group(1))
        table = re.search(r'<table class="bars"[^>]*>(.*?)</table>', text, re.S).group(1)
        rows = re.findall(r'<tr class="(pos|neg)( marked)?"><th scope="row" class="num">(\d+)</th>'
                          r'<td class="num">([^<]+)</td><td class="bar"><span style="--w: ([\d.]+)%"></span></td></tr>',
                          table)
        assert sorted(int(r[2]) for r in rows) == list(range(channels))
        values = [float(r[3].replace("\u2212", "-")) for r in rows]
        assert values == sorted(values, reverse=True)
        for r, v in zip(rows, values):  # a weight too small for 4 places shows as 0.0000 or \u22120.0000
            assert (v >= 0 and not r[3].startswith("\u2212")) if r[0] == "pos" else v <= 0
        peak = max(abs(v) for v in values)
        assert all(abs(float(r[4]) - 100 * abs(v) / peak) < 1 for r, v in zip(rows, values))  # v rounded to 4 places
        assert [j for j, r in enumerate(rows) if r[1]] == [0, 1, 2, channels - 3, channels - 2, channels - 1]
        top = re.search(r"The three largest are\s+channels ([\d, ]+);", text).group(1)
        assert [int(k) for k in top.split(", ")] == [int(r[2]) for r in rows[:3]]


def test_the_probabilities_are_a_table_of_every_class_beside_the_input(quick_site):
    """The gallery's first figure: the input as a small image, and each class's probability as text with a
    bar from 0, in class order, the predicted class marked; the numbers are the ones run.json holds."""
    names = [str(k) for k in range(10)]  # MNIST's classes
    for page in sorted((quick_site / "gallery").glob("*.html"))[:3]:
        text = page.read_text()
        index = int(page.stem)
        said = re.search(r"the network says\s+<strong>([^<]+)</strong>", text).group(1)
        figure = re.search(rf'<figure class="bars" id="fig-gallery/{index}/probs">(.*?)</figure>', text, re.S).group(1)
        assert re.search(rf'<img class="pixelated" src="data:image/png;base64,[^"]+" alt="test image #{index}"', figure)
        rows = re.findall(r'<tr class="(pos|neg)( marked)?"><th scope="row" class="num">([^<]+)</th>'
                          r'<td class="num">([\d.]+) %</td><td class="bar"><span style="--w: ([\d.]+)%"></span></td></tr>',
                          figure)
        assert [r[2] for r in rows] == names
        assert abs(sum(float(r[3]) for r in rows) - 100) < 0.6  # ten values rounded to 0.1
        assert all(abs(float(r[4]) - float(r[3])) < 0.06 for r in rows)
        assert [r[2] for r in rows if r[1]] == [said] and [r[2] for r in rows if r[0] == "pos"] == [said]


def test_a_map_grid_colours_each_map_on_the_one_scale_it_names():
    import base64
    import io

    import matplotlib
    from PIL import Image

    from report.figures import DIVERGING, MAPS
    from report.gradcam_figures import map_grid

    maps = np.zeros((3, 2, 4))
    maps[1, 0, 0], maps[2, 1, 3] = 2.0, -0.5
    pixels = lambda e, k: np.asarray(Image.open(io.BytesIO(base64.b64decode(e["tiles"][k].split(",", 1)[1]))))
    colour = lambda cmap, t: (np.asarray(matplotlib.colormaps[cmap](t)[:3]) * 255).round()
    signed = map_grid("g", maps, DIVERGING, "gradient", "alt", "caption")
    assert signed["scale"]["ticks"] == ["\u22122", "0", "2"]
    assert (pixels(signed, 1)[0, 0] == colour(DIVERGING, 1.0)).all()  # the largest value: the top colour
    assert (pixels(signed, 0)[0, 0] == colour(DIVERGING, 0.5)).all()  # zero: the middle
    assert (pixels(signed, 2)[1, 3] == colour(DIVERGING, 0.375)).all()  # -0.5 of +-2
    positive = map_grid("f", np.abs(maps), MAPS, "activation", "alt", "caption")
    assert positive["scale"]["ticks"] == ["0", "2"] and (pixels(positive, 0)[0, 0] == colour(MAPS, 0.0)).all()


@dataclasses.dataclass(frozen=True)
class _Inputs:
    builder: int  # the builder's process id
    early: int
    late: int = None


def _seen(f, out_dir, i):
    """A stand-in figure: what the drawing process saw of the inputs, and which process it was. The
    builder draws slowly, so that the drawing processes take some of the last jobs."""
    if os.getpid() == f.builder:
        time.sleep(0.2)
    return {"name": f"job-{i}", "seen": (f.early, f.late), "pid": os.getpid()}


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_the_last_figures_see_the_values_set_after_the_fork_in_every_process(processes, tmp_path):
    from report.figures import Drawing

    before, after = _Inputs(os.getpid(), early=1), _Inputs(os.getpid(), early=1, late=7)
    with Drawing(before, tmp_path, processes) as drawing:
        drawing.draw("early", [(_seen, (i,)) for i in range(6)])
        entries, seconds = drawing.finish("late", [(_seen, (i,)) for i in range(6, 14)], after)
    assert list(entries) == [f"job-{i}" for i in range(14)]  # in the order given, whoever drew them
    seen = [e["seen"] for e in entries.values()]
    assert all(s[0] == 1 for s in seen[:6]) and seen[6:] == [(1, 7)] * 8  # the early ones need no late value
    assert set(seconds) == {"early", "late"}
    drawers = {e["pid"] for e in list(entries.values())[6:]} - {os.getpid()}
    assert 1 <= len(drawers) <= processes - 1 if processes > 1 else not drawers


def test_the_trust_chapter_measures_every_method_and_the_shuffled_network(quick_site):
    from report.trust import methods

    record = json.loads((quick_site / "run.json").read_text())
    assert {"explanations", "gallery_figures", "explain_trust", "explain_randomization"} <= set(record["made"])
    metrics = record["explanation_metrics"]
    assert metrics["seconds"]["total"] > 0 and metrics["images"] == record["config"]["faithfulness"]
    # each method's maps and curves timed on their own (issue 8's budget is for four of them)
    assert {f"{part} {m}" for m in methods("conv3") for part in ("maps", "curves")} <= set(metrics["seconds"])
    shuffled = metrics["shuffled_labels"]
    # the network on shuffled labels memorised them and learned nothing that carries to the test set
    assert shuffled["train_accuracy"] >= 0.95 and shuffled["test_accuracy"] < 0.2
    trust = (quick_site / "trust.html").read_text()
    for method in methods("conv3"):
        assert trust.count(f"<td>{html.escape(method)}</td>") == 2  # a row in both tables
    assert not re.search(r"\bn/a\b", trust.split("Test 3")[0])  # every faithfulness number was measured


def test_the_class_picker_changes_the_map_in_chromium(quick_site, browser):
    from selenium.webdriver.common.by import By

    from .browser import console_errors, screenshot_is_not_blank

    page = sorted((quick_site / "gallery").glob("*.html"))[0]
    browser.get(page.as_uri())
    picker = browser.find_element(By.CSS_SELECTOR, ".class-picker")
    shown = lambda: [f for f in picker.find_elements(By.TAG_NAME, "figure") if f.is_displayed()]
    assert len(shown()) == 1
    first = shown()[0]
    assert first.get_attribute("data-class") == picker.get_attribute("data-default")
    buttons = browser.find_elements(By.CSS_SELECTOR, ".picker-buttons button")
    assert len(buttons) == 10
    other = next(b for b, c in zip(buttons, range(10)) if str(c) != first.get_attribute("data-class"))
    other.click()
    now = shown()
    assert len(now) == 1 and now[0].get_attribute("data-class") != first.get_attribute("data-class")
    assert now[0].find_element(By.TAG_NAME, "img").get_attribute("src") != \
        first.find_element(By.TAG_NAME, "img").get_attribute("src")
    assert other.get_attribute("aria-pressed") == "true"
    # one Tab stop for the row: the pressed button; the arrow keys move along it and press
    from selenium.webdriver.common.keys import Keys

    assert [b.get_attribute("tabindex") for b in buttons].count("0") == 1 and other.get_attribute("tabindex") == "0"
    other.send_keys(Keys.ARROW_RIGHT)
    after = buttons[(buttons.index(other) + 1) % len(buttons)]
    assert after.get_attribute("aria-pressed") == "true" and browser.switch_to.active_element == after
    assert shown()[0].get_attribute("data-class") == str((buttons.index(other) + 1) % len(buttons))
    assert console_errors(browser) == []
    assert screenshot_is_not_blank(browser.get_screenshot_as_png())


def test_every_source_file_of_cnn_is_part_of_a_cache_key():
    """A new file in cnn/ must be listed where it matters, or a stale cache could be trusted."""
    from report.run import TRAINING_SOURCES
    from report.site import EXPLANATION_SOURCES, UNCACHED_SOURCES

    files = {p.name for p in (ROOT / "cnn").glob("*.py")} - {"__init__.py"} - set(UNCACHED_SOURCES)
    assert files == set(TRAINING_SOURCES) | set(EXPLANATION_SOURCES)
    assert not set(TRAINING_SOURCES) & set(EXPLANATION_SOURCES)


def test_class_names_get_the_article_they_are_read_with():
    from report.words import with_article

    assert [with_article(n) for n in ("1", "8", "Ankle boot", "T-shirt/top", "Bag")] == \
        ["a 1", "an 8", "an Ankle boot", "a T-shirt/top", "a Bag"]


def test_the_dark_variant_turns_ink_light_and_keeps_the_data_colours():
    import numpy as np
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from report.figures import dark_variant

    fig = Figure(figsize=(4, 2))
    ax, bars = fig.subplots(1, 2)
    image = ax.imshow(np.zeros((4, 4)), cmap="gray")
    over = ax.text(1.5, 1.5, "0.42", color="white")  # chosen for the black image beneath
    title = ax.set_title("a title")
    bar = bars.bar([0, 1], [1, 2], color="#c44e52", edgecolor="black")[0]
    line = bars.axhline(1, color="black")
    dark_variant(fig)
    assert fig.patch.get_facecolor()[3] == 0 and bars.patch.get_facecolor()[3] == 0  # the page shows through
    assert to_rgba(title.get_color()) == (1, 1, 1, 1) and to_rgba(line.get_color()) == (1, 1, 1, 1)
    assert to_rgba(over.get_color()) == (1, 1, 1, 1)  # not turned dark: it is over the image
    assert bar.get_facecolor() == to_rgba("#c44e52") and bar.get_edgecolor() == (1, 1, 1, 1)
    assert image.get_cmap().name == "gray"


def test_a_saved_figure_turns_the_labels_beside_its_images_light(tmp_path):
    """Words beside a grid of images (row labels, as in the trust chapter's maps) are ink, not words over
    an image: found where the saved picture has them, they turn light in the dark variant."""
    import numpy as np
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from report.figures import _save

    fig = Figure(figsize=(3.5, 3), layout="constrained")
    axes = fig.subplots(3, 4)
    labels = []
    for r, row in enumerate(axes):
        for ax in row:
            ax.imshow(np.random.default_rng(r).random((7, 7)), cmap="viridis")
            ax.set_xticks([]), ax.set_yticks([])
        name = "a longer name" if r == 0 else f"r{r}"  # the longest sets the margin, as "maxpool2" beside "bn2"
        labels.append(row[0].set_ylabel(name, rotation=0, ha="right", va="center"))
    _, dark, _, _ = _save(fig, tmp_path, "grid")
    assert dark == "figures/grid-dark.png" and (tmp_path / "grid-dark.png").exists()
    assert all(to_rgba(label.get_color()) == (1, 1, 1, 1) for label in labels), [l.get_color() for l in labels]


def test_dark_mode_shows_the_dark_variant_of_every_figure_with_words(quick_site, browser):
    """Every chart has a -dark.png beside it, offered through <picture> to a dark colour scheme; a
    figure of pictures alone (a heat-map tile) has none and needs none."""
    from .test_accessibility import open_settled, set_scheme

    pages = list(quick_site.glob("*.html")) + list((quick_site / "gallery").glob("*.html"))
    html_text = "".join(p.read_text() for p in pages)
    charts = {str(p.relative_to(quick_site / "figures").with_suffix("")) for p in (quick_site / "figures").rglob("*.png")
              if p.with_name(f"{p.stem}-dark.png").exists()}
    assert len(charts) >= 20
    offered = set(re.findall(r'<source media="screen and \(prefers-color-scheme: dark\)" srcset="[^"]*?figures/([^"]+)-dark\.png">',
                             html_text))
    assert charts <= offered
    assert html_text.count('<a class="figure-open" href="') >= len(charts)  # each chart opens full size
    try:
        for scheme in ("dark", "light"):
            set_scheme(browser, scheme)
            open_settled(browser, quick_site / "training.html")
            shown = browser.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "const imgs = Array.from(document.querySelectorAll('picture img'));"
                "imgs.forEach(function (i) { i.loading = 'eager'; });"
                "Promise.all(imgs.map(function (i) { return i.decode().catch(function () {}); }))"
                ".then(function () { done(imgs.map(function (i) { return i.currentSrc; })); });")
            assert shown and all(s.endswith("-dark.png") == (scheme == "dark") for s in shown), (scheme, shown)
            browser.execute_script("document.querySelector('a.figure-open').click()")  # opens the variant shown
            assert browser.current_url.endswith("-dark.png") == (scheme == "dark"), browser.current_url
    finally:
        set_scheme(browser, None)


def test_every_figure_keeps_its_words_readable_on_a_phone(quick_site):
    """Every figure is drawn for a phone's column: its smallest words are 11 CSS px or more on a 360 px
    screen (run.json counts them and lists any that are not). A gallery page has none: its probabilities,
    maps, steps and weights carry their words as the page's own text."""
    phone = json.loads((quick_site / "run.json").read_text())["figure_text_on_a_phone"]
    assert phone["figures_with_words"] >= 30
    assert phone["too_small"] == {} and phone["readable"] == phone["figures_with_words"]
