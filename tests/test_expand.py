"""Opening composite ops: circuits with real values and gradients, equal at the boundary."""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp
from dagprop.expand import ExpandedGraph, Expansion, composite_ops, expanded


def run(g: dp.Graph, loss: str = "L") -> dp.Graph:
    g.forward()
    g.backward(loss)
    return g


def softmax_graph() -> dp.Graph:
    g = dp.Graph()
    e = g.param("e", [[1.0, 2.0, -0.5]])
    alpha = g.op("softmax", e, name="alpha")
    g.op("l2_loss", alpha, g.input("y", [[0.0, 1.0, 0.0]]), name="L")
    return run(g)


def attention_graph() -> dp.Graph:
    rng = np.random.default_rng(7)
    g = dp.Graph()
    Q = g.param("Q", rng.normal(size=(3, 4)))
    K = g.param("K", rng.normal(size=(5, 4)))
    V = g.param("V", rng.normal(size=(5, 2)))
    out = g.op("attention", Q, K, V, name="out")
    g.op("sum", out * out, name="L")
    return run(g)


def assert_same_boundary(original: dp.Graph, opened: dp.Graph) -> None:
    for node in original:
        twin = opened[node.name]
        assert twin.kind == node.kind
        np.testing.assert_allclose(twin.value, node.value, rtol=1e-12, atol=1e-12)
        if node.grad is None:
            assert twin.grad is None, node.name
        else:
            np.testing.assert_allclose(twin.grad, node.grad, rtol=1e-10, atol=1e-12, err_msg=node.name)


class TestSoftmaxCircuit:
    def test_structure(self):
        h = expanded(softmax_graph(), ["softmax"])
        assert isinstance(h, ExpandedGraph)
        circuit = ("alpha.max_1", "alpha.sub_1", "alpha.exp_1", "alpha.sum_1", "alpha.reciprocal_1", "alpha")
        assert h.expansions == {"alpha": Expansion("alpha", "softmax", circuit)}
        assert [h[n].op for n in circuit] == ["max", "sub", "exp", "sum", "reciprocal", "mul"]
        assert h["alpha"].inputs[0].name == "alpha.exp_1"

    def test_boundary_values_and_gradients_equal(self):
        g = softmax_graph()
        assert_same_boundary(g, expanded(g, ["softmax"]))

    def test_internals_have_real_values_and_gradients(self):
        g = softmax_graph()
        h = expanded(g, ["softmax"])
        e = g["e"].value
        shifted = np.exp(e - e.max(axis=-1, keepdims=True))  # the row max subtracted: no overflow
        np.testing.assert_allclose(h["alpha.exp_1"].value, shifted)
        np.testing.assert_allclose(h["alpha.sum_1"].value, shifted.sum(keepdims=True))
        for name in h.expansions["alpha"].nodes:
            assert h[name].grad is not None, name

    def test_the_two_branches_add_at_exp(self):
        """The note's softmax circuit: the gradient reaching exp is its two branches' sum."""
        g = softmax_graph()
        h = expanded(g, ["softmax"])
        via_product = h.edge_grad("alpha.exp_1", "alpha")
        via_sum = h.edge_grad("alpha.exp_1", "alpha.sum_1")
        np.testing.assert_allclose(via_product + via_sum, h["alpha.exp_1"].grad)
        # and through exp, d alpha_i / d e_i = alpha_i (1 - alpha_i): compare with the closed form
        alpha = g["alpha"].value[0]
        upstream = g["alpha"].grad[0]
        jacobian = np.diag(alpha) - np.outer(alpha, alpha)
        np.testing.assert_allclose(h["e"].grad[0], jacobian @ upstream, rtol=1e-12)

    def test_method_on_graph(self):
        g = softmax_graph()
        assert set(g.expanded().expansions) == {"alpha"}
        assert g.expanded(["softmax"]).expansions["alpha"].op == "softmax"


class TestAttention:
    def test_everything_opens_nested(self):
        g = attention_graph()
        h = expanded(g)
        assert set(h.expansions) == {"out", "out.softmax_1"}
        assert h.expansions["out.softmax_1"].parent == "out"
        assert h.expansions["out"].parent is None
        assert "out.softmax_1" not in h.expansions["out"].nodes  # drawn in its own cluster
        assert_same_boundary(g, h)

    def test_only_the_named_op_opens(self):
        g = attention_graph()
        h = expanded(g, ["attention"])
        assert list(h.expansions) == ["out"]
        assert h["out.softmax_1"].op == "softmax"
        assert_same_boundary(g, h)

    def test_expand_true_is_everything(self):
        g = attention_graph()
        assert set(expanded(g, True).expansions) == set(expanded(g, None).expansions)

    def test_nothing_opens(self):
        g = attention_graph()
        for ops in (False, [], ()):
            h = expanded(g, ops)
            assert h.expansions == {} and [n.name for n in h] == [n.name for n in g]
            assert_same_boundary(g, h)


class TestRuns:
    def test_graph_not_run(self):
        g = dp.Graph()
        g.op("softmax", g.param("e", [[1.0, 2.0]]), name="alpha")
        h = expanded(g)
        assert all(n.value is None for n in h if n.op is not None)
        assert all(n.grad is None for n in h)

    def test_forward_only(self):
        g = dp.Graph()
        g.op("softmax", g.param("e", [[1.0, 2.0]]), name="alpha")
        g.forward()
        h = expanded(g)
        np.testing.assert_allclose(h["alpha"].value, g["alpha"].value)
        assert all(n.grad is None for n in h)

    def test_two_losses_accumulated(self):
        g = dp.Graph()
        e = g.param("e", [[0.5, -1.0, 2.0]])
        alpha = g.op("softmax", e, name="alpha")
        L1 = g.op("sum", alpha * g.const([[1.0, 2.0, 3.0]]), name="L1")
        L2 = g.op("sum", alpha * alpha, name="L2")
        g.forward()
        g.backward(L1)
        g.backward(L2)
        assert [n.name for n, _ in g.run.seeds] == ["L1", "L2"]
        assert_same_boundary(g, expanded(g))

    def test_seed_on_an_intermediate_node(self):
        g = dp.Graph()
        e = g.param("e", [[0.5, -1.0]])
        alpha = g.op("softmax", e, name="alpha")
        L = g.op("sum", alpha * alpha, name="L")
        g.forward()
        g.backward(L)
        g.backward(alpha, seed=np.array([[1.0, -1.0]]))
        found = dict((n.name, s) for n, s in g.run.seeds)
        np.testing.assert_allclose(found["alpha"], [[1.0, -1.0]])
        assert_same_boundary(g, expanded(g))

    def test_inputs_that_require_grad(self):
        g = dp.Graph()
        x = g.input("x", [[1.0, 3.0]], requires_grad=True)
        g.op("sum", g.op("softmax", x, name="s") * g.const([[2.0, -1.0]]), name="L")
        run(g)
        h = expanded(g)
        assert h["x"].requires_grad
        assert_same_boundary(g, h)


class TestNames:
    def test_original_names_are_never_taken(self):
        g = dp.Graph()
        e = g.param("e", [[1.0, 2.0]])
        alpha = g.op("softmax", e, name="alpha")
        # a later node already named like a circuit node
        g.op("sum", g.op("exp", alpha, name="alpha.exp_1"), name="L")
        run(g)
        h = expanded(g)
        assert h["alpha.exp_1"].inputs[0].name == "alpha"  # the original node kept its name
        assert "alpha.exp_1#2" in h.expansions["alpha"].nodes
        assert_same_boundary(g, h)

    def test_composite_ops(self):
        assert composite_ops(attention_graph()) == ["attention"]
        assert composite_ops(softmax_graph()) == ["softmax"]


# -- ops with odd decompositions, from a local plugin -------------------------------------------------


def _identity_vjp(g, x, *, out):
    return (g,)


def _raising_decompose(x):
    raise RuntimeError("no circuit today")


def _not_a_node(x):
    return 42


def _returns_input(x):
    return x


def _twice_decompose(x):
    return x + x


def _twice_vjp(g, x, *, out):
    return (2 * g,)


class OddOps:
    @dp.hookimpl
    def dagprop_ops(self):
        return [
            dp.Op("raises", forward=np.copy, vjp=_identity_vjp, decompose=_raising_decompose),
            dp.Op("not_node", forward=np.copy, vjp=_identity_vjp, decompose=_not_a_node),
            dp.Op("same", forward=np.copy, vjp=_identity_vjp, decompose=_returns_input),
            dp.Op("twice", forward=lambda x: 2 * x, vjp=_twice_vjp, decompose=_twice_decompose),
        ]


def odd_graph(op: str) -> dp.Graph:
    g = dp.Graph(plugins=[OddOps()])
    g.op("sum", g.op(op, g.param("x", [1.0, 2.0]), name="y"), name="L")
    return run(g)


class TestBadDecompositions:
    def test_raising(self):
        with pytest.raises(dp.OpError, match="decompose of op 'raises'.*node 'y'.*no circuit today"):
            expanded(odd_graph("raises"))

    def test_not_a_node(self):
        with pytest.raises(dp.OpError, match="returned 42"):
            expanded(odd_graph("not_node"))

    def test_returning_an_input_leaves_the_box(self):
        g = odd_graph("same")
        h = expanded(g)
        assert h.expansions == {} and h["y"].op == "same"
        assert_same_boundary(g, h)

    def test_plugin_op_opens(self):
        g = odd_graph("twice")
        h = expanded(g, ["twice"])
        assert h["y"].op == "add" and [s.name for s in h["y"].inputs] == ["x", "x"]
        assert_same_boundary(g, h)


class TestBadArguments:
    def test_unknown_op(self):
        with pytest.raises(dp.UnknownOpError, match="softmx"):
            expanded(softmax_graph(), ["softmx"])

    def test_op_without_decomposition(self):
        with pytest.raises(dp.GraphError, match="'matmul' has no decomposition"):
            expanded(softmax_graph(), ["matmul"])

    def test_single_name(self):
        assert list(expanded(softmax_graph(), "softmax").expansions) == ["alpha"]


class TestDrawn:
    def test_cluster_named_after_the_node(self):
        dot = dp.to_dot(softmax_graph(), expand=["softmax"])
        assert dot.count("subgraph cluster_") == 1
        assert "<B>alpha</B>" in dot and "= softmax, opened" in dot
        assert "<B>exp_1</B>" in dot  # shown without the cluster's prefix

    def test_nested_clusters(self):
        dot = dp.to_dot(attention_graph(), expand=True)
        assert dot.count("subgraph cluster_") == 2
        outer = dot.index("subgraph cluster_0")
        inner = dot.index("subgraph cluster_1")
        closing = dot.index("\t}", inner)
        assert outer < inner < closing < dot.index("->")
        # names are shown relative to the cluster that holds them
        assert "<B>softmax_1</B>" in dot and "<B>exp_1</B>" in dot and "<B>out</B>" in dot
        assert "<B>out.softmax_1" not in dot


class TestOriginalNodesNameTheirCopies:
    """A node of the source graph names its copy in an opened graph (issue 11, item 4)."""

    def test_simulate_codegen_and_methods_take_original_nodes(self):
        g = softmax_graph()
        h = g.expanded(["softmax"])
        loss, alpha = g["L"], g["alpha"]
        steps = list(dp.simulate(h, loss))
        assert steps[-1].kind == "backward" and any(s.node == "alpha.exp_1" for s in steps)
        assert "def backward" in dp.codegen(h, loss)
        np.testing.assert_allclose(h.run.value(alpha), alpha.value)
        np.testing.assert_allclose(h.jacobian(alpha, g["e"]), g.jacobian(alpha, g["e"]), rtol=1e-12)

    def test_animate_takes_the_original_loss(self, tmp_path):
        g = softmax_graph()
        out = dp.animate(g.expanded(["softmax"]), g["L"], tmp_path / "run.html")
        assert "alpha.exp_1" in out.read_text() or "exp_1" in out.read_text()

    def test_animate_opens_composites_itself(self, tmp_path):
        g = softmax_graph()
        plain = dp.animate(g, g["L"], tmp_path / "plain.html").read_text()
        opened = dp.animate(g, g["L"], tmp_path / "opened.html", expand=["softmax"]).read_text()
        assert "exp_1" not in plain and "exp_1" in opened

    def test_nodes_of_an_unrelated_graph_are_still_refused(self):
        h = softmax_graph().expanded(["softmax"])
        with pytest.raises(dp.GraphError, match="belongs to another graph"):
            h.node(softmax_graph()["L"])
