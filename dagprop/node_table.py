"""Many nodes added at once: a table of nodes, checked as a whole, then built in bulk.

Adding a node with :meth:`Graph.op <dagprop.Graph.op>` costs several microseconds of
checks and bookkeeping; for the 10^5 nodes of a saved graph that was most of loading it
(issue 15). A :class:`NodeTable` holds the nodes column by column, and
:meth:`Graph.add_table <dagprop.Graph.add_table>` checks it whole with the checks
``Graph.op`` makes (:mod:`dagprop.op_checks`: ops known, arities, attributes, shapes
inferred in order, names unique, inputs before their consumers), then creates the
nodes, the name index and the run's lists together (the networkx mirror catches up
when :attr:`Graph.nx <dagprop.Graph.nx>` is next read). A table that fails a check
leaves the graph as it was.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GraphError, UnknownOpError
from .op_checks import check_arity, check_attributes, infer_shape
from .run import as_array

if TYPE_CHECKING:
    from .graph import Graph
    from .op import Op

__all__ = ["NodeTable", "CheckedTable", "checked", "repeated"]

KINDS = ("input", "param", "const", "op")


@dataclass
class NodeTable:
    """Nodes to add to a graph, one list per field, entry ``k`` of each list for node ``k``.

    Each node's inputs come before it in the table (a topological order), so the table
    has no cycle.

    Attributes
    ----------
    names : list of str
        Unique, and new to the graph.
    kinds : list of {"input", "param", "const", "op"}
    ops : list of str or None
        The op of each op node, by name; None for a leaf.
    inputs : list of list of int
        An op node's arguments, slot by slot, as positions in the table; ``[]`` for a leaf.
    attrs : list of dict
        An op node's attributes, as ``Graph.op`` takes them; ``{}`` for a leaf.
    values : list of array or None
        A leaf's value: a param's and a const's are needed, an input's may come later
        (a feed). None for op nodes, whose values come from forward.
    requires_grad : list of bool
        For inputs, as ``Graph.input`` takes it; params always and consts never require
        a gradient, and op nodes do when one of their inputs does, whatever the entry.
    scopes : list of tuple of str
        Each node's :attr:`~dagprop.Node.scope`; ``()`` outside every scope.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> table = NodeTable(names=["x", "y"], kinds=["param", "op"], ops=[None, "tanh"], inputs=[[], [0]],
    ...                   attrs=[{}, {}], values=[[0.5, 1.0], None], requires_grad=[True, True], scopes=[(), ()])
    >>> [(node.name, node.op, node.shape) for node in g.add_table(table)]
    [('x', None, (2,)), ('y', 'tanh', (2,))]
    """

    names: list[str]
    kinds: list[str]
    ops: list[str | None]
    inputs: list[list[int]]
    attrs: list[dict[str, Any]]
    values: list[Any]
    requires_grad: list[bool]
    scopes: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.scopes:
            self.scopes = [()] * len(self.names)


@dataclass
class CheckedTable:
    """What :func:`checked` found: per node, in table order, what ``Graph.add_table`` needs to build it."""

    op_defs: list[Op | None]
    shapes: list[tuple[int, ...] | None]  # the static shapes
    requires_grad: list[bool]
    values: list[np.ndarray | None]  # the leaves' values as arrays of their own


def checked(table: NodeTable, graph: Graph) -> CheckedTable:
    """Check ``table`` whole, as ``graph.op``, ``param``, ``const`` and ``input`` would check its nodes one by one.

    Raises
    ------
    GraphError
        Naming the node: a column of the wrong length, a name that is not a non-empty
        string, is taken or appears twice, an unknown kind, a leaf with inputs or without
        its value, an input that is not an earlier node of the table, an op taking another
        number of inputs or other attributes (ShapeError, naming the op and every input's
        shape, for inputs of shapes it cannot take).
    UnknownOpError
        For an op no registered plugin provides.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> table = NodeTable(names=["x", "y"], kinds=["param", "op"], ops=[None, "mul"], inputs=[[], [0]],
    ...                   attrs=[{}, {}], values=[1.0, None], requires_grad=[True, True])
    >>> checked(table, g)
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: node 'y': op 'mul' takes 2 inputs (a, b), got 1
    """
    names, kinds, count = table.names, table.kinds, len(table.names)
    for column in ("kinds", "ops", "inputs", "attrs", "values", "requires_grad", "scopes"):
        if len(getattr(table, column)) != count:
            raise GraphError(f"the table's {column} has {len(getattr(table, column))} entries, but there are {count} "
                             f"names; each column has one entry per node")
    _check_names(names, graph)
    if not set(kinds) <= set(KINDS):
        place = next(p for p, kind in enumerate(kinds) if kind not in KINDS)
        raise GraphError(f"node {names[place]!r}: unknown kind {kinds[place]!r} (expected one of {', '.join(KINDS)})")
    try:
        distinct = set(table.scopes)
    except TypeError:  # a list, say: found below
        distinct = table.scopes  # type: ignore[assignment]
    for scope in distinct:
        if type(scope) is not tuple or not all([type(part) is str and part for part in scope]):
            place = table.scopes.index(scope)
            raise GraphError(f"node {names[place]!r}: scope {scope!r} must be a tuple of scope names (non-empty "
                             f"strings)")
    registry = graph.registry.ops
    # each distinct op looked up, and each (op, input count) checked, once: a graph of 10^5 nodes has a few
    defs: dict[Any, Op | None] = {}
    calls = zip(table.ops, map(len, table.inputs), kinds)
    for op_name, arity in dict.fromkeys([(o, n) for o, n, kind in calls if kind == "op"]):
        place = next(p for p, (o, i, kind) in enumerate(zip(table.ops, table.inputs, kinds))
                     if kind == "op" and o == op_name and len(i) == arity)
        op_def = defs[op_name] = registry.get(op_name) if op_name.__class__ is str else None
        if op_def is None:
            raise UnknownOpError(f"node {names[place]!r} uses op {op_name!r}, which no installed plugin provides; "
                                 f"install a plugin that provides it (or pass it with plugins=), then try again "
                                 f"(dagprop ops lists the ops available now)")
        check_arity(op_def, arity, names[place])
    op_defs: list[Op | None] = [None] * count
    shapes: list[tuple[int, ...] | None] = [None] * count
    needs: list[bool] = [False] * count
    values: list[np.ndarray | None] = [None] * count
    known: dict[tuple, tuple[int, ...] | None] = {}  # (op, input shapes) -> shape: chains repeat them
    for place, (kind, sources, op_name) in enumerate(zip(kinds, table.inputs, table.ops)):
        name = names[place]
        need = False
        for source in sources:  # a plain loop: for one or two inputs, cheaper than any(map(...))
            if source.__class__ is not int or not 0 <= source < place:
                raise GraphError(f"node {name!r}: input {source!r} is not the position of an earlier node of the "
                                 f"table; each node's inputs come before it")
            need = need or needs[source]
        if kind != "op":
            values[place], shapes[place], needs[place] = _leaf(table, place)
            continue
        if table.values[place] is not None:
            raise GraphError(f"node {name!r} is an op node: its value comes from forward, not from the table")
        op_def = op_defs[place] = defs[op_name]
        attrs = table.attrs[place]
        if attrs:
            check_attributes(op_def, attrs, name)  # type: ignore[arg-type]
        needs[place] = need
        if op_def.shape is None:  # type: ignore[union-attr]
            continue
        given = tuple(map(shapes.__getitem__, sources))
        key = None if attrs else (op_def, given)
        if key is not None and key in known:
            shapes[place] = known[key]
            continue
        shape = None if None in given else infer_shape(op_def, given, attrs, name,  # type: ignore[arg-type]
                                                       functools.partial(_names_of, names, sources))
        shapes[place] = shape
        if key is not None:
            known[key] = shape
    return CheckedTable(op_defs, shapes, needs, values)


def _names_of(names: list[str], places: list[int]) -> list[str]:
    return [names[place] for place in places]


def repeated(names: list[str]) -> str | None:
    """The first name that appears a second time in ``names``, or None if each appears once.

    Examples
    --------
    >>> repeated(["x", "y", "x"]), repeated(["x", "y"])
    ('x', None)
    """
    if len(set(names)) == len(names):  # the usual answer, found in C
        return None
    seen: set[str] = set()
    return next(name for name in names if name in seen or seen.add(name))  # type: ignore[func-returns-value]


def _check_names(names: list[Any], graph: Graph) -> None:
    if not set(map(type, names)) <= {str} or "" in names:
        place = next(p for p, name in enumerate(names) if type(name) is not str or not name)
        raise GraphError(f"node #{place} of the table: a node name must be a non-empty string, got {names[place]!r}")
    twice = repeated(names)
    if twice is not None:
        raise GraphError(f"node {twice!r} appears twice in the table; node names must be unique")
    taken = next((name for name in names if name in graph), None) if len(graph) else None
    if taken is not None:
        existing = graph[taken]
        raise GraphError(f"a node named {taken!r} already exists in this graph ({existing.op or existing.kind}); "
                         f"names must be unique")


def _leaf(table: NodeTable, place: int) -> tuple[np.ndarray | None, tuple[int, ...] | None, bool]:
    """A leaf's value (an array of its own), static shape and whether it requires a gradient."""
    name, kind, value = table.names[place], table.kinds[place], table.values[place]
    if table.inputs[place]:
        sources = ", ".join(repr(table.names[s]) for s in table.inputs[place])
        raise GraphError(f"node {name!r} is a {kind} but has inputs ({sources})")
    if value is None:
        if kind != "input":
            raise GraphError(f"node {name!r}: a {kind} needs a value")
        return None, None, bool(table.requires_grad[place])
    array = as_array(value, f"the value of {kind} {name!r}")
    return array, array.shape, kind == "param" or (kind == "input" and bool(table.requires_grad[place]))
