"""The pipeline: Config -> Dataset -> Run -> analysis and figures -> pages -> site/.

The site is written into a temporary folder beside the output folder and
swapped in at the very end, so a build that fails or is interrupted leaves the
previous site as it was. The run (training) and the analysis with its figures
are cached under .cache/, keyed by everything they depend on, so a build after
editing only content/ or templates/ goes straight to the pages.
"""

import json
import os
import platform
import shutil
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from cnn.data import load_dataset
from cnn.errors import UserError

from . import figures, gradcam_figures
from .config import ROOT, digest, source_hash
from .context import analyse, figure_inputs
from .export import demo_indices, export_script
from .explain import explain
from .pages import Page, Renderer, gather_pages, pygments_css
from .browsercheck import selftest
from .run import log_stderr, obtain_run

ARTIFACTS_FORMAT = 1
# The code the cached analysis and figures depend on (besides the run's own, in report/run.py).
FIGURE_SOURCES = ("config.py", "context.py", "explain.py", "export.py", "figures.py", "gradcam_figures.py")
MODEL_SCRIPT = "trained-model.js"  # the exported network, served as static/js/trained-model.js
EXPLANATION_SOURCES = ("attribution.py", "gradcam.py", "gradcheck.py")
PACKAGES = ["numpy", "threadpoolctl", "tqdm", "matplotlib", "jinja2", "markdown", "pymdown-extensions",
            "pygments"]


class Timings(dict):
    @contextmanager
    def phase(self, name):
        start = time.perf_counter()
        yield
        self[name] = round(time.perf_counter() - start, 3)


def build(config, log=log_stderr, content_dir=ROOT / "content", templates_dir=ROOT / "templates"):
    """Build the site for config; returns the run record written to run.json."""
    timings = Timings()
    out = Path(config.out).resolve()
    _recover(out, log)
    with timings.phase("data"):
        data_rng, train_rng, explain_rng = config.rngs()
        dataset = load_dataset(config.dataset, config.data_dir, Path(config.cache_dir) / "data", progress=log)
        data = dataset.subset(config.train_size, config.test_size, data_rng)
        log(f"data: {dataset.spec.title}, {len(data.x_train):,} training and {len(data.x_test):,} test images")
    with timings.phase("train"):
        run = obtain_run(config, data, train_rng, log)
    with timings.phase("figures"):
        context, figure_entries, figure_dir, drawn = obtain_artifacts(config, run, data, explain_rng, log)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with timings.phase("pages"):
            pages = write_site(tmp, context, figure_entries, figure_dir, content_dir, templates_dir)
            log(f"pages: {len(pages)} chapters, {len(context['explain']['gallery'])} gallery pages")
        with timings.phase("browser"):
            browser = _browser_selftest(tmp, log)
        record = run_record(config, context, run, drawn, timings, tmp)
        record["browser"] = browser
        (tmp / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        _swap(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"site: {out} ({record['site']['files']} files, {record['site']['bytes'] / 1e6:.1f} MB), "
        f"test accuracy {100 * context['metrics']['test_accuracy']:.2f} %")
    return record


# ---------------------------------------------------------------- analysis and figures

def obtain_artifacts(config, run, data, rng, log):
    """(context, figure entries, folder of figure files, drawn now?) from the cache or made anew.

    The context records how long its parts took when they were made
    (context["made"]), so that run.json can report them after a cached build too.
    """
    code = source_hash("report", names=FIGURE_SOURCES) + source_hash("cnn", names=EXPLANATION_SOURCES)
    key = digest("artifacts", ARTIFACTS_FORMAT, run.key, code, config.gallery, config.faithfulness,
                 metadata.version("matplotlib"))[:20]
    entry = Path(config.cache_dir) / "artifacts" / key
    if entry.exists() and not config.retrain:
        try:
            saved = json.loads((entry / "artifacts.json").read_text())
            missing = [f["src"] for f in saved["figures"].values() if not (entry / f["src"]).is_file()]
            missing += [] if (entry / MODEL_SCRIPT).is_file() else [MODEL_SCRIPT]
            if missing:
                raise UserError(f"missing figure files {missing[:3]}")
            log(f"figures: reusing {len(saved['figures'])} cached figures from {entry}")
            return saved["context"], saved["figures"], entry / "figures", False
        except (OSError, ValueError, KeyError, UserError) as e:
            log(f"warning: the cached figures in {entry} are unusable and will be drawn again: {e}")
            shutil.rmtree(entry, ignore_errors=True)
    made = Timings()
    with made.phase("analysis"):
        log("analysis: evaluating the test set, gradient checks")
        context, arrays = analyse(config, run, data, rng)
    with made.phase("explanations"):
        log(f"explanations: Grad-CAM of {config.gallery} gallery images, faithfulness, randomisation check")
        context["explain"], explained = explain(config, run.model, data, arrays["proba"], rng)
    with made.phase("export"):
        idx = demo_indices(data.y_test)
        script, demo = export_script(run.model, data, idx, context["explain"]["layer"], data.class_names,
                                     gradcam_figures.HEAT)
        context["demo"] = {"bytes": len(script.encode()), "samples": [
            {"index": int(i), "label": int(data.y_test[i]), "pred": int(demo["pred"][j]),
             "confidence": float(demo["proba"][j].max())} for j, i in enumerate(idx)]}
    shared = figure_inputs(run, data, context, arrays, explained)
    shared["demo"] = {"indices": idx, **demo}
    tmp = entry.with_name(f".tmp-{key}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        (tmp / MODEL_SCRIPT).write_text(script)
        log(f"figures: drawing with {config.jobs} process(es)")
        with made.phase("chapter_figures"):
            entries = figures.render_all(shared, tmp / "figures", figures.jobs(shared), config.jobs)
        with made.phase("gallery_figures"):
            entries.update(figures.render_all(shared, tmp / "figures", gradcam_figures.jobs(shared), config.jobs))
        context["made"] = dict(made, **{f"explain_{k}": v for k, v in context["explain"]["timings"].items()})
        (tmp / "artifacts.json").write_text(json.dumps({"context": context, "figures": entries},
                                                       sort_keys=True, default=_json_default))
        context = json.loads(json.dumps(context, default=_json_default))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return context, entries, entry / "figures", True


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


def write_site(out, context, figure_entries, figure_dir, content_dir, templates_dir):
    """Every page, figure, formula and asset of the site, into the folder out."""
    out.mkdir(parents=True)
    pages = gather_pages(content_dir)
    chapter_context = dict(context, site=site_info(context))
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
    shutil.copyfile(Path(figure_dir).parent / MODEL_SCRIPT, out / "static" / "js" / MODEL_SCRIPT)
    (out / "static" / "pygments.css").write_text(pygments_css())
    (out / "math").mkdir()
    for name, svg in sorted(renderer.math.files.items()):
        (out / "math" / name).write_bytes(svg)
    (out / ".nojekyll").write_text("")
    return pages


def run_record(config, context, run, drawn, timings, site_dir):
    files = [p for p in Path(site_dir).rglob("*") if p.is_file()]
    m = context["metrics"]
    return {
        "config": config.public(),
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
        "site": {"files": len(files) + 1, "bytes": sum(p.stat().st_size for p in files)},
    }


def _browser_selftest(site_dir, log):
    """Run the demo page's self-test in headless Chromium, if there is one; report what it found."""
    page = next((p for p in Path(site_dir).glob("*.html") if (p.read_text().find('id="selftest"') >= 0)), None)
    if page is None:
        return {"measured": False, "reason": "no page with a self-test"}
    result = selftest(page)
    if not result["measured"]:
        log(f"browser: not measured: {result['reason']}")
    else:
        ok = result["max_prob_diff"] <= 1e-4 and result["max_cam_diff"] <= 1e-3 and \
            result["same_class"] == result["images"]
        log(f"browser: {page.name} self-test {'passed' if ok else 'FAILED'}: probabilities within "
            f"{result['max_prob_diff']:.1e}, Grad-CAM within {result['max_cam_diff']:.1e}, "
            f"{result['ms']:.1f} ms per forward pass + Grad-CAM")
        result["passed"] = ok
    return result


# ---------------------------------------------------------------- swapping

def _swap(new, out):
    """Replace out with new: two renames, the old site kept aside until the new one is in place."""
    old = out.with_name(f"{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _recover(out, log):
    """Put back a site left aside by a build that stopped between its two renames; drop stale temporaries."""
    if not out.parent.exists():
        return
    olds = sorted(out.parent.glob(f"{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not out.exists():
        os.replace(olds[-1], out)
        log(f"recovered the previous site from {olds[-1].name}")
    for stale in list(out.parent.glob(f"{out.name}.old-*")) + list(out.parent.glob(f"{out.name}.tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)
