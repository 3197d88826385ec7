"""The command line under hostile input: nothing lost, nothing wrong published.

Each test reproduces one way a build could destroy or publish something it
should not, and checks the clear error (exit 2, no traceback) or the fix.
The slow ones share the session's --quick build and its cache.
"""

import fcntl
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from report.config import SITE_MARKER

from .conftest import ROOT, build
from .test_site import _comparable, fingerprint


def refused(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: "), result.stderr
    for w in words:
        assert w in result.stderr, (w, result.stderr)


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ the output folder

def test_out_naming_the_project_is_refused_and_nothing_moves(tmp_path):
    before = sorted(p.name for p in ROOT.iterdir())
    refused(build("--quick", "--out", ".", "--cache-dir", tmp_path / "c"), "refusing to replace", "the project")
    assert sorted(p.name for p in ROOT.iterdir()) == before


@pytest.mark.parametrize("where", ["/", "..", "content", "cnn", "templates"])
def test_out_naming_the_root_a_parent_or_a_project_folder_is_refused(tmp_path, where):
    refused(build("--quick", "--out", where, "--cache-dir", tmp_path / "c"), "refusing to replace")


def test_out_naming_a_folder_the_build_did_not_write_keeps_every_file(tmp_path):
    thesis = tmp_path / "thesis"
    (thesis / "chapters").mkdir(parents=True)
    (thesis / "chapters" / "one.tex").write_text("years of work")
    before = _tree(thesis)
    refused(build("--quick", "--out", thesis, "--cache-dir", tmp_path / "c"), "did not write", str(thesis))
    assert _tree(thesis) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_out_naming_a_file_is_refused_and_the_file_kept(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    refused(build("--quick", "--out", f, "--cache-dir", tmp_path / "c"), "is a file")
    assert f.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_out_naming_the_cache_or_the_chapters_is_refused(tmp_path):
    cache = tmp_path / "c"
    cache.mkdir()
    refused(build("--quick", "--out", cache, "--cache-dir", cache), "the cache folder")
    refused(build("--quick", "--out", cache / "runs", "--cache-dir", cache), "inside the cache folder")
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    refused(build("--quick", "--out", content, "--content", content, "--cache-dir", cache), "the chapters folder")


def test_a_second_build_into_the_same_out_stops_while_the_first_writes(quick_site, cache_dir, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    before = fingerprint(out)
    name = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    lock = Path(cache_dir) / "locks" / f"out-{name}.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what the first build holds while it writes
        refused(build("--quick", "--out", out, "--cache-dir", cache_dir), "another build is writing")
    assert fingerprint(out) == before


def test_leftovers_of_a_killed_build_are_cleaned_and_nothing_else(quick_site, cache_dir, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    dead = tmp_path / ".site.tmp-999999999"  # a pid that cannot be running
    dead.mkdir()
    (dead / SITE_MARKER).write_text("")
    not_ours = tmp_path / ".site.tmp-999999998"
    not_ours.mkdir()
    (not_ours / "keep.txt").write_text("keep")
    stale = Path(cache_dir) / "artifacts" / ".x.tmp-999999997"
    stale.mkdir(parents=True)
    (stale / ".cache-entry-of-build-py").write_text("")
    result = build("--quick", "--out", out, "--cache-dir", cache_dir)
    assert result.returncode == 0, result.stderr
    assert not dead.exists() and (not_ours / "keep.txt").read_text() == "keep"


# ------------------------------------------------------------------ flags and counts

@pytest.mark.parametrize("flags,message", [
    (["--seed", "-5"], "--seed: -5 must be 0 or more"),
    (["--jobs", "0"], "--jobs: 0 must be at least 1"),
    (["--validation", "60000"], "hold out fewer"),
    (["--test-size", "1"], "--test-size 1: too few for MNIST's 10 classes"),
    (["--train-size", "9"], "at least 10"),
])
def test_bad_counts_exit_2_without_a_traceback(tmp_path, flags, message):
    result = build("--quick", "--out", tmp_path / "site", "--cache-dir", tmp_path / "c", *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "site").exists()


def test_a_cache_dir_that_is_a_file_is_refused_before_any_work(tmp_path):
    f = tmp_path / "cache"
    f.write_text("not a folder")
    refused(build("--quick", "--out", tmp_path / "site", "--cache-dir", f), "is a file")
    assert f.read_text() == "not a folder"


def test_tiny_and_odd_counts_build_and_the_gallery_has_exactly_what_was_asked(tmp_path, cache_dir):
    """A batch smaller than the workers anywhere: 129 training images (a last batch of one with batch 64),
    501 test images (one more than the old inference chunk of 500), one faithfulness image, more jobs
    than shards, and a gallery of exactly one."""
    out = tmp_path / "site"
    result = build("--quick", "--out", out, "--cache-dir", tmp_path / "c", "--train-size", "129",
                   "--test-size", "501", "--faithfulness", "1", "--gallery", "1", "--epochs", "1",
                   "--jobs", "64", "--publish-failed")
    assert result.returncode == 0, result.stderr
    assert len(list((out / "gallery").glob("*.html"))) == 1
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["gallery"] == 1 and record["config"]["faithfulness"] == 1


def test_counts_larger_than_the_data_are_clamped_with_a_message(tmp_path):
    out = tmp_path / "site"
    result = build("--quick", "--out", out, "--cache-dir", tmp_path / "c", "--train-size", "100000",
                   "--test-size", "10", "--gallery", "100000", "--epochs", "1", "--faithfulness", "20",
                   "--validation", "58500")
    assert result.returncode == 0, result.stderr
    assert "--train-size 100,000 is more than the 1,500 images there are; using 1,500" in result.stderr
    assert "--gallery 100,000 is more than the 10 images there are; using 10" in result.stderr
    assert "--faithfulness 20 is more than the 10 images there are; using 10" in result.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["train_size"] == 1500 and record["config"]["gallery"] == 10
    assert record["config"]["faithfulness"] == 10
    assert record["flags"][:2] == ["--quick", "--out"] and "100000" in record["flags"]
    assert len(list((out / "gallery").glob("*.html"))) == 10


def test_jobs_change_the_speed_not_the_site(quick_site, cache_dir, tmp_path):
    """One process trains and draws what the shared --quick build did with two: the same site. The
    build here trains and draws in a cache of its own; it may reuse the shared build's checks in
    Chromium, which write nothing into the site but run.json's record of them."""
    from cnn.parallel import DEFAULT_WORKERS

    assert DEFAULT_WORKERS > 1  # the shared build's --jobs
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir / "browser", cache / "browser")
    out = tmp_path / "site"
    result = build("--quick", "--jobs", "1", "--out", out, "--cache-dir", cache)
    assert result.returncode == 0, result.stderr
    assert "reusing the cached run" not in result.stderr and "cached figures" not in result.stderr
    assert _comparable(out) == _comparable(quick_site)  # the measured times aside


# ------------------------------------------------------------------ caches

def test_a_truncated_cached_figure_or_model_script_is_drawn_again(quick_site, cache_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    for entry in (cache / "artifacts").iterdir():
        if entry.name.startswith("."):
            continue
        png = sorted((entry / "figures").rglob("*.png"))[0]
        png.write_bytes(png.read_bytes()[:100])
        script = entry / "trained-model.js"
        script.write_text(script.read_text()[:50])
    out = tmp_path / "site"
    result = build("--quick", "--out", out, "--cache-dir", cache)
    assert result.returncode == 0, result.stderr
    assert "cached figures" in result.stderr and "will be drawn again" in result.stderr
    assert fingerprint(out).keys() == fingerprint(quick_site).keys()
    rebuilt = {k: v for k, v in fingerprint(out).items() if k != "run.json"}
    assert rebuilt == {k: v for k, v in fingerprint(quick_site).items() if k != "run.json"}


def test_a_malformed_artifacts_record_is_drawn_again(quick_site, cache_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    for entry in (cache / "artifacts").iterdir():
        if not entry.name.startswith("."):
            (entry / "artifacts.json").write_text('{"context":{},"figures":{}}')
    out = tmp_path / "site"
    for _ in range(2):  # redrawn once, then reused
        result = build("--quick", "--out", out, "--cache-dir", cache)
        assert result.returncode == 0, result.stderr
    assert "reusing" in result.stderr


# ------------------------------------------------------------------ a useless model

def test_a_network_that_did_not_learn_is_not_published(quick_site, cache_dir, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    before = fingerprint(out)
    result = build("--quick", "--lr", "1e6", "--out", out, "--cache-dir", cache_dir)
    refused(result, "training")
    assert "--lr" in result.stderr
    assert fingerprint(out) == before


def test_pages_whose_javascript_disagrees_with_numpy_are_not_published(quick_site, cache_dir, tmp_path, browser):
    """An author's change to the page's network that makes saliency 1.5 times too large: the explorer's
    self-test in headless Chromium finds it, and the build stops (exit 2 from the command line) with
    what differed, keeping the previous site; --publish-failed writes it, the failure in run.json."""
    import build as command_line
    from cnn.errors import UserError
    from report.site import build as build_site

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    cnn_js = templates / "static" / "js" / "cnn.js"
    right = "function saliency(net, result, c, grads) { return inputMap(net, result, c, false, grads); }"
    assert right in cnn_js.read_text()
    cnn_js.write_text(cnn_js.read_text().replace(right, right.replace(
        "return inputMap(net, result, c, false, grads);", "return inputMap(net, result, c, false, grads).map(function (v) { return 1.5 * v; });")))
    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    before = fingerprint(out)
    flags = ["--quick", "--out", str(out), "--cache-dir", str(cache_dir)]
    config = command_line.make_config(command_line.parse_args(flags))
    with pytest.raises(UserError, match=r"disagrees with NumPy.*the explorer: saliency by .*previous site is unchanged"):
        build_site(config, log=lambda line: None, templates_dir=templates)
    assert fingerprint(out) == before

    config = command_line.make_config(command_line.parse_args(flags + ["--publish-failed"]))
    record = build_site(config, log=lambda line: None, templates_dir=templates)
    assert not record["explorer"]["selftest"]["passed"]
    assert record["explorer"]["selftest"]["worst"]["saliency"]["abs"] > 1e-4
    assert json.loads((out / "run.json").read_text())["explorer"]["selftest"]["passed"] is False


# ------------------------------------------------------------------ chapters

def _content(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    return content


def test_two_chapters_with_one_slug_are_an_error_naming_both(tmp_path):
    content = _content(tmp_path)
    shutil.copy(content / "02-data.md", content / "99-data.md")
    refused(build("--quick", "--out", tmp_path / "site", "--content", content, "--cache-dir", tmp_path / "c"),
            "02-data.md", "99-data.md")


def test_a_chapter_named_index_is_an_error(tmp_path):
    content = _content(tmp_path)
    shutil.copy(content / "02-data.md", content / "index.md")
    refused(build("--quick", "--out", tmp_path / "site", "--content", content, "--cache-dir", tmp_path / "c"),
            "index.md")


@pytest.mark.parametrize("call", ["source('/usr/lib/python3.11/os.py', 'walk')",
                                  "source('../../../etc/passwd', 'x')", "source('cnn', 'x')",
                                  "source('README.md', 'x')"])
def test_source_reads_only_the_projects_python_files(tmp_path, call):
    content = _content(tmp_path)
    chapter = content / "02-data.md"
    lines = chapter.read_text().split("\n")
    lines.insert(7, "{{ " + call + " }}")
    chapter.write_text("\n".join(lines))
    result = build("--quick", "--out", tmp_path / "site", "--content", content, "--cache-dir", tmp_path / "c")
    refused(result, "02-data.md, line 8", "only the project's own Python files")
    assert "root:" not in result.stderr


@pytest.mark.parametrize("placeholder,words", [
    ("{{ 1/0 }}", ["ZeroDivisionError"]),
    ("{{ figure('no-such-figure') }}", ["no such figure"]),
    ("{{ frames('kernels', label=1/0) }}", ["ZeroDivisionError"]),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", ["unsafe"]),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", []),
])
def test_a_chapter_cannot_crash_or_escape_the_build(quick_site, cache_dir, tmp_path, placeholder, words):
    content = _content(tmp_path)
    chapter = content / "03-architecture.md"
    lines = chapter.read_text().split("\n")
    lines.insert(9, placeholder)
    chapter.write_text("\n".join(lines))
    out = tmp_path / "site"
    result = build("--quick", "--out", out, "--cache-dir", cache_dir, "--content", content)
    refused(result, "03-architecture.md, line 10", *words)
    assert "uid=" not in result.stderr
    assert not out.exists()


def test_a_chapter_that_is_not_utf8_names_the_file_and_line(tmp_path):
    content = _content(tmp_path)
    (content / "02-data.md").write_bytes((content / "02-data.md").read_bytes() + b"\nCaf\xe9\n")
    result = build("--quick", "--out", tmp_path / "site", "--content", content, "--cache-dir", tmp_path / "c")
    refused(result, "02-data.md, line", "not UTF-8")


# ------------------------------------------------------------------ interruption

def test_ctrl_c_prints_one_line_exits_130_and_keeps_the_site(quick_site, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(quick_site, out)
    before = fingerprint(out)
    # A reader's terminal delivers Ctrl-C to a build whose SIGINT is at its default. A test run started in
    # the background by a shell without job control inherits SIGINT ignored, and so would the build:
    # restore the default in the child, as a terminal would have it.
    proc = subprocess.Popen([sys.executable, str(ROOT / "build.py"), "--quick", "--out", str(out),
                             "--cache-dir", str(tmp_path / "cache")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    seen = ""
    while "training:" not in seen and time.monotonic() < deadline:  # interrupt in the middle of training
        seen += proc.stderr.readline()
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted:")
    assert fingerprint(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "site"]
    assert not [p for p in (tmp_path / "cache").rglob(".*.tmp-*")]


# ------------------------------------------------------------------ the second dataset

def test_a_fashion_mnist_site_speaks_of_clothes_not_digits(tmp_path):
    from .test_data import FASHION_DEBIAN, needs_fashion

    needs_fashion()
    out = tmp_path / "site"
    result = build("--quick", "--dataset", "fashion-mnist", "--data-dir", FASHION_DEBIAN, "--out", out,
                   "--cache-dir", tmp_path / "c", "--train-size", "2000", "--epochs", "1", "--gallery", "3",
                   "--faithfulness", "20")
    assert result.returncode == 0, result.stderr
    for page in list(out.glob("*.html")) + list((out / "gallery").glob("*.html")):
        text = page.read_text()
        text = text[text.index("<main"):]  # the navigation and footer name the dataset, not its nouns
        for word in ("digit", "stroke", "MNIST's"):
            assert word not in text.replace("Fashion-MNIST", ""), (page.name, word)
    try_it = (out / "try-it.html").read_text()
    assert '<canvas id="pad" width="280" height="280"' in try_it and "hidden></canvas>" in try_it
    assert "items of clothing" in (out / "results.html").read_text()


def test_an_out_on_a_read_only_file_system_exits_2(quick_site, cache_dir, tmp_path):
    """A read-only tmpfs stands in for a folder the build may not write (root ignores permission bits)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        refused(build("--quick", "--out", folder / "site", "--cache-dir", cache_dir), "Read-only file system",
                "the previous site is unchanged")
    finally:
        subprocess.run(["umount", str(folder)], check=True)
