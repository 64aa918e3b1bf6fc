"""The built-in ops compute in the namespace of the arrays they are given: array-api-strict arrays
give array-api-strict values and gradients equal to NumPy's, and dask arrays stay lazy."""

import importlib

import array_api_strict as xp  # a test requirement: never skipped, a missing one fails
import dask
import dask.array as da
import numpy as np
import pytest

import dagprop as dp
from dagprop.backend import is_lazy, to_numpy

#: The op families whose every op is checked on array-api-strict arrays; a family joins by its name here.
ARRAY_API_FAMILIES = ["elementwise", "activations", "reductions", "losses", "linalg", "shaping", "indexing",
                      "layers", "convolution", "pooling", "normalization", "lookup"]

OPS = [op.name for family in ARRAY_API_FAMILIES
       for op in importlib.import_module(f"dagprop_plugins.{family}").dagprop_ops()]


def example_run(name: str, convert):
    """The graph of ``op(example inputs) * projection`` summed into a loss ``L``, its leaves'
    values passed through ``convert``, run forward and backward: the graph."""
    rng = np.random.default_rng(7)
    g = dp.Graph()
    args, attrs = g.registry[name].example(rng)
    arrays = [rng.standard_normal(a) if isinstance(a, tuple) else np.asarray(a, dtype=np.float64) for a in args]
    inputs = [g.param(f"x{k}", convert(a)) for k, a in enumerate(arrays)]
    out = g.op(name, *inputs, name="out", **attrs)
    projection = g.const(convert(rng.standard_normal(out.shape)), name="projection")
    g.op("sum", out * projection, name="L")
    g.forward()
    g.backward("L")
    return g


@pytest.mark.parametrize("name", OPS)
def test_op_on_array_api_strict_arrays_matches_numpy(name):
    expected = example_run(name, lambda a: a)
    actual = example_run(name, xp.asarray)
    for node in actual:
        reference = expected[node.name]
        for got, want in ((node.value, reference.value), (node.grad, reference.grad)):
            if want is None:
                assert got is None, node.name
                continue
            assert type(got) is type(xp.asarray(0.0)), f"{node.name}: {type(got).__name__}"
            np.testing.assert_allclose(to_numpy(got), want, rtol=1e-12, atol=1e-15, err_msg=node.name)


def test_dask_arrays_stay_lazy_through_forward_and_backward():
    rng = np.random.default_rng(3)
    data, weights, bias = rng.standard_normal((64, 8)), rng.standard_normal((8, 5)), rng.standard_normal(5)

    def run(x_value, w_value, b_value):
        g = dp.Graph()
        x, W, b = g.input("x", x_value, requires_grad=True), g.param("W", w_value), g.param("b", b_value)
        loss = g.ops.tanh(x @ W + b).sum()
        g.forward()
        g.backward(loss)
        return g, loss

    expected, expected_loss = run(data, weights, bias)
    actual, loss = run(da.from_array(data, chunks=(16, 8)), da.from_array(weights, chunks=4), da.from_array(bias))
    assert all(is_lazy(node.value) for node in actual)
    assert all(is_lazy(actual[name].grad) for name in ("x", "W", "b"))
    np.testing.assert_allclose(to_numpy(loss.value), expected_loss.value, rtol=1e-12)
    for name in ("x", "W", "b"):
        np.testing.assert_allclose(to_numpy(actual[name].grad), expected[name].grad, rtol=1e-12, atol=1e-15)


def test_the_numpy_fast_path_hands_other_arrays_to_the_checked_interpreter():
    g = dp.Graph()
    x = g.input("x", np.array([0.5, -1.0, 2.0]), requires_grad=True)
    loss = (x * x).tanh().sum()
    for _ in range(2):  # the second NumPy run takes the fast path
        g.forward()
        g.backward(loss)
    expected = x.grad / 2  # two backward passes accumulated
    g.zero_grad()
    g.forward(feeds={"x": xp.asarray([0.5, -1.0, 2.0])})
    g.backward(loss)
    assert type(loss.value) is type(x.value) is type(x.grad) is type(xp.asarray(0.0))
    np.testing.assert_array_equal(to_numpy(x.grad), expected)


def test_a_graphs_numpy_consts_join_the_other_library_and_the_gradient_is_the_closed_form():
    g = dp.Graph()
    x = g.param("x", xp.asarray([0.5, -1.0]))
    loss = (2.0 * x + 1.0).tanh().sum()
    g.forward()
    g.backward(loss)
    t = np.tanh(2 * np.array([0.5, -1.0]) + 1)
    assert type(x.grad) is type(xp.asarray(0.0))
    np.testing.assert_allclose(to_numpy(x.grad), 2 * (1 - t**2), rtol=1e-13)


def test_a_compiled_step_runs_other_arrays_through_the_plain_loop():
    def trained(convert):
        g = dp.Graph()
        w = g.param("w", convert(np.array([0.5, -0.5])))
        loss = ((w * g.input("x", convert(np.array([1.0, 2.0])))).sum() - 1.0) ** 2
        step = g.compile(loss, lr=0.1)
        return [step() for _ in range(3)], w, step

    (expected, w_numpy, _), (losses, w, step) = trained(lambda a: a), trained(xp.asarray)
    assert losses == expected and step.source == ""
    assert type(w.value) is type(xp.asarray(0.0))
    np.testing.assert_array_equal(to_numpy(w.value), w_numpy.value)


def test_a_lazy_graph_computes_nothing_until_asked():
    calls = []

    def chunk(block):
        calls.append(1)
        return block

    x = da.from_array(np.linspace(-1, 1, 12).reshape(4, 3), chunks=(2, 3)).map_blocks(chunk, meta=np.empty((0, 0)))
    g = dp.Graph()
    W = g.param("W", np.full((3, 2), 0.5))
    loss = (g.input("x", x) @ W).tanh().sum()
    with dask.config.set(scheduler="sync"):
        g.forward()
        g.backward(loss)
        assert calls == [] and is_lazy(W.grad)
        value, grad = dask.compute(loss.value, W.grad)
    assert calls  # computed once asked, and equal to NumPy's
    h = np.tanh(np.linspace(-1, 1, 12).reshape(4, 3) @ np.full((3, 2), 0.5))
    np.testing.assert_allclose(grad, np.linspace(-1, 1, 12).reshape(4, 3).T @ (1 - h**2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(value, h.sum(), rtol=1e-13)
