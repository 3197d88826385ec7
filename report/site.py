"""The pipeline: check -> Config -> Dataset -> Run -> analysis and figures -> pages -> site/.

First the checks that need no computing: the output folder may be replaced
(the build replaces only a folder it wrote itself, marked by SITE_MARKER), the
chapters parse and name only sources that exist. Then the work: data, the run
(training), the analysis with its figures -- both cached under .cache/, keyed
by everything they depend on, so a build after editing only content/ or
templates/ goes straight to the pages. The site is written into a temporary
folder and swapped in at the very end (cnn/atomic.py), so a build that fails
or is interrupted leaves the previous site as it was. One build at a time may
write an output folder; builds sharing a cache take turns.
"""

import dataclasses
import errno
import fcntl
import hashlib
import json
import platform
import resource
import shutil
import time
from contextlib import contextmanager, nullcontext
from importlib import metadata
from pathlib import Path

import numpy as np

from cnn.atomic import atomic_file, atomic_folder, recover
from cnn.data import load_dataset
from cnn.errors import UserError
from cnn.train import TrainingDiverged

from . import figures, gradcam_figures, trust
from .config import CACHE_MARKER, ROOT, SITE_MARKER, TEMPLATES_DIR, digest, source_hash
from .context import analyse
from .export import demo_indices, export_script
from .explain import explain_gallery, explain_trust, merged
from .explorer import (SNAPSHOTS_SCRIPT, TEST_SET_SCRIPT, explorer_artifacts, float32_base64, js_global, page_networks,
                       selftest_reference)
from .lab import LAB_DATA_SCRIPT, SELFTEST_BATCH, SELFTEST_STEPS, lab_data
from .lab import selftest_reference as lab_reference
from .memory import PeakMemory, release_freed_memory
from .pages import Page, Renderer, check_chapters, gather_pages, pygments_css
from .browsercheck import browser_version, explorer_selftest, lab_bench, lab_selftest, page_timings, selftest
from .run import conv_layer_names, log_stderr, obtain_run

ARTIFACTS_FORMAT = 4  # 2: every file's SHA-256 in artifacts.json; 3: the explorer's scripts; 4: the lab's data
# The code the cached analysis and figures depend on (besides the run's own, in report/run.py).
FIGURE_SOURCES = ("config.py", "context.py", "explain.py", "explorer.py", "export.py", "figures.py",
                  "gradcam_figures.py", "lab.py", "trust.py", "words.py")
HERE = Path(__file__).resolve().parent
MODEL_SCRIPT = "trained-model.js"  # the exported network, served as static/js/trained-model.js
SCRIPTS = (MODEL_SCRIPT, TEST_SET_SCRIPT, SNAPSHOTS_SCRIPT, LAB_DATA_SCRIPT)  # data for the pages, made with the figures
EXPLANATION_SOURCES = ("attribution.py", "gradcam.py", "gradcheck.py")
# cnn/ files that nothing cached depends on: read by the tests, and by source() when the pages are written
UNCACHED_SOURCES = ("reference.py",)
PACKAGES = ["numpy", "threadpoolctl", "tqdm", "matplotlib", "pillow", "jinja2", "markdown", "pymdown-extensions",
            "pygments"]


class Timings(dict):
    """{phase: seconds}; with a PeakMemory, its samples are counted for the phase too."""

    def __init__(self, memory=None):
        super().__init__()
        self.memory = memory

    @contextmanager
    def phase(self, name):
        start = time.perf_counter()
        with self.memory.phase(name) if self.memory else nullcontext():
            yield
        self[name] = round(time.perf_counter() - start, 3)


def build(config, log=log_stderr, templates_dir=TEMPLATES_DIR):
    """Build the site for config; returns the run record written to run.json.

    Gather and check, compute, write: the output folder and the chapters are
    checked before any training; the site is written into a temporary folder
    that replaces the output folder only when everything succeeded.
    """
    with PeakMemory() as memory:
        record = _build(config, log, templates_dir, memory)
    log(f"site: {config.out} ({record['site']['files']} files, {record['site']['bytes'] / 1e6:.1f} MB), "
        f"test accuracy {100 * record['metrics']['test_accuracy']:.2f} %, peak memory of the build's "
        f"processes {record['memory_mb']['all_processes']} MB")
    return record


def _build(config, log, templates_dir, memory):
    timings = Timings(memory)
    out = Path(config.out).expanduser().resolve()
    cache = Path(config.cache_dir).expanduser().resolve()
    content = Path(config.content).expanduser().resolve()
    with timings.phase("check"):
        check_output(out, content, cache, Path(templates_dir).resolve())
        check_cache_dir(cache)
        pages = gather_pages(content)
        check_chapters(pages, *figures.names_before_training(conv_layer_names()))
    with output_lock(out, cache), cache_lock(cache, log):
        for line in recover(out, SITE_MARKER):
            log(f"output: {line}")
        with timings.phase("data"):
            data, config = load_data(config, cache, log)
        with timings.phase("train"):
            try:
                run = obtain_run(config, data, config.rngs()["training"], log)
            except TrainingDiverged as e:
                raise UserError(f"{e} Lower the learning rate (--lr) and run again.") from None
        verdict = training_verdict(run.history, len(data.class_names))
        if not verdict["learned"]:
            if not config.publish_failed:
                raise UserError(f"training failed: {verdict['why']}. Nothing was published. Try a smaller "
                                "--lr, another --optimizer or more --epochs; --publish-failed writes the "
                                "site anyway, saying that the network did not learn.")
            log(f"warning: training failed ({verdict['why']}); publishing anyway (--publish-failed)")
        with timings.phase("figures"):
            context, figure_entries, figure_dir, drawn = obtain_artifacts(config, run, data, log, memory)
        context["verdict"] = verdict
        lab_ref = lab_reference(data, config.rngs()["lab"].spawn(1)[0])  # a batch of training images: before they go
        # what is left needs only the test images: give the training images' memory back
        data = dataclasses.replace(data, x_train=None, y_train=None, x_val=None, y_val=None)
        release_freed_memory()
        try:
            with atomic_folder(out, SITE_MARKER) as tmp:
                with timings.phase("pages"):
                    write_site(tmp, pages, context, figure_entries, figure_dir, templates_dir)
                    log(f"pages: {len(pages)} chapters, {len(context['explain']['gallery'])} gallery pages")
                parts = Timings(memory)  # the browser phase, page by page
                with timings.phase("browser"):
                    with parts.phase("try_it"):
                        browser = _browser_selftest(tmp, log)
                    # the lab first: its training in Chromium while this process is at its smallest (making
                    # the explorer's references, next, leaves it larger)
                    with parts.phase("lab"):
                        lab_check = _lab_check(tmp, lab_ref, config, log)
                    with parts.phase("explorer"):
                        explorer_check = _explorer_selftest(tmp, run, data, config, log)
                failed = failed_checks(browser, lab_check["selftest"], explorer_check["selftest"])
                if failed and not config.publish_failed:
                    raise UserError(f"the pages' JavaScript disagrees with NumPy in headless Chromium: {failed}. "
                                    "Nothing was published; the previous site is unchanged. The pages compute in "
                                    "templates/static/js/ (cnn.js; the lab's lab-engine.js); --publish-failed "
                                    "writes the site anyway, with the failed check in its run.json.")
                if failed:
                    log(f"warning: the pages' JavaScript disagrees with NumPy ({failed}); publishing anyway "
                        "(--publish-failed)")
                record = run_record(config, context, run, drawn, timings, tmp, figure_entries)
                record["timings"]["browser_pages"] = dict(parts)
                record["browser"] = browser
                record["explorer"] = dict(context["explorer"], **explorer_check)
                record["lab"] = dict({k: v for k, v in context["lab"].items() if k != "presets"}, **lab_check)
                record["memory_mb"]["all_processes"] = memory.peak_mb  # up to the self-test
                record["memory_mb"]["all_processes_by_phase"] = memory.by_phase_mb
                (tmp / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
                raise
            raise UserError(f"{e.filename}: {e.strerror}; the previous site is unchanged. Free some space, "
                            "or choose an --out in a folder you can write to.") from None
    return record


# ---------------------------------------------------------------- checks before the work

def check_output(out, content, cache, templates):
    """Refuse an output folder that the build did not write itself, or that holds what it needs."""
    why = None
    if out == Path(out.anchor):
        why = "it is the root of the file system"
    for name, precious in (("the project", ROOT), ("the chapters folder", content),
                           ("the cache folder", cache), ("the templates folder", templates)):
        if why is None and (precious == out or precious.is_relative_to(out)):
            why = f"it holds {name} ({precious})"
        elif why is None and out.is_relative_to(precious) and precious != ROOT:
            why = f"it is inside {name} ({precious})"
    if why is None and out.exists() and not out.is_dir():
        why = "it is a file, not a folder"
    if why is None and out.is_dir() and not (out / SITE_MARKER).is_file() and any(out.iterdir()):
        why = (f"it is a folder that build.py did not write (it has no {SITE_MARKER} file), and it "
               "is not empty")
    if why:
        raise UserError(f"--out {out}: refusing to replace it: {why}. The build replaces only a "
                        "folder it wrote itself; name a new or empty folder.")


def check_cache_dir(cache):
    if cache.exists() and not cache.is_dir():
        raise UserError(f"--cache-dir {cache}: is a file; name a folder (it is created if missing).")


@contextmanager
def _flock(path, busy):
    """An exclusive lock on the file `path`, held for the block. If another process holds it, busy() is
    called first: it raises to give up, or returns to wait for the lock."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError as e:
        raise UserError(f"{path}: cannot be created ({e.strerror}); choose a folder you can write to.") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def output_lock(out, cache):
    """Only one build writes into an output folder at a time; a second one stops with exit 2.

    The lock file lives in the cache (nothing is added beside the site); builds
    with different caches cannot harm each other's temporary folders either,
    since a build removes only those of processes that are no longer running."""
    def busy():
        raise UserError(f"--out {out}: another build is writing this folder right now; "
                        "wait for it to finish, or choose another --out.")
    name = hashlib.sha256(str(out).encode()).hexdigest()[:16]
    return _flock(cache / "locks" / f"out-{name}.lock", busy)


def cache_lock(cache, log):
    """Builds that share a cache take turns: a second one waits while the first fills it."""
    return _flock(cache / ".lock", lambda: log(f"waiting for another build that is using {cache} ..."))


def load_data(config, cache, log):
    """The dataset split as configured, and the config with every count as it was used."""
    dataset = load_dataset(config.dataset, config.data_dir, cache / "data", progress=log)
    n_train, n_test = len(dataset.y_train), len(dataset.y_test)
    if config.validation >= n_train:
        raise UserError(f"--validation {config.validation:,}: {dataset.spec.title} has {n_train:,} training "
                        "images; hold out fewer so that some are left to train on.")
    classes = len(dataset.class_names)
    for flag, value in (("--validation", config.validation), ("--train-size", config.train_size),
                        ("--test-size", config.test_size)):
        if value is not None and value < classes:
            raise UserError(f"{flag} {value}: too few for {dataset.spec.title}'s {classes} classes; every split "
                            f"needs at least one image of each class, so at least {classes}.")
    changes = {}
    available = n_train - config.validation
    tested = min(config.test_size or n_test, n_test)
    for flag, name, limit in (("--train-size", "train_size", available), ("--test-size", "test_size", n_test),
                              ("--gallery", "gallery", tested), ("--faithfulness", "faithfulness", tested)):
        value = getattr(config, name)
        if value is not None and value > limit:
            log(f"note: {flag} {value:,} is more than the {limit:,} images there are; using {limit:,}")
            changes[name] = limit
    config = dataclasses.replace(config, **changes)
    data = dataset.split(config.validation, config.train_size, config.test_size, config.rngs()["data"])
    log(f"data: {dataset.spec.title}, {len(data.x_train):,} training, {len(data.x_val):,} validation "
        f"and {len(data.x_test):,} test images")
    return data, config


def training_verdict(history, classes):
    """Did the network learn? Not if it ends near chance or with a loss no lower than at the start."""
    chance = 1 / classes
    first, last = history.initial, history.epochs[-1]
    why = []
    if last.val_accuracy < 2 * chance:
        why.append(f"validation accuracy {100 * last.val_accuracy:.2f} % is near chance ({100 * chance:.0f} %)")
    if not last.val_loss < first["val_loss"]:
        why.append(f"validation loss {last.val_loss:.4g} after {last.epoch} epochs is no lower than "
                   f"{first['val_loss']:.4g} before training")
    return {"learned": not why, "why": "; ".join(why), "chance": chance,
            "initial_val_loss": first["val_loss"], "initial_val_accuracy": first["val_accuracy"]}


# ---------------------------------------------------------------- analysis and figures

def obtain_artifacts(config, run, data, log, memory=None):
    """(context, figure entries, folder of figure files, drawn now?) from the cache or made anew.

    Every file of a cache entry is listed in artifacts.json with its SHA-256;
    an entry whose files do not match (a truncated figure, say) or whose record
    is malformed is drawn again. The context records how long its parts took
    when they were made (context["made"]), so that run.json can report them
    after a cached build too; memory, a PeakMemory, is told which part is running.
    """
    code = source_hash("report", names=FIGURE_SOURCES) + source_hash("cnn", names=EXPLANATION_SOURCES)
    key = digest("artifacts", ARTIFACTS_FORMAT, run.key, code, config.gallery, config.faithfulness,
                 metadata.version("matplotlib"))[:20]
    entry = Path(config.cache_dir) / "artifacts" / key
    if entry.exists() and not config.retrain:
        try:
            context, entries = _load_artifacts(entry)
            log(f"figures: reusing {len(entries)} cached figures from {entry}")
            return context, entries, entry / "figures", False
        except UserError as e:
            log(f"warning: the cached figures in {entry} are unusable and will be drawn again: {e}")
    rngs = config.rngs()
    made = Timings(memory)
    with made.phase("analysis"):
        log("analysis: evaluating the test set, gradient checks")
        context, arrays = analyse(config, run, data, rngs["gradcheck"])
    proba = arrays["proba"]
    with made.phase("explanations"):
        log(f"explanations: Grad-CAM of {config.gallery} gallery images, and every other method's map of them")
        context["explain"], explained = explain_gallery(config, run, data, proba, rngs)
    with made.phase("export"):
        idx = demo_indices(data.y_test)
        script, demo = export_script(run.model, data, idx, context["explain"]["layer"], data.class_names,
                                     gradcam_figures.HEAT)
        context["demo"] = {"bytes": len(script.encode()), "samples": [
            {"index": int(i), "label": int(data.y_test[i]), "pred": int(demo["pred"][j]),
             "confidence": float(demo["proba"][j].max())} for j, i in enumerate(idx)]}
    with made.phase("explorer"):
        log("explorer: every test image, the network after every epoch")
        context["explorer"], scripts, over_training = explorer_artifacts(run, data, proba, context, rngs["explorer"],
                                                                             config.jobs)
    with made.phase("lab"):
        doc, context["lab"] = lab_data(data, run.history, rngs["lab"])
        doc["numpy"]["test_accuracy"] = context["metrics"]["test_accuracy"]
        context["lab"]["selftest"] = {"batch": SELFTEST_BATCH, "steps": SELFTEST_STEPS}
        scripts[LAB_DATA_SCRIPT] = js_global("CNN_LAB", doc, "The lab's training, validation and test images, its "
                                                      "settings, and the curves of the build's own run.")
    scripts[MODEL_SCRIPT] = script
    inputs = figures.figure_inputs(run, data, context, arrays, explained, {"indices": idx, **demo}, over_training)
    completeness = explained["completeness"]
    del arrays, explained  # what the figures need is in inputs
    release_freed_memory()
    with atomic_folder(entry, CACHE_MARKER) as tmp:
        for name, text in scripts.items():
            (tmp / name).write_text(text)
        log(f"figures: drawing with {config.jobs} process(es), while the trust chapter is measured")
        began = time.perf_counter()
        # The drawing processes are forked before the trust tests make their arrays, and draw every figure
        # but the trust chapter's while this process measures; then they and this process draw those.
        with figures.Drawing(inputs, tmp / "figures", config.jobs) as drawing:
            drawing.draw("chapter_figures", figures.jobs(inputs))
            drawing.draw("gallery_figures", gradcam_figures.jobs(inputs))
            with made.phase("trust"):
                log(f"trust: {len(trust.methods(None))} methods on {config.faithfulness} test images: deletion, "
                    "insertion, ROAD, model and data randomisation")
                more, explained = explain_trust(config, run, data, proba, rngs, context["explain"]["layer"],
                                                completeness)
            context["explain"] = merged(context["explain"], more)
            inputs = figures.with_trust(inputs, context["explain"], explained)
            del explained
            with made.phase("figures_after_trust"):
                entries, drawn = drawing.finish("trust_figures", gradcam_figures.trust_jobs(inputs), inputs)
        made["drawing"] = round(time.perf_counter() - began, 3)  # from the first figure to the last, the trust tests included
        made.update(drawn)  # seconds each group of figures took to draw, summed over the processes
        context["made"] = dict(made, **{f"explain_{k}": v for k, v in context["explain"]["timings"].items()})
        files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*"))
                 if p.is_file() and p.name != CACHE_MARKER}
        (tmp / "artifacts.json").write_text(json.dumps({"context": context, "figures": entries, "files": files},
                                                       sort_keys=True, default=_json_default))
        context = json.loads(json.dumps(context, default=_json_default))
    return context, entries, entry / "figures", True


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _load_artifacts(entry):
    """(context, figure entries) of a cache entry whose every file matches its recorded SHA-256."""
    try:
        saved = json.loads((entry / "artifacts.json").read_text())
        context, entries, files = saved["context"], saved["figures"], saved["files"]
        if not isinstance(context, dict) or not isinstance(entries, dict) or not isinstance(files, dict):
            raise ValueError("artifacts.json is not a record of this build's artifacts")
        for required in ("metrics", "explain", "made", "demo", "explorer", "lab"):
            if required not in context:
                raise ValueError(f"artifacts.json has no {required!r}")
        listed = set(files)
        for name in list(SCRIPTS) + [f[k] for f in entries.values() for k in ("src", "dark") if k in f]:
            if name not in listed:
                raise ValueError(f"{name} is not listed in artifacts.json")
        for name, sha in files.items():
            if _sha256(entry / name) != sha:
                raise ValueError(f"{name} does not match the checksum recorded when it was written")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(str(e)) from None
    return context, entries


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------- pages

def site_info(context):
    ds = context["dataset"]
    return {"title": "How a CNN learns", "dataset": ds["title"], "credit": ds["credit"]}


def write_site(out, pages, context, figure_entries, figure_dir, templates_dir):
    """Every page, figure, formula and asset of the site, into the folder out."""
    nouns = context["dataset"]["nouns"]
    chapter_context = dict(context, site=site_info(context), noun=nouns["singular"], nouns=nouns["plural"])
    renderer = Renderer(templates_dir, chapter_context, figure_entries)
    for page in pages:
        renderer.render_chapter(page, pages)
    for page in pages:
        renderer.write_page(page, pages, out)
    gallery = context["explain"]["gallery"]
    for position, item in enumerate(gallery):
        page = Page(Path(templates_dir) / "explain.html", f"gallery/{item['index']}.html",
                    f"Test image #{item['index']}", 0, f"gallery-{item['index']}")
        renderer.write_page(page, pages, out, "explain.html", item=item, position=position,
                            prev_item=gallery[position - 1] if position else None,
                            next_item=gallery[position + 1] if position + 1 < len(gallery) else None,
                            method_names=context["explain"]["methods"])
    shutil.copytree(figure_dir, out / "figures")
    shutil.copytree(Path(templates_dir) / "static", out / "static")
    for name in SCRIPTS:
        shutil.copyfile(Path(figure_dir).parent / name, out / "static" / "js" / name)
    (out / "static" / "pygments.css").write_text(pygments_css())
    (out / "math").mkdir()
    for name, svg in sorted(renderer.math.files.items()):
        (out / "math" / name).write_bytes(svg)
    (out / ".nojekyll").write_text("")


def run_record(config, context, run, drawn, timings, site_dir, figure_entries):
    files = [p for p in Path(site_dir).rglob("*") if p.is_file()]
    m = context["metrics"]
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "config": config.public(),  # as used, counts clamped to the data
        "flags": list(config.flags),  # as given on the command line
        "metrics": {"test_accuracy": m["test_accuracy"], "test_loss": m["test_loss"],
                    "train_accuracy": m["train_accuracy"], "train_loss": m["train_loss"],
                    "per_class_accuracy": {r["name"]: r["accuracy"] for r in m["per_class"]},
                    "epoch_seconds": m["epoch_seconds"], "train_seconds": m["train_seconds"],
                    "images_per_second": m["images_per_second"], "errors": m["errors"]},
        "gradcheck": {r["layer"]: r["errors"] for r in context["gradcheck"]["rows"]},
        "versions": {"python": platform.python_version(),
                     **{p: metadata.version(p) for p in PACKAGES}},
        "cache": {"run": "reused" if run.reused else "trained", "figures": "drawn" if drawn else "reused",
                  "run_key": run.key},
        "timings": dict(timings, total=round(sum(timings.values()), 3)),
        "made": context["made"],  # seconds spent making the cached analysis and figures, when they were made
        # the trust chapter's measurements, part by part, when they were made (issue budget: 60 s in all)
        "explanation_metrics": {"images": context["explain"]["trust"]["images"],
                                "sanity_images": context["explain"]["trust"]["sanity_images"],
                                "shuffled_labels": context["explain"]["trust"]["shuffled"],
                                "seconds": dict(context["explain"]["trust"]["timings"],
                                                cascade=context["explain"]["timings"]["randomization"])},
        "site": {"files": len(files) + 1, "bytes": sum(p.stat().st_size for p in files)},  # run.json aside
        # the smallest words of each figure, in CSS pixels on a 360 px screen (readable: 11 or more)
        "figure_text_on_a_phone": _phone_text(figure_entries),
        "verdict": context["verdict"],
        # peak resident memory of this process and of the largest process it waited for (a forked child
        # counts the pages it shares with the builder); all_processes: the peak sum of Pss over the tree
        "memory_mb": {"main": round(self_kb / 1024, 1), "largest_child": round(children_kb / 1024, 1)},
    }


def _phone_text(figure_entries):
    """How many figures with words keep them readable on a 360 px screen, and the ones that do not."""
    sized = {n: f["text_px_at_360"] for n, f in sorted(figure_entries.items()) if f.get("text_px_at_360") is not None}
    small = {n: px for n, px in sized.items() if px < figures.PHONE_TEXT_PX}
    return {"figures_with_words": len(sized), "readable": len(sized) - len(small), "too_small": small}


TRY_IT_TOLERANCE = {"probabilities": 1e-4, "gradcam": 1e-3}  # the largest differences "Try it" may show from NumPy


def _browser_selftest(site_dir, log):
    """Run the demo page's self-test in headless Chromium, if there is one; report what it found."""
    page = next((p for p in Path(site_dir).glob("*.html") if (p.read_text().find('id="selftest"') >= 0)), None)
    if page is None:
        return {"measured": False, "reason": "no page with a self-test"}
    result = selftest(page)
    if not result["measured"]:
        log(f"browser: not measured: {result['reason']}")
    else:
        ok = result["max_prob_diff"] <= TRY_IT_TOLERANCE["probabilities"] and \
            result["max_cam_diff"] <= TRY_IT_TOLERANCE["gradcam"] and result["same_class"] == result["images"]
        log(f"browser: {page.name} self-test {'passed' if ok else 'FAILED'}: probabilities within "
            f"{result['max_prob_diff']:.1e}, Grad-CAM within {result['max_cam_diff']:.1e}, "
            f"{result['ms']:.1f} ms per forward pass + Grad-CAM")
        result["passed"] = ok
    return result


def failed_checks(try_it, lab, explorer):
    """What the self-tests that ran and failed found, in words ("" when none did): each page, and
    the kinds of numbers whose largest difference is over the page's tolerance (NaN counts)."""
    out = []
    if try_it.get("measured") and not try_it.get("passed"):
        t = TRY_IT_TOLERANCE
        out.append(f"Try it: probabilities within {try_it['max_prob_diff']:.1e} (tolerance {t['probabilities']:.0e}), "
                   f"Grad-CAM within {try_it['max_cam_diff']:.1e} ({t['gradcam']:.0e}), the same class for "
                   f"{try_it['same_class']} of {try_it['images']} images")
    for name, check in (("the lab", lab), ("the explorer", explorer)):
        if check.get("measured") and not check.get("passed"):
            over = [f"{kind} by {'NaN' if w['abs'] is None else format(w['abs'], '.1e')}"
                    for kind, w in sorted(check["worst"].items()) if w["abs"] is None or w["abs"] > check["tolerance"]]
            out.append(f"{name}: {', '.join(over)} (tolerance {check['tolerance']:.0e})")
    return "; ".join(out)


EXPLORER_TOLERANCE = 1e-4  # the largest absolute difference allowed between the page's numbers and NumPy's


def _explorer_selftest(site_dir, run, data, config, log):
    """The explorer's JavaScript against NumPy in headless Chromium, and the page's own timings.

    A self-test that ran is kept in <cache>/browser/, keyed by the run, the code on both
    sides and the browser's version: a build that changed only words reuses it. So are the
    page's timings, keyed by its scripts (code and data), its style sheet and the browser's
    version, as the lab's measurements are."""
    js = Path(site_dir) / "static" / "js"
    page = Path(site_dir) / "explorer.html"
    timing_key = digest("explorer-timings", _files_hash([js / name for name in (
        "explorer.js", "cnn.js", MODEL_SCRIPT, SNAPSHOTS_SCRIPT, TEST_SET_SCRIPT)] + [
        Path(site_dir) / "static" / "css" / "site.css"]), browser_version(),
        source_hash("report", names=("browsercheck.py",)))[:20]

    def measure():
        t = page_timings(page)
        return t, t["measured"]

    timing, reused = _kept_check(Path(config.cache_dir) / "browser" / f"explorer-timings-{timing_key}.json", measure,
                                 lambda t: t.get("measured") is True and {"ready_ms", "unpack_ms", "redraw_ms"} <= set(t))
    if reused:
        log(f"browser: reusing the explorer's timings measured on this page's code and data ({reused})")
    if timing["measured"]:
        log(f"browser: explorer interactive {timing['ready_ms']:.0f} ms after the navigation began; redraws "
            "(median) " + ", ".join(f"{k} {v:.0f} ms" for k, v in timing["redraw_ms"].items()))
    else:
        log(f"browser: explorer timings not measured: {timing['reason']}")
    key = digest("explorer-selftest", run.key, _files_hash([js / "cnn.js", HERE / "explorer_selftest.js",
                                                            HERE / "selftest_compare.js"]),
                 EXPLORER_TOLERANCE, browser_version(),
                 source_hash("report", names=("browsercheck.py", "explorer.py", "export.py")))[:20]

    def run_it():
        header, docs = selftest_reference(page_networks(run), data, config.rngs()["explorer"])
        check = explorer_selftest([js / MODEL_SCRIPT, js / SNAPSHOTS_SCRIPT, js / "cnn.js"], header, docs)
        return _judged(check, EXPLORER_TOLERANCE), check["measured"]

    check, reused = _kept_check(
        Path(config.cache_dir) / "browser" / f"{key}.json", run_it,
        lambda c: c.get("measured") is True and isinstance(c.get("worst"), dict)
        and {"passed", "compared", "images", "classes", "networks", "seconds"} <= set(c))
    if reused:
        log(f"browser: reusing the explorer self-test of this network and code ({reused})")
    if not check["measured"]:
        log(f"browser: explorer self-test not measured: {check['reason']}")
    else:
        log(f"browser: explorer self-test {'passed' if check['passed'] else 'FAILED'}: {check['compared']:,} arrays "
            f"({check['images']} images x {check['classes']} classes x {check['networks']} networks), largest "
            f"difference {_largest(check):.1e}, in {check['seconds']:.1f} s")
    return {"selftest": check, "timings": timing}


LAB_TOLERANCE = 1e-4  # the largest absolute difference allowed between the lab's numbers and NumPy's
LAB_BENCH_SECONDS = 60  # the longest the lab's default settings train in the build's measurement (--quick: 5 s)


def _lab_check(site_dir, reference, config, log):
    """The lab's engine against NumPy in headless Chromium, and its speed and learning in a run of the
    page's default settings (in its Web Worker, as a reader runs it, without the live validation passes,
    which change nothing in the training), stopped after LAB_BENCH_SECONDS of training if its epochs have
    not ended by then.

    Both are kept in <cache>/browser/, keyed by the code on both sides, the data (the reference is
    drawn from it, and lab-data.js is part of the code's hash) and the browser's version: only a
    build that changed them runs them again."""
    js = Path(site_dir) / "static" / "js"
    seconds = 5 if config.quick else LAB_BENCH_SECONDS
    key = digest("lab-check", _files_hash([js / "lab-engine.js", js / "lab.js", js / LAB_DATA_SCRIPT,
                                           HERE / "lab_selftest.js", HERE / "selftest_compare.js"]),
                 LAB_TOLERANCE, seconds, browser_version(), source_hash("report", names=("browsercheck.py", "lab.py")))[:20]

    def run_it():
        test = _judged(lab_selftest(js / "lab-engine.js", float32_base64(reference)), LAB_TOLERANCE)
        log(f"browser: lab: training its default network in headless Chromium (at most {seconds} s)")
        bench = lab_bench(Path(site_dir) / "lab.html", seconds)
        return {"selftest": test, "bench": bench}, test["measured"] and bench["measured"]

    measured = lambda part: isinstance(part, dict) and part.get("measured") is True
    check, reused = _kept_check(Path(config.cache_dir) / "browser" / f"lab-{key}.json", run_it,
                                lambda c: measured(c.get("selftest")) and measured(c.get("bench"))
                                and {"stopped", "trained_seconds"} <= set(c["bench"]))
    if reused:
        log(f"browser: reusing the lab's checks of this code ({reused})")
    test, bench = check["selftest"], check["bench"]
    if test["measured"]:
        log(f"browser: lab self-test {'passed' if test['passed'] else 'FAILED'}: {test['compared']} arrays, largest "
            f"difference {_largest(test):.1e}")
    else:
        log(f"browser: lab self-test not measured: {test['reason']}")
    if bench["measured"]:
        end = "at the end of its epochs" if bench["stopped"] == "epochs" else f"stopped by the {bench['seconds']} s limit"
        log(f"browser: lab: {bench['images_per_second']:.0f} training images per second; "
            f"{100 * bench['test_accuracy']:.2f} % of its test images right after {bench['trained_seconds']:.0f} s "
            f"of training ({end})")
    else:
        log(f"browser: lab speed not measured: {bench['reason']}")
    return check


def _files_hash(paths):
    """SHA-256 of the files' bytes, in order: part of a cache key."""
    return hashlib.sha256(b"".join(Path(p).read_bytes() for p in paths)).hexdigest()


def _judged(check, tolerance):
    """A self-test's record with its tolerance and whether it passed (false for a NaN too), if it ran."""
    if check["measured"]:
        check["tolerance"] = tolerance
        check["passed"] = bool(_largest(check) <= tolerance)
    return check


def _kept_check(stored, make, valid):
    """(record, where it was reused from or None) for a check kept in <cache>/browser/.

    The record at `stored` is reused if it is a JSON object that valid(record) accepts; otherwise
    make() -> (record, worth keeping) runs the check, and a record worth keeping is written
    whole or not at all."""
    try:
        record = json.loads(stored.read_text())
        if isinstance(record, dict) and valid(record):
            return record, stored
    except (OSError, ValueError):
        pass
    record, keep = make()
    if keep:
        stored.parent.mkdir(exist_ok=True)
        with atomic_file(stored) as tmp:
            tmp.write_text(json.dumps(record, sort_keys=True))
    return record, None


def _largest(check):
    """The largest difference a self-test found: absolute, or for the maps compared whole (integrated
    gradients, SmoothGrad: see explorer_selftest.js) the summed difference over the summed map.
    JSON's null (a NaN in the page) counts as infinite."""
    return max(float("inf") if w["abs"] is None else w["abs"] for w in check["worst"].values())
