"""Whole-graph Jacobians and gradient checking against central finite differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import numpy as np

from . import scheduler
from .errors import BackwardError, GradcheckError, GraphError
from .rules import one_hot_seeds

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["gradcheck", "GradcheckReport", "graph_jacobian", "numeric_gradient"]


def graph_jacobian(graph: Graph, output: Node, wrt: Node) -> np.ndarray:
    """d output / d wrt, shaped ``output.shape + wrt.shape``: one backward pass per output element."""
    values = graph.run.values
    out = values[output.index]
    if out is None or values[wrt.index] is None:
        raise BackwardError(f"run forward() before asking for the Jacobian of {output.name!r}")
    plan = graph.plan
    rows = np.zeros((out.size,) + values[wrt.index].shape)
    for k, seed in enumerate(one_hot_seeds(out.shape)):
        run = scheduler.run_backward(plan, values, output.index, seed, sources=frozenset({wrt.index}))
        if run.grads[wrt.index] is not None:
            rows[k] = run.grads[wrt.index]
    return rows.reshape(out.shape + values[wrt.index].shape)


def numeric_gradient(graph: Graph, loss: Node, wrt: Node, eps: float = 1e-6,
                     values: list | None = None) -> np.ndarray:
    """d loss / d wrt by central differences in float64, from forward passes only; changes nothing.

    ``values`` (a list indexed like the graph's nodes) replaces the graph's current values.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); y = (x * x).sum()
    >>> numeric_gradient(g, y, x).round(6)
    array([2., 4.])
    """
    plan = graph.plan
    values = list(graph.run.values if values is None else values)
    base = np.array(values[wrt.index], dtype=np.float64)
    grad = np.zeros_like(base)

    def loss_at(point: np.ndarray) -> float:
        values[wrt.index] = point
        out = scheduler.run_forward(plan, values, (loss.index,))[loss.index]
        if out.size != 1:
            raise BackwardError(f"numeric gradients need a scalar loss; {loss.name!r} has shape {out.shape}")
        return float(out.reshape(()))

    for k in range(base.size):
        plus, minus = base.copy(), base.copy()
        plus.flat[k] += eps
        minus.flat[k] -= eps
        grad.flat[k] = (loss_at(plus) - loss_at(minus)) / (2 * eps)
    return grad


@dataclass
class GradcheckReport:
    """What :func:`gradcheck` compared: per node, the analytic and numeric gradients and the worst error.

    Attributes
    ----------
    analytic, numeric : dict of str to ndarray
        Node name -> the engine's gradient, and the central-difference one.
    max_abs_error : dict of str to float
        Node name -> the largest absolute difference between the two.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); w = g.param("w", [1.0, -2.0]); L = (w * w).sum()
    >>> report = dp.gradcheck(g, L)
    >>> report.analytic["w"], report.numeric["w"].round(6)
    (array([ 2., -4.]), array([ 2., -4.]))
    >>> print(report)  # doctest: +ELLIPSIS
    gradcheck passed
    w: max |analytic - numeric| = ...
    """

    analytic: dict[str, np.ndarray] = field(default_factory=dict)
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    max_abs_error: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{name}: max |analytic - numeric| = {err:.3g}" for name, err in self.max_abs_error.items()]
        return "gradcheck passed\n" + "\n".join(lines)


def gradcheck(graph: Graph, loss: Node | str, wrt: Iterable[Node | str] | None = None, eps: float = 1e-6,
              rtol: float = 1e-5, atol: float = 1e-8) -> GradcheckReport:
    """Compare the engine's gradients with central finite differences in float64.

    Runs its own forward and backward without committing them, so every value and
    gradient of the graph is left as it was.

    Parameters
    ----------
    graph, loss
        The graph and a scalar node of it.
    wrt : nodes or names, optional
        Which gradients to check (default: every param the loss depends on).
    eps, rtol, atol
        Step of the central difference; tolerances as in ``numpy.allclose``.

    Returns
    -------
    GradcheckReport

    Raises
    ------
    GradcheckError
        Naming the node, the element index, the analytic and the numeric value of
        the worst mismatch.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> w = g.param("w", [[0.5, -1.0]])
    >>> L = (w.tanh() ** 2).sum()
    >>> print(dp.gradcheck(g, L).max_abs_error["w"] < 1e-8)
    True
    """
    loss_node = graph.node(loss)
    plan = graph.plan
    values = scheduler.run_forward(plan, list(graph.run.values), (loss_node.index,))
    upstream = plan.ancestors((loss_node.index,))
    targets = ([n for n in graph.params if n.index in upstream] if wrt is None
               else [graph.node(n) for n in wrt])
    if not targets:
        raise GraphError(f"{loss_node.name!r} depends on no param; pass wrt= the nodes to check")
    out = values[loss_node.index]
    if out.size != 1:
        raise BackwardError(f"gradcheck needs a scalar loss; {loss_node.name!r} has shape {out.shape}")
    run = scheduler.run_backward(plan, values, loss_node.index, np.ones_like(out),
                                 sources=frozenset(n.index for n in targets))
    report = GradcheckReport()
    for node in targets:
        reached = run.grads[node.index]
        analytic = np.zeros_like(values[node.index]) if reached is None else reached
        numeric = numeric_gradient(graph, loss_node, node, eps, values)
        error = np.abs(analytic - numeric)
        report.analytic[node.name], report.numeric[node.name] = analytic, numeric
        report.max_abs_error[node.name] = float(error.max()) if error.size else 0.0
        bad = ~np.isclose(analytic, numeric, rtol=rtol, atol=atol)  # unlike a comparison, NaN counts as bad
        if bad.any():
            worst = np.unravel_index(int(np.argmax(np.where(bad, error, -1))), error.shape)
            raise GradcheckError(
                f"gradient of {loss_node.name!r} with respect to {node.name!r} is wrong at index "
                f"{tuple(int(i) for i in worst)}: analytic {float(analytic[worst]):.10g}, numeric "
                f"{float(numeric[worst]):.10g} (|diff| {float(error[worst]):.3g} > atol {atol:g} + rtol {rtol:g}"
                f" * |numeric|; {int(bad.sum())} of {bad.size} elements disagree)"
            )
    return report
