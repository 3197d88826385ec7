"""Data parallelism on the machine's cores: a fixed split of every batch, run by threads.

Much of a NumPy network's time goes to copies and elementwise passes that run
on one core, while BLAS threads only help inside matrix products. Cutting the
batch into shards, each run by a thread on its own replica of the model (same
parameter arrays, separate caches and gradients), with BLAS held to one thread,
keeps every core busy through the whole pass.

The split does not depend on how many threads run it: every batch is cut into
the same SHARDS pieces at the same places, the loss is taken on the gathered
logits, the shards' gradients are added in shard order, and batch norm sums its
statistics over the shards in shard order (a synchronised batch norm). The
number of workers only sets how many shards compute at once (a semaphore that
a shard gives up while it waits for the others), so the trained weights are
the same bits with one worker or with many. A shard with no images is never
run: a batch of one image is one shard.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

DEFAULT_WORKERS = 2
SHARDS = 2  # pieces every batch is cut into, whatever the number of workers


def shard_bounds(n, shards=SHARDS):
    """[(lo, hi), ...] of the non-empty shards of a batch of n: fixed cuts, in order."""
    cuts = np.linspace(0, n, shards + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


class _Group:
    """What the replicas of one layer share in one pass: a barrier and a slot per shard for sums."""

    def __init__(self, size, gate):
        self.barrier = threading.Barrier(size)
        self.slots = [None] * size
        self.gate = gate


class _Member:
    def __init__(self, group, rank):
        self.group, self.rank = group, rank

    def allsum(self, a):
        """The sum of a over every shard, in shard order, so every shard gets identical bits."""
        g = self.group
        g.slots[self.rank] = a
        g.gate.release()  # let a waiting shard compute while this one waits for the rest
        try:
            g.barrier.wait()
            total = g.slots[0]
            for other in g.slots[1:]:
                total = total + other
            g.barrier.wait()  # nobody overwrites a slot before everyone has read them all
        finally:
            g.gate.acquire()
        return total


class DataParallel:
    """forward/backward of a Sequential over a fixed split of the batch, in worker threads.

    Use it in place of the model inside a training or inference loop; the model's
    own layers receive the summed gradients, so optimisers step the model as usual.
    """

    def __init__(self, model, workers=DEFAULT_WORKERS, shards=SHARDS):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.model, self.workers, self.shards = model, workers, shards
        self.replicas = [model.replica() for _ in range(shards)]
        self.gate = threading.Semaphore(workers)  # how many shards compute at once
        self.pool = ThreadPoolExecutor(shards, thread_name_prefix="cnn-shard")
        self.blas = threadpool_limits(limits=1, user_api="blas")  # one BLAS thread per shard
        self._bounds = []

    def close(self):
        self.pool.shutdown()
        self.blas.restore_original_limits()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _active(self):
        return self.replicas[: len(self._bounds)]

    def _connect(self):
        """Give the layers that sum over shards (batch norm) a fresh group of the active shards."""
        for layers in zip(*(r.layers for r in self._active())):
            if hasattr(layers[0], "shards"):
                group = _Group(len(layers), self.gate)
                for rank, layer in enumerate(layers):
                    layer.shards = _Member(group, rank)

    def _run(self, fn, *arrays):
        """fn(replica, *shards) for every non-empty shard; the results in shard order."""
        errstate = np.geterr()  # thread-local in NumPy: hand the caller's on to the workers
        futures = [self.pool.submit(self._guarded, errstate, fn, rep, *(a[lo:hi] for a in arrays))
                   for rep, (lo, hi) in zip(self._active(), self._bounds)]
        results, errors = [], []
        for f in futures:
            try:
                results.append(f.result())
            except threading.BrokenBarrierError as e:
                errors.append(e)
            except BaseException as e:  # the real error comes first; broken barriers follow it
                errors.insert(0, e)
        if errors:
            raise errors[0]
        return results

    def _guarded(self, errstate, fn, rep, *shards):
        self.gate.acquire()
        try:
            with np.errstate(**errstate):
                return fn(rep, *shards)
        except BaseException:
            for layer in rep.layers:  # release the shards waiting for this one
                if getattr(layer, "shards", None):
                    layer.shards.group.barrier.abort()
            raise
        finally:
            self.gate.release()

    def forward(self, x, training=False):
        self._bounds = shard_bounds(len(x), self.shards)
        if not self._bounds:
            raise ValueError("a forward pass needs at least one image, got an empty batch")
        self._connect()
        return np.concatenate(self._run(lambda rep, xs: rep.forward(xs, training), x))

    def backward(self, dout, need_input_grad=True):
        dxs = self._run(lambda rep, d: rep.backward(d, need_input_grad), dout)
        for layer, *copies in zip(self.model.layers, *(r.layers for r in self._active())):
            for k in layer.params:
                total = copies[0].grads[k]
                for c in copies[1:]:
                    total = total + c.grads[k]
                layer.grads[k] = total
        return np.concatenate(dxs) if need_input_grad else None

