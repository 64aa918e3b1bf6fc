"""The tensor-level diagram: one node per op node, with its value and gradient, and the
gradient that flowed back along each edge."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from .. import rules
from ..errors import RenderError
from ..graph import Graph, Node
from ..run import Run
from . import quoting
from .labels import column_widths, full_text, matrix_html
from .options import ELEMENT, Options, highlights
from .style import (CAPTION, CLUSTER_COLOUR, COLLAPSED_MATRIX, FAINT, GREY, INK, RED, captioned, dot_attrs,
                    kind_look, shape_text, smaller)

if TYPE_CHECKING:
    from ..expand import Expansion


def name_inside(name: str, tensor: str, owner_of: Mapping[str, str], expansions: Mapping[str, Expansion]) -> str:
    """``name`` (of ``tensor`` or one of its elements) as shown inside the cluster of the opened
    composite that owns ``tensor``: without that composite's prefix."""
    owner = owner_of.get(tensor)
    if owner == tensor:  # a circuit's output sits in its own cluster, which sits in its parent's
        owner = expansions[tensor].parent
    if owner is not None and name.startswith(owner + "."):
        return name[len(owner) + 1:]
    return name


class TensorDrawing:
    """Builds the DOT statements of a tensor-level diagram of ``graph`` showing the numbers of ``run``."""

    def __init__(self, graph: Graph, run: Run, options: Options, highlight: Any) -> None:
        self.graph = graph
        self.run = run
        self.options = options
        self.nodes = graph.nodes
        self.ids = {n.name: f"n{n.index}" for n in self.nodes}
        self.collapsed = False
        self.hidden: set[str] = set()
        self.chains: dict[str, list[Node]] = {}  # last node of a summarised chain -> its nodes
        self.chain_of: dict[str, str] = {}
        self.any_grad = run.has_grads
        self.sent: dict[str, list[tuple[Node, int, Any]]] = {}
        for source, consumer, slot, grad in run.edges():
            self.sent.setdefault(source.name, []).append((consumer, slot, grad))
        expansions: Mapping[str, Expansion] = getattr(graph, "expansions", {}) or {}
        self.expansions = dict(expansions)
        self.member_of: dict[str, str] = {}
        for expansion in self.expansions.values():
            for name in expansion.nodes:
                self.member_of[name] = expansion.name
        self.highlight = highlights(highlight, self._resolve)

    def _resolve(self, name: str, is_node: bool = False) -> list[str]:
        if name in self.graph:
            return [name]
        match = ELEMENT.match(name)
        if match and match["tensor"] in self.graph:
            return [match["tensor"]]
        close = difflib.get_close_matches(name, list(self.ids), n=3)
        hint = f" (close names: {', '.join(map(repr, close))})" if close else ""
        raise RenderError(f"highlight= names {name!r}, which is not a node of this graph{hint}")

    # -- collapsing large graphs

    def collapse(self, fold_highlighted: bool = False) -> None:
        """Summarise every run of three or more single-input, single-consumer op nodes as one node.

        Highlighted nodes stay out of the runs, unless ``fold_highlighted``: then the runs
        are the same whatever is highlighted (the player's frames must all have one
        layout), and a highlighted node inside a run highlights the node summarising it.
        """
        self.collapsed = True
        consumers: dict[str, list[Node]] = {n.name: [] for n in self.nodes}
        for node in self.nodes:
            for source in node.inputs:
                consumers[source.name].append(node)
        kept = set() if fold_highlighted else set(self.highlight.nodes)

        def link(node: Node) -> bool:
            live = [s for s in node.inputs if s.kind != "const"]
            return (node.op_def is not None and len(live) == 1 and len(consumers[node.name]) == 1
                    and node.name not in kept)

        seen: set[str] = set()
        for node in self.nodes:
            if node.name in seen or not link(node):
                continue
            previous = [s for s in node.inputs if s.kind != "const"][0]
            if link(previous) and len(consumers[previous.name]) == 1:
                continue  # not the start of a run
            run = [node]
            while True:
                nxt = consumers[run[-1].name][0]
                if not link(nxt) or nxt.name in seen:
                    break
                run.append(nxt)
            seen.update(n.name for n in run)
            if len(run) >= 3:
                last = run[-1]
                self.chains[last.name] = run
                for member in run:
                    self.chain_of[member.name] = last.name
                    for source in member.inputs:
                        if source.kind == "const" and len(consumers[source.name]) == 1:
                            self.hidden.add(source.name)
                self.hidden.update(n.name for n in run[:-1])
        for name, colour in list(self.highlight.nodes.items()):
            if name in self.hidden and name in self.chain_of:
                self.highlight.nodes.setdefault(self.chain_of[name], colour)

    # -- nodes

    def display_name(self, name: str) -> str:
        """``name`` as shown inside its cluster: without the prefix of the composite that holds it."""
        return name_inside(name, name, self.member_of, self.expansions)

    def node_statement(self, node: Node) -> str:
        options = self.options
        name = node.name
        value = self.run.value(node)
        grad = self.run.grad(node)
        composite = node.op_def is not None and node.op_def.decompose is not None and name not in self.expansions
        greyed = grad is None and (node.kind in ("input", "const") or self.any_grad)
        chain = self.chains.get(name)
        if chain is not None:
            kinds = ", ".join(dict.fromkeys(str(n.op) for n in chain))
            subtitle = f"{len(chain)} ops summarised ({kinds}); {chain[0].name} \u2192 {name}"
        else:
            subtitle = node.op_def.name if node.op_def is not None else node.kind
            if composite:
                subtitle += " (composite)"
        shape = node.shape
        if shape is not None:
            subtitle += f"  {shape_text(shape)}"
        text_colour = GREY if greyed else INK
        rows = [f'<TR><TD COLSPAN="2"><FONT COLOR="{text_colour}"><B>{quoting.html(self.display_name(name))}</B>'
                f'</FONT></TD></TR>',
                f'<TR><TD COLSPAN="2"><FONT COLOR="{CAPTION}" POINT-SIZE="9">{quoting.html(subtitle)}</FONT>'
                f'</TD></TR>']
        max_matrix = smaller(options.max_matrix, COLLAPSED_MATRIX) if self.collapsed else options.max_matrix
        contributions = [] if self.collapsed or "grad" not in options.show else self.contributions(name)
        shown = [value if "value" in options.show else None,
                 grad if "grad" in options.show and len(contributions) < 2 else None]
        widths = column_widths(shown, options.precision, max_matrix)
        if "value" in options.show and value is not None:
            rows.append(captioned("value", matrix_html(value, text_colour, options.precision, max_matrix,
                                                         widths=widths)))
        if len(contributions) >= 2:
            rows.append(captioned("grad", self.sum_html(contributions, grad, max_matrix), RED))
        elif "grad" in options.show and grad is not None:
            rows.append(captioned("grad", matrix_html(grad, RED, options.precision, max_matrix, widths=widths),
                                   RED))
        label = ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows)
                 + "</TABLE>>")
        shape_name, style, fill, border = kind_look(node.kind, greyed)
        attrs = [("label", label), ("shape", shape_name), ("style", quoting.quote(style)),
                 ("fillcolor", quoting.quote(fill)), ("color", quoting.quote(border)),
                 ("tooltip", quoting.tooltip(self.node_tooltip(node, value, grad, composite)))]
        if composite:
            attrs.append(("peripheries", "2"))
        colour = self.highlight.nodes.get(name)
        if colour is not None:
            attrs += [("color", quoting.quote(colour)), ("penwidth", "3")]
        return f"{self.ids[name]} [{dot_attrs(attrs)}]"

    def contributions(self, name: str) -> list[tuple[str, Any]]:
        """What each consumer sent back to ``name``, as (caption, gradient), in graph order."""
        result = []
        for consumer, slot, grad in self.sent.get(name, []):
            caption = f"via {quoting.visible(self.display_name(consumer.name))}"
            if sum(1 for s in consumer.inputs if s.name == name) > 1:
                caption += f" ({rules.slot_name(consumer, slot)})"
            result.append((caption, grad))
        return result

    def sum_html(self, contributions: list[tuple[str, Any]], grad: Any, max_matrix: tuple[int, int]) -> str:
        precision = self.options.precision
        total = grad if grad is not None else sum(np.asarray(g) for _, g in contributions)
        top, bottom = [], []
        for k, (caption, part) in enumerate(contributions):
            if k:
                top.append(f'<TD><FONT COLOR="{RED}">+</FONT></TD>')
                bottom.append("<TD></TD>")
            top.append(f"<TD>{matrix_html(part, RED, precision, max_matrix, size=9)}</TD>")
            bottom.append(f'<TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">{quoting.html(caption)}</FONT></TD>')
        top.append(f'<TD><FONT COLOR="{RED}">=</FONT></TD>')
        bottom.append("<TD></TD>")
        top.append(f"<TD>{matrix_html(total, RED, precision, max_matrix)}</TD>")
        bottom.append(f'<TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">sum</FONT></TD>')
        return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"><TR>' + "".join(top)
                + "</TR><TR>" + "".join(bottom) + "</TR></TABLE>")

    def node_tooltip(self, node: Node, value: Any, grad: Any, composite: bool) -> str:
        what = node.op if node.op_def is not None else node.kind
        lines = [f"{quoting.visible(node.name)} ({what})"]
        if node.attrs:
            lines.append("attributes: " + ", ".join(f"{k}={v!r}" for k, v in sorted(node.attrs.items(), key=str)))
        if node.shape is not None:
            lines.append(f"shape {shape_text(node.shape)}")
        if composite:
            lines.append(f"composite op: draw with expand=[{node.op!r}] to see its circuit")
        if value is not None:
            lines += ["value:", full_text(value)]
        if grad is not None:
            lines += ["gradient:", full_text(grad)]
        contributions = self.contributions(node.name)
        if len(contributions) >= 2:
            lines.append("the gradient is the sum of the contributions " + ", ".join(c for c, _ in contributions))
        return "\n".join(lines)

    # -- edges

    def edge_statements(self) -> list[str]:
        lines = []
        for node in self.nodes:
            if node.name in self.hidden:
                continue
            chain = self.chains.get(node.name)
            if chain is not None:
                first = chain[0]
                entries = [(s, slot, first) for slot, s in enumerate(first.inputs) if s.name not in self.hidden]
            else:
                entries = [(s, slot, node) for slot, s in enumerate(node.inputs)]
            for source, slot, consumer in entries:
                drawn_source = self.chain_of.get(source.name, source.name) if source.name in self.hidden else source.name
                if drawn_source in self.hidden:
                    continue
                lines.append(self.edge_statement(source, consumer, slot, drawn_source, node.name))
        return lines

    def edge_statement(self, source: Node, consumer: Node, slot: int, drawn_source: str, drawn_target: str) -> str:
        options = self.options
        grad = self.run.slot_grad(consumer, slot)
        value = self.run.value(source)
        max_matrix = smaller(options.max_matrix, COLLAPSED_MATRIX) if self.collapsed else options.max_matrix
        parts = []
        several = len(consumer.inputs) > 1 and len(set(consumer.op_def.inputs if consumer.op_def else ())) > 1
        if several:
            parts.append(f'<TR><TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">{quoting.html(rules.slot_name(consumer, slot))}'
                         f'</FONT></TD></TR>')
        if options.edge_labels == "grad" and grad is not None:
            parts.append(f"<TR><TD>{matrix_html(grad, RED, options.precision, max_matrix, size=9)}</TD></TR>")
        elif options.edge_labels == "value" and value is not None:
            parts.append(f"<TR><TD>{matrix_html(value, CAPTION, options.precision, max_matrix, size=9)}</TD></TR>")
        attrs = []
        if parts:
            attrs.append(("label", '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                          + "".join(parts) + "</TABLE>>"))
        tip = [f"{quoting.visible(source.name)} \u2192 {quoting.visible(consumer.name)} "
               f"(argument {slot}: {rules.slot_name(consumer, slot)})"]
        if value is not None:
            tip += ["forward value:", full_text(value)]
        if grad is not None:
            tip += ["gradient sent back along this edge:", full_text(grad)]
        attrs.append(("tooltip", quoting.tooltip("\n".join(tip))))
        attrs.append(("labeltooltip", quoting.tooltip("\n".join(tip))))
        if grad is not None:
            # a black track for the value going forward, a red one for the gradient coming back
            attrs.append(("color", quoting.quote(f"{INK}:{RED}")))
        elif self.any_grad:
            attrs.append(("color", quoting.quote(FAINT)))
        colours = self.highlight.edge_colours(source.name, consumer.name, slot)
        if colours:
            attrs += [("color", quoting.quote(":".join(colours))), ("penwidth", "3")]
        return f"{self.ids[drawn_source]} -> {self.ids[drawn_target]} [{dot_attrs(attrs)}]"

    # -- the whole diagram

    def body(self) -> list[str]:
        lines: list[str] = []
        for node in self.nodes:
            if node.name in self.hidden or node.name in self.member_of:
                continue
            lines.append(self.node_statement(node))
        children: dict[str | None, list[Expansion]] = {}
        for expansion in sorted(self.expansions.values(), key=lambda e: self.graph[e.name].index):
            children.setdefault(expansion.parent, []).append(expansion)
        counter = iter(range(len(self.expansions)))
        for expansion in children.get(None, []):
            lines += self.cluster(expansion, children, counter, depth=0)
        lines += self.edge_statements()
        return lines

    def cluster(self, expansion: Expansion, children: dict[str | None, list[Expansion]], counter: Iterator[int],
                depth: int) -> list[str]:
        indent = "\t" * depth
        label = (f'<<B>{quoting.html(self.display_name(expansion.name))}</B>'
                 f'<FONT COLOR="{CAPTION}" POINT-SIZE="10"> = {quoting.html(expansion.op)}, opened</FONT>>')
        lines = [f"{indent}subgraph cluster_{next(counter)} {{",
                 f"{indent}\tgraph [label={label} style={quoting.quote('rounded,dashed,filled')} "
                 f"color={quoting.quote(CLUSTER_COLOUR)} fillcolor={quoting.quote('#faf7fe')} "
                 f"fontcolor={quoting.quote(CLUSTER_COLOUR)} labeljust=l penwidth=1.5 "
                 f"tooltip={quoting.tooltip(f'{quoting.visible(expansion.name)}: the circuit of op {expansion.op}')}]"]
        for name in sorted(expansion.nodes, key=lambda n: self.graph[n].index):
            if name not in self.hidden:
                lines.append(f"{indent}\t{self.node_statement(self.graph[name])}")
        for child in children.get(expansion.name, []):
            lines += [f"\t{line}" for line in self.cluster(child, children, counter, depth)]
        lines.append(f"{indent}}}")
        return lines
