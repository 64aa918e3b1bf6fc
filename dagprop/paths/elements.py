"""The element graph: every single element (neuron) of every node, with edges weighted by
the ops' local partial derivatives at the run's values."""

from __future__ import annotations

import bisect
import itertools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .. import rules
from ..errors import GraphError
from ..scheduler import gc_paused
from .element_digraph import ElementGraph
from .search import Between

if TYPE_CHECKING:
    from ..node import Node
    from ..run import Run

__all__ = ["element_graph", "element_name", "split_element_name", "LocalDerivatives", "Local", "MAX_SIZE"]

#: The default ``max_size`` of :func:`element_graph`: at most this many elements plus
#: edges, and this many entries in any one op node's local Jacobians.
MAX_SIZE = 1_000_000

_INDEX = re.compile(r"\[(\d+(?:,\d+)*)?\]$")


def element_name(name: str, index: tuple[int, ...]) -> str:
    """The name of one element of a node: ``W1[2,0]``; a 0-d node keeps its plain name.

    Names never collide: a 0-d node whose own name ends with ``]`` (so it could be
    read as an element of another node, like ``"W[0]"``) is written with an
    explicit empty index, ``"W[0][]"``. :func:`split_element_name` reads any
    element name back into its node name and index.

    Examples
    --------
    >>> element_name("W1", (2, 0)), element_name("x", (3,)), element_name("L", ())
    ('W1[2,0]', 'x[3]', 'L')
    >>> element_name("W", (0,)), element_name("W[0]", ()), element_name("W[0]", (1,))
    ('W[0]', 'W[0][]', 'W[0][1]')
    """
    return _with_index(name, ",".join(str(int(i)) for i in index))


def split_element_name(name: str) -> tuple[str, tuple[int, ...]]:
    """The node name and index that :func:`element_name` made ``name`` from.

    Examples
    --------
    >>> split_element_name("W1[2,0]"), split_element_name("L"), split_element_name("W[0][]")
    (('W1', (2, 0)), ('L', ()), ('W[0]', ()))
    """
    match = _INDEX.search(name)
    if match is None or match.start() == 0:
        return name, ()
    digits = match.group(1)
    return name[:match.start()], tuple(int(i) for i in digits.split(",")) if digits else ()


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """The :func:`element_name` of every element of a node of this shape, in C order."""
    digits = [[str(i) for i in range(n)] for n in shape]
    return [_with_index(name, index) for index in map(",".join, itertools.product(*digits))]


def _with_index(name: str, index: str) -> str:
    """An element name from its node's name and its index written out ("2,0"; "" for a 0-d node)."""
    if index:
        return f"{name}[{index}]"
    return f"{name}[]" if name.endswith("]") else name


def element_graph(run: Run, nodes: Iterable[Node] | None = None, *, max_size: int | None = MAX_SIZE) -> ElementGraph:
    """The graph of single elements (neurons), edges weighted by local partial derivatives.

    Every element of every node is a node of the element graph, keyed by its element
    name (:func:`element_name`): ``W1[2,0]``, and a 0-d node's plain name. The names
    are readable and never collide, even for node names that look like element
    names (a 0-d node named ``"W[0]"`` is ``"W[0][]"``, apart from element 0 of
    ``W``); the element's identity is also kept as attributes: ``tensor`` (the node's
    name) and ``index``, besides ``value``, ``grad`` (None where no gradient flowed),
    ``kind`` and ``op``. An edge from an input element to an output element of an op
    carries ``weight``, the partial derivative of the output element with respect to
    the input element at the current values, summed over the argument slots that
    input fills. It comes from the op's own explicit jacobian or, for an op without
    one, from its vjp applied to one-hot seeds: no op needs code of its own here.
    Zero derivatives make no edge. Nodes are added in a topological order. The
    element graph keeps the run it was made from as ``element_graph.graph["run"]``.

    Parameters
    ----------
    run : Run
        A record whose forward pass has run, usually ``graph.run``.
    nodes : iterable of Node, optional
        Only these nodes' elements, and the edges between them (default: every node).
        A caller that needs the part between two nodes pays only for that part.
    max_size : int or None
        Refuse, before building it, a local Jacobian of more than this many entries
        (output elements times input elements), or an element graph of more than this
        many elements and edges together (default :data:`MAX_SIZE`, a million; None:
        no limit). Each element and edge costs a few hundred bytes.

    Returns
    -------
    ElementGraph
        A ``networkx.DiGraph`` (:class:`~dagprop.paths.element_digraph.ElementGraph`, its
        subclass that is built at the speed of plain dicts).

    Raises
    ------
    GraphError
        When a node has no value (run ``forward()`` first, with ``retain=True``), or
        the element graph or a local Jacobian would exceed ``max_size``.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", [1.0, 2.0])
    >>> y = g.op("mul", x, 3.0, name="y")
    >>> g.forward()
    >>> eg = element_graph(g.run)
    >>> sorted(eg.edges(data="weight"))
    [('const_1', 'y[0]', 1.0), ('const_1', 'y[1]', 2.0), ('x[0]', 'y[0]', 3.0), ('x[1]', 'y[1]', 3.0)]
    >>> eg.nodes["x[1]"]["value"], eg.nodes["x[1]"]["tensor"], eg.nodes["x[1]"]["index"]
    (2.0, 'x', (1,))
    >>> element_graph(g.run, max_size=5)
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: the local Jacobian of op node 'y' (mul, output (2,), inputs 'x' (2,), 'const_1' ()) would have 6 entries, more than max_size=5; pass a larger max_size= to dagprop.paths.element_graph (dp.render draws the element graph it returns) or to paths, count_paths and top_paths, if there is memory for it

    See Also
    --------
    paths, count_paths, top_paths
    """
    derivatives = LocalDerivatives.build(run, nodes, max_size=max_size)
    values, grads, every = run.values, run.grads, run.nodes
    element_graph = ElementGraph(run=run)
    with gc_paused():  # a collection walks every edge made so far: a quarter of the time, and none is garbage
        names = {node.index: _add_elements(element_graph, node, values[node.index], grads[node.index])
                 for node in derivatives.nodes}
        for local in derivatives.local:
            op = every[local.consumer].op
            element_graph.add_new_edges(names[local.source], names[local.consumer], local.columns, local.rows,
                                        [{"weight": w, "op": op} for w in local.values.tolist()])
    return element_graph


def _add_elements(element_graph: ElementGraph, node: Node, value: Any, grad: Any) -> list[str]:
    """Add the elements of one node, in C order; their names."""
    value = np.asarray(value)
    grads = [None] * value.size if grad is None else np.broadcast_to(np.asarray(grad), value.shape).ravel().tolist()
    indices = list(itertools.product(*map(range, value.shape)))
    names = _element_names(node.name, value.shape)
    element_graph.add_new_nodes(names, (
        {"value": v, "grad": d, "tensor": node.name, "index": index, "kind": node.kind, "op": node.op}
        for v, d, index in zip(value.ravel().tolist(), grads, indices, strict=True)))
    return names


@dataclass
class Local:
    """The local partial derivatives of one op node (``consumer``) with respect to one of its
    input nodes (``source``), summed over the argument slots that input fills: output
    element ``rows[e]`` depends on input element ``columns[e]`` (flat indices) by
    ``values[e]``, sorted by (row, column), without zeros."""

    consumer: int
    source: int
    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray


class LocalDerivatives:
    """The element graph as arrays: every op node's local partial derivatives (:class:`Local`),
    for nodes given in a topological order. Element-level path queries run on these; the
    networkx graph is built from them only when :func:`element_graph` is asked for.

    An element is numbered ``offsets[node index] + flat index``, so the numbers follow
    the nodes' order and, within a node, C order: the order of the element graph's nodes.
    """

    def __init__(self, run: Run, nodes: list[Node], local: list[Local]) -> None:
        self.run = run
        self.nodes = nodes
        self.local = local
        self.shapes = {n.index: np.shape(run.values[n.index]) for n in nodes}
        self.offsets: dict[int, int] = {}
        total = 0
        for node in nodes:
            self.offsets[node.index] = total
            total += math.prod(self.shapes[node.index])
        self._starts = list(self.offsets.values())

    @classmethod
    def build(cls, run: Run, nodes: Iterable[Node] | None = None, *,
              max_size: int | None = MAX_SIZE) -> LocalDerivatives:
        """The local derivatives among ``nodes`` (default: all), refusing what ``max_size`` refuses
        (see :func:`element_graph`)."""
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
            raise GraphError(f"max_size must be a positive int or None (no limit), got {max_size!r}")
        values = run.values
        chosen = sorted(run.nodes if nodes is None else nodes, key=lambda n: n.index)
        wanted = {n.index for n in chosen}
        for node in chosen:
            if values[node.index] is None:
                raise GraphError(
                    f"node {node.name!r} has no value, so its elements are unknown: run g.forward() first "
                    f"(with retain=True, which keeps intermediate values)"
                )
        size = _Size(max_size)
        size.add_elements(chosen, values)
        local: list[Local] = []
        for node in chosen:
            if node.op_def is None:
                continue
            needs = tuple(source.index in wanted for source in node.inputs)
            if not any(needs):
                continue
            args = [values[source.index] for source in node.inputs]
            out = values[node.index]
            size.check_jacobian(node, args, out, needs)
            slots: dict[int, list[rules.Entries]] = {}
            for source, entries in zip(node.inputs, rules.sparse_local_jacobians(node, args, out, needs)):
                if entries is not None and source.index in wanted:
                    slots.setdefault(source.index, []).append(entries)
            for source_index, parts in slots.items():
                rows, columns, derivatives = _summed(parts, int(np.size(values[source_index])))
                size.add_edges(len(rows))
                local.append(Local(node.index, source_index, rows, columns, derivatives))
        return cls(run, chosen, local)

    def element(self, node: Node, index: tuple[int, ...]) -> int:
        """The number of one element of one of the nodes."""
        shape = self.shapes[node.index]
        return self.offsets[node.index] + (int(np.ravel_multi_index(index, shape)) if shape else 0)

    def name(self, element: int) -> str:
        """The element name (:func:`element_name`) of an element's number."""
        node = self.nodes[bisect.bisect_right(self._starts, element) - 1]
        shape = self.shapes[node.index]
        flat = element - self.offsets[node.index]
        return element_name(node.name, tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ())

    def between(self, src: int, dst: int) -> Between[int]:
        """The part of the element graph on some path from element src to element dst.

        The same as :meth:`Between.build` on the element graph (the same elements,
        edges, weights and orders), found by marking elements with arrays, node by
        node, so only the part between src and dst becomes Python lists.
        """
        sizes = {index: math.prod(shape) for index, shape in self.shapes.items()}
        above = {index: np.zeros(n, dtype=bool) for index, n in sizes.items()}
        below = {index: np.zeros(n, dtype=bool) for index, n in sizes.items()}
        owner = self._owner
        src_node, dst_node = owner(src), owner(dst)
        above[src_node][src - self.offsets[src_node]] = True
        below[dst_node][dst - self.offsets[dst_node]] = True
        for local in self.local:  # in the consumers' order, a topological order
            reached = above[local.source][local.columns]
            above[local.consumer][local.rows[reached]] = True
        for local in reversed(self.local):
            reached = below[local.consumer][local.rows]
            below[local.source][local.columns[reached]] = True
        sources, consumers, weights = [], [], []
        for local in self.local:
            kept = above[local.source][local.columns] & below[local.consumer][local.rows]
            sources.append(local.columns[kept] + self.offsets[local.source])
            consumers.append(local.rows[kept] + self.offsets[local.consumer])
            weights.append(local.values[kept])
        order: list[int] = []
        for node in self.nodes:
            kept_here = np.flatnonzero(above[node.index] & below[node.index]) + self.offsets[node.index]
            order.extend(kept_here.tolist())
        if not order:
            return Between(src, dst, [], {}, {})
        u = np.concatenate(sources)
        by_source = np.argsort(u, kind="stable")  # each element's edges keep their consumers' order
        succ: dict[int, list[tuple[int, Any]]] = {element: [] for element in order}
        for a, b, w in zip(u[by_source].tolist(), np.concatenate(consumers)[by_source].tolist(),
                           np.concatenate(weights)[by_source].tolist()):
            succ[a].append((b, w))
        return Between.from_succ(src, dst, order, succ)

    def _owner(self, element: int) -> int:
        return self.nodes[bisect.bisect_right(self._starts, element) - 1].index


def _summed(parts: list[rules.Entries], columns_count: int) -> rules.Entries:
    """One input's entries from the argument slots it fills, added in slot order as the
    dense Jacobians would be, without the zeros the sum makes."""
    if len(parts) == 1:
        return parts[0]
    keys = [rows.astype(np.int64) * columns_count + columns for rows, columns, _ in parts]
    union = np.unique(np.concatenate(keys))
    total = np.zeros(len(union))
    for key, (_, _, derivatives) in zip(keys, parts):
        total[np.searchsorted(union, key)] += derivatives
    keep = total != 0
    union, total = union[keep], total[keep]
    return union // columns_count, union % columns_count, total


class _Size:
    """The size of an element graph being built, against ``max_size``."""

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.elements = 0
        self.edges = 0

    def hint(self) -> str:
        return (f"more than max_size={self.max_size:,}; pass a larger max_size= to dagprop.paths.element_graph "
                f"(dp.render draws the element graph it returns) or to paths, count_paths and top_paths, if there "
                f"is memory for it")

    def add_elements(self, nodes: list[Node], values: list) -> None:
        sizes = [(int(np.size(values[n.index])), n) for n in nodes]
        self.elements = sum(size for size, _ in sizes)
        if self.max_size is not None and self.elements > self.max_size:
            largest = ", ".join(f"{n.name!r} {np.shape(values[n.index])}" for _, n in sorted(
                sizes, key=lambda pair: (-pair[0], pair[1].index))[:3])
            raise GraphError(f"the element graph would have {self.elements:,} elements (largest nodes: {largest}), "
                             f"{self.hint()}")

    def check_jacobian(self, node: Node, args: list, out: np.ndarray, needs: tuple[bool, ...]) -> None:
        entries = out.size * sum(np.size(a) for a, need in zip(args, needs) if need)
        if self.max_size is not None and entries > self.max_size:
            shapes = ", ".join(f"{s.name!r} {np.shape(a)}" for s, a, need in zip(node.inputs, args, needs) if need)
            raise GraphError(f"the local Jacobian of op node {node.name!r} ({node.op}, output {out.shape}, inputs "
                             f"{shapes}) would have {entries:,} entries, {self.hint()}")

    def add_edges(self, count: int) -> None:
        self.edges += count
        if self.max_size is not None and self.elements + self.edges > self.max_size:
            raise GraphError(f"the element graph would have {self.elements:,} elements and at least {self.edges:,} "
                             f"edges, {self.hint()}")
