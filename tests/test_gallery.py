"""What the pictures show: each legend explains the encodings its picture uses and no other;
the tensor and element views show the same rounding noise as 0; and the committed gallery
in docs/img is what the code draws now (compared as DOT text, not PNG bytes)."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import dagprop as dp
import notes_mlp
from helpers import needs_dot
from test_render import softmax_graph as scores, tiny as product  # w * x with slots a and b; a softmax
from dagprop.drawing.labels import NOISE, noise_scale
from dagprop.errors import LargeGraphWarning

ROOT = Path(__file__).resolve().parent.parent

VALUES = "black: forward values"
RED_BOTH = "red: gradients ∂L/∂·, on nodes and on the edges they flowed back along"
WEIGHTS = "green ×k: the local derivative"
SLOTS = "on edges: the consumer's input each edge feeds"
GREY = "grey: backprop did not reach it"
COMPOSITE = "double border: a composite op; expand= opens it"
OPENED = "dashed purple box: a composite op opened into its circuit"
EVERY_ITEM = (VALUES, "red: ", WEIGHTS, SLOTS, GREY, COMPOSITE, OPENED, "highlighted", "path 1")


def legend_of(dot: str) -> str:
    """The legend under the title, as the picture shows it: lines joined by " | ", markup removed."""
    match = re.search(r"^\tgraph \[.* label=<(.*)>\]$", dot, re.MULTILINE)
    if match is None:
        return ""
    lines = [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in match.group(1).split("<BR/>")]
    return " | ".join(line for line in lines if "\u2202" in line or ":" in line)


def items_of(dot: str) -> set[str]:
    legend = legend_of(dot)
    return {item for item in EVERY_ITEM if item in legend}


# -- legends ---------------------------------------------------------------------------------------


class TestLegend:
    def test_tensor_view(self):
        dot = dp.to_dot(product())
        assert items_of(dot) == {VALUES, "red: ", SLOTS, GREY}
        assert RED_BOTH in legend_of(dot) and "a, b on edges" in legend_of(dot)

    def test_element_view_explains_local_derivatives_not_slots(self):
        assert items_of(dp.to_dot(product(), level="element")) == {VALUES, "red: ", WEIGHTS, GREY}

    def test_element_view_without_edge_labels(self):
        legend = legend_of(dp.to_dot(product(), level="element", edge_labels=None))
        assert WEIGHTS not in legend and "red: gradients ∂L/∂·" in legend and "edges they flowed" not in legend

    def test_composite_and_opened(self):
        assert items_of(dp.to_dot(scores())) == {VALUES, "red: ", SLOTS, GREY, COMPOSITE}
        opened = items_of(dp.to_dot(scores(), expand=True))
        assert OPENED in opened and COMPOSITE not in opened

    def test_highlighted_nodes_and_edges(self):
        legend = legend_of(dp.to_dot(product(), highlight=["w", ("w", "y")]))
        assert "bold orange: highlighted" in legend and "path" not in legend

    def test_each_path_its_colour(self):
        paths = [SimpleNamespace(nodes=["w", "y", "L"]), SimpleNamespace(nodes=["x", "y"]),
                 SimpleNamespace(nodes=["y", "L"])]
        legend = legend_of(dp.to_dot(product(), highlight=paths))
        assert "orange: path 1 (w → y → L); sky blue: path 2 (x → y); brown: path 3 (y → L)" in legend
        assert "highlighted" not in legend

    def test_paths_sharing_their_ends_are_told_apart_by_their_middles(self):
        g, _ = notes_mlp.build()
        paths = g.paths("W1", "L", index=(2, 0))
        legend = legend_of(dp.to_dot(g, level="element", highlight=paths, max_nodes=None))
        assert "4 paths from W1[2,0] to L" in legend
        assert f"orange: path 1 via {' → '.join(paths[0].nodes[1:-1])}" in legend

    def test_paths_then_nodes(self):
        path = SimpleNamespace(nodes=["w", "y", "L"])
        legend = legend_of(dp.to_dot(product(), highlight=[path, "x"]))
        assert "orange: path 1 (w → y → L)" in legend and "bold sky blue: highlighted" in legend

    def test_a_one_shot_highlight_is_read_once(self):
        legend = legend_of(dp.to_dot(product(), highlight=(name for name in ["w"])))
        assert "bold orange: highlighted" in legend

    def test_many_paths_are_counted(self):
        paths = [SimpleNamespace(nodes=["w", "y", "L"]) for _ in range(10)]
        dot = dp.to_dot(product(), highlight=paths)
        legend = legend_of(dot)
        assert "pink: path 4" in legend and "path 5" not in legend
        assert "and 6 more paths, in the same colours again" in dot

    def test_legend_false(self):
        dot = dp.to_dot(scores(), highlight=["e"], legend=False, title="T")
        assert items_of(dot) == set()

    def test_nothing_to_explain(self):
        g = dp.Graph()
        g.op("sum", g.param("w", [1.0]), name="L")
        g.forward()
        assert legend_of(dp.to_dot(g)) == ""

    def test_forward_only_has_no_red(self):
        g = dp.Graph()
        g.op("mul", g.param("w", 2.0), g.input("x", 3.0), name="y")
        g.forward()
        assert items_of(dp.to_dot(g)) == {VALUES, SLOTS, GREY}

    def test_gradients_only_on_edges(self):
        legend = legend_of(dp.to_dot(product(), show=("value",)))
        assert "red: the gradient ∂L/∂· that flowed back along each edge" in legend

    def test_compact_element_view_has_no_numbers_to_explain(self):
        with pytest.warns(LargeGraphWarning):
            dot = dp.to_dot(product(), level="element", max_nodes=2)
        assert items_of(dot) <= {GREY}


# -- rounding noise --------------------------------------------------------------------------------


LABEL_NUMBER = re.compile(r'POINT-SIZE="\d+">(-?[\d.]+(?:e[-+]\d+)?)</FONT>')


def label_numbers(dot: str) -> list[float]:
    """Every number shown in a one-number label (not in tooltips, which are exact on purpose)."""
    labels = "\n".join(line.split(" tooltip=")[0] for line in dot.splitlines())
    return [float(x) for x in LABEL_NUMBER.findall(labels)]


def test_tensor_view_shows_rounding_noise_as_0():
    g, _ = notes_mlp.build()
    h1 = g.run.grad("h1")
    assert h1 is not None and abs(h1[0]) < NOISE * noise_scale(h1)  # the network has rounding noise
    dot = dp.to_dot(g)
    assert all(x == 0 or abs(x) > 1e-9 for x in label_numbers(dot))
    labels = "\n".join(line.split(" tooltip=")[0] for line in dot.splitlines())
    assert "e-17" not in labels and "e-18" not in labels and "e-19" not in labels
    assert "-1.3720571605714045e-18" in dot  # the tooltips keep the exact numbers


def test_element_view_shows_the_tensor_views_zeros():
    g, _ = notes_mlp.build()
    dot = dp.to_dot(g, level="element", max_nodes=None)
    shown = label_numbers(dot)
    assert shown and all(x == 0 or abs(x) > 1e-9 for x in shown)
    # each element whose gradient the tensor view shows as 0 shows 0, and so do the edges carrying it back
    zeros = 0
    for name, data in g.element_graph().nodes(data=True):
        grad = g[data["tensor"]].grad
        if grad is not None and abs(grad[data["index"]]) <= NOISE * noise_scale(grad):
            line = next(line for line in dot.splitlines() if f"<B>{name}</B>" in line)
            assert '<FONT COLOR="#d62728" POINT-SIZE="10">0</FONT>' in line
            zeros += 1
    assert zeros == 6  # W1[0,:], a1[0] and h1[0]


# -- the gallery -----------------------------------------------------------------------------------


def gallery():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "scripts" / "gallery.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_committed_picture_has_its_source():
    pictures = {p.stem for p in (ROOT / "docs" / "img").glob("*.png")}
    assert pictures == set(gallery().PICTURES), "docs/img and scripts/gallery.py's PICTURES disagree"
    for name in pictures:
        assert (ROOT / "docs" / "img" / f"{name}.dot").exists(), f"docs/img/{name}.dot is missing"
    shown = set(re.findall(r"docs/img/(\w+)\.png", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert shown <= pictures
    assert "python scripts/gallery.py" in (ROOT / "examples" / "README.md").read_text(encoding="utf-8")


@needs_dot
def test_committed_pictures_are_what_the_code_draws(tmp_path):
    module = gallery()
    differ = module.changed(module.draw(tmp_path))
    assert not differ, (f"docs/img/{{{','.join(differ)}}}.dot differ from what the code draws now: "
                        f"run python scripts/gallery.py and look at the pictures")
