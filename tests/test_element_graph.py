"""The element-level graph: names, attributes, edge weights against finite differences for
every registered op, zero derivatives omitted, plugin ops without explicit jacobians."""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp
from dagprop.paths import element_name

import notes_mlp

REGISTRY = dp.Graph().registry
OPS_WITH_EXAMPLES = sorted(op.name for op in REGISTRY if op.example is not None)


def finite_difference_jacobian(forward, args, slot, attrs, eps=1e-6):
    """d forward(*args)[o] / d args[slot][i] by central differences, shaped (out.size, in.size)."""
    base = [np.array(a, dtype=np.float64) for a in args]
    out = np.asarray(forward(*base, **attrs))
    jacobian = np.zeros((out.size, base[slot].size))
    for i in range(base[slot].size):
        plus = [a.copy() for a in base]
        minus = [a.copy() for a in base]
        plus[slot].flat[i] += eps
        minus[slot].flat[i] -= eps
        jacobian[:, i] = (np.asarray(forward(*plus, **attrs)) - np.asarray(forward(*minus, **attrs))).ravel() / (2 * eps)
    return jacobian


@pytest.mark.parametrize("name", OPS_WITH_EXAMPLES)
def test_edge_weights_match_finite_differences_for_every_registered_op(name):
    op = REGISTRY[name]
    rng = np.random.default_rng(7)
    raw, attrs = op.example(rng)
    args = [rng.standard_normal(a) if isinstance(a, tuple) else np.asarray(a, dtype=np.float64) for a in raw]
    g = dp.Graph()
    leaves = [g.param(f"in{slot}", a) for slot, a in enumerate(args)]
    out = g.op(name, *leaves, name="out", **attrs)
    g.forward()
    eg = g.element_graph()
    out_names = [element_name("out", i) for i in np.ndindex(out.value.shape)]
    for slot, leaf in enumerate(leaves):
        expected = finite_difference_jacobian(op.forward, args, slot, attrs)
        in_names = [element_name(leaf.name, i) for i in np.ndindex(leaf.value.shape)]
        weights = np.array([[eg.edges[i, o]["weight"] if eg.has_edge(i, o) else 0.0 for i in in_names]
                            for o in out_names]).reshape(expected.shape)
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: d out / d {leaf.name}")
        # an edge exists exactly where the derivative is non-zero
        missing = (weights == 0) & (np.abs(expected) > 1e-6)
        assert not missing.any(), f"{name}: edges missing for non-zero derivatives"


def test_names_and_attributes_on_the_notes_mlp():
    g, n = notes_mlp.build()
    eg = g.element_graph()
    assert eg.number_of_nodes() == 16 + 8 + 4 + 2 + 4 + 4 + 2 + 2 + 1
    assert "L" in eg and "W1[2,0]" in eg and "yhat[1]" in eg
    node = eg.nodes["W1[2,0]"]
    assert node["value"] == -0.3 and node["tensor"] == "W1" and node["index"] == (2, 0) and node["kind"] == "param"
    assert node["grad"] == pytest.approx(n["W1"].grad[2, 0])
    assert eg.nodes["L"]["grad"] == 1.0 and eg.nodes["L"]["op"] == "squared_error"
    assert eg.nodes["x[1]"]["grad"] is None  # an input without requires_grad
    # a21 = sum_j w21j h1j: d a2[0] / d W2[0,2] = h1[2], d a2[0] / d h1[2] = W2[0,2] = 0.2 (the notes' w213)
    assert eg.edges["W2[0,2]", "a2[0]"]["weight"] == pytest.approx(n["h1"].value[2])
    assert eg.edges["h1[2]", "a2[0]"]["weight"] == pytest.approx(0.2)
    assert not eg.has_edge("W2[0,2]", "a2[1]")  # W2's first row does not touch a2[1]
    assert not eg.has_edge("a1[0]", "h1[1]")  # sigmoid is elementwise
    assert eg.has_edge("a2[1]", "yhat[0]")  # softmax couples every output to every input
    assert nx_is_dag(eg)


def nx_is_dag(graph) -> bool:
    import networkx as nx

    return nx.is_directed_acyclic_graph(graph)


def test_scalar_nodes_keep_their_plain_name_and_grad_is_none_before_backward():
    g = dp.Graph()
    a = g.param("a", 2.0)
    b = g.param("b", [1.0, -1.0])
    c = g.op("mul", a, b, name="c")
    g.forward()
    eg = g.element_graph()
    assert sorted(eg) == ["a", "b[0]", "b[1]", "c[0]", "c[1]"]
    assert all(eg.nodes[v]["grad"] is None for v in eg)
    # a scalar broadcast against a vector feeds every element
    assert eg.edges["a", "c[1]"]["weight"] == -1.0 and eg.edges["b[1]", "c[1]"]["weight"] == 2.0


def test_zero_derivatives_make_no_edge():
    g = dp.Graph()
    x = g.param("x", [-1.0, 2.0])
    r = g.op("relu", x, name="r")
    m = g.op("mul", x, g.const([0.0, 3.0], name="mask"), name="m")
    g.forward()
    eg = g.element_graph()
    assert not eg.has_edge("x[0]", "r[0]") and eg.edges["x[1]", "r[1]"]["weight"] == 1.0
    assert not eg.has_edge("x[0]", "m[0]") and eg.edges["x[1]", "m[1]"]["weight"] == 3.0
    assert all(w != 0 for _, _, w in eg.edges(data="weight"))


class VjpOnly:
    """A third-party op with no explicit jacobian: the element graph must still know its derivatives."""

    @staticmethod
    def _forward(x):
        return np.cumsum(x) ** 2

    @staticmethod
    def _vjp(g, x, *, out):
        inner = np.cumsum(x)
        return (np.cumsum((2 * inner * g)[::-1])[::-1],)

    @dp.hookimpl
    def dagprop_ops(self):
        return [dp.Op("cumsum_squared", forward=self._forward, vjp=self._vjp, doc="cumsum(x) ** 2")]


def test_a_plugin_op_without_jacobian_gets_element_edges_from_its_vjp():
    g = dp.Graph(plugins=[VjpOnly()])
    x = g.param("x", [1.0, 2.0, -0.5])
    y = g.op("cumsum_squared", x, name="y")
    loss = g.op("sum", y, name="loss")
    g.forward()
    g.backward(loss)
    eg = g.element_graph()
    expected = finite_difference_jacobian(VjpOnly._forward, [x.value], 0, {})
    for o in range(3):
        for i in range(3):
            weight = eg.edges[f"x[{i}]", f"y[{o}]"]["weight"] if eg.has_edge(f"x[{i}]", f"y[{o}]") else 0.0
            assert weight == pytest.approx(expected[o, i], abs=1e-6)
    assert not eg.has_edge("x[2]", "y[0]")  # y[0] depends on x[0] only
    for i in range(3):
        assert sum(p.contribution for p in g.paths(x, loss, index=(i,))) == pytest.approx(x.grad[i])


def test_element_graph_before_forward_is_a_clear_error():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    g.op("mul", x, x, name="y")
    with pytest.raises(dp.GraphError, match=r"node 'y' has no value.*run g.forward\(\) first"):
        g.element_graph()


def test_expanded_softmax_gives_finer_paths_with_the_same_sum():
    g, n = notes_mlp.build()
    expanded = g.expanded(["softmax"])  # run already: same leaves, same seed
    boxed = g.paths("W1", "L", index=(2, 0))
    circuit = expanded.paths("W1", "L", index=(2, 0))
    assert len(circuit) > len(boxed)
    assert sum(p.contribution for p in circuit) == pytest.approx(sum(p.contribution for p in boxed), rel=1e-9)
    assert sum(p.contribution for p in circuit) == pytest.approx(n["W1"].grad[2, 0], rel=1e-9)
    # the notes' attention circuit: a2[0] reaches the loss through exp, then both the
    # numerator branch (exp -> mul) and the denominator branch (exp -> sum -> 1/b -> mul)
    through_a2 = expanded.paths("a2", "L", index=(0,))
    assert len(through_a2) == expanded.count_paths("a2", "L", (0,)) > len(g.paths("a2", "L", index=(0,)))
    via_denominator = ["yhat.sum_1[0]" in p.nodes for p in through_a2]
    assert any(via_denominator) and not all(via_denominator)
    assert sum(p.contribution for p in through_a2) == pytest.approx(n["a2"].grad[0], rel=1e-9)
