"""The peak memory of the build's whole process tree, sampled while it runs.

Resident set sizes cannot be added up across the drawing processes: they are
forked from the builder, and every page they share with it would be counted
twice. The proportional set size (Pss, from /proc/<pid>/smaps_rollup) splits
each shared page between the processes that map it, so the Pss of every
process in the tree adds up to the memory the build really holds. A thread
samples it a few times a second; on systems without /proc it reports nothing.
"""

import ctypes
import os
import threading
from contextlib import contextmanager
from pathlib import Path


def release_freed_memory():
    """Give the memory that freed arrays left in malloc's heaps back to the system (glibc; else nothing).

    Called before the drawing processes are forked, so that they do not start with the builder's
    empty heap pages."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _pss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return out


class PeakMemory:
    """with PeakMemory() as m: ...; then m.peak_mb is the largest sum of Pss seen over the process tree.

    Inside `with m.phase("name"):` the samples are also counted for that phase and every phase around it
    (nested phases are named "outer/inner"): m.by_phase_mb is {phase: its peak} for the phases that lasted
    long enough to be sampled."""

    def __init__(self, interval=0.25):
        self.interval, self.peak_kb = interval, 0
        self._phase, self._peaks = None, {}  # the phase now running ("outer/inner"), its peaks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    @property
    def available(self):
        return Path(f"/proc/{os.getpid()}/smaps_rollup").is_file()

    @property
    def peak_mb(self):
        return round(self.peak_kb / 1024, 1) if self.available else None

    @property
    def by_phase_mb(self):
        return {k: round(v / 1024, 1) for k, v in self._peaks.items()} if self.available else {}

    @contextmanager
    def phase(self, name):
        outer = self._phase
        self._phase = f"{outer}/{name}" if outer else name  # one assignment: the sampler reads it whole
        try:
            yield
        finally:
            self._phase = outer

    def _sample(self):
        while True:
            kb = sum(_pss_kb(p) for p in _tree(os.getpid()))
            self.peak_kb = max(self.peak_kb, kb)
            name = self._phase
            while name:  # the phase, and every phase it is part of
                self._peaks[name] = max(self._peaks.get(name, 0), kb)
                name = name.rpartition("/")[0]
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
