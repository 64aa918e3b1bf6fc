"""13. large_graph: building, first-running, saving and loading a 100,000-node chain, per node."""

from __future__ import annotations

import gc
import time
from typing import Callable, Iterator

import networkx as nx
import numpy as np

import dagprop as dp
from harness import Context, Row, selected, set_ratios, shorten, spread

NETWORKX = "networkx (build only)"


def workload_large_graph(ctx: Context) -> Iterator[Row]:
    """y = tanh(...tanh(x)...), loss sum(y), on an 8-vector: seconds per node for each one-time cost.

    Build: dagprop against networkx adding the same nodes and edges (one edge per argument
    slot, with its ``arg`` attribute, as dagprop's mirror has). First run: the first
    (checked) forward + backward of a freshly built graph against a steady one. Save and
    load: ``dp.save`` and ``dp.load`` of the run graph, values and gradients included.
    """
    if not selected("dagprop", ctx.systems):
        return
    depth = ctx.settings.pick(100_000, 10_000, 300)
    repeats = ctx.settings.pick(3, 3, 1)
    budget = ctx.settings.pick(60.0, 10.0, 2.0)  # seconds per measured thing, after its first sample
    x0 = np.random.default_rng(13).uniform(-1, 1, size=8)
    label = f"{depth:,}-node chain"
    nodes = depth + 2  # x, the tanh nodes and the sum
    _chain(10, x0)  # loads the op registry, a one-time cost of the process rather than of a graph

    build = f"{label}: build"
    rows = [_timed(build, "dagprop", lambda: _chain(depth, x0), nodes, repeats, budget),
            _timed(build, NETWORKX, lambda: _networkx_chain(depth), nodes, repeats, budget,
                   note="add_node + add_edge(arg=slot) per node, no dagprop")]
    set_ratios(rows, "dagprop", None)
    yield from rows

    first_run = f"{label}: forward + backward"
    graphs: list[tuple[dp.Graph, dp.Node]] = []

    def fresh() -> None:
        graphs.clear()
        gc.collect()
        graphs.append(_chain(depth, x0))

    def step() -> None:
        g, loss = graphs[0]
        g.zero_grad()
        g.forward()
        g.backward(loss)

    first = _timed(first_run, "dagprop first run", step, nodes, repeats, budget, before=fresh,
                   note="the checked first pass of a new graph, planning included")
    steady = _timed(first_run, "dagprop steady", step, nodes, max(repeats, 5), budget)
    rows = [first, steady]
    set_ratios(rows, "dagprop steady", None)
    yield from rows

    if not graphs:
        return
    g, _ = graphs[0]
    path = ctx.tmp / "large_graph.json"
    saved = _timed(f"{label}: save", "dagprop", lambda: dp.save(g, path), nodes, repeats, budget,
                   note="dp.save with values and gradients")
    yield saved
    if saved.status == "ok":
        # a file of our own: no bound on its size (the default bound refuses files over ~65 MB)
        yield _timed(f"{label}: load", "dagprop", lambda: dp.load(path, max_elements=None), nodes, repeats, budget,
                     note=f"dp.load of a {path.stat().st_size / 2**20:.1f} MiB file, max_elements=None")


def _chain(depth: int, x0: np.ndarray) -> tuple[dp.Graph, dp.Node]:
    g = dp.Graph()
    y = g.param("x", x0)
    for _ in range(depth):
        y = y.tanh()
    return g, y.sum()


def _networkx_chain(depth: int) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    graph.add_node("x")
    previous = "x"
    for k in range(1, depth + 1):
        name = f"tanh_{k}"
        graph.add_node(name)
        graph.add_edge(previous, name, arg=0)
        previous = name
    graph.add_node("sum_1")
    graph.add_edge(previous, "sum_1", arg=0)
    return graph


def _timed(case: str, system: str, action: Callable[[], object], nodes: int, repeats: int, budget: float, *,
           before: Callable[[], None] | None = None, note: str = "") -> Row:
    """Seconds per node of ``action`` (after ``before``, untimed), the median of up to ``repeats``
    calls, fewer when the budget runs out. Garbage collection is left on: it is part of the cost."""
    row = Row("large_graph", case, system, "ok", per="node")
    samples: list[float] = []
    try:
        while len(samples) < repeats and (not samples or sum(samples) * nodes < budget):
            if before is not None:
                before()
            gc.collect()
            started = time.perf_counter()
            action()
            samples.append((time.perf_counter() - started) / nodes)
    except Exception as exc:  # a failure is a finding, not a crash
        row.status, row.note = "failed", f"fails: {type(exc).__name__}: {shorten(str(exc))}"
        return row
    row.value = float(np.median(samples))
    row.samples = samples
    row.spread = spread(samples)
    row.extra["fastest"] = min(samples)
    notes = [note] if note else []
    if len(samples) < repeats:
        notes.append(f"{len(samples)} of {repeats} samples (slow)")
    row.note = "; ".join(notes)
    return row
