"""The networkx mirror of a graph: a ``MultiDiGraph`` that can add new nodes with their edges
at the speed of plain dicts.

networkx's public calls check and normalise every argument and clear a cache per call;
for a node known to be new, whose sources are known to be there, that costs more than
the rest of building a dagprop node (issue 15). The method here writes the same
dicts those calls write, so networkx's algorithms see exactly the graph they would build.
"""

from __future__ import annotations

from typing import Any, Iterable

import networkx as nx

__all__ = ["Mirror"]


class Mirror(nx.MultiDiGraph):
    """A ``networkx.MultiDiGraph`` with a fast way in for new nodes.

    Examples
    --------
    >>> m = Mirror()
    >>> m.add_new_nodes([("x", {"kind": "param"}, ()), ("y", {"kind": "op"}, ("x", "x"))])
    >>> sorted(m.edges(keys=True, data="arg")), list(nx.topological_sort(m))
    ([('x', 'y', 0, 0), ('x', 'y', 1, 1)], ['x', 'y'])
    """

    def add_new_nodes(self, entries: Iterable[tuple[str, dict[str, Any], Iterable[str]]]) -> None:
        """Add each ``(name, attributes, sources)`` of ``entries``, in order: the node ``name`` (not
        in the graph yet) with ``attributes``, and one edge per argument slot from each of ``sources``
        (in the graph, or added before it), keyed 0, 1... per pair of nodes and with attribute ``arg``
        the slot: what ``add_node`` and ``add_edge`` would give.

        Examples
        --------
        >>> m = Mirror()
        >>> m.add_new_nodes([("x", {}, ()), ("y", {}, ("x",)), ("z", {}, ("x", "y"))])
        >>> sorted(m.edges(keys=True, data="arg"))
        [('x', 'y', 0, 0), ('x', 'z', 0, 0), ('y', 'z', 0, 1)]
        """
        # networkx's factories for these dicts are dict itself (Mirror keeps them): literals are faster
        node, succ, pred = self._node, self._succ, self._pred
        for name, attributes, sources in entries:
            incoming: dict[str, dict] = {}
            node[name] = attributes
            succ[name], pred[name] = {}, incoming
            for slot, source in enumerate(sources):
                keys = incoming.get(source)
                if keys is None:  # the first edge of this pair: one key dict, shared by both sides
                    keys = incoming[source] = succ[source][name] = {}
                keys[len(keys)] = {"arg": slot}  # a new node's pairs have keys 0, 1...: add_edge's own
        cache = getattr(self, "__networkx_cache__", None)  # as networkx's own _clear_cache does
        if cache:
            cache.clear()
