"""The record of a run: every number that forward and backward passes produced, in one place.

A :class:`Run` holds, indexed like the graph's nodes, each node's value and gradient,
the gradient that flowed back along each edge slot, the seed each backward pass
started from, and the plan that ran; after forward mode, each node's tangent and the
tangent carried forward along each edge slot; after ``backward(create_graph=True)``,
the node computing each gradient. The scheduler fills a fresh record, the graph
commits it only once the pass has succeeded, and every view (diagrams, paths, the
player, generated source, files) reads it through the methods below.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from .errors import BackwardError, GraphError

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .scheduler import Plan

__all__ = ["Run", "accumulate", "read_only", "as_array", "as_seed", "as_tangents"]

EdgeSlot = tuple[int, int]  # (consumer index, argument slot)



def _all_none(items: list) -> bool:
    """Whether every item is None, counted in C: a generator would cost microseconds per run."""
    try:
        return items.count(None) == len(items)
    except ValueError:  # list.count compared an array with None: an item is there
        return False


def accumulate(total: Any, contribution: Any) -> Any:
    """What a node has received so far plus one more contribution (None: nothing yet).

    The one rule by which gradients arriving over several paths, or several argument
    slots of one op, are summed.

    Examples
    --------
    >>> accumulate(None, 2.0), accumulate(2.0, 3.0)
    (2.0, 5.0)
    """
    return contribution if total is None else total + contribution


def read_only(array: Any) -> np.ndarray | None:
    """A read-only view: gradients are handed out this way because one array often serves
    several nodes and edges, and an in-place change through one would corrupt the others.

    Examples
    --------
    >>> read_only(np.ones(2)).flags.writeable
    False
    """
    if array is None:
        return None
    view = np.asarray(array).view()  # 0-d sums may come back as numpy scalars
    view.flags.writeable = False
    return view


class Run:
    """The numbers of a graph's latest forward and backward passes.

    ``graph.run`` is the committed record; :func:`dagprop.simulate` and the player
    build records of their own without touching it. Nodes may be given as
    :class:`~dagprop.Node` objects or by name.

    Attributes
    ----------
    graph : Graph
        The graph whose nodes the lists are indexed by.
    values : list of ndarray or None
        ``values[node.index]``: the forward value (leaves: the value given or fed).
    grads : list of ndarray or None
        ``grads[node.index]``: d loss / d node, summed over every path; None where none flowed.
    edge_grads : dict of (int, int) to ndarray
        ``(consumer index, argument slot)``: the gradient that flowed back along that slot.
    seeds : tuple of (Node, ndarray)
        What each backward pass since the last ``zero_grad`` started from, in order.
    plan : scheduler.Plan or None
        The plan of the pass that last wrote gradients.
    tangents : list of ndarray or None
        ``tangents[node.index]``: the node's tangent from the last :meth:`Graph.jvp`
        (None where no tangent reached it, or before any jvp).
    edge_tangents : dict of (int, int) to ndarray
        ``(consumer index, argument slot)``: what the tangent of that argument
        contributed to the consumer's tangent.
    grad_nodes : dict of int to Node
        Node index -> the node computing its gradient, after ``backward(create_graph=True)``.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> run = g.run
    >>> float(run.value("y")), float(run.grad(x)), float(run.edge_grad("x", "y"))
    (9.0, 6.0, 6.0)
    >>> [(n.name, float(s)) for n, s in run.seeds]
    [('y', 1.0)]
    """

    __slots__ = ("graph", "nodes", "values", "grads", "edge_grads", "seeds", "plan", "tangents", "edge_tangents",
                 "grad_nodes")

    def __init__(self, graph: Graph, nodes: Sequence[Node], values: list, grads: list | None = None,
                 edge_grads: dict[EdgeSlot, np.ndarray] | None = None,
                 seeds: Sequence[tuple[Node, np.ndarray]] = (), plan: Plan | None = None, *,
                 tangents: list | None = None, edge_tangents: dict[EdgeSlot, np.ndarray] | None = None,
                 grad_nodes: dict[int, Node] | None = None) -> None:
        self.graph = graph
        self.nodes = nodes  # the graph's own node list, shared, so nodes added later are seen
        self.values = values
        self.grads: list = [None] * len(values) if grads is None else grads
        self.edge_grads: dict[EdgeSlot, np.ndarray] = {} if edge_grads is None else edge_grads
        self.seeds: tuple[tuple[Node, np.ndarray], ...] = tuple(seeds)
        self.plan = plan
        self.tangents = tangents
        self.edge_tangents: dict[EdgeSlot, np.ndarray] = {} if edge_tangents is None else edge_tangents
        self.grad_nodes: dict[int, Node] = {} if grad_nodes is None else grad_nodes

    def replaced(self, **changes: Any) -> Run:
        """A record sharing this one's fields (the same lists and dicts) except those in ``changes``.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0)
        >>> g.run.replaced(seeds=((w, 1.0),)).seeds[0][0].name
        'w'
        """
        run = Run.__new__(Run)
        run.graph, run.nodes, run.values, run.grads, run.edge_grads = (self.graph, self.nodes, self.values, self.grads,
                                                                        self.edge_grads)
        run.seeds, run.plan, run.tangents, run.edge_tangents, run.grad_nodes = (
            self.seeds, self.plan, self.tangents, self.edge_tangents, self.grad_nodes)
        for name, value in changes.items():
            setattr(run, name, value)
        run.grads = [None] * len(run.values) if run.grads is None else run.grads
        run.edge_grads = {} if run.edge_grads is None else run.edge_grads
        run.edge_tangents = {} if run.edge_tangents is None else run.edge_tangents
        run.grad_nodes = {} if run.grad_nodes is None else run.grad_nodes
        run.seeds = tuple(run.seeds)
        return run

    def __repr__(self) -> str:
        computed = sum(v is not None for v in self.values)
        reached = sum(g is not None for g in self.grads)
        tangents = "" if self.tangents is None else f", {sum(t is not None for t in self.tangents)} tangents"
        return (f"<dagprop.Run: {computed} of {len(self.values)} values, {reached} gradients, "
                f"{len(self.edge_grads)} edge gradients, {len(self.seeds)} seeds{tangents}>")

    # -- reading -----------------------------------------------------------------------

    def value(self, node: Node | str) -> np.ndarray | None:
        """The node's value, or None before it is computed.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); _ = g.param("w", 2.0)
        >>> float(g.run.value("w"))
        2.0
        """
        return self.values[self.graph.node(node).index]

    def grad(self, node: Node | str) -> np.ndarray | None:
        """d loss / d node (read-only), or None where no gradient flowed.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = w * w
        >>> g.forward(); g.backward(L); float(g.run.grad(w))
        4.0
        """
        return read_only(self.grads[self.graph.node(node).index])

    def slot_grad(self, consumer: Node | str, slot: int) -> np.ndarray | None:
        """The gradient that flowed back along argument ``slot`` of ``consumer`` (read-only).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = g.op("mul", x, 2.0, name="y")
        >>> g.forward(); g.backward(y); float(g.run.slot_grad(y, 0))
        2.0
        """
        return read_only(self.edge_grads.get((self.graph.node(consumer).index, slot)))

    def edge_grad(self, src: Node | str, dst: Node | str) -> np.ndarray | None:
        """The gradient that flowed back along src -> dst, summed over dst's argument slots.

        None when nothing flowed along it (or there is no such edge).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = x * x
        >>> g.forward(); g.backward(y); float(g.run.edge_grad(x, y))
        6.0
        """
        return self._summed_over_slots(self.edge_grads, src, dst)

    def tangent(self, node: Node | str) -> np.ndarray | None:
        """The node's tangent from the last forward-mode pass (read-only), or None where none reached it.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = x * x
        >>> g.jvp({x: 1.0}); float(g.run.tangent(y))
        6.0
        """
        index = self.graph.node(node).index
        if self.tangents is None or index >= len(self.tangents):
            return None
        return read_only(self.tangents[index])

    def edge_tangent(self, src: Node | str, dst: Node | str) -> np.ndarray | None:
        """What src's tangent contributed to dst's, summed over dst's argument slots (read-only).

        None when no tangent flowed along the edge (or there is no such edge).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); w = g.param("w", 2.0); y = x * w
        >>> g.jvp({x: 1.0}); float(g.run.edge_tangent(x, y)), g.run.edge_tangent(w, y)
        (2.0, None)
        """
        return self._summed_over_slots(self.edge_tangents, src, dst)

    def grad_node(self, node: Node | str) -> Node | None:
        """The node computing ``node``'s gradient, after ``backward(create_graph=True)``; else None.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = x * x
        >>> g.forward(); g.backward(y, create_graph=True)
        >>> g.run.grad_node(x).op, float(g.run.grad_node(x).value)
        ('add', 6.0)
        """
        return self.grad_nodes.get(self.graph.node(node).index)

    def _summed_over_slots(self, records: dict[EdgeSlot, np.ndarray], src: Node | str, dst: Node | str
                           ) -> np.ndarray | None:
        source, target = self.graph.node(src), self.graph.node(dst)
        parts = [records.get((target.index, slot)) for slot, node in enumerate(target.inputs) if node is source]
        present = [p for p in parts if p is not None]
        return read_only(functools.reduce(np.add, present)) if present else None

    def edges(self, flow: str = "gradient") -> Iterator[tuple[Node, Node, int, np.ndarray]]:
        """Every edge slot that carried gradient, as ``(source, consumer, slot, gradient)``, in graph order.

        With ``flow="tangent"``, every edge slot that carried a tangent forward instead.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = g.op("mul", x, x, name="y")
        >>> g.forward(); g.backward(y)
        >>> [(s.name, c.name, slot, float(d)) for s, c, slot, d in g.run.edges()]
        [('x', 'y', 0, 3.0), ('x', 'y', 1, 3.0)]
        """
        if flow not in ("gradient", "tangent"):
            raise GraphError(f"flow must be 'gradient' or 'tangent', got {flow!r}")
        records = self.edge_grads if flow == "gradient" else self.edge_tangents
        for consumer, slot in sorted(records):
            node = self.nodes[consumer]
            yield node.inputs[slot], node, slot, records[(consumer, slot)]

    def received(self, node: Node | str) -> list[tuple[Node, int, np.ndarray]]:
        """What each consumer sent back to ``node``: ``(consumer, slot, gradient)`` in graph order.

        Their sum, plus any seed the node was given, is its gradient.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 2.0); y = g.op("add", x * 3.0, x, name="y")
        >>> g.forward(); g.backward(y)
        >>> [(c.name, slot, float(d)) for c, slot, d in g.run.received(x)]
        [('mul_1', 0, 3.0), ('y', 1, 1.0)]
        """
        target = self.graph.node(node)
        return [(consumer, slot, grad) for source, consumer, slot, grad in self.edges() if source is target]

    @property
    def has_grads(self) -> bool:
        """Whether any gradient is recorded.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = w * w
        >>> g.forward(); g.run.has_grads
        False
        >>> g.backward(L); g.run.has_grads
        True
        """
        return bool(self.seeds or self.edge_grads) or not _all_none(self.grads)

    @property
    def has_tangents(self) -> bool:
        """Whether any tangent is recorded (a forward-mode pass reached some node).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 2.0); y = x * x
        >>> g.run.has_tangents
        False
        >>> g.jvp({x: 1.0}); g.run.has_tangents
        True
        """
        return self.tangents is not None and not _all_none(self.tangents)

    # -- writing: new records from old ones ----------------------------------------------

    def copy(self) -> Run:
        """A record of the same numbers whose lists and dicts can change independently.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0)
        >>> draft = g.run.copy(); draft.values[w.index] = None
        >>> float(g.run.value(w))
        2.0
        """
        return self.replaced(values=list(self.values), grads=list(self.grads), edge_grads=dict(self.edge_grads),
                             tangents=None if self.tangents is None else list(self.tangents),
                             edge_tangents=dict(self.edge_tangents), grad_nodes=dict(self.grad_nodes))

    def fed(self, feeds: Mapping[Any, Any] | None) -> Run:
        """A record for a new forward pass: the values copied, with ``feeds`` (input name or node
        -> value) in place of the inputs' values. Tangents are dropped: they belong to the old values.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.input("x")
        >>> g.run.fed({"x": 2}).value(x)
        array(2.)
        """
        # forward writes values only, so the gradients are shared rather than copied
        run = Run(self.graph, self.nodes, list(self.values), self.grads, self.edge_grads, self.seeds, self.plan,
                  grad_nodes=self.grad_nodes)
        for name, value in (feeds or {}).items():
            node = self.graph.node(name)
            if node.kind != "input":
                raise GraphError(f"feeds may only replace inputs; {node.name!r} is a {node.op or node.kind}")
            run.values[node.index] = as_array(value, f"the value fed to input {node.name!r}")
        return run

    def without_grads(self) -> Run:
        """The same values (and tangents) with every node and edge gradient, seed and gradient node forgotten.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = w * w
        >>> g.forward(); g.backward(L)
        >>> cleared = g.run.without_grads()
        >>> cleared.grad(w) is None, float(cleared.value(L))
        (True, 4.0)
        """
        return Run(self.graph, self.nodes, self.values, None, None, (), self.plan, tangents=self.tangents,
                   edge_tangents=self.edge_tangents)

    def accumulated(self, later: Run) -> Run:
        """This record with the gradients, edge gradients and seeds of a later backward pass added.

        The values are the later record's. This is what a second ``backward`` without
        ``zero_grad`` does: gradients add up, as in PyTorch. A gradient node is kept
        where the later pass brought no gradient or brought its own node.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = w * w
        >>> g.forward(); g.backward(L); first = g.run
        >>> g.backward(L)
        >>> float(first.grad(w)), float(g.run.grad(w)), len(g.run.seeds)
        (4.0, 8.0, 2)
        """
        # the values are the later pass's and the same as ours, so our tangents still hold
        tangents = ({"tangents": self.tangents, "edge_tangents": self.edge_tangents}
                    if later.tangents is None and self.tangents is not None else {})
        if not self.has_grads:
            return later.replaced(**tangents) if tangents else later
        grads = list(self.grads)
        for index, grad in enumerate(later.grads):
            if grad is not None:
                grads[index] = accumulate(grads[index], grad)
        edge_grads = dict(self.edge_grads)
        for key, grad in later.edge_grads.items():
            edge_grads[key] = accumulate(edge_grads.get(key), grad)
        grad_nodes = {index: node for index, node in self.grad_nodes.items()
                      if index >= len(later.grads) or later.grads[index] is None}
        grad_nodes.update(later.grad_nodes)
        return later.replaced(grads=grads, edge_grads=edge_grads, seeds=(*self.seeds, *later.seeds),
                              grad_nodes=grad_nodes, **tangents)

    def send(self, consumer: int, slot: int, contribution: np.ndarray) -> np.ndarray:
        """Record ``contribution`` flowing back along argument ``slot`` of node ``consumer`` (indices)
        and add it to what its source has received; returns the source's running sum.

        The step-by-step interpreter and the player record each edge this way.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = g.op("mul", x, x, name="y")
        >>> g.forward()
        >>> draft = g.run.without_grads()
        >>> float(draft.send(y.index, 0, 3.0)), float(draft.send(y.index, 1, 3.0))
        (3.0, 6.0)
        >>> float(draft.edge_grad(x, y))
        6.0
        """
        key = (consumer, slot)
        self.edge_grads[key] = accumulate(self.edge_grads.get(key), contribution)
        source = self.nodes[consumer].inputs[slot].index
        self.grads[source] = accumulate(self.grads[source], contribution)
        return self.grads[source]


def as_array(value: Any, what: str) -> np.ndarray:
    """Turn a number, nested list or array into an array: float64 unless already floating-point.

    Examples
    --------
    >>> as_array([1, 2], "x")
    array([1., 2.])
    """
    try:
        array = np.array(value)
    except (ValueError, TypeError) as exc:
        raise GraphError(f"{what} is not a numeric array: {exc}") from None
    if array.dtype.kind not in "biuf":  # complex would lose its imaginary part, strings and objects are no numbers
        raise GraphError(f"{what} is not a real numeric array (dtype {array.dtype})")
    if array.dtype.kind != "f":  # np.issubdtype says the same, at ten times the cost
        array = array.astype(np.float64)
    return array


_ONE = np.ones(())
_ONE.flags.writeable = False


def as_seed(loss: str, value: np.ndarray | None, seed: Any) -> np.ndarray:
    """The gradient backward starts from at the node named ``loss`` whose value is ``value``.

    Examples
    --------
    >>> as_seed("L", np.array(2.0), None), as_seed("y", np.zeros(2), [1, 3])
    (array(1.), array([1., 3.]))
    """
    if value is None:
        raise BackwardError(f"node {loss!r} has no value: run forward() before backward()")
    if seed is None:
        if value.size != 1:
            raise BackwardError(
                f"backward from {loss!r} of shape {value.shape} needs a seed: a loss must hold a single "
                f"element, or pass seed= an array of shape {value.shape}"
            )
        return _ONE if value.shape == () else np.ones(value.shape)
    array = as_array(seed, "the seed")
    if array.shape != value.shape:
        raise BackwardError(f"seed has shape {array.shape} but {loss!r} has shape {value.shape}")
    return array


def as_tangents(run: Run, tangents: Mapping[Any, Any]) -> dict[int, np.ndarray]:
    """Tangents as forward mode takes them: leaf index -> array, each checked to belong to a leaf
    that has a value in ``run`` and to be shaped like it.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0])
    >>> as_tangents(g.run, {"x": [1, 0]})
    {0: array([1., 0.])}
    """
    seeds = {}
    for ref, tangent in tangents.items():
        node = run.graph.node(ref)
        if node.op_def is not None:
            raise GraphError(f"tangents are given to leaves (inputs, params, consts); {node.name!r} is an op node "
                             f"({node.op}), whose tangent forward mode computes")
        value = run.values[node.index]
        if value is None:
            raise GraphError(f"{node.kind} {node.name!r} has no value: give or feed one to push a tangent from it")
        array = as_array(tangent, f"the tangent of {node.name!r}")
        if array.shape != value.shape:
            raise GraphError(f"the tangent of {node.name!r} has shape {array.shape}, but {node.name!r} has shape "
                             f"{value.shape}; a tangent is shaped like its node")
        seeds[node.index] = array
    return seeds
