"""Escaping: hostile strings show literally in labels and tooltips and inject nothing."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dagprop as dp

from helpers import needs_dot
from dagprop.drawing import quoting

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

HOSTILE = [
    '<b>"x"&{y}|z\\',
    "</TD></TR></TABLE>>",
    "]]><script>alert('x')</script>",
    "a\\",
    "\\N \\G \\E \\T \\H \\L \\n \\l",
    "&amp; &lt; &#92; &bogus;",
    'quote " inside',
    "{record|<port> field}",
    "tab\there\nnewline\x00nul\x7fdel",
    "name with spaces",
    "ünïcödé ∂L/∂x ✓",
    "digraph { a -> b }",
    "'single'",
]


def _label_text(fragment: str) -> str:
    """What Graphviz shows for HTML label text: XML entities decoded, then ``\\`` read as one backslash."""
    return (ET.fromstring(f"<t>{fragment}</t>").text or "").replace("\\\\", "\\")


class TestVisible:
    def test_control_characters_become_pictures(self):
        assert quoting.visible("a\nb\x00\x7f") == "a\u240ab\u2400\u2421"

    def test_c1_controls_and_surrogates_become_replacement(self):
        assert quoting.visible("\x85\ud800") == "\ufffd\ufffd"

    def test_other_text_unchanged(self):
        assert quoting.visible("∂L/∂x [1, 2]") == "∂L/∂x [1, 2]"

    def test_non_strings_are_converted(self):
        assert quoting.visible(None) == "None"


class TestHtml:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_parses_back_to_the_visible_text(self, text):
        assert _label_text(quoting.html(text)) == quoting.visible(text)

    @pytest.mark.parametrize("text", HOSTILE)
    def test_no_markup_characters_survive(self, text):
        escaped = quoting.html(text)
        assert "<" not in escaped and ">" not in escaped and '"' not in escaped
        assert escaped.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").replace("&quot;", "") \
            .replace("&#39;", "").count("&") == 0

    def test_entities_in_the_input_stay_literal(self):
        assert quoting.html("&lt;") == "&amp;lt;"

    def test_backslashes_are_doubled(self):
        assert quoting.html("\\N\\") == "\\\\N\\\\"

    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_any_text_round_trips_through_an_xml_parser(self, text):
        assert _label_text(quoting.html(text)) == quoting.visible(text)


class TestTooltip:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_is_one_closed_dot_string(self, text):
        quoted = quoting.tooltip(text)
        assert quoted.startswith('"') and quoted.endswith('"')
        inner = quoted[1:-1]
        assert '"' not in inner
        assert "\\" not in inner.replace("\\n", "")

    def test_backslash_becomes_the_lookalike(self):
        assert quoting.tooltip("a\\b") == '"a\u29f5b"'

    def test_newlines_become_line_breaks(self):
        assert quoting.tooltip("a\nb") == '"a\\nb"'

    def test_entities_are_escaped(self):
        assert quoting.tooltip('<&">') == '"&lt;&amp;&quot;&gt;"'


class TestQuote:
    @pytest.mark.parametrize("text", ["plain", 'with "quotes"', "ends with \\", "\\\\", ""])
    def test_closed_string(self, text):
        quoted = quoting.quote(text)
        assert quoted.startswith('"') and quoted.endswith('"')
        # every quote inside is escaped by an odd run of backslashes
        inner = quoted[1:-1]
        for position, char in enumerate(inner):
            if char == '"':
                run = len(inner[:position]) - len(inner[:position].rstrip("\\"))
                assert run % 2 == 1

    def test_control_characters(self):
        assert quoting.quote("a\nb") == '"a\u240ab"'




@needs_dot
class TestThroughGraphviz:
    """Hostile node names rendered by the real dot: shown literally, nothing injected."""

    @pytest.fixture(scope="class")
    @classmethod
    def svg(cls):
        g = dp.Graph()
        leaves = [g.param(name, [1.0, 2.0]) for name in HOSTILE]
        total = leaves[0]
        for leaf in leaves[1:]:
            total = total + leaf
        loss = g.op("sum", total, name="loss")
        g.forward()
        g.backward(loss)
        source = dp.to_dot(g, title='<title> & "quotes" \\')
        result = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=60, check=True)
        assert result.stderr == b""
        return result.stdout.decode()

    def test_svg_is_well_formed(self, svg):
        ET.fromstring(svg)

    def test_no_script_element(self, svg):
        root = ET.fromstring(svg)
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        assert "<script" not in svg

    @pytest.mark.parametrize("name", HOSTILE)
    def test_each_name_is_shown_literally(self, svg, name):
        texts = ["".join(t.itertext()).replace("\xa0", " ") for t in ET.fromstring(svg).iter(f"{SVG}text")]
        assert quoting.visible(name) in texts

    @pytest.mark.parametrize("name", HOSTILE)
    def test_each_tooltip_starts_with_the_name(self, svg, name):
        titles = [a.get(f"{XLINK}title") for a in ET.fromstring(svg).iter(f"{SVG}a")]
        expected = quoting.visible(name).replace("\\", quoting.BACKSLASH_LOOKALIKE) + " (param)"
        assert any(t.startswith(expected) for t in titles if t)

    def test_title_is_literal(self, svg):
        texts = ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]
        assert '<title> & "quotes" \\' in texts


@needs_dot
class TestLegendThroughGraphviz:
    """The legend names paths and input slots, which come from users and plugins: shown literally."""

    @pytest.fixture(scope="class")
    @classmethod
    def svg(cls):
        def pair_forward(a, b):
            return a * b

        def pair_vjp(g, a, b, *, out):
            return (g * b, g * a)

        class Pair:
            @staticmethod
            @dp.hookimpl
            def dagprop_ops():
                return [dp.Op("pair", forward=pair_forward, vjp=pair_vjp, inputs=(HOSTILE[0], HOSTILE[4]))]

        g = dp.Graph(plugins=[Pair()])
        p, q = g.param(HOSTILE[1], 2.0), g.param(HOSTILE[2], 3.0)
        y = g.op("pair", p, q, name=HOSTILE[3])
        g.forward()
        g.backward(y)
        path = type("Path", (), {"nodes": (p.name, y.name)})()
        source = dp.to_dot(g, highlight=[path])
        result = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=60, check=True)
        assert result.stderr == b""
        return result.stdout.decode()

    def test_names_are_shown_literally(self, svg):
        legend = " ".join("".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text"))
        assert f"orange: path 1 ({quoting.visible(HOSTILE[1])} \u2192 {quoting.visible(HOSTILE[3])})" in legend
        assert f"{HOSTILE[0]}, {HOSTILE[4]} on edges" in legend.replace("\xa0", " ")

    def test_no_script_element(self, svg):
        assert "<script" not in svg
