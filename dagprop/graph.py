"""The compute graph: a networkx DAG of op nodes, and the node handles users hold."""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import math
import operator
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import networkx as nx
import numpy as np

from . import backward_graph, executors, node_table, rules, scheduler
from .compiled import CompiledStep
from .derivatives import Derivatives
from .errors import BackwardError, GraphError, NodeLookupError, UnknownOpError
from .mirror import Mirror
from .node import Node
from .op_checks import check_arity, check_attributes, infer_shape
from .paths.methods import PathQueries
from .registry import Registry, default_registry, unknown_op_message
from .run import Run, as_array, as_seed

if TYPE_CHECKING:
    from .node_table import NodeTable
    from .op import Op

__all__ = ["Graph", "Node"]


_SHAPE = operator.attrgetter("shape")
_NAME = operator.attrgetter("name")
_REQUIRES_GRAD = operator.attrgetter("requires_grad")


def _argument_names(arguments: list[Node | np.ndarray]) -> list[str]:
    return [a.name if isinstance(a, Node) else "a new const" for a in arguments]


class _ScopeState(threading.local):
    """The scope new nodes go into, per thread: outside every scope until a ``with graph.scope`` block."""

    current: tuple[str, ...] = ()


class _OpNamespace:
    """``g.ops.<name>(...)``: every registered op as a function building a node."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            self._graph.registry[name]
        except UnknownOpError as exc:
            raise AttributeError(str(exc)) from None
        return functools.partial(self._graph.op, name)

    def __dir__(self) -> list[str]:
        return self._graph.registry.names()


class Graph(Derivatives, PathQueries):
    """A compute graph of op nodes, with values from forward and gradients from backward.

    Parameters
    ----------
    plugins : iterable, optional
        Extra plugins (modules or objects with ``@dagprop.hookimpl`` functions)
        whose ops this graph can use, on top of the built-in and installed ones.

    Attributes
    ----------
    nx : networkx.MultiDiGraph
        The graph for networkx's algorithms (a :class:`~dagprop.mirror.Mirror`, its subclass): one node per dagprop node, keyed by
        name (attributes ``kind``, ``op``, ``attrs``, ``scope``, ``handle``), one edge per
        argument slot (attribute ``arg``). Read it; build through the Graph, since
        the scheduler's plan is not rebuilt when ``nx`` is edited by hand. It is brought up
        to date when read, so building and loading large graphs that never ask for it
        skip it.
    ops
        Every registered op as a function: ``g.ops.softmax(x, axis=0)``.
    registry : Registry
        The ops this graph can use, by name.

    Examples
    --------
    >>> import numpy as np
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.input("x", [[1.0], [2.0]])
    >>> W = g.param("W", [[1.0, 0.0], [0.0, 3.0]])
    >>> b = g.param("b", [[0.5], [0.5]])
    >>> z = W @ x + b
    >>> L = g.ops.l2_loss(z, g.input("y", [[0.0], [0.0]]))
    >>> g.forward(); g.backward(L)
    >>> float(L.value), b.grad.ravel().tolist()
    (22.25, [1.5, 6.5])

    A graph pickles, with its values, gradients, edge gradients, seeds and tangents,
    so it can travel to another process (a Dask worker) and back. Ops travel by name
    and are looked up again on the other side, where the plugins defining them must
    be registered too (the ``plugins`` given here travel along); a node travels as
    its graph and name, so ``pickle.loads(pickle.dumps((g, L)))`` gives the new
    graph and its own loss node. The plan is worked out again when first needed.

    >>> import pickle
    >>> h, L2 = pickle.loads(pickle.dumps((g, L)))
    >>> L2.graph is h, h["b"].grad.ravel().tolist()
    (True, [1.5, 6.5])
    >>> h.backward(L2); h["b"].grad.ravel().tolist()  # a second backward accumulates
    [3.0, 13.0]
    """

    def __init__(self, plugins: Iterable[Any] | None = None) -> None:
        self._plugins = tuple(plugins or ())
        self.registry: Registry = Registry.with_plugins(self._plugins) if self._plugins else default_registry()
        self._mirror = Mirror()
        self._mirrored = 0  # the nodes the mirror has: the first so many
        self.ops = _OpNamespace(self)
        self._nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self._run = Run(self, self._nodes, [])
        self._param_indices: list[int] = []
        self._name_counters: dict[str, int] = {}  # stem -> the last number given to a fresh name
        self._version = 0
        self._plan: scheduler.Plan | None = None
        self._second_order_copies: dict[tuple[int, int, int], tuple] = {}  # for hessian and hvp
        # one run or change at a time: two threads accumulating into one record would lose sums
        self._lock = threading.RLock()
        # the scope new nodes go into; per thread, so that two threads building in scopes do not mix them
        self._scope_state = _ScopeState()

    # -- building ---------------------------------------------------------------

    def input(self, name: str, value: Any = None, *, requires_grad: bool = False) -> Node:
        """A data input. Its value may be given now or fed later with ``forward(feeds=...)``.

        Gets no gradient unless ``requires_grad=True``.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> g.input("x", [1, 2]).value
        array([1., 2.])
        """
        return self._leaf("input", name, value, requires_grad=requires_grad, allow_missing=True)

    def param(self, name: str, value: Any) -> Node:
        """A trainable parameter: always gets ``.grad``, and ``step()`` updates it.

        Examples
        --------
        >>> import dagprop as dp
        >>> dp.Graph().param("w", 0.5).value
        array(0.5)
        """
        return self._leaf("param", name, value, requires_grad=True)

    def const(self, value: Any, name: str | None = None) -> Node:
        """A constant: a value that never gets a gradient and is never fed.

        Examples
        --------
        >>> import dagprop as dp
        >>> dp.Graph().const(2.0).name
        'const_1'
        """
        return self._leaf("const", name, value, requires_grad=False)

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[tuple[str, ...]]:
        """Put the nodes built inside the ``with`` block into the named group ``name``.

        Ops and leaves built in the block, the consts made from numbers among them,
        record the scope in :attr:`Node.scope`. Scopes nest: inside ``scope("layer1")``,
        ``scope("attention")`` is ``("layer1", "attention")``, and ``scope("a/b")`` is
        ``scope("a")`` holding ``scope("b")``. Diagrams draw each scope as a labelled
        cluster, and ``dp.render(g, collapse=["layer1"])`` as one box. The scope is the
        graph's own (another graph is not affected) and the thread's own; however the
        block ends, an exception included, the scope is the one it was before.

        Parameters
        ----------
        name : str
            The scope's name, or several nested names joined by "/"; not empty.

        Yields
        ------
        tuple of str
            The scope the block builds in, outermost first.

        Raises
        ------
        GraphError
            For a name that is not a string, is empty, or has an empty part ("a//b").

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> x = g.input("x", [1.0, 2.0])
        >>> with g.scope("layer1"):
        ...     h = (g.param("W", 2.0) * x).tanh()
        ...     with g.scope("attention") as inner:
        ...         a = h.softmax()
        >>> g["W"].scope, h.scope, inner, a.scope, x.scope
        (('layer1',), ('layer1',), ('layer1', 'attention'), ('layer1', 'attention'), ())
        """
        parts = name.split("/") if isinstance(name, str) else []
        if not parts or not all(parts):
            raise GraphError(f"a scope name must be a non-empty string whose '/'-separated parts are not empty, "
                             f"got {name!r}")
        before = self._scope_state.current
        self._scope_state.current = before + tuple(parts)
        try:
            yield self._scope_state.current
        finally:
            self._scope_state.current = before

    def op(self, op_name: str, *args: Any, name: str | None = None, **attrs: Any) -> Node:
        """A node applying the registered op ``op_name`` to ``args``.

        Numbers and arrays among ``args`` become const nodes. ``attrs`` are the
        op's attributes (``axis=0``, ``exponent=3.0``...).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> s = g.op("sum", g.param("a", [[1.0, 2.0], [3.0, 4.0]]), axis=0, name="s")
        >>> s.name, s.shape
        ('s', (2,))
        """
        op_def = self.registry.ops.get(op_name) or self.registry[op_name]  # the second names a missing op
        check_arity(op_def, len(args))
        if attrs:
            check_attributes(op_def, attrs)
        if name is not None:
            self._check_new_name(name)
        # numbers and arrays become const nodes only once the node is known to be valid,
        # so a failed call leaves the graph exactly as it was
        given = list(args)
        for slot, arg in enumerate(given):
            if arg.__class__ is not Node or arg.graph is not self:
                given[slot] = self._own(arg) if isinstance(arg, Node) else as_array(
                    arg, f"argument {slot} of op {op_name!r}")
        static_shape = None
        if op_def.shape is not None:
            shapes = list(map(_SHAPE, given))
            if None not in shapes:
                static_shape = infer_shape(op_def, shapes, attrs, name, functools.partial(_argument_names, given))
        with self._lock:
            for slot, arg in enumerate(given):
                if arg.__class__ is not Node:  # as_array above made it a fresh float array: no second copy
                    given[slot] = self._add(self._fresh_name("const"), "const", None, {}, (), False, arg, arg.shape)
            inputs = tuple(given)
            return self._add(name or self._fresh_name(op_name), "op", op_def, attrs, inputs,
                             any(map(_REQUIRES_GRAD, inputs)), None, static_shape)

    def _leaf(self, kind: str, name: str | None, value: Any, *, requires_grad: bool,
              allow_missing: bool = False) -> Node:
        if name is not None:
            self._check_new_name(name)
        if value is None and not allow_missing:
            raise GraphError(f"a {kind} needs a value")
        what = f"the value of {kind} {name!r}" if name is not None else f"the value of a new {kind}"
        array = None if value is None else as_array(value, what)
        shape = None if array is None else array.shape
        with self._lock:
            return self._add(name or self._fresh_name(kind), kind, None, {}, (), requires_grad, array, shape)

    def _add(self, name: str, kind: str, op_def: Op | None, attrs: dict, inputs: tuple[Node, ...],
             requires_grad: bool, value: np.ndarray | None, static_shape: tuple[int, ...] | None) -> Node:
        scope = self._scope_state.current
        node = Node(self, name, kind, len(self._nodes), op_def, attrs, inputs, requires_grad, static_shape, scope)
        if kind == "param":
            self._param_indices.append(node.index)
        self._nodes.append(node)
        self._by_name[name] = node
        run = self._run
        run.values.append(value)
        run.grads.append(None)
        self._version += 1
        return node

    def add_table(self, table: NodeTable) -> list[Node]:
        """Add every node of ``table`` at once: checked as ``op``, ``param``, ``const`` and ``input``
        would check them one by one, then built together (:mod:`dagprop.node_table`).

        Returns the new nodes, in table order. A table that fails a check raises naming the
        node (and, for shapes an op cannot take, the op and every input's shape), and leaves
        the graph as it was.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> table = dp.NodeTable(names=["W", "x", "z"], kinds=["param", "input", "op"], ops=[None, None, "matmul"],
        ...                   inputs=[[], [], [0, 1]], attrs=[{}, {}, {}], values=[[[1.0, 2.0]], [[3.0], [4.0]], None],
        ...                   requires_grad=[True, False, True])
        >>> W, x, z = g.add_table(table)
        >>> z.inputs == (W, x), z.shape
        (True, (1, 1))
        """
        with self._lock, scheduler.gc_paused():  # nothing built here is garbage: no collection need look
            found = node_table.checked(table, self)  # raises before anything changes
            start, names = len(self._nodes), table.names
            nodes: list[Node] = []
            for place, (name, kind, op_def, attrs, sources, needs, shape, scope) in enumerate(zip(
                    names, table.kinds, found.op_defs, table.attrs, table.inputs, found.requires_grad, found.shapes,
                    table.scopes)):
                attrs = dict(attrs) if op_def and attrs else {}
                node = Node(self, name, kind, start + place, op_def, attrs, tuple(map(nodes.__getitem__, sources)),
                            needs, shape, scope)
                nodes.append(node)
            self._nodes.extend(nodes)
            self._by_name.update(zip(names, nodes))
            self._param_indices.extend([start + place for place, kind in enumerate(table.kinds) if kind == "param"])
            self._run.values.extend(found.values)
            self._run.grads.extend([None] * len(nodes))
            self._version += 1
            return nodes

    @property
    def nx(self) -> Mirror:
        """The graph for networkx's algorithms (see the class docstring), brought up to date first.

        Examples
        --------
        >>> import dagprop as dp, networkx as nx
        >>> g = dp.Graph(); x = g.param("x", 2.0); y = (x * x).exp()
        >>> list(nx.topological_sort(g.nx)), g.nx.nodes["mul_1"]["op"]
        (['x', 'mul_1', 'exp_1'], 'mul')
        """
        if self._mirrored != len(self._nodes):
            with self._lock:
                added = self._nodes[self._mirrored:]
                self._mirror.add_new_nodes(
                    (node.name, {"kind": node.kind, "op": node.op, "attrs": node.attrs, "scope": node.scope,
                                 "handle": node}, tuple(map(_NAME, node.inputs))) for node in added)
                self._mirrored += len(added)
        return self._mirror

    def _own(self, node: Node) -> Node:
        if node.graph is not self:
            raise GraphError(f"node {node.name!r} belongs to another graph; nodes of two graphs cannot be mixed")
        return node

    def _check_new_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"a node name must be a non-empty string, got {name!r}")
        if name in self._by_name:
            existing = self._by_name[name]
            raise GraphError(f"a node named {name!r} already exists in this graph ({existing.op or existing.kind}); "
                             f"names must be unique")

    def _fresh_name(self, stem: str) -> str:
        number = self._name_counters.get(stem, 0)
        while True:
            number += 1
            name = f"{stem}_{number}"
            if name not in self._by_name:
                self._name_counters[stem] = number
                return name

    # -- looking up -------------------------------------------------------------

    def __getitem__(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._by_name), n=3)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise NodeLookupError(f"no node named {name!r} in this graph{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> list[Node]:
        """Every node, in the order they were added (a topological order).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); y = g.param("x", 1.0).exp()
        >>> [n.name for n in g.nodes]
        ['x', 'exp_1']
        """
        return list(self._nodes)

    def node(self, ref: Node | str) -> Node:
        """The node ``ref`` names: a node of this graph, or a node name.

        Raises
        ------
        GraphError
            For a node of another graph.
        NodeLookupError
            For a name no node has (with close names as hints); it is also a KeyError.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 1.0)
        >>> g.node("x") is x, g.node(x) is x
        (True, True)
        """
        if isinstance(ref, Node):
            return self._own(ref)
        if isinstance(ref, str):
            return self[ref]
        raise NodeLookupError(f"expected a Node or a node name, got {type(ref).__name__} {ref!r}")

    @property
    def run(self) -> Run:
        """The record of the latest passes: every value, gradient, edge gradient and seed.

        A failed pass leaves it as it was; ``forward``, ``backward`` and ``zero_grad``
        each replace it with a new record.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = 3 * w
        >>> g.forward(); g.backward(L)
        >>> float(g.run.grad("w")), float(g.run.edge_grad(w, L))
        (3.0, 3.0)
        """
        return self._run

    @property
    def plan(self) -> scheduler.Plan:
        """The scheduler's plan for the graph as it is now: worked out once, rebuilt after a change.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 1.0); y = x.exp()
        >>> [g.nodes[i].name for i in g.plan.order]
        ['x', 'exp_1']
        """
        if self._plan is None or self._plan.version != self._version:
            self._plan = scheduler.Plan(self, self._nodes, self._version)
        return self._plan

    @property
    def params(self) -> list[Node]:
        """Every param node, in the order they were added.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); y = g.param("w", 1.0) * g.input("x", 2.0) + g.param("b", 0.0)
        >>> [p.name for p in g.params]
        ['w', 'b']
        """
        return [n for n in self._nodes if n.kind == "param"]

    def __repr__(self) -> str:
        return f"<dagprop.Graph: {len(self._nodes)} nodes, {sum([len(n.inputs) for n in self._nodes])} edges>"

    # -- pickling: plain data out, the graph built again from it ---------------------------

    def __getstate__(self) -> dict[str, Any]:
        return self.state()

    def state(self, numbers: bool = True) -> dict[str, Any]:
        """The graph as plain data, what pickling saves (ops by name, nodes by index); with
        ``numbers=False``, as a graph that has not run: what an executor's tasks need.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); y = g.param("x", 2.0).exp(); g.forward()
        >>> [node[:3] for node in g.state()["nodes"]], g.state(numbers=False)["values"]
        ([('x', 'param', None), ('exp_1', 'op', 'exp')], [None, None])
        """
        with self._lock:
            run = self._run if numbers else Run(self, self._nodes, [None] * len(self._nodes))
            run.fetch()  # numbers an executor holds elsewhere travel as numbers
            return {
                "plugins": [("module", p.__name__) if isinstance(p, ModuleType) else ("object", p)
                            for p in self._plugins],
                "nodes": [(n.name, n.kind, n.op, n.attrs, tuple([i.index for i in n.inputs]), n.requires_grad,
                           n.static_shape, n.scope) for n in self._nodes],
                # the mirror's own order, which a rename changes (the renamed node moves to its end): kept,
                # so that what reads the mirror (a diagram's edge order, say) reads it the same way
                "nx_order": list(self.nx),
                "nx_edges": list(self.nx.edges(keys=True, data="arg")),
                "values": run.values, "grads": run.grads, "edge_grads": run.edge_grads,
                "seeds": [(node.index, seed) for node, seed in run.seeds],
                "tangents": run.tangents, "edge_tangents": run.edge_tangents,
                "grad_nodes": {index: node.index for index, node in run.grad_nodes.items()},
                "name_counters": self._name_counters,
            }

    def __setstate__(self, state: dict[str, Any]) -> None:
        plugins = [importlib.import_module(ref) if kind == "module" else ref for kind, ref in state["plugins"]]
        Graph.__init__(self, plugins)
        nodes = self._nodes
        for name, kind, op_name, attrs, inputs, requires_grad, static_shape, scope in state["nodes"]:
            op_def = None if op_name is None else self._op_to_unpickle(op_name, name)
            node = Node(self, name, kind, len(nodes), op_def, attrs, tuple([nodes[i] for i in inputs]),
                        requires_grad, static_shape, scope)
            nodes.append(node)
            self._by_name[name] = node
            if kind == "param":
                self._param_indices.append(node.index)
        self._mirror.add_nodes_from((name, {"kind": node.kind, "op": node.op, "attrs": node.attrs,
                                            "scope": node.scope, "handle": node})
                                    for name, node in ((name, self._by_name[name]) for name in state["nx_order"]))
        self._mirror.add_edges_from((source, target, key, {"arg": slot})
                                    for source, target, key, slot in state["nx_edges"])
        self._mirrored = len(nodes)
        # lists and dicts of their own: a shallow copy.copy(graph) must not share them with the original
        self._run = Run(self, nodes, list(state["values"]), list(state["grads"]), dict(state["edge_grads"]),
                        [(nodes[i], seed) for i, seed in state["seeds"]], None,
                        tangents=None if state["tangents"] is None else list(state["tangents"]),
                        edge_tangents=dict(state["edge_tangents"]),
                        grad_nodes={index: nodes[i] for index, i in state["grad_nodes"].items()})
        self._name_counters = dict(state["name_counters"])
        self._version = 1

    def _op_to_unpickle(self, op_name: str, node_name: str) -> Op:
        if op_name in self.registry:
            return self.registry[op_name]
        raise UnknownOpError(f"cannot unpickle the graph: its node {node_name!r} applies an op this process does not "
                             f"know; {unknown_op_message(op_name, self.registry.names())}. Ops travel by name: "
                             f"register the plugin defining it here (dp.register_plugin) before unpickling, or "
                             f"give it to the graph as dp.Graph(plugins=[...]), whose plugins travel along")

    # -- running ----------------------------------------------------------------

    def forward(self, feeds: Mapping[str, Any] | None = None, outputs: Iterable[Node | str] | None = None, *,
                retain: bool = True, check_finite: bool = False, executor: str | executors.Executor | None = None
                ) -> None:
        """Compute node values in topological order.

        Parameters
        ----------
        feeds : dict, optional
            ``name -> value`` replacing input values first.
        outputs : nodes or names, optional
            Compute only what these need (their ancestors).
        retain : bool
            False frees every intermediate value as soon as its last consumer has
            run (inference: backward is then impossible until the next forward).
        check_finite : bool
            Raise :class:`NonFiniteError` naming the first node that produced NaN or Inf.
        executor : str or Executor, optional
            Run the plan elsewhere: ``"dask"`` runs it as a Dask task graph on Dask's current
            scheduler (a ``dask.distributed.Client``'s cluster when one is active), or any
            executor a plugin provides (:mod:`dagprop.executors`). The values are the same,
            bit for bit; those of a cluster stay there until read. None (the default) runs
            in this process.

        A failed forward leaves every value as it was. With ``outputs``, the op nodes
        those outputs do not need lose their values (they would be stale).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> x = g.input("x")
        >>> y = 3 * x
        >>> g.forward(feeds={"x": 2.0}); float(y.value)
        6.0
        """
        with self._lock:
            run = self._run.fed(feeds)
            wanted = None if outputs is None else tuple(self.node(o).index for o in outputs)
            plan = self.plan
            values = run.values
            for index in plan.forward_plan(wanted).skipped:  # worked out once per plan and outputs
                values[index] = None
            if executor is None:
                scheduler.run_forward(plan, values, wanted, retain=retain, check_finite=check_finite)
            else:
                executors.executor_for(executor, self.registry).forward(plan, run, wanted, retain=retain,
                                                                         check_finite=check_finite)
            self._run = run

    def backward(self, loss: Node | str, seed: Any = None, *, mode: str = "vjp", check_finite: bool = False,
                 create_graph: bool = False, executor: str | executors.Executor | None = None) -> None:
        """Compute dloss/dn for every node between the loss and the params (and inputs with requires_grad).

        Gradients arriving over several paths, or several argument slots of one
        op, are summed. Calling backward again without :meth:`zero_grad`
        accumulates, node and edge gradients alike.

        Parameters
        ----------
        loss : Node or str
            Holds one element, unless ``seed`` is given.
        seed : array, optional
            The gradient to start from, shaped like ``loss`` (default 1).
        mode : {"vjp", "jacobian"}
            "vjp" uses each op's backward rule; "jacobian" builds each op's explicit
            Jacobian and contracts it with the incoming gradient (same result,
            O(D^2) instead of O(D) per op, for teaching and checking).
        check_finite : bool
            Raise :class:`NonFiniteError` naming the first node whose gradient is NaN or
            Inf, and the edge it came along, leaving every gradient as it was.
        create_graph : bool
            Build the backward pass out of nodes of this graph (each op's ``vjp_graph``),
            in the scope ``"backward"``, and compute them: ``node.grad`` is the array as
            usual, and ``node.grad_node`` the node computing it, which can be drawn, fed
            into further ops and differentiated again.
        executor : str or Executor, optional
            Run the pass elsewhere, as in :meth:`forward`: ``"dask"`` gives the same
            gradients, bit for bit, summed in the same order. Only the leaves' gradients
            come back at once; the other node and edge gradients stay on a cluster until
            read (``node.grad``, ``g.edge_grad``, a diagram). Not with ``create_graph``.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> x = g.param("x", 3.0)
        >>> y = x * x + x
        >>> g.forward(); g.backward(y)
        >>> float(x.grad)
        7.0

        The backward pass as nodes, differentiated again (d2y/dx2 = 2):

        >>> g.zero_grad(); g.backward(y, create_graph=True)
        >>> dy_dx = x.grad_node
        >>> g.zero_grad(); g.backward(dy_dx); float(x.grad)
        2.0
        """
        if mode not in scheduler.MODES:
            raise BackwardError(f"mode must be one of {', '.join(map(repr, scheduler.MODES))}, got {mode!r}")
        if create_graph and mode != "vjp":
            raise BackwardError("create_graph=True builds each op's vjp as nodes; it cannot use mode='jacobian'")
        if create_graph and executor is not None:
            raise BackwardError("create_graph=True builds the backward pass as nodes of this graph, in this process; "
                                "it cannot run on an executor")
        with self._lock:
            loss_node = self.node(loss)
            run = self._run
            seed_array = as_seed(loss_node.name, run.values[loss_node.index] if run.__class__ is Run else
                                 run.value(loss_node), seed)
            start = len(self._nodes)
            try:  # a failed pass leaves the graph as it was, without the nodes it built
                if create_graph:
                    later = backward_graph.run(loss_node, seed_array)
                elif executor is not None:
                    later = executors.executor_for(executor, self.registry).backward(self.plan, run, loss_node.index,
                                                                                      seed_array, mode=mode)
                else:
                    later = scheduler.run_backward(self.plan, run.values, loss_node.index, seed_array, mode=mode)
                if check_finite:
                    rules.check_finite_grads(later)
            except BaseException:
                self._truncate(start)
                raise
            self._run = run.accumulated(later)

    def _truncate(self, length: int) -> None:
        """Remove the nodes added after the first ``length`` (a failed pass's own nodes)."""
        removed = self._nodes[length:]
        if not removed:
            return
        del self._nodes[length:]
        for node in removed:
            del self._by_name[node.name]
        if self._mirrored > length:
            self._mirror.remove_nodes_from([node.name for node in removed[:self._mirrored - length]])
            self._mirrored = length
        self._param_indices = [i for i in self._param_indices if i < length]
        del self._run.values[length:]
        del self._run.grads[length:]
        self._version += 1

    def rename(self, node: Node | str, name: str) -> Node:
        """Give a node a new name (unique in the graph, like every name); returns the node.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 2.0); y = x * x
        >>> g.rename(y, "square").name, "square" in g, y.name
        ('square', True, 'square')
        """
        with self._lock:
            target = self.node(node)
            if name == target.name:
                return target
            self._check_new_name(name)
            del self._by_name[target.name]
            nx.relabel_nodes(self.nx, {target.name: name}, copy=False)
            target.name = name
            self._by_name[name] = target
            self._version += 1  # a plan holds names in its steps' nodes only, but views cache by version
            return target

    def edge_grad(self, src: Node | str, dst: Node | str) -> np.ndarray | None:
        """The gradient that flowed back along the edge src -> dst, summed over dst's argument slots.

        None when nothing flowed along it (or there is no such edge).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> x = g.param("x", 3.0)
        >>> y = x * x
        >>> g.forward(); g.backward(y)
        >>> float(g.edge_grad(x, y))  # 3 along each of the two slots
        6.0
        """
        return self._run.edge_grad(src, dst)

    def step(self, lr: float) -> None:
        """One plain SGD step on every param that has a gradient: ``p <- p - lr * p.grad``.

        ``lr`` must be a real number. Every param is updated, or (on an error) none.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> w = g.param("w", 1.0)
        >>> loss = w * w
        >>> g.forward(); g.backward(loss)
        >>> g.step(lr=0.25); float(w.value)
        0.5
        """
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) \
                or not math.isfinite(lr):
            raise GraphError(f"lr must be a finite real number, got {lr!r}")
        with self._lock:
            # a param's value and gradient are never left on a cluster: the rest stays there. A plain
            # record holds nothing elsewhere, and its fields are slots, read at attribute speed
            run = self._run
            values, grads = (run.values, run.grads) if run.__class__ is Run else (run.here("values"), run.here("grads"))
            updated = [(index, values[index] - lr * grads[index])
                       for index in self._param_indices if grads[index] is not None]
            for index, value in updated:
                if value.shape != values[index].shape:
                    raise GraphError(f"step would change the shape of param {self._nodes[index].name!r} from "
                                     f"{values[index].shape} to {value.shape}: its gradient has shape "
                                     f"{grads[index].shape}")
            for index, value in updated:
                values[index] = value

    def zero_grad(self) -> None:
        """Forget every node and edge gradient (they become None).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 1.0); loss = 2 * w
        >>> g.forward(); g.backward(loss); g.zero_grad(); w.grad is None
        True
        """
        with self._lock:
            self._run = self._run.without_grads()

    def compile(self, loss: Node | str, lr: float | None = None, *, keep_edges: bool = False) -> CompiledStep:
        """A training step, ``step(**feeds) -> loss``: forward, fresh backward and (given ``lr``) SGD
        as one generated function, leaving the graph as that plain loop would, bit for bit.
        Edge gradients are recorded only with ``keep_edges=True``. See :class:`dagprop.CompiledStep`.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.input("x"); w = g.param("w", 3.0)
        >>> train = g.compile((w * x - 1.0) ** 2, lr=0.1)
        >>> train(x=1.0), train(x=1.0), float(w.value)
        (4.0, 2.5600000000000005, 2.2800000000000002)
        """
        return CompiledStep(self, loss, lr, keep_edges=keep_edges, lock=self._lock, commit=self._commit)

    def _commit(self, run: Run) -> None:
        self._run = run

    # -- views: diagrams, circuits, paths (implemented in their own modules) -----------

    def render(self, path: Any = None, **options: Any) -> Any:
        """Draw this graph with its values and gradients; the same as :func:`dagprop.render`.

        Parameters
        ----------
        path : str or pathlib.Path, optional
            Where to write the picture (.svg, .png, .pdf or .dot, by suffix).
        **options
            As in :func:`dagprop.to_dot` (``show``, ``expand``, ``highlight``, ``level``...).

        Returns
        -------
        graphviz.Digraph

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); w = g.param("w", 2.0); L = w * w
        >>> g.forward(); g.backward(L)
        >>> g.render().source.splitlines()[0]
        'digraph dagprop {'
        """
        from .drawing import render

        return render(self, path, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .drawing import mimebundle

        return mimebundle(self)

    def expanded(self, ops: Iterable[str] | bool | None = None) -> Graph:
        """A copy of this graph with composite op nodes replaced by their decomposition.

        ``ops`` names the ops to open (default: every op that has a decomposition).
        When this graph has been run, the copy has been run too, from the same leaf
        values and seeds: its values and gradients are filled in (a further
        ``backward`` on it accumulates, as usual). See :func:`dagprop.expand.expanded`.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); e = g.param("e", [1.0, 2.0]); L = (e.softmax() * [3.0, 1.0]).sum()
        >>> g.forward(); g.backward(L)
        >>> circuit = g.expanded(["softmax"])
        >>> [n.op for n in circuit if n.name.startswith("softmax_1")]
        ['max', 'sub', 'exp', 'sum', 'reciprocal', 'mul']
        >>> bool(abs(circuit["e"].grad - e.grad).max() < 1e-12)
        True
        """
        from .expand import expanded

        return expanded(self, ops)
