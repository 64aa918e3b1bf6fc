"""Annotated diagrams: a graph in, DOT text out; Graphviz only turns the text into a picture.

:func:`to_dot` is pure: it reads a graph (or an element graph) and a :class:`State`
holding the numbers to draw, and returns DOT text that is the same byte for byte
for the same input. :mod:`dagprop.dot` is the only code that runs the ``dot``
binary, with a time limit; :mod:`dagprop.labels` writes numbers and matrices as
label text. :func:`render` builds the text and has it drawn.

What a tensor-level diagram shows:

* each node: its name, op (or kind) and shape, its value and its gradient (red),
  small arrays in full as matrices, larger ones summarised; params, inputs,
  constants and ops each have their own look; leaves without a gradient are grey;
  composite ops that can be opened have a double border;
* each edge: the gradient that flowed back along it (red), or the forward value;
* a node that feeds several consumers: each contribution and their sum;
* with ``expand=``, each opened composite inside a cluster named after its node;
* in SVG, a tooltip on every node and edge with the full arrays.

All escaping goes through :mod:`dagprop.quoting`; node identifiers are generated
(``n0``, ``n1``...), so no user string ever becomes DOT syntax.
"""

from __future__ import annotations

import difflib
import itertools
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import graphviz
import networkx as nx
import numpy as np

from . import quoting
from .dot import INSTALL_HINT, output_format, pipe, write
from .errors import RenderError
from .labels import column_widths, full_text, matrix_html, format_number
from .graph import Graph, Node

if TYPE_CHECKING:
    from .expand import Expansion

__all__ = ["State", "to_dot", "digraph", "render", "write", "pipe", "mimebundle", "format_number",
           "output_format", "LargeGraphWarning", "INSTALL_HINT"]

RED = "#d62728"
INK = "#1a1a1a"
GREY = "#8c8c8c"
FAINT = "#b5b5b5"
CAPTION = "#6b6b6b"
WEIGHT = "#2f4b7c"
PALETTE = ("#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#e377c2", "#17becf", "#bcbd22", "#8c564b")

# name -> (shape, style, fill colour, border colour)
KIND_LOOKS = {
    "param": ("box", "filled,bold", "#e4eefb", "#2b62b8"),
    "input": ("box", "filled", "#fbf0dc", "#a0652a"),
    "const": ("box", "filled,dashed", "#f3f3f3", "#9a9a9a"),
    "op": ("box", "rounded,filled", "#ffffff", "#3d3d3d"),
}
COLLAPSED_MATRIX = (3, 3)  # arrays drawn in full in a collapsed view of a large graph
GREYED_LOOK = ("#f7f7f7", "#c4c4c4")
CLUSTER_COLOUR = "#7b52b9"

LEVELS = ("tensor", "element")
EDGE_LABELS = ("grad", "value", "weight", None)
SHOWABLE = ("value", "grad")
RANKDIRS = ("LR", "RL", "TB", "BT")


_ELEMENT = re.compile(r"^(?P<tensor>.+)\[(?P<index>-?\d+(?:,\s*-?\d+)*)\]$")


class LargeGraphWarning(UserWarning):
    """The graph has more nodes than ``max_nodes``: a collapsed view is drawn instead."""


@dataclass
class State:
    """The numbers a diagram shows: values and gradients of nodes, gradients on edges.

    Built from a graph's last run by default (:meth:`from_graph`); a step-by-step
    player builds partial states to draw what is known at each step. Anything
    missing is simply not drawn.

    Attributes
    ----------
    values : dict of str to ndarray
        Node name (or element name) -> forward value.
    grads : dict of str to ndarray
        Node name (or element name) -> gradient of the loss.
    edge_grads : dict of (str, str, int) to ndarray
        ``(source, consumer, slot)`` -> the gradient that flowed back along that
        edge; at the element level the slot is 0.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> s = State.from_graph(g)
    >>> float(s.values["y"]), sorted((k, float(v)) for k, v in s.edge_grads.items())
    (9.0, [(('x', 'y', 0), 3.0), (('x', 'y', 1), 3.0)])
    """

    values: dict[str, Any] = field(default_factory=dict)
    grads: dict[str, Any] = field(default_factory=dict)
    edge_grads: dict[tuple[str, str, int], Any] = field(default_factory=dict)

    @classmethod
    def from_graph(cls, graph: Graph) -> State:
        """The values, gradients and edge gradients of ``graph``'s last forward and backward passes.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> y = g.op("mul", g.param("w", 2.0), g.input("x", 5.0), name="y")
        >>> g.forward(); g.backward(y)
        >>> s = State.from_graph(g)
        >>> sorted(s.values), sorted(s.grads), list(s.edge_grads)
        (['w', 'x', 'y'], ['w', 'y'], [('w', 'y', 0)])
        """
        nodes = graph.nodes
        values = {n.name: graph._values[n.index] for n in nodes if graph._values[n.index] is not None}
        grads = {n.name: graph._grads[n.index] for n in nodes if graph._grads[n.index] is not None}
        edge_grads = {}
        for (consumer, slot), grad in sorted(graph._edge_grads.items()):
            target = nodes[consumer]
            edge_grads[(target.inputs[slot].name, target.name, slot)] = grad
        return cls(values, grads, edge_grads)

    @classmethod
    def from_element_graph(cls, element_graph: nx.DiGraph) -> State:
        """Values and gradients from an element graph's node attributes ``value`` and ``grad``; the
        gradient along each edge into an element that has a gradient is its ``weight`` (local
        derivative) times the gradient of its head.

        Examples
        --------
        >>> import networkx as nx
        >>> eg = nx.DiGraph()
        >>> eg.add_node("x", value=2.0, grad=6.0); eg.add_node("y", value=4.0, grad=1.0)
        >>> eg.add_edge("x", "y", weight=6.0)
        >>> State.from_element_graph(eg).edge_grads
        {('x', 'y', 0): 6.0}
        """
        values, grads, edge_grads = {}, {}, {}
        for name, data in element_graph.nodes(data=True):
            if data.get("value") is not None:
                values[name] = data["value"]
            if data.get("grad") is not None:
                grads[name] = data["grad"]
        for source, target, data in element_graph.edges(data=True):
            head = grads.get(target)
            # only elements that receive a gradient are sent one
            if head is not None and source in grads and data.get("weight") is not None:
                edge_grads[(source, target, 0)] = data["weight"] * head
        return cls(values, grads, edge_grads)


# -- options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    show: tuple[str, ...]
    edge_labels: str | None
    precision: int
    rankdir: str
    title: str | None
    max_matrix: tuple[int, int]
    max_nodes: int | None
    legend: bool


def _options(show: Iterable[str], edge_labels: str | None, precision: int, rankdir: str, title: str | None,
             max_matrix: tuple[int, int], max_nodes: int | None, legend: bool, level: str) -> _Options:
    if isinstance(show, str):
        show = (show,)
    show = tuple(show or ())
    for item in show:
        if item not in SHOWABLE:
            raise RenderError(f"show= takes some of {SHOWABLE}, got {item!r}")
    if edge_labels not in EDGE_LABELS:
        raise RenderError(f"edge_labels= must be one of {EDGE_LABELS}, got {edge_labels!r}")
    if level not in LEVELS:
        raise RenderError(f"level= must be 'tensor' or 'element', got {level!r}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"rankdir= must be one of {RANKDIRS}, got {rankdir!r}")
    if isinstance(precision, bool) or not isinstance(precision, int) or not 1 <= precision <= 17:
        raise RenderError(f"precision= must be an int from 1 to 17, got {precision!r}")
    try:
        rows, cols = (int(n) for n in max_matrix)
    except (TypeError, ValueError):
        raise RenderError(f"max_matrix= must be (rows, columns), got {max_matrix!r}") from None
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise RenderError(f"max_nodes= must be a positive int or None, got {max_nodes!r}")
    return _Options(show, edge_labels, precision, rankdir, title, (max(rows, 1), max(cols, 1)), max_nodes, legend)


# -- highlighting --------------------------------------------------------------------------


@dataclass
class _Highlight:
    nodes: dict[str, str] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[int | None, list[str]]] = field(default_factory=dict)

    def add_edge(self, source: str, target: str, slot: int | None, colour: str) -> None:
        colours = self.edges.setdefault((source, target), {}).setdefault(slot, [])
        if colour not in colours:
            colours.append(colour)

    def edge_colours(self, source: str, target: str, slot: int) -> list[str]:
        slots = self.edges.get((source, target), {})
        return slots.get(slot, []) + [c for c in slots.get(None, []) if c not in slots.get(slot, [])]


def _is_path(item: Any) -> bool:
    return hasattr(item, "nodes") and not isinstance(item, (str, tuple, list, nx.Graph, Graph))


def _highlights(highlight: Any, resolve) -> _Highlight:
    """Sort ``highlight`` into node and edge colours; ``resolve`` maps a name to the drawn names."""
    if highlight is None:
        return _Highlight()
    if isinstance(highlight, (str, Node)) or _is_path(highlight) or _is_edge(highlight):
        items = [highlight]
    else:
        items = list(highlight)
    result = _Highlight()
    next_colour = iter(PALETTE * (len(items) // len(PALETTE) + 1))
    plain_colour = None
    for item in items:
        if _is_path(item):
            colour = next(next_colour)
            names = [_name_of(n) for n in item.nodes]
            for name in names:
                for drawn in resolve(name):
                    result.nodes.setdefault(drawn, colour)
            edges = getattr(item, "edges", None)
            if edges is None:
                edges = [(a, b, None) for a, b in zip(names[:-1], names[1:])]
            for source, target, slot in edges:
                for s in resolve(_name_of(source)):
                    for t in resolve(_name_of(target)):
                        result.add_edge(s, t, slot, colour)
            continue
        if plain_colour is None:
            plain_colour = next(next_colour)
        if _is_edge(item):
            source, target = _name_of(item[0]), _name_of(item[1])
            slot = item[2] if len(item) == 3 else None
            for s in resolve(source):
                for t in resolve(target):
                    result.add_edge(s, t, slot, plain_colour)
        else:
            for drawn in resolve(_name_of(item)):
                result.nodes.setdefault(drawn, plain_colour)
    return result


def _is_edge(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) in (2, 3) and all(isinstance(x, (str, Node)) for x in item[:2])


def _name_of(item: Any) -> str:
    if isinstance(item, Node):
        return item.name
    if isinstance(item, str):
        return item
    raise RenderError(f"highlight= takes node names, nodes, (source, consumer[, slot]) edges or paths; "
                      f"got {item!r}")


# -- the tensor level ------------------------------------------------------------------------


def _kind_look(kind: str, greyed: bool) -> tuple[str, str, str, str]:
    shape, style, fill, border = KIND_LOOKS.get(kind, KIND_LOOKS["op"])
    if greyed:
        fill, border = GREYED_LOOK
    return shape, style, fill, border


def _attrs(pairs: Iterable[tuple[str, str]]) -> str:
    return " ".join(f"{key}={value}" for key, value in pairs)


class _TensorDrawing:
    """Builds the DOT statements of a tensor-level diagram."""

    def __init__(self, graph: Graph, state: State, options: _Options, highlight: Any) -> None:
        self.graph = graph
        self.state = state
        self.options = options
        self.nodes = graph.nodes
        self.ids = {n.name: f"n{n.index}" for n in self.nodes}
        self.collapsed = False
        self.hidden: set[str] = set()
        self.chains: dict[str, list[Node]] = {}  # last node of a summarised chain -> its nodes
        self.chain_of: dict[str, str] = {}
        self.any_grad = bool(state.grads)
        self.sent: dict[str, list] | None = None
        expansions: Mapping[str, Expansion] = getattr(graph, "expansions", {}) or {}
        self.expansions = dict(expansions)
        self.member_of: dict[str, str] = {}
        for expansion in self.expansions.values():
            for name in expansion.nodes:
                self.member_of[name] = expansion.name
        self.highlight = _highlights(highlight, self._resolve)

    def _resolve(self, name: str) -> list[str]:
        if name in self.graph:
            return [name]
        match = _ELEMENT.match(name)
        if match and match["tensor"] in self.graph:
            return [match["tensor"]]
        close = difflib.get_close_matches(name, list(self.ids), n=3)
        hint = f" (close names: {', '.join(map(repr, close))})" if close else ""
        raise RenderError(f"highlight= names {name!r}, which is not a node of this graph{hint}")

    # -- collapsing large graphs

    def collapse(self) -> None:
        """Summarise every run of three or more single-input, single-consumer op nodes as one node."""
        self.collapsed = True
        consumers: dict[str, list[Node]] = {n.name: [] for n in self.nodes}
        for node in self.nodes:
            for source in node.inputs:
                consumers[source.name].append(node)

        def link(node: Node) -> bool:
            live = [s for s in node.inputs if s.kind != "const"]
            return (node.op_def is not None and len(live) == 1 and len(consumers[node.name]) == 1
                    and node.name not in self.highlight.nodes)

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

    # -- nodes

    def display_name(self, name: str) -> str:
        """``name`` as shown inside its cluster: without the prefix of the composite that holds it."""
        owner = self.member_of.get(name)
        if owner == name:  # a circuit's output sits in its own cluster, which sits in its parent's
            owner = self.expansions[name].parent
        if owner is not None and name.startswith(owner + "."):
            return name[len(owner) + 1:]
        return name

    def node_statement(self, node: Node) -> str:
        options = self.options
        name = node.name
        value = self.state.values.get(name)
        grad = self.state.grads.get(name)
        composite = node.op_def is not None and node.op_def.decompose is not None and name not in self.expansions
        greyed = grad is None and (node.kind in ("input", "const") or self.any_grad)
        chain = self.chains.get(name)
        if chain is not None:
            kinds = ", ".join(dict.fromkeys(n.op for n in chain))
            subtitle = f"{len(chain)} ops summarised ({kinds}); {chain[0].name} \u2192 {name}"
        else:
            subtitle = node.op if node.op_def is not None else node.kind
            if composite:
                subtitle += " (composite)"
        shape = node.shape
        if shape is not None:
            subtitle += f"  {_shape_text(shape)}"
        text_colour = GREY if greyed else INK
        rows = [f'<TR><TD COLSPAN="2"><FONT COLOR="{text_colour}"><B>{quoting.html(self.display_name(name))}</B>'
                f'</FONT></TD></TR>',
                f'<TR><TD COLSPAN="2"><FONT COLOR="{CAPTION}" POINT-SIZE="9">{quoting.html(subtitle)}</FONT>'
                f'</TD></TR>']
        max_matrix = _smaller(options.max_matrix, COLLAPSED_MATRIX) if self.collapsed else options.max_matrix
        contributions = [] if self.collapsed or "grad" not in options.show else self.contributions(name)
        shown = [value if "value" in options.show else None,
                 grad if "grad" in options.show and len(contributions) < 2 else None]
        widths = column_widths(shown, options.precision, max_matrix)
        if "value" in options.show and value is not None:
            rows.append(_captioned("value", matrix_html(value, text_colour, options.precision, max_matrix,
                                                         widths=widths)))
        if len(contributions) >= 2:
            rows.append(_captioned("grad", self.sum_html(contributions, grad, max_matrix), RED))
        elif "grad" in options.show and grad is not None:
            rows.append(_captioned("grad", matrix_html(grad, RED, options.precision, max_matrix, widths=widths),
                                   RED))
        label = ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows)
                 + "</TABLE>>")
        shape_name, style, fill, border = _kind_look(node.kind, greyed)
        attrs = [("label", label), ("shape", shape_name), ("style", quoting.quote(style)),
                 ("fillcolor", quoting.quote(fill)), ("color", quoting.quote(border)),
                 ("tooltip", quoting.tooltip(self.node_tooltip(node, value, grad, composite)))]
        if composite:
            attrs.append(("peripheries", "2"))
        colour = self.highlight.nodes.get(name)
        if colour is not None:
            attrs += [("color", quoting.quote(colour)), ("penwidth", "3")]
        return f"{self.ids[name]} [{_attrs(attrs)}]"

    def contributions(self, name: str) -> list[tuple[str, Any]]:
        """What each consumer sent back to ``name``, as (caption, gradient), in graph order."""
        if self.sent is None:
            self.sent = {}
            for (source, target, slot), grad in self.state.edge_grads.items():
                if target in self.graph:
                    self.sent.setdefault(source, []).append((self.graph[target].index, slot, target, grad))
        found = sorted(self.sent.get(name, []), key=lambda item: (item[0], item[1]))
        result = []
        for _, slot, target, grad in found:
            consumer = self.graph[target]
            caption = f"via {quoting.visible(self.display_name(target))}"
            if sum(1 for s in consumer.inputs if s.name == name) > 1:
                caption += f" ({_slot_name(consumer, slot)})"
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
            lines.append(f"shape {_shape_text(node.shape)}")
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
        key = (source.name, consumer.name, slot)
        grad = self.state.edge_grads.get(key)
        value = self.state.values.get(source.name)
        max_matrix = _smaller(options.max_matrix, COLLAPSED_MATRIX) if self.collapsed else options.max_matrix
        parts = []
        several = len(consumer.inputs) > 1 and len(set(consumer.op_def.inputs if consumer.op_def else ())) > 1
        if several:
            parts.append(f'<TR><TD><FONT COLOR="{CAPTION}" POINT-SIZE="8">{quoting.html(_slot_name(consumer, slot))}'
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
               f"(argument {slot}: {_slot_name(consumer, slot)})"]
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
        return f"{self.ids[drawn_source]} -> {self.ids[drawn_target]} [{_attrs(attrs)}]"

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

    def cluster(self, expansion: Expansion, children: dict, counter, depth: int) -> list[str]:
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


def _smaller(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return min(a[0], b[0]), min(a[1], b[1])


def _captioned(caption: str, content: str, colour: str = CAPTION) -> str:
    return (f'<TR><TD ALIGN="RIGHT" VALIGN="MIDDLE"><FONT COLOR="{colour}" POINT-SIZE="8">{caption}</FONT></TD>'
            f'<TD ALIGN="LEFT">{content}</TD></TR>')


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "scalar" if shape == () else "\u00d7".join(str(n) for n in shape)


def _slot_name(node: Node, slot: int) -> str:
    names = node.op_def.inputs if node.op_def is not None else ()
    if not names:
        return str(slot)
    if node.op_def.variadic:
        return f"{names[0]}[{slot}]"
    return names[min(slot, len(names) - 1)]


# -- an overview of graphs too large even when collapsed -------------------------------------


class _OverviewDrawing:
    """One box per band of topological depth, in order: how many nodes, which ops, how many
    edges arrive from earlier depths, how many nodes got gradient.

    For graphs that stay too large after composites are folded and chains summarised
    (a wide random DAG has neither to fold). Drawing every edge between bands would be
    as unreadable as the graph itself, so the bands form one column and each box counts
    the edges it receives.
    """

    MAX_BANDS = 40

    def __init__(self, graph: Graph, state: State, highlight: _Highlight) -> None:
        self.graph, self.state, self.highlight = graph, state, highlight
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
        ops: dict[str, int] = {}
        for node in nodes:
            ops[node.op or node.kind] = ops.get(node.op or node.kind, 0) + 1
        mix = ", ".join(f"{count} {name}" for name, count in sorted(ops.items(), key=lambda item: (-item[1], item[0])))
        rows = [f"<B>{quoting.html(depth)}</B>: {len(nodes)} node{'s' if len(nodes) != 1 else ''} ({quoting.html(mix)})"]
        if arriving:
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{CAPTION}">{arriving} edge{"s" if arriving != 1 else ""} '
                        f"arrive from smaller depths</FONT>")
        if self.state.grads:
            reached = sum(1 for node in nodes if self.state.grads.get(node.name) is not None)
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{RED}">gradient reached {reached} of {len(nodes)}</FONT>')
        marked = [node.name for node in nodes if node.name in self.highlight.nodes]
        if marked:
            rows.append(f'<FONT POINT-SIZE="10" COLOR="{self.highlight.nodes[marked[0]]}"><B>'
                        f'{quoting.html(", ".join(marked))}</B></FONT>')
        return '<BR ALIGN="LEFT"/>'.join(rows) + '<BR ALIGN="LEFT"/>'


# -- the element level -----------------------------------------------------------------------


class _ElementDrawing:
    """Builds the DOT statements of an element-level diagram: one node per element (neuron)."""

    def __init__(self, element_graph: nx.DiGraph, state: State, options: _Options, highlight: Any,
                 kinds: Mapping[str, str], expansions: Mapping[str, Expansion] | None = None) -> None:
        self.eg = element_graph
        self.state = state
        self.options = options
        self.order = list(element_graph.nodes)
        self.ids = {name: f"e{k}" for k, name in enumerate(self.order)}
        self.kinds = kinds
        self.compact = False
        self.any_grad = bool(state.grads)
        self.tensors: dict[str, list[str]] = {}
        for name in self.order:
            self.tensors.setdefault(self.tensor_of(name), []).append(name)
        self.expansions = dict(expansions or {})
        self.owner: dict[str, str] = {}  # tensor -> the innermost opened composite it belongs to
        for expansion in self.expansions.values():
            for tensor in expansion.nodes:
                self.owner[tensor] = expansion.name
        self.highlight = _highlights(highlight, self._resolve)

    def display(self, name: str, tensor: str) -> str:
        """``name`` without the prefix of the opened composite its tensor belongs to."""
        owner = self.owner.get(tensor)
        if owner == tensor:  # a circuit's output sits in its own cluster, which sits in its parent's
            owner = self.expansions[tensor].parent
        if owner is not None and name.startswith(owner + "."):
            return name[len(owner) + 1:]
        return name

    def tensor_of(self, name: str) -> str:
        tensor = self.eg.nodes[name].get("tensor")
        if tensor is None:
            match = _ELEMENT.match(name)
            tensor = match["tensor"] if match else name
        return tensor

    def _resolve(self, name: str) -> list[str]:
        if name in self.eg:
            return [name]
        if name in self.tensors:
            return list(self.tensors[name])
        raise RenderError(f"highlight= names {name!r}, which is neither an element nor a node of this element graph")

    def kind_of(self, name: str) -> str:
        data = self.eg.nodes[name]
        return data.get("kind") or self.kinds.get(self.tensor_of(name), "op")

    def node_statement(self, name: str) -> str:
        options = self.options
        value = self.state.values.get(name)
        grad = self.state.grads.get(name)
        kind = self.kind_of(name)
        greyed = grad is None and (kind in ("input", "const") or self.any_grad)
        colour = GREY if greyed else INK
        shown = self.display(name, self.tensor_of(name))
        lines = [f'<FONT COLOR="{colour}"><B>{quoting.html(shown)}</B></FONT>']
        if not self.compact:
            if "value" in options.show and value is not None:
                lines.append(f'<FONT COLOR="{colour}" POINT-SIZE="10">{format_number(value, options.precision)}</FONT>')
            if "grad" in options.show and grad is not None:
                lines.append(f'<FONT COLOR="{RED}" POINT-SIZE="10">{format_number(grad, options.precision)}</FONT>')
        _, _, fill, border = _kind_look(kind, greyed)
        tip = [quoting.visible(name)]
        data = self.eg.nodes[name]
        if data.get("op"):
            tip[0] += f" (an element of {quoting.visible(self.tensor_of(name))}, op {data['op']})"
        if value is not None:
            tip.append(f"value {full_text(value)}")
        if grad is not None:
            tip.append(f"gradient {full_text(grad)}")
        attrs = [("label", "<" + "<BR/>".join(lines) + ">"), ("shape", "ellipse"),
                 ("style", quoting.quote("filled")), ("fillcolor", quoting.quote(fill)),
                 ("color", quoting.quote(border)), ("margin", quoting.quote("0.04,0.02")),
                 ("tooltip", quoting.tooltip("\n".join(tip)))]
        highlight = self.highlight.nodes.get(name)
        if highlight is not None:
            attrs += [("color", quoting.quote(highlight)), ("penwidth", "3")]
        return f"{self.ids[name]} [{_attrs(attrs)}]"

    def edge_statement(self, source: str, target: str, data: Mapping[str, Any]) -> str:
        options = self.options
        weight = data.get("weight")
        flow = self.state.edge_grads.get((source, target, 0))
        parts = []
        if not self.compact:
            if options.edge_labels in ("grad", "weight") and weight is not None:
                parts.append(f'<FONT COLOR="{WEIGHT}" POINT-SIZE="9">\u00d7{format_number(weight, options.precision)}'
                             f'</FONT>')
            if options.edge_labels == "grad" and flow is not None:
                parts.append(f'<FONT COLOR="{RED}" POINT-SIZE="9">{format_number(flow, options.precision)}</FONT>')
            if options.edge_labels == "value" and self.state.values.get(source) is not None:
                parts.append(f'<FONT COLOR="{CAPTION}" POINT-SIZE="9">'
                             f'{format_number(self.state.values[source], options.precision)}</FONT>')
        source_text, target_text = quoting.visible(source), quoting.visible(target)
        tip = [f"{source_text} \u2192 {target_text}"]
        if weight is not None:
            tip.append(f"local derivative \u2202{target_text}/\u2202{source_text} = {full_text(weight)}")
        if flow is not None:
            tip.append(f"gradient sent back along this edge = {full_text(flow)}")
        attrs = []
        if parts:
            attrs.append(("label", "<" + "<BR/>".join(parts) + ">"))
        attrs.append(("tooltip", quoting.tooltip("\n".join(tip))))
        attrs.append(("labeltooltip", quoting.tooltip("\n".join(tip))))
        colours = self.highlight.edge_colours(source, target, 0)
        if colours:
            attrs += [("color", quoting.quote(":".join(colours))), ("penwidth", "3")]
        return f"{self.ids[source]} -> {self.ids[target]} [{_attrs(attrs)}]"

    def tensor_lines(self, tensor: str, counter: Iterator[int]) -> list[str]:
        """One tensor's elements, in a cluster named after it unless it is a single scalar."""
        names = self.tensors[tensor]
        if len(names) == 1 and names[0] == tensor:
            return [self.node_statement(names[0])]
        _, _, _, border = _kind_look(self.kind_of(names[0]), False)
        label = f"<<B>{quoting.html(self.display(tensor, tensor))}</B>>"
        ids = [self.ids[name] for name in names]
        order = []
        if len(ids) > 1:
            # a tensor is drawn as a column (a row for TB/BT) in index order, as the notes draw vectors;
            # with LR/RL, dot puts the tail of a flat edge below its head, so the chain runs backwards
            chain = ids[::-1] if self.options.rankdir in ("LR", "RL") else ids
            order = [f"\t{{rank=same; {'; '.join(ids)}}}", f"\t{' -> '.join(chain)} [style=invis]"]
        return ([f"subgraph cluster_{next(counter)} {{",
                 f"\tgraph [label={label} style={quoting.quote('rounded')} color={quoting.quote(border)} "
                 f"fontcolor={quoting.quote(border)} tooltip={quoting.tooltip(quoting.visible(tensor))}]"]
                + [f"\t{self.node_statement(name)}" for name in names] + order + ["}"])

    def expansion_lines(self, expansion: Expansion, owned: Mapping[str | None, list[str]],
                        children: Mapping[str | None, list[Expansion]], counter: Iterator[int]) -> list[str]:
        """An opened composite's tensors (and the composites opened inside it) in a cluster named after it."""
        label = (f'<<B>{quoting.html(self.display(expansion.name, expansion.name))}</B>'
                 f'<FONT COLOR="{CAPTION}" POINT-SIZE="10"> = {quoting.html(expansion.op)}, opened</FONT>>')
        lines = [f"subgraph cluster_{next(counter)} {{",
                 f"\tgraph [label={label} style={quoting.quote('rounded,dashed')} "
                 f"color={quoting.quote(CLUSTER_COLOUR)} fontcolor={quoting.quote(CLUSTER_COLOUR)} labeljust=l "
                 f"tooltip={quoting.tooltip(f'{quoting.visible(expansion.name)}: the circuit of op {expansion.op}')}]"]
        for tensor in owned.get(expansion.name, []):
            lines += [f"\t{line}" for line in self.tensor_lines(tensor, counter)]
        for child in children.get(expansion.name, []):
            lines += [f"\t{line}" for line in self.expansion_lines(child, owned, children, counter)]
        return lines + ["}"] if len(lines) > 2 else []  # nothing of it in this element graph

    def body(self) -> list[str]:
        counter = itertools.count()
        owned: dict[str | None, list[str]] = {}
        for tensor in self.tensors:
            owned.setdefault(self.owner.get(tensor), []).append(tensor)
        children: dict[str | None, list[Expansion]] = {}
        for expansion in self.expansions.values():
            children.setdefault(expansion.parent, []).append(expansion)
        lines = []
        for tensor in owned.get(None, []):
            lines += self.tensor_lines(tensor, counter)
        for expansion in children.get(None, []):
            lines += self.expansion_lines(expansion, owned, children, counter)
        for source, target, data in self.eg.edges(data=True):
            lines.append(self.edge_statement(source, target, data))
        return lines


# -- entry points ------------------------------------------------------------------------------


def digraph(graph: Graph | nx.DiGraph, *, show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "grad",
            precision: int = 4, rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (),
            title: str | None = None, level: str = "tensor", max_matrix: tuple[int, int] = (6, 6),
            max_nodes: int | None = 300, state: State | None = None, legend: bool = True) -> graphviz.Digraph:
    """The diagram of ``graph`` as a ``graphviz.Digraph`` (its ``.source`` is :func:`to_dot`'s text).

    Takes the same arguments as :func:`to_dot`. Runs no binary.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> y = g.param("x", 2.0) * 3.0
    >>> d = digraph(g)
    >>> type(d).__name__, d.source == to_dot(g)
    ('Digraph', True)
    """
    from .expand import expanded

    options = _options(show, edge_labels, precision, rankdir, title, max_matrix, max_nodes, legend, level)
    source = graph
    if isinstance(graph, nx.DiGraph) and not isinstance(graph, nx.MultiDiGraph):
        level = "element"
        element_graph, kinds = graph, {}
    elif isinstance(graph, Graph):
        opened = expand if isinstance(expand, bool) or expand is None else tuple(expand)
        if opened:
            graph = expanded(graph, None if opened is True else opened)
        element_graph, kinds = None, {n.name: n.kind for n in graph}
    else:
        raise RenderError(f"can draw a dagprop.Graph or an element graph (networkx.DiGraph), got "
                          f"{type(graph).__name__}")
    if level == "element":
        if element_graph is None:
            element_graph = graph.element_graph()
        drawing = _ElementDrawing(element_graph, state or State.from_element_graph(element_graph), options,
                                  highlight, kinds, getattr(graph, "expansions", None))
        count = element_graph.number_of_nodes()
    else:
        drawing = _TensorDrawing(graph, state or State.from_graph(graph), options, highlight)
        count = len(graph)
    if options.max_nodes is not None and count > options.max_nodes:
        if level == "element":
            warnings.warn(f"the element graph has {count} nodes, more than max_nodes={options.max_nodes}: drawing "
                          f"names only, without numbers; pass max_nodes=None to draw everything", LargeGraphWarning,
                          stacklevel=3)
            drawing.compact = True
        else:
            if graph is not source:  # fold the composites again
                drawing = _TensorDrawing(source, state or State.from_graph(source), options, highlight)
            drawing.collapse()
            if len(source) - len(drawing.hidden) <= options.max_nodes:
                view = "a collapsed view (composites folded, chains of single-input ops summarised, arrays summarised)"
            else:  # nothing much to fold: summarise by depth
                drawing = _OverviewDrawing(source, drawing.state, drawing.highlight)
                view = (f"an overview: one box per band of depth ({len(drawing.bands)} boxes), counting nodes, ops "
                        f"and gradients")
            warnings.warn(f"the graph has {count} nodes, more than max_nodes={options.max_nodes}: drawing {view}; "
                          f"pass max_nodes=None to draw everything", LargeGraphWarning, stacklevel=3)
    lines = _preamble(options, bool(drawing.state.grads), level) + drawing.body()
    return graphviz.Digraph(name="dagprop", body=[f"\t{line}\n" for line in lines])


def _preamble(options: _Options, has_grads: bool, level: str) -> list[str]:
    graph_attrs = [("rankdir", options.rankdir), ("fontname", quoting.quote("Helvetica")), ("nodesep", "0.35"),
                   ("ranksep", "0.55"), ("bgcolor", quoting.quote("white")), ("pad", "0.2")]
    if level == "element":
        # a second crossing minimisation across clusters would undo the index order of each tensor
        graph_attrs.append(("remincross", "false"))
    label_lines = []
    if options.title is not None:
        label_lines.append(f'<FONT POINT-SIZE="16"><B>{quoting.html(options.title)}</B></FONT>')
    if options.legend and has_grads and "grad" in options.show:
        label_lines.append(f'<FONT POINT-SIZE="10" COLOR="{CAPTION}">black: forward values; </FONT>'
                           f'<FONT POINT-SIZE="10" COLOR="{RED}">red: gradients \u2202L/\u2202\u00b7, on nodes and '
                           f'on the edges they flowed back along</FONT>')
    if label_lines:
        graph_attrs += [("labelloc", "t"), ("labeljust", "l"), ("label", "<" + "<BR/>".join(label_lines) + ">")]
    return [f"graph [{_attrs(graph_attrs)}]",
            f"node [fontname={quoting.quote('Helvetica')} fontsize=11 margin={quoting.quote('0.1,0.05')}]",
            f"edge [fontname={quoting.quote('Helvetica')} fontsize=9 arrowsize=0.7 color={quoting.quote('#555555')}]"]


def to_dot(graph: Graph | nx.DiGraph, *, show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "grad",
           precision: int = 4, rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (),
           title: str | None = None, level: str = "tensor", max_matrix: tuple[int, int] = (6, 6),
           max_nodes: int | None = 300, state: State | None = None, legend: bool = True) -> str:
    """The annotated diagram of ``graph`` as DOT text. Pure: needs no Graphviz binary.

    The same graph and arguments give the same text, byte for byte.

    Parameters
    ----------
    graph : Graph or networkx.DiGraph
        A dagprop graph, or an element graph such as :meth:`Graph.element_graph` returns
        (then ``level`` is "element").
    show : iterable of {"value", "grad"}
        What each node shows besides its name, op and shape.
    edge_labels : {"grad", "value", "weight", None}
        "grad": the gradient that flowed back along each edge (red); at the element
        level also the local derivative. "value": the forward value carried. "weight":
        the local derivative only (element level). None: no labels.
    precision : int
        Significant digits of the numbers drawn.
    rankdir : {"LR", "RL", "TB", "BT"}
        Direction of the forward flow.
    expand : iterable of str or bool
        Composite ops to draw as their circuit, each in a cluster named after its
        node (True: all of them). See :func:`dagprop.expand.expanded`.
    highlight : node, edge, path or a list of them
        Drawn bold in a distinct colour: node names or nodes, edges as
        ``(source, consumer)`` or ``(source, consumer, slot)``, and path objects
        (anything with ``.nodes``, optionally ``.edges``); each path gets its own
        colour. Element names such as ``"W1[2,0]"`` highlight their tensor at the
        tensor level.
    title : str, optional
        A heading drawn above the diagram.
    level : {"tensor", "element"}
        "element" draws :meth:`Graph.element_graph`: one node per element, edges
        labelled with local derivatives.
    max_matrix : (int, int)
        Arrays with at most this many rows and columns are drawn in full; larger
        ones (and arrays of three or more dimensions) are summarised.
    max_nodes : int or None
        Above this many nodes a warning is given and a collapsed view drawn.
    state : State, optional
        The numbers to draw (default: :meth:`State.from_graph` of the graph drawn).
    legend : bool
        Say under the title what black and red mean, when gradients are shown.

    Returns
    -------
    str

    Raises
    ------
    RenderError
        For an option that is not understood, or a highlighted name not in the graph.

    Warns
    -----
    LargeGraphWarning
        When the graph has more than ``max_nodes`` nodes.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> dot = to_dot(g)
    >>> dot.splitlines()[0]
    'digraph dagprop {'
    >>> [line.strip()[:11] for line in dot.splitlines() if "->" in line]
    ['n0 -> n1 [l', 'n0 -> n1 [l']
    """
    return digraph(graph, show=show, edge_labels=edge_labels, precision=precision, rankdir=rankdir, expand=expand,
                   highlight=highlight, title=title, level=level, max_matrix=max_matrix, max_nodes=max_nodes,
                   state=state, legend=legend).source


def render(graph: Graph | nx.DiGraph, path: str | FilePath | None = None, *, format: str | None = None,
           show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "grad", precision: int = 4,
           rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (), title: str | None = None,
           level: str = "tensor", max_matrix: tuple[int, int] = (6, 6), max_nodes: int | None = 300,
           state: State | None = None, legend: bool = True, timeout: float = 60.0) -> graphviz.Digraph:
    """Draw ``graph``; with ``path``, also write the picture there.

    Parameters
    ----------
    graph, show, edge_labels, precision, rankdir, expand, highlight, title, level, max_matrix, max_nodes, state, legend
        As in :func:`to_dot`.
    path : str or pathlib.Path, optional
        Where to write. The format comes from the suffix (.svg, .png, .pdf, .dot)
        unless ``format`` is given.
    format : str, optional
        Any Graphviz output format ("svg", "png", "pdf", ...), or "dot" for the text.
    timeout : float
        Seconds Graphviz may take before it is stopped.

    Returns
    -------
    graphviz.Digraph
        Displays itself in Jupyter; ``.source`` is the DOT text.

    Raises
    ------
    RenderError
        When Graphviz's dot is missing (with how to install it), exceeds ``timeout``
        or fails, or for an unknown format.

    Examples
    --------
    >>> import os, tempfile
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> L = (g.param("w", [1.0, -2.0]) ** 2).sum()
    >>> g.forward(); g.backward(L)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = dp.render(g, os.path.join(tmp, "graph.dot"))
    ...     open(os.path.join(tmp, "graph.dot")).read() == d.source
    True
    """
    diagram = digraph(graph, show=show, edge_labels=edge_labels, precision=precision, rankdir=rankdir,
                      expand=expand, highlight=highlight, title=title, level=level, max_matrix=max_matrix,
                      max_nodes=max_nodes, state=state, legend=legend)
    if path is not None:
        write(diagram.source, path, format=format, timeout=timeout)
    return diagram


def mimebundle(graph: Graph, **options: Any) -> dict[str, str]:
    """What Jupyter displays for a graph: its annotated diagram as SVG.

    Falls back to text saying why when Graphviz's dot is missing or fails.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); _ = g.param("x", 1.0) * 2.0
    >>> sorted(g._repr_mimebundle_())
    ['image/svg+xml', 'text/plain']
    """
    text = repr(graph)
    try:
        svg = pipe(to_dot(graph, **options), "svg").decode("utf-8")
    except RenderError as exc:
        return {"text/plain": f"{text}\n(no diagram: {exc})"}
    return {"image/svg+xml": svg, "text/plain": text}
