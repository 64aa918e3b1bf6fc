"""The workloads, in the issue's order, and running them."""

from __future__ import annotations

import gc
import time
from typing import Callable, Iterator

from harness import Case, Context, Row, run_case

from .cnn import workload_cnn
from .dask_scaling import workload_dask
from .deep_chain import workload_deep_chain
from .higher_order import workload_higher_order
from .jacobian_route import workload_jacobian_route
from .large_graph import workload_large_graph
from .memory import workload_memory
from .mlp_large import workload_mlp_large
from .mlp_small import workload_mlp_small
from .moons import workload_moons
from .paths import workload_paths
from .render import workload_render
from .seed_v import workload_seed_v
from .wide_dag import workload_wide_dag


WORKLOADS: dict[str, Callable[[Context], Iterator[Case | Row]]] = {
    "seed_v": workload_seed_v,
    "mlp_small": workload_mlp_small,
    "mlp_large": workload_mlp_large,
    "moons": workload_moons,
    "deep_chain": workload_deep_chain,
    "wide_dag": workload_wide_dag,
    "jacobian_route": workload_jacobian_route,
    "render": workload_render,
    "paths": workload_paths,
    "memory": workload_memory,
    "higher_order": workload_higher_order,
    "cnn": workload_cnn,
    "large_graph": workload_large_graph,
    "dask": workload_dask,
}


def run_workloads(names: list[str], ctx: Context, echo: Callable[[Row], None],
                  durations: dict[str, float]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        started = time.perf_counter()
        for item in WORKLOADS[name](ctx):
            produced = [item] if isinstance(item, Row) else run_case(item, ctx)
            if isinstance(item, Case) and item.note:
                for row in produced:
                    row.extra.setdefault("case_note", item.note)
            for row in produced:
                echo(row)
            rows.extend(produced)
            gc.collect()
        durations[name] = round(time.perf_counter() - started, 1)
    return rows
