"""Step-by-step simulation: a forward and backward run (or a forward-mode run pushing
tangents) as a sequence of events, in the scheduler's own order, for printing, animating,
or plugins listening on ``dagprop_on_step``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from . import scheduler
from .errors import BackwardError, GraphError
from .run import as_seed, as_tangents

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .run import Run

__all__ = ["Step", "Simulation", "simulate", "MODES"]

MODES = (*scheduler.MODES, "forward")  # the backward modes, and forward mode


@dataclass(frozen=True, eq=False)
class Step:
    """One event of a simulated run.

    Attributes
    ----------
    number : int
        Position in the run, from 0 (all the steps of a run share one count).
    kind : {"forward", "backward", "tangent"}
        "tangent": forward mode pushing a tangent along one edge slot
        (``simulate(..., mode="forward")``).
    node : str
        Forward: the op node just computed. Backward: the node receiving gradient
        (the source of ``edge``). Tangent: the node whose tangent grows (the
        consumer of ``edge``).
    value : ndarray or None
        Forward: the node's new value. Otherwise None.
    edge : tuple (source, consumer, slot) or None
        Backward and tangent: the edge the gradient flows back along or the tangent
        is pushed forward along, with the consumer's argument slot it fed (``x * x``
        has two edges, slots 0 and 1).
    contribution : ndarray or None
        Backward: the gradient this edge carries to ``node``. Tangent: what this edge
        adds to ``node``'s tangent (the op's local derivative times the source's tangent).
    grad : ndarray or None
        Backward: ``node``'s gradient after adding ``contribution`` (the running sum).
    tangent : ndarray or None
        Tangent: ``node``'s tangent after adding ``contribution`` (the running sum).
    arrivals : int
        Backward and tangent: how many contributions ``node`` has received so far,
        this one included; from 2 on, ``grad`` or ``tangent`` is a running sum. 0 for
        forward steps.

    The arrays belong to the run: read them, do not modify them.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", 3.0); y = g.op("mul", x, x, name="y")
    >>> forward, first, second = dp.simulate(g, y)
    >>> forward.kind, float(forward.value)
    ('forward', 9.0)
    >>> second.edge, float(second.contribution), float(second.grad), second.arrivals
    (('x', 'y', 1), 3.0, 6.0, 2)
    >>> print(second)
      2 backward  y -> x [slot 1]: carries 3., x.grad = 6. (sum of 2 so far)

    In forward mode, the tangent steps:

    >>> forward, first, second = dp.simulate(g, y, mode="forward", tangents={x: 1.0})
    >>> print(second)
      2 tangent   x -> y [slot 1]: carries 3., y.tangent = 6. (sum of 2 so far)
    """

    number: int
    kind: str
    node: str
    value: np.ndarray | None = None
    edge: tuple[str, str, int] | None = None
    contribution: np.ndarray | None = None
    grad: np.ndarray | None = None
    arrivals: int = 0
    tangent: np.ndarray | None = None

    def __str__(self) -> str:
        if self.kind == "forward" or self.edge is None:
            return f"{self.number:>3} forward   {self.node} = {_short(self.value)}"
        source, consumer, slot = self.edge
        summed = f" (sum of {self.arrivals} so far)" if self.arrivals > 1 else ""
        if self.kind == "tangent":
            return (f"{self.number:>3} tangent   {source} -> {consumer} [slot {slot}]: carries "
                    f"{_short(self.contribution)}, {consumer}.tangent = {_short(self.tangent)}{summed}")
        return (f"{self.number:>3} backward  {consumer} -> {source} [slot {slot}]: carries "
                f"{_short(self.contribution)}, {source}.grad = {_short(self.grad)}{summed}")


def _short(x: Any) -> str:
    array = np.asarray(x)
    if array.size > 6:
        return f"<{array.shape} norm {np.linalg.norm(array):.4g}>"
    return np.array2string(array, precision=4, separator=", ").replace("\n", "")


class Simulation:
    """The steps of a simulated run, one at a time, and the record they fill.

    An iterator of :class:`Step`, made by :func:`simulate`. ``run`` is a
    :class:`~dagprop.Run` of its own (the graph's record is never touched): it holds
    the fed values from the start, every value once the forward steps have been
    yielded, and the gradients, edge gradients and seed once the backward steps have
    (in forward mode, the tangents and edge tangents once the tangent steps have).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", 3.0); y = g.op("mul", x, x, name="y")
    >>> simulation = dp.simulate(g, y)
    >>> steps = list(simulation)
    >>> float(simulation.run.value("y")), float(simulation.run.grad("x")), x.grad is None
    (9.0, 6.0, True)
    """

    def __init__(self, graph: Graph, loss: Node, feeds: Mapping[str, Any] | None, seed: Any, mode: str,
                 tangents: Mapping[Any, Any] | None = None) -> None:
        if mode not in MODES:
            raise BackwardError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        if mode == "forward" and tangents is None:
            raise GraphError("mode='forward' pushes tangents forward from leaves: pass tangents={leaf: tangent} "
                             "(a node or name -> an array shaped like its value), e.g. tangents={'x': 1.0}")
        if mode == "forward" and seed is not None:
            raise GraphError("seed= starts a backward pass, which mode='forward' does not run: drop seed=, or "
                             "simulate a backward mode ('vjp' or 'jacobian')")
        if mode != "forward" and tangents is not None:
            raise BackwardError(f"tangents= are pushed forward by mode='forward'; mode={mode!r} runs a backward pass "
                                f"from a seed: pass mode='forward', or drop tangents=")
        self.graph = graph
        self.loss = loss
        self.run = graph.run.fed(feeds).without_grads()
        self._seeds = None if tangents is None else as_tangents(self.run, tangents)
        self._steps = self._play(seed, mode)

    def __iter__(self) -> Simulation:
        return self

    def __next__(self) -> Step:
        return next(self._steps)

    def _play(self, seed: Any, mode: str) -> Iterator[Step]:
        graph, loss = self.graph, self.loss
        plan = graph.plan
        hook = graph.registry.plugin_manager.hook.dagprop_on_step
        counter = itertools.count()
        forward_steps: list[Step] = []

        def on_forward(kind: str, node: Node, out: np.ndarray) -> None:
            step = Step(next(counter), "forward", node.name, value=out)
            forward_steps.append(step)
            hook(step=step)

        values = self.run.values
        # the tangents reach every node downstream of their leaves, so forward mode needs every value
        scheduler.run_forward(plan, values, None if mode == "forward" else (loss.index,), on_step=on_forward)
        yield from forward_steps
        if self._seeds is not None:
            yield from self._push(self._seeds, counter)
            return

        # the seed is checked against the value just computed, as Graph.backward does
        start = as_seed(loss.name, values[loss.index], seed)
        arrivals: dict[int, int] = {}
        backward_steps: list[Step] = []

        def on_backward(kind: str, node: Node, slot: int, contribution: np.ndarray, grad: np.ndarray) -> None:
            source = node.inputs[slot]
            arrivals[source.index] = arrivals.get(source.index, 0) + 1
            step = Step(next(counter), "backward", source.name, edge=(source.name, node.name, slot),
                        contribution=contribution, grad=grad, arrivals=arrivals[source.index])
            backward_steps.append(step)
            hook(step=step)

        self.run = scheduler.run_backward(plan, values, loss.index, start, mode=mode, on_step=on_backward)
        yield from backward_steps

    def _push(self, seeds: dict[int, np.ndarray], counter: Iterator[int]) -> Iterator[Step]:
        """The tangent steps of forward mode from ``seeds`` (leaf index -> tangent), one per edge slot
        that carries a tangent, in plan order."""
        hook = self.graph.registry.plugin_manager.hook.dagprop_on_step
        arrivals: dict[int, int] = {}
        tangent_steps: list[Step] = []

        def on_tangent(kind: str, node: Node, slot: int, contribution: np.ndarray, tangent: np.ndarray) -> None:
            source = node.inputs[slot]
            arrivals[node.index] = arrivals.get(node.index, 0) + 1
            step = Step(next(counter), "tangent", node.name, edge=(source.name, node.name, slot),
                        contribution=contribution, tangent=tangent, arrivals=arrivals[node.index])
            tangent_steps.append(step)
            hook(step=step)

        self.run = scheduler.run_jvp(self.graph.plan, self.run, seeds, on_step=on_tangent)
        yield from tangent_steps


def simulate(graph: Graph, loss: Node | str, feeds: Mapping[str, Any] | None = None, seed: Any = None, *,
             mode: str = "vjp", tangents: Mapping[Node | str, Any] | None = None) -> Simulation:
    """Run forward and backward, yielding each step as a :class:`Step`, in the scheduler's order.

    With ``mode="forward"``, run forward and then forward mode instead: after the
    forward steps, one ``"tangent"`` step per edge slot that pushes a tangent from
    ``tangents`` forward (what :meth:`Graph.jvp` does), and no backward steps.

    The steps come from the scheduler's own ``on_step`` callbacks, so their order
    is the order the engine really computes in: each op node's forward step, then
    each edge slot's backward step. Each step is also passed to every plugin's
    ``dagprop_on_step`` hook as it happens; the generator yields the steps of a pass
    once that pass has finished (so a failing pass raises before yielding any of
    its steps).

    The graph's own values and gradients are left unchanged: a simulation is a
    dry run. Use ``g.forward(); g.backward(loss)`` to keep the results.

    Parameters
    ----------
    graph : Graph
    loss : Node or str
        The node to differentiate (one element, unless ``seed`` is given).
    feeds : dict, optional
        Input values, as in ``Graph.forward``.
    seed : array, optional
        The gradient to start from, as in ``Graph.backward`` (backward modes only).
    mode : {"vjp", "jacobian", "forward"}
        "vjp" and "jacobian": the backward pass, as in ``Graph.backward``. "forward":
        forward mode, pushing ``tangents``; the forward steps then compute every node
        (the tangents reach every node downstream of their leaves), not only the
        ones ``loss`` depends on.
    tangents : dict, optional
        Forward mode only, and required there: leaf (node or name) -> its tangent,
        shaped like its value, as in ``Graph.jvp``. Leaves left out do not move.

    Returns
    -------
    Simulation
        An iterator of :class:`Step`; its ``run`` holds the values and gradients
        (tangents, in forward mode) computed so far (the whole run once the steps
        are exhausted).

    Raises
    ------
    BackwardError
        For an unknown ``mode``, or ``tangents`` given to a backward mode.
    GraphError
        In forward mode: ``tangents`` missing, a ``seed`` given, or a tangent that is
        not a leaf's or not shaped like its leaf.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> L = g.op("add", y, x, name="L")
    >>> for step in dp.simulate(g, L):
    ...     print(step)
      0 forward   y = 9.
      1 forward   L = 12.
      2 backward  L -> y [slot 0]: carries 1., y.grad = 1.
      3 backward  L -> x [slot 1]: carries 1., x.grad = 1.
      4 backward  y -> x [slot 0]: carries 3., x.grad = 4. (sum of 2 so far)
      5 backward  y -> x [slot 1]: carries 3., x.grad = 7. (sum of 3 so far)
    >>> x.grad is None  # a dry run
    True

    Forward mode: d/dx of every node, pushed along each edge slot (``L = x*x + x``, so
    ``L.tangent = 2x + 1``):

    >>> for step in dp.simulate(g, L, mode="forward", tangents={x: 1.0}):
    ...     print(step)
      0 forward   y = 9.
      1 forward   L = 12.
      2 tangent   x -> y [slot 0]: carries 3., y.tangent = 3.
      3 tangent   x -> y [slot 1]: carries 3., y.tangent = 6. (sum of 2 so far)
      4 tangent   y -> L [slot 0]: carries 6., L.tangent = 6.
      5 tangent   x -> L [slot 1]: carries 1., L.tangent = 7. (sum of 2 so far)
    """
    return Simulation(graph, graph.node(loss), feeds, seed, mode, tangents)
