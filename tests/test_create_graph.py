"""backward(create_graph=True): the backward pass as ordinary nodes of the same graph.

Expected numbers come from closed forms written here or central differences of plain numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp
from dagprop import Op
from dagprop.errors import BackwardError, OpError


def test_gradient_nodes_compute_the_gradients_and_differentiate_again():
    g = dp.Graph()
    x = g.param("x", [0.5, -2.0])
    L = (x * x * x).sum()
    g.forward()
    g.backward(L, create_graph=True)
    xv = np.array([0.5, -2.0])
    np.testing.assert_allclose(x.grad, 3 * xv**2)
    np.testing.assert_allclose(x.grad_node.value, 3 * xv**2)
    assert x.grad_node.scope == ("backward",)
    assert x.grad_node.graph is g
    # the gradient node is an ordinary node: feed it into more ops and differentiate again
    g2 = x.grad_node.sum()
    g.zero_grad()
    g.forward()
    g.backward(g2)
    np.testing.assert_allclose(x.grad, 6 * xv)


def test_third_derivative_of_tanh_through_two_rounds_of_create_graph():
    g = dp.Graph()
    x = g.param("x", 0.7)
    y = x.tanh()
    g.forward()
    g.backward(y, create_graph=True)
    first = x.grad_node
    g.zero_grad()
    g.backward(first, create_graph=True)
    second = x.grad_node
    g.zero_grad()
    g.backward(second)
    t = np.tanh(0.7)
    np.testing.assert_allclose(float(first.value), 1 - t**2, rtol=1e-12)
    np.testing.assert_allclose(float(second.value), -2 * t * (1 - t**2), rtol=1e-12)
    np.testing.assert_allclose(float(x.grad), -2 * (1 - t**2) ** 2 + 4 * t**2 * (1 - t**2), rtol=1e-12)


def test_gradient_nodes_follow_new_values_on_the_next_forward():
    g = dp.Graph()
    w = g.param("w", [1.0, 2.0])
    L = (w.exp() * w).sum()
    g.forward()
    g.backward(L, create_graph=True)
    node = w.grad_node
    g.step(lr=0.1)
    g.forward()
    wv = np.array([1.0, 2.0]) - 0.1 * (np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))
    np.testing.assert_allclose(node.value, np.exp(wv) * (1 + wv), rtol=1e-12)


def test_edge_gradients_are_recorded_as_in_a_plain_backward():
    def build():
        g = dp.Graph()
        x = g.param("x", [0.3, 0.9])
        y = g.op("mul", x, x.sigmoid(), name="y")
        return g, x, y, g.op("sum", y, name="L")

    plain, px, py, pL = build()
    plain.forward(); plain.backward(pL)
    nodes, nx_, ny, nL = build()
    nodes.forward(); nodes.backward(nL, create_graph=True)
    np.testing.assert_allclose(nx_.grad, px.grad, rtol=1e-14)
    for (s1, c1, k1, d1), (s2, c2, k2, d2) in zip(plain.run.edges(), nodes.run.edges()):
        assert (s1.name, c1.name, k1) == (s2.name, c2.name, k2)
        np.testing.assert_allclose(d2, d1, rtol=1e-14)


def test_accumulating_two_create_graph_passes_sums_their_nodes():
    g = dp.Graph()
    x = g.param("x", 1.5)
    L = x * x
    g.forward()
    g.backward(L, create_graph=True)
    g.backward(L, create_graph=True)
    assert float(x.grad) == pytest.approx(6.0)
    assert float(x.grad_node.value) == pytest.approx(6.0)


def test_create_graph_on_top_of_plain_gradients_is_refused_and_leaves_the_graph_as_it_was():
    g = dp.Graph()
    x = g.param("x", 1.5)
    L = x * x
    g.forward()
    g.backward(L)
    before = [n.name for n in g]
    with pytest.raises(BackwardError, match="zero_grad"):
        g.backward(L, create_graph=True)
    assert [n.name for n in g] == before
    assert float(x.grad) == 3.0
    g.zero_grad()
    g.backward(L, create_graph=True)
    assert float(x.grad_node.value) == 3.0


def test_create_graph_cannot_use_jacobian_mode():
    g = dp.Graph()
    x = g.param("x", 1.0)
    g.forward()
    with pytest.raises(BackwardError, match="mode='jacobian'"):
        g.backward(x * 2.0, create_graph=True, mode="jacobian")


# -- plugin ops: without the rule, through a decomposition, from a derivative -----------------------

def _cube_forward(x):
    return x**3


def _cube_vjp(g, x, *, out):
    return (3 * x**2 * g,)


def _cube_decompose(x):
    return x * x * x


def _cos_derivative_with_numpy(x, *, out):
    return -np.sin(x)


def _sin_derivative(x, *, out):
    return np.cos(x)


class _Plugin:
    @dp.hookimpl
    def dagprop_ops(self):
        return [
            Op("cube_plain", forward=_cube_forward, vjp=_cube_vjp),
            Op("cube_circuit", forward=_cube_forward, vjp=_cube_vjp, decompose=_cube_decompose),
            Op.elementwise("cos_numpy", np.cos, _cos_derivative_with_numpy),
            Op.elementwise("sin_numpy", np.sin, _sin_derivative),
        ]


def test_an_op_without_vjp_graph_works_first_order_and_names_itself_for_create_graph():
    g = dp.Graph(plugins=[_Plugin()])
    x = g.param("x", 2.0)
    y = g.op("cube_plain", x, name="y")
    g.forward()
    g.backward(y)
    assert float(x.grad) == 12.0
    g.zero_grad()
    before, version = [n.name for n in g], len(g)
    with pytest.raises(OpError, match=r"create_graph=True\) cannot go through op 'cube_plain' at node 'y'.*vjp_graph="):
        g.backward(y, create_graph=True)
    assert [n.name for n in g] == before and len(g) == version
    assert x.grad is None
    g.forward()  # the graph still runs: the half-built backward nodes are gone
    assert float(y.value) == 8.0


def test_an_op_with_a_decomposition_is_differentiated_twice_through_its_circuit():
    g = dp.Graph(plugins=[_Plugin()])
    x = g.param("x", [2.0, -1.0])
    L = g.op("cube_circuit", x).sum()
    g.forward()
    g.backward(L, create_graph=True)
    np.testing.assert_allclose(x.grad_node.value, 3 * np.array([2.0, -1.0]) ** 2)
    np.testing.assert_allclose(g.hessian(L, x), np.diag(6 * np.array([2.0, -1.0])))


def test_an_elementwise_derivative_written_with_numpy_gets_a_hint_for_create_graph():
    g = dp.Graph(plugins=[_Plugin()])
    x = g.param("x", 0.3)
    y = g.op("cos_numpy", x)
    g.forward()
    g.backward(y)
    assert float(x.grad) == pytest.approx(-np.sin(0.3))
    g.zero_grad()
    with pytest.raises(OpError, match=r"cos_numpy.*operators"):
        g.backward(y, create_graph=True)


def _leaky_forward(x, *, slope=0.01):
    return np.where(x > 0, x, slope * x)


def _leaky_derivative_with_where(x, *, out, slope=0.01):
    return np.where(x > 0, 1.0, slope)


class _WherePlugin:
    @dp.hookimpl
    def dagprop_ops(self):
        return [Op.elementwise("leaky_where", _leaky_forward, _leaky_derivative_with_where)]


def test_a_numpy_derivative_never_builds_a_silently_wrong_backward_graph():
    # np.where on a node would otherwise test the node's truth and give slope 1 everywhere
    g = dp.Graph(plugins=[_WherePlugin()])
    x = g.param("x", [1.0, -2.0])
    L = x.leaky_where(slope=0.25).sum()
    g.forward()
    with pytest.raises(dp.MissingRuleError, match="not an array"):
        g.backward(L, create_graph=True)
    g.backward(L)
    np.testing.assert_array_equal(x.grad, [1.0, 0.25])
    report = dp.testing.check_op("leaky_where", (3, 4), plugins=[_WherePlugin()], slope=0.25)
    assert report.notes and "create_graph=True" in str(report)


def test_numpy_cannot_turn_a_node_into_an_array():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    with pytest.raises(TypeError, match="graph node, not an array"):
        np.asarray(x)
    with pytest.raises(dp.GraphError, match="not a numeric array"):
        g.const(x)
