"""Opening composite ops: a copy of a graph in which chosen op nodes are replaced by the
circuit their op's ``decompose`` builds.

The copy keeps every original node's name. A replaced node's name now belongs to the
circuit's output node, so everything downstream is wired as before and gradients
at the boundary can be compared name by name. The circuit's own nodes are named
after the node they open (``alpha.exp_1``), and :attr:`ExpandedGraph.expansions`
records which nodes came from which composite, so a diagram can draw each circuit
inside a cluster labelled with the original node.

When the source graph has been run, the copy is run too: forward from the same leaf
values, and backward from the same seeds (each backward pass's starting gradient, as
the source's :class:`~dagprop.Run` recorded it), so the internal nodes show real
values and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from . import rules
from .errors import GraphError, OpError, UnknownOpError
from .graph import Graph, Node

__all__ = ["Expansion", "ExpandedGraph", "expanded", "composite_ops"]


@dataclass(frozen=True)
class Expansion:
    """One opened composite node.

    Attributes
    ----------
    name : str
        The original node's name, now the name of the circuit's output node.
    op : str
        The composite op that was opened.
    nodes : tuple of str
        The nodes the circuit added directly (not those of a composite opened inside
        it), in the order they were built; includes the output node ``name``.
    parent : str or None
        The expansion this one sits inside (a softmax inside an attention), or None.
    """

    name: str
    op: str
    nodes: tuple[str, ...]
    parent: str | None = None


class ExpandedGraph(Graph):
    """A :class:`Graph` built by :func:`expanded`, remembering where each circuit came from.

    A node of the source graph names its copy here, so ``dp.simulate``, ``dp.animate``,
    ``dp.codegen`` and every method taking nodes accept the nodes a user already holds.

    Attributes
    ----------
    source : Graph
        The graph this one opens.
    expansions : dict of str to Expansion
        One entry per opened node, keyed by the original node's name.
    """

    def __init__(self, source: Graph) -> None:
        super().__init__()
        self.registry = source.registry
        self.source = source
        self.expansions: dict[str, Expansion] = {}

    def node(self, ref: Node | str) -> Node:
        """The node ``ref`` names: a node of this graph, a name, or a node of the source graph,
        which names its copy (an opened composite's copy is its circuit's output).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); s = x.softmax()
        >>> h = g.expanded(["softmax"])
        >>> h.node(s).op, h.node(s) is h[s.name]
        ('mul', True)
        """
        if isinstance(ref, Node) and ref.graph is self.source:
            return self[ref.name]
        return super().node(ref)

    def __repr__(self) -> str:
        opened = ", ".join(f"{e.name} ({e.op})" for e in self.expansions.values()) or "nothing"
        return f"<dagprop.ExpandedGraph: {len(self)} nodes, opened {opened}>"


def composite_ops(graph: Graph) -> list[str]:
    """The names of the ops used in ``graph`` that have a decomposition, sorted.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> s = g.param("x", [1.0, 2.0]).softmax()
    >>> composite_ops(g)
    ['softmax']
    """
    return sorted({n.op_def.name for n in graph if n.op_def is not None and n.op_def.decompose is not None})


def expanded(graph: Graph, ops: Iterable[str] | bool | None = None) -> ExpandedGraph:
    """A copy of ``graph`` with composite op nodes replaced by their decomposition.

    Parameters
    ----------
    graph : Graph
    ops : iterable of str, bool or None
        The ops to open. None or True: every op that has a decomposition; False or
        an empty iterable: none (a plain copy). A composite inside a circuit is
        opened too when its op is among ``ops`` (a softmax inside an attention).

    Returns
    -------
    ExpandedGraph
        Every original node keeps its name; a replaced node's name is carried by its
        circuit's output node. If ``graph`` has values and gradients, the copy is
        run forward and backward from the same leaves and seeds, so its boundary
        gradients equal ``graph``'s and its internal nodes have real values and
        gradients.

    Raises
    ------
    UnknownOpError
        When ``ops`` names an op no plugin provides.
    GraphError
        When ``ops`` names an op that has no decomposition.
    OpError
        When an op's ``decompose`` raises or returns something that is not a node.

    Examples
    --------
    >>> import numpy as np
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> e = g.param("e", [[1.0, 2.0]])
    >>> alpha = g.op("softmax", e, name="alpha")
    >>> L = g.op("sum", alpha * g.const([[3.0, 1.0]]), name="L")
    >>> g.forward(); g.backward(L)
    >>> h = g.expanded(["softmax"])
    >>> h.expansions["alpha"].nodes
    ('alpha.max_1', 'alpha.sub_1', 'alpha.exp_1', 'alpha.sum_1', 'alpha.reciprocal_1', 'alpha')
    >>> bool(np.allclose(h["e"].grad, e.grad))
    True
    """
    chosen = _chosen_ops(graph, ops)
    out = ExpandedGraph(graph)
    reserved = {node.name for node in graph}
    mapping: dict[int, Node] = {}
    for node in graph:
        if node.op_def is None:
            mapping[node.index] = _copy_leaf(out, node)
            continue
        inputs = [mapping[source.index] for source in node.inputs]
        made = None
        if node.op_def.name in chosen:
            made = _open(out, node, inputs, node.attrs, node.name, chosen, reserved, parent=None, stack=())
        if made is None:
            made = out.op(node.op_def.name, *inputs, name=node.name, **node.attrs)
        mapping[node.index] = made
    _rerun(graph, out)
    return out


def _chosen_ops(graph: Graph, ops: Iterable[str] | bool | None) -> frozenset[str]:
    if ops is None or ops is True:
        return frozenset(op.name for op in graph.registry if op.decompose is not None)
    if ops is False:
        return frozenset()
    if isinstance(ops, str):
        ops = [ops]
    chosen = set()
    for name in ops:
        if name not in graph.registry:
            graph.registry[name]  # raises UnknownOpError with close matches
            raise UnknownOpError(name)
        if graph.registry[name].decompose is None:
            raise GraphError(f"op {name!r} has no decomposition, so it cannot be expanded; ops that have one: "
                             f"{', '.join(o.name for o in graph.registry if o.decompose is not None) or 'none'}")
        chosen.add(name)
    return frozenset(chosen)


def _copy_leaf(out: Graph, node: Node, name: str | None = None) -> Node:
    name = node.name if name is None else name
    if node.kind == "param":
        return out.param(name, node.value)
    if node.kind == "const":
        return out.const(node.value, name=name)
    return out.input(name, node.value, requires_grad=node.requires_grad)


def _placeholder_value(node: Node) -> Any:
    if node.value is not None:
        return node.value
    return None if node.shape is None else np.zeros(node.shape)


def _open(out: ExpandedGraph, node: Node, inputs: list[Node], attrs: dict, name: str, chosen: frozenset[str],
          reserved: set[str], parent: str | None, stack: tuple[str, ...]) -> Node | None:
    """Build ``node``'s circuit in ``out`` on ``inputs``; None when there is no circuit to show."""
    op = rules.op_of(node)
    if op.decompose is None:
        return None
    plugin = f" (plugin {op.plugin!r})" if op.plugin else ""
    scratch = Graph()
    scratch.registry = out.registry
    placeholders = [scratch.input(f"input_{k}", _placeholder_value(x)) for k, x in enumerate(inputs)]
    try:
        result = op.decompose(*placeholders, **attrs)
    except Exception as exc:
        raise OpError(f"decompose of op {op.name!r}{plugin} at node {name!r} raised {type(exc).__name__}: {exc}"
                      ) from exc
    if not isinstance(result, Node) or result.graph is not scratch:
        raise OpError(f"decompose of op {op.name!r}{plugin} at node {name!r} returned {result!r}; it must return "
                      f"a node built from its input nodes")
    if result.op_def is None:
        return None  # the circuit is one of its inputs or a constant: nothing to open
    local: dict[int, Node] = {p.index: x for p, x in zip(placeholders, inputs)}
    members: list[str] = []
    inner = stack + (op.name,)
    for piece in scratch:
        if piece.index in local:
            continue
        piece_name = name if piece is result else _fresh_name(out, reserved, f"{name}.{piece.name}")
        if piece.op_def is None:
            local[piece.index] = _copy_leaf(out, piece, piece_name)
            members.append(piece_name)
            continue
        args = [local[source.index] for source in piece.inputs]
        made = None
        piece_op = piece.op_def.name
        # a composite inside the circuit opens into its own cluster (never into itself, nor at the output)
        if piece_op in chosen and piece_op not in inner and piece is not result:
            made = _open(out, piece, args, piece.attrs, piece_name, chosen, reserved, parent=name, stack=inner)
        if made is None:
            made = out.op(piece_op, *args, name=piece_name, **piece.attrs)
            members.append(piece_name)
        local[piece.index] = made
    out.expansions[name] = Expansion(name, op.name, tuple(members), parent)
    return local[result.index]


def _fresh_name(out: Graph, reserved: set[str], base: str) -> str:
    candidate, k = base, 2
    while candidate in reserved or candidate in out:
        candidate, k = f"{base}#{k}", k + 1
    return candidate


def _rerun(source: Graph, out: Graph) -> None:
    """Run ``out`` as ``source`` was run: forward if source has op values, backward from its seeds."""
    run = source.run
    ran = any(run.value(n) is not None for n in source if n.op_def is not None)
    if not ran or any(run.value(n) is None for n in source if n.op_def is None):
        return
    out.forward()
    for node, seed in run.seeds:
        out.backward(node.name, seed=seed)
