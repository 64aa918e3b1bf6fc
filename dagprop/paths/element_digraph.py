"""The networkx graph :func:`~dagprop.paths.element_graph` returns: a ``DiGraph`` that takes many
new nodes and edges at once at the speed of plain dicts.

An element graph has hundreds of thousands of edges (mlp_small's: 620,000), and
``add_edges_from`` normalises and copies every edge's attributes, which cost seconds
(issue 15). The two methods here write the same dicts ``add_nodes_from`` and
``add_edges_from`` write, in the same order, so networkx sees exactly the graph they
would build (as :class:`dagprop.mirror.Mirror` does for the graph of nodes).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import networkx as nx
import numpy as np

__all__ = ["ElementGraph"]


class ElementGraph(nx.DiGraph):
    """A ``networkx.DiGraph`` with a fast way in for many new nodes and edges.

    Examples
    --------
    >>> import numpy as np
    >>> eg = ElementGraph()
    >>> eg.add_new_nodes(["x[0]", "x[1]", "y"], [{"value": 1.0}, {"value": 2.0}, {"value": 3.0}])
    >>> eg.add_new_edges(["x[0]", "x[1]"], ["y"], np.array([1, 0]), np.array([0, 0]),
    ...                  [{"weight": 4.0}, {"weight": 2.0}])
    >>> list(eg.edges(data="weight")), list(eg.predecessors("y"))
    ([('x[0]', 'y', 2.0), ('x[1]', 'y', 4.0)], ['x[1]', 'x[0]'])
    """

    def add_new_nodes(self, names: Iterable[str], attributes: Iterable[dict[str, Any]]) -> None:
        """Add the nodes ``names`` (none in the graph yet, no two alike), each with its
        ``attributes`` dict, kept as it is: what ``add_nodes_from`` would give."""
        node, succ, pred = self._node, self._succ, self._pred
        for name, data in zip(names, attributes, strict=True):
            node[name] = data
            succ[name] = {}
            pred[name] = {}
        self._forget_cached_results()

    def add_new_edges(self, sources: Sequence[str], targets: Sequence[str], source_at: np.ndarray,
                      target_at: np.ndarray, attributes: list[dict[str, Any]]) -> None:
        """Add edge e from ``sources[source_at[e]]`` to ``targets[target_at[e]]`` with the
        ``attributes[e]`` dict, kept as it is: what ``add_edges_from`` would give for edges that
        are not in the graph yet, between nodes that are, none listed twice."""
        successors = _objects([self._succ[name] for name in sources])[source_at].tolist()
        predecessors = _objects([self._pred[name] for name in targets])[target_at].tolist()
        source_names = _objects(sources)[source_at].tolist()
        target_names = _objects(targets)[target_at].tolist()
        # succ and pred written in two passes: each dict still gets its keys in edge order
        for outgoing, target, data in zip(successors, target_names, attributes, strict=True):
            outgoing[target] = data
        for incoming, source, data in zip(predecessors, source_names, attributes, strict=True):
            incoming[source] = data
        self._forget_cached_results()

    def _forget_cached_results(self) -> None:
        cache = getattr(self, "__networkx_cache__", None)  # as networkx's own _clear_cache does
        if cache:
            cache.clear()


def _objects(items: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``items``, to pick many of them by an index array in C."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array
