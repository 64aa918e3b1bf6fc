"""The element-level diagram: one node per element (neuron), edges labelled with local
partial derivatives and the gradient each carried back (or the tangent each pushed forward)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import networkx as nx
import numpy as np

from ..errors import RenderError
from ..run import Run
from . import quoting
from .labels import format_number, full_text, noise_scale, shown_number
from .options import ELEMENT, Options, highlights, present_flows, unreached
from .style import CAPTION, GREY, INK, RED, TANGENT, WEIGHT, dot_attrs, kind_look
from .clusters import Clusters, ClusterKey, ScopePath, short_names

if TYPE_CHECKING:
    from ..expand import Expansion


class ElementNumbers:
    """The value, gradient and tangent of each element, and the gradient and tangent along each
    element edge.

    Read from the run the element graph was made from (``element_graph.graph["run"]``),
    so that a partial run (a frame of the player) shows what is known so far; an element
    graph made by hand is read from its ``value`` and ``grad`` attributes. An edge shows
    its gradient, the local derivative times the gradient of its head, once every
    argument slot of the tensor-level edge has sent its part; its tangent, the local
    derivative times the tangent of its tail, once every slot has pushed its part.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); y = (x * x).sum()
    >>> g.forward(); g.backward(y)
    >>> numbers = ElementNumbers(g.element_graph())
    >>> numbers.value("x[1]"), numbers.grad("x[1]")
    (2.0, 4.0)
    >>> g.jvp({x: [1.0, 0.0]})
    >>> ElementNumbers(g.element_graph()).tangent_flow("x[0]", "mul_1[0]")  # d(x*x)/dx * 1
    2.0
    """

    def __init__(self, element_graph: nx.DiGraph, run: Run | None = None) -> None:
        self.eg = element_graph
        self.run = run if run is not None else element_graph.graph.get("run")
        self.arrays: dict[tuple[str, str], np.ndarray | None] = {}
        self.scales: dict[tuple[str, str | None], float] = {}
        if self.run is None:
            self.any_grad = any(g is not None for _, g in element_graph.nodes(data="grad"))
            self.any_tangent = any(t is not None for _, t in element_graph.nodes(data="tangent"))
        else:
            self.any_grad = self.run.has_grads
            self.any_tangent = self.run.has_tangents

    def _array(self, which: str, tensor: str) -> np.ndarray | None:
        key = (which, tensor)
        if key not in self.arrays:
            node = self.run.graph[tensor]
            value = self.run.values[node.index]
            array = (value if which == "value" else self.run.grads[node.index] if which == "grad"
                     else self.run.tangent(node))
            self.arrays[key] = None if array is None else np.broadcast_to(np.asarray(array), np.shape(value))
        return self.arrays[key]

    def _element(self, which: str, name: str) -> float | None:
        data = self.eg.nodes[name]
        if self.run is None or "tensor" not in data:
            return data.get(which)
        array = self._array(which, data["tensor"])
        return None if array is None else float(array[data["index"]])

    def scale(self, which: str, name: str) -> float:
        """What the element's value or gradient (``which``) is judged rounding noise against
        (:func:`~dagprop.drawing.labels.shown_number`): the largest of its tensor's, as the
        tensor view judges it; in an element graph made by hand, the largest of the graph's.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", [1.0, -3.0]); y = (x * 2.0).sum()
        >>> g.forward(); g.backward(y)
        >>> ElementNumbers(g.element_graph()).scale("value", "x[0]")
        3.0
        """
        data = self.eg.nodes[name]
        tensor = data.get("tensor") if self.run is not None else None
        key = (which, tensor)
        if key not in self.scales:
            if tensor is None:
                self.scales[key] = noise_scale([x for _, x in self.eg.nodes(data=which) if x is not None])
            else:
                array = self._array(which, tensor)
                self.scales[key] = 0.0 if array is None else noise_scale(array)
        return self.scales[key]

    def flow_scale(self, source: str, target: str) -> float:
        """What the gradient along an element edge is judged rounding noise against: it is the
        local derivative times the head's gradient, so it shows as 0 exactly when that does."""
        weight = self.eg.edges[source, target].get("weight")
        return abs(float(weight or 0.0)) * self.scale("grad", target)

    def value(self, name: str) -> float | None:
        """The element's value, or None while unknown."""
        return self._element("value", name)

    def grad(self, name: str) -> float | None:
        """The element's gradient, or None while none has reached it."""
        return self._element("grad", name)

    def tangent(self, name: str) -> float | None:
        """The element's tangent, or None while none has reached it."""
        return self._element("tangent", name)

    def tangent_scale(self, source: str, target: str) -> float:
        """What the tangent along an element edge is judged rounding noise against: it is the local
        derivative times the tail's tangent, so it shows as 0 exactly when that does."""
        weight = self.eg.edges[source, target].get("weight")
        return abs(float(weight or 0.0)) * self.scale("tangent", source)

    def tangent_flow(self, source: str, target: str) -> float | None:
        """The tangent pushed forward along the element edge source -> target, or None."""
        weight = self.eg.edges[source, target].get("weight")
        tail = self.tangent(source)
        if weight is None or tail is None:
            return None
        if self.run is None or "tensor" not in self.eg.nodes[target]:
            return weight * tail if self.tangent(target) is not None else None
        consumer = self.run.graph[self.eg.nodes[target]["tensor"]]
        producer = self.eg.nodes[source]["tensor"]
        slots = [slot for slot, s in enumerate(consumer.inputs) if s.name == producer]
        if any((consumer.index, slot) not in self.run.edge_tangents for slot in slots):
            return None
        return weight * tail

    def flow(self, source: str, target: str) -> float | None:
        """The gradient sent back along the element edge source -> target, or None."""
        weight = self.eg.edges[source, target].get("weight")
        head = self.grad(target)
        if weight is None or head is None:
            return None
        if self.run is None or "tensor" not in self.eg.nodes[source]:
            return weight * head if self.grad(source) is not None else None  # only to elements that receive one
        consumer = self.run.graph[self.eg.nodes[target]["tensor"]]
        producer = self.eg.nodes[source]["tensor"]
        slots = [slot for slot, s in enumerate(consumer.inputs) if s.name == producer]
        if any((consumer.index, slot) not in self.run.edge_grads for slot in slots):
            return None
        return weight * head


class ElementDrawing:
    """Builds the DOT statements of an element-level diagram: one node per element (neuron)."""

    def __init__(self, element_graph: nx.DiGraph, numbers: ElementNumbers, options: Options, highlight: Any,
                 kinds: Mapping[str, str], expansions: Mapping[str, Expansion] | None = None,
                 scopes: Mapping[str, ScopePath] | None = None) -> None:
        self.eg = element_graph
        self.numbers = numbers
        self.run = numbers.run  # the record drawn (its seeds name what the gradients are of), or None
        self.options = options
        self.order = list(element_graph.nodes)
        self.ids = {name: f"e{k}" for k, name in enumerate(self.order)}
        self.kinds = kinds
        self.compact = False
        self.any_grad = numbers.any_grad
        self.drawn_flows = present_flows(options.flows, numbers.any_grad, numbers.any_tangent)
        self.tensors: dict[str, list[str]] = {}
        for name in self.order:
            self.tensors.setdefault(self.tensor_of(name), []).append(name)
        self.expansions = dict(expansions or {})
        self.owner: dict[str, str] = {}  # tensor -> the innermost opened composite it belongs to
        for expansion in self.expansions.values():
            for tensor in expansion.nodes:
                self.owner[tensor] = expansion.name
        self.scopes = dict(scopes or {})  # tensor -> its scope, drawn as a cluster
        self.titles = short_names(self.tensors, self.owner, self.expansions)
        self.highlight = highlights(highlight, self._resolve)

    def display(self, name: str, tensor: str) -> str:
        """``name`` (of ``tensor`` or one of its elements) as titled: without the prefix of the opened
        composite its tensor belongs to, unless another tensor of the diagram would get the same title."""
        title = self.titles.get(tensor, tensor)
        return title + name[len(tensor):] if name.startswith(tensor) else name

    def tensor_of(self, name: str) -> str:
        tensor = self.eg.nodes[name].get("tensor")
        if tensor is None:
            match = ELEMENT.match(name)
            tensor = match["tensor"] if match else name
        return tensor

    def _resolve(self, name: str, is_node: bool = False) -> list[str]:
        if is_node and name in self.tensors:  # a Node: its elements, even if an element has its name
            return list(self.tensors[name])
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
        value = self.numbers.value(name)
        grad = self.numbers.grad(name)
        tangent = self.numbers.tangent(name)
        kind = self.kind_of(name)
        greyed = unreached(kind, self.drawn_flows, {"grad": grad, "tangent": tangent})
        colour = GREY if greyed else INK
        shown = self.display(name, self.tensor_of(name))
        lines = [f'<FONT COLOR="{colour}"><B>{quoting.html(shown)}</B></FONT>']
        if not self.compact:
            if "value" in options.show and value is not None:
                text = shown_number(value, self.numbers.scale("value", name), options.precision)
                lines.append(f'<FONT COLOR="{colour}" POINT-SIZE="10">{text}</FONT>')
            if "tangent" in options.show and tangent is not None:
                text = shown_number(tangent, self.numbers.scale("tangent", name), options.precision)
                lines.append(f'<FONT COLOR="{TANGENT}" POINT-SIZE="10">{text}</FONT>')
            if "grad" in options.show and grad is not None:
                text = shown_number(grad, self.numbers.scale("grad", name), options.precision)
                lines.append(f'<FONT COLOR="{RED}" POINT-SIZE="10">{text}</FONT>')
        _, _, fill, border = kind_look(kind, greyed)
        tip = [quoting.visible(name)]
        data = self.eg.nodes[name]
        if data.get("op"):
            tip[0] += f" (an element of {quoting.visible(self.tensor_of(name))}, op {data['op']})"
        if value is not None:
            tip.append(f"value {full_text(value)}")
        if tangent is not None:
            tip.append(f"tangent {full_text(tangent)}")
        if grad is not None:
            tip.append(f"gradient {full_text(grad)}")
        # one table row per line: with <BR/> the name's underscores and brackets touch the number below
        rows = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
        label = f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{rows}</TABLE>>'
        attrs = [("label", label), ("shape", "ellipse"),
                 ("style", quoting.quote("filled")), ("fillcolor", quoting.quote(fill)),
                 ("color", quoting.quote(border)), ("margin", quoting.quote("0.04,0.02")),
                 ("tooltip", quoting.tooltip("\n".join(tip)))]
        highlight = self.highlight.nodes.get(name)
        if highlight is not None:
            attrs += [("color", quoting.quote(highlight)), ("penwidth", "3")]
        return f"{self.ids[name]} [{dot_attrs(attrs)}]"

    def edge_statement(self, source: str, target: str, data: Mapping[str, Any]) -> str:
        options = self.options
        weight = data.get("weight")
        flow = self.numbers.flow(source, target)
        pushed = self.numbers.tangent_flow(source, target)
        parts = []
        if not self.compact:
            if options.edge_labels in ("grad", "tangent", "weight") and weight is not None:
                # green in every mode: beside blue tangents, a blue multiplier would read as one more tangent
                parts.append(f'<FONT COLOR="{WEIGHT}" POINT-SIZE="9">\u00d7{format_number(weight, options.precision)}'
                             f'</FONT>')
            if options.edge_labels == "grad" and flow is not None:
                text = shown_number(flow, self.numbers.flow_scale(source, target), options.precision)
                parts.append(f'<FONT COLOR="{RED}" POINT-SIZE="9">{text}</FONT>')
            if options.edge_labels == "tangent" and pushed is not None:
                text = shown_number(pushed, self.numbers.tangent_scale(source, target), options.precision)
                parts.append(f'<FONT COLOR="{TANGENT}" POINT-SIZE="9">{text}</FONT>')
            carried = self.numbers.value(source)
            if options.edge_labels == "value" and carried is not None:
                text = shown_number(carried, self.numbers.scale("value", source), options.precision)
                parts.append(f'<FONT COLOR="{CAPTION}" POINT-SIZE="9">{text}</FONT>')
        source_text, target_text = quoting.visible(source), quoting.visible(target)
        tip = [f"{source_text} \u2192 {target_text}"]
        if weight is not None:
            tip.append(f"local derivative \u2202{target_text}/\u2202{source_text} = {full_text(weight)}")
        if pushed is not None:
            tip.append(f"tangent pushed forward along this edge = {full_text(pushed)}")
        if flow is not None:
            tip.append(f"gradient sent back along this edge = {full_text(flow)}")
        attrs = []
        if parts:
            attrs.append(("label", "<" + "<BR/>".join(parts) + ">"))
        attrs.append(("tooltip", quoting.tooltip("\n".join(tip))))
        attrs.append(("labeltooltip", quoting.tooltip("\n".join(tip))))
        colours = self.highlight.edge_colours(source, target, None)
        if colours:
            attrs += [("color", quoting.quote(":".join(colours))), ("penwidth", "3")]
        return f"{self.ids[source]} -> {self.ids[target]} [{dot_attrs(attrs)}]"

    def tensor_lines(self, tensor: str, counter: Iterator[int]) -> list[str]:
        """One tensor's elements, in a cluster named after it unless it is a single scalar."""
        names = self.tensors[tensor]
        if len(names) == 1 and (names[0] == tensor or self.eg.nodes[names[0]].get("index") == ()):
            return [self.node_statement(names[0])]
        _, _, _, border = kind_look(self.kind_of(names[0]), False)
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

    def body(self) -> list[str]:
        counter = itertools.count()
        order = {name: k for k, name in enumerate(self.tensors)}
        clusters = Clusters(self.expansions, self.owner, self.scopes, order, self.titles, filled=False)
        contents: dict[ClusterKey, list[str]] = {}
        for tensor in self.tensors:
            contents.setdefault(clusters.home(tensor), []).extend(self.tensor_lines(tensor, counter))
        lines = clusters.lines(contents, counter)
        for source, target, data in self.eg.edges(data=True):
            lines.append(self.edge_statement(source, target, data))
        return lines
