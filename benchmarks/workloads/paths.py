"""9. paths: counting, ranking and expanding paths on large graphs."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Factory, Subject

from .random_dag import RandomDag, describe_count
from .shared import mlp_data, param_names

PATH_METHODS = ("count_paths", "top_paths", "element_graph")


def workload_paths(ctx: Context) -> Iterator[Case]:
    """count_paths, top_paths and element_graph on graphs with very many paths or elements."""
    if not all(hasattr(dp.Graph, method) for method in PATH_METHODS):
        reason = "not run: Graph.count_paths, top_paths and element_graph are not in this checkout yet"
        for name in ("count_paths ladder", "top_paths k=10", "element_graph 4-4-2", "element_graph mlp_small"):
            yield Case("paths", name, {"dagprop": reason}, reference=None)
        return
    stages = ctx.settings.pick(60, 60, 10)
    yield single_call_case("paths", f"count_paths, ladder of 2^{stages} paths", lambda: ladder_subject(stages))
    top_nodes = ctx.settings.pick(5_000, 5_000, 200)
    yield single_call_case("paths", f"top_paths k=10, {top_nodes:,} nodes", lambda: top_paths_subject(top_nodes))
    yield single_call_case("paths", "element_graph, 4-4-2 MLP", element_graph_442_subject)
    batch = ctx.settings.pick(32, 32, 2)
    name = f"element_graph, mlp_small (batch {batch})"
    if ctx.settings.mode == "quick":
        yield Case("paths", name, {"dagprop": "not run in --quick: seconds (the full run measures it)"},
                   reference=None)
    else:
        yield single_call_case("paths", name, lambda: element_graph_mlp_small_subject(batch))


def single_call_case(workload: str, name: str, factory: Factory) -> Case:
    return Case(workload, name, {"dagprop": factory}, per="call", reference=None)


def ladder_subject(stages: int) -> Subject:
    """x_{k+1} = tanh(x_k) + sigmoid(x_k): two paths per stage, 2**stages from x_0 to the end."""
    g = dp.Graph()
    x0 = x = g.param("x0", 0.3)
    for _ in range(stages):
        x = x.tanh() + x.sigmoid()
    g.forward()
    g.backward(x)
    result: dict[str, int] = {}

    def step() -> None:
        result["count"] = g.count_paths(x0, x)

    def late() -> str:
        count = result["count"]
        verdict = "correct" if count == 2 ** stages else f"WRONG, want 2^{stages} = {2 ** stages}"
        return f"{len(g)} nodes; returned {count} ({verdict})"

    return Subject(step, late_note=late)


def top_paths_subject(n_nodes: int) -> Subject:
    dag = RandomDag.generate(n_nodes - 4, seed=9)
    rng = np.random.default_rng(9)
    g, inputs, loss = dag.build_dagprop([rng.uniform(-1, 1, size=()) for _ in range(dag.inputs)])
    g.forward()
    g.backward(loss)
    result: dict[str, Any] = {}

    def step() -> None:
        result["paths"] = g.top_paths(inputs[0], loss, 10)

    def late() -> str:
        largest = max(abs(float(p.contribution)) for p in result["paths"])
        return (f"{len(g):,} scalar nodes, {describe_count(dag.count_paths())} paths in all; "
                f"largest path carries {largest:.3g} of the gradient {float(inputs[0].grad):.3g}")

    return Subject(step, late_note=late)


def element_graph_subject(g: dp.Graph) -> Subject:
    result: dict[str, Any] = {}

    def step() -> None:
        result["graph"] = g.element_graph(max_size=None)  # large on purpose: it measures the build

    def late() -> str:
        eg = result["graph"]
        return f"{eg.number_of_nodes():,} element nodes, {eg.number_of_edges():,} edges"

    return Subject(step, late_note=late)


def element_graph_442_subject() -> Subject:
    """The 4-4-2 network of 003_285517187f335468.txt: sigmoid hidden layer, softmax output, squared error."""
    g = dp.Graph()
    x = g.input("x", [[2], [5], [3], [3]])
    W1 = g.param("W1", [[0.1, 0.3, 0.8, -0.4], [-0.3, -0.2, 0.5, 0.5], [-0.3, 0, 0.5, 0.4], [0.2, 0.5, -0.9, 0.7]])
    W2 = g.param("W2", [[0.5, 0.8, 0.2, 0.4], [0.5, 0.2, 0.3, -0.5]])
    b1, b2 = g.param("b1", 0.5), g.param("b2", 0.3)
    y_hat = (W2 @ (W1 @ x + b1).sigmoid() + b2).softmax(axis=0)
    loss = g.ops.squared_error(y_hat, g.input("y", [[1], [0]]))
    g.forward()
    g.backward(loss)
    return element_graph_subject(g)


def element_graph_mlp_small_subject(batch: int) -> Subject:
    d = mlp_data((64, 128, 10), batch, seed=2, one_hot=False)
    g = dp.Graph()
    p = {k: g.param(k, d[k]) for k in param_names(d)}
    h = (g.input("X", d["X"]) @ p["W1"] + p["b1"]).tanh()
    loss = g.ops.squared_error(h @ p["W2"] + p["b2"], g.input("Y", d["Y"]))
    g.forward()
    g.backward(loss)
    return element_graph_subject(g)
