"""The fast path: same results as the interpreter, and precise errors through the fallback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dagprop as dp
from dagprop import scheduler


def _mlp(rng):
    g = dp.Graph()
    x = g.input("x", rng.standard_normal((5, 4)))
    w1, b1 = g.param("w1", rng.standard_normal((4, 6))), g.param("b1", rng.standard_normal(6))
    w2 = g.param("w2", rng.standard_normal((6, 3)))
    h = (x @ w1 + b1).tanh()
    out = h @ w2
    loss = g.ops.cross_entropy(out + h.sum(axis=1, keepdims=True), g.input("t", np.full((5, 3), 1 / 3)))
    return g, loss


def _interpreted_backward(g, loss):
    """The reference: on_step forces the step-by-step interpreter."""
    plan = g.plan
    return scheduler.run_backward(plan, g.run.values, loss.index, np.ones(()), on_step=lambda *a: None)


def assert_same_record(run, reference):
    assert len(run.grads) == len(reference.grads) and run.edge_grads.keys() == reference.edge_grads.keys()
    for grad, expected in zip(run.grads, reference.grads):
        assert (grad is None) == (expected is None)
        if grad is not None:
            np.testing.assert_array_equal(grad, expected)
    for key in run.edge_grads:
        np.testing.assert_array_equal(run.edge_grads[key], reference.edge_grads[key])


def test_fast_passes_match_the_interpreter_exactly(rng):
    g, loss = _mlp(rng)
    g.forward(check_finite=True)  # a checked, interpreted run
    reference_values = list(g.run.values)
    g.forward()  # fast
    for a, b in zip(g.run.values, reference_values):
        np.testing.assert_array_equal(a, b)
    fast = scheduler.run_backward(g.plan, g.run.values, loss.index, np.ones(()))
    assert_same_record(fast, _interpreted_backward(g, loss))


def test_fast_forward_is_used_only_after_a_checked_run_with_the_same_leaf_shapes(rng):
    g = dp.Graph()
    x = g.input("x", np.ones(3))
    y = (x * 2).sum()
    forward = g.plan.forward_plan(None)
    assert forward.fast_for(g.run.values) is None  # never validated
    g.forward()
    assert forward.fast_for(g.run.values) is not None
    g.forward(feeds={"x": np.ones(5)})  # new shapes: the interpreter checks again
    assert float(y.value) == 10.0
    assert forward.fast_for([np.ones(3)] + g.run.values[1:]) is None


def test_an_op_failing_on_a_later_run_still_gets_a_precise_error():
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("sensor unplugged")
        return x.copy()

    class Flaky:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("flaky", forward=flaky, vjp=lambda g, x, *, out: (g,))]

    g = dp.Graph(plugins=[Flaky()])
    y = g.op("flaky", g.param("x", [1.0]), name="reader") * 2
    g.forward()
    g.forward()  # second run: fast
    before = y.value.copy()
    with pytest.raises(dp.OpError, match=r"op 'flaky' at node 'reader'.*sensor unplugged"):
        g.forward()
    np.testing.assert_array_equal(y.value, before)


def test_a_vjp_that_turns_bad_later_is_reported_not_silently_used():
    state = {"bad": False}

    def vjp(g, x, *, out):
        return (np.ones(4) if state["bad"] else g,)

    class Turns:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("turns", forward=np.copy, vjp=vjp)]

    g = dp.Graph(plugins=[Turns()])
    x = g.param("x", [1.0, 2.0])
    loss = g.op("turns", x).sum()
    g.forward()
    g.backward(loss)
    state["bad"] = True
    with pytest.raises(dp.OpError, match=r"returned shape \(4,\) for input 0"):
        g.backward(loss)
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_scalars_returned_by_ops_stay_arrays_on_the_fast_path():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    total = x.sum()
    g.forward()
    g.forward()
    assert type(total.value) is np.ndarray and total.value.shape == ()


def test_a_hundred_thousand_node_chain_builds_its_fast_path_without_compiling_source(monkeypatch):
    import builtins

    g = dp.Graph()
    h = g.param("x", 0.5)
    for _ in range(100_000):
        h = h * 1.0
    compiled: list[int] = []  # the size of each source compiled (networkx compiles its small decorators)
    original = builtins.compile
    monkeypatch.setattr(builtins, "compile",
                        lambda source, *args, **kwargs: compiled.append(len(source)) or original(source, *args, **kwargs))
    g.forward()
    g.backward(h)
    g.forward()
    g.backward(h)  # the fast path is built here, from closures: no source whose compile time grows with the graph
    assert all(size < 10_000 for size in compiled), compiled
    assert float(g["x"].grad) == 2.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "mul", "sub"]), st.integers(0, 50), st.integers(0, 50)),
                min_size=1, max_size=15))
def test_random_graphs_agree_between_paths(recipe):
    g = dp.Graph()
    nodes = [g.param("a", [0.5, -1.0]), g.param("b", [2.0, 0.25])]
    for op, i, j in recipe:
        nodes.append(g.op(op, nodes[i % len(nodes)], nodes[j % len(nodes)]).tanh())
    loss = nodes[-1].sum()
    g.forward()
    g.forward()
    fast = scheduler.run_backward(g.plan, g.run.values, loss.index, np.ones(()))
    assert_same_record(fast, _interpreted_backward(g, loss))
