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
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .backend import is_foreign, namespace
from .errors import BackwardError, GraphError

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .scheduler import Plan

__all__ = ["Run", "accumulate", "read_only", "as_array", "as_seed", "as_tangents"]

EdgeSlot = tuple[int, int]  # (consumer index, argument slot)
Fetch = Callable[[list], list]  # handles -> arrays, many in one round trip

HELD_FIELDS = ("values", "grads", "edge_grads")  # the fields whose entries an executor may keep elsewhere
_FETCHING = threading.Lock()  # two threads reading one held field must not both fetch it



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
    if array.__class__ is not np.ndarray and is_foreign(array):
        return array  # other libraries have no writeable flag; their arrays are handed out as they are
    view = np.asarray(array).view()  # 0-d sums may come back as numpy scalars
    view.flags.writeable = False
    return view


def _slots_under_public_names(cls: type) -> type:
    """Bind each held field's slot (``_values``) under its public name (``values``) too: reading
    it is then a plain attribute read, where a property would cost a Python call on every pass."""
    for field in HELD_FIELDS:
        setattr(cls, field, vars(cls)[f"_{field}"])
    return cls


@_slots_under_public_names
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

    Notes
    -----
    An executor (``g.forward(executor="dask")``) may leave entries of ``values``,
    ``grads`` and ``edge_grads`` where they were computed, a cluster's memory, and
    bring back only what is asked for at once (the loss, the leaves' gradients). Such
    an entry is *held* (:meth:`hold`): the first read of its field, by any means
    (``node.value``, ``g.edge_grad``, a diagram, saving), fetches every entry the field
    holds in one round trip and keeps the arrays (:meth:`fetch`). A record sharing a
    field with another (:meth:`replaced`) shares its held entries too.

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

    __slots__ = ("graph", "nodes", "_values", "_grads", "_edge_grads", "seeds", "plan", "tangents", "edge_tangents",
                 "grad_nodes", "_held")

    def __init__(self, graph: Graph, nodes: Sequence[Node], values: list, grads: list | None = None,
                 edge_grads: dict[EdgeSlot, np.ndarray] | None = None,
                 seeds: Sequence[tuple[Node, np.ndarray]] = (), plan: Plan | None = None, *,
                 tangents: list | None = None, edge_tangents: dict[EdgeSlot, np.ndarray] | None = None,
                 grad_nodes: dict[int, Node] | None = None,
                 held: dict[str, dict[Any, tuple[Any, Fetch]]] | None = None) -> None:
        self.graph = graph
        self.nodes = nodes  # the graph's own node list, shared, so nodes added later are seen
        self._values = values
        self._grads: list = [None] * len(values) if grads is None else grads
        self._edge_grads: dict[EdgeSlot, np.ndarray] = {} if edge_grads is None else edge_grads
        # field -> {key: (handle, fetch)}: entries kept where an executor computed them, until read
        self._held = held
        if held is not None:
            self.__class__ = _HoldingRun
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
        fields: dict[str, Any] = {
            "graph": self.graph, "nodes": self.nodes, "values": self._values, "grads": self._grads,
            "edge_grads": self._edge_grads, "seeds": self.seeds, "plan": self.plan, "tangents": self.tangents,
            "edge_tangents": self.edge_tangents, "grad_nodes": self.grad_nodes}
        fields.update(changes)
        # a field kept shares its held entries along with its list or dict; a field replaced gives them up
        held = self._shared_held(*(field for field in HELD_FIELDS if field not in changes))
        return Run(**fields, held=held)

    def __repr__(self) -> str:
        held = {field: len(entries) for field, entries in (self._held or {}).items()}
        computed = sum(v is not None for v in self._values) + held.get("values", 0)
        reached = sum(g is not None for g in self._grads) + held.get("grads", 0)
        edges = len(self._edge_grads) + held.get("edge_grads", 0)
        tangents = "" if self.tangents is None else f", {sum(t is not None for t in self.tangents)} tangents"
        elsewhere = f", {sum(held.values())} of them held by an executor" if any(held.values()) else ""
        return (f"<dagprop.Run: {computed} of {len(self._values)} values, {reached} gradients, "
                f"{edges} edge gradients, {len(self.seeds)} seeds{tangents}{elsewhere}>")

    # -- the fields an executor may hold elsewhere: reading one fetches its held entries ---------
    # ``values``, ``grads`` and ``edge_grads`` are the slots ``_values``, ``_grads`` and
    # ``_edge_grads`` themselves (see _slots_under_public_names). A record that holds entries
    # is a _HoldingRun, whose properties of those names fetch first.

    if TYPE_CHECKING:  # what the slots bound under public names are, to a type checker
        @property
        def values(self) -> list: ...
        @values.setter
        def values(self, values: list) -> None: ...
        @property
        def grads(self) -> list: ...
        @grads.setter
        def grads(self, grads: list) -> None: ...
        @property
        def edge_grads(self) -> dict[EdgeSlot, np.ndarray]: ...
        @edge_grads.setter
        def edge_grads(self, edge_grads: dict[EdgeSlot, np.ndarray]) -> None: ...

    def hold(self, field: str, key: Any, handle: Any, fetch: Fetch) -> None:
        """Record that entry ``key`` of ``field`` is ``handle``, kept where an executor computed it.

        ``field`` is "values" or "grads" (``key`` a node index) or "edge_grads" (``key``
        a ``(consumer index, slot)``). ``fetch(handles) -> arrays`` brings many handles
        back in one round trip (a fetched None means nothing flowed there). Until the
        field is read the entry stays None in the field's list (absent from the dict).

        Examples
        --------
        >>> import numpy as np
        >>> import dagprop as dp
        >>> g = dp.Graph(); y = g.param("x", 2.0) * 3.0
        >>> run = g.run.copy()
        >>> run.hold("values", y.index, "a handle", lambda handles: [np.array(6.0) for _ in handles])
        >>> run.handle("values", y.index), run
        ('a handle', <dagprop.Run: 3 of 3 values, 0 gradients, 0 edge gradients, 0 seeds, 1 of them held by an executor>)
        >>> float(run.value(y)), run.handle("values", y.index)
        (6.0, None)
        """
        if field not in HELD_FIELDS:
            raise GraphError(f"only {', '.join(HELD_FIELDS)} can be held by an executor, not {field!r}")
        if self._held is None:
            self._held = {}
            self.__class__ = _HoldingRun
        self._held.setdefault(field, {})[key] = (handle, fetch)

    def handle(self, field: str, key: Any) -> Any:
        """The handle entry ``key`` of ``field`` is held as, or None when the entry is here: an
        executor passes a held value on to its next pass without fetching it. See :meth:`hold`.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0)
        >>> g.run.handle("values", w.index) is None
        True
        """
        entries = self._held.get(field) if self._held else None
        entry = entries.get(key) if entries else None
        return None if entry is None else entry[0]

    def here(self, field: str) -> Any:
        """The list or dict ``field`` names as it is in this process, without fetching anything:
        held entries read as None (are absent). For code that reads and writes only entries an
        executor never holds, such as the leaves' values and gradients that :meth:`Graph.step`
        updates, and for executors writing their results.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0)
        >>> g.run.here("values") is g.run.values
        True
        """
        if field not in HELD_FIELDS:
            raise GraphError(f"here() reads {', '.join(HELD_FIELDS)}, not {field!r}")
        return getattr(self, f"_{field}")

    def fetch(self, *fields: str) -> None:
        """Bring back every held entry of ``fields`` (default: all three), one round trip per
        fetch function, and keep the arrays. Reading a field does this for that field.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0)
        >>> g.run.fetch()  # nothing held: nothing to do
        """
        held = self._held
        if held is None:
            return
        for field in fields or HELD_FIELDS:
            entries = held.get(field)
            if not entries:
                continue
            with _FETCHING:
                taken = list(entries.items())  # empty when another thread fetched them meanwhile
                by_fetch: dict[Fetch, list] = {}
                for key, (handle, fetch) in taken:
                    by_fetch.setdefault(fetch, []).append((key, handle))
                container = getattr(self, f"_{field}")
                for fetch, items in by_fetch.items():
                    for (key, _), array in zip(items, fetch([handle for _, handle in items])):
                        if array is not None:
                            container[key] = array
                entries.clear()  # the dict other records sharing this field hold too
        if not any(held.values()):  # everything is here now: plain attribute reads again
            self._held = None
            self.__class__ = Run

    def _fetch_if_held(self, field: str, key: Any) -> None:
        """Fetch ``field``'s held entries if ``key`` is one of them: reading one entry that is
        here fetches nothing, reading a held one fetches the field in one round trip."""
        held = self._held
        if held is not None and key in held.get(field, ()):
            self.fetch(field)

    def _give_up(self, field: str) -> None:
        """A field given a new list or dict no longer shares the held entries of the old one."""
        if self._held is not None and field in self._held:
            self._held = {name: entries for name, entries in self._held.items() if name != field} or None
            if self._held is None:
                self.__class__ = Run

    def _shared_held(self, *fields: str) -> dict[str, dict[Any, tuple[Any, Fetch]]] | None:
        if self._held is None:
            return None
        return {name: entries for name, entries in self._held.items() if name in fields} or None

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
        index = self.graph.node(node).index
        self._fetch_if_held("values", index)
        return self._values[index]

    def grad(self, node: Node | str) -> np.ndarray | None:
        """d loss / d node (read-only), or None where no gradient flowed.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = w * w
        >>> g.forward(); g.backward(L); float(g.run.grad(w))
        4.0
        """
        index = self.graph.node(node).index
        self._fetch_if_held("grads", index)
        return read_only(self._grads[index])

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
        held = self._held or {}
        return (bool(self.seeds or self._edge_grads or held.get("grads") or held.get("edge_grads"))
                or not _all_none(self._grads))

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
        # forward writes values only, so the gradients are shared rather than copied; held values
        # belong to op nodes, which the new pass computes again, so they are not fetched
        run = Run(self.graph, self.nodes, list(self._values), self._grads, self._edge_grads, self.seeds, self.plan,
                  grad_nodes=self.grad_nodes, held=self._shared_held("grads", "edge_grads"))
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
        return Run(self.graph, self.nodes, self._values, None, None, (), self.plan, tangents=self.tangents,
                   edge_tangents=self.edge_tangents, held=self._shared_held("values"))

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


def _fetched_first(field: str) -> property:
    """``field`` read as a property that fetches its held entries first; given a new list or dict,
    it gives up the old one's held entries."""
    slot = vars(Run)[f"_{field}"]

    def read(self: Run) -> Any:
        self.fetch(field)
        return slot.__get__(self)

    def write(self: Run, value: Any) -> None:
        slot.__set__(self, value)
        self._give_up(field)

    return property(read, write)


class _HoldingRun(Run):
    """A record some of whose entries an executor holds elsewhere: reading a field fetches them (see :meth:`Run.hold`)."""

    __slots__ = ()

    values = _fetched_first("values")
    grads = _fetched_first("grads")
    edge_grads = _fetched_first("edge_grads")


def as_array(value: Any, what: str) -> np.ndarray:
    """Turn a number, nested list or array into an array: float64 unless already floating-point.

    Examples
    --------
    >>> as_array([1, 2], "x")
    array([1., 2.])

    An array of another library (array-api-strict, dask) stays one:

    >>> import array_api_strict as xp
    >>> as_array(xp.asarray([1, 2]), "x")
    Array([1., 2.], dtype=array_api_strict.float64)
    """
    if is_foreign(value):
        return _as_foreign_array(value, what)
    try:
        array = np.array(value)
    except (ValueError, TypeError) as exc:
        raise GraphError(f"{what} is not a numeric array: {exc}") from None
    if array.dtype.kind not in "biuf":  # complex would lose its imaginary part, strings and objects are no numbers
        raise GraphError(f"{what} is not a real numeric array (dtype {array.dtype})")
    if array.dtype.kind != "f":  # np.issubdtype says the same, at ten times the cost
        array = array.astype(np.float64)
    return array


def _as_foreign_array(value: Any, what: str) -> Any:
    xp = namespace(value)
    if xp.isdtype(value.dtype, "real floating"):
        return value
    if xp.isdtype(value.dtype, ("bool", "integral")):
        return xp.astype(value, xp.float64)
    raise GraphError(f"{what} is not a real numeric array (dtype {value.dtype})")


def _like(value: Any, array: np.ndarray) -> Any:
    """``array`` (NumPy) in the namespace of ``value``: a seed or tangent given as numbers for a foreign value."""
    return array if not is_foreign(value) or is_foreign(array) else namespace(value).asarray(array)


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
        if value.__class__ is not np.ndarray and is_foreign(value):
            return namespace(value).ones(value.shape, dtype=value.dtype)
        return _ONE if value.shape == () else np.ones(value.shape)
    array = _like(value, as_array(seed, "the seed"))
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
        array = _like(value, as_array(tangent, f"the tangent of {node.name!r}"))
        if array.shape != value.shape:
            raise GraphError(f"the tangent of {node.name!r} has shape {array.shape}, but {node.name!r} has shape "
                             f"{value.shape}; a tangent is shaped like its node")
        seeds[node.index] = array
    return seeds
