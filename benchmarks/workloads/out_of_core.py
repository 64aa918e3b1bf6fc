"""One out-of-core run, in a process of its own so that its peak memory is its own.

    python -m workloads.out_of_core GIGABYTES      (from benchmarks/)

x is a dask array of GIGABYTES, generated chunk by chunk (never whole in memory); dagprop
runs tanh(x @ W + b).sum() forward and backward on the threaded scheduler, computes the
loss and W's gradient together, and compares W's gradient with a NumPy loop over the
same chunks. Prints one JSON line: seconds, peak_bytes, relative_error.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

FEATURES, HIDDEN, CHUNK_ROWS = 64, 16, 131_072  # a chunk: 64 MiB


def chunk(index: int) -> np.ndarray:
    """Chunk ``index`` of x, the same in the dask graph and in the reference."""
    return np.random.default_rng([14, index]).uniform(-1, 1, size=(CHUNK_ROWS, FEATURES))


def peak_resident_bytes() -> int:
    """This process's peak resident memory. Not ru_maxrss: Linux keeps that across execve, so a
    process started from a large one (the benchmark run) reports its parent's size; VmHWM starts
    afresh with the new program's memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes, where /proc is missing


def main(gigabytes: float) -> dict[str, float]:
    import dask
    import dask.array as da

    import dagprop as dp

    chunks = max(1, round(gigabytes * 2**30 / (CHUNK_ROWS * FEATURES * 8)))
    x_lazy = da.concatenate([da.from_delayed(dask.delayed(chunk)(i), shape=(CHUNK_ROWS, FEATURES), dtype=float)
                             for i in range(chunks)])
    rng = np.random.default_rng(0)
    W0, b0 = rng.uniform(-1, 1, size=(FEATURES, HIDDEN)) / 8, rng.uniform(-1, 1, size=HIDDEN)

    started = time.perf_counter()
    g = dp.Graph()
    x, W, b = g.input("x", x_lazy), g.param("W", W0), g.param("b", b0)
    loss = (x @ W + b).tanh().sum()
    g.forward()
    g.backward(loss)
    with dask.config.set(scheduler="threads"):
        loss_value, W_grad = dask.compute(loss.value, W.grad)
    seconds = time.perf_counter() - started
    peak = peak_resident_bytes()

    expected_loss, expected = 0.0, np.zeros_like(W0)
    for i in range(chunks):
        xi = chunk(i)
        t = np.tanh(xi @ W0 + b0)
        expected_loss += t.sum()
        expected += xi.T @ (1.0 - t * t)
    error = float(np.max(np.abs(np.asarray(W_grad) - expected)) / np.max(np.abs(expected)))
    return {"gigabytes": chunks * CHUNK_ROWS * FEATURES * 8 / 2**30, "chunks": chunks, "seconds": seconds,
            "peak_bytes": peak, "relative_error": error,
            "loss_relative_error": abs(float(loss_value) - expected_loss) / abs(expected_loss)}


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]))))
