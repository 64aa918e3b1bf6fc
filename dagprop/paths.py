"""Gradient paths: the element-level graph, every path from one node to another with the
gradient it carries alone, exact path counts, the k largest paths, and a table view.

Two levels share one set of algorithms:

* the **tensor** level walks the op nodes; an op that takes the same node in two
  argument slots (``x * x``) gives one path per slot, and a path's contribution is
  the backward pass restricted to that path's edge slots;
* the **element** level walks single elements (neurons) of :func:`element_graph`,
  whose edges carry the ops' local partial derivatives; a path's contribution is
  the product of its factors times the gradient arriving at its last element.

Either way the contributions of all paths from src to dst add up to the gradient
that reaches src through dst, which is ``src.grad`` when dst is the loss.
"""

from __future__ import annotations

import heapq
import html
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Iterator, NamedTuple, Sequence

import networkx as nx
import numpy as np

from . import rules, scheduler
from .labels import format_number
from .errors import BackwardError, GraphError

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["Path", "PathRow", "PathTable", "element_graph", "element_name", "paths", "count_paths",
           "top_paths", "path_table"]

# Above this many entries a local Jacobian is not built just to bound a path's size.
_JACOBIAN_BOUND_LIMIT = 4_000_000
# Above this many entries the spectral norm (an SVD) is replaced by the Frobenius norm,
# a looser but still valid upper bound.
_SPECTRAL_NORM_LIMIT = 250_000
# Slack added to each edge's log-bound so that rounding in the exact products can
# never push a path above the bound that ranked it.
_BOUND_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class Path:
    """One path from src to dst and the gradient it carries alone.

    Attributes
    ----------
    nodes : tuple of str
        Node names (tensor level) or element names such as ``"W1[2,0]"`` (element
        level), from src to dst.
    contribution : ndarray or float
        The gradient that reaches src along this path alone: an array shaped like
        src at the tensor level, a number at the element level.
    share : float
        This path's part of the total over all paths from src to dst: the
        projection ``<contribution, total> / <total, total>``, so the shares add up
        to 1 (a plain ratio at the element level); NaN when the total is zero.
    level : {"tensor", "element"}
    slots : tuple of int or None
        For each edge, the argument slot of its consumer that it feeds; None at the
        element level, where an element graph edge already sums over slots.
    factors : tuple
        The local derivatives along the path, src side first. Numbers at the
        element level (their product times the gradient at dst is the
        contribution); at the tensor level the Jacobian of each edge, shaped
        ``consumer.shape + input.shape``, built on first access.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> [(p.nodes, p.slots, float(p.contribution)) for p in g.paths(x, y)]
    [(('x', 'y'), (0,), 3.0), (('x', 'y'), (1,), 3.0)]
    """

    nodes: tuple[str, ...]
    contribution: Any
    share: float
    level: str
    slots: tuple[int | None, ...]
    _factors: Any = field(repr=False)
    # per edge, the consumer's input name when the source fills several of its slots (x * x)
    _slot_names: tuple[str | None, ...] = field(default=(), repr=False)

    @property
    def factors(self) -> tuple:
        """The local derivative of each edge, src side first (see the class docstring)."""
        if callable(self._factors):
            object.__setattr__(self, "_factors", tuple(self._factors()))
        return self._factors

    @property
    def edges(self) -> tuple[tuple[str, str, int | None], ...]:
        """The path's edges as ``(source, consumer, slot)``, src side first."""
        return tuple(zip(self.nodes[:-1], self.nodes[1:], self.slots))

    @property
    def src(self) -> str:
        return self.nodes[0]

    @property
    def dst(self) -> str:
        return self.nodes[-1]

    def __str__(self) -> str:
        return f"{_describe_route(self)}: {_format_number(self.contribution)}"

    def __repr__(self) -> str:
        return (f"<Path {_describe_route(self)} contribution={_format_number(self.contribution)} "
                f"share={self.share:.4g}>")


# -- the element graph ------------------------------------------------------------------


def element_name(name: str, index: tuple[int, ...]) -> str:
    """The name of one element of a node: ``W1[2,0]``; a 0-d node keeps its plain name.

    Examples
    --------
    >>> element_name("W1", (2, 0)), element_name("x", (3,)), element_name("L", ())
    ('W1[2,0]', 'x[3]', 'L')
    """
    return name if not index else f"{name}[{','.join(str(int(i)) for i in index)}]"


def element_graph(graph: Graph) -> nx.DiGraph:
    """The graph of single elements (neurons), edges weighted by local partial derivatives.

    Every element of every node is a node named like ``W1[2,0]`` (a 0-d node keeps
    its plain name), with attributes ``value``, ``grad`` (None where no gradient
    flowed), ``tensor`` (the node's name), ``index``, ``kind`` and ``op``. An edge
    from an input element to an output element of an op carries ``weight``, the
    partial derivative of the output element with respect to the input element at
    the current values, summed over the argument slots that input fills. It comes
    from the op's own explicit jacobian or, for an op without one, from its vjp
    applied to one-hot seeds: no op needs code of its own here. Zero derivatives
    make no edge. Nodes are added in a topological order.

    Parameters
    ----------
    graph : Graph
        A graph whose forward pass has run.

    Returns
    -------
    networkx.DiGraph

    Raises
    ------
    GraphError
        When a node has no value (run ``forward()`` first, with ``retain=True``).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", [1.0, 2.0])
    >>> y = g.op("mul", x, 3.0, name="y")
    >>> g.forward()
    >>> eg = g.element_graph()
    >>> sorted(eg.edges(data="weight"))
    [('const_1', 'y[0]', 1.0), ('const_1', 'y[1]', 2.0), ('x[0]', 'y[0]', 3.0), ('x[1]', 'y[1]', 3.0)]
    >>> eg.nodes["x[1]"]["value"]
    2.0

    See Also
    --------
    paths, count_paths, top_paths
    """
    return _element_graph(graph, graph._values, graph._grads, graph._nodes)


def _element_graph(graph: Graph, values: Sequence[Any], grads: Sequence[Any],
                   nodes: Iterable[Node]) -> nx.DiGraph:
    """The element graph of ``nodes`` (a set closed enough for the caller) at ``values``.

    Only edges from a node in ``nodes`` to a node in ``nodes`` are built, so a
    caller that needs the part between two nodes pays only for that part.
    """
    chosen = sorted(nodes, key=lambda n: n.index)
    wanted = {n.index for n in chosen}
    for node in chosen:
        if values[node.index] is None:
            raise GraphError(
                f"node {node.name!r} has no value, so its elements are unknown: run g.forward() first "
                f"(with retain=True, which keeps intermediate values)"
            )
    element_graph = nx.DiGraph()
    names: dict[int, list[str]] = {}
    for node in chosen:
        value = np.asarray(values[node.index])
        grad = grads[node.index]
        grad = None if grad is None else np.broadcast_to(np.asarray(grad), value.shape)
        indices = list(np.ndindex(value.shape))
        names[node.index] = [element_name(node.name, index) for index in indices]
        grads_of = [None] * value.size if grad is None else grad.ravel().tolist()
        element_graph.add_nodes_from(
            (name, {"value": v, "grad": d, "tensor": node.name, "index": index, "kind": node.kind, "op": node.op})
            for name, v, d, index in zip(names[node.index], value.ravel().tolist(), grads_of, indices))
    for node in chosen:
        if node.op_def is None:
            continue
        needs = tuple(source.index in wanted for source in node.inputs)
        if not any(needs):
            continue
        args = [values[source.index] for source in node.inputs]
        out = values[node.index]
        jacobians = rules.local_jacobians(node, args, out, needs)
        summed: dict[int, np.ndarray] = {}
        for source, jacobian in zip(node.inputs, jacobians):
            if jacobian is None or source.index not in wanted:
                continue
            flat = np.asarray(jacobian, dtype=np.float64).reshape(out.size, -1)
            summed[source.index] = flat if source.index not in summed else summed[source.index] + flat
        out_names = names[node.index]
        for source_index, flat in summed.items():
            in_names = names[source_index]
            rows, columns = np.nonzero(flat)
            op = node.op
            element_graph.add_edges_from(
                (in_names[i], out_names[o], {"weight": w, "op": op})
                for o, i, w in zip(rows.tolist(), columns.tolist(), flat[rows, columns].tolist()))
    return element_graph


# -- the two levels as one abstract DAG ---------------------------------------------------


@dataclass
class _Between:
    """The part of a DAG lying on some path from src to dst, as plain adjacency lists.

    ``succ[u]`` and ``pred[v]`` hold ``(neighbour, key)`` pairs, one per edge
    (parallel edges, such as the two slots of ``x * x``, have different keys);
    ``order`` is a topological order of the nodes.
    """

    src: Hashable
    dst: Hashable
    order: list[Hashable]
    succ: dict[Hashable, list[tuple[Hashable, Any]]]
    pred: dict[Hashable, list[tuple[Hashable, Any]]]

    @classmethod
    def build(cls, src: Hashable, dst: Hashable, order: Sequence[Hashable],
              successors: Callable[[Hashable], Iterable[tuple[Hashable, Any]]],
              predecessors: Callable[[Hashable], Iterable[Hashable]]) -> _Between:
        below = _reach(dst, predecessors)
        above = _reach(src, lambda u: (v for v, _ in successors(u)))
        keep = below & above
        kept = [u for u in order if u in keep]
        succ = {u: [(v, key) for v, key in successors(u) if v in keep] for u in kept}
        pred: dict[Hashable, list[tuple[Hashable, Any]]] = {u: [] for u in kept}
        for u in kept:
            for v, key in succ[u]:
                pred[v].append((u, key))
        return cls(src, dst, kept, succ, pred)

    def count(self) -> int:
        """The number of paths from src to dst, by dynamic programming over Python ints."""
        if not self.order:
            return 0
        counts = dict.fromkeys(self.order, 0)
        counts[self.src] = 1
        for u in self.order:
            for v, _ in self.succ[u]:
                counts[v] += counts[u]
        return counts[self.dst]

    def walk(self) -> Iterator[tuple[tuple[Hashable, ...], tuple[Any, ...]]]:
        """Every path as (nodes, edge keys), depth first, iteratively (no recursion limit)."""
        if not self.order:
            return
        if self.src == self.dst:
            yield (self.src,), ()
            return
        nodes: list[Hashable] = [self.src]
        keys: list[Any] = []
        stack = [iter(self.succ[self.src])]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                nodes.pop()
                if keys:
                    keys.pop()
                continue
            v, key = step
            nodes.append(v)
            keys.append(key)
            if v == self.dst:
                yield tuple(nodes), tuple(keys)
                nodes.pop()
                keys.pop()
            else:
                stack.append(iter(self.succ[v]))

    def best(self, k: int, seed: Any, extend: Callable[[Hashable, Hashable, Any, Any], Any],
             log_size: Callable[[Any], float], log_bound: Callable[[Hashable, Hashable, Any], float]
             ) -> list[tuple[tuple[Hashable, ...], tuple[Any, ...]]]:
        """The k paths whose carried value is largest, by best-first search from dst back to src.

        ``extend(consumer, source, key, carried)`` pulls the value carried at the
        consumer back along one edge; ``log_size`` measures it; ``log_bound(u, v,
        key)`` bounds from above how much an edge can enlarge it. A partial path is
        ranked by its carried size plus the best bound of any way from src to its
        head, so a finished path leaves the queue only when nothing left can beat
        it: the result is exact, and only the paths near the top are ever built.
        """
        if not self.order or k <= 0:
            return []
        reach = {u: -math.inf for u in self.order}
        reach[self.src] = 0.0
        for u in self.order:
            if reach[u] == -math.inf:
                continue
            for v, key in self.succ[u]:
                reach[v] = max(reach[v], reach[u] + log_bound(u, v, key) + _BOUND_SLACK)
        tie = itertools.count()
        queue = [(-_rank(log_size(seed) + reach[self.dst]), next(tie), self.dst, (self.dst, None, None), seed)]
        found = []
        while queue and len(found) < k:
            _, _, head, chain, carried = heapq.heappop(queue)
            if head == self.src:
                found.append(chain)
                continue
            for source, key in self.pred[head]:
                pulled = extend(head, source, key, carried)
                rank = _rank(log_size(pulled) + reach[source])
                heapq.heappush(queue, (-rank, next(tie), source, (source, key, chain), pulled))
        results = []
        for chain in found:
            nodes, keys = [], []
            while chain is not None:
                node, key, chain = chain
                nodes.append(node)
                if chain is not None:
                    keys.append(key)
            results.append((tuple(nodes), tuple(keys)))
        return results


def _rank(x: float) -> float:
    # a NaN somewhere in the values must not corrupt the heap: rank it first, visibly
    return math.inf if x != x else x


def _reach(start: Hashable, neighbours: Callable[[Hashable], Iterable[Hashable]]) -> set[Hashable]:
    seen = {start}
    stack = [start]
    while stack:
        for v in neighbours(stack.pop()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def _tensor_between(graph: Graph, src: Node, dst: Node) -> _Between:
    consumers: dict[int, list[tuple[int, int]]] = {n.index: [] for n in graph._nodes}
    for node in graph._nodes:
        for slot, source in enumerate(node.inputs):
            consumers[source.index].append((node.index, slot))
    return _Between.build(src.index, dst.index, range(len(graph._nodes)), consumers.__getitem__,
                          lambda v: (s.index for s in graph._nodes[v].inputs))


def _element_between(element_graph: nx.DiGraph, src: str, dst: str) -> _Between:
    return _Between.build(src, dst, list(element_graph),
                          lambda u: ((v, data["weight"]) for v, data in element_graph.succ[u].items()),
                          element_graph.pred.__getitem__)


# -- what the user asked for --------------------------------------------------------------


@dataclass
class _Query:
    """A resolved request: the nodes, the level and, at the element level, the elements."""

    graph: Graph
    src: Node
    dst: Node
    level: str
    src_index: tuple[int, ...] | None = None
    dst_index: tuple[int, ...] | None = None

    @property
    def src_element(self) -> str:
        return element_name(self.src.name, self.src_index)

    @property
    def dst_element(self) -> str:
        return element_name(self.dst.name, self.dst_index)


def _query(graph: Graph, src: Node | str, dst: Node | str, index: Any) -> _Query:
    source, target = graph._resolve(src), graph._resolve(dst)
    if index is None:
        return _Query(graph, source, target, "tensor")
    src_index, dst_index = _split_index(index)
    for node in (source, target):
        if graph._values[node.index] is None:
            raise GraphError(f"node {node.name!r} has no value, so its elements are unknown: "
                             f"run g.forward() before asking for element-level paths")
    src_shape = graph._values[source.index].shape
    dst_shape = graph._values[target.index].shape
    if dst_index is None:
        if int(np.prod(dst_shape)) != 1:
            raise GraphError(
                f"dst {target.name!r} has shape {dst_shape}, so an element-level path needs its element too: "
                f"pass index=(src_index, dst_index), e.g. index=({_example_index(src_shape)}, "
                f"{_example_index(dst_shape)})"
            )
        dst_index = (0,) * len(dst_shape)
    return _Query(graph, source, target, "element", _check_index(source, src_index, src_shape, "src"),
                  _check_index(target, dst_index, dst_shape, "dst"))


def _split_index(index: Any) -> tuple[Any, Any]:
    """``index`` is src's element, or a pair ``(src_index, dst_index)`` of which one is a tuple."""
    if (isinstance(index, (tuple, list)) and len(index) == 2
            and any(isinstance(part, (tuple, list)) or part is None for part in index)):
        return index[0], index[1]
    return index, None


def _check_index(node: Node, index: Any, shape: tuple[int, ...], role: str) -> tuple[int, ...]:
    parts = tuple(index) if isinstance(index, (tuple, list)) else (index,)
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in parts):
        raise GraphError(f"{role} index {index!r} for {node.name!r} must be a tuple of ints, one per axis of "
                         f"its shape {shape}")
    if len(parts) != len(shape):
        raise GraphError(f"{role} index {index!r} has {len(parts)} entries but {node.name!r} has shape {shape} "
                         f"({len(shape)} axes); use e.g. {_example_index(shape)}")
    normalised = []
    for axis, (i, n) in enumerate(zip(parts, shape)):
        if not -n <= i < n:
            raise GraphError(f"{role} index {index!r} is out of range for {node.name!r} of shape {shape}: "
                             f"axis {axis} has {n} elements (0 to {n - 1})")
        normalised.append(int(i) % n)
    return tuple(normalised)


def _example_index(shape: tuple[int, ...]) -> str:
    return "()" if not shape else "(" + ", ".join("0" for _ in shape) + ("," if len(shape) == 1 else "") + ")"


def _gradient_at(query: _Query) -> np.ndarray:
    grad = query.graph._grads[query.dst.index]
    if grad is None:
        raise BackwardError(
            f"no gradient has reached {query.dst.name!r}, and a path's contribution starts from it: run "
            f"g.backward(loss) first, with a loss that depends on {query.dst.name!r}"
        )
    for node in (query.src, query.dst):
        if query.graph._values[node.index] is None:
            raise BackwardError(f"node {node.name!r} has no value: run g.forward() and g.backward(loss) first")
    return np.asarray(grad, dtype=np.float64)


def _through(query: _Query, seed: np.ndarray, edges: frozenset[tuple[int, int]] | None = None) -> np.ndarray:
    """The gradient reaching src from ``seed`` at dst (only along ``edges`` when given)."""
    graph = query.graph
    if query.src is query.dst:
        return seed
    grads, _ = scheduler.run_backward(graph._current_plan(), graph._values, query.dst.index, seed,
                                      sources=frozenset({query.src.index}), edges=edges)
    reached = grads.get(query.src.index)
    return np.zeros_like(graph._values[query.src.index], dtype=np.float64) if reached is None else reached


def _share(contribution: Any, total: Any) -> float:
    denominator = float(np.vdot(total, total))
    return float(np.vdot(contribution, total)) / denominator if denominator else math.nan


def _tensor_path(query: _Query, nodes: tuple[int, ...], keys: tuple[Any, ...], seed: np.ndarray,
                 total: np.ndarray) -> Path:
    consumers = nodes[1:]
    edges = frozenset(zip(consumers, keys))
    contribution = _through(query, seed, edges)
    graph = query.graph

    def factors() -> list[np.ndarray]:
        jacobians = []
        for consumer, slot in zip(consumers, keys):
            node = graph._nodes[consumer]
            needs = tuple(s == slot for s in range(len(node.inputs)))
            jacobian = _edge_jacobian(graph, node, needs)[slot]
            source_shape = graph._values[node.inputs[slot].index].shape
            jacobians.append(np.zeros(graph._values[consumer].shape + source_shape) if jacobian is None else jacobian)
        return jacobians

    slot_names = []
    for source, consumer, slot in zip(nodes, consumers, keys):
        node = graph._nodes[consumer]
        twice = sum(1 for s in node.inputs if s.index == source) > 1
        slot_names.append(rules.input_names(node, len(node.inputs))[slot] if twice else None)
    return Path(tuple(graph._nodes[i].name for i in nodes), contribution, _share(contribution, total),
                "tensor", tuple(keys), factors, tuple(slot_names))


def _edge_jacobian(graph: Graph, node: Node, needs: tuple[bool, ...]) -> tuple[np.ndarray | None, ...]:
    args = [graph._values[source.index] for source in node.inputs]
    return rules.local_jacobians(node, args, graph._values[node.index], needs)


def _element_path(nodes: tuple[str, ...], factors: tuple[float, ...], arriving: float, total: float) -> Path:
    contribution = math.prod(factors) * arriving
    return Path(tuple(nodes), contribution, _share(contribution, total), "element", (None,) * len(factors),
                tuple(factors))


def _element_setup(query: _Query) -> tuple[nx.DiGraph, _Between]:
    tensors = _tensor_between(query.graph, query.src, query.dst)
    nodes = [query.graph._nodes[i] for i in tensors.order]
    eg = _element_graph(query.graph, query.graph._values, query.graph._grads, nodes) if nodes else nx.DiGraph()
    if query.src_element not in eg or query.dst_element not in eg:
        return eg, _Between(query.src_element, query.dst_element, [], {}, {})
    return eg, _element_between(eg, query.src_element, query.dst_element)


def _element_arriving(query: _Query) -> tuple[float, float]:
    """The gradient at the dst element and the total that reaches the src element through dst."""
    seed = _gradient_at(query)
    arriving = float(np.broadcast_to(seed, query.graph._values[query.dst.index].shape)[query.dst_index])
    one_hot = np.zeros(query.graph._values[query.dst.index].shape)
    one_hot[query.dst_index] = arriving
    total = float(_through(query, one_hot)[query.src_index])
    return arriving, total


# -- public functions ---------------------------------------------------------------------


def paths(graph: Graph, src: Node | str, dst: Node | str, index: Any = None, *,
          limit: int = 10_000) -> list[Path]:
    """Every path from src to dst with the gradient it carries alone, largest first.

    Parameters
    ----------
    graph : Graph
        A graph on which ``forward()`` and ``backward(loss)`` have run.
    src, dst : Node or str
        Where the paths start and end (dst usually the loss).
    index : tuple of int, optional
        None lists paths of op nodes (tensor level). An index of src's value lists
        paths of single elements from that element (element level); when dst holds
        more than one element, give a pair ``(src_index, dst_index)`` instead.
    limit : int
        Refuse, rather than list, more paths than this.

    Returns
    -------
    list of Path
        Sorted by the norm (tensor level) or absolute value (element level) of the
        contribution, largest first; empty when src does not reach dst. The
        contributions add up to the gradient that reaches src through dst, which is
        ``src.grad`` (or ``src.grad[index]``) when dst is the loss.

    Raises
    ------
    GraphError
        More than ``limit`` paths (use :func:`count_paths` and :func:`top_paths`),
        an index out of range, or a dst with several elements and no index for it.
    BackwardError
        No gradient has reached dst yet: run ``backward`` first.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", [1.0, 2.0])
    >>> h = g.op("mul", x, x, name="h")
    >>> L = g.op("mul", g.op("add", h, x, name="s"), 0.5, name="L")
    >>> g.forward(); g.backward(L, seed=[1.0, 1.0])
    >>> for p in g.paths(x, L):
    ...     print(" -> ".join(p.nodes), p.contribution)
    x -> h -> s -> L [0.5 1. ]
    x -> h -> s -> L [0.5 1. ]
    x -> s -> L [0.5 0.5]
    >>> [(p.nodes, p.factors, p.contribution) for p in g.paths(x, L, index=((1,), (1,)))]
    [(('x[1]', 'h[1]', 's[1]', 'L[1]'), (4.0, 1.0, 0.5), 2.0), (('x[1]', 's[1]', 'L[1]'), (1.0, 0.5), 0.5)]
    >>> x.grad
    array([1.5, 2.5])

    See Also
    --------
    count_paths, top_paths, path_table, element_graph
    """
    query = _query(graph, src, dst, index)
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise GraphError(f"limit must be a non-negative int, got {limit!r}")
    if query.level == "tensor":
        between = _tensor_between(graph, query.src, query.dst)
        _check_limit(query, between.count(), limit)
        if not between.order:
            return []
        seed = _gradient_at(query)
        total = _through(query, seed)
        found = [_tensor_path(query, nodes, keys, seed, total) for nodes, keys in between.walk()]
        return sorted(found, key=lambda p: -float(np.linalg.norm(p.contribution)))
    _, between = _element_setup(query)
    _check_limit(query, between.count(), limit)
    if not between.order:
        return []
    arriving, total = _element_arriving(query)
    found = [_element_path(nodes, factors, arriving, total) for nodes, factors in between.walk()]
    return sorted(found, key=lambda p: -abs(p.contribution))


def _check_limit(query: _Query, count: int, limit: int) -> None:
    if count > limit:
        where = (f"{query.src.name!r} to {query.dst.name!r}" if query.level == "tensor"
                 else f"{query.src_element!r} to {query.dst_element!r}")
        raise GraphError(
            f"there are {count:,} {query.level}-level paths from {where}, more than limit={limit:,}: use "
            f"g.count_paths(...) to count them or g.top_paths(..., k) for the k largest, or raise limit="
        )


def count_paths(graph: Graph, src: Node | str, dst: Node | str, index: Any = None) -> int:
    """The exact number of paths from src to dst, without listing them.

    Dynamic programming over a topological order with Python integers, so the
    count never overflows and costs time linear in the graph's size. At the tensor
    level it needs only the graph's structure; at the element level (``index``
    given, as in :func:`paths`) the values of a forward pass, since edges with a
    zero derivative do not count.

    Returns
    -------
    int
        0 when src does not reach dst.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> h = g.param("x", 1.0)
    >>> for _ in range(100):
    ...     h = h * h
    >>> g.count_paths("x", h) == 2 ** 100
    True

    See Also
    --------
    paths, top_paths
    """
    query = _query(graph, src, dst, index)
    if query.level == "tensor":
        return _tensor_between(graph, query.src, query.dst).count()
    return _element_setup(query)[1].count()


def top_paths(graph: Graph, src: Node | str, dst: Node | str, k: int, index: Any = None) -> list[Path]:
    """The k paths from src to dst with the largest contributions, without enumerating the rest.

    A best-first search from dst back to src: each partial path is ranked by the
    gradient it already carries times an upper bound on what the rest of the way
    can multiply it by (at the element level the largest product of absolute
    local derivatives, which is exact; at the tensor level the product of the
    Jacobians' spectral norms). So the answer is exactly the top of
    :func:`paths`, found after building only the paths near the top.

    Parameters
    ----------
    graph, src, dst, index
        As in :func:`paths`.
    k : int
        How many paths; fewer come back when there are fewer.

    Returns
    -------
    list of Path
        Largest first (norm at the tensor level, absolute value at the element level).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> a = g.param("a", 1.0)
    >>> h = a
    >>> for _ in range(60):  # 2**60 paths
    ...     h = h * 1.5 + h * 0.5
    >>> g.forward(); g.backward(h)
    >>> best = g.top_paths(a, h, 2, index=())
    >>> best[0].contribution == 1.5 ** 60, len(best[0].factors)
    (True, 120)

    See Also
    --------
    paths, count_paths
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise GraphError(f"k must be a non-negative int, got {k!r}")
    query = _query(graph, src, dst, index)
    if query.level == "tensor":
        between = _tensor_between(graph, query.src, query.dst)
        if not between.order or k == 0:
            return []
        seed = _gradient_at(query)
        total = _through(query, seed)
        bound = _TensorBound(graph)
        chosen = between.best(k, seed, lambda consumer, source, slot, carried: _pull(graph, consumer, slot, carried),
                              _log_norm, bound)
        found = [_tensor_path(query, nodes, keys, seed, total) for nodes, keys in chosen]
        return sorted(found, key=lambda p: -float(np.linalg.norm(p.contribution)))
    _, between = _element_setup(query)
    if not between.order or k == 0:
        return []
    arriving, total = _element_arriving(query)
    chosen = between.best(k, arriving, lambda consumer, source, weight, carried: carried * weight, _log_norm,
                          lambda u, v, weight: _log(abs(weight)))
    found = [_element_path(nodes, keys, arriving, total) for nodes, keys in chosen]
    return sorted(found, key=lambda p: -abs(p.contribution))


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _log_norm(x: Any) -> float:
    return _log(float(np.linalg.norm(x)) if isinstance(x, np.ndarray) else abs(x))


def _pull(graph: Graph, consumer: int, slot: int, carried: np.ndarray) -> np.ndarray:
    """The vjp of one argument slot of one op node: one step of a backward pass restricted to a path."""
    node = graph._nodes[consumer]
    needs = tuple(s == slot for s in range(len(node.inputs)))
    args = [graph._values[source.index] for source in node.inputs]
    pulled = rules.pull_vjp(node, carried, args, graph._values[node.index], needs)[slot]
    return np.zeros_like(args[slot], dtype=np.float64) if pulled is None else pulled


class _TensorBound:
    """log of an upper bound on how much one edge slot's vjp can enlarge a gradient's norm."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def __call__(self, source: int, consumer: int, slot: int) -> float:
        graph = self.graph
        node = graph._nodes[consumer]
        out = graph._values[consumer]
        size = out.size * graph._values[source].size
        if size > _JACOBIAN_BOUND_LIMIT:
            return math.inf
        jacobian = _edge_jacobian(graph, node, tuple(s == slot for s in range(len(node.inputs))))[slot]
        if jacobian is None:
            return -math.inf
        matrix = np.asarray(jacobian, dtype=np.float64).reshape(out.size, -1)
        norm = np.linalg.norm(matrix, 2) if size <= _SPECTRAL_NORM_LIMIT else np.linalg.norm(matrix)
        return _log(float(norm) * (1 + 1e-9))


# -- the table view -----------------------------------------------------------------------


class PathRow(NamedTuple):
    """One row of a :class:`PathTable`."""

    path: Path
    factors: tuple
    contribution: Any
    running_sum: Any


class PathTable(list):
    """Rows ``(path, factors, contribution, running_sum)`` that print as a table.

    A list of :class:`PathRow`; ``str()`` gives an aligned plain-text table and
    Jupyter shows an HTML table. Made by :func:`path_table`.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 2.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> table = dp.path_table(g.paths(x, y))
    >>> [float(row.running_sum) for row in table]
    [2.0, 4.0]
    >>> table._repr_html_().startswith('<table class="dagprop-paths"')
    True
    """

    def __init__(self, rows: Iterable[PathRow] = (), precision: int = 4) -> None:
        super().__init__(rows)
        self.precision = precision

    def _cells(self) -> list[tuple[str, str, str, str, str]]:
        cells = []
        for number, row in enumerate(self, 1):
            cells.append((str(number), _describe_route(row.path), _describe_factors(row.path, self.precision),
                          _format_number(row.contribution, self.precision),
                          _format_number(row.running_sum, self.precision)))
        return cells

    def __str__(self) -> str:
        header = ("#", "path", "factors", "contribution", "running sum")
        rows = [header, *self._cells()]
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        right = {0, 3, 4}
        lines = []
        for row in rows:
            cells = [cell.rjust(width) if c in right else cell.ljust(width)
                     for c, (cell, width) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
        lines.insert(1, "  ".join("-" * w for w in widths))
        if not self:
            lines.append("(no paths)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        cell = "padding:2px 10px;vertical-align:top"
        number_cell = f"{cell};text-align:right;white-space:nowrap"
        header = "".join(f'<th style="{cell};text-align:{"right" if h in ("#", "contribution", "running sum") else "left"}">'
                         f"{h}</th>" for h in ("#", "path", "factors", "contribution", "running sum"))
        body = []
        for cells in self._cells():
            number, route, factors, contribution, running = (html.escape(c) for c in cells)
            body.append(f'<tr><td style="{number_cell}">{number}</td>'
                        f'<td style="{cell};white-space:nowrap"><code>{route}</code></td>'
                        f'<td style="{cell}"><code>{factors}</code></td>'
                        f'<td style="{number_cell}"><code>{contribution}</code></td>'
                        f'<td style="{number_cell}"><code>{running}</code></td></tr>')
        if not body:
            body.append(f'<tr><td colspan="5" style="{cell}">(no paths)</td></tr>')
        return (f'<table class="dagprop-paths" style="border-collapse:collapse"><thead><tr>{header}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')


def path_table(paths: Iterable[Path], precision: int = 4) -> PathTable:
    """A table of paths: each path, its factors, its contribution and the running sum.

    Parameters
    ----------
    paths : iterable of Path
        From :func:`paths` or :func:`top_paths`, in the order to show.
    precision : int
        Significant digits of the numbers shown (the rows keep full precision).

    Returns
    -------
    PathTable
        A list of :class:`PathRow`; printing it gives an aligned text table, and
        Jupyter shows it as HTML. The last running sum is the total.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("add", g.op("mul", x, x, name="sq"), x, name="y")
    >>> g.forward(); g.backward(y)
    >>> print(dp.path_table(g.paths(x, y, index=())))
    #  path          factors  contribution  running sum
    -  ------------  -------  ------------  -----------
    1  x -> sq -> y  6 * 1               6            6
    2  x -> y        1                   1            7

    See Also
    --------
    paths, top_paths
    """
    rows = []
    running: Any = None
    for path in paths:
        if not all(hasattr(path, a) for a in ("nodes", "contribution", "factors", "level")):
            raise TypeError(f"path_table takes Path objects (from g.paths or g.top_paths), got {type(path).__name__}")
        running = path.contribution if running is None else running + path.contribution
        factors = path.factors if path.level == "element" else ()
        rows.append(PathRow(path, factors, path.contribution, running))
    return PathTable(rows, precision)


def _describe_route(path: Path) -> str:
    if path.level == "element" or not path.slots:
        return " -> ".join(path.nodes)
    # name the argument slot only where the same node feeds one consumer twice (x * x)
    parts = [path.nodes[0]]
    for consumer, name in itertools.zip_longest(path.nodes[1:], path._slot_names):
        parts.append(f"-[{name}]-> {consumer}" if name else f"-> {consumer}")
    return " ".join(parts)


def _describe_factors(path: Path, precision: int) -> str:
    if path.level == "element":
        return " * ".join(_format_number(f, precision) for f in path.factors) or "(none)"
    return "tensor Jacobians, see .factors" if len(path.nodes) > 1 else "(none)"


def _format_number(x: Any, precision: int = 4) -> str:
    if isinstance(x, np.ndarray) and x.ndim > 0:
        if x.size > 8:
            return f"shape {x.shape}, norm {np.linalg.norm(x):.{precision}g}"
        return np.array2string(x, precision=precision, separator=", ", floatmode="maxprec",
                               max_line_width=10_000).replace("\n", "")
    return format_number(x, precision)
