"""The reductions family: sum and mean over axes, with keepdims."""

import math

import numpy as np
import pytest

import dagprop as dp
from dagprop.testing import check_op

FAMILY = ["sum", "mean"]
rng = np.random.default_rng(5)


AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2), ()]


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_over_axes(name, axis, keepdims):
    check_op(name, (2, 3, 4), axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("name, reference", [("sum", np.sum), ("mean", np.mean)])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_values_shapes_and_gradients_closed_form(name, reference, axis, keepdims):
    x = rng.standard_normal((2, 3, 4))
    expected = reference(x, axis=axis, keepdims=keepdims)
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    g.forward()
    np.testing.assert_allclose(out.value, expected)
    seed = rng.standard_normal(np.shape(expected))
    g.backward(out, seed=seed)
    # every element that was reduced into an output gets that output's gradient (divided by the count for mean)
    axes = tuple(range(3)) if axis is None else tuple(np.atleast_1d(axis) % 3)
    spread = seed if keepdims else np.expand_dims(seed, axes)
    count = math.prod(x.shape[i] for i in axes) if name == "mean" else 1
    np.testing.assert_allclose(leaf.grad, np.broadcast_to(spread, x.shape) / count)


@pytest.mark.parametrize("name", FAMILY)
def test_a_scalar_reduces_to_itself(name):
    check_op(name, ())


def test_gradient_is_a_full_array_not_a_broadcast_view():
    g = dp.Graph()
    x = g.param("x", np.ones((2, 3)))
    total = x.sum()
    g.forward()
    g.backward(total)
    assert x.grad.strides != (0, 0)  # every element has its own storage
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


@pytest.mark.parametrize("axis, reason", [
    (3, "axis 3 is out of range for 3 dimensions"),
    (-4, "axis -4 is out of range"),
    ((0, -3), "names the same axis twice"),
    (1.5, "must be an int"),
])
def test_bad_axes_are_rejected(axis, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.param("x", np.zeros((2, 3, 4))).sum(axis=axis)


@pytest.mark.parametrize("name, scale", [("sum", 1.0), ("mean", 1 / 6)])
def test_vjp_takes_a_plain_number_as_the_incoming_gradient(name, scale):
    op = dp.Graph().registry[name]
    x = np.ones((2, 3))
    (grad,) = op.vjp(2.0, x, out=op.forward(x))  # as generated code passes its default seed
    np.testing.assert_allclose(grad, np.full((2, 3), 2.0 * scale))
