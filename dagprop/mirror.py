"""The networkx mirror of a graph: a ``MultiDiGraph`` that can add a node with its edges, and
sort itself, at the speed of plain dicts.

networkx's public calls check and normalise every argument and clear a cache per call;
for a node known to be new, whose sources are known to be there, that costs more than
the rest of building a dagprop node (issue 15). The two methods here write the same
dicts those calls write, so networkx's algorithms see exactly the graph they would build.
"""

from __future__ import annotations

from typing import Any, Iterable

import networkx as nx

__all__ = ["Mirror"]


class Mirror(nx.MultiDiGraph):
    """A ``networkx.MultiDiGraph`` with a fast way in for new nodes and a fast topological order.

    Examples
    --------
    >>> m = Mirror()
    >>> m.add_new_node("x", {"kind": "param"}, ())
    >>> m.add_new_node("y", {"kind": "op"}, ("x", "x"))
    >>> sorted(m.edges(keys=True, data="arg")), m.topological_names()
    ([('x', 'y', 0, 0), ('x', 'y', 1, 1)], ['x', 'y'])
    """

    def add_new_node(self, name: str, attributes: dict[str, Any], sources: Iterable[str]) -> None:
        """Add the node ``name`` (not in the graph yet) with ``attributes``, and one edge per
        argument slot from each of ``sources`` (already in the graph), keyed 0, 1... per pair of
        nodes and with attribute ``arg`` the slot: what ``add_node`` and ``add_edge`` would give."""
        succ, incoming = self._succ, self.adjlist_inner_dict_factory()
        self._node[name] = attributes
        succ[name], self._pred[name] = self.adjlist_inner_dict_factory(), incoming
        for slot, source in enumerate(sources):
            keys = incoming.get(source)
            if keys is None:  # the first edge of this pair: one key dict, shared by both sides
                keys = incoming[source] = succ[source][name] = self.edge_key_dict_factory()
            keys[len(keys)] = {"arg": slot}  # a new node's pairs have keys 0, 1...: add_edge's own
        cache = getattr(self, "__networkx_cache__", None)  # as networkx's own _clear_cache does
        if cache:
            cache.clear()

    def topological_names(self) -> list[str]:
        """The nodes in the order ``networkx.topological_sort`` gives, by its algorithm (generations
        of nodes whose sources are all placed), on the adjacency dicts instead of its views.

        Raises ``networkx.NetworkXUnfeasible`` when the graph has a cycle.
        """
        succ, pred = self._succ, self._pred
        waiting: dict[str, int] = {}  # node -> edges from nodes not placed yet
        ready = []
        for name in succ:
            sources = pred[name]
            if sources:
                waiting[name] = sum([len(keys) for keys in sources.values()])
            else:
                ready.append(name)
        names: list[str] = []
        while ready:
            generation, ready = ready, []
            for name in generation:
                for child, keys in succ[name].items():
                    left = waiting[child] - len(keys)
                    if left:
                        waiting[child] = left
                    else:
                        del waiting[child]
                        ready.append(child)
            names.extend(generation)
        if waiting:
            raise nx.NetworkXUnfeasible("Graph contains a cycle.")
        return names
