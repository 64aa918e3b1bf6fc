"""An overview of a graph too large to draw even when collapsed: one box per band of depth."""

from __future__ import annotations

from typing import Iterable

import networkx as nx

from ..graph import Graph, Node
from ..run import Run
from . import quoting
from .options import Highlight, present_flows
from .style import CAPTION, RED, TANGENT


def op_mix(nodes: Iterable[Node]) -> str:
    """How many nodes of each op (or kind, for leaves), the most frequent first.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", 1.0); y = (x.exp() + x.exp()) * 2.0
    >>> op_mix(g)
    '2 exp, 1 add, 1 const, 1 mul, 1 param'
    """
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.op or node.kind] = counts.get(node.op or node.kind, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class OverviewDrawing:
    """One box per band of topological depth, in order: how many nodes, which ops, how many
    edges arrive from earlier depths, how many nodes got gradient (and tangent, among ``flows``).

    For graphs that stay too large after composites are folded and chains summarised
    (a wide random DAG has neither to fold). Drawing every edge between bands would be
    as unreadable as the graph itself, so the bands form one column and each box counts
    the edges it receives.
    """

    MAX_BANDS = 40

    def __init__(self, graph: Graph, run: Run, highlight: Highlight, flows: tuple[str, ...] = ("grad",)) -> None:
        self.graph, self.run, self.highlight = graph, run, highlight
        self.any_grad = run.has_grads
        self.drawn_flows = present_flows(flows, self.any_grad, run.has_tangents)
        generations = [sorted(names, key=lambda name: graph[name].index)
                       for names in nx.topological_generations(graph.nx)]
        per_band = -(-len(generations) // self.MAX_BANDS)
        self.bands = [(k, min(k + per_band, len(generations)) - 1,
                       [graph[name] for generation in generations[k:k + per_band] for name in generation])
                      for k in range(0, len(generations), per_band)]

    def body(self) -> list[str]:
        band_of = {node.name: b for b, (_, _, nodes) in enumerate(self.bands) for node in nodes}
        arriving = [0] * len(self.bands)
        for source, target in self.graph.nx.edges():
            if band_of[source] != band_of[target]:
                arriving[band_of[target]] += 1
        lines = ["graph [rankdir=TB]"]  # a column of bands reads like a table, whatever rankdir says
        lines += [f'b{b} [shape=box style="rounded,filled" fillcolor="#ffffff" color="#3d3d3d" '
                  f'label=<{self._label(first, last, nodes, arriving[b])}>]'
                  for b, (first, last, nodes) in enumerate(self.bands)]
        lines += [f"b{b} -> b{b + 1}" for b in range(len(self.bands) - 1)]
        return lines

    def _label(self, first: int, last: int, nodes: list[Node], arriving: int) -> str:
        depth = f"depth {first}" if first == last else f"depths {first}\u2013{last}"
        mix = op_mix(nodes)
        rows = [f"<B>{quoting.html(depth)}</B>: {len(nodes)} node{'s' if len(nodes) != 1 else ''} ({quoting.html(mix)})"]
        if arriving:
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{CAPTION}">{arriving} edge{"s" if arriving != 1 else ""} '
                        f"arrive from smaller depths</FONT>")
        if "tangent" in self.drawn_flows:
            reached = sum(1 for node in nodes if self.run.tangent(node) is not None)
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{TANGENT}">tangent reached {reached} of {len(nodes)}</FONT>')
        if "grad" in self.drawn_flows:
            reached = sum(1 for node in nodes if self.run.grad(node) is not None)
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{RED}">gradient reached {reached} of {len(nodes)}</FONT>')
        marked = [node.name for node in nodes if node.name in self.highlight.nodes]
        if marked:
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{self.highlight.nodes[marked[0]]}"><B>'
                        f'{quoting.html(", ".join(marked))}</B></FONT>')
        return '<BR ALIGN="LEFT"/>'.join(rows) + '<BR ALIGN="LEFT"/>'
