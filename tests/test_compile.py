"""Graph.compile: a generated training step that leaves the graph as the plain loop does, bit for bit."""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st

import dagprop as dp
from dagprop import compiled

from helpers import example_loss
from test_codegen import BINARY, CUBE, CUBED, SCALE, UNARY, _apply, _Plugin
from test_properties import recipes


def plain_step(g: dp.Graph, loss, lr, feeds) -> float:
    g.forward(feeds)
    g.zero_grad()
    g.backward(loss)
    if lr is not None:
        g.step(lr)
    return float(g.run.value(loss))


def same_bits(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    # NaN is NaN: its sign bit may come out either way from an overflow
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b))) and a[~nan].tobytes() == b[~nan].tobytes()


def assert_same_record(expected: dp.Graph, got: dp.Graph, *, edges: bool) -> None:
    want, have = expected.run, got.run
    for node in expected:
        assert same_bits(want.values[node.index], have.values[node.index]), f"value of {node.name}"
        assert same_bits(want.grads[node.index], have.grads[node.index]), f"gradient of {node.name}"
        # an array where the plain loop has one: a 0-d result of NumPy arithmetic is a scalar until made one
        assert type(want.values[node.index]) is type(have.values[node.index]), f"value of {node.name}"
    assert [(n.name, s.tolist()) for n, s in want.seeds] == [(n.name, s.tolist()) for n, s in have.seeds]
    if edges:
        assert sorted(want.edge_grads) == sorted(have.edge_grads)
        for key, grad in want.edge_grads.items():
            assert same_bits(grad, have.edge_grads[key]), f"edge {key}"
    else:
        assert have.edge_grads == {}


def check_against_plain_loop(build, *, lr=0.01, feeds=(), keep_edges=False, calls=3) -> dp.CompiledStep:
    """Build the graph twice; train one with the plain loop, one compiled; compare after every call."""
    expected, expected_loss = build()
    got, loss = build()
    step = got.compile(loss.name, lr, keep_edges=keep_edges)
    for k in range(calls):
        fed = feeds[k % len(feeds)] if feeds else {}
        want = plain_step(expected, expected_loss, lr, fed)
        assert same_bits(step(**fed), want)
        assert_same_record(expected, got, edges=keep_edges)
    return step


# -- random graphs ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(recipes(), st.booleans(), st.sampled_from([None, 0.05]))
def test_random_dags_of_the_property_tests(recipe, keep_edges, lr):
    leaf_values, steps = recipe

    def build():
        g = dp.Graph()
        nodes = [g.param(f"p{i}", v) for i, v in enumerate(leaf_values)]
        for op, *args in steps:
            nodes.append(g.op(op, *[nodes[a] for a in args]))
        return g, g.op("sum", nodes[-1], name="L")

    g, loss = build()
    g.forward()
    assume(loss.requires_grad)
    check_against_plain_loop(build, lr=lr, keep_edges=keep_edges)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking these graphs takes minutes
@given(st.data())
def test_random_graphs_of_every_shape_and_op(data):
    draw = data.draw
    seed = draw(st.integers(0, 2**32 - 1))
    choices = []

    def build():
        replay = iter(choices)
        recording = not choices

        def pick(strategy):
            if recording:
                choices.append(draw(strategy))
                return choices[-1]
            return next(replay)

        rng = np.random.default_rng(seed)
        g = dp.Graph(plugins=[_Plugin(CUBE, SCALE, CUBED)])
        nodes = [g.param(f"p{k}", rng.standard_normal(pick(st.sampled_from([(), (3,), (1, 3), (2, 3), (2, 1)]))))
                 for k in range(pick(st.integers(1, 3)))]
        for _ in range(pick(st.integers(1, 8))):
            name = pick(st.sampled_from(UNARY + BINARY + ["cubed"]))
            x, y = nodes[pick(st.integers(0, len(nodes) - 1))], nodes[pick(st.integers(0, len(nodes) - 1))]
            try:
                made = _apply(pick, g, name, x, y) if name != "cubed" else g.op("cubed", x)
            except dp.ShapeError:
                continue
            if made is not None:
                nodes.append(made)
        consumed = {i.index for n in g for i in n.inputs}
        ends = [g.op("sum", n) for n in list(g) if n.op is not None and n.index not in consumed]
        loss = ends[0] if ends else None
        for end in ends[1:]:
            loss = loss + end
        return g, loss

    g, loss = build()
    assume(loss is not None)
    g.forward()
    assume(all(np.all(np.isfinite(n.value)) and np.all(np.abs(n.value) < 1e6) for n in g))
    check_against_plain_loop(build, lr=0.001, keep_edges=draw(st.booleans()), calls=2)


# -- every built-in op, with its source form or through its rules ------------------------------------------


@pytest.mark.parametrize("name", sorted(dp.Graph().registry.names()))
def test_every_built_in_op_at_its_example(name):
    step = check_against_plain_loop(functools.partial(example_loss, name), lr=1e-3, keep_edges=True)
    assert step.source.startswith("def compiled_step")


# Ops whose example cannot be grown by tiling: a shape is fixed by an attribute (broadcast_to), or an
# operand must keep its length while another grows (layer_norm, scatter_add, where).
NOT_GROWN = frozenset({"broadcast_to", "layer_norm", "scatter_add", "where"})


def grown_example_loss(name):
    """``example_loss`` grown 40x along the first or the last axis (or 8x along every axis), so that sums
    run long enough for their order of additions to show (pairwise, BLAS or sequential give other bits)."""
    def grow(arg, rng, reps):
        if isinstance(arg, tuple):  # a shape: fresh numbers at the grown shape
            return rng.standard_normal(tuple(n * r for n, r in zip(arg, reps(len(arg)))))
        arg = np.asarray(arg)  # values the op needs (positive, indices, probabilities): repeated
        return arg if arg.ndim == 0 else np.tile(arg, reps(arg.ndim))

    args, attrs = dp.Graph().registry[name].example(np.random.default_rng(7))
    for reps in (lambda n: (40,) + (1,) * (n - 1), lambda n: (1,) * (n - 1) + (40,), lambda n: (8,) * n):
        shapes = [a if isinstance(a, tuple) else np.shape(a) for a in args]
        if sum(math.prod(n * r for n, r in zip(s, reps(len(s)))) for s in shapes) > 50_000:
            continue
        rng = np.random.default_rng(7)
        g = dp.Graph()
        try:
            inputs = [g.param(f"x{k}", grow(a, rng, reps)) for k, a in enumerate(args)]
            out = g.op(name, *inputs, name="out", **attrs)
        except (dp.ShapeError, dp.GraphError, ValueError):
            continue
        if max(i.value.size for i in inputs) >= 64:
            projection = g.const(rng.standard_normal(out.shape), name="projection")
            return g, g.op("sum", out * projection, name="L")
    return None


@pytest.mark.parametrize("name", sorted(dp.Graph().registry.names()))
def test_every_built_in_op_at_a_grown_example(name):
    if grown_example_loss(name) is None:
        assert name in NOT_GROWN
        return
    assert name not in NOT_GROWN, "grows now: take it off NOT_GROWN"
    check_against_plain_loop(functools.partial(grown_example_loss, name), lr=1e-3, keep_edges=True)


def test_an_op_without_a_source_form_is_called_through_its_rules(rng):
    def build():
        g = dp.Graph(plugins=[_Plugin(CUBE)])
        w = g.param("w", np.linspace(-1, 1, 4))
        return g, g.op("sum", g.op("cube", w), name="L")

    step = check_against_plain_loop(build)
    assert "cube_forward(" in step.source and "cube_vjp(" in step.source


# -- feeds, lr, edges ------------------------------------------------------------------------------------


def mlp():
    rng = np.random.default_rng(3)
    g = dp.Graph()
    x, y = g.input("x"), g.input("y")
    W, b = g.param("W", rng.standard_normal((3, 4))), g.param("b", np.zeros(4))
    h = (x @ W + b).tanh()
    loss = g.ops.l2_loss(h.sum(axis=1, keepdims=True), y)
    return g, loss


BATCHES = [{"x": np.random.default_rng(k).standard_normal((5, 3)), "y": np.ones((5, 1)) * k} for k in range(3)]


@pytest.mark.parametrize("lr", [None, 0.1])
@pytest.mark.parametrize("keep_edges", [False, True])
def test_feeds_lr_and_edges(lr, keep_edges):
    check_against_plain_loop(mlp, lr=lr, feeds=BATCHES, keep_edges=keep_edges, calls=4)


def test_without_lr_the_params_stay_and_gradients_are_fresh():
    g, loss = mlp()
    step = g.compile(loss)
    before = g["W"].value.copy()
    step(**BATCHES[0])
    first = g["W"].grad.copy()
    step(**BATCHES[0])
    assert np.array_equal(g["W"].value, before)
    assert np.array_equal(g["W"].grad, first)  # not doubled: each call starts from no gradient


def test_edges_are_recorded_only_when_asked():
    g, loss = mlp()
    g.compile(loss, lr=0.1)(**BATCHES[0])
    assert g.run.edge_grads == {} and g.edge_grad("W", "matmul_1") is None
    g.compile(loss, lr=0.1, keep_edges=True)(**BATCHES[0])
    assert g.edge_grad("W", "matmul_1").shape == (3, 4)


def test_feeds_as_lists_and_scalars():
    check_against_plain_loop(mlp, feeds=[{"x": [[1, 2, 3]], "y": [[0.5]]}])


# -- shapes, graph changes, errors ------------------------------------------------------------------------


def test_a_new_batch_size_compiles_again_and_keeps_the_old_function():
    expected, expected_loss = mlp()
    g, loss = mlp()
    step = g.compile(loss, lr=0.1)
    small = {"x": np.ones((2, 3)), "y": np.zeros((2, 1))}
    for feeds in (BATCHES[0], small, BATCHES[1], small, {"x": np.ones((2, 3), dtype=np.float32), "y": small["y"]}):
        assert same_bits(step(**feeds), plain_step(expected, expected_loss, 0.1, feeds))
        assert_same_record(expected, g, edges=False)
    assert "3 compiled shapes" in repr(step)


def test_a_graph_change_is_noticed():
    g, loss = mlp()
    step = g.compile(loss, lr=0.1)
    step(**BATCHES[0])
    extra = loss * 2.0  # a new node: the plan changes and the step compiles again
    step(**BATCHES[0])
    assert extra.value is not None and f"    {extra.name} = " in step.source
    g.rename(loss, "objective")
    assert step(**BATCHES[1]) == float(g["objective"].value)


def test_errors_are_the_plain_loops_and_leave_the_graph_as_it_was():
    g, loss = mlp()
    step = g.compile(loss, lr=0.1)
    with pytest.raises(dp.GraphError, match="no input 'z'.*its inputs: x, y"):
        step(z=1.0, **BATCHES[0])
    with pytest.raises(dp.GraphError):  # no value for x yet: the plain loop names what is missing
        step()
    step(**BATCHES[0])
    record = g.run
    with pytest.raises(dp.ShapeError):  # a batch of the wrong width: the checked run reports it
        step(x=np.ones((5, 4)), y=np.ones((5, 1)))
    assert g.run is record


def test_bad_arguments():
    g, loss = mlp()
    with pytest.raises(dp.GraphError, match="lr must be"):
        g.compile(loss, lr=float("nan"))
    with pytest.raises(dp.GraphError, match="is a param"):
        g.compile("W")
    with pytest.raises(dp.NodeLookupError):
        g.compile("nope")


def test_a_leaf_reshaped_in_the_record_is_the_plain_loops_error():
    g, loss = mlp()
    step = g.compile(loss, lr=0.1)
    step(**BATCHES[0])
    g.run.values[g["W"].index] = np.ones((3, 5))  # the record's list is public: a param can be replaced in it
    record = g.run
    with pytest.raises(dp.ShapeError, match="add_1"):
        step(**BATCHES[0])
    assert g.run is record


# -- the call itself: feeds or none, threads ---------------------------------------------------------------


def test_a_call_without_feeds_reads_the_record_and_leaves_it_as_it_was():
    g, loss = mlp()
    step = g.compile(loss, lr=0.1)
    step(**BATCHES[0])
    before = g.run
    values, grads = list(before.values), list(before.grads)
    step()
    assert g.run is not before
    assert all(a is b for a, b in zip(before.values, values)) and all(a is b for a, b in zip(before.grads, grads))
    assert g.run.values[g["x"].index] is before.values[g["x"].index]  # the input was not fed again: not copied


def test_fed_arrays_are_copied_as_the_plain_loop_copies_them():
    x = np.asfortranarray(np.random.default_rng(5).standard_normal((5, 3)))
    expected, expected_loss = mlp()
    g, loss = mlp()
    step = g.compile(loss, lr=0.1)
    feeds = {"x": x, "y": np.ones((5, 1))}
    for _ in range(3):
        assert same_bits(step(**feeds), plain_step(expected, expected_loss, 0.1, feeds))
        assert_same_record(expected, g, edges=False)
    fed = g["x"].value
    assert fed is not x and fed.flags.f_contiguous == expected["x"].value.flags.f_contiguous


def test_two_threads_stepping_leave_the_graph_as_that_many_plain_steps():
    expected, expected_loss = mlp()
    g, loss = mlp()
    step = g.compile(loss, lr=0.05)
    calls, start = 40, threading.Barrier(2)

    def train() -> None:
        start.wait()
        for _ in range(calls):
            step(**BATCHES[0])

    threads = [threading.Thread(target=train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(2 * calls):
        plain_step(expected, expected_loss, 0.05, BATCHES[0])
    assert_same_record(expected, g, edges=False)


def test_an_operation_a_loss_writes_twice_is_computed_once():
    def build():
        g = dp.Graph()
        z = g.param("z", [[1.0], [2.0], [4.0]]) * g.input("x", [[0.5], [1.0], [2.0]])
        return g, g.ops.l2_loss(z, g.input("y", [[0.0], [1.0], [3.0]]))

    step = check_against_plain_loop(build, lr=0.1)
    assert step.source.count("mul_1 - y") == 1


def test_large_plans_run_the_fast_paths_closures(monkeypatch):
    monkeypatch.setattr(compiled, "SOURCE_LIMIT", 2)
    step = check_against_plain_loop(mlp, feeds=BATCHES, keep_edges=True, calls=3)
    assert step.source == ""
    check_against_plain_loop(mlp, feeds=BATCHES, lr=None, calls=2)
