"""Diagrams of real models: 4-D tensors summarised (one slice drawn on request), scopes collapsed by
depth, the backward pass built as nodes, what the gradients of the legend are of, titles on several
lines, and colours that stay apart for colour-blind readers and are named alike in every mode.

The numbers drawn are checked against NumPy, computed here from the arrays, not read back from
the drawing code."""

from __future__ import annotations

import html
import itertools
import re

import numpy as np
import pytest

import dagprop as dp
from helpers import needs_dot
from dagprop.drawing.dot import pipe
from dagprop.drawing.labels import format_number, full_text, shown_number, noise_scale
from dagprop.drawing.style import (BACKWARD_EDGE, BACKWARD_FILL, CAPTION, CLUSTER_COLOUR, COLOUR_NAMES, FAINT,
                                   GREY, GREYED_LOOK, INK, PALETTE, PALETTE_NAMES, RED, TANGENT, WEIGHT)

# -- graphs ------------------------------------------------------------------------------------------------


def four_d() -> dp.Graph:
    """x (2, 3, 8, 8) through two scaled tanh layers in encoder/layer1 and encoder/layer2, reshaped
    and multiplied into logits in the scope head, and a sum of squares."""
    rng = np.random.default_rng(0)
    g = dp.Graph()
    x = g.input("x", rng.normal(size=(2, 3, 8, 8)))
    with g.scope("encoder"):
        with g.scope("layer1"):
            h = g.op("tanh", x * g.param("w1", rng.normal(size=(1, 3, 1, 1))), name="h1")
        with g.scope("layer2"):
            h = g.op("tanh", h * g.param("w2", rng.normal(size=(1, 3, 1, 1))), name="h2")
    with g.scope("head"):
        flat = g.op("reshape", h, shape=(2, 192), name="flat")
        logits = g.op("matmul", flat, g.param("W", rng.normal(size=(192, 4)) * 0.1), name="logits")
    g.op("sum", logits * logits, name="L")
    g.forward()
    g.backward("L")
    return g


def lenet(batch: int = 2) -> dp.Graph:
    """A LeNet-like CNN: two conv/relu/pool stages in features/conv1 and features/conv2, two dense
    layers in classifier/fc1 and classifier/fc2, cross-entropy."""
    rng = np.random.default_rng(1)
    g = dp.Graph()
    images = g.input("images", rng.normal(size=(batch, 1, 12, 12)))
    labels = g.input("labels", np.eye(3)[rng.integers(0, 3, size=batch)])
    with g.scope("features"):
        with g.scope("conv1"):
            h = g.op("conv2d", images, g.param("conv1.weight", rng.normal(size=(4, 1, 3, 3)) * 0.5),
                     g.param("conv1.bias", np.zeros(4)), padding=1).relu()
            h = g.op("max_pool2d", h, kernel_size=2)
        with g.scope("conv2"):
            h = g.op("conv2d", h, g.param("conv2.weight", rng.normal(size=(8, 4, 3, 3)) * 0.3),
                     g.param("conv2.bias", np.zeros(8))).relu()
            h = g.op("max_pool2d", h, kernel_size=2)
    with g.scope("classifier"):
        flat = g.op("flatten", h, start_axis=1)
        with g.scope("fc1"):
            h = g.op("linear", flat, g.param("fc1.W", rng.normal(size=(32, 16)) * 0.2),
                     g.param("fc1.b", np.zeros(16))).relu()
        with g.scope("fc2"):
            logits = g.op("linear", h, g.param("fc2.W", rng.normal(size=(16, 3)) * 0.2),
                          g.param("fc2.b", np.zeros(3)), name="logits")
    g.op("cross_entropy", logits, labels, name="loss")
    g.forward()
    g.backward("loss")
    return g


def transformer(batch: int = 2, tokens: int = 4, width: int = 8, heads: int = 2, vocabulary: int = 10) -> dp.Graph:
    """A one-block transformer language model: embed, block/attention (layer norm, two heads as 4-D
    tensors, output projection, residual), block/mlp (layer norm, gelu, residual), head."""
    rng = np.random.default_rng(2)
    g = dp.Graph()
    B, T, D, H = batch, tokens, width, heads

    def weight(name: str, *shape: int) -> dp.Node:
        return g.param(name, rng.normal(size=shape) / np.sqrt(shape[0]))

    def split(t: dp.Node) -> dp.Node:
        return g.op("transpose", g.op("reshape", t, shape=(B, T, H, D // H)), axes=(0, 2, 1, 3))

    ids = g.input("tokens", rng.integers(0, vocabulary, size=(B, T)))
    targets = g.input("targets", np.eye(vocabulary)[rng.integers(0, vocabulary, size=B * T)])
    with g.scope("embed"):
        h = g.op("embedding", ids, weight("wte", vocabulary, D)) + g.param("wpe", rng.normal(size=(T, D)) * 0.1)
    with g.scope("block"):
        with g.scope("attention"):
            x = g.op("layer_norm", h, g.param("ln1.w", np.ones(D)), g.param("ln1.b", np.zeros(D)),
                     normalized_shape=(D,))
            heads_out = g.op("attention", split(x @ weight("Wq", D, D)), split(x @ weight("Wk", D, D)),
                             split(x @ weight("Wv", D, D)), name="heads")
            merged = g.op("reshape", g.op("transpose", heads_out, axes=(0, 2, 1, 3)), shape=(B, T, D))
            h = h + g.op("linear", merged, weight("Wo", D, D), g.param("bo", np.zeros(D)))
        with g.scope("mlp"):
            x = g.op("layer_norm", h, g.param("ln2.w", np.ones(D)), g.param("ln2.b", np.zeros(D)),
                     normalized_shape=(D,))
            up = g.op("gelu", g.op("linear", x, weight("W1", D, 4 * D), g.param("b1", np.zeros(4 * D))))
            h = h + g.op("linear", up, weight("W2", 4 * D, D), g.param("b2", np.zeros(D)))
    with g.scope("head"):
        x = g.op("layer_norm", h, g.param("lnf.w", np.ones(D)), g.param("lnf.b", np.zeros(D)), normalized_shape=(D,))
        logits = g.op("reshape", x @ weight("unembed", D, vocabulary), shape=(B * T, vocabulary), name="logits")
    g.op("cross_entropy", logits, targets, name="loss")
    g.forward()
    g.backward("loss")
    return g


def squares_with_backward_nodes() -> dp.Graph:
    """The issue's example: L = sum(x * x) with its backward pass built as nodes."""
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    g.op("sum", x * x, name="L")
    g.forward()
    g.backward("L", create_graph=True)
    return g


# -- reading DOT ------------------------------------------------------------------------------------------


def node_line(dot: str, graph: dp.Graph, name: str) -> str:
    return next(line for line in dot.splitlines() if line.lstrip("\t").startswith(f"n{graph[name].index} ["))


def label_of(line: str) -> str:
    return line.split(" tooltip=")[0]


def boxes(dot: str) -> dict[str, str]:
    """Collapsed scope -> its box's statement."""
    return {re.search(r"<B>([^<]*)</B>", line).group(1): line for line in dot.splitlines()
            if re.match(r"^\s*s\d+ \[", line)}


def edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+) \[(.*)\]$", dot, re.M)


def legend_items(dot: str) -> list[tuple[str, str]]:
    """(colour, text) of every item of the legend."""
    match = re.search(r"^\tgraph \[.* label=<(.*)>\]$", dot, re.M)
    if match is None:
        return []
    return [(colour, html.unescape(text)) for colour, text in
            re.findall(r'<FONT POINT-SIZE="10" COLOR="([^"]+)">(.*?)</FONT>', match.group(1)) if text != "; "]


def legend_text(dot: str) -> str:
    return " | ".join(text for _, text in legend_items(dot))


def dot_text(text: str) -> str:
    """Text as it appears inside a quoted DOT string (tooltips): newlines escaped."""
    return text.replace("\n", "\\n")


def summary_of(array: np.ndarray) -> list[str]:
    """The two summary lines of an array, worked out with NumPy."""
    a = np.asarray(array, dtype=float)
    return [f"min {format_number(a.min())}  mean {shown_number(a.mean(), np.abs(a).max())}  "
            f"max {format_number(a.max())}", f"norm {format_number(np.linalg.norm(a))}"]


# -- the backward pass as nodes ------------------------------------------------------------------------


class TestBackwardPassNodes:
    def test_its_nodes_are_red_dashed_not_grey(self):
        g = squares_with_backward_nodes()
        dot = dp.to_dot(g)
        backward = [n for n in g if n.scope == (dp.backward_graph.SCOPE,)]
        assert len(backward) >= 4
        for node in backward:
            line = node_line(dot, g, node.name)
            assert f'fillcolor="{BACKWARD_FILL}"' in line and f'color="{RED}"' in line and "dashed" in line
            assert GREYED_LOOK[0] not in line and f'<FONT COLOR="{GREY}"><B>' not in line
        legend = legend_text(dot)
        assert "red dashed: the backward pass built as nodes by backward(create_graph=True)" in legend
        assert "backprop did not reach it" not in legend  # every forward node got its gradient

    def test_their_values_are_shown_as_usual(self):
        g = squares_with_backward_nodes()
        dot = dp.to_dot(g)
        line = label_of(node_line(dot, g, "dL/dx"))
        assert np.allclose(g["dL/dx"].value, [2.0, 4.0])
        assert "[ 2  4 ]" in line and 'POINT-SIZE="8">value</FONT>' in line

    def test_gradient_nodes_say_whose_gradient_they_hold(self):
        g = dp.Graph()
        a, b = g.param("a", [1.0, 2.0]), g.param("b", [3.0, 4.0])
        g.op("sum", g.op("add", a, b, name="y"), name="L")
        g.forward()
        g.backward("L", create_graph=True)
        dot = dp.to_dot(g)
        seed = g.run.grad_node("L")
        shared = g.run.grad_node("a")
        assert shared is g.run.grad_node("b") is g.run.grad_node("y")  # add passes its gradient on as it is
        assert "= dL/dL" in label_of(node_line(dot, g, seed.name))
        assert "= dL/dy = dL/da = dL/db" in label_of(node_line(dot, g, shared.name))

    def test_a_name_that_says_it_gets_no_marker(self):
        g = squares_with_backward_nodes()
        assert "= dL/dx" not in label_of(node_line(dp.to_dot(g), g, "dL/dx"))

    def test_the_forward_node_names_its_gradient_node(self):
        g = squares_with_backward_nodes()
        assert "its gradient is computed by the node dL/dx of the backward pass" in node_line(dp.to_dot(g), g, "x")

    def test_edges_into_the_backward_pass_are_dashed_red(self):
        g = squares_with_backward_nodes()
        dot = dp.to_dot(g)
        ids = {f"n{n.index}": n for n in g}
        into = [attrs for _, head, attrs in edges(dot) if dp.backward_graph.SCOPE in ids[head].scope]
        assert into and all(f'color="{BACKWARD_EDGE}" style=dashed' in attrs for attrs in into)
        assert not any(f'color="{FAINT}"' in attrs for attrs in into)

    def test_differentiated_again_its_nodes_get_gradients_and_keep_their_look(self):
        g = squares_with_backward_nodes()
        grad_node = g["x"].grad_node
        g.zero_grad()
        g.backward(grad_node, seed=[1.0, 0.0])
        dot = dp.to_dot(g)
        line = node_line(dot, g, grad_node.name)
        assert f'fillcolor="{BACKWARD_FILL}"' in line and f'<FONT COLOR="{RED}" POINT-SIZE="8">grad</FONT>' in line
        np.testing.assert_allclose(g["x"].grad, [2.0, 0.0])  # d(v . 2x)/dx = 2 v

    def test_collapsed_it_is_one_red_box(self):
        g = squares_with_backward_nodes()
        box = boxes(dp.to_dot(g, depth=1))[dp.backward_graph.SCOPE]
        assert f'fillcolor="{BACKWARD_FILL}"' in box and f'color="{RED}"' in box

    @needs_dot
    def test_renders(self):
        assert pipe(dp.to_dot(squares_with_backward_nodes()), "svg").startswith(b"<?xml")


# -- what the gradients are of --------------------------------------------------------------------------


class TestSeedsInTheLegend:
    def test_a_loss_named_otherwise_is_named(self):
        assert "red: gradients ∂loss/∂·, on nodes" in legend_text(dp.to_dot(lenet()))

    def test_a_seeded_backward_pass_from_a_gradient_node(self):
        g = squares_with_backward_nodes()
        grad_node = g["x"].grad_node
        g.zero_grad()
        g.backward(grad_node, seed=[1.0, 0.0])
        legend = legend_text(dp.to_dot(g))
        assert "red: gradients ∂(v·dL/dx)/∂· (seed v = [1, 0]), on nodes" in legend
        assert "∂L/∂·" not in legend

    def test_accumulated_passes_add_up(self):
        g = dp.Graph()
        x = g.param("x", [1.0, 2.0])
        y = g.op("mul", x, x, name="y")
        L = g.op("sum", y, name="L")
        g.forward()
        g.backward(L)
        g.backward(L)
        assert "red: gradients 2·∂L/∂·" in legend_text(dp.to_dot(g))
        g.backward(y, seed=[0.5, 0.0])
        assert "red: gradients 2·∂L/∂· + ∂(v·y)/∂· (seed v = [0.5, 0])" in legend_text(dp.to_dot(g))

    def test_a_name_of_several_words_is_put_in_parentheses(self):
        g = dp.Graph()
        g.op("sum", g.param("x", [1.0, 2.0]), name="total loss")
        g.forward()
        g.backward("total loss")
        assert "red: gradients ∂(total loss)/∂·" in legend_text(dp.to_dot(g))

    def test_a_large_seed_is_described_by_its_shape(self):
        g = dp.Graph()
        y = g.op("tanh", g.param("x", np.ones((3, 4))), name="y")
        g.forward()
        g.backward(y, seed=np.ones((3, 4)) * 2.0)
        assert "∂(v·y)/∂· (seed v = an array of shape 3×4)" in legend_text(dp.to_dot(g))

    def test_the_element_level_says_it_too(self):
        g = squares_with_backward_nodes()
        grad_node = g["x"].grad_node
        g.zero_grad()
        g.backward(grad_node, seed=[1.0, 0.0])
        assert "∂(v·dL/dx)/∂· (seed v = [1, 0])" in legend_text(dp.to_dot(g, level="element", max_nodes=None))


# -- titles ------------------------------------------------------------------------------------------------


class TestTitles:
    def title_of(self, dot: str) -> str:
        return re.search(r'label=<<FONT POINT-SIZE="16"><B>(.*?)</B></FONT>', dot).group(1)

    def test_a_newline_breaks_the_line(self):
        title = self.title_of(dp.to_dot(four_d(), title="four dimensions\nsummarised"))
        assert title == "four dimensions<BR/>summarised"

    def test_a_hostile_title_stays_text(self):
        hostile = '</B></FONT><BR/>"&amp;\\N\t{x|y}\r\n<TABLE>>'
        title = self.title_of(dp.to_dot(four_d(), title=hostile))
        assert title == "&lt;/B&gt;&lt;/FONT&gt;&lt;BR/&gt;&quot;&amp;amp;\\\\N␉{x|y}<BR/>&lt;TABLE&gt;&gt;"

    def test_other_labels_still_show_a_newline(self):
        g = dp.Graph()
        g.param("two\nlines", 1.0)
        assert "two␊lines" in dp.to_dot(g) and "two<BR/>lines" not in dp.to_dot(g)

    @needs_dot
    def test_the_picture_has_two_lines(self):
        svg = pipe(dp.to_dot(four_d(), title='first <line> & "\\N"\nsecond line'), "svg").decode()
        texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
        assert 'first <line> & "\\N"' in texts and "second line" in texts


# -- colours ----------------------------------------------------------------------------------------------

# Machado, Oliveira and Fernandes (2009), severity 1: linear RGB as seen with each colour blindness
CVD = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def lab(colour: str, vision: str) -> np.ndarray:
    """CIELAB of a colour as seen with ``vision``."""
    srgb = np.array([int(colour[k:k + 2], 16) for k in (1, 3, 5)]) / 255
    linear = np.clip(CVD[vision] @ np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4), 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def difference(a: str, b: str) -> float:
    """The smallest colour difference (CIE76 ΔE) between two colours over normal vision and the three
    colour blindnesses."""
    return min(float(np.linalg.norm(lab(a, vision) - lab(b, vision))) for vision in CVD)


MEANINGS = {INK: "values", RED: "gradients", TANGENT: "tangents", WEIGHT: "local derivatives", GREY: "unreached",
            CLUSTER_COLOUR: "opened composites"}


class TestColours:
    @pytest.mark.parametrize("a, b", list(itertools.combinations([*MEANINGS, *PALETTE], 2)))
    def test_every_two_colours_stay_apart_for_colour_blind_readers(self, a, b):
        assert difference(a, b) >= 10, f"{COLOUR_NAMES[a]} {a} and {COLOUR_NAMES[b]} {b} look alike"

    def test_no_two_meanings_share_a_name(self):
        names = [COLOUR_NAMES[colour] for colour in [*MEANINGS, *PALETTE]]
        assert len(set(names)) == len(names)
        assert COLOUR_NAMES[CAPTION] == COLOUR_NAMES[GREY] == "grey"  # captions and unreached: both grey

    def test_the_highlight_palette_uses_no_colour_word_of_a_meaning(self):
        meaning_words = {COLOUR_NAMES[colour] for colour in MEANINGS}
        assert not meaning_words & set(PALETTE_NAMES.values())

    @pytest.mark.parametrize("options", [
        dict(level="element", show=("value", "grad", "tangent")),
        dict(level="element", show=("value", "tangent")),
        dict(level="element", show=("value", "grad")),
        dict(show=("value", "grad", "tangent")),
        dict(expand=True, highlight=["mul_1"]),
    ], ids=["element-both", "element-tangent", "element-grad", "tensor-both", "opened-highlighted"])
    def test_each_legend_word_names_its_own_colour(self, options):
        g = dp.Graph()
        x = g.param("x", [0.5, 2.0])
        w = g.param("w", [-0.4, 1.5])
        y = g.op("add", g.op("mul", x, w, name="mul_1"), x, name="y")
        g.op("sum", y.softmax(), name="L")
        g.forward()
        g.backward("L")
        g.jvp({x: [1.0, -1.0]})
        items = legend_items(dp.to_dot(g, max_nodes=None, **options))
        words = {name for name in set(COLOUR_NAMES.values())}
        checked = 0
        for colour, text in items:
            said = next((word for word in sorted(words, key=len, reverse=True)
                         if re.match(rf"(bold )?{word}\b", text)), None)
            if said is not None:
                assert COLOUR_NAMES[colour] == said, f"{text!r} is drawn in {colour} ({COLOUR_NAMES[colour]})"
                checked += 1
        assert checked >= 2

    def test_the_local_derivative_has_one_colour_in_every_mode(self):
        g = dp.Graph()
        x = g.param("x", [0.5, 2.0])
        g.op("sum", x * g.param("w", [-0.4, 1.5]), name="L")
        g.forward()
        g.backward("L")
        g.jvp({x: [1.0, 0.0]})
        for show in [("value", "grad"), ("value", "tangent"), ("value", "grad", "tangent")]:
            dot = dp.to_dot(g, level="element", show=show)
            assert f'<FONT COLOR="{WEIGHT}" POINT-SIZE="9">×' in dot
            assert "green ×k: the local derivative ∂head/∂tail" in legend_text(dot)
            assert "blue ×k" not in dot and "grey ×k" not in dot
        assert WEIGHT not in (TANGENT, CAPTION, GREY, RED, *PALETTE)


# -- 4-D tensors -------------------------------------------------------------------------------------------


class TestFourDimensionalTensors:
    def test_values_and_gradients_are_summarised_as_numpy_computes_them(self):
        g = four_d()
        dot = dp.to_dot(g)
        for name in ("x", "h1", "h2", "w1"):
            label = label_of(node_line(dot, g, name))
            node = g[name]
            assert "\u00d7".join(map(str, node.shape)) in label  # the shape, beside the op
            for line in summary_of(node.value):
                assert html.escape(line) in label
            if node.grad is not None:
                for line in summary_of(node.grad):
                    assert html.escape(line) in label
            assert "[ " not in label  # no matrix

    def test_the_summary_numbers_are_exact_to_the_precision(self):
        g = four_d()
        h1 = g["h1"].value
        label = label_of(node_line(dp.to_dot(g, precision=6), g, "h1"))
        found = re.search(r"min (\S+)  mean (\S+)  max (\S+)<BR ALIGN=\"LEFT\"/>norm (\S+)<", label)
        numbers = [float(x) for x in found.groups()]
        np.testing.assert_allclose(numbers, [h1.min(), h1.mean(), h1.max(), np.linalg.norm(h1)], rtol=1e-5)

    def test_edges_carry_the_norm_of_the_gradient(self):
        g = four_d()
        dot = dp.to_dot(g)
        consumer = next(n for n in g if g["h1"] in n.inputs)
        into = next(attrs for tail, head, attrs in edges(dot) if (tail, head) == (f"n{g['h1'].index}",
                                                                                   f"n{consumer.index}"))
        assert f"norm {format_number(np.linalg.norm(g.run.edge_grad('h1', consumer)))}" in label_of(into)
        assert "min " not in label_of(into)

    def test_a_mean_that_is_rounding_noise_is_zero(self):
        g = dp.Graph()
        x = g.param("x", np.arange(24.0).reshape(2, 3, 2, 2))
        g.op("sum", g.op("sub", x, x.mean(), name="centred") ** 2, name="L")
        g.forward()
        g.backward("L")
        assert "mean 0  max" in label_of(node_line(dp.to_dot(g), g, "centred"))

    def test_contributions_of_large_arrays_are_listed_not_added_up_as_norms(self):
        g = transformer()
        label = label_of(node_line(dp.to_dot(g), g, "add_1"))  # the embedding feeds the residual and the norm
        assert "sum of 2" in label and label.count("via ") == 2 and " + " not in label
        received = [grad for source, _, _, grad in g.run.edges() if source.name == "add_1"]
        for grad in received:
            assert f"norm {format_number(np.linalg.norm(grad))}" in label

    def test_one_slice_of_every_4d_array(self):
        g = four_d()
        dot = dp.to_dot(g, slices=(0, 1))
        for name in ("x", "h1"):
            label = label_of(node_line(dot, g, name))
            assert "[0, 1, :, :]" in label
            value = g[name].value[0, 1]
            first_row = [shown_number(v, noise_scale(value)) for v in value[0, :6]]
            assert re.search(r"\[\s+" + r"\s+".join(map(re.escape, first_row)) + r" …", label)
            assert "⋮" in label  # 8 rows, 6 drawn
        assert "[0, 1" not in label_of(node_line(dot, g, "flat"))  # 2-D: not sliced

    def test_the_slice_of_the_gradient_too(self):
        g = four_d()
        label = label_of(node_line(dp.to_dot(g, slices={"h2": (1, 2)}), g, "h2"))
        grad = g["h2"].grad[1, 2]
        assert label.count("[1, 2, :, :]") == 2
        assert shown_number(grad[0, 0], noise_scale(grad)) in label.split("[1, 2, :, :]")[2]

    def test_a_slice_that_fits_in_full_has_no_ellipsis(self):
        g = dp.Graph()
        g.param("t", np.arange(24.0).reshape(2, 3, 4))
        label = label_of(dp.to_dot(g, slices={"t": (1,)}))
        assert "[1, :, :]" in label and "[ 12  13  14  15 ]" in label and "…" not in label and "⋮" not in label

    def test_named_slices_only_for_their_node(self):
        g = four_d()
        dot = dp.to_dot(g, slices={"h1": (0, 0)})
        assert "[0, 0, :, :]" in node_line(dot, g, "h1") and "[0, 0, :, :]" not in node_line(dot, g, "h2")

    @pytest.mark.parametrize("slices, message", [
        ({"logit": (0,)}, "slices= names 'logit', which is not a node of this graph \\(close names: 'logits'"),
        ({"h1": (2, 0)}, "slices= asks for h1\\[2, 0\\], which does not fit its shape 2×3×8×8"),
        ({"h1": (0, 0, 0, 0, 0)}, "give at most 3 indices"),
        ((0.5, 1), "slices= takes a tuple of ints"),
        ("x", "slices= takes a tuple of ints"),
    ])
    def test_bad_slices(self, slices, message):
        with pytest.raises(dp.RenderError, match=message):
            dp.to_dot(four_d(), slices=slices)

    def test_a_global_slice_that_does_not_fit_an_array_leaves_it_summarised(self):
        g = four_d()
        dot = dp.to_dot(g, slices=(0, 5))  # only 3 channels
        assert "[0, 5" not in dot

    def test_slices_belong_to_the_tensor_level(self):
        with pytest.raises(dp.RenderError, match="slices= belongs to the tensor level"):
            dp.to_dot(four_d(), level="element", slices=(0, 0))

    @needs_dot
    def test_renders(self):
        assert pipe(dp.to_dot(four_d(), slices=(0, 0), rankdir="TB"), "svg").startswith(b"<?xml")


# -- scopes collapsed by depth ------------------------------------------------------------------------------


class TestDepth:
    def test_depth_1_is_one_box_per_outermost_scope(self):
        g = four_d()
        dot = dp.to_dot(g, depth=1)
        assert set(boxes(dot)) == {"encoder", "head"}
        assert "scope, collapsed: 6 nodes" in boxes(dot)["encoder"] and "scope, collapsed: 3 nodes" in boxes(dot)["head"]
        drawn = re.findall(r"^\s*n\d+ \[label=<<TABLE[^>]*><TR><TD COLSPAN=\"2\"><FONT COLOR=\"[^\"]*\"><B>([^<]*)</B>",
                           dot, re.M)
        assert sorted(drawn) == ["L", "mul_3", "x"]  # outside every scope

    def test_depth_2_boxes_the_inner_scopes_inside_their_clusters(self):
        dot = dp.to_dot(four_d(), depth=2)
        assert set(boxes(dot)) == {"encoder/layer1", "encoder/layer2"}
        assert "<B>encoder</B>" in dot and "<B>head</B>" in dot  # drawn as clusters
        assert "<B>flat</B>" in dot and "<B>logits</B>" in dot  # head has no inner scope: its nodes are drawn

    def test_none_is_as_before_and_too_deep_collapses_nothing(self):
        g = four_d()
        assert dp.to_dot(g, depth=None) == dp.to_dot(g) == dp.to_dot(g, depth=3)

    def test_depth_and_collapse_together(self):
        dot = dp.to_dot(four_d(), depth=2, collapse=["head"])
        assert set(boxes(dot)) == {"encoder/layer1", "encoder/layer2", "head"}

    def test_a_box_shows_its_outputs_as_numpy_computes_them(self):
        g = four_d()
        box = label_of(boxes(dp.to_dot(g, depth=1))["encoder"])
        assert "out: h2  2×3×8×8" in box and "out: h1" not in box  # h1 stays inside
        for line in summary_of(g["h2"].value) + summary_of(g["h2"].grad):
            assert html.escape(line) in box
        head = label_of(boxes(dp.to_dot(g, depth=1))["head"])
        assert "out: logits  2×4" in head and "out: flat" not in head
        assert "[ " not in head and html.escape(summary_of(g["logits"].value)[0]) in head  # boxes stay small
        tiny = dp.Graph()
        with tiny.scope("s"):
            tiny.param("w", [[1.0, 2.0]]) * 3.0
        tiny.forward()
        assert "[ 3  6 ]" in label_of(boxes(dp.to_dot(tiny, depth=1))["s"])  # up to 3×3 in full

    def test_the_edges_between_boxes_carry_the_gradients_they_fold(self):
        g = transformer()
        dot = dp.to_dot(g, depth=2)
        ids = {name: box_id for box_id, name in re.findall(r"^\s*(s\d+) \[label=<<TABLE[^>]*><TR><TD><B>([^<]*)</B>",
                                                              dot, re.M)}
        add_1 = f"n{g['add_1'].index}"
        into = [attrs for tail, head, attrs in edges(dot) if (tail, head) == (add_1, ids["block/attention"])]
        assert len(into) == 1  # the residual and the layer norm: one edge
        folded = [grad for source, consumer, _, grad in g.run.edges() if source.name == "add_1"]
        assert len(folded) == 2
        total = folded[0] + folded[1]
        np.testing.assert_allclose(total, g["add_1"].grad)
        assert "gradient sent back along these 2 edges, summed:\\n" + dot_text(full_text(total)) in into[0]
        assert f"norm {format_number(np.linalg.norm(total))}" in label_of(into[0])
        between = [attrs for tail, head, attrs in edges(dot) if (tail, head) == (ids["block/attention"],
                                                                                  ids["block/mlp"])]
        assert len(between) == 1
        leaving = next(n for n in g if n.scope == ("block", "attention") and any(
            c.scope == ("block", "mlp") for c in g if n in c.inputs))
        np.testing.assert_allclose(sum(grad for source, consumer, _, grad in g.run.edges()
                                       if source is leaving and consumer.scope == ("block", "mlp")), leaving.grad)
        assert dot_text(full_text(leaving.grad)) in between[0]

    def test_the_transformer_at_every_depth(self):
        g = transformer()
        assert len(g.nodes) >= 40
        counts = {depth: len(boxes(dp.to_dot(g, depth=depth))) for depth in (1, 2, 3)}
        assert counts == {1: 3, 2: 2, 3: 0}
        box = boxes(dp.to_dot(g, depth=1))["block"]
        assert "scope, collapsed: 33 nodes" in box and "gradient reached 33 of 33" in box

    def test_lenet_at_depth_2(self):
        g = lenet()
        found = boxes(dp.to_dot(g, depth=2))
        assert set(found) == {"features/conv1", "features/conv2", "classifier/fc1", "classifier/fc2"}
        assert "out: max_pool2d_1  2×4×6×6" in found["features/conv1"]

    @pytest.mark.parametrize("depth", [0, -1, 1.5, True, "1"])
    def test_bad_depths(self, depth):
        with pytest.raises(dp.RenderError, match="depth= must be a positive int"):
            dp.to_dot(four_d(), depth=depth)

    def test_depth_belongs_to_the_tensor_level(self):
        with pytest.raises(dp.RenderError, match="depth= belongs to the tensor level"):
            dp.to_dot(four_d(), level="element", depth=1)

    @needs_dot
    @pytest.mark.parametrize("build", [lenet, transformer])
    @pytest.mark.parametrize("depth", [None, 1, 2])
    def test_models_render(self, build, depth):
        g = build()
        svg = pipe(dp.to_dot(g, depth=depth, slices=(0, 0), rankdir="TB"), "svg")
        assert svg.startswith(b"<?xml")


# -- a torch model ---------------------------------------------------------------------------------------


def torch_block() -> dp.Graph:
    import torch  # a test requirement: never skipped

    class Block(torch.nn.Module):
        def __init__(self, width: int = 8, heads: int = 2) -> None:
            super().__init__()
            self.ln_1 = torch.nn.LayerNorm(width)
            self.attn = torch.nn.MultiheadAttention(width, heads, batch_first=True)
            self.ln_2 = torch.nn.LayerNorm(width)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(width, 4 * width), torch.nn.GELU(),
                                           torch.nn.Linear(4 * width, width))

        def forward(self, x):
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))

    torch.manual_seed(0)
    g = dp.from_torch(Block().double().eval(), torch.randn(2, 4, 8, dtype=torch.float64))
    out = g["output"]
    g.op("sum", out * out, name="loss")
    g.forward()
    g.backward("loss")
    return g


@needs_dot
def test_a_torch_transformer_block_at_depth_1_and_in_full():
    g = torch_block()
    dot = dp.to_dot(g, depth=1, rankdir="TB")
    assert {"ln_1", "attn", "ln_2", "mlp"} <= set(boxes(dot))
    assert pipe(dot, "svg").startswith(b"<?xml")
    assert pipe(dp.to_dot(g, rankdir="TB"), "svg").startswith(b"<?xml")
