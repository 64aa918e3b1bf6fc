"""Forward and backward: order, sums over paths and slots, accumulation, retain, transactions."""

from __future__ import annotations

import tracemalloc

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dagprop as dp
from dagprop import scheduler

from helpers import central_difference


def test_repeated_argument_slots_each_carry_gradient(graph):
    x = graph.param("x", [1.5, -2.0])
    s = x + x
    p = x * x
    graph.forward()
    graph.backward(s, seed=np.ones(2))
    np.testing.assert_allclose(x.grad, [2.0, 2.0])
    graph.zero_grad()
    graph.backward(p, seed=np.ones(2))
    np.testing.assert_allclose(x.grad, 2 * np.array([1.5, -2.0]))
    np.testing.assert_allclose(graph.edge_grad(x, p), 2 * np.array([1.5, -2.0]))


def test_diamond_sums_both_paths(graph):
    # a -> b = 3a, a -> c = a^2, d = b * c: dd/da = 3 c + b * 2a = 9 a^2
    a = graph.param("a", 2.0)
    b, c = 3 * a, a ** 2
    d = b * c
    graph.forward()
    graph.backward(d)
    assert float(a.grad) == pytest.approx(9 * 2.0 ** 2)
    assert float(graph.edge_grad(a, b)) == pytest.approx(3 * float(c.value))
    assert float(graph.edge_grad(a, c)) == pytest.approx(float(b.value) * 2 * 2.0)


def test_shared_subexpression_used_by_several_consumers(graph, rng):
    w = graph.param("w", rng.standard_normal((3, 3)))
    x = graph.input("x", rng.standard_normal((3, 2)))
    h = (w @ x).tanh()
    loss = (h * h).sum() + (h @ x.T).sum() + h.sum()
    graph.forward()
    graph.backward(loss)

    def f(wv):
        hv = np.tanh(wv @ x.value)
        return (hv * hv).sum() + (hv @ x.value.T).sum() + hv.sum()

    np.testing.assert_allclose(w.grad, central_difference(f, w.value), rtol=1e-6, atol=1e-8)
    consumers = [n for n in graph if h in n.inputs]
    assert len(consumers) >= 3
    total = sum(graph.edge_grad(h, n) for n in consumers)
    np.testing.assert_allclose(total, h.grad)  # the node's gradient is the sum of its edges'


def test_second_backward_accumulates_nodes_and_edges(graph):
    x = graph.param("x", 3.0)
    y = x * 2.0
    graph.forward()
    graph.backward(y)
    graph.backward(y)
    assert float(x.grad) == 4.0
    assert float(graph.edge_grad(x, y)) == 4.0


def test_nodes_outside_the_loss_keep_no_gradient(graph):
    x = graph.param("x", 1.0)
    data = graph.input("d", 2.0)
    unused = graph.param("u", 5.0)
    y = x * data
    side = unused * 2
    graph.forward()
    graph.backward(y)
    assert data.grad is None and unused.grad is None and side.grad is None
    assert graph.edge_grad(unused, side) is None
    assert graph.edge_grad(data, y) is None


def test_requires_grad_input_gets_a_gradient(graph):
    x = graph.input("x", [1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    graph.forward()
    graph.backward(y)
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_exponent_slot_without_gradient_never_takes_log_of_negative(graph):
    x = graph.param("x", [-2.0, -0.5])
    y = (x ** graph.const(2.0)).sum()
    with np.errstate(all="raise"):
        graph.forward()
        graph.backward(y)
    np.testing.assert_allclose(x.grad, [-4.0, -1.0])


def test_feeds_replace_inputs_and_outputs_limit_the_work(graph):
    x = graph.input("x")
    y = x * 3
    z = graph.input("other") + 1  # has no value: must not run when only y is asked
    graph.forward(feeds={"x": [1.0, 2.0]}, outputs=[y])
    np.testing.assert_allclose(y.value, [3.0, 6.0])
    assert z.value is None
    with pytest.raises(dp.GraphError, match="only replace inputs"):
        graph.forward(feeds={y.name: 1.0})


def test_missing_input_value_is_a_clear_error(graph):
    x = graph.input("x")
    y = x + 1
    with pytest.raises(dp.GraphError, match=r"no value for 'x'.*feeds"):
        graph.forward()


def test_backward_before_forward_and_non_scalar_loss(graph):
    x = graph.param("x", [1.0, 2.0])
    y = x * 2
    with pytest.raises(dp.BackwardError, match="run forward"):
        graph.backward(y)
    graph.forward()
    with pytest.raises(dp.BackwardError, match=r"shape \(2,\) needs a seed"):
        graph.backward(y)
    with pytest.raises(dp.BackwardError, match="seed has shape"):
        graph.backward(y, seed=np.ones(3))
    graph.backward(y, seed=[1.0, 10.0])
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_backward_from_a_loss_with_no_params_says_so(graph):
    y = graph.input("a", 1.0) * 2
    graph.forward()
    with pytest.raises(dp.BackwardError, match="nothing to differentiate"):
        graph.backward(y)


def test_retain_false_frees_intermediates_and_blocks_backward(graph):
    x = graph.param("x", np.ones(4))
    h = x.exp()
    out = (h * 2).sum()
    graph.forward(retain=False)
    assert h.value is None and out.value is not None and x.value is not None
    with pytest.raises(dp.BackwardError, match="retain=False"):
        graph.backward(out)
    graph.forward()
    graph.backward(out)
    np.testing.assert_allclose(x.grad, 2 * np.exp(np.ones(4)))


def test_retain_false_peak_memory_stays_near_one_layer():
    width, depth = 20_000, 60
    g = dp.Graph()
    h = g.input("x", np.ones(width))
    for _ in range(depth):
        h = h * 1.0001
    one_layer = width * 8
    tracemalloc.start()
    g.forward(retain=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * one_layer, f"peak {peak} bytes for layers of {one_layer} bytes"
    tracemalloc.start()
    g.forward()
    _, kept = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert kept > depth * one_layer * 0.9  # retain=True keeps every layer, as backward needs


def test_failed_forward_leaves_previous_values(graph):
    x = graph.input("x", [1.0, 2.0])
    y = (x * 2).sum()
    graph.forward()
    with pytest.raises(dp.DagpropError):
        graph.forward(feeds={"x": ["bad", "input"]})
    assert float(y.value) == 6.0 and x.value.tolist() == [1.0, 2.0]


def test_failing_op_midway_keeps_old_values_and_names_the_node():
    def explode(x):
        raise RuntimeError("boom")

    class Plugin:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("explode", forward=explode, vjp=lambda g, x, *, out: (g,))]

    g = dp.Graph(plugins=[Plugin()])
    x = g.param("x", 1.0)
    y = x * 2
    z = g.op("explode", y, name="bad")
    g.forward(outputs=[y])
    with pytest.raises(dp.OpError, match=r"op 'explode' at node 'bad'.*boom"):
        g.forward()
    assert float(y.value) == 2.0 and z.value is None


def test_failed_backward_leaves_previous_gradients():
    def wrong_vjp(g, x, *, out):
        return (np.ones(7),)

    class Plugin:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("shaky", forward=np.copy, vjp=wrong_vjp)]

    g = dp.Graph(plugins=[Plugin()])
    x = g.param("x", [1.0, 2.0])
    good = (x * 3).sum()
    bad = (g.op("shaky", x) + x).sum()
    g.forward()
    g.backward(good)
    with pytest.raises(dp.OpError, match=r"returned shape \(7,\) for input 0 \(x\); expected \(2,\)"):
        g.backward(bad)
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_check_finite_names_the_first_node_producing_nan(graph):
    x = graph.param("x", [-1.0, 1.0])
    first = x.log()
    later = first * 2
    with np.errstate(invalid="ignore"):
        graph.forward()  # without the check, NaN passes silently as in numpy
        with pytest.raises(dp.NonFiniteError, match=f"'{first.name}'"):
            graph.forward(check_finite=True)


def test_jacobian_mode_gives_the_same_gradients(graph, rng):
    w = graph.param("w", rng.standard_normal((4, 3)))
    x = graph.input("x", rng.standard_normal((3, 2)))
    loss = ((w @ x).tanh() * 2).sum()
    graph.forward()
    graph.backward(loss)
    by_vjp = w.grad
    graph.zero_grad()
    graph.backward(loss, mode="jacobian")
    np.testing.assert_allclose(w.grad, by_vjp, rtol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        graph.backward(loss, mode="magic")


def test_hundred_thousand_node_chain_runs_without_recursion():
    g = dp.Graph()
    x = g.param("x", 0.3)
    h = x
    for _ in range(100_000):
        h = h.tanh()
    g.forward()
    g.backward(h)
    # closed form of the chain rule along the chain: product of (1 - tanh^2) of each stage
    value, derivative = 0.3, 1.0
    for _ in range(100_000):
        value = np.tanh(value)
        derivative *= 1 - value ** 2
    assert float(h.value) == pytest.approx(value)
    assert float(x.grad) == pytest.approx(derivative, rel=1e-9)


def test_plan_is_reused_until_the_graph_changes(graph):
    x = graph.param("x", 1.0)
    y = x * 2
    graph.forward()
    plan = graph.plan
    graph.forward()
    assert graph.plan is plan
    y + 1
    assert graph.plan is not plan


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "mul", "tanh", "param"]), st.integers(0, 10**6),
                          st.integers(0, 10**6)), min_size=1, max_size=40))
def test_plan_order_is_networkx_topological_sort(recipe):
    """The plan's order, worked out on the nodes' inputs, is networkx's topological_sort of the mirror,
    for graphs with shared inputs, repeated slots (x * x) and several roots."""
    g = dp.Graph()
    made = [g.param("p0", 0.5)]
    for kind, first, second in recipe:
        if kind == "param":
            made.append(g.param(f"p{len(made)}", 1.0))
        elif kind == "tanh":
            made.append(made[first % len(made)].tanh())
        else:
            made.append(g.op(kind, made[first % len(made)], made[second % len(made)]))
    names = [g.nodes[i].name for i in scheduler.topological_order(g.nodes)]
    assert names == list(nx.topological_sort(g.nx))


def test_committed_gradients_are_read_only_so_shared_arrays_cannot_be_corrupted(graph):
    a, b = graph.param("a", [1.0, 2.0]), graph.param("b", [3.0, 4.0])
    s = a + b  # add's vjp hands the same array to both inputs
    loss = s.sum()
    graph.forward()
    graph.backward(loss)
    with pytest.raises(ValueError, match="read-only"):
        a.grad[0] = 100.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    graph.backward(loss)  # accumulation builds new arrays
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
