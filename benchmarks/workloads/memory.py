"""10. memory: peak memory of a forward pass that keeps or frees activations."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Iterator

import numpy as np

import dagprop as dp
from harness import Context, Row, selected, shorten, spread


def workload_memory(ctx: Context) -> Iterator[Row]:
    """Peak traced memory of forward(retain=True) against forward(retain=False), per depth."""
    depths = ctx.settings.pick((10, 100), (10, 100), (3, 10))
    width, batch = ctx.settings.pick((256, 64), (256, 64), (16, 8))
    layer_bytes = width * batch * 8
    if not selected("dagprop", ctx.systems):
        return
    for depth in depths:
        case = f"{depth}-layer MLP, {batch}x{width}"
        peaks = {}
        for retain in (True, False):
            row = Row("memory", case, f"dagprop retain={retain}", "ok", metric="memory", per="forward")
            try:
                measured = [peak_forward_bytes(depth, width, batch, retain) for _ in range(3)]
            except Exception as exc:
                row.status, row.note = "failed", f"fails: {type(exc).__name__}: {shorten(str(exc))}"
                yield row
                continue
            row.value = float(np.median(measured))
            row.samples = measured
            row.spread = spread(measured)
            layers = row.value / layer_bytes
            peaks[retain] = row.value
            row.extra = {"layer_bytes": layer_bytes, "layers": layers, "depth": depth}
            row.note = f"= {layers:.1f} layers' activations (one layer: {batch}x{width} float64 = {layer_bytes / 1024:.0f} KiB)"
            yield row


def peak_forward_bytes(depth: int, width: int, batch: int, retain: bool) -> int:
    """Peak bytes allocated during one forward pass of a fresh depth-layer tanh MLP (tracemalloc)."""
    rng = np.random.default_rng(depth)
    g = dp.Graph()
    h = g.input("X", rng.normal(size=(batch, width)))
    for layer in range(depth):
        W = g.param(f"W{layer}", rng.normal(size=(width, width)) / np.sqrt(width))
        b = g.param(f"b{layer}", np.zeros(width))
        h = (h @ W + b).tanh()
    g.forward(retain=False)  # plans the run outside the measurement, and keeps only the output
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        g.forward(retain=retain)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
