"""Forward mode: g.jvp, node tangents, edge tangents and Jacobians a column at a time.

Expected numbers come from closed forms written here, central differences of plain-numpy
functions, or the identity <grad, v> = tangent of the loss along v.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings

import dagprop as dp
from dagprop import Op
from dagprop.errors import GraphError, OpError

from helpers import central_difference
from test_properties import evaluate, recipes


def test_tangent_of_a_small_graph_matches_its_closed_form():
    g = dp.Graph()
    x = g.param("x", [0.3, -1.2])
    w = g.param("w", [2.0, 0.5])
    y = (x * w).tanh() + x
    tx, tw = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    g.jvp({x: tx, "w": tw})
    xv, wv = np.array([0.3, -1.2]), np.array([2.0, 0.5])
    slope = 1 - np.tanh(xv * wv) ** 2
    np.testing.assert_allclose(y.tangent, slope * (wv * tx + xv * tw) + tx, rtol=1e-12)


def test_leaves_left_out_do_not_move_and_unreached_nodes_have_no_tangent():
    g = dp.Graph()
    x = g.param("x", 2.0)
    w = g.param("w", 3.0)
    only_w = w.exp()
    y = x * w
    g.jvp({x: 1.0})
    assert float(y.tangent) == 3.0
    assert only_w.tangent is None and w.tangent is None
    assert float(x.tangent) == 1.0


def test_edge_tangents_sum_over_slots_and_add_up_to_the_node_tangent():
    g = dp.Graph()
    x = g.param("x", 1.5)
    y = x * x
    z = g.op("add", y, x, name="z")
    g.jvp({x: 2.0})
    assert float(g.edge_tangent(x, y)) == pytest.approx(2 * 1.5 * 2.0)  # 1.5 * 2 along each slot
    assert float(g.edge_tangent(y, z)) + float(g.edge_tangent(x, z)) == pytest.approx(float(z.tangent))
    flows = [(s.name, c.name, slot, float(t)) for s, c, slot, t in g.run.edges(flow="tangent")]
    assert flows == [("x", y.name, 0, 3.0), ("x", y.name, 1, 3.0), (y.name, "z", 0, 6.0), ("x", "z", 1, 2.0)]


def test_jvp_runs_forward_when_values_are_missing_and_keeps_gradients():
    g = dp.Graph()
    x = g.param("x", 0.5)
    L = (x * x).sum()
    g.forward()
    g.backward(L)
    g.jvp({x: 1.0})
    assert float(L.tangent) == pytest.approx(1.0)
    assert float(x.grad) == pytest.approx(1.0)  # backward's gradient survives a jvp
    h = dp.Graph()
    a = h.param("a", 2.0)
    b = a.exp()
    h.jvp({a: 1.0})  # no forward yet
    assert float(b.value) == pytest.approx(np.exp(2.0)) and float(b.tangent) == pytest.approx(np.exp(2.0))


def test_a_new_forward_forgets_tangents_of_the_old_values():
    g = dp.Graph()
    x = g.input("x", 1.0)
    y = x * x
    g.jvp({x: 1.0})
    assert float(y.tangent) == 2.0
    g.forward(feeds={"x": 3.0})
    assert y.tangent is None


@settings(max_examples=40, deadline=None)
@given(recipes())
def test_tangent_of_the_output_is_the_directional_derivative_on_random_dags(recipe):
    leaf_values, steps = recipe
    g = dp.Graph()
    nodes = [g.param(f"p{i}", v) for i, v in enumerate(leaf_values)]
    for op, *args in steps:
        nodes.append(g.op(op, *[nodes[a] for a in args]))
    out = g.op("sum", nodes[-1])
    direction = np.random.default_rng(len(steps)).standard_normal(leaf_values.shape)
    g.jvp({f"p{i}": direction[i] for i in range(len(leaf_values))})
    numeric = central_difference(lambda flat: evaluate(flat.reshape(leaf_values.shape), steps), leaf_values)
    expected = float(np.sum(numeric * direction))
    assert float(out.tangent if out.tangent is not None else 0.0) == pytest.approx(expected, rel=1e-6, abs=1e-7)
    # and forward mode agrees with reverse mode: <grad, v>
    if out.requires_grad:
        g.backward(out)
        reverse = sum(float(np.vdot(n.grad, direction[i])) for i, n in enumerate(nodes[: len(leaf_values)])
                      if n.grad is not None)
        assert float(out.tangent if out.tangent is not None else 0.0) == pytest.approx(reverse, rel=1e-9, abs=1e-12)


def test_tangents_go_to_leaves_of_the_right_shape():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    y = x.exp()
    g.forward()
    with pytest.raises(GraphError, match="op node"):
        g.jvp({y: [1.0, 1.0]})
    with pytest.raises(GraphError, match=r"shape \(3,\).*shape \(2,\)"):
        g.jvp({x: [1.0, 1.0, 1.0]})
    with pytest.raises(dp.DagpropError, match="no node named"):
        g.jvp({"nope": 1.0})


def _only_a_vjp():
    def forward(x):
        return x * 2.0

    def vjp(g, x, *, out):
        return (g * 2.0,)

    return Op("double_vjp_only", forward=forward, vjp=vjp)


def _with_a_jacobian():
    def forward(x):
        return x * 3.0

    def vjp(g, x, *, out):
        return (g * 3.0,)

    def jacobian(x, *, out):
        return (3.0 * np.eye(x.size).reshape(out.shape + x.shape),)

    return Op("triple_jacobian", forward=forward, vjp=vjp, jacobian=jacobian)


class _Plugin:
    @dp.hookimpl
    def dagprop_ops(self):
        return [_only_a_vjp(), _with_a_jacobian()]


def test_an_op_without_jvp_or_jacobian_gets_an_error_naming_it_and_what_to_add():
    g = dp.Graph(plugins=[_Plugin()])
    x = g.param("x", [1.0, 2.0])
    y = g.op("double_vjp_only", x, name="y")
    g.forward()
    with pytest.raises(OpError, match=r"double_vjp_only.*node 'y'.*jvp=.*jacobian="):
        g.jvp({x: [1.0, 0.0]})


def test_an_op_with_an_explicit_jacobian_gets_forward_mode_from_it():
    g = dp.Graph(plugins=[_Plugin()])
    x = g.param("x", [1.0, 2.0])
    y = g.op("triple_jacobian", x)
    g.jvp({x: [1.0, -1.0]})
    np.testing.assert_array_equal(y.tangent, [3.0, -3.0])


def test_jacobian_by_forward_mode_equals_reverse_mode_and_auto_says_which(caplog):
    g = dp.Graph()
    x = g.param("x", [0.2, -0.4])
    W = g.const(np.arange(10.0).reshape(5, 2) / 10)
    y = (W * g.op("broadcast_to", x, shape=(5, 2))).tanh().sum(axis=1)  # 2 inputs -> 5 outputs
    total = y.sum()
    g.forward()
    reverse = g.jacobian(y, x, mode="reverse")
    forward = g.jacobian(y, x, mode="forward")
    xv = np.array([0.2, -0.4])
    Wv = np.arange(10.0).reshape(5, 2) / 10
    closed = (1 - np.tanh(Wv * xv) ** 2) * Wv  # d y_i / d x_j
    np.testing.assert_allclose(reverse, closed, rtol=1e-12)
    np.testing.assert_allclose(forward, closed, rtol=1e-12)
    with caplog.at_level(logging.INFO, logger="dagprop"):
        auto = g.jacobian(y, x)
    np.testing.assert_allclose(auto, closed, rtol=1e-12)
    assert "forward mode, 2 passes" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dagprop"):
        g.jacobian(total, x)
    assert "reverse mode, 1 passes" in caplog.text
    with pytest.raises(GraphError, match="mode must be one of"):
        g.jacobian(y, x, mode="sideways")


def test_jacobian_leaves_tangents_and_gradients_alone():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    y = x * x
    L = y.sum()
    g.forward(); g.backward(L); g.jvp({x: [1.0, 0.0]})
    g.jacobian(y, x, mode="forward")
    np.testing.assert_array_equal(y.tangent, [2.0, 0.0])
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
