"""Path algorithms on one abstract DAG, shared by the tensor and the element level: the part
of a DAG between two nodes, exact path counts, every path, and the k best paths."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Iterable, Iterator, TypeVar

__all__ = ["Between"]

# Slack added to each edge's log-bound so that rounding in the exact products can
# never push a path above the bound that ranked it.
_BOUND_SLACK = 1e-9

N = TypeVar("N", bound=Hashable)  # a node: a node index at the tensor level, an element name at the element level


@dataclass
class Between(Generic[N]):
    """The part of a DAG lying on some path from src to dst, as plain adjacency lists.

    ``succ[u]`` and ``pred[v]`` hold ``(neighbour, key)`` pairs, one per edge
    (parallel edges, such as the two slots of ``x * x``, have different keys);
    ``order`` is a topological order of the nodes.
    """

    src: N
    dst: N
    order: list[N]
    succ: dict[N, list[tuple[N, Any]]]
    pred: dict[N, list[tuple[N, Any]]]

    @classmethod
    def build(cls, src: N, dst: N, order: Iterable[N], successors: Callable[[N], Iterable[tuple[N, Any]]],
              predecessors: Callable[[N], Iterable[N]]) -> Between[N]:
        below = _reach(dst, predecessors)
        above = _reach(src, lambda u: (v for v, _ in successors(u)))
        keep = below & above
        kept = [u for u in order if u in keep]
        succ = {u: [(v, key) for v, key in successors(u) if v in keep] for u in kept}
        pred: dict[N, list[tuple[N, Any]]] = {u: [] for u in kept}
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

    def walk(self) -> Iterator[tuple[tuple[N, ...], tuple[Any, ...]]]:
        """Every path as (nodes, edge keys), depth first, iteratively (no recursion limit)."""
        if not self.order:
            return
        if self.src == self.dst:
            yield (self.src,), ()
            return
        nodes: list[N] = [self.src]
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

    def best(self, k: int, seed: Any, extend: Callable[[N, N, Any, Any], Any], log_size: Callable[[Any], float],
             log_bound: Callable[[N, N, Any], float]) -> list[tuple[tuple[N, ...], tuple[Any, ...]]]:
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
        # a partial path is a chain (node, edge key, the chain toward dst), ended by None
        queue: list[tuple[float, int, N, Any, Any]] = [
            (-_rank(log_size(seed) + reach[self.dst]), next(tie), self.dst, (self.dst, None, None), seed)]
        found: list[Any] = []
        while queue and len(found) < k:
            _, _, head, chain, carried = heapq.heappop(queue)
            if head == self.src:
                found.append(chain)
                continue
            for source, key in self.pred[head]:
                pulled = extend(head, source, key, carried)
                rank = _rank(log_size(pulled) + reach[source])
                heapq.heappush(queue, (-rank, next(tie), source, (source, key, chain), pulled))
        results: list[tuple[tuple[N, ...], tuple[Any, ...]]] = []
        for chain in found:
            nodes: list[N] = []
            keys: list[Any] = []
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


def _reach(start: N, neighbours: Callable[[N], Iterable[N]]) -> set[N]:
    seen = {start}
    stack = [start]
    while stack:
        for v in neighbours(stack.pop()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen
