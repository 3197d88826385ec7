"""The site's JavaScript checked and timed in a headless Chromium, with no driver.

- "Try it" checks its network against NumPy's answers for a few test images when it
  loads, and writes the results into the data-* attributes of its #selftest element;
  Chromium's --dump-dom prints the page after its scripts have run (selftest).
- The explorer's self-test (explorer_selftest) and its timings (page_timings) run in
  real time over Chromium's DevTools pipe (--remote-debugging-pipe), which waits for
  the page's own promise: --dump-dom's virtual time would stop the page's clock, and
  it dumps before asynchronous work (unpacking the data) is done.

Without a Chromium or Chrome on the machine, the build says so in run.json and carries on.
"""

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")
HERE = Path(__file__).resolve().parent
FIELDS = {"status": str, "images": int, "max-prob-diff": float, "max-cam-diff": float, "same-class": int,
          "ms": float}


# How every check, and report/screenshot.py, starts Chromium (its profile folder and the way it is
# driven come after).
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update")


def find_browser():
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Attrs(HTMLParser):
    """The attributes of the element with a given id."""

    def __init__(self, element_id):
        super().__init__()
        self.id, self.attrs = element_id, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == self.id:
            self.attrs = attrs


def browser_version():
    """The Chromium or Chrome that the checks would run, as its --version says (None without one)."""
    browser = find_browser()
    if browser is None:
        return None
    return subprocess.run([browser, "--version"], capture_output=True, text=True).stdout.strip()


def _dump_dom(url, timeout):
    """(the page's DOM after its scripts ran, browser version), or (None, reason)."""
    browser = find_browser()
    if browser is None:
        return None, "no Chromium or Chrome found on this machine"
    with tempfile.TemporaryDirectory() as profile:
        try:
            done = subprocess.run(
                [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{browser} did not run the page: {e}"
    return done.stdout, browser_version()


def selftest(page, timeout=120):
    """The self-test's results as a dict (with "measured": False and a reason when it could not run)."""
    dom, version = _dump_dom(Path(page).resolve().as_uri(), timeout)
    if dom is None:
        return {"measured": False, "reason": version}
    parser = _Attrs("selftest")
    parser.feed(dom)
    if parser.attrs is None or parser.attrs.get("data-status") != "done":
        status = (parser.attrs or {}).get("data-status", "missing")
        return {"measured": False, "reason": f"the self-test did not finish (status {status})", "browser": version}
    result = {"measured": True, "browser": version}
    for field, kind in FIELDS.items():
        result[field.replace("-", "_")] = kind(parser.attrs[f"data-{field}"])
    return result


HARNESS = """<!doctype html><html><head><meta charset="utf-8"><title>explorer self-test</title></head>
<body><pre id="result" data-status="running"></pre>
{scripts}
</body></html>
"""


SELFTEST_TABS = 2  # the explorer's self-test checks in this many tabs at once


def explorer_selftest(scripts, header, docs, timeout=600):
    """Run report/explorer_selftest.js in headless Chromium on NumPy's reference answers.

    scripts: the page's scripts (paths) in the order the explorer loads them; header and docs:
    from report.explorer.selftest_reference (docs: a generator, one reference at a time, in the
    order of header["files"]). A thread drives the browser, SELFTEST_TABS tabs of it, while this
    one makes the references: each is written whole (by a rename) and handed, as soon as it is
    there, to whichever tab is free, so the tabs check side by side while NumPy makes the next
    one, and this process holds one at a time. Each tab lets go of a reference once checked. It
    runs in real time (over the DevTools pipe), so the page's clock is right. Returns the largest
    differences found over all the references."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = header["files"]  # [kind, network, file name], in the order docs makes them
        (tmp / "reference.js").write_text(f"window.EXPLORER_REFERENCE = {json.dumps(header)};\n")
        tags = [Path(p).resolve().as_uri() for p in scripts] + ["reference.js",
                                                                (HERE / "selftest_compare.js").as_uri(),
                                                                (HERE / "explorer_selftest.js").as_uri()]
        (tmp / "selftest.html").write_text(
            HARNESS.format(scripts="\n".join(f'<script src="{t}"></script>' for t in tags)))
        written = [threading.Event() for _ in files]
        stopped = threading.Event()  # NumPy's side failed or was interrupted

        def checks():
            for (kind, network, name), ready in zip(files, written):
                ready.wait()
                if stopped.is_set():
                    raise RuntimeError("NumPy's side stopped before it wrote every reference")
                yield f"explorerCheck({json.dumps(kind)}, {int(network)}, {json.dumps(name)})"

        answer = {}

        def browse():
            # V8 keeps the source of every script it compiled in its compilation cache: without it, a
            # tab lets go of each reference once read (measured: 150-210 MB instead of growing to 340)
            answer["value"] = run_in_tabs((tmp / "selftest.html").as_uri(), max(1, min(SELFTEST_TABS, len(files))),
                                          checks(), "explorerResult()", timeout,
                                          flags=("--js-flags=--no-compilation-cache",), cancel=stopped)

        browser = threading.Thread(target=browse, daemon=True)
        browser.start()
        try:
            docs = iter(docs)
            for (_, _, name), ready in zip(files, written):
                if not browser.is_alive():  # no browser, or it gave up: nothing reads the rest
                    break
                _, doc = next(docs)
                part = tmp / (name + ".part")
                part.write_text(f"window.EXPLORER_REFERENCE_EPOCH = {json.dumps(doc)};\n")
                del doc
                os.replace(part, tmp / name)
                ready.set()
            browser.join()
        except BaseException:  # NumPy's side failed, or Ctrl-C: the browser is closed before this goes on
            stopped.set()
            for e in written:
                e.set()
            browser.join()
            raise
        values, version = answer["value"]
    if values is None:
        return {"measured": False, "reason": version}
    parts = [json.loads(v) for v in values]
    worst = {}
    for r in parts:
        for kind, found in r["worst"].items():
            kept = worst.setdefault(kind, dict(found))
            for key, value in found.items():  # None: a NaN in the page, the worst there is
                kept[key] = None if value is None or kept[key] is None else max(kept[key], value)
    return {"measured": True, "browser": version, "worst": worst, "images": parts[0]["images"],
            "classes": parts[0]["classes"], "networks": sum(r["networks"] for r in parts),
            "compared": sum(r["compared"] for r in parts), "tabs": len(parts),
            # the tabs check side by side: the self-test's time is the busiest tab's
            "seconds": round(max(r["seconds"] for r in parts), 3),
            "seconds_by_tab": [round(r["seconds"], 3) for r in parts]}


def run_in_tabs(url, tabs, jobs, finish, timeout=600, flags=(), cancel=None):
    """Open url in `tabs` tabs of one headless Chromium (each tab has its own renderer process),
    then evaluate each JavaScript expression that `jobs` yields (a promise is awaited) in
    whichever tab is free -- jobs may block until its next one is ready -- and at the end `finish`
    in every tab. ([finish's value in each tab], browser version) or (None, reason); a job whose
    promise is rejected stops it all, with the page's message as the reason, and so does `cancel`
    (a threading.Event another thread may set: the browser is closed within a second or so)."""
    browser = find_browser()
    if browser is None:
        return None, "no Chromium or Chrome found on this machine"
    version = browser_version()
    evaluate = lambda expression: {"expression": expression, "awaitPromise": True, "returnByValue": True}
    with tempfile.TemporaryDirectory() as profile:
        tools = None
        try:
            tools = _DevTools(browser, profile, timeout, flags, cancel)
            free = []
            for _ in range(tabs):
                target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
                session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
                tools.send("Page.enable", session=session)
                tools.send("Page.navigate", {"url": url}, session=session, wait_event="Page.loadEventFired")
                free.append(session)
            sessions, busy = list(free), {}  # command id -> the tab running it
            jobs = iter(jobs)
            job = next(jobs, None)
            while job is not None or busy:
                if job is not None and free:
                    session = free.pop(0)
                    busy[tools.post("Runtime.evaluate", evaluate(job), session)] = session
                    job = next(jobs, None)
                    continue
                done, reply = tools.wait_any(busy)
                free.append(busy.pop(done))
                if "exceptionDetails" in reply:
                    details = reply["exceptionDetails"]
                    return None, f"the page's check failed: {details.get('exception', {}).get('description') or details.get('text')}"[:800]
            values = [tools.send("Runtime.evaluate", evaluate(finish), session) for session in sessions]
        except (OSError, RuntimeError, TimeoutError, KeyError) as e:
            return None, f"{browser} did not run the page: {e}"
        finally:
            if tools is not None:
                tools.close()
    return [v["result"].get("value") for v in values], version


class _DevTools:
    """Headless Chromium driven over its DevTools pipe (--remote-debugging-pipe: commands on fd 3,
    replies on fd 4, JSON messages ending in a NUL byte). Unlike --dump-dom it runs the page in real
    time, so the page's own clock can time it."""

    def __init__(self, browser, profile, timeout, flags=(), cancel=None):
        self.timeout, self.next_id, self.buffer, self.kept, self.cancel = timeout, 0, b"", {}, cancel
        to_browser, self.commands = os.pipe()
        self.replies, from_browser = os.pipe()
        # The browser reads commands on its fd 3 and writes replies on its fd 4. posix_spawn
        # moves the pipes there itself (no Python runs in the child, which is safe with
        # threads about); they are first copied above 10 so that each move is a real one.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        command = [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", *flags,
                   "about:blank"]
        try:
            self.pid = os.posix_spawn(browser, command, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, high[0], 3), (os.POSIX_SPAWN_DUP2, high[1], 4),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
        finally:
            for fd in high + [to_browser, from_browser]:
                os.close(fd)

    def post(self, method, params=None, session=None):
        """Send a command without waiting for its reply; returns its id (for wait)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        return self.next_id

    def wait(self, command_id, method="", wait_event=None, session=None):
        """The result of the command `command_id`; with wait_event, also wait for that event (of
        that session, if given) after the reply. Replies to other commands are kept for their own wait."""
        while command_id not in self.kept:
            self._next_event()
        reply = self.kept.pop(command_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        if wait_event is not None:
            while True:
                event = self._next_event()
                if event and event.get("method") == wait_event and (session is None or event.get("sessionId") == session):
                    break
        return reply.get("result", {})

    def wait_any(self, command_ids):
        """(id, result) of whichever of the commands command_ids replies first (a result with
        "exceptionDetails" for a rejected promise; an error reply raises)."""
        while True:
            for command_id in command_ids:
                if command_id in self.kept:
                    return command_id, self.wait(command_id)
            self._next_event()

    def _next_event(self):
        """The next message from the browser if it is an event; a reply is kept for its wait (None)."""
        message = self._read()
        if "id" in message:
            self.kept[message["id"]] = message
            return None
        return message

    def send(self, method, params=None, session=None, wait_event=None):
        return self.wait(self.post(method, params, session), method, wait_event, session)

    def _read(self):
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the browser in {self.timeout} s")
            # look at `cancel` (set by another thread) at least every 0.2 s
            if not select.select([self.replies], [], [], min(left, 0.2 if self.cancel is not None else left))[0]:
                if self.cancel is not None and self.cancel.is_set():
                    raise RuntimeError("cancelled")
                continue
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self):
        try:
            os.write(self.commands, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        os.close(self.commands)
        os.close(self.replies)


def _once(condition, value):
    """A JavaScript promise of `value`, settled once `condition` holds (checked every 50 ms)."""
    return (f"new Promise(function (done) {{ (function poll() {{ if ({condition}) done({value}); "
            "else setTimeout(poll, 50); })(); })")


def evaluate_when_loaded(url, expression, timeout=120, flags=()):
    """Open url in headless Chromium, wait for its load event, and return the value of the
    JavaScript expression (a promise is awaited). (value, browser version) or (None, reason).
    flags: more command-line flags for the browser."""
    browser = find_browser()
    if browser is None:
        return None, "no Chromium or Chrome found on this machine"
    version = browser_version()
    with tempfile.TemporaryDirectory() as profile:
        tools = None
        try:
            tools = _DevTools(browser, profile, timeout, flags)
            target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            tools.send("Page.enable", session=session)
            tools.send("Page.navigate", {"url": url}, session=session, wait_event="Page.loadEventFired")
            answer = tools.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                     "returnByValue": True}, session=session)
        except (OSError, RuntimeError, TimeoutError, KeyError) as e:
            return None, f"{browser} did not run the page: {e}"
        finally:
            if tools is not None:
                tools.close()
    if "exceptionDetails" in answer:
        return None, f"the page's script failed: {answer['exceptionDetails'].get('text')}"
    return answer["result"].get("value"), version


def lab_selftest(engine, reference, timeout=300):
    """Run report/lab_selftest.js on the lab's engine (a path) and NumPy's reference (report.lab,
    already encoded), in headless Chromium in real time. The largest differences of each kind."""
    result = 'document.getElementById("result")'
    wait = _once(f'{result}.dataset.status !== "running"',
                 f"{{status: {result}.dataset.status, text: {result}.textContent}}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "reference.js").write_text(f"window.LAB_REFERENCE = {json.dumps(reference)};\n")
        tags = [Path(engine).resolve().as_uri(), "reference.js", (HERE / "selftest_compare.js").as_uri(),
                (HERE / "lab_selftest.js").as_uri()]
        (tmp / "selftest.html").write_text(HARNESS.format(scripts="\n".join(f'<script src="{t}"></script>' for t in tags)))
        answer, version = evaluate_when_loaded((tmp / "selftest.html").as_uri(), wait, timeout)
    if answer is None:
        return {"measured": False, "reason": version}
    if answer["status"] != "done":
        return {"measured": False, "browser": version, "reason": f"the lab's self-test failed: {answer['text'][:500]}"}
    return dict(json.loads(answer["text"]), measured=True, browser=version)


def lab_bench(page, seconds, timeout=None):
    """lab.html?bench=<seconds>: the page trains its default network, in its Web Worker, for its default
    epochs or for `seconds` of training, whichever ends first, then measures its test images (the live
    validation passes a reader's run makes are left out: they change nothing in the training). Images
    per second, the test accuracy, the seconds it trained and why it stopped ("epochs" or "time"), in
    real time."""
    page_data = 'document.getElementById("lab").dataset'
    wait = _once(f'{page_data}.status === "done" || {page_data}.status === "failed" || {page_data}.diverged !== undefined',
                 f"Object.assign({{}}, {page_data})")
    data, version = evaluate_when_loaded(f"{Path(page).resolve().as_uri()}?bench={seconds}", wait,
                                         timeout or seconds + 120)
    if data is None:
        return {"measured": False, "reason": version}
    if data.get("status") != "done":
        return {"measured": False, "browser": version, "reason": f"the lab did not finish ({data})"[:500]}
    return {"measured": True, "browser": version, "seconds": seconds, "steps": int(data["steps"]),
            "images_per_second": float(data["imagesPerSecond"]), "test_accuracy": float(data["testAccuracy"]),
            "trained_seconds": float(data["seconds"]), "stopped": data["stopped"]}


REDRAWS_OF_METHODS = ("occlusion", "scorecam", "smoothgrad", "ig")  # explorer.js bench(): one redraw each, 5 times


def page_timings(page, timeout=120):
    """The explorer's own measurements (explorer.html?bench), in real time: from the start of the
    navigation to interactive (data unpacked, first view drawn), and the median redraw when the
    image, the class, the layer or the epoch changes, and when the method is one of those that take
    many passes (REDRAWS_OF_METHODS)."""
    page_data = 'document.getElementById("explorer").dataset'
    wait = _once(f'{page_data}.bench === "done" || {page_data}.status === "failed"', f"Object.assign({{}}, {page_data})")
    data, version = evaluate_when_loaded(Path(page).resolve().as_uri() + "?bench", wait, timeout)
    if data is None:
        return {"measured": False, "reason": version}
    if data.get("bench") != "done":
        return {"measured": False, "browser": version, "reason": f"the page did not start ({data.get('status')})"}
    return {"measured": True, "browser": version, "ready_ms": float(data["readyMs"]),
            "unpack_ms": float(data["unpackMs"]),
            "redraw_ms": {k: float(data["bench" + k.capitalize()]) for k in ("image", "cls", "layer", "epoch",
                                                                               *REDRAWS_OF_METHODS)}}
