"""The tensor-level diagram: one node per op node, with its value, gradient and tangent, and
the gradient that flowed back (or the tangent pushed forward) along each edge."""

from __future__ import annotations

import difflib
import itertools
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from .. import rules
from ..backward_graph import SCOPE as BACKWARD_SCOPE
from ..errors import RenderError
from ..graph import Graph, Node
from ..run import Run
from . import quoting
from .clusters import SCOPE_COLOUR, ClusterKey, Clusters, ScopePath, owner_chain, scope_text, short_names
from .labels import column_widths, full_text, matrix_html, shown_grid, slice_text, sliced
from .options import ELEMENT, Options, highlights, present_flows, unreached
from .overview import op_mix
from .style import (BACKWARD_EDGE, BACKWARD_FILL, CAPTION, COLLAPSED_MATRIX, FAINT, GREY, INK, RED,
                    TANGENT, captioned, dot_attrs, kind_look, shape_text, smaller)

if TYPE_CHECKING:
    from ..expand import Expansion


BOX_FILL = "#e3eef5"
BOX_OUTPUTS = 3  # outputs of a collapsed scope shown in its box, the others counted


class TensorDrawing:
    """Builds the DOT statements of a tensor-level diagram of ``graph`` showing the numbers of ``run``.

    ``scopes`` gives each node's scope (default: :attr:`Node.scope`; an opened copy takes its
    source's, see :func:`.clusters.drawn_scopes`); each scope is drawn as a cluster, and each scope named
    in ``collapse`` ("layer1", "layer1/attention") or at ``options.depth`` as one box. The nodes
    of the backward pass (the scope :data:`dagprop.backward_graph.SCOPE`) have a look of their own.
    """

    def __init__(self, graph: Graph, run: Run, options: Options, highlight: Any,
                 scopes: Mapping[str, ScopePath] | None = None, collapse: Iterable[str] = ()) -> None:
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
        self.any_tangent = run.has_tangents
        self.drawn_flows = present_flows(options.flows, self.any_grad, self.any_tangent)
        self.sent: dict[str, list[tuple[Node, int, Any]]] = {}
        for source, consumer, slot, grad in run.edges():
            self.sent.setdefault(source.name, []).append((consumer, slot, grad))
        self.pushed: dict[str, list[tuple[Node, int, Any]]] = {}  # consumer -> (source, slot, tangent) it received
        for source, consumer, slot, tangent in run.edges(flow="tangent"):
            self.pushed.setdefault(consumer.name, []).append((source, slot, tangent))
        expansions: Mapping[str, Expansion] = getattr(graph, "expansions", {}) or {}
        self.expansions = dict(expansions)
        self.member_of: dict[str, str] = {}
        for expansion in self.expansions.values():
            for name in expansion.nodes:
                self.member_of[name] = expansion.name
        self.scopes = dict(scopes) if scopes is not None else {n.name: n.scope for n in self.nodes}
        self.backward = {n.name for n in self.nodes if BACKWARD_SCOPE in self.scopes.get(n.name, ())}
        # a node of the backward pass -> the nodes whose gradient it holds, and the other way round
        self.gradient_of: dict[str, list[str]] = {}
        self.grad_node_of: dict[str, str] = {}
        for index, holder in run.grad_nodes.items():
            if holder.name in self.ids and index < len(run.nodes) and run.nodes[index].name in self.ids:
                self.gradient_of.setdefault(holder.name, []).append(run.nodes[index].name)
                self.grad_node_of[run.nodes[index].name] = holder.name
        self.boxes: dict[ScopePath, list[Node]] = {}  # a collapsed scope -> the nodes it hides
        self.box_of: dict[str, ScopePath] = {}
        self.box_ids: dict[ScopePath, str] = {}
        self._collapse_scopes(collapse, options.depth)
        self._check_slices()
        self.titles: dict[str, str] = {}
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

    # -- scopes drawn as one box

    def _check_slices(self) -> None:
        slices = self.options.slices
        if not isinstance(slices, Mapping):
            return
        for name, index in slices.items():
            if name not in self.ids:
                close = difflib.get_close_matches(name, list(self.ids), n=3)
                hint = f" (close names: {', '.join(map(repr, close))})" if close else ""
                raise RenderError(f"slices= names {name!r}, which is not a node of this graph{hint}")
            node, value = self.graph[name], self.run.value(self.graph[name])
            shape = node.shape if node.shape is not None else None if value is None else np.shape(value)
            if shape is None:
                continue  # nothing drawn of it yet
            if sliced(np.broadcast_to(np.int8(0), shape), index) is None:  # a view: nothing allocated
                raise RenderError(f"slices= asks for {name}{list(index)}, which does not fit its shape "
                                  f"{shape_text(tuple(shape))}: give at most {max(len(shape) - 1, 0)} indices, "
                                  f"each within its axis")

    def _collapse_scopes(self, collapse: Iterable[str], depth: int | None = None) -> None:
        if isinstance(collapse, str):
            collapse = [collapse]
        known = {scope[:depth] for scope in self.scopes.values() for depth in range(1, len(scope) + 1)}
        chosen = {scope for scope in known if len(scope) == depth}
        for item in collapse:
            path = tuple(item.split("/")) if isinstance(item, str) else None
            if path not in known:
                names = sorted(scope_text(scope) for scope in known)
                close = difflib.get_close_matches(str(item), names, n=3)
                hint = (f"; close names: {', '.join(map(repr, close))}" if close else
                        f"; its scopes: {', '.join(map(repr, names[:10]))}" if names else "; it has no scopes")
                raise RenderError(f"collapse= names {item!r}, which is not a scope of this graph (scopes are "
                                  f"written as in g.scope(), nested ones joined by '/'){hint}")
            chosen.add(path)
        for node in self.nodes:
            scope = self.scopes.get(node.name, ())
            box = next((scope[:depth] for depth in range(1, len(scope) + 1) if scope[:depth] in chosen), None)
            if box is not None:
                self.box_of[node.name] = box
                self.boxes.setdefault(box, []).append(node)
        self.box_ids = {box: f"s{k}" for k, box in enumerate(self.boxes)}

    def drawn_id(self, name: str) -> str:
        """The identifier of what stands for node ``name``: its own, or its collapsed scope's box's."""
        box = self.box_of.get(name)
        return self.box_ids[box] if box is not None else self.ids[name]

    @property
    def drawn_count(self) -> int:
        """How many boxes the diagram has: nodes drawn and collapsed scopes."""
        return len(self.nodes) - len(self.hidden | set(self.box_of)) + len(self.boxes)

    def box_outputs(self, box: ScopePath) -> list[Node]:
        """The nodes of a collapsed scope that leave it: those with a consumer outside it or none at all."""
        outputs = []
        for node in self.boxes[box]:
            consumers = list(self.graph.nx.successors(node.name))
            if not consumers or any(self.box_of.get(consumer) != box for consumer in consumers):
                outputs.append(node)
        return outputs

    def box_statement(self, box: ScopePath) -> str:
        nodes = self.boxes[box]
        count = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"
        mix = op_mix(nodes).split(", ")
        rows = [f'<TR><TD><B>{quoting.html(scope_text(box))}</B></TD></TR>',
                f'<TR><TD><FONT COLOR="{CAPTION}" POINT-SIZE="9">scope, collapsed: {count}</FONT></TD></TR>']
        # a few ops a line, so that a scope of many ops makes a tall box rather than a very wide one
        rows += [f'<TR><TD><FONT COLOR="{CAPTION}" POINT-SIZE="9">{quoting.html(", ".join(mix[k:k + 4]))}</FONT>'
                 f'</TD></TR>' for k in range(0, len(mix), 4)]
        tip = [f"scope {quoting.visible(scope_text(box))}, collapsed: {count} ({', '.join(mix)})"]
        if "grad" in self.drawn_flows:
            reached = sum(1 for node in nodes if self.run.grad(node) is not None)
            rows.append(f'<TR><TD><FONT COLOR="{RED}" POINT-SIZE="9">gradient reached {reached} of {len(nodes)}'
                        f'</FONT></TD></TR>')
        if "tangent" in self.drawn_flows:
            reached = sum(1 for node in nodes if self.run.tangent(node) is not None)
            rows.append(f'<TR><TD><FONT COLOR="{TANGENT}" POINT-SIZE="9">tangent reached {reached} of {len(nodes)}'
                        f'</FONT></TD></TR>')
        tip.append("nodes: " + ", ".join(quoting.visible(node.name) for node in nodes[:40])
                   + (f" and {len(nodes) - 40} more" if len(nodes) > 40 else ""))
        rows += self.output_rows(box, tip)
        label = '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"
        backward = all(node.name in self.backward for node in nodes)
        attrs = [("label", label), ("shape", "box3d"), ("style", quoting.quote("filled,dashed" if backward else "filled")),
                 ("fillcolor", quoting.quote(BACKWARD_FILL if backward else BOX_FILL)),
                 ("color", quoting.quote(RED if backward else SCOPE_COLOUR)),
                 ("tooltip", quoting.tooltip("\n".join(tip)))]
        colour = next((self.highlight.nodes[n.name] for n in nodes if n.name in self.highlight.nodes), None)
        if colour is not None:
            attrs += [("color", quoting.quote(colour)), ("penwidth", "3")]
        return f"{self.box_ids[box]} [{dot_attrs(attrs)}]"

    def output_rows(self, box: ScopePath, tip: list[str]) -> list[str]:
        """Label rows for the tensors leaving a collapsed scope: each one's name and shape, value and
        gradient (summaries for large arrays), the first :data:`BOX_OUTPUTS` of them; the arrays of
        all of them go into ``tip``."""
        options = self.options
        outputs = self.box_outputs(box)
        max_matrix = smaller(options.max_matrix, COLLAPSED_MATRIX)
        rows = []
        for node in outputs[:BOX_OUTPUTS]:
            value, grad, tangent = self.run.value(node), self.run.grad(node), self.run.tangent(node)
            heading = f"out: {self.display_name(node.name)}"
            if node.shape is not None:
                heading += f"  {shape_text(node.shape)}"
            inner = [f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT COLOR="{INK}" POINT-SIZE="9">{quoting.html(heading)}'
                     f'</FONT></TD></TR>']
            for flow, array, colour in (("value", value, INK), ("tangent", tangent, TANGENT), ("grad", grad, RED)):
                if flow in options.show and array is not None:
                    inner.append(captioned(flow, matrix_html(array, colour, options.precision, max_matrix, size=9),
                                           CAPTION if flow == "value" else colour))
            rows.append('<TR><TD><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                        + "".join(inner) + "</TABLE></TD></TR>")
            tip.append(f"output {quoting.visible(node.name)}"
                       + (f", value:\n{full_text(value)}" if value is not None else "")
                       + (f"\ngradient:\n{full_text(grad)}" if grad is not None else ""))
        if len(outputs) > BOX_OUTPUTS:
            rows.append(f'<TR><TD><FONT COLOR="{CAPTION}" POINT-SIZE="9">and {len(outputs) - BOX_OUTPUTS} more '
                        f'outputs</FONT></TD></TR>')
        return rows

    # -- collapsing large graphs

    def collapse(self, fold_highlighted: bool = False) -> None:
        """Summarise every run of three or more single-input, single-consumer op nodes of one scope as one node.

        Highlighted nodes stay out of the runs, unless ``fold_highlighted``: then the runs
        are the same whatever is highlighted (the player's frames must all have one
        layout), and a highlighted node inside a run highlights the node summarising it.
        """
        self.collapsed = True
        consumers: dict[str, list[Node]] = {n.name: [] for n in self.nodes}
        for node in self.nodes:
            for source in node.inputs:
                consumers[source.name].append(node)
        kept = (set() if fold_highlighted else set(self.highlight.nodes)) | set(self.box_of)

        def link(node: Node) -> bool:
            live = [s for s in node.inputs if s.kind != "const"]
            return (node.op_def is not None and len(live) == 1 and len(consumers[node.name]) == 1
                    and node.name not in kept)

        def same_scope(a: Node, b: Node) -> bool:
            return self.scopes.get(a.name) == self.scopes.get(b.name)

        seen: set[str] = set()
        for node in self.nodes:
            if node.name in seen or not link(node):
                continue
            previous = [s for s in node.inputs if s.kind != "const"][0]
            if link(previous) and len(consumers[previous.name]) == 1 and same_scope(previous, node):
                continue  # not the start of a run
            run = [node]
            while True:
                nxt = consumers[run[-1].name][0]
                if not link(nxt) or nxt.name in seen or not same_scope(nxt, node):
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
        """``name`` as its box is titled: inside the cluster of the composite that holds it, without
        that composite's prefix, unless another box of the diagram would have the same title."""
        title = self.titles.get(name)
        if title is None:
            chain = owner_chain(name, self.member_of, self.expansions)
            title = name[len(chain[0]) + 1:] if chain and name.startswith(chain[0] + ".") else name
        return title

    def node_statement(self, node: Node) -> str:
        options = self.options
        name = node.name
        value = self.run.value(node)
        grad = self.run.grad(node)
        tangent = self.run.tangent(node)
        composite = node.op_def is not None and node.op_def.decompose is not None and name not in self.expansions
        backward = name in self.backward
        greyed = not backward and unreached(node.kind, self.drawn_flows, {"grad": grad, "tangent": tangent})
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
        marker = self.gradient_marker(name)
        if marker is not None:
            rows.append(f'<TR><TD COLSPAN="2"><FONT COLOR="{INK}" POINT-SIZE="10">{quoting.html(marker)}</FONT>'
                        f'</TD></TR>')
        max_matrix = smaller(options.max_matrix, COLLAPSED_MATRIX) if self.collapsed else options.max_matrix
        contributions = [] if self.collapsed or "grad" not in options.show else self.contributions(name)
        summands = [] if self.collapsed or "tangent" not in options.show else self.tangent_contributions(name)
        shown = [value if "value" in options.show else None,
                 grad if "grad" in options.show and len(contributions) < 2 else None,
                 tangent if "tangent" in options.show and len(summands) < 2 else None]
        widths = column_widths(shown, options.precision, max_matrix)
        if "value" in options.show and value is not None:
            rows.append(captioned("value", matrix_html(value, text_colour, options.precision, max_matrix,
                                                         widths=widths)))
            rows += self.slice_rows(name, value, text_colour, max_matrix)
        # forward before backward: the tangent row comes before the gradient's
        if len(summands) >= 2:
            rows.append(captioned("tangent", self.sum_html(summands, tangent, max_matrix, TANGENT), TANGENT))
        elif "tangent" in options.show and tangent is not None:
            rows.append(captioned("tangent", matrix_html(tangent, TANGENT, options.precision, max_matrix,
                                                         widths=widths), TANGENT))
            rows += self.slice_rows(name, tangent, TANGENT, max_matrix)
        if len(contributions) >= 2:
            rows.append(captioned("grad", self.sum_html(contributions, grad, max_matrix), RED))
        elif "grad" in options.show and grad is not None:
            rows.append(captioned("grad", matrix_html(grad, RED, options.precision, max_matrix, widths=widths),
                                   RED))
            rows += self.slice_rows(name, grad, RED, max_matrix)
        label = ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows)
                 + "</TABLE>>")
        shape_name, style, fill, border = kind_look(node.kind, greyed, backward)
        attrs = [("label", label), ("shape", shape_name), ("style", quoting.quote(style)),
                 ("fillcolor", quoting.quote(fill)), ("color", quoting.quote(border)),
                 ("tooltip", quoting.tooltip(self.node_tooltip(node, value, grad, tangent, composite)))]
        if composite:
            attrs.append(("peripheries", "2"))
        colour = self.highlight.nodes.get(name)
        if colour is not None:
            attrs += [("color", quoting.quote(colour)), ("penwidth", "3")]
        return f"{self.ids[name]} [{dot_attrs(attrs)}]"

    def gradient_marker(self, name: str) -> str | None:
        """What a node of the backward pass holding gradients computes ("= dL/dx"), unless its name says
        it already; None for other nodes."""
        targets = self.gradient_of.get(name)
        if not targets:
            return None
        if len(targets) == 1 and re.fullmatch(rf"d.+/d{re.escape(targets[0])}( \(\d+\))?", name):
            return None
        losses = list(dict.fromkeys(node.name for node, seed in self.run.seeds if np.all(np.asarray(seed) == 1)))
        if len(losses) == 1 and len(losses) == len(self.run.seeds):
            return "= " + " = ".join(f"d{losses[0]}/d{target}" for target in targets)
        return "= the gradient of " + ", ".join(targets)

    def slice_rows(self, name: str, array: Any, colour: str, max_matrix: tuple[int, int]) -> list[str]:
        """The row drawing the slice ``slices=`` asks of node ``name``'s ``array``, when the array is
        summarised (too large to draw); no rows otherwise."""
        array = np.asarray(array)
        index = self.options.slice_for(name, array.ndim)
        part = sliced(array, index) if index is not None else None
        if part is None or (array.ndim <= 2 and array.shape[0] <= max_matrix[0]
                            and (array.ndim < 2 or array.shape[1] <= max_matrix[1])):
            return []
        caption = slice_text(index, array.ndim)  # type: ignore[arg-type]
        return [captioned(quoting.html(caption), matrix_html(part, colour, self.options.precision, max_matrix,
                                                              size=9, crop=True), colour)]

    def contributions(self, name: str) -> list[tuple[str, Any]]:
        """What each consumer sent back to ``name``, as (caption, gradient), in graph order; what the
        consumers inside one collapsed scope sent, summed, as one contribution."""
        result: list[tuple[str, Any]] = []
        position: dict[ScopePath, int] = {}
        for consumer, slot, grad in self.sent.get(name, []):
            box = self.box_of.get(consumer.name)
            if box is not None and box in position:
                caption, total = result[position[box]]
                result[position[box]] = (caption, np.asarray(total) + grad)
                continue
            if box is not None:
                position[box] = len(result)
                result.append((f"via {quoting.visible(scope_text(box))}", grad))
                continue
            caption = f"via {quoting.visible(self.display_name(consumer.name))}"
            if sum(1 for s in consumer.inputs if s.name == name) > 1:
                caption += f" ({rules.slot_name(consumer, slot)})"
            result.append((caption, grad))
        return result

    def tangent_contributions(self, name: str) -> list[tuple[str, Any]]:
        """What each input slot of ``name`` contributed to its tangent, as (caption, tangent), in slot
        order: the forward mirror of :meth:`contributions`."""
        node = self.graph[name]
        result = []
        for source, slot, tangent in self.pushed.get(name, []):
            caption = f"from {quoting.visible(self.display_name(source.name))}"
            if sum(1 for s in node.inputs if s is source) > 1:
                caption += f" ({rules.slot_name(node, slot)})"
            result.append((caption, tangent))
        return result

    def sum_html(self, contributions: list[tuple[str, Any]], total: Any, max_matrix: tuple[int, int],
                 colour: str = RED) -> str:
        """The contributions, each captioned, ``+`` between them, ``=`` and their sum ``total``, in ``colour``."""
        precision = self.options.precision
        total = total if total is not None else sum(np.asarray(g) for _, g in contributions)
        if np.size(total) > 1 and shown_grid(np.asarray(total), max_matrix) is None:
            # summaries side by side with + and = would read as if norms added up: a column instead,
            # the sum's summary first, then each contribution's norm
            rows = [f'<TR><TD ALIGN="RIGHT"><FONT COLOR="{CAPTION}" POINT-SIZE="8">sum of {len(contributions)}'
                    f'</FONT></TD><TD ALIGN="LEFT">{matrix_html(total, colour, precision, max_matrix)}</TD></TR>']
            rows += [f'<TR><TD ALIGN="RIGHT"><FONT COLOR="{CAPTION}" POINT-SIZE="8">{quoting.html(caption)}</FONT>'
                     f'</TD><TD ALIGN="LEFT">{matrix_html(part, colour, precision, max_matrix, size=9, brief=True)}'
                     f'</TD></TR>' for caption, part in contributions]
            return '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>"
        top, bottom = [], []
        for k, (caption, part) in enumerate(contributions):
            if k:
                top.append(f'<TD><FONT COLOR="{colour}">+</FONT></TD>')
                bottom.append("<TD></TD>")
            top.append(f"<TD>{matrix_html(part, colour, precision, max_matrix, size=9)}</TD>")
            bottom.append(f'<TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">{quoting.html(caption)}</FONT></TD>')
        top.append(f'<TD><FONT COLOR="{colour}">=</FONT></TD>')
        bottom.append("<TD></TD>")
        top.append(f"<TD>{matrix_html(total, colour, precision, max_matrix)}</TD>")
        bottom.append(f'<TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">sum</FONT></TD>')
        return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"><TR>' + "".join(top)
                + "</TR><TR>" + "".join(bottom) + "</TR></TABLE>")

    def node_tooltip(self, node: Node, value: Any, grad: Any, tangent: Any, composite: bool) -> str:
        what = node.op if node.op_def is not None else node.kind
        lines = [f"{quoting.visible(node.name)} ({what})"]
        scope = self.scopes.get(node.name)
        if scope:
            lines[0] += f" in scope {quoting.visible(scope_text(scope))}"
        if node.attrs:
            lines.append("attributes: " + ", ".join(f"{k}={v!r}" for k, v in sorted(node.attrs.items(), key=str)))
        if node.shape is not None:
            lines.append(f"shape {shape_text(node.shape)}")
        if composite:
            lines.append(f"composite op: draw with expand=[{node.op!r}] to see its circuit")
        if value is not None:
            lines += ["value:", full_text(value)]
        if tangent is not None:
            lines += ["tangent:", full_text(tangent)]
            summands = self.tangent_contributions(node.name)
            if len(summands) >= 2:
                lines.append("the tangent is the sum of the contributions " + ", ".join(c for c, _ in summands))
        if grad is not None:
            lines += ["gradient:", full_text(grad)]
        if node.name in self.grad_node_of:
            lines.append(f"its gradient is computed by the node {quoting.visible(self.grad_node_of[node.name])} "
                         f"of the backward pass")
        if node.name in self.gradient_of:
            lines.append("a node of the backward pass holding the gradient of "
                         + ", ".join(quoting.visible(target) for target in self.gradient_of[node.name]))
        contributions = self.contributions(node.name)
        if len(contributions) >= 2:
            lines.append("the gradient is the sum of the contributions " + ", ".join(c for c, _ in contributions))
        return "\n".join(lines)

    # -- edges

    def edge_statements(self) -> list[str]:
        lines = []
        into_boxes: dict[tuple[str, str], list[tuple[Node, int]]] = {}  # (source, box id) -> its edges
        for node in self.nodes:
            if node.name in self.hidden:
                continue
            chain = self.chains.get(node.name)
            if chain is not None:
                first = chain[0]
                entries = [(s, slot, first) for slot, s in enumerate(first.inputs) if s.name not in self.hidden]
            else:
                entries = [(s, slot, node) for slot, s in enumerate(node.inputs)]
            target = self.drawn_id(node.name)
            for source, slot, consumer in entries:
                drawn_source = self.chain_of.get(source.name, source.name) if source.name in self.hidden else source.name
                if drawn_source in self.hidden or self.drawn_id(drawn_source) == target:
                    continue
                if node.name in self.box_of:
                    # the edges one tensor sends into a collapsed scope become one edge, carrying their sum
                    into_boxes.setdefault((source.name, target), []).append((consumer, slot))
                    continue
                lines.append(self.edge_statement(source, consumer, slot, self.drawn_id(drawn_source), target))
        for (carried, box_id), slots in into_boxes.items():
            lines.append(self.box_edge_statement(self.graph[carried], slots, box_id))
        return lines

    def edge_statement(self, source: Node, consumer: Node, slot: int, source_id: str, target_id: str) -> str:
        grad = self.run.slot_grad(consumer, slot)
        tangent = self.run.edge_tangents.get((consumer.index, slot))
        parts = self.leaving(source)
        several = len(consumer.inputs) > 1 and len(set(consumer.op_def.inputs if consumer.op_def else ())) > 1
        if several:
            parts.append(f'<TR><TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">{quoting.html(rules.slot_name(consumer, slot))}'
                         f'</FONT></TD></TR>')
        tip = (f"{quoting.visible(source.name)} \u2192 {quoting.visible(consumer.name)} "
               f"(argument {slot}: {rules.slot_name(consumer, slot)})")
        colours = self.highlight.edge_colours(source.name, consumer.name, slot)
        return self.arrow(source, grad, tangent, parts, tip, "along this edge", colours, source_id, target_id,
                          backward=consumer.name in self.backward)

    def box_edge_statement(self, source: Node, slots: list[tuple[Node, int]], target_id: str) -> str:
        """The edge carrying ``source`` into a collapsed scope, for its edges to the nodes in ``slots``."""
        grads = [g for g in (self.run.slot_grad(consumer, slot) for consumer, slot in slots) if g is not None]
        grad = None if not grads else sum(grads[1:], np.asarray(grads[0]))
        tangents = [self.run.edge_tangents[(consumer.index, slot)] for consumer, slot in slots
                    if (consumer.index, slot) in self.run.edge_tangents]
        tangent = None if not tangents else sum(tangents[1:], np.asarray(tangents[0]))
        box = scope_text(self.box_of[slots[0][0].name])
        into = ", ".join(f"{quoting.visible(consumer.name)} (argument {slot}: {rules.slot_name(consumer, slot)})"
                         for consumer, slot in slots)
        tip = f"{quoting.visible(source.name)} \u2192 scope {quoting.visible(box)}, into {into}"
        along = "along this edge" if len(slots) == 1 else f"along these {len(slots)} edges, summed"
        colours = list(dict.fromkeys(c for consumer, slot in slots
                                     for c in self.highlight.edge_colours(source.name, consumer.name, slot)))
        return self.arrow(source, grad, tangent, self.leaving(source), tip, along, colours,
                          self.drawn_id(source.name), target_id,
                          backward=all(consumer.name in self.backward for consumer, _ in slots))

    def leaving(self, source: Node) -> list[str]:
        """The label row naming the tensor an edge carries out of a collapsed scope (none for other edges)."""
        if source.name not in self.box_of:
            return []
        # in black, the colour of forward values: a slot's name is grey
        return [f'<TR><TD><FONT COLOR="{INK}" POINT-SIZE="8">{quoting.html(self.display_name(source.name))}'
                f'</FONT></TD></TR>']

    def arrow(self, source: Node, grad: Any, tangent: Any, parts: list[str], tip: str, along: str,
              colours: list[str], source_id: str, target_id: str, backward: bool = False) -> str:
        """An edge statement: ``parts`` (label rows) then the gradient, tangent or value carried, a
        tooltip ``tip`` followed by the arrays (``along``: "along this edge", or which edges), a
        track per derivative carried, and the colours of a highlight. An edge into the backward
        pass (``backward``) that carries no derivative drawn is dashed red, not faint grey.
        Arrays too large to draw are labelled with their norm only."""
        options = self.options
        value = self.run.value(source)
        max_matrix = smaller(options.max_matrix, COLLAPSED_MATRIX) if self.collapsed else options.max_matrix
        if options.edge_labels == "grad" and grad is not None:
            parts = parts + [f"<TR><TD>{matrix_html(grad, RED, options.precision, max_matrix, size=9, brief=True)}"
                             f"</TD></TR>"]
        elif options.edge_labels == "tangent" and tangent is not None:
            parts = parts + [f"<TR><TD>{matrix_html(tangent, TANGENT, options.precision, max_matrix, size=9, brief=True)}"
                             f"</TD></TR>"]
        elif options.edge_labels == "value" and value is not None:
            parts = parts + [f"<TR><TD>{matrix_html(value, CAPTION, options.precision, max_matrix, size=9, brief=True)}"
                             f"</TD></TR>"]
        attrs = []
        if parts:
            attrs.append(("label", '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                          + "".join(parts) + "</TABLE>>"))
        lines = [tip]
        if value is not None:
            lines += ["forward value:", full_text(value)]
        if tangent is not None:
            lines += [f"tangent pushed forward {along} (its part of the consumer's tangent):", full_text(tangent)]
        if grad is not None:
            lines += [f"gradient sent back {along}:", full_text(grad)]
        attrs.append(("tooltip", quoting.tooltip("\n".join(lines))))
        attrs.append(("labeltooltip", quoting.tooltip("\n".join(lines))))
        # a black track for the value going forward, a blue one for the tangent pushed forward with it,
        # a red one for the gradient coming back
        tracks = [colour for flow, number, colour in (("tangent", tangent, TANGENT), ("grad", grad, RED))
                  if flow in self.drawn_flows and number is not None]
        if tracks:
            attrs.append(("color", quoting.quote(":".join([INK, *tracks]))))
        elif backward:
            attrs += [("color", quoting.quote(BACKWARD_EDGE)), ("style", "dashed")]
        elif self.drawn_flows:
            attrs.append(("color", quoting.quote(FAINT)))
        if colours:
            attrs += [("color", quoting.quote(":".join(colours))), ("penwidth", "3")]
        return f"{source_id} -> {target_id} [{dot_attrs(attrs)}]"

    # -- the whole diagram

    def body(self) -> list[str]:
        shown = [n.name for n in self.nodes if n.name not in self.hidden and n.name not in self.box_of]
        self.titles = short_names(shown, self.member_of, self.expansions)
        order = {node.name: node.index for node in self.nodes}
        clusters = Clusters(self.expansions, self.member_of, self.scopes, order, self.titles, filled=True)
        contents: dict[ClusterKey, list[str]] = {}
        for name in shown:
            contents.setdefault(clusters.home(name), []).append(self.node_statement(self.graph[name]))
        for box in self.boxes:
            contents.setdefault(("scope", box[:-1]), []).append(self.box_statement(box))
        return clusters.lines(contents, itertools.count()) + self.edge_statements()
