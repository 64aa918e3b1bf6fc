"""Diagrams: DOT text (pure, deterministic), real SVG from the real dot, options and failures."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest

import dagprop as dp

from helpers import needs_dot
from dagprop.drawing import digraph, mimebundle
from dagprop.drawing.dot import pipe, write
from dagprop.drawing.labels import format_number
from dagprop.drawing.style import PALETTE, RED
from dagprop.errors import LargeGraphWarning

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

# Render tests use the real Graphviz; CI installs it, so there they always run.


# -- fixtures ------------------------------------------------------------------------------------


def tiny() -> dp.Graph:
    g = dp.Graph()
    w = g.param("w", [1.5, -2.0])
    x = g.input("x", [2.0, 0.5])
    y = g.op("mul", w, x, name="y")
    loss = g.op("sum", y, name="L")
    g.forward()
    g.backward(loss)
    return g


def values_layer() -> dp.Graph:
    """The Values section of the attention note: v = V x + b, z = v alpha^T, L2 loss."""
    g = dp.Graph()
    x = g.input("x", [[1, 3], [4, .3], [2, 2]])
    V = g.param("V", [[-1, 6, 7], [2, 2, 2], [5, 5, 5]])
    b = g.param("b", np.zeros((3, 1)))
    v = g.op("add", g.op("matmul", V, x, name="Vx"), b, name="v")
    alpha = g.input("alpha", [[5, -2]])
    z = g.op("matmul", v, g.op("transpose", alpha, name="alpha_T"), name="z")
    loss = g.op("l2_loss", z, g.input("y", [[-1], [20], [5]]), name="L")
    g.forward()
    g.backward(loss)
    return g


def fan_out() -> dp.Graph:
    """x feeds two consumers (and one of them twice): its gradient is a sum of three contributions."""
    g = dp.Graph()
    x = g.param("x", [3.0, -1.0])
    sq = g.op("mul", x, x, name="sq")
    t = g.op("add", sq, x, name="t")
    g.op("sum", t, name="L")
    g.forward()
    g.backward("L")
    return g


def softmax_graph() -> dp.Graph:
    g = dp.Graph()
    e = g.param("e", [[1.0, 2.0]])
    alpha = g.op("softmax", e, name="alpha")
    g.op("l2_loss", alpha, g.input("y", [[0.0, 1.0]]), name="L")
    g.forward()
    g.backward("L")
    return g


def svg_of(graph, **options) -> ET.Element:
    return ET.fromstring(pipe(dp.to_dot(graph, **options), "svg").decode("utf-8"))


def texts(root: ET.Element) -> list[str]:
    return [" ".join("".join(t.itertext()).replace("\xa0", " ").split()) for t in root.iter(f"{SVG}text")]


def node_groups(root: ET.Element) -> dict[str, ET.Element]:
    """SVG node groups by DOT identifier (n0, n1, ...)."""
    return {g.find(f"{SVG}title").text: g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}


def edge_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]


def tooltip_of(group: ET.Element) -> str:
    return next(a.get(f"{XLINK}title") for a in group.iter(f"{SVG}a"))


# -- DOT text ------------------------------------------------------------------------------------

# Reviewed by hand: w = [1.5, -2], x = [2, 0.5], y = w * x = [3, -1], L = sum(y) = 2;
# dL/dy = [1, 1], dL/dw = x = [2, 0.5]; x is an input, so it gets no gradient and is grey.
TABLE = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
EDGE_TABLE = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
MONO = 'FACE="DejaVu Sans Mono,Courier New,Courier,monospace"'


def _head(name: str, colour: str, subtitle: str) -> str:
    return (f'<TR><TD COLSPAN="2"><FONT COLOR="{colour}"><B>{name}</B></FONT></TD></TR>'
            f'<TR><TD COLSPAN="2"><FONT COLOR="#6b6b6b" POINT-SIZE="9">{subtitle}</FONT></TD></TR>')


def _row(caption: str, caption_colour: str, content: str) -> str:
    return (f'<TR><TD ALIGN="RIGHT" VALIGN="MIDDLE"><FONT COLOR="{caption_colour}" POINT-SIZE="8">{caption}</FONT>'
            f'</TD><TD ALIGN="LEFT">{content}</TD></TR>')


def _matrix(text: str, colour: str, size: int = 10) -> str:
    return f'<FONT {MONO} COLOR="{colour}" POINT-SIZE="{size}">{text}<BR ALIGN="LEFT"/></FONT>'


GOLDEN_TINY = "\n".join([
    "digraph dagprop {",
    '\tgraph [rankdir=LR fontname="Helvetica" nodesep=0.35 ranksep=0.55 bgcolor="white" pad=0.2]',
    '\tnode [fontname="Helvetica" fontsize=11 margin="0.1,0.05"]',
    '\tedge [fontname="Helvetica" fontsize=9 arrowsize=0.7 color="#555555"]',
    # w: a param, value and gradient with their columns lined up
    f'\tn0 [label=<{TABLE}{_head("w", "#1a1a1a", "param  (2,)")}'
    f'{_row("value", "#6b6b6b", _matrix("[ 1.5   -2 ]", "#1a1a1a"))}'
    f'{_row("grad", "#d62728", _matrix("[   2  0.5 ]", "#d62728"))}</TABLE>> '
    'shape=box style="filled,bold" fillcolor="#e4eefb" color="#2b62b8" '
    'tooltip="w (param)\\nshape (2,)\\nvalue:\\n[1.5, -2.0]\\ngradient:\\n[2.0, 0.5]"]',
    # x: an input without gradient, grey
    f'\tn1 [label=<{TABLE}{_head("x", "#8c8c8c", "input  (2,)")}'
    f'{_row("value", "#6b6b6b", _matrix("[ 2  0.5 ]", "#8c8c8c"))}</TABLE>> '
    'shape=box style="filled" fillcolor="#f7f7f7" color="#c4c4c4" '
    'tooltip="x (input)\\nshape (2,)\\nvalue:\\n[2.0, 0.5]"]',
    f'\tn2 [label=<{TABLE}{_head("y", "#1a1a1a", "mul  (2,)")}'
    f'{_row("value", "#6b6b6b", _matrix("[ 3  -1 ]", "#1a1a1a"))}'
    f'{_row("grad", "#d62728", _matrix("[ 1   1 ]", "#d62728"))}</TABLE>> '
    'shape=box style="rounded,filled" fillcolor="#ffffff" color="#3d3d3d" '
    'tooltip="y (mul)\\nshape (2,)\\nvalue:\\n[3.0, -1.0]\\ngradient:\\n[1.0, 1.0]"]',
    f'\tn3 [label=<{TABLE}{_head("L", "#1a1a1a", "sum  scalar")}'
    f'{_row("value", "#6b6b6b", chr(60) + "FONT COLOR=" + chr(34) + "#1a1a1a" + chr(34) + " POINT-SIZE=" + chr(34) + "10" + chr(34) + ">2</FONT>")}'
    f'{_row("grad", "#d62728", chr(60) + "FONT COLOR=" + chr(34) + "#d62728" + chr(34) + " POINT-SIZE=" + chr(34) + "10" + chr(34) + ">1</FONT>")}</TABLE>> '
    'shape=box style="rounded,filled" fillcolor="#ffffff" color="#3d3d3d" '
    'tooltip="L (sum)\\nshape scalar\\nvalue:\\n2.0\\ngradient:\\n1.0"]',
    # w -> y carried dL/dw = x back; the slot name "a" above it; black and red tracks
    f'\tn0 -> n2 [label=<{EDGE_TABLE}<TR><TD><FONT COLOR="#6b6b6b" POINT-SIZE="8">a</FONT></TD></TR>'
    f'<TR><TD>{_matrix("[ 2  0.5 ]", "#d62728", 9)}</TD></TR></TABLE>> '
    'tooltip="w → y (argument 0: a)\\nforward value:\\n[1.5, -2.0]\\ngradient sent back along this edge:\\n[2.0, 0.5]" '
    'labeltooltip="w → y (argument 0: a)\\nforward value:\\n[1.5, -2.0]\\ngradient sent back along this edge:'
    '\\n[2.0, 0.5]" color="#1a1a1a:#d62728"]',
    # x -> y carried nothing back: only the slot name, faint
    f'\tn1 -> n2 [label=<{EDGE_TABLE}<TR><TD><FONT COLOR="#6b6b6b" POINT-SIZE="8">b</FONT></TD></TR></TABLE>> '
    'tooltip="x → y (argument 1: b)\\nforward value:\\n[2.0, 0.5]" '
    'labeltooltip="x → y (argument 1: b)\\nforward value:\\n[2.0, 0.5]" color="#b5b5b5"]',
    f'\tn2 -> n3 [label=<{EDGE_TABLE}<TR><TD>{_matrix("[ 1  1 ]", "#d62728", 9)}</TD></TR></TABLE>> '
    'tooltip="y → L (argument 0: x)\\nforward value:\\n[3.0, -1.0]\\ngradient sent back along this edge:\\n[1.0, 1.0]" '
    'labeltooltip="y → L (argument 0: x)\\nforward value:\\n[3.0, -1.0]\\ngradient sent back along this edge:'
    '\\n[1.0, 1.0]" color="#1a1a1a:#d62728"]',
    "}",
    "",
])


class TestToDot:
    def test_golden(self):
        assert dp.to_dot(tiny(), legend=False) == GOLDEN_TINY

    def test_same_graph_same_text(self):
        g = values_layer()
        assert dp.to_dot(g) == dp.to_dot(g)

    def test_two_equal_graphs_same_text(self):
        assert dp.to_dot(values_layer(), expand=True) == dp.to_dot(values_layer(), expand=True)
        assert dp.to_dot(softmax_graph(), expand=True) == dp.to_dot(softmax_graph(), expand=True)

    def test_method_and_digraph_agree(self):
        g = tiny()
        assert digraph(g).source == dp.to_dot(g)
        assert isinstance(g.render(), type(digraph(g)))

    def test_legend_and_title(self):
        dot = dp.to_dot(tiny(), title="My <graph>")
        assert "My &lt;graph&gt;" in dot and "red: gradients" in dot

    def test_no_legend_without_gradients(self):
        g = dp.Graph()
        g.op("sum", g.param("w", [1.0]), name="L")
        g.forward()
        assert "red: gradients" not in dp.to_dot(g)

    def test_show_nothing(self):
        dot = dp.to_dot(tiny(), show=(), edge_labels=None)
        label_part = "".join(line.split("tooltip=")[0] for line in dot.splitlines())
        assert "value" not in label_part and "grad" not in label_part and "[ " not in label_part

    def test_show_values_only(self):
        dot = dp.to_dot(tiny(), show="value")
        assert ">value<" in dot and ">grad<" not in dot

    def test_edge_labels_value(self):
        dot = dp.to_dot(tiny(), edge_labels="value")
        edge = next(line for line in dot.splitlines() if line.startswith("\tn0 -> n2"))
        assert "[ 1.5  -2 ]" in edge and '"#d62728" POINT-SIZE="9"' not in edge

    def test_precision(self):
        g = dp.Graph()
        g.param("p", [np.pi])
        assert "3.14159" in dp.to_dot(g, precision=6) and "3.142" in dp.to_dot(g)

    def test_large_arrays_are_summarised(self):
        g = dp.Graph()
        g.param("big", np.arange(70.0).reshape(7, 10))
        dot = dp.to_dot(g)
        assert "min 0  mean 34.5  max 69" in dot and f"norm {format_number(np.linalg.norm(np.arange(70.0)))}" in dot
        assert "[ 0  1" not in dot
        assert "[  0   1   2" in dp.to_dot(g, max_matrix=(7, 10))

    def test_three_dimensional_arrays_are_summarised(self):
        g = dp.Graph()
        g.param("cube", np.ones((2, 2, 2)))
        assert "min 1  mean 1  max 1" in dp.to_dot(g)

    def test_non_finite_numbers(self):
        g = dp.Graph()
        g.param("odd", [np.nan, np.inf, -np.inf])
        assert "[ nan  inf  -inf ]" in dp.to_dot(g)

    def test_greyed_out_leaves(self):
        dot = dp.to_dot(tiny())
        x_line = next(line for line in dot.splitlines() if line.startswith("\tn1 ["))
        assert 'fillcolor="#f7f7f7"' in x_line

    def test_kinds_look_different(self):
        g = dp.Graph()
        w = g.param("w", 1.0)
        c = g.const(2.0, name="c")
        x = g.input("x", 3.0, requires_grad=True)
        g.op("sum", g.op("add", g.op("mul", w, c), x), name="L")
        g.forward()
        g.backward("L")
        lines = {line.split(" ")[0].strip(): line for line in dp.to_dot(g).splitlines()
                 if " [label=" in line and "->" not in line}
        styles = {lines[name].split("style=")[1].split(" ")[0] for name in ("n0", "n1", "n2")}
        assert len(styles) == 3  # param (w), const (c) and input (x) each have their own style
        assert 'style="rounded,filled"' in lines["n3"]  # the mul

    def test_composite_op_has_double_border(self):
        dot = dp.to_dot(softmax_graph())
        alpha = next(line for line in dot.splitlines() if "<B>alpha</B>" in line)
        assert "peripheries=2" in alpha and "softmax (composite)" in alpha

    def test_fan_out_shows_contributions_and_sum(self):
        dot = dp.to_dot(fan_out())
        x_line = next(line for line in dot.splitlines() if line.startswith("\tn0 ["))
        assert "via sq (a)" in x_line and "via sq (b)" in x_line and "via t" in x_line and ">sum<" in x_line
        # 3 + 3 + 1 = 7 and -1 + -1 + 1 = -1: dL/dx = 2x + 1
        assert ">+</FONT>" in x_line and "[ 7  -1 ]" in x_line

    def test_partial_run(self):
        g = tiny()
        partial = g.run.without_grads()
        partial.values = [None] * len(g)
        partial.values[g["w"].index] = np.array([1.5, -2.0])
        dot = dp.to_dot(g, run=partial)
        assert "[ 1.5  -2 ]" in dot
        assert ">grad<" not in dot and "[ 3  -1 ]" not in dot

    def test_partial_run_shows_the_running_sum(self):
        g = fan_out()
        partial = g.run.without_grads()
        for consumer, slot in sorted(g.run.edge_grads):
            if g.nodes[consumer].name == "sq":
                partial.send(consumer, slot, g.run.edge_grads[(consumer, slot)])
        x_line = next(line for line in dp.to_dot(g, run=partial).splitlines() if line.startswith("\tn0 ["))
        assert "via sq (a)" in x_line and "via t" not in x_line and "[ 6  -2 ]" in x_line

    def test_the_run_of_another_graph_is_refused(self):
        with pytest.raises(dp.RenderError, match="run= must be a record of the graph drawn"):
            dp.to_dot(tiny(), run=fan_out().run)

    def test_run_and_expand_are_not_combined(self):
        g = fan_out()
        with pytest.raises(dp.RenderError, match="cannot be combined"):
            dp.to_dot(g, run=g.run, expand=True)

    def test_the_run_records_every_edge(self):
        run = fan_out().run
        assert {(s.name, c.name, slot) for s, c, slot, _ in run.edges()} == {
            ("x", "sq", 0), ("x", "sq", 1), ("sq", "t", 0), ("x", "t", 1), ("t", "L", 0)}
        np.testing.assert_array_equal(run.grad("x"), [7.0, -1.0])

    @pytest.mark.parametrize("options, message", [
        ({"show": ("values",)}, "show="),
        ({"edge_labels": "gradient"}, "edge_labels="),
        ({"level": "neuron"}, "level="),
        ({"rankdir": "up"}, "rankdir="),
        ({"precision": 0}, "precision="),
        ({"max_matrix": 6}, "max_matrix="),
        ({"max_nodes": 0}, "max_nodes="),
        ({"highlight": "nope"}, "not a node"),
        ({"highlight": [3]}, "highlight="),
    ])
    def test_bad_options(self, options, message):
        with pytest.raises(dp.RenderError, match=message):
            dp.to_dot(tiny(), **options)

    def test_not_a_graph(self):
        with pytest.raises(dp.RenderError, match="dagprop.Graph"):
            dp.to_dot("graph")

    def test_empty_graph(self):
        assert dp.to_dot(dp.Graph()).startswith("digraph dagprop {")

    def test_graph_never_run(self):
        g = dp.Graph()
        g.op("sum", g.input("x"), name="L")
        dot = dp.to_dot(g)
        assert "value" not in dot.split("tooltip")[0].split("n1 [")[-1]


class TestFormatNumber:
    @pytest.mark.parametrize("x, expected", [(0.0, "0"), (-0.0, "0"), (1.0, "1"), (-2.5, "-2.5"),
                                             (1234567.0, "1.235e+06"), (1e-5, "1e-05"), (np.float32(0.5), "0.5")])
    def test_values(self, x, expected):
        assert format_number(x) == expected


# -- highlighting ---------------------------------------------------------------------------------


class TestHighlight:
    def test_node(self):
        lines = dp.to_dot(tiny(), highlight="y").splitlines()
        y = next(line for line in lines if line.startswith("\tn2 ["))
        assert 'color="#ff7f0e" penwidth=3' in y

    def test_node_object_and_edge(self):
        g = tiny()
        dot = dp.to_dot(g, highlight=[g["w"], ("w", "y")])
        edge = next(line for line in dot.splitlines() if line.startswith("\tn0 -> n2"))
        assert 'color="#ff7f0e" penwidth=3' in edge

    def test_edge_with_slot(self):
        dot = dp.to_dot(fan_out(), highlight=("x", "sq", 1))
        edges = [line for line in dot.splitlines() if line.startswith("\tn0 -> n1")]
        assert len(edges) == 2 and "penwidth=3" not in edges[0] and "penwidth=3" in edges[1]

    def test_paths_get_distinct_colours(self):
        g = fan_out()
        first = SimpleNamespace(nodes=["x", "sq", "t", "L"])
        second = SimpleNamespace(nodes=["x", "t", "L"])
        dot = dp.to_dot(g, highlight=[first, second])
        lines = dot.splitlines()
        x_to_t = next(line for line in lines if line.startswith("\tn0 -> n2"))
        t_to_l = next(line for line in lines if line.startswith("\tn2 -> n3"))
        assert f'color="{PALETTE[1]}" penwidth=3' in x_to_t  # second path only
        assert f'color="{PALETTE[0]}:{PALETTE[1]}" penwidth=3' in t_to_l  # shared by both: both colours

    def test_engine_paths(self):
        g = fan_out()
        paths = g.paths("x", "L")
        dot = dp.to_dot(g, highlight=paths)
        assert dot.count("penwidth=3") >= len(paths)

    def test_element_names_map_to_their_tensor(self):
        path = SimpleNamespace(nodes=["w[0]", "y[0]", "L"])
        lines = dp.to_dot(tiny(), highlight=path).splitlines()
        assert "penwidth=3" in next(line for line in lines if line.startswith("\tn0 ["))


# -- element level --------------------------------------------------------------------------------


def hand_built_element_graph() -> nx.DiGraph:
    eg = nx.DiGraph()
    eg.add_node("W1[0,0]", value=0.5, grad=0.25)
    eg.add_node("W1[0,1]", value=-1.0, grad=0.5)
    eg.add_node("x[1]", value=2.0, grad=None)
    eg.add_node("h[0]", value=-1.5, grad=0.25)
    eg.add_node("L", value=1.2, grad=1.0)
    eg.add_edge("W1[0,0]", "h[0]", weight=1.0)
    eg.add_edge("W1[0,1]", "h[0]", weight=2.0)
    eg.add_edge("x[1]", "h[0]", weight=-1.0)
    eg.add_edge("h[0]", "L", weight=0.25)
    return eg


class TestElementLevel:
    def test_hand_built(self):
        dot = dp.to_dot(hand_built_element_graph())
        assert dot.count("subgraph cluster_") == 3  # W1, x, h; L is a scalar on its own
        assert "<B>W1</B>" in dot and "<B>W1[0,1]</B>" in dot
        assert "\u00d72<" in dot  # the local derivative on an edge
        # W1[0,1] -> h[0]: 2 * 0.25 flows back; x[1] gets nothing
        assert '<FONT COLOR="#d62728" POINT-SIZE="9">0.5</FONT>' in dot
        x_edge = next(line for line in dot.splitlines() if "local derivative \u2202h[0]/\u2202x[1]" in line)
        assert "#d62728" not in x_edge.split("tooltip")[0]

    def test_numbers_of_a_hand_built_element_graph(self):
        from dagprop.drawing.element import ElementNumbers

        numbers = ElementNumbers(hand_built_element_graph())
        assert numbers.flow("W1[0,1]", "h[0]") == 0.5
        assert numbers.flow("x[1]", "h[0]") is None

    def test_weight_only_and_compact(self):
        dot = dp.to_dot(hand_built_element_graph(), edge_labels="weight")
        assert "\u00d72<" in dot and 'COLOR="#d62728" POINT-SIZE="9"' not in dot

    def test_from_a_graph(self):
        g = tiny()
        dot = dp.to_dot(g, level="element")
        assert "<B>w[0]</B>" in dot and "<B>y[1]</B>" in dot and "<B>L</B>" in dot

    def test_highlight_elements_and_tensors(self):
        g = tiny()
        dot = dp.to_dot(g, level="element", highlight=[SimpleNamespace(nodes=["w[1]", "y[1]", "L"]), "x"])
        assert dot.count("penwidth=3") == 2 + 3 + 2  # two path edges, three path nodes, both elements of x
        with pytest.raises(dp.RenderError, match="neither an element"):
            dp.to_dot(g, level="element", highlight="w[7]")

    def test_a_node_named_like_an_element_is_drawn_and_highlighted_apart(self):
        g = dp.Graph()
        W = g.param("W", [1.0, 2.0])
        w0 = g.param("W[0]", 5.0)
        g.op("sum", g.op("mul", W, w0, name="m"), name="L")
        g.forward()
        g.backward("L")
        dot = dp.to_dot(g, level="element")
        assert dot.count("<B>W[0]</B>") == 1 and dot.count("<B>W[0][]</B>") == 1  # two elements, two labels

        def marked(dot: str) -> list[str]:
            return re.findall(r"<B>([^<]*)</B>.*penwidth=3", dot)

        assert marked(dp.to_dot(g, level="element", highlight="W[0]")) == ["W[0]"]  # the element of W
        assert marked(dp.to_dot(g, level="element", highlight=w0)) == ["W[0][]"]  # the node, as a Node
        assert marked(dp.to_dot(g, level="element", highlight="W[0][]")) == ["W[0][]"]
        assert marked(dp.to_dot(g, level="element", highlight=W)) == ["W[0]", "W[1]"]
        path = g.paths(w0, "L", index=())[0]
        assert path.nodes == ("W[0][]", "m[1]", "L")  # d L / d W[0] through W[1] * W[0] = 2, the largest
        assert set(marked(dp.to_dot(g, level="element", highlight=path))) == set(path.nodes)
        assert "penwidth=3" in next(line for line in dp.to_dot(g, highlight=path).splitlines()
                                    if "<B>W[0]</B>" in line)  # at the tensor level: the node W[0]

    def test_large_element_graph_is_compact(self):
        eg = nx.DiGraph()
        for k in range(12):
            eg.add_node(f"a[{k}]", value=float(k), grad=1.0)
        with pytest.warns(LargeGraphWarning, match="element graph has 12 nodes"):
            dot = dp.to_dot(eg, max_nodes=10)
        nodes = [line for line in dot.splitlines() if "<B>a[" in line]
        assert len(nodes) == 12 and not any("POINT-SIZE" in line for line in nodes)  # names only

    def test_expanded_graph_groups_the_circuit(self):
        g = dp.Graph()
        alpha = g.op("softmax", g.param("e", [2.0, 1.0]), name="alpha")
        g.op("sum", alpha * g.input("w", [1.0, -2.0]), name="L")
        g.forward()
        g.backward("L")
        dot = dp.to_dot(g, level="element", expand=True)
        assert dot.count("= softmax, opened") == 1
        circuit = dot[dot.index("= softmax, opened"):]
        assert "<B>exp_1</B>" in circuit and "<B>exp_1[0]</B>" in circuit  # names relative to the cluster
        assert "<B>alpha[1]</B>" in circuit

    @needs_dot
    @pytest.mark.parametrize("rankdir", ["LR", "TB", "RL", "BT"])
    def test_tensors_keep_their_index_order(self, rankdir):
        """Each tensor is drawn as a column (a row for TB/BT) in index order, as the notes draw vectors."""
        g = dp.Graph()
        x = g.input("x", [1.0, 2.0, 0.5])
        W = g.param("W", np.arange(12.0).reshape(4, 3) / 10 - 0.5)
        h = g.op("sigmoid", g.op("matmul", W, x, name="a"), name="h")
        g.op("sum", h * h, name="L")
        g.forward()
        g.backward("L")
        source = dp.to_dot(g, level="element", rankdir=rankdir)
        plain = subprocess.run(["dot", "-Tplain"], input=source.encode(), capture_output=True, timeout=60,
                               check=True).stdout.decode()
        position = {p[1]: (float(p[2]), float(p[3])) for p in map(str.split, plain.splitlines()) if p[0] == "node"}
        ids = dict(re.findall(r"\t(e\d+) \[label=<<FONT[^>]*><B>([^<]*)</B>", source))
        along = (lambda i: -position[i][1]) if rankdir in ("LR", "RL") else (lambda i: position[i][0])
        for tensor in ("x", "W", "a", "h"):
            elements = [i for i, name in ids.items() if name.startswith(tensor + "[")]
            assert [ids[i] for i in sorted(elements, key=along)] == [ids[i] for i in elements]

    @needs_dot
    def test_renders(self, tmp_path):
        root = svg_of(hand_built_element_graph())
        shown = texts(root)
        assert "W1[0,1]" in shown and "\u00d72" in shown and "0.5" in shown


# -- titles: one per box ------------------------------------------------------------------------------------


def readme_softmax() -> dp.Graph:
    """The README's softmax: the graph has a sum of its own besides the one in softmax's circuit."""
    g = dp.Graph()
    w = g.ops.softmax(g.param("e", [[2.0, 1.0]]))
    (w * g.const([[1.0, -2.0]])).sum()
    g.forward()
    g.backward("sum_1")
    return g


def titles(dot: str) -> list[str]:
    """The bold title of every node and cluster drawn."""
    return re.findall(r"<B>([^<]*)</B>", dot)


class TestTitles:
    def test_a_short_name_that_would_repeat_is_qualified(self):
        shown = titles(dp.to_dot(readme_softmax(), expand=["softmax"]))
        assert shown.count("sum_1") == 1 and shown.count("softmax_1.sum_1") == 1
        assert "exp_1" in shown and "softmax_1.exp_1" not in shown  # unambiguous names stay short

    def test_the_contributions_use_the_same_titles(self):
        dot = dp.to_dot(readme_softmax(), expand=["softmax"])
        assert "via softmax_1.sum_1<" in dot and "via softmax_1<" in dot

    def test_element_level(self):
        dot = dp.to_dot(readme_softmax(), expand=["softmax"], level="element")
        shown = titles(dot)
        assert shown.count("sum_1") == 1 and shown.count("softmax_1.sum_1") == 1
        assert "softmax_1.sum_1[0,0]" in shown or "softmax_1.sum_1" in shown
        assert "exp_1" in shown and "exp_1[0,1]" in shown

    @pytest.mark.parametrize("level", ["tensor", "element"])
    def test_no_two_boxes_share_a_title(self, level):
        g = dp.Graph()
        x = g.input("x", np.arange(6.0).reshape(2, 3) / 10)
        q = g.param("Q", np.eye(2, 3))
        out = g.op("attention", q, x, x, name="att")
        g.op("sum", out.softmax(axis=0) + out.exp(), name="L")  # the graph's own softmax_1 and exp_1
        g.forward()
        g.backward("L")
        shown = [t for t in titles(dp.to_dot(g, expand=True, level=level, max_nodes=None))]
        repeated = {t for t in shown if shown.count(t) > 1}
        # an opened composite's cluster is titled like its output node, which sits inside it
        assert repeated <= {"att", "softmax_1", "att.softmax_1"}, repeated
        assert all(shown.count(t) <= 2 for t in repeated)


# -- large graphs ----------------------------------------------------------------------------------


def long_chain(n: int) -> dp.Graph:
    g = dp.Graph()
    h = g.param("x", [0.5, -0.25])
    for k in range(n):
        h = g.op("tanh", h) if k % 2 else h * 1.01
    g.op("sum", h, name="L")
    g.forward()
    g.backward("L")
    return g


class TestLargeGraphs:
    def test_warning_and_collapsed_chain(self):
        g = long_chain(400)
        with pytest.warns(LargeGraphWarning, match="more than max_nodes=300"):
            dot = dp.to_dot(g)
        assert len(re.findall(r"^\tn\d+ \[", dot, re.MULTILINE)) == 3  # x, the summarised chain, L
        assert dot.count("->") == 2
        assert "400 ops summarised (mul, tanh)" in dot

    def test_threshold_is_an_option(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dot = dp.to_dot(long_chain(400), max_nodes=None)
        assert dot.count("->") == 601

    def test_expansion_is_folded_again(self):
        g = softmax_graph()
        with pytest.warns(LargeGraphWarning):
            dot = dp.to_dot(g, expand=True, max_nodes=3)
        assert "subgraph cluster" not in dot

    def test_highlighted_nodes_stay_visible(self):
        with pytest.warns(LargeGraphWarning):
            dot = dp.to_dot(long_chain(400), highlight="tanh_100")
        assert "<B>tanh_100</B>" in dot

    @needs_dot
    def test_renders_quickly(self, tmp_path):
        with pytest.warns(LargeGraphWarning):
            dp.render(long_chain(2000), tmp_path / "chain.svg", timeout=20)
        ET.parse(tmp_path / "chain.svg")


# -- real SVG from the real dot ----------------------------------------------------------------------


@needs_dot
class TestSvg:
    @pytest.fixture(scope="class")
    @classmethod
    def root(cls):
        return svg_of(values_layer(), title="Values")

    def test_labels(self, root):
        shown = texts(root)
        for name in ("V", "b", "x", "Vx", "v", "z", "L", "alpha_T"):
            assert name in shown
        assert "param 3×3" in shown and "l2_loss scalar" in shown and "Values" in shown

    def test_values_and_gradients(self, root):
        shown = texts(root)
        assert "[ -1 6 7 ]" in shown  # V's first row
        # dL/db = sum over columns of (z - y) alpha: z - y = [160.4, 28.8, 117], times (5 - 2)
        assert "[ 481.2 ]" in shown

    def test_gradients_are_red(self, root):
        red = [" ".join("".join(t.itertext()).split()) for t in root.iter(f"{SVG}text") if t.get("fill") == RED]
        assert "grad" in red and "[ 481.2 ]" in red
        assert "[ -1 6 7 ]" not in red

    def test_edges_carry_their_gradient_in_red(self, root):
        edge_texts = {tooltip_of(e).split("\n")[0]: [t.get("fill") for t in e.iter(f"{SVG}text")]
                      for e in edge_groups(root)}
        assert RED in edge_texts["b → v (argument 1: b)"]
        assert RED not in edge_texts["x → Vx (argument 1: b)"]  # no gradient flows into data
        red_tracks = [e for e in edge_groups(root) if any(p.get("stroke") == RED for p in e.iter(f"{SVG}path"))]
        assert len(red_tracks) == 5  # V->Vx, Vx->v, b->v, v->z, z->L

    def test_node_tooltips_hold_full_arrays(self, root):
        tips = {tooltip_of(g).split(" (")[0]: tooltip_of(g) for g in node_groups(root).values()}
        assert "value:\n[[-1.0, 6.0, 7.0],\n[2.0, 2.0, 2.0],\n[5.0, 5.0, 5.0]]" in tips["V"]
        assert "gradient:\n[[481.2],\n[86.4],\n[351.0]]" in tips["b"]
        assert "gradient" not in tips["x"]

    def test_kinds_have_their_fills(self, root):
        fills = {tooltip_of(g).split(" (")[0]: g.find(f"{SVG}g/{SVG}a/{SVG}polygon").get("fill")
                 if g.find(f"{SVG}g/{SVG}a/{SVG}polygon") is not None else None
                 for g in node_groups(root).values()}
        assert fills["V"] == "#e4eefb" and fills["x"] == "#f7f7f7"

    def test_expanded_cluster(self):
        root = svg_of(softmax_graph(), expand=["softmax"])
        clusters = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"]
        assert len(clusters) == 1
        assert "alpha" in texts(clusters[0]) and "= softmax, opened" in texts(clusters[0])
        shown = texts(root)
        assert {"exp_1", "sum_1", "reciprocal_1"} <= set(shown)
        assert "via sum_1" in shown and "via alpha" in shown

    def test_highlight_colour_in_svg(self):
        root = svg_of(tiny(), highlight="y")
        strokes = {p.get("stroke") for g in node_groups(root).values() for p in g.iter(f"{SVG}path")}
        strokes |= {p.get("stroke") for g in node_groups(root).values() for p in g.iter(f"{SVG}polygon")}
        assert "#ff7f0e" in strokes


# -- writing files and the dot binary ------------------------------------------------------------------


class TestWrite:
    @needs_dot
    @pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
    def test_format_from_suffix(self, tmp_path, suffix, magic):
        path = tmp_path / f"graph{suffix}"
        diagram = dp.render(tiny(), path)
        assert path.read_bytes().startswith(magic)
        assert diagram.source == dp.to_dot(tiny())

    @needs_dot
    def test_explicit_format(self, tmp_path):
        dp.render(tiny(), tmp_path / "graph.out", format="svg")
        assert (tmp_path / "graph.out").read_bytes().startswith(b"<?xml")

    def test_dot_needs_no_binary(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        dp.render(tiny(), tmp_path / "sub" / "graph.dot")
        assert (tmp_path / "sub" / "graph.dot").read_text() == dp.to_dot(tiny())

    @pytest.mark.parametrize("path, fmt, message", [("graph.jpeg2", None, "cannot tell the format"),
                                                    ("graph", None, "cannot tell the format"),
                                                    ("graph.svg", "nonsense", "unknown output format")])
    def test_bad_format(self, tmp_path, path, fmt, message):
        with pytest.raises(dp.RenderError, match=message):
            dp.render(tiny(), tmp_path / path, format=fmt)

    def test_missing_dot_says_how_to_install(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(dp.RenderError) as info:
            dp.render(tiny(), tmp_path / "graph.svg")
        message = str(info.value)
        assert "apt-get install graphviz" in message and "brew install graphviz" in message
        assert "conda install graphviz" in message and "to_dot" in message
        assert not (tmp_path / "graph.svg").exists()
        assert dp.to_dot(tiny()).startswith("digraph")  # still works

    @needs_dot
    def test_time_limit(self, tmp_path):
        g = dp.Graph()
        total = None
        for k in range(300):
            term = g.param(f"p{k}", [float(k), 1.0]) * g.param(f"q{k}", [1.0, 2.0])
            total = term if total is None else total + term
        g.op("sum", total, name="L")
        g.forward()
        g.backward("L")
        with pytest.raises(dp.RenderError, match="longer than 0.01 s"):
            dp.render(g, tmp_path / "slow.svg", timeout=0.01, max_nodes=None)

    @needs_dot
    def test_dot_failure_is_reported(self):
        with pytest.raises(dp.RenderError, match="dot failed"):
            pipe("digraph { a -> }", "svg")

    def test_write_dot_text(self, tmp_path):
        assert write("digraph { a }", tmp_path / "a.gv").read_text() == "digraph { a }"


class TestJupyter:
    @needs_dot
    def test_mimebundle_is_svg(self):
        bundle = tiny()._repr_mimebundle_()
        root = ET.fromstring(bundle["image/svg+xml"])
        assert root.tag == f"{SVG}svg"
        assert bundle["text/plain"].startswith("<dagprop.Graph")

    def test_without_dot(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        bundle = mimebundle(tiny())
        assert list(bundle) == ["text/plain"] and "apt-get install graphviz" in bundle["text/plain"]


def test_render_is_public():
    assert {"render", "to_dot", "save", "load", "RenderError", "LoadError"} <= set(dp.__all__)
    assert dp.render is dp.render.__globals__["render"]


@needs_dot
def test_dot_binary_is_really_used_in_ci():
    # render tests must not silently skip where Graphviz is expected
    assert shutil.which("dot") is not None
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True, timeout=30)
    assert "graphviz" in (version.stdout + version.stderr).lower()
    assert sys.version_info >= (3, 11)


class TestOverview:
    """A graph still too large after folding gets one box per depth."""

    @staticmethod
    def wide_graph(n_ops=400, seed=0):
        rng = np.random.default_rng(seed)
        g = dp.Graph()
        nodes = [g.param(f"p{i}", rng.standard_normal(4)) for i in range(5)]
        for k in range(n_ops):
            a, b = rng.integers(0, len(nodes), 2)
            nodes.append(g.op(("add", "mul", "sub")[k % 3], nodes[a], nodes[b]))
        loss = nodes[-1].sum()
        g.forward()
        g.backward(loss)
        return g

    def test_boxes_count_nodes_edges_and_gradients_per_depth(self):
        g = self.wide_graph()
        depth = {}  # longest path from a leaf, computed here independently of networkx
        for node in g:
            depth[node.name] = 1 + max((depth[s.name] for s in node.inputs), default=-1)
        assert max(depth.values()) < 40  # one box per depth at this size
        with pytest.warns(LargeGraphWarning, match="overview"):
            dot = dp.to_dot(g, max_nodes=100)
        for d in sorted(set(depth.values())):
            members = [n for n in g if depth[n.name] == d]
            arriving = sum(1 for n in members for s in n.inputs if depth[s.name] != d)
            reached = sum(1 for n in members if n.grad is not None)
            assert f"<B>depth {d}</B>: {len(members)} node" in dot
            if arriving:
                assert f"{arriving} edge{'s' if arriving != 1 else ''} arrive from smaller depths" in dot
            assert f"gradient reached {reached} of {len(members)}" in dot
        assert dot.count("shape=box") == len(set(depth.values()))

    @needs_dot
    def test_a_thousand_node_random_dag_renders_as_an_overview(self, tmp_path):
        g = self.wide_graph(1000, seed=1)
        with pytest.warns(LargeGraphWarning):  # drawn as an overview, not node by node
            dp.render(g, tmp_path / "big.svg", highlight=["p3"])
        svg = (tmp_path / "big.svg").read_text()
        assert "p3" in svg and "depth" in svg

    def test_a_long_chain_still_gets_the_collapsed_view(self):
        g = dp.Graph()
        h = g.param("x", [0.5])
        for _ in range(400):
            h = h.tanh()
        g.forward()
        with pytest.warns(LargeGraphWarning, match="collapsed view"):
            dot = dp.to_dot(g)
        assert "ops summarised" in dot
