"""Gradient paths: every path from one node to another with the gradient it carries alone,
exact path counts, and the k largest paths.

Two levels share one set of algorithms (:mod:`dagprop.paths.search`):

* the **tensor** level walks the op nodes; an op that takes the same node in two
  argument slots (``x * x``) gives one path per slot, and a path's contribution is
  the backward pass restricted to that path's edge slots;
* the **element** level walks single elements (neurons) of the element graph
  (:mod:`dagprop.paths.elements`), whose edges carry the ops' local partial
  derivatives; a path's contribution is the product of its factors times the
  gradient arriving at its last element.

Either way the contributions of all paths from src to dst add up to the gradient
that reaches src through dst, which is ``src.grad`` when dst is the loss.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .. import rules, scheduler
from ..errors import BackwardError, GraphError
from .elements import MAX_SIZE, LocalDerivatives, element_name
from .search import Between, Route

if TYPE_CHECKING:
    from ..graph import Graph, Node

__all__ = ["Path", "paths", "count_paths", "top_paths"]

# Above this many entries a local Jacobian is not built just to bound a path's size.
_JACOBIAN_BOUND_LIMIT = 4_000_000
# Above this many entries the spectral norm (an SVD) is replaced by the Frobenius norm,
# a looser but still valid upper bound.
_SPECTRAL_NORM_LIMIT = 250_000


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
    slot_names : tuple of str or None
        Per edge, the consumer's input name when the source fills several of its
        slots (``x * x``), else None.

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
    slot_names: tuple[str | None, ...] = field(default=(), repr=False)

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

    @property
    def route(self) -> str:
        """The path as text, src first; where one node feeds a consumer in two slots (``x * x``),
        the slot's input name is shown on the arrow (``x -[b]-> y``)."""
        if self.level == "element" or not self.slots:
            return " -> ".join(self.nodes)
        parts = [self.nodes[0]]
        for consumer, name in itertools.zip_longest(self.nodes[1:], self.slot_names):
            parts.append(f"-[{name}]-> {consumer}" if name else f"-> {consumer}")
        return " ".join(parts)

    def __str__(self) -> str:
        return f"{self.route}: {_brief(self.contribution)}"

    def __repr__(self) -> str:
        return f"<Path {self.route} contribution={_brief(self.contribution)} share={self.share:.4g}>"


def _brief(x: Any) -> str:
    array = np.asarray(x)
    if array.ndim == 0:
        return f"{float(array):.4g}"
    if array.size > 8:
        return f"shape {array.shape}, norm {np.linalg.norm(array):.4g}"
    return np.array2string(array, precision=4, separator=", ").replace("\n", "")


def _tensor_between(graph: Graph, src: Node, dst: Node) -> Between:
    nodes = graph.nodes
    consumers: dict[int, list[tuple[int, int]]] = {n.index: [] for n in nodes}
    for node in nodes:
        for slot, source in enumerate(node.inputs):
            consumers[source.index].append((node.index, slot))

    def sources(index: int) -> Iterator[int]:
        return (s.index for s in nodes[index].inputs)

    return Between.build(src.index, dst.index, range(len(nodes)), consumers.__getitem__, sources)


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
    max_size: int | None = MAX_SIZE

    @property
    def src_element(self) -> str:
        return element_name(self.src.name, self.src_index or ())

    @property
    def dst_element(self) -> str:
        return element_name(self.dst.name, self.dst_index or ())


def _query(graph: Graph, src: Node | str, dst: Node | str, index: Any, max_size: int | None = MAX_SIZE) -> _Query:
    source, target = graph.node(src), graph.node(dst)
    if index is None:
        return _Query(graph, source, target, "tensor", max_size=max_size)
    src_index, dst_index = _split_index(index)
    src_shape, dst_shape = (_shape_of(graph, node) for node in (source, target))
    if dst_index is None:
        if int(np.prod(dst_shape)) != 1:
            raise GraphError(
                f"dst {target.name!r} has shape {dst_shape}, so an element-level path needs its element too: "
                f"pass index=(src_index, dst_index), e.g. index=({_example_index(src_shape)}, "
                f"{_example_index(dst_shape)})"
            )
        dst_index = (0,) * len(dst_shape)
    return _Query(graph, source, target, "element", _check_index(source, src_index, src_shape, "src"),
                  _check_index(target, dst_index, dst_shape, "dst"), max_size)


def _shape_of(graph: Graph, node: Node) -> tuple[int, ...]:
    value = graph.run.value(node)
    if value is None:
        raise GraphError(f"node {node.name!r} has no value, so its elements are unknown: "
                         f"run g.forward() before asking for element-level paths")
    return value.shape


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
    run = query.graph.run
    grad = run.grad(query.dst)
    if grad is None:
        raise BackwardError(
            f"no gradient has reached {query.dst.name!r}, and a path's contribution starts from it: run "
            f"g.backward(loss) first, with a loss that depends on {query.dst.name!r}"
        )
    for node in (query.src, query.dst):
        if run.value(node) is None:
            raise BackwardError(f"node {node.name!r} has no value: run g.forward() and g.backward(loss) first")
    return np.asarray(grad, dtype=np.float64)


def _through(query: _Query, seed: np.ndarray, edges: frozenset[tuple[int, int]] | None = None) -> np.ndarray:
    """The gradient reaching src from ``seed`` at dst (only along ``edges`` when given)."""
    graph = query.graph
    if query.src is query.dst:
        return seed
    run = scheduler.run_backward(graph.plan, graph.run.values, query.dst.index, seed,
                                 sources=frozenset({query.src.index}), edges=edges)
    reached = run.grads[query.src.index]
    return np.zeros_like(run.values[query.src.index], dtype=np.float64) if reached is None else reached


def _share(contribution: Any, total: Any) -> float:
    denominator = float(np.vdot(total, total))
    return float(np.vdot(contribution, total)) / denominator if denominator else math.nan


def _tensor_path(query: _Query, route: Route, seed: np.ndarray, total: np.ndarray) -> Path:
    nodes, keys = route.nodes, route.keys
    consumers = nodes[1:]
    edges = frozenset(zip(consumers, keys))
    contribution = _through(query, seed, edges)
    graph = query.graph
    every, values = graph.nodes, graph.run.values

    def factors() -> list[np.ndarray]:
        jacobians = []
        for consumer, slot in zip(consumers, keys):
            node = every[consumer]
            needs = tuple(s == slot for s in range(len(node.inputs)))
            jacobian = _edge_jacobian(values, node, needs)[slot]
            source_shape = values[node.inputs[slot].index].shape
            jacobians.append(np.zeros(values[consumer].shape + source_shape) if jacobian is None else jacobian)
        return jacobians

    slot_names = []
    for source, consumer, slot in zip(nodes, consumers, keys):
        node = every[consumer]
        twice = sum(1 for s in node.inputs if s.index == source) > 1
        slot_names.append(rules.slot_name(node, slot) if twice else None)
    return Path(tuple(every[i].name for i in nodes), contribution, _share(contribution, total),
                "tensor", tuple(keys), factors, tuple(slot_names))


def _edge_jacobian(values: list, node: Node, needs: tuple[bool, ...]) -> tuple[np.ndarray | None, ...]:
    args = [values[source.index] for source in node.inputs]
    return rules.local_jacobians(node, args, values[node.index], needs)


def _element_path(route: Route, derivatives: LocalDerivatives, arriving: float, total: float) -> Path:
    nodes, factors = tuple(derivatives.name(element) for element in route.nodes), route.keys
    contribution = math.prod(factors) * arriving
    return Path(nodes, contribution, _share(contribution, total), "element", (None,) * len(factors),
                tuple(factors))


def _element_setup(query: _Query) -> tuple[LocalDerivatives, Between[int]]:
    """The local derivatives between src and dst, and the part of the element graph between
    the src and dst elements, whose elements are numbered (:meth:`LocalDerivatives.name`)."""
    tensors = _tensor_between(query.graph, query.src, query.dst)
    every = query.graph.nodes
    if not tensors.order:
        return LocalDerivatives(query.graph.run, [], []), Between(-1, -1, [], {}, {})
    derivatives = LocalDerivatives.build(query.graph.run, [every[i] for i in tensors.order], max_size=query.max_size)
    src = derivatives.element(query.src, query.src_index or ())
    dst = derivatives.element(query.dst, query.dst_index or ())
    return derivatives, derivatives.between(src, dst)


def _element_arriving(query: _Query) -> tuple[float, float]:
    """The gradient at the dst element and the total that reaches the src element through dst."""
    seed = _gradient_at(query)
    dst_shape = np.asarray(query.graph.run.value(query.dst)).shape
    arriving = float(np.broadcast_to(seed, dst_shape)[query.dst_index])
    one_hot = np.zeros(dst_shape)
    one_hot[query.dst_index] = arriving
    total = float(_through(query, one_hot)[query.src_index])
    return arriving, total


# -- public functions ---------------------------------------------------------------------


def paths(graph: Graph, src: Node | str, dst: Node | str, index: Any = None, *,
          limit: int = 10_000, max_size: int | None = MAX_SIZE) -> list[Path]:
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
    max_size : int or None
        At the element level, the ``max_size`` of the element graph built between
        src and dst (see :func:`element_graph`).

    Returns
    -------
    list of Path
        Sorted by the norm (tensor level) or absolute value (element level) of the
        contribution, largest first; paths of equal size in a fixed order (by the
        position of each edge among its consumer's inputs, from dst back to src),
        the order :func:`top_paths` breaks ties in. Empty when src does not reach
        dst. The contributions add up to the gradient that reaches src through dst,
        which is ``src.grad`` (or ``src.grad[index]``) when dst is the loss.

    Raises
    ------
    GraphError
        More than ``limit`` paths (use :func:`count_paths` and :func:`top_paths`),
        an index out of range, a dst with several elements and no index for it, or
        an element graph beyond ``max_size``.
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
    >>> paths(g, x, L, index=((1,), (1,)), max_size=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: the element graph would have 8 elements (largest nodes: ...), more than max_size=4; ...

    See Also
    --------
    count_paths, top_paths, path_table, element_graph
    """
    query = _query(graph, src, dst, index, max_size)
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise GraphError(f"limit must be a non-negative int, got {limit!r}")
    if query.level == "tensor":
        between = _tensor_between(graph, query.src, query.dst)
        _check_limit(query, between.count(), limit)
        if not between.order:
            return []
        seed = _gradient_at(query)
        total = _through(query, seed)
        return _largest_first([(_tensor_path(query, route, seed, total), route) for route in between.walk()])
    derivatives, between = _element_setup(query)
    _check_limit(query, between.count(), limit)
    if not between.order:
        return []
    arriving, element_total = _element_arriving(query)
    return _largest_first([(_element_path(route, derivatives, arriving, element_total), route)
                           for route in between.walk()])


def _size(path: Path) -> float:
    """What paths are ranked by: the norm of the contribution, NaN above everything."""
    size = float(np.linalg.norm(path.contribution)) if path.level == "tensor" else abs(path.contribution)
    return math.inf if size != size else size


def _largest_first(found: list[tuple[Path, Route]]) -> list[Path]:
    found.sort(key=lambda pair: (-_size(pair[0]), pair[1].order))
    return [path for path, _ in found]


def _check_limit(query: _Query, count: int, limit: int) -> None:
    if count > limit:
        where = (f"{query.src.name!r} to {query.dst.name!r}" if query.level == "tensor"
                 else f"{query.src_element!r} to {query.dst_element!r}")
        raise GraphError(
            f"there are {count:,} {query.level}-level paths from {where}, more than limit={limit:,}: use "
            f"g.count_paths(...) to count them or g.top_paths(..., k) for the k largest, or raise limit="
        )


def count_paths(graph: Graph, src: Node | str, dst: Node | str, index: Any = None, *,
                max_size: int | None = MAX_SIZE) -> int:
    """The exact number of paths from src to dst, without listing them.

    Dynamic programming over a topological order with Python integers, so the
    count never overflows and costs time linear in the graph's size. At the tensor
    level it needs only the graph's structure; at the element level (``index``
    given, as in :func:`paths`) the values of a forward pass, since edges with a
    zero derivative do not count; ``max_size`` is as in :func:`paths`.

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
    query = _query(graph, src, dst, index, max_size)
    if query.level == "tensor":
        return _tensor_between(graph, query.src, query.dst).count()
    return _element_setup(query)[1].count()


def top_paths(graph: Graph, src: Node | str, dst: Node | str, k: int, index: Any = None, *,
              max_steps: int | None = None, max_size: int | None = MAX_SIZE) -> list[Path]:
    """The k paths from src to dst with the largest contributions, without enumerating the rest.

    At the element level a path's contribution is the product of its local
    derivatives times one number, so dynamic programming over the element graph in
    topological order keeps the k best partial paths at each element and is exact
    in O(edges * k log k) time, however many paths there are.

    At the tensor level contributions are arrays pulled back through vjps, so a
    best-first search runs from dst back to src: each partial path is ranked by the
    gradient it already carries times an upper bound on what the rest of the way can
    multiply it by (the product of the Jacobians' spectral norms). A path is taken
    only when nothing left can beat it, so the answer is the top of :func:`paths`;
    contributions within a relative 1e-12 per edge count as ties. Ties are explored
    depth first, so k tied paths (``c = c + c`` doubled 64 times) cost about k times
    the depth. The search builds at most ``max_steps`` partial paths (one vjp each).

    Paths of equal size come back in the order :func:`paths` lists them. At the
    element level the result is exactly ``paths(...)[:k]``; at the tensor level too
    when the ties are symmetric (as in ``c + c``), but when several paths of one size
    straddle the k-th place, another of them may be the one returned.

    Parameters
    ----------
    graph, src, dst, index, max_size
        As in :func:`paths`.
    k : int
        How many paths; fewer come back when there are fewer.
    max_steps : int, optional
        Tensor level: the most partial paths the search may build before it gives
        up (default: 100 per path asked for per edge between src and dst).

    Returns
    -------
    list of Path
        Largest first (norm at the tensor level, absolute value at the element level).

    Raises
    ------
    GraphError
        Tensor level: the search reached ``max_steps`` before it could prove which
        paths are largest (the bounds are too loose to prune with); also as for
        :func:`paths`.

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
    >>> c = g.param("c", 1.0); d = c
    >>> for _ in range(64):  # 2**64 paths, all carrying 1
    ...     d = d + d
    >>> g.forward(); g.backward(d)
    >>> [float(p.contribution) for p in g.top_paths(c, d, 3)], g.top_paths(c, d, 1)[0].slots[-3:]
    ([1.0, 1.0, 1.0], (0, 0, 0))
    >>> top_paths(g, c, d, 3, max_steps=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: top_paths gave up after building 10 partial paths from ... back to 'c' (max_steps=10) ...

    See Also
    --------
    paths, count_paths
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise GraphError(f"k must be a non-negative int, got {k!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer))
                                  or max_steps < 1):
        raise GraphError(f"max_steps must be a positive int or None, got {max_steps!r}")
    query = _query(graph, src, dst, index, max_size)
    if query.level == "tensor":
        between = _tensor_between(graph, query.src, query.dst)
        if not between.order or k == 0:
            return []
        seed = _gradient_at(query)
        total = _through(query, seed)
        steps = max_steps if max_steps is not None else _STEPS_PER_PATH_AND_EDGE * int(k) * (between.edge_count + 1)

        def too_many(built: int) -> GraphError:
            return GraphError(
                f"top_paths gave up after building {built:,} partial paths from {query.dst.name!r} back to "
                f"{query.src.name!r} (max_steps={steps:,}) without proving which {k} are largest (the norm bounds "
                f"of these Jacobians are too loose to prune with). Ask for fewer paths, list them all with "
                f"paths() if count_paths() is small, or pass a larger max_steps= to dagprop.paths.top_paths")

        chosen = between.best(int(k), seed, _Pull(graph), _log_norm, _TensorBound(graph), steps, too_many)
        return _largest_first([(_tensor_path(query, route, seed, total), route) for route in chosen])
    derivatives, between = _element_setup(query)
    if not between.order or k == 0:
        return []
    arriving, element_total = _element_arriving(query)
    return _largest_first([(_element_path(route, derivatives, arriving, element_total), route)
                           for _, route in between.best_products(int(k))])


# The default budget of the tensor-level search, per path asked for and per edge slot between src and dst.
_STEPS_PER_PATH_AND_EDGE = 100


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _log_norm(x: Any) -> float:
    return _log(float(np.linalg.norm(x)) if isinstance(x, np.ndarray) else abs(x))


class _Pull:
    """The vjp of one argument slot of one op node: one step of a backward pass restricted to a path."""

    def __init__(self, graph: Graph) -> None:
        self.nodes = graph.nodes
        self.values = graph.run.values

    def __call__(self, consumer: int, source: int, slot: int, carried: np.ndarray) -> np.ndarray:
        node, values = self.nodes[consumer], self.values
        needs = tuple(s == slot for s in range(len(node.inputs)))
        args = [values[j.index] for j in node.inputs]
        pulled = rules.pull_vjp(node, carried, args, values[node.index], needs)[slot]
        return np.zeros_like(args[slot], dtype=np.float64) if pulled is None else pulled


class _TensorBound:
    """log of an upper bound on how much one edge slot's vjp can enlarge a gradient's norm."""

    def __init__(self, graph: Graph) -> None:
        self.nodes = graph.nodes
        self.values = graph.run.values

    def __call__(self, source: int, consumer: int, slot: int) -> float:
        node = self.nodes[consumer]
        out = self.values[consumer]
        size = out.size * self.values[source].size
        if size > _JACOBIAN_BOUND_LIMIT:
            return math.inf
        jacobian = _edge_jacobian(self.values, node, tuple(s == slot for s in range(len(node.inputs))))[slot]
        if jacobian is None:
            return -math.inf
        matrix = np.asarray(jacobian, dtype=np.float64).reshape(out.size, -1)
        norm = np.linalg.norm(matrix, 2) if size <= _SPECTRAL_NORM_LIMIT else np.linalg.norm(matrix)
        return _log(float(norm))  # rounding is absorbed by the search's tolerance for ties
