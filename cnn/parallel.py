"""Data parallelism on the machine's cores: one thread per shard of the batch.

Much of a NumPy network's time goes to copies and elementwise passes that run
on one core, while BLAS threads only help inside matrix products. Splitting the
batch into shards, each run by a thread on its own replica of the model (same
parameter arrays, separate caches and gradients), with BLAS held to one thread
per worker, keeps every core busy through the whole pass.

The result is the same computation as on the whole batch: the loss is taken on
the gathered logits, the gradients of the shards are added up, and batch norm
sums its statistics over the shards (a synchronised batch norm), so only the
order of floating-point additions differs. With the same number of workers the
results are the same bit for bit, run after run.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from threadpoolctl import threadpool_limits

DEFAULT_WORKERS = 2


class _Shards:
    """What the replicas of one layer share: a barrier and a slot per worker for all-reduce sums."""

    def __init__(self, workers):
        self.barrier = threading.Barrier(workers)
        self.slots = [None] * workers

    def member(self, rank):
        return _ShardMember(self, rank)


class _ShardMember:
    def __init__(self, group, rank):
        self.group, self.rank = group, rank

    def allsum(self, a):
        """The sum of a over every worker, in rank order, so all workers get identical bits."""
        g = self.group
        g.slots[self.rank] = a
        g.barrier.wait()
        total = g.slots[0]
        for other in g.slots[1:]:
            total = total + other
        g.barrier.wait()  # nobody overwrites a slot before everyone has read them all
        return total


class DataParallel:
    """forward/backward of a Sequential over shards of the batch, in worker threads.

    Use it in place of the model inside a training or inference loop; the model's
    own layers receive the summed gradients, so optimisers step the model as usual.
    """

    def __init__(self, model, workers=DEFAULT_WORKERS):
        self.model, self.workers = model, workers
        self.replicas = [model.replica() for _ in range(workers)]
        for i, layers in enumerate(zip(*(r.layers for r in self.replicas))):
            if hasattr(layers[0], "shards"):
                group = _Shards(workers)
                for rank, layer in enumerate(layers):
                    layer.shards = group.member(rank)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="cnn-shard")
        self.blas = threadpool_limits(limits=1, user_api="blas")  # one BLAS thread per worker
        self._bounds = None

    def close(self):
        self.pool.shutdown()
        self.blas.restore_original_limits()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self, fn, *arrays):
        """fn(replica, *shards) in every worker; the shards' results in order."""
        errstate = np.geterr()  # thread-local in NumPy: hand the caller's on to the workers
        futures = [self.pool.submit(self._guarded, errstate, fn, rep, *(a[lo:hi] for a in arrays))
                   for rep, (lo, hi) in zip(self.replicas, self._bounds)]
        results, errors = [], []
        for f in futures:
            try:
                results.append(f.result())
            except threading.BrokenBarrierError as e:
                errors.append(e)
            except BaseException as e:  # the real error comes first; broken barriers follow it
                errors.insert(0, e)
        if errors:
            for rep in self.replicas:
                for layer in rep.layers:
                    if getattr(layer, "shards", None):
                        layer.shards.group.barrier.reset()
            raise errors[0]
        return results

    def _guarded(self, errstate, fn, rep, *shards):
        try:
            with np.errstate(**errstate):
                return fn(rep, *shards)
        except BaseException:
            for layer in rep.layers:  # release the workers waiting for this one
                if getattr(layer, "shards", None):
                    layer.shards.group.barrier.abort()
            raise

    def forward(self, x, training=False):
        n = len(x)
        cuts = np.linspace(0, n, self.workers + 1).round().astype(int)
        self._bounds = list(zip(cuts[:-1], cuts[1:]))
        return np.concatenate(self._run(lambda rep, xs: rep.forward(xs, training), x))

    def backward(self, dout, need_input_grad=True):
        dxs = self._run(lambda rep, d: rep.backward(d, need_input_grad), dout)
        for layer, *copies in zip(self.model.layers, *(r.layers for r in self.replicas)):
            for k in layer.params:
                total = copies[0].grads[k]
                for c in copies[1:]:
                    total = total + c.grads[k]
                layer.grads[k] = total
        return np.concatenate(dxs) if need_input_grad else None


def maybe_parallel(model, workers):
    """A DataParallel for workers > 1, else a context that yields the model itself."""
    return DataParallel(model, workers) if workers and workers > 1 else nullcontext(model)
