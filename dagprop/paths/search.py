"""Path algorithms on one abstract DAG, shared by the tensor and the element level: the part
of a DAG between two nodes, exact path counts, every path, and the k best paths."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Iterable, Iterator, NamedTuple, TypeVar

__all__ = ["Between", "Route", "TOLERANCE"]

#: Two contributions within this relative difference per edge of the longest path count as a
#: tie for the tensor-level search: rounding in the bounds and the pulled arrays must not turn
#: a tie into a strict order that sends the search breadth-first through every path.
TOLERANCE = 1e-12

N = TypeVar("N", bound=Hashable)  # a node: a node index at the tensor level, an element name at the element level


class Route(NamedTuple):
    """One path: its nodes and edge keys, src first, and ``order``, the position of each edge
    among its consumer's incoming edges, dst first. ``order`` breaks ties between paths of
    equal size the same way everywhere: :meth:`Between.walk` lists paths in that order."""

    nodes: tuple
    keys: tuple
    order: tuple[int, ...]


@dataclass
class Between(Generic[N]):
    """The part of a DAG lying on some path from src to dst, as plain adjacency lists.

    ``succ[u]`` and ``pred[v]`` hold ``(neighbour, key)`` pairs, one per edge
    (parallel edges, such as the two slots of ``x * x``, have different keys);
    ``order`` is a topological order of the nodes. ``built`` counts the partial paths
    the last search built: the work it did.
    """

    src: N
    dst: N
    order: list[N]
    succ: dict[N, list[tuple[N, Any]]]
    pred: dict[N, list[tuple[N, Any]]]
    built: int = 0

    @classmethod
    def build(cls, src: N, dst: N, order: Iterable[N], successors: Callable[[N], Iterable[tuple[N, Any]]],
              predecessors: Callable[[N], Iterable[N]]) -> Between[N]:
        below = _reach(dst, predecessors)
        above = _reach(src, lambda u: (v for v, _ in successors(u)))
        keep = below & above
        kept = [u for u in order if u in keep]
        return cls.from_succ(src, dst, kept, {u: [(v, key) for v, key in successors(u) if v in keep] for u in kept})

    @classmethod
    def from_succ(cls, src: N, dst: N, order: list[N], succ: dict[N, list[tuple[N, Any]]]) -> Between[N]:
        """The part between src and dst already found: its nodes in a topological order and,
        per node, its edges ``(neighbour, key)`` within the part."""
        pred: dict[N, list[tuple[N, Any]]] = {u: [] for u in order}
        for u in order:
            for v, key in succ[u]:
                pred[v].append((u, key))
        return cls(src, dst, order, succ, pred)

    @property
    def edge_count(self) -> int:
        return sum(len(edges) for edges in self.succ.values())

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

    def walk(self) -> Iterator[Route]:
        """Every path, depth first from dst back to src (so in ``Route.order``), iteratively."""
        if not self.order:
            return
        if self.src == self.dst:
            yield Route((self.src,), (), ())
            return
        nodes: list[N] = [self.dst]
        keys: list[Any] = []
        positions: list[int] = []
        stack = [iter(enumerate(self.pred[self.dst]))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                nodes.pop()
                if keys:
                    keys.pop()
                    positions.pop()
                continue
            position, (u, key) = step
            nodes.append(u)
            keys.append(key)
            positions.append(position)
            if u == self.src:
                yield Route(tuple(reversed(nodes)), tuple(reversed(keys)), tuple(positions))
                nodes.pop()
                keys.pop()
                positions.pop()
            else:
                stack.append(iter(enumerate(self.pred[u])))

    def best_products(self, k: int) -> list[tuple[float, Route]]:
        """The k paths whose products of edge keys (numbers) are largest in absolute value, exactly.

        Dynamic programming in topological order: each node keeps the k best partial
        paths from src, and a path's best extensions start from its node's best partial
        paths, since multiplying by the same numbers keeps their order. Ties go by
        ``Route.order``. Costs O(edges * k log k) and keeps at most k partial paths per
        node, however many paths there are. Products are formed src first, as
        ``math.prod`` of the factors would.
        """
        self.built = 0
        if not self.order or k <= 0:
            return []
        # a partial path is a chain (node, edge key, position in the node's pred list, the chain toward src)
        best: dict[N, list[tuple[float, Any]]] = {self.src: [(1.0, (self.src, None, None, None))]}
        for u in self.order:
            if u == self.src:
                continue
            candidates = []
            for position, (v, key) in enumerate(self.pred[u]):
                for rank, (product, chain) in enumerate(best[v]):
                    extended = product * key
                    # (position, rank) is unique, so the comparison never reaches the chain
                    candidates.append((_first(abs(extended)), position, rank, extended, (u, key, position, chain)))
            self.built += len(candidates)
            best[u] = [(product, chain) for _, _, _, product, chain in heapq.nsmallest(k, candidates)]
        return [(product, _route(chain, built_from_src=True)) for product, chain in best[self.dst]]

    def best(self, k: int, seed: Any, extend: Callable[[N, N, Any, Any], Any], log_size: Callable[[Any], float],
             log_bound: Callable[[N, N, Any], float], max_steps: int,
             too_many: Callable[[int], Exception]) -> list[Route]:
        """The k paths whose carried value is largest, by best-first search from dst back to src.

        ``extend(consumer, source, key, carried)`` pulls the value carried at the
        consumer back along one edge; ``log_size`` measures it; ``log_bound(u, v,
        key)`` bounds from above how much an edge can enlarge it. A partial path is
        ranked by its carried size plus the best bound of any way from src to its
        head, so a finished path leaves the queue only when nothing left can beat it
        (by more than :data:`TOLERANCE` per edge): the result is the exact top, and
        only paths near the top are built. Among partial paths of equal rank the one
        that has come furthest goes first, then ``Route.order``: ties are explored
        depth first, so k tied paths cost about k times the depth, not every path.

        More than ``max_steps`` partial paths are never built: ``too_many(steps)`` is
        raised instead.
        """
        self.built = 0
        if not self.order or k <= 0:
            return []
        reach = {u: -math.inf for u in self.order}
        longest = dict.fromkeys(self.order, 0)
        reach[self.src] = 0.0
        for u in self.order:
            if reach[u] == -math.inf:
                continue
            for v, key in self.succ[u]:
                reach[v] = max(reach[v], reach[u] + log_bound(u, v, key))
                longest[v] = max(longest[v], longest[u] + 1)
        width = TOLERANCE * (longest[self.dst] + 1)

        def rank(carried: Any, head: N) -> float:
            value = log_size(carried) + reach[head]
            if value != value:
                return -math.inf  # a NaN somewhere must not corrupt the heap: rank it first, visibly
            return -math.floor(value / width) if math.isfinite(value) else -value

        tie = itertools.count()
        # a partial path is a chain (node, edge key, the edge's position among the next node's preds,
        # the chain toward dst)
        queue: list[tuple[float, int, int, int, N, Any, Any]] = [
            (rank(seed, self.dst), 0, 0, next(tie), self.dst, (self.dst, None, None, None), seed)]
        found: list[Route] = []
        while queue and len(found) < k:
            _, taken, _, _, head, chain, carried = heapq.heappop(queue)
            if head == self.src:
                found.append(_route(chain, built_from_src=False))
                continue
            for position, (source, key) in enumerate(self.pred[head]):
                if self.built >= max_steps:
                    raise too_many(self.built)
                self.built += 1
                pulled = extend(head, source, key, carried)
                heapq.heappush(queue, (rank(pulled, source), taken - 1, position, next(tie), source,
                                       (source, key, position, chain), pulled))
        return found


def _first(magnitude: float) -> float:
    """A sort key putting larger magnitudes first and NaN before everything."""
    return -math.inf if magnitude != magnitude else -magnitude


def _route(chain: Any, built_from_src: bool) -> Route:
    """A chain of links (node, edge key, position, next link) as a Route. A chain built from src
    starts at dst and links back toward src; one built from dst starts at src."""
    nodes, keys, positions = [], [], []
    while chain is not None:
        node, key, position, chain = chain
        nodes.append(node)
        if chain is not None:
            keys.append(key)
            positions.append(position)
    if built_from_src:  # read from dst: nodes and keys turn round, positions are dst first already
        return Route(tuple(reversed(nodes)), tuple(reversed(keys)), tuple(positions))
    return Route(tuple(nodes), tuple(keys), tuple(reversed(positions)))


def _reach(start: N, neighbours: Callable[[N], Iterable[N]]) -> set[N]:
    seen = {start}
    stack = [start]
    while stack:
        for v in neighbours(stack.pop()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen
