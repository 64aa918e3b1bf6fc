"""Clusters of a diagram: the scopes of a graph and the composites opened in it, drawn as boxes
inside boxes, and the short titles of the nodes inside them. Shared by the tensor-level and
element-level drawings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from ..graph import Graph
from . import quoting
from .style import CAPTION, CLUSTER_COLOUR

if TYPE_CHECKING:
    from ..expand import Expansion


SCOPE_COLOUR = "#2f6f8f"
SCOPE_FILLS = ("#f3f8fb", "#e6f0f6")  # alternating by depth, so a scope inside a scope stands out

ScopePath = tuple[str, ...]
# a cluster of a diagram: ("scope", path) or ("expansion", name of the opened composite)
ClusterKey = tuple[str, Any]
TOP: ClusterKey = ("scope", ())


def scope_text(scope: ScopePath) -> str:
    """A scope as diagrams and ``collapse=`` write it: its names joined by "/".

    Examples
    --------
    >>> scope_text(("layer1", "attention")), scope_text(())
    ('layer1/attention', '')
    """
    return "/".join(scope)


def owner_chain(tensor: str, owner_of: Mapping[str, str], expansions: Mapping[str, Expansion]) -> list[str]:
    """The opened composites holding ``tensor``, innermost first (a circuit's output sits in its
    own cluster, which sits in its parent's)."""
    chain = []
    owner = owner_of.get(tensor)
    if owner == tensor:
        owner = expansions[tensor].parent
    while owner is not None:
        chain.append(owner)
        owner = expansions[owner].parent
    return chain


def short_names(tensors: Iterable[str], owner_of: Mapping[str, str], expansions: Mapping[str, Expansion]
                ) -> dict[str, str]:
    """How each of ``tensors`` is titled in one diagram: without the prefix of the opened composite
    that holds it (``softmax_1.sum_1`` as ``sum_1`` inside the cluster of ``softmax_1``), unless
    another tensor of the diagram would get the same title; then with as many of the
    composites' names as it takes to tell them apart, up to the full name.

    Examples
    --------
    >>> from dagprop.expand import Expansion
    >>> opened = {"softmax_1": Expansion("softmax_1", "softmax", ("softmax_1.sum_1", "softmax_1.exp_1", "softmax_1"))}
    >>> owner = {name: "softmax_1" for name in opened["softmax_1"].nodes}
    >>> short_names(["sum_1", "softmax_1.sum_1", "softmax_1.exp_1", "softmax_1"], owner, opened)
    {'sum_1': 'sum_1', 'softmax_1.sum_1': 'softmax_1.sum_1', 'softmax_1.exp_1': 'exp_1', 'softmax_1': 'softmax_1'}
    """
    choices: dict[str, list[str]] = {}
    for tensor in tensors:
        titles = [tensor[len(owner) + 1:] for owner in owner_chain(tensor, owner_of, expansions)
                  if tensor.startswith(owner + ".")]
        choices[tensor] = list(dict.fromkeys(titles + [tensor]))
    level = dict.fromkeys(choices, 0)
    while True:
        holders: dict[str, list[str]] = {}
        for tensor, k in level.items():
            holders.setdefault(choices[tensor][k], []).append(tensor)
        longer = [tensor for same in holders.values() if len(same) > 1 for tensor in same
                  if level[tensor] < len(choices[tensor]) - 1]
        if not longer:  # full names are unique, so this ends
            return {tensor: choices[tensor][k] for tensor, k in level.items()}
        for tensor in longer:
            level[tensor] += 1


def drawn_scopes(source: Graph, drawn: Graph) -> dict[str, ScopePath]:
    """The scope of each node of ``drawn``, ``source`` or its opened copy: a circuit's nodes are in
    the scope of the composite node they open.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0])
    >>> with g.scope("head"):
    ...     s = x.softmax()
    >>> scopes = drawn_scopes(g, g.expanded(["softmax"]))
    >>> scopes["x"], scopes["softmax_1"], scopes["softmax_1.exp_1"]
    ((), ('head',), ('head',))
    """
    if drawn is source:
        return {node.name: node.scope for node in drawn}
    expansions: Mapping[str, Expansion] = getattr(drawn, "expansions", {}) or {}
    owner_of = {name: e.name for e in expansions.values() for name in e.nodes}
    scopes = {}
    for node in drawn:
        chain = owner_chain(node.name, owner_of, expansions)
        origin = chain[-1] if chain and node.name not in source else node.name
        scopes[node.name] = node.scope or (source[origin].scope if origin in source else ())
    return scopes


class Clusters:
    """Clusters inside clusters: a scope holds the scopes inside it, the composites opened at its
    nodes and its nodes; an opened composite holds the composites opened inside it and its nodes.

    ``owner_of`` maps names (nodes, or tensors at the element level) to the opened composite
    holding them, ``scopes`` to their scope, ``order`` to their positions (sibling clusters are
    drawn in the order of their first member); ``titles`` gives opened composites' titles, and
    ``filled`` says whether clusters are shaded.
    """

    def __init__(self, expansions: Mapping[str, Expansion], owner_of: Mapping[str, str],
                 scopes: Mapping[str, ScopePath], order: Mapping[str, int], titles: Mapping[str, str],
                 filled: bool) -> None:
        self.expansions, self.owner_of, self.scopes, self.order = expansions, owner_of, scopes, order
        self.titles, self.filled = titles, filled

    def home(self, name: str) -> ClusterKey:
        """The cluster a node (or tensor) is drawn in: its opened composite's, else its scope's."""
        owner = self.owner_of.get(name)
        return ("expansion", owner) if owner is not None else ("scope", self.scopes.get(name, ()))

    def parent(self, key: ClusterKey) -> ClusterKey:
        """The cluster holding cluster ``key``: a scope's enclosing scope; an opened composite's parent
        composite, or the scope of the node it opens."""
        kind, what = key
        if kind == "scope":
            return ("scope", what[:-1])
        parent = self.expansions[what].parent
        return ("expansion", parent) if parent is not None else ("scope", self.scopes.get(what, ()))

    def rank(self, key: ClusterKey) -> tuple[int, int]:
        kind, what = key
        if kind == "expansion":
            return (0, self.order.get(what, len(self.order)))
        return (1, min((self.order[name] for name, scope in self.scopes.items()
                        if scope[:len(what)] == what and name in self.order), default=len(self.order)))

    def header(self, key: ClusterKey) -> list[str]:
        kind, what = key
        if kind == "scope":
            return scope_header(what, self.filled)
        return expansion_header(self.expansions[what], self.titles.get(what, what), self.filled)

    def lines(self, contents: Mapping[ClusterKey, list[str]], counter: Iterator[int]) -> list[str]:
        """The statements of ``contents`` (cluster -> statements directly inside it), each cluster a
        ``subgraph`` inside its parent's, from the top level (:data:`TOP`) down; clusters holding
        nothing are left out."""
        children: dict[ClusterKey, set[ClusterKey]] = {}
        for key in contents:
            while key != TOP:
                parent = self.parent(key)
                children.setdefault(parent, set()).add(key)
                key = parent

        def lines(key: ClusterKey) -> list[str]:
            opening = [] if key == TOP else [f"subgraph cluster_{next(counter)} {{"]  # numbered outside in
            inner = list(contents.get(key, []))
            for child in sorted(children.get(key, ()), key=self.rank):
                inner += lines(child)
            if key == TOP:
                return inner
            return opening + [f"\t{line}" for line in self.header(key) + inner] + ["}"]

        return lines(TOP)


def scope_header(scope: ScopePath, filled: bool) -> list[str]:
    """The attribute line of the cluster drawing ``scope``: titled with its last name (the clusters
    around it show the others), the whole path in the tooltip."""
    label = (f'<<B>{quoting.html(scope[-1])}</B><FONT COLOR="{CAPTION}" POINT-SIZE="9"> scope</FONT>>')
    style = "rounded,filled" if filled else "rounded"
    fill = f" fillcolor={quoting.quote(SCOPE_FILLS[(len(scope) - 1) % 2])}" if filled else ""
    return [f"graph [label={label} style={quoting.quote(style)} color={quoting.quote(SCOPE_COLOUR)}{fill} "
            f"fontcolor={quoting.quote(SCOPE_COLOUR)} labeljust=r penwidth=1.2 "
            f"tooltip={quoting.tooltip('scope ' + quoting.visible(scope_text(scope)))}]"]


def expansion_header(expansion: Expansion, title: str, filled: bool) -> list[str]:
    """The attribute line of the cluster drawing an opened composite: titled with its node and op."""
    label = (f'<<B>{quoting.html(title)}</B>'
             f'<FONT COLOR="{CAPTION}" POINT-SIZE="10"> = {quoting.html(expansion.op)}, opened</FONT>>')
    style = "rounded,dashed,filled" if filled else "rounded,dashed"
    fill = f" fillcolor={quoting.quote('#faf7fe')} penwidth=1.5" if filled else ""
    return [f"graph [label={label} style={quoting.quote(style)} color={quoting.quote(CLUSTER_COLOUR)}{fill} "
            f"fontcolor={quoting.quote(CLUSTER_COLOUR)} labeljust=l "
            f"tooltip={quoting.tooltip(f'{quoting.visible(expansion.name)}: the circuit of op {expansion.op}')}]"]
