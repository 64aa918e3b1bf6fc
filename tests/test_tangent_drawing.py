"""Diagrams of forward mode: each node's tangent and the tangent each edge pushed forward, in a
colour of their own, with a legend entry; alone or beside the gradients; at both levels.

The expected numbers are closed forms worked out here, not read back from the engine:
y = x * w + x, so with dx = 1 (dw = 0), mul_1.tangent = w, y.tangent = w + 1, and
t = tanh(y) has t.tangent = (1 - tanh(y)^2) (w + 1).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import dagprop as dp
from dagprop.drawing.dot import pipe
from dagprop.drawing.labels import format_number
from dagprop.drawing.style import CAPTION, FAINT, GREY, INK, PALETTE, RED, TANGENT, WEIGHT

from helpers import needs_dot

X, W = 0.5, -0.4  # tanh(y) is far from saturated at y = x w + x = 0.3
SVG = "{http://www.w3.org/2000/svg}"
LEGEND = "blue: tangents d(node)/d(direction), pushed forward along each edge"


def scalar_graph(backward: bool = False) -> dp.Graph:
    """y = x * w + x, t = tanh(y), L = sum(t); a jvp along dx = 1 (and a backward pass if asked)."""
    g = dp.Graph()
    x = g.param("x", X)
    w = g.param("w", W)
    y = g.op("add", g.op("mul", x, w, name="mul_1"), x, name="y")
    t = g.op("tanh", y, name="t")
    loss = g.op("sum", t, name="L")
    g.forward()
    if backward:
        g.backward(loss)
    g.jvp({x: 1.0})
    return g


def node_line(dot: str, graph: dp.Graph, name: str) -> str:
    return next(line for line in dot.splitlines() if line.startswith(f"\tn{graph[name].index} ["))


def edge_line(dot: str, graph: dp.Graph, source: str, target: str) -> str:
    prefix = f"\tn{graph[source].index} -> n{graph[target].index} ["
    return next(line for line in dot.splitlines() if line.startswith(prefix))


def label_of(line: str) -> str:
    return line.split(" tooltip=")[0]


def coloured(text: str, colour: str) -> list[str]:
    """The texts drawn in ``colour`` in a label (FONT elements), tags and spacing stripped."""
    found = re.findall(rf'<FONT (?:FACE="[^"]*" )?COLOR="{re.escape(colour)}"[^>]*>(.*?)</FONT>', text)
    return [" ".join(re.sub(r"<[^>]+>", " ", part).split()) for part in found]


def expected(y_tangent: float) -> dict[str, float]:
    y = X * W + X
    return {"x": 1.0, "mul_1": W, "y": y_tangent, "t": (1 - np.tanh(y) ** 2) * y_tangent}


class TestTensorLevel:
    def test_each_node_shows_its_tangent_in_the_tangent_colour(self):
        g = scalar_graph()
        dot = dp.to_dot(g, show=("value", "tangent"))
        numbers = expected(W + 1)
        for name in ("x", "mul_1", "t"):
            label = label_of(node_line(dot, g, name))
            assert coloured(label, TANGENT) == ["tangent", format_number(numbers[name])], name
        assert coloured(label_of(node_line(dot, g, "L")), TANGENT)[-1] == format_number(numbers["t"])
        assert ">grad<" not in dot  # not asked for

    def test_a_node_with_several_inputs_shows_each_tangent_and_their_sum(self):
        g = scalar_graph()
        y = label_of(node_line(dp.to_dot(g, show=("value", "tangent")), g, "y"))
        # y = mul_1 + x: w from mul_1, 1 from x, w + 1 in all
        assert coloured(y, TANGENT) == ["tangent", format_number(W), "+", "1", "=", format_number(W + 1)]
        assert coloured(y, CAPTION)[-3:] == ["from mul_1", "from x", "sum"]

    def test_edges_are_labelled_with_the_tangent_they_pushed_by_default(self):
        g = scalar_graph()
        dot = dp.to_dot(g, show=("value", "tangent"))  # edge_labels="auto": the tangents
        assert dot == dp.to_dot(g, show=("value", "tangent"), edge_labels="tangent")
        y = X * W + X
        pushed = {("x", "mul_1"): W, ("mul_1", "y"): W, ("x", "y"): 1.0,
                  ("y", "t"): (1 - np.tanh(y) ** 2) * (W + 1), ("t", "L"): (1 - np.tanh(y) ** 2) * (W + 1)}
        for (source, target), tangent in pushed.items():
            line = edge_line(dot, g, source, target)
            assert coloured(label_of(line), TANGENT) == [format_number(tangent)], (source, target)
            assert f'color="{INK}:{TANGENT}"' in line  # a blue track beside the black one
            assert "tangent pushed forward along this edge" in line
        w_edge = edge_line(dot, g, "w", "mul_1")  # w did not move: no tangent, a faint edge
        assert TANGENT not in w_edge and f'color="{FAINT}"' in w_edge

    def test_legend_explains_the_tangent_colour_and_grey(self):
        dot = dp.to_dot(scalar_graph(backward=True), show=("value", "tangent"))
        assert LEGEND in dot and f'COLOR="{TANGENT}">{LEGEND}' in dot
        assert "grey: no tangent reached it" in dot
        assert "red: gradients" not in dot and RED not in dot  # gradients were computed, but not asked for

    def test_an_unmoved_leaf_is_grey_in_a_tangent_diagram(self):
        g = scalar_graph()
        dot = dp.to_dot(g, show=("value", "tangent"))
        assert 'fillcolor="#f7f7f7"' in node_line(dot, g, "w")
        assert 'fillcolor="#f7f7f7"' not in node_line(dot, g, "x")

    def test_the_tangent_colour_is_its_own(self):
        assert TANGENT not in (INK, RED, WEIGHT, CAPTION, GREY, FAINT, *PALETTE)
        # it stays apart from the gradients' red and the values' black for the colour-blind too
        for other in (RED, INK):
            assert min(colour_blind_distance(TANGENT, other, kind) for kind in MACHADO) > 40, other

    def test_gradients_and_tangents_together(self):
        g = scalar_graph(backward=True)
        dot = dp.to_dot(g, show=("value", "grad", "tangent"))
        x = label_of(node_line(dot, g, "x"))
        assert coloured(x, TANGENT) == ["tangent", "1"]
        y = X * W + X
        # dL/dx = (1 - tanh(y)^2) (w + 1), received from mul_1 (times w) and from y (times 1)
        assert coloured(x, RED)[-1] == format_number((1 - np.tanh(y) ** 2) * (W + 1))
        assert x.index(">tangent<") < x.index(">grad<")  # forward before backward
        edge = edge_line(dot, g, "x", "mul_1")
        assert f'color="{INK}:{TANGENT}:{RED}"' in edge  # value, tangent and gradient tracks
        assert coloured(label_of(edge), RED) == [format_number((1 - np.tanh(y) ** 2) * W)]  # "auto": gradients
        assert LEGEND in dot and "red: gradients" in dot
        w_edge = edge_line(dot, g, "w", "mul_1")
        assert f'color="{INK}:{RED}"' in w_edge  # a gradient came back, no tangent went forward
        labelled = dp.to_dot(g, show=("value", "grad", "tangent"), edge_labels="tangent")
        assert coloured(label_of(edge_line(labelled, g, "x", "mul_1")), TANGENT) == [format_number(W)]

    def test_with_both_a_node_is_grey_only_when_neither_reached_it(self):
        g = dp.Graph()
        x, w = g.param("x", 2.0), g.param("w", 3.0)
        c = g.input("c", 5.0)
        g.op("sum", g.op("add", g.op("mul", x, w), c), name="L")
        g.forward()
        g.backward("L")
        g.jvp({x: 1.0})
        dot = dp.to_dot(g, show=("value", "grad", "tangent"))
        assert 'fillcolor="#f7f7f7"' not in node_line(dot, g, "w")  # a gradient, no tangent
        assert 'fillcolor="#f7f7f7"' in node_line(dot, g, "c")  # neither
        assert "grey: neither gradient nor tangent reached it" in dot

    def test_vector_tangents_are_drawn_as_arrays(self):
        g = dp.Graph()
        x = g.param("x", [1.0, 2.0])
        w = g.param("w", [3.0, -1.0])
        g.op("add", g.op("mul", x, w), x, name="y")
        g.forward()
        g.jvp({x: [1.0, -2.0]})
        dot = dp.to_dot(g, show=("value", "tangent"))
        # (w + 1) dx = [4, 0]: w dx = [3, 2] from the mul, dx = [1, -2] from x
        assert coloured(label_of(node_line(dot, g, "y")), TANGENT) == ["tangent", "[ 3 2 ]", "+", "[ 1 -2 ]", "=",
                                                                      "[ 4 0 ]"]
        assert coloured(label_of(edge_line(dot, g, "x", "y")), TANGENT) == ["[ 1 -2 ]"]

    def test_before_any_jvp_tangents_draw_nothing(self):
        g = dp.Graph()
        g.op("tanh", g.param("x", 1.0), name="t")
        g.forward()
        dot = dp.to_dot(g, show=("value", "tangent"))
        assert TANGENT not in dot and "tangent" not in "".join(label_of(line) for line in dot.splitlines())

    def test_nodes_added_after_the_jvp_are_drawn_without_a_tangent(self):
        g = scalar_graph()
        g.op("mul", g["L"], 2.0, name="later")  # the run's tangent list is shorter than the node list
        g.forward()
        g.jvp({"x": 1.0})
        g.op("exp", g["later"], name="latest")
        dot = dp.to_dot(g, show=("value", "tangent"))
        assert "tangent" not in label_of(node_line(dot, g, "latest"))

    def test_a_collapsed_scope_counts_the_tangents_it_holds(self):
        g = dp.Graph()
        x = g.param("x", 1.0)
        with g.scope("block"):
            h = g.op("tanh", g.op("mul", x, 2.0))
        g.op("sum", h, name="L")
        g.forward()
        g.jvp({x: 1.0})
        dot = dp.to_dot(g, show=("value", "tangent"), collapse=["block"])
        assert "tangent reached 2 of 3" in dot  # mul and tanh; the constant 2 does not move

    @pytest.mark.parametrize("options, message", [
        ({"show": ("value", "tangents")}, r"show= takes some of \('value', 'grad', 'tangent'\)"),
        ({"edge_labels": "tangents"}, "edge_labels= must be one of"),
    ])
    def test_misspelt_options_are_refused(self, options, message):
        with pytest.raises(dp.RenderError, match=message):
            dp.to_dot(scalar_graph(), **options)


class TestElementLevel:
    def graph(self) -> tuple[dp.Graph, np.ndarray, np.ndarray, np.ndarray]:
        x, w, dx = np.array([0.5, 2.0]), np.array([-0.4, 1.5]), np.array([1.0, -1.0])
        g = dp.Graph()
        xn, wn = g.param("x", x), g.param("w", w)
        g.op("add", g.op("mul", xn, wn, name="mul_1"), xn, name="y")
        g.forward()
        g.jvp({xn: dx})
        return g, x, w, dx

    def test_elements_and_element_edges_show_tangents(self):
        g, _, w, dx = self.graph()
        dot = dp.to_dot(g, level="element", show=("value", "tangent"))
        nodes = {m.group(1): m.group(2) for m in re.finditer(r"<B>([^<]+)</B></FONT>(.*?)</TABLE>", dot)}
        for i in range(2):
            # y[i] = (w[i] + 1) x[i]: its tangent is (w[i] + 1) dx[i]
            assert coloured(nodes[f"y[{i}]"], TANGENT) == [format_number((w[i] + 1) * dx[i])]
            assert coloured(nodes[f"mul_1[{i}]"], TANGENT) == [format_number(w[i] * dx[i])]
        assert not coloured(nodes["w[0]"], TANGENT)
        # the edge x[1] -> mul_1[1]: the local derivative w[1] (green, as beside gradients) times the
        # tail's tangent dx[1]
        edge = next(line for line in dot.splitlines() if 'tooltip="x[1] → mul_1[1]' in line)
        assert coloured(edge, WEIGHT) == [f"×{format_number(w[1])}"]
        assert coloured(edge, TANGENT) == [format_number(w[1] * dx[1])]
        assert LEGEND in dot and "green ×k: the local derivative ∂head/∂tail, times the tail&#39;s tangent" in dot
        assert "blue ×k" not in dot and "grey ×k" not in dot

    def test_element_numbers_match_the_closed_forms(self):
        from dagprop.drawing.element import ElementNumbers

        g, _, w, dx = self.graph()
        numbers = ElementNumbers(g.element_graph())
        for i in range(2):
            assert numbers.tangent(f"y[{i}]") == pytest.approx((w[i] + 1) * dx[i])
            assert numbers.tangent_flow(f"x[{i}]", f"y[{i}]") == pytest.approx(dx[i])
            assert numbers.tangent_flow(f"mul_1[{i}]", f"y[{i}]") == pytest.approx(w[i] * dx[i])
        assert numbers.tangent("w[0]") is None and numbers.tangent_flow("w[0]", "mul_1[0]") is None


# -- colour vision: Machado, Oliveira and Fernandes (2009), severity 1, in linear RGB ----------------

MACHADO = {
    "protan": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                        [-0.003882, -0.048116, 1.051998]]),
    "deutan": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]]),
    "tritan": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                        [0.004733, 0.691367, 0.303900]]),
}


def _lab(linear: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]).clip(1e-12))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def colour_blind_distance(a: str, b: str, kind: str) -> float:
    """CIE76 distance between two colours as someone with ``kind`` colour blindness sees them."""
    def seen(colour: str) -> np.ndarray:
        rgb = np.array([int(colour[k:k + 2], 16) for k in (1, 3, 5)]) / 255
        linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        return _lab(np.clip(MACHADO[kind] @ linear, 0, 1))
    return float(np.linalg.norm(seen(a) - seen(b)))


@needs_dot
def test_the_svg_draws_tangents_in_blue():
    g = scalar_graph()
    root = ET.fromstring(pipe(dp.to_dot(g, show=("value", "tangent")), "svg").decode("utf-8"))
    blue = [" ".join("".join(t.itertext()).split()) for t in root.iter(f"{SVG}text") if t.get("fill") == TANGENT]
    assert "tangent" in blue and format_number(W + 1) in blue and format_number(W) in blue
    tracks = [p for p in root.iter(f"{SVG}path") if p.get("stroke") == TANGENT]
    assert len(tracks) == 5  # every edge but w -> mul_1
