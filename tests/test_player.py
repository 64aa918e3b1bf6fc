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
