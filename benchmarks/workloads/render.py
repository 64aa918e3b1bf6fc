"""8. render: annotated diagrams as DOT text and as SVG through Graphviz."""

from __future__ import annotations

import warnings
from typing import Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Factory, Subject, shorten

from .random_dag import RandomDag


def workload_render(ctx: Context) -> Iterator[Case]:
    """Annotated diagrams of 50-, 200- and 1,000-node graphs: DOT text, and SVG through Graphviz."""
    sizes = ctx.settings.pick((50, 200, 1_000), (50, 200, 1_000), (20,))
    # the diagrams are public functions of dagprop; without Graphviz's dot the SVG rows fail and say why
    available = hasattr(dp, "to_dot") and hasattr(dp, "render")
    for size in sizes:
        if not available:
            reason = "not run: dp.to_dot and dp.render are not in this checkout yet"
            yield Case("render", f"{size:,} nodes", {"dagprop DOT": reason, "dagprop SVG": reason}, reference=None)
            continue
        yield render_case(ctx, size)


def annotated_graph(n_nodes: int, seed: int, shape: tuple[int, ...] = (3,)) -> tuple[dp.Graph, dp.Node]:
    """A random DAG of about ``n_nodes`` nodes with values and gradients filled in."""
    dag = RandomDag.generate(max(4, n_nodes - 5), seed=seed)  # 4 inputs and the sum besides the ops
    rng = np.random.default_rng(seed)
    g, _, loss = dag.build_dagprop([rng.uniform(-1, 1, size=shape) for _ in range(dag.inputs)])
    g.forward()
    g.backward(loss)
    return g, loss


def render_case(ctx: Context, size: int) -> Case:
    def dot_subject() -> Subject:
        g, _ = annotated_graph(size, seed=size)
        caught: list[str] = []
        text: list[str] = [""]

        def step() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                text[0] = dp.to_dot(g)
            caught[:] = sorted({shorten(str(w.message), 100) for w in seen})

        def late() -> str:
            return f"{len(text[0]):,} chars of DOT" + (f"; warned: {'; '.join(caught)}" if caught else "")

        return Subject(step, note=f"{len(g)} nodes", late_note=late)

    def svg_subject() -> Subject:
        g, _ = annotated_graph(size, seed=size)
        path = ctx.tmp / f"render_{size}.svg"
        caught: list[str] = []

        def step() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                dp.render(g, path)
            caught[:] = sorted({shorten(str(w.message), 100) for w in seen})

        def late() -> str:
            kib = path.stat().st_size / 1024 if path.exists() else 0
            return f"{kib:,.0f} KiB SVG" + (f"; warned: {'; '.join(caught)}" if caught else "")

        return Subject(step, note=f"{len(g)} nodes", late_note=late)

    svg: Factory | str = svg_subject
    if size > 300 and ctx.settings.mode == "quick":
        svg = "not run in --quick (the full run measures it)"
    return Case("render", f"{size:,} nodes", {"dagprop DOT": dot_subject, "dagprop SVG": svg}, per="call",
                reference=None, baseline="dagprop DOT", note="values and gradients annotated")
