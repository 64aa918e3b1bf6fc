"""Scopes: ``with g.scope(name):`` groups the nodes built inside it; diagrams draw each scope as a
cluster (nested scopes nested, opened composites inside their node's scope) or, with
``collapse=``, as one box that the crossing edges attach to."""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import dagprop as dp
from helpers import needs_dot
from dagprop.drawing.dot import pipe
from dagprop.drawing.labels import full_text
from dagprop.drawing.clusters import drawn_scopes, short_names
from dagprop.errors import LargeGraphWarning

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def two_layers() -> dp.Graph:
    """x -> layer1 (W1 x + b1, tanh; attention: softmax, product) -> layer2 (W2 h2 + sum h2) -> loss."""
    g = dp.Graph()
    x = g.input("x", [[1.0], [2.0]])
    with g.scope("layer1"):
        W1 = g.param("W1", [[0.5, -1.0], [1.5, 0.2]])
        b1 = g.param("b1", [[0.1], [0.0]])
        h = g.op("tanh", W1 @ x + b1, name="h")
        with g.scope("attention"):
            a = g.op("softmax", h, axis=0, name="a")
            h2 = g.op("mul", a, h, name="h2")
    with g.scope("layer2"):
        W2 = g.param("W2", [[1.0, -2.0]])
        z = g.op("add", W2 @ h2, h2.sum(), name="z")
    g.op("l2_loss", z, g.input("y", [[0.5]]), name="L")
    g.forward()
    g.backward("L")
    return g


# -- reading DOT: which statements each cluster holds ---------------------------------------------


def clusters(dot: str) -> dict[str, tuple[str | None, list[str]]]:
    """Cluster title -> (the title of the cluster holding it, the identifiers of the nodes directly in it)."""
    found: dict[str, tuple[str | None, list[str]]] = {}
    stack: list[str] = []
    for line in dot.splitlines():
        text = line.strip()
        if text.startswith("subgraph cluster_"):
            stack.append("")
        elif text == "}" and stack:
            stack.pop()
        elif stack and text.startswith("graph [label=<<B>"):
            title = re.match(r"graph \[label=<<B>([^<]*)</B>", text).group(1)
            stack[-1] = title
            found[title] = (stack[-2] if len(stack) > 1 else None, [])
        elif stack and re.match(r"^[ns]\d+ \[", text):
            found[stack[-1]][1].append(text.split()[0])
    return found


def ids(dot: str) -> dict[str, str]:
    """Node title -> identifier, for the nodes drawn (not boxes)."""
    return {name: node for node, name in re.findall(r"^\s*(n\d+) \[label=<<TABLE[^>]*><TR><TD COLSPAN=\"2\">"
                                                     r"<FONT COLOR=\"[^\"]*\"><B>([^<]*)</B>", dot, re.M)}


def dot_text(text: str) -> str:
    """Text as it appears inside a quoted DOT string (tooltips): newlines escaped."""
    return text.replace("\n", "\\n")


def edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+) \[(.*)\]$", dot, re.M)


# -- building in scopes -------------------------------------------------------------------------------


class TestScope:
    def test_nodes_record_their_scope(self):
        g = two_layers()
        assert g["x"].scope == () and g["L"].scope == () and g["y"].scope == ()
        assert g["W1"].scope == ("layer1",) and g["h"].scope == ("layer1",)
        assert g["a"].scope == ("layer1", "attention") and g["h2"].scope == ("layer1", "attention")
        assert g["W2"].scope == ("layer2",) and g["z"].scope == ("layer2",)

    def test_consts_made_from_numbers_are_in_the_scope(self):
        g = dp.Graph()
        x = g.param("x", 1.0)
        with g.scope("s"):
            y = 2.0 * x + 1.0
        consts = [n for n in g if n.kind == "const"]
        assert len(consts) == 2 and all(n.scope == ("s",) for n in consts) and y.scope == ("s",)

    def test_nesting_and_slashes_are_the_same(self):
        g = dp.Graph()
        with g.scope("a"):
            with g.scope("b") as inner:
                one = g.param("one", 1.0)
        with g.scope("a/b") as joined:
            two = g.param("two", 1.0)
        assert inner == joined == one.scope == two.scope == ("a", "b")

    def test_the_scope_ends_with_the_block(self):
        g = dp.Graph()
        with g.scope("a"):
            g.param("inside", 1.0)
        assert g.param("after", 1.0).scope == ()

    def test_an_exception_leaves_the_scope_as_it_was(self):
        g = dp.Graph()
        with g.scope("outer"):
            with pytest.raises(ValueError):
                with g.scope("inner"):
                    with g.scope("deeper"):
                        raise ValueError("boom")
            assert g.param("p", 1.0).scope == ("outer",)
        assert g.param("q", 1.0).scope == ()

    def test_a_failed_op_inside_a_scope_leaves_the_scope_as_it_was(self):
        g = dp.Graph()
        x = g.param("x", [1.0, 2.0])
        with pytest.raises(dp.GraphError):
            with g.scope("s"):
                g.op("matmul", x)
        assert len(g) == 1 and g.param("after", 1.0).scope == ()

    def test_scopes_are_per_graph(self):
        g, h = dp.Graph(), dp.Graph()
        with g.scope("only_g"):
            assert h.param("w", 1.0).scope == ()
            assert g.param("w", 1.0).scope == ("only_g",)

    def test_scopes_are_per_thread(self):
        g = dp.Graph()
        built = []
        with g.scope("main"):
            worker = threading.Thread(target=lambda: built.append(g.param("from_thread", 1.0)))
            worker.start()
            worker.join()
        assert built[0].scope == ()

    @pytest.mark.parametrize("name", ["", "a//b", "/a", "a/", 3, None])
    def test_bad_names(self, name):
        g = dp.Graph()
        with pytest.raises(dp.GraphError, match="a scope name must be a non-empty string"):
            with g.scope(name):
                pass

    def test_the_networkx_view_has_the_scope(self):
        g = two_layers()
        assert g.nx.nodes["h2"]["scope"] == ("layer1", "attention")

    def test_a_scope_changes_no_number(self):
        plain = dp.Graph()
        x = plain.param("x", [1.0, -2.0])
        plain.op("sum", (x * x).tanh(), name="L")
        scoped = dp.Graph()
        x = scoped.param("x", [1.0, -2.0])
        with scoped.scope("s"):
            scoped.op("sum", (x * x).tanh(), name="L")
        for graph in (plain, scoped):
            graph.forward()
            graph.backward("L")
        assert [n.name for n in plain] == [n.name for n in scoped]
        np.testing.assert_array_equal(plain["x"].grad, scoped["x"].grad)

    def test_the_expanded_copy_draws_circuits_in_their_node_scope(self):
        g = two_layers()
        scopes = drawn_scopes(g, g.expanded(["softmax"]))
        assert scopes["a"] == scopes["a.exp_1"] == ("layer1", "attention")
        assert scopes["x"] == () and scopes["W2"] == ("layer2",)


# -- scopes as clusters ---------------------------------------------------------------------------------


class TestClusters:
    def test_nested_scopes_are_nested_clusters(self):
        dot = dp.to_dot(two_layers())
        found = clusters(dot)
        names = ids(dot)
        assert found["layer1"][0] is None and found["layer2"][0] is None
        assert found["attention"][0] == "layer1"
        assert set(found["attention"][1]) == {names["a"], names["h2"]}
        assert {names["W1"], names["b1"], names["h"]} <= set(found["layer1"][1])
        assert names["h2"] not in found["layer1"][1]
        assert {names["W2"], names["z"]} <= set(found["layer2"][1])
        top = [line.split()[0] for line in dot.splitlines() if re.match(r"^\tn\d+ \[", line)]
        assert sorted(top) == sorted([names["x"], names["y"], names["L"]])

    def test_no_scope_no_cluster(self):
        g = dp.Graph()
        g.op("sum", g.param("x", [1.0, 2.0]), name="L")
        assert "subgraph" not in dp.to_dot(g)

    def test_an_opened_composite_sits_in_its_node_scope(self):
        dot = dp.to_dot(two_layers(), expand=["softmax"])
        found = clusters(dot)
        names = ids(dot)
        assert found["a"][0] == "attention" and found["attention"][0] == "layer1"
        assert {names["exp_1"], names["a"]} <= set(found["a"][1])
        assert set(found["attention"][1]) == {names["h2"]}

    def test_composites_inside_composites_inside_scopes(self):
        g = dp.Graph()
        x = g.input("x", np.arange(6.0).reshape(2, 3) / 10)
        with g.scope("block"):
            q = g.param("Q", np.eye(2, 3))
            out = g.op("attention", q, x, x, name="att")
        g.op("sum", out, name="L")
        g.forward()
        g.backward("L")
        found = clusters(dp.to_dot(g, expand=True))
        assert found["att"][0] == "block"
        inner = [title for title, (parent, _) in found.items() if parent == "att"]
        assert inner, found  # the softmax opened inside the attention, inside the scope

    def test_the_scope_is_in_the_tooltip(self):
        dot = dp.to_dot(two_layers())
        assert 'tooltip="h2 (mul) in scope layer1/attention\\n' in dot
        assert 'tooltip="x (input)\\n' in dot
        assert 'tooltip="scope layer1/attention"' in dot

    def test_element_level(self):
        dot = dp.to_dot(two_layers(), level="element", max_nodes=None)
        found = clusters(dot)
        assert found["attention"][0] == "layer1" and found["h2"][0] == "attention"
        assert found["W2"][0] == "layer2" and found["x"][0] is None

    @needs_dot
    def test_renders(self):
        for options in ({}, {"expand": True}, {"collapse": ["layer1/attention"]}, {"level": "element"}):
            assert pipe(dp.to_dot(two_layers(), max_nodes=None, **options), "svg").startswith(b"<?xml")


# -- collapsed scopes --------------------------------------------------------------------------------------


class TestCollapse:
    def test_the_box_counts_the_nodes_and_their_ops(self):
        g = two_layers()
        dot = dp.to_dot(g, collapse=["layer1"])
        box = next(line for line in dot.splitlines() if "scope, collapsed" in line)
        assert "<B>layer1</B>" in box and "scope, collapsed: 7 nodes" in box
        assert "2 param, 1 add, 1 matmul, 1 mul" in box and "1 softmax, 1 tanh" in box
        assert "gradient reached 7 of 7" in box and "shape=box3d" in box
        assert "nodes: W1, b1, matmul_1, add_1, h, a, h2" in box
        shown = ids(dot)
        assert not {"W1", "h", "a", "h2"} & set(shown) and {"x", "W2", "z", "L"} <= set(shown)

    def test_edges_into_the_box_carry_the_sum_of_their_gradients(self):
        g = two_layers()
        dot = dp.to_dot(g, collapse=["layer1/attention"], edge_labels="grad")
        names = ids(dot)
        into = [attrs for tail, head, attrs in edges(dot) if tail == names["h"] and head == "s0"]
        assert len(into) == 1  # h feeds softmax and the product: one edge
        total = g.run.edge_grad("h", "a") + g.run.edge_grad("h", "h2")
        np.testing.assert_allclose(total, g["h"].grad)
        assert "gradient sent back along these 2 edges, summed:\\n" + dot_text(full_text(total)) in into[0]
        assert "into a (argument 0: x), h2 (argument 1: b)" in into[0]

    def test_edges_out_of_the_box_start_at_it_and_name_the_tensor(self):
        g = two_layers()
        dot = dp.to_dot(g, collapse=["layer1/attention"])
        names = ids(dot)
        out = [attrs for tail, head, attrs in edges(dot) if tail == "s0"]
        assert {head for tail, head, _ in edges(dot) if tail == "s0"} == {names["matmul_2"], names["sum_1"]}
        assert all('POINT-SIZE="8">h2</FONT>' in attrs for attrs in out)

    def test_no_edge_inside_a_box(self):
        dot = dp.to_dot(two_layers(), collapse=["layer1"])
        assert not [edge for edge in edges(dot) if edge[0] == edge[1]]
        assert len([edge for edge in edges(dot) if edge[1] == "s0"]) == 1  # only x goes in

    def test_box_to_box(self):
        g = two_layers()
        dot = dp.to_dot(g, collapse=["layer1", "layer2"])
        between = [attrs for tail, head, attrs in edges(dot) if (tail, head) == ("s0", "s1")]
        assert len(between) == 1 and 'POINT-SIZE="8">h2</FONT>' in between[0]
        assert dot_text(full_text(g["h2"].grad)) in between[0]

    def test_a_nested_collapsed_box_sits_in_its_parent_cluster(self):
        dot = dp.to_dot(two_layers(), collapse=["layer1/attention"])
        found = clusters(dot)
        assert "s0" in found["layer1"][1] and "attention" not in found
        assert "<B>layer1/attention</B>" in dot

    def test_a_scope_inside_a_collapsed_scope_goes_into_its_box(self):
        dot = dp.to_dot(two_layers(), collapse=["layer1", "layer1/attention"])
        assert dot.count("scope, collapsed") == 1 and "scope, collapsed: 7 nodes" in dot

    def test_the_consumers_fan_out_is_summed_per_box(self):
        g = dp.Graph()
        x = g.param("x", [1.0, 2.0])
        with g.scope("s"):
            y = x * 3.0 + x.exp()
        g.op("sum", y + x, name="L")
        g.forward()
        g.backward("L")
        dot = dp.to_dot(g, collapse=["s"])
        label = next(line for line in dot.splitlines() if "<B>x</B>" in line).split("tooltip=")[0]
        assert "via s<" in label and "via add_2<" in label and label.count("via ") == 2

    def test_an_opened_composite_inside_a_collapsed_scope_is_in_the_box(self):
        dot = dp.to_dot(two_layers(), expand=["softmax"], collapse=["layer1"])
        assert "= softmax, opened" not in dot and "exp_1" in dot.split("scope, collapsed")[1].split("\n")[0]

    def test_highlighting_a_hidden_node_highlights_its_box(self):
        dot = dp.to_dot(two_layers(), collapse=["layer2"], highlight=["z"])
        box = next(line for line in dot.splitlines() if "scope, collapsed" in line)
        assert "penwidth=3" in box

    def test_an_unknown_scope_is_refused_with_close_names(self):
        with pytest.raises(dp.RenderError, match="collapse= names 'layer3', which is not a scope of this graph.*"
                                                 "close names: 'layer\\d', 'layer\\d'"):
            dp.to_dot(two_layers(), collapse=["layer3"])
        with pytest.raises(dp.RenderError, match="it has no scopes"):
            dp.to_dot(dp.Graph(), collapse=["a"])

    def test_a_single_name_is_one_scope(self):
        assert dp.to_dot(two_layers(), collapse="layer2") == dp.to_dot(two_layers(), collapse=["layer2"])

    def test_element_level_refuses(self):
        with pytest.raises(dp.RenderError, match="collapse= draws scopes as boxes at the tensor level"):
            dp.to_dot(two_layers(), level="element", collapse=["layer1"])

    def test_collapsing_counts_towards_max_nodes(self):
        g = two_layers()
        with pytest.warns(LargeGraphWarning):
            dp.to_dot(g, max_nodes=10)
        dp.to_dot(g, max_nodes=10, collapse=["layer1"])  # 9 boxes: no warning (pytest turns it into an error)

    def test_render_takes_collapse(self, tmp_path):
        d = dp.render(two_layers(), tmp_path / "g.dot", collapse=["layer1"])
        assert (tmp_path / "g.dot").read_text() == d.source and "scope, collapsed" in d.source

    @needs_dot
    def test_svg_box_and_its_tooltip(self):
        root = ET.fromstring(pipe(dp.to_dot(two_layers(), collapse=["layer1"]), "svg").decode())
        tips = [a.get(f"{XLINK}title") for a in root.iter(f"{SVG}a")]
        assert any(t and t.startswith("scope layer1, collapsed: 7 nodes (2 param") for t in tips)


class TestLargeGraphs:
    def test_chains_stop_at_scope_boundaries(self):
        g = dp.Graph()
        h = g.param("x", 1.0)
        for name in ("a", "b"):
            with g.scope(name):
                for _ in range(4):
                    h = h.tanh()
        with pytest.warns(LargeGraphWarning):
            dot = dp.to_dot(g, max_nodes=5)
        assert "4 ops summarised (tanh); tanh_1 \u2192 tanh_4" in dot
        assert "3 ops summarised (tanh); tanh_5 \u2192 tanh_7" in dot  # not tanh_4 -> ..., across the scopes
        found = clusters(dot)
        assert len(found["a"][1]) == 1 and len(found["b"][1]) == 2


# -- short names -------------------------------------------------------------------------------------------


class TestShortNames:
    def test_no_owner(self):
        assert short_names(["a", "b"], {}, {}) == {"a": "a", "b": "b"}

    def test_nested_owners_lengthen_step_by_step(self):
        from dagprop.expand import Expansion

        opened = {"att": Expansion("att", "attention", ("att.matmul_1", "att.exp_1", "att")),
                  "att.softmax_1": Expansion("att.softmax_1", "softmax",
                                             ("att.softmax_1.exp_1", "att.softmax_1"), parent="att")}
        owner = {name: e.name for e in opened.values() for name in e.nodes}
        shown = short_names(["att.exp_1", "att.softmax_1.exp_1", "att.matmul_1", "att.softmax_1", "att"],
                            owner, opened)
        assert shown == {"att.exp_1": "att.exp_1", "att.softmax_1.exp_1": "softmax_1.exp_1",
                         "att.matmul_1": "matmul_1", "att.softmax_1": "softmax_1", "att": "att"}
