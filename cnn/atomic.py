"""Files and folders that are whole or absent: written under a temporary name, then renamed.

``atomic_file(path)`` yields a temporary path beside `path`; when the block
ends without an error the temporary file replaces `path` in one rename.
``atomic_folder(path, marker)`` does the same for a folder: the new folder is
written as ``.<name>.tmp-<pid>``, and swapped in by two renames (the old
folder is set aside as ``.<name>.old-<pid>`` until the new one is in place).
Every temporary folder holds the file `marker` from its first moment, so that
a later run can tell the leftovers of a killed run (which it may remove) from
anything else (which it never touches).
"""

import os
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path):
    """Yield a temporary path; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sibling(path, kind, pid=None):
    return path.with_name(f".{path.name}.{kind}-{os.getpid() if pid is None else pid}")


@contextmanager
def atomic_folder(path, marker):
    """Yield a fresh temporary folder holding `marker`; on success it replaces the folder `path`.

    The caller decides whether `path` may be replaced; this only makes the
    replacement whole. On failure (or an interrupt) the temporary folder is removed.
    """
    path = Path(path)
    recover(path, marker)
    tmp = _sibling(path, "tmp")
    if tmp.exists() and (tmp / marker).is_file():
        shutil.rmtree(tmp)  # our own pid's leftover
    tmp.mkdir(parents=True)
    (tmp / marker).write_text("written by build.py; the build may replace this folder\n")
    try:
        yield tmp
        old = _sibling(path, "old")
        with _signals_held():  # an interrupt waits until both renames are done
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _signals_held():
    """Hold Ctrl-C and kill signals back for the block (main thread); they arrive when it ends."""
    held = {signal.SIGINT, signal.SIGTERM}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        if signal.sigpending() & held:  # it came just before: deliver it now, before anything is renamed
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(path, marker):
    """Undo what a killed run left beside `path`; returns a list of what was done.

    A folder set aside by a run that stopped between its two renames is put
    back; temporary folders of runs that are no longer alive are removed. Only
    folders holding `marker` are touched.
    """
    path = Path(path)
    done = []
    if not path.parent.is_dir():
        return done
    leftovers = []
    for kind in ("old", "tmp"):
        for p in path.parent.glob(f".{path.name}.{kind}-*"):
            pid = p.name.rsplit("-", 1)[1]
            if pid.isdigit() and (p / marker).is_file() and not _alive(int(pid)):
                leftovers.append((kind, p))
    olds = sorted((p for kind, p in leftovers if kind == "old"), key=lambda p: p.stat().st_mtime)
    if olds and not path.exists():
        os.replace(olds[-1], path)
        done.append(f"put back {path.name} from {olds[-1].name}")
    for _, p in leftovers:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.name}")
    return done
