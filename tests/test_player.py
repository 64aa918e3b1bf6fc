"""The player's file: bounded in size for large graphs (guarded like render), each picture stored
once, and HTML escaping (never DOT escaping) for the page's text."""

from __future__ import annotations

import json
import re
import warnings
from html.parser import HTMLParser

import pytest

import dagprop as dp
from dagprop.errors import LargeGraphWarning

from helpers import needs_dot

pytestmark = needs_dot


def chain(length: int) -> tuple[dp.Graph, dp.Node]:
    g = dp.Graph()
    h = g.param("x", 0.5)
    for _ in range(length - 2):
        h = h.tanh()
    loss = g.op("sum", h, name="L")
    g.forward()
    g.backward(loss)
    return g, loss


class Page(HTMLParser):
    """The parts of a player page the tests read: the title, the heading, each frame's caption
    and attributes, and the pictures' data."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.title = self.heading = ""
        self.captions: list[str] = []
        self.frames: list[dict] = []
        self.data = ""
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("class") == "frame":
            self.frames.append(attrs)
        if tag == "template":
            self.captions.append("")
        if tag not in ("meta", "input", "br", "link", "img"):  # elements without an end tag
            self._in.append(tag)
            self._in.append(attrs.get("id") or tag)

    def handle_endtag(self, tag):
        while tag in self._in:
            self._in.pop()
            if self._in.pop() == tag:
                break

    def handle_data(self, data):
        where = self._in[-1] if self._in else ""
        if where == "title" and "head" in self._in:  # not the SVG's own titles
            self.title += data
        elif where == "h1":
            self.heading += data
        elif "template" in self._in:
            self.captions[-1] += data
        elif where == "pictures":
            self.data += data


def test_a_300_node_chain_warns_plays_a_collapsed_view_and_writes_a_small_file(tmp_path):
    g, loss = chain(300)
    with pytest.warns(LargeGraphWarning, match=r"the graph has 300 nodes, more than max_nodes=100: playing a "
                                                r"collapsed view.*pass max_nodes=None"):
        out = dp.animate(g, loss, tmp_path / "chain.html")
    assert out.stat().st_size < 2 * 2 ** 20  # it was 275 MiB
    page = Page(out.read_text())
    assert len(page.frames) == len(list(dp.simulate(g, loss))) + 3
    pictures = json.loads(page.data)
    assert len(pictures["frames"]) == len(page.frames)
    assert all(0 <= k < len(pictures["pieces"]) for frame in pictures["frames"] for k in frame)
    first = "".join(pictures["pieces"][k] for k in pictures["frames"][0])
    assert first.startswith("<svg") and first.rstrip().endswith("</svg>") and "ops summarised" in first
    assert "tanh_150" in page.captions[150]  # every step is still played, with its caption


def test_an_unfolded_graph_stores_each_piece_of_its_pictures_once(tmp_path):
    g, loss = chain(40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 40 nodes: under the limit, no warning
        out = dp.animate(g, loss, tmp_path / "chain.html")
    # every frame draws all 40 nodes; a frame's picture was about 1.3 MB / 80 frames each, 4.5 MiB in all
    assert out.stat().st_size < 2 ** 20
    pictures = json.loads(Page(out.read_text()).data)
    references = sum(len(frame) for frame in pictures["frames"])
    assert len(pictures["pieces"]) < references / 5  # most pieces of a frame are the previous frame's


def test_max_nodes_none_plays_everything_and_bad_values_are_refused(tmp_path):
    g, loss = chain(8)
    with pytest.warns(LargeGraphWarning, match="more than max_nodes=5"):
        folded = Page(dp.animate(g, loss, tmp_path / "folded.html", max_nodes=5).read_text())
    full = Page(dp.animate(g, loss, tmp_path / "full.html", max_nodes=None).read_text())
    assert "ops summarised" in folded.data and "ops summarised" not in full.data
    with pytest.raises(dp.RenderError, match="max_nodes= must be a positive int or None"):
        dp.animate(g, loss, tmp_path / "x.html", max_nodes=0)


def test_the_element_level_above_max_nodes_plays_the_tensor_level(tmp_path):
    g = dp.Graph()
    W = g.param("W", [[0.5, -1.0, 2.0]] * 4)
    loss = g.op("sum", g.op("tanh", W @ g.input("x", [1.0, 2.0, 3.0])), name="L")
    g.forward()
    g.backward(loss)
    with pytest.warns(LargeGraphWarning, match=r"the element graph has 2\d elements, more than max_nodes=10: "
                                                r"playing the tensor level instead"):
        out = dp.animate(g, loss, tmp_path / "run.html", level="element", max_nodes=10)
    text = out.read_text()
    assert 'data-level="tensor"' in text and "W[0,0]" not in text
    assert 'data-level="element"' in dp.animate(g, loss, tmp_path / "run.html", level="element").read_text()


HOSTILE = 'a\\b "q" \'s\' <i>&amp; \\\\N'


def test_title_heading_and_captions_use_html_escaping_only(tmp_path):
    g = dp.Graph()
    x = g.param(HOSTILE, [1.0, 2.0])
    loss = g.op("sum", g.op("mul", x, 2.0, name="y"), name="L")
    g.forward()
    g.backward(loss)
    text = dp.animate(g, loss, tmp_path / "run.html", title=f"title {HOSTILE}").read_text()
    page = Page(text)
    assert page.title == page.heading == f"title {HOSTILE}"  # backslashes single, as typed
    assert page.captions[0] == f"startStart: the leaves are known: {HOSTILE} = [1, 2], const_1 = 2"
    assert any(caption.endswith(f"back to {HOSTILE} (input a of mul)") for caption in page.captions)
    assert "<i>" not in text and "\\\\\\\\N" not in text.split("<script")[0]
    default = Page(dp.animate(g, loss, tmp_path / "default.html").read_text())
    assert default.heading == "dagprop: forward and backward through L"


def test_the_pictures_json_cannot_end_its_script(tmp_path):
    g = dp.Graph()
    x = g.param("</script><script>alert(1)</script>", [1.0])
    loss = g.op("sum", x, name="L")
    g.forward()
    g.backward(loss)
    text = dp.animate(g, loss, tmp_path / "run.html").read_text()
    data = re.search(r'<script type="application/json" id="pictures">(.*?)</script>', text, re.S).group(1)
    assert "<" not in data and ">" not in data
    assert "&lt;/script&gt;" in "".join(json.loads(data)["pieces"])  # the label text, escaped by Graphviz


# -- forward mode ----------------------------------------------------------------------------------


def forward_graph() -> tuple[dp.Graph, float, float]:
    """y = x * w + x, L = sum(y): with dx = 1, y.tangent = L.tangent = w + 1."""
    x, w = 2.0, 3.0
    g = dp.Graph()
    xn = g.param("x", x)
    g.op("sum", g.op("add", g.op("mul", xn, g.param("w", w), name="m"), xn, name="y"), name="L")
    return g, x, w


def frame_pictures(page: Page) -> list[str]:
    pictures = json.loads(page.data)
    return ["".join(pictures["pieces"][k] for k in frame) for frame in pictures["frames"]]


def test_forward_mode_plays_the_tangents_frame_by_frame_in_their_colour(tmp_path):
    from dagprop.drawing.style import TANGENT

    g, _, w = forward_graph()
    out = dp.animate(g, "L", tmp_path / "forward.html", mode="forward", tangents={"x": 1.0})
    text = out.read_text()
    page = Page(text)
    steps = list(dp.simulate(g, "L", mode="forward", tangents={"x": 1.0}))
    assert len(page.frames) == len(steps) + 3  # start, tangents start, done
    assert [f["data-phase"] for f in page.frames] == ["start"] + ["forward"] * 3 + ["tangent"] * 5 + ["done"]
    assert page.heading == "dagprop: forward mode through L" and 'class="fit forward-mode"' in text
    pictures = frame_pictures(page)
    blue = [re.findall(rf'<text[^>]*fill="{TANGENT}"[^>]*>([^<]*)</text>', svg) for svg in pictures]
    assert not any(blue[:4])  # no tangent during the forward steps
    assert blue[4] == ["tangent", "1"]  # x, where forward mode starts
    # each tangent frame adds what its edge carried: w into m, then w and 1 into y (sum w + 1), then into L
    y_frame = next(k for k, f in enumerate(page.frames) if f["data-current"] == "x->y[1]")
    assert {"3", "1", "+", "=", "4"} <= set(blue[y_frame])
    assert "4" not in blue[y_frame - 1]
    assert blue[-1].count(f"{w + 1:g}") >= 3  # y, L, and the edge y -> L
    assert any("running sum of 2 contributions" in f["data-detail"] for f in page.frames)
    assert "gradients" not in text.split("<main>")[0].split('class="help"')[1]  # the help names tangents


def test_forward_mode_at_the_element_level(tmp_path):
    from dagprop.drawing.style import TANGENT

    g, _, w = forward_graph()
    out = dp.animate(g, "L", tmp_path / "elements.html", level="element", mode="forward", tangents={"x": 1.0})
    page = Page(out.read_text())
    last = frame_pictures(page)[-1]
    assert re.findall(rf'<text[^>]*fill="{TANGENT}"[^>]*>([^<]*)</text>', last).count(f"{w + 1:g}") >= 2  # y, L


def test_forward_mode_arguments_are_checked_before_drawing(tmp_path):
    g, _, _ = forward_graph()
    with pytest.raises(dp.GraphError, match="pass tangents="):
        dp.animate(g, "L", tmp_path / "x.html", mode="forward")
    with pytest.raises(dp.BackwardError, match="tangents= are pushed forward by mode='forward'"):
        dp.animate(g, "L", tmp_path / "x.html", tangents={"x": 1.0})
    assert not (tmp_path / "x.html").exists()


def test_forward_mode_above_max_nodes_plays_the_folded_view_with_tangents(tmp_path):
    from dagprop.drawing.style import TANGENT

    g, loss = chain(8)
    with pytest.warns(LargeGraphWarning, match="more than max_nodes=5"):
        out = dp.animate(g, loss, tmp_path / "folded.html", max_nodes=5, mode="forward", tangents={"x": 1.0})
    page = Page(out.read_text())
    last = frame_pictures(page)[-1]
    assert "ops summarised" in last and f'fill="{TANGENT}"' in last
