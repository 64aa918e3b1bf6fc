"""The backward pass built out of graph nodes, for ``backward(create_graph=True)``.

Each op's ``vjp_graph`` rule writes its vjp with ordinary ops on ordinary nodes, so the
gradients become nodes of the same graph: they can be drawn beside the forward pass,
fed into further ops and differentiated again. An op without the rule but with a
``decompose`` is differentiated through its circuit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import rules, scheduler
from .errors import BackwardError, DagpropError, MissingRuleError, OpError
from .run import Run, accumulate

if TYPE_CHECKING:
    from .node import Node

__all__ = ["run", "build", "vjp_nodes", "SCOPE"]

SCOPE = "backward"  # the group the backward pass's nodes are drawn in

EdgeSlot = tuple[int, int]


def run(loss: Node, seed: np.ndarray) -> Run:
    """``backward(create_graph=True)``: build the backward pass of ``loss`` as nodes, run them, and
    return the record of the pass (its gradients, edge gradients and gradient nodes).

    Gradient nodes already recorded (an earlier pass with ``create_graph=True``) get the new
    ones added to them as nodes, so that accumulation is part of the graph too. The caller
    removes the nodes built here if this raises.
    """
    graph = loss.graph
    before = graph.run
    first_new = len(graph)
    grads, edges = build(loss, seed)
    with graph.scope(SCOPE):
        summed = dict(grads)
        for index in grads:
            if index in before.grad_nodes:
                summed[index] = before.grad_nodes[index] + grads[index]
            elif before.grads[index] is not None:
                raise BackwardError(
                    f"backward(create_graph=True) would add to the gradient of {graph.nodes[index].name!r}, which "
                    f"a backward without create_graph computed as an array, with no node to add to; call "
                    f"zero_grad() first")
    _name_gradients(loss, summed, first_new)
    values = scheduler.run_forward(graph.plan, before.fed(None).values)
    later = Run(graph, before.nodes, values, seeds=((loss, seed),), plan=graph.plan, grad_nodes=summed)
    for index, node in grads.items():
        later.grads[index] = values[node.index]
    for key, node in edges.items():
        later.edge_grads[key] = values[node.index]
    return later


def _name_gradients(loss: Node, grad_nodes: dict[int, Node], first_new: int) -> None:
    """Name each new node that holds exactly one node's gradient after what it is: ``dL/dx``.

    A node holding several (add passes ``g`` itself to both inputs) keeps its op's name.
    """
    graph = loss.graph
    holders: dict[int, int] = {}
    for node in grad_nodes.values():
        holders[node.index] = holders.get(node.index, 0) + 1
    for index, node in grad_nodes.items():
        if node.index >= first_new and holders[node.index] == 1 and node.op_def is not None:
            stem = f"d{loss.name}/d{graph.nodes[index].name}"
            name, k = stem, 1
            while name in graph:
                k += 1
                name = f"{stem} ({k})"
            graph.rename(node, name)


def build(loss: Node, seed: np.ndarray, sources: frozenset[int] | None = None
          ) -> tuple[dict[int, Node], dict[EdgeSlot, Node]]:
    """Build the nodes that compute d loss / d n for every node n the backward pass reaches.

    Returns ``(grads, edges)``: node index -> the node summing its gradient, and
    ``(consumer index, slot)`` -> the node computing what flowed along that edge slot.
    The nodes go into the scope named :data:`SCOPE`; they have no values until the next
    forward pass.
    """
    graph = loss.graph
    backward = graph.plan.backward_plan(loss.index, sources)
    with graph.scope(SCOPE):
        grads: dict[int, Node] = {loss.index: graph.const(seed, name=_fresh(graph, f"seed of {loss.name}"))}
        edges: dict[EdgeSlot, Node] = {}
        for step, needs in zip(backward.steps, backward.needs):
            g = grads.get(step.index)
            if g is None:
                continue
            for slot, contribution in enumerate(vjp_nodes(step.node, g, needs)):
                if contribution is None:
                    continue
                edges[(step.index, slot)] = contribution
                source = step.inputs[slot]
                grads[source] = accumulate(grads.get(source), contribution)
    return grads, edges


def vjp_nodes(node: Node, g: Node, needs: tuple[bool, ...]) -> tuple[Node | None, ...]:
    """The nodes computing the gradient of each input of ``node`` from the node ``g``, checked."""
    op = rules.op_of(node)
    if op.vjp_graph is not None:
        extra = {"needs": needs} if op.vjp_graph_takes_needs else {}
        try:
            results = op.vjp_graph(g, *node.inputs, out=node, **extra, **node.attrs)
        except DagpropError:
            raise
        except Exception as exc:
            if op.derivative is not None:  # a derivative written for arrays only
                raise MissingRuleError(f"vjp_graph of {rules.where(node)} raised {type(exc).__name__}: {exc}"
                                       f"{_DERIVATIVE_HINT}") from exc
            raise OpError(f"vjp_graph of {rules.where(node)} raised {type(exc).__name__}: {exc}") from exc
    elif op.decompose is not None:
        results = _through_circuit(node, g, needs)
    else:
        raise MissingRuleError(
            f"backward(create_graph=True) cannot go through {rules.where(node)}: the op has no vjp_graph rule "
            f"and no decompose. Give it vjp_graph=(g, *inputs, out, **attrs) -> one node per input, built with "
            f"graph ops like a decompose (see dagprop.Op); a plain backward() works without it"
        )
    return _checked(node, results, needs)


_DERIVATIVE_HINT = ("; an Op.elementwise derivative builds its graph only when it is written with operators "
                    "(+ - * / ** and comparisons such as x > 0) and op methods, not NumPy functions: rewrite it "
                    "so, or give the op a vjp_graph")


def _through_circuit(node: Node, g: Node, needs: tuple[bool, ...]) -> tuple[Node | None, ...]:
    """Build ``node``'s circuit on its inputs and backpropagate ``g`` through it, as nodes."""
    graph = node.graph
    start = len(graph)
    decompose = rules.op_of(node).decompose
    assert decompose is not None  # vjp_nodes comes here only for an op with a decomposition
    circuit = decompose(*node.inputs, **node.attrs)
    carries = {i.index for i, need in zip(node.inputs, needs) if need}
    built = graph.nodes[start:]  # in the order they were made, which is a topological order
    for new in built:
        if new.op_def is not None and any(i.index in carries for i in new.inputs):
            carries.add(new.index)
    grads: dict[int, Node] = {circuit.index: g}
    for new in reversed(built):
        grad = grads.get(new.index)
        if grad is None or new.op_def is None or new.index not in carries:
            continue
        local_needs = tuple(i.index in carries for i in new.inputs)
        for slot, contribution in enumerate(vjp_nodes(new, grad, local_needs)):
            if contribution is not None:
                target = new.inputs[slot].index
                grads[target] = accumulate(grads.get(target), contribution)
    # the circuit sums what reaches an input over all its uses, so an input given in two slots
    # gets its whole gradient in the first of them
    seen: set[int] = set()
    results: list[Node | None] = []
    for given in node.inputs:
        results.append(None if given.index in seen else grads.get(given.index))
        seen.add(given.index)
    return tuple(results)


def _checked(node: Node, results: object, needs: tuple[bool, ...]) -> tuple[Node | None, ...]:
    inputs = node.inputs
    if not isinstance(results, (tuple, list)) or len(results) != len(inputs):
        raise OpError(f"vjp_graph of {rules.where(node)} returned {type(results).__name__}; expected a tuple of "
                      f"{len(inputs)} nodes or None (one per input: {', '.join(rules.input_names(node, len(inputs)))})")
    checked: list[Node | None] = []
    for slot, (result, source) in enumerate(zip(results, inputs)):
        if result is None or not needs[slot]:
            checked.append(None)
            continue
        if getattr(result, "graph", None) is not node.graph:
            raise OpError(f"vjp_graph of {rules.where(node)} returned {type(result).__name__} for input {slot} "
                          f"({rules.slot_name(node, slot)}); expected a node of the same graph, built from g, "
                          f"the inputs and out")
        if result.shape is not None and source.shape is not None and result.shape != source.shape:
            raise OpError(f"vjp_graph of {rules.where(node)} built a node of shape {result.shape} for input "
                          f"{slot} ({rules.slot_name(node, slot)}); expected {source.shape}, the input's shape")
        checked.append(result)
    return tuple(checked)


def _fresh(graph: object, stem: str) -> str:
    name, k = stem, 1
    while name in graph:  # type: ignore[operator]
        k += 1
        name = f"{stem} ({k})"
    return name
