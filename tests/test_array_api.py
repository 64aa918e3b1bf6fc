"""The built-in ops compute in the namespace of the arrays they are given: array-api-strict arrays
give array-api-strict values and gradients equal to NumPy's, and dask arrays stay lazy."""

import importlib

import numpy as np
import pytest

import dagprop as dp
from dagprop.backend import is_lazy, to_numpy

xp = pytest.importorskip("array_api_strict")

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
    da = pytest.importorskip("dask.array")
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
