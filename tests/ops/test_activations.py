"""The activations family: relu, sigmoid, tanh, softmax, log_softmax."""

import numpy as np
import pytest

import dagprop as dp
from dagprop.testing import check_op

rng = np.random.default_rng(11)


def away_from_zero(*shape):
    """Normal values pushed off the kink of relu, where finite differences straddle it."""
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, 0.1, -0.1)


def run(name, x, **attrs):
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, **attrs)
    g.forward()
    return g, leaf, out


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2)], ids=str)
def test_elementwise_activations(name, shape):
    check_op(name, away_from_zero(*shape))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((5,), -1), ((5,), 0), ((3, 4), -1), ((3, 4), 0), ((3, 4), 1),
                                         ((2, 3, 4), 1), ((2, 3, 4), -3)], ids=str)
def test_softmax_family_along_any_axis(name, shape, axis):
    check_op(name, rng.normal(0.0, 2.0, shape), axis=axis)


def test_elementwise_derivatives_match_their_closed_forms():
    x = away_from_zero(4, 3)
    seed = rng.standard_normal((4, 3))
    sigma = 1.0 / (1.0 + np.exp(-x))
    expected = {"relu": (x > 0) * 1.0, "sigmoid": sigma * (1 - sigma), "tanh": 1.0 / np.cosh(x) ** 2}
    for name, derivative in expected.items():
        g, leaf, out = run(name, x)
        g.backward(out, seed=seed)
        np.testing.assert_allclose(leaf.grad, seed * derivative, rtol=1e-12, err_msg=name)


def test_relu_passes_no_gradient_at_zero():
    g, leaf, out = run("relu", np.array([-1.0, 0.0, 2.0]))
    g.backward(out, seed=np.ones(3))
    np.testing.assert_array_equal(leaf.grad, [0.0, 0.0, 1.0])


def softmax_rows_jacobian(x):
    """diag(s) - s s^T for every row of a 2-D x (softmax over the last axis), as a (r, n, r, n) array."""
    rows, n = x.shape
    jacobian = np.zeros((rows, n, rows, n))
    for r in range(rows):
        s = np.exp(x[r]) / np.exp(x[r]).sum()
        jacobian[r, :, r, :] = np.diag(s) - np.outer(s, s)
    return jacobian


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_jacobian_is_diag_s_minus_s_s_transpose(axis):
    x = rng.standard_normal((3, 4))
    # axis 0 of x is the last axis of x.T: compare through a transpose of both index groups
    expected = softmax_rows_jacobian(x) if axis == -1 else softmax_rows_jacobian(x.T).transpose(1, 0, 3, 2)
    g, leaf, out = run("softmax", x, axis=axis)
    np.testing.assert_allclose(g.jacobian(out, leaf), expected, atol=1e-14)
    explicit, = g.registry["softmax"].jacobian(x, out=out.value, axis=axis)
    np.testing.assert_allclose(explicit, expected, atol=1e-14)


def test_softmax_jacobian_on_a_middle_axis():
    x = rng.standard_normal((2, 3, 2))
    explicit, = dp.Graph().registry["softmax"].jacobian(x, out=np.exp(x) / np.exp(x).sum(1, keepdims=True), axis=1)
    for i in range(2):
        for k in range(2):
            s = np.exp(x[i, :, k]) / np.exp(x[i, :, k]).sum()
            np.testing.assert_allclose(explicit[i, :, k, i, :, k], np.diag(s) - np.outer(s, s), atol=1e-14)
    # elements of different slices do not affect each other
    assert not explicit[0, :, 0, 1, :, 0].any()
    assert not explicit[0, :, 0, 0, :, 1].any()


def test_log_softmax_gradient_closed_form():
    x = rng.standard_normal((3, 5))
    seed = rng.standard_normal((3, 5))
    s = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    g, leaf, out = run("log_softmax", x)
    g.backward(out, seed=seed)
    np.testing.assert_allclose(out.value, np.log(s), rtol=1e-12)
    np.testing.assert_allclose(leaf.grad, seed - s * seed.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-14)


def test_softmax_decomposes_into_the_textbook_circuit():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((3, 4)))
    circuit = g.registry["softmax"].decompose(x, axis=0)
    ops = [n.op for n in g if n.op is not None]
    assert ops == ["exp", "sum", "reciprocal", "mul"]
    total = next(n for n in g if n.op == "sum")
    assert total.attrs == {"axis": 0, "keepdims": True}
    assert circuit.shape == (3, 4)


def test_softmax_and_log_softmax_do_not_overflow():
    x = np.array([[1000.0, 1000.0, 0.0], [-1000.0, 0.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _, _, soft = run("softmax", x)
        _, _, log_soft = run("log_softmax", x)
        _, _, sig = run("sigmoid", np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(soft.value, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], atol=1e-300)
    np.testing.assert_allclose(log_soft.value, [[-np.log(2), -np.log(2), -1000 - np.log(2)], [-1000, 0, -1000]])
    np.testing.assert_allclose(sig.value, [0.0, 0.5, 1.0])


def test_softmax_rows_are_distributions():
    _, _, out = run("softmax", rng.normal(0.0, 5.0, (4, 6)))
    np.testing.assert_allclose(out.value.sum(axis=-1), 1.0)
    assert (out.value > 0).all()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_an_axis_out_of_range_is_rejected(name):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match="axis 2 is out of range for 2 dimensions"):
        g.op(name, g.param("x", np.zeros((3, 4))), axis=2)


def test_an_unknown_attribute_is_rejected():
    g = dp.Graph()
    with pytest.raises(dp.GraphError, match="no attribute dim"):
        g.op("softmax", g.param("x", np.zeros(3)), dim=0)
