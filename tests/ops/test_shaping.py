"""The shaping family: reshape, broadcast_to, flatten, squeeze, unsqueeze and permute."""

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

from helpers import SECOND_ORDER_CHECKS, run_op as run

rng = np.random.default_rng(13)


@pytest.mark.parametrize("shape, target", [
    ((3, 4), (2, 6)), ((3, 4), (12,)), ((3, 4), 12), ((3, 4), (-1,)), ((3, 4), (2, -1, 3)),
    ((2, 3, 4), (4, -1)), ((), (1, 1)), ((1, 1), ()),
], ids=str)
def test_reshape(shape, target):
    assert SECOND_ORDER_CHECKS <= set(check_op("reshape", shape, shape=target).errors)
    x = rng.standard_normal(shape)
    _, _, out = run("reshape", x, shape=target)
    np.testing.assert_array_equal(out.value, np.reshape(x, target))


@pytest.mark.parametrize("target, reason", [
    ((5, -1), r"cannot reshape 12 elements into shape \(5, -1\)"),
    ((5, 2), r"cannot reshape 12 elements into shape \(5, 2\)"),
    ((-1, -1), "at most one -1"),
    ((0, -1), "cannot reshape 12 elements"),
])
def test_reshape_rejects_shapes_that_do_not_hold_the_elements(target, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.param("x", np.zeros((3, 4))).reshape(shape=target)


@pytest.mark.parametrize("shape, target", [
    ((3, 1), (2, 3, 4)), ((), (3,)), ((4,), (3, 4)), ((1,), (2, 2)), ((3, 4), (3, 4)),
], ids=str)
def test_broadcast_to(shape, target):
    assert SECOND_ORDER_CHECKS <= set(check_op("broadcast_to", shape, shape=target).errors)


def test_broadcast_to_gradient_sums_the_copies():
    x, seed = rng.standard_normal((3, 1)), rng.standard_normal((2, 3, 4))
    g, (leaf,), out = run("broadcast_to", x, shape=(2, 3, 4))
    np.testing.assert_array_equal(out.value, np.broadcast_to(x, (2, 3, 4)))
    out.value[0, 0, 0] = 1.0  # a plain array, not NumPy's read-only view
    g.backward(out, seed=seed)
    np.testing.assert_allclose(leaf.grad, seed.sum(axis=(0, 2))[:, None])


@pytest.mark.parametrize("shape, target", [((3,), (4,)), ((2, 3), (3,)), ((3, 2), (3, 4))], ids=str)
def test_broadcast_to_rejects_shapes_it_cannot_fill(shape, target):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match="cannot be broadcast to"):
        g.param("x", np.zeros(shape)).broadcast_to(shape=target)


# -- flatten, squeeze, unsqueeze, permute (issue 12), against torch in float64 ---------------------


def assert_matches_torch(name, function, x, **attrs):
    """The op's value and gradient (for a random seed) equal torch's, exactly: none of these ops does
    arithmetic."""
    g, (leaf,), out = run(name, x, **attrs)
    seed = rng.standard_normal(out.shape)
    g.backward(out, seed=seed)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = function(t)
    expected.backward(torch.tensor(seed, dtype=torch.float64))
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.value, expected.detach().numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(leaf.grad, t.grad.numpy(), rtol=1e-12, atol=0)


FLATTENS = [((2, 3, 4), 0, -1), ((2, 3, 4), 1, 2), ((2, 3, 4), -2, -1), ((2, 3, 4), 0, 0), ((2, 3, 4), 1, 1),
            ((), 0, -1), ((5,), 0, 0), ((2, 0, 3), 0, 1)]


@pytest.mark.parametrize("shape, start, end", FLATTENS, ids=str)
def test_flatten_matches_torch(shape, start, end):
    assert SECOND_ORDER_CHECKS <= set(check_op("flatten", shape, start_axis=start, end_axis=end).errors)
    assert_matches_torch("flatten", lambda t: torch.flatten(t, start, end), rng.standard_normal(shape),
                         start_axis=start, end_axis=end)


@pytest.mark.parametrize("attrs, reason", [
    ({"start_axis": 2, "end_axis": 1}, "start_axis 2 comes after end_axis 1"),
    ({"start_axis": 3}, "start_axis 3 is out of range for 3 dimensions"),
    ({"end_axis": -4}, "end_axis -4 is out of range"),
])
def test_flatten_rejects_bad_axes(attrs, reason):
    with pytest.raises(dp.ShapeError, match=reason):
        dp.Graph().param("x", np.zeros((2, 3, 4))).flatten(**attrs)


SQUEEZES = [((3, 1, 4, 1), None), ((3, 1, 4, 1), 1), ((3, 1, 4, 1), -1), ((3, 1, 4, 1), (1, 3)),
            ((3, 1, 4, 1), 0), ((1, 1), None), ((), None), ((), 0)]


@pytest.mark.parametrize("shape, axis", SQUEEZES, ids=str)
def test_squeeze_matches_torch(shape, axis):
    # an axis of another size than 1 stays, as in torch (numpy's squeeze would refuse it)
    assert SECOND_ORDER_CHECKS <= set(check_op("squeeze", shape, axis=axis).errors)
    function = (lambda t: torch.squeeze(t)) if axis is None else (lambda t: torch.squeeze(t, axis))
    assert_matches_torch("squeeze", function, rng.standard_normal(shape), axis=axis)


@pytest.mark.parametrize("shape, axis", [((3, 4), 0), ((3, 4), 1), ((3, 4), 2), ((3, 4), -1), ((3, 4), -3),
                                         ((), 0), ((), -1)], ids=str)
def test_unsqueeze_matches_torch(shape, axis):
    assert SECOND_ORDER_CHECKS <= set(check_op("unsqueeze", shape, axis=axis).errors)
    assert_matches_torch("unsqueeze", lambda t: torch.unsqueeze(t, axis), rng.standard_normal(shape), axis=axis)


@pytest.mark.parametrize("name, attrs, reason", [
    ("squeeze", {"axis": 4}, "axis 4 is out of range for 4 dimensions"),
    ("squeeze", {"axis": (1, -3)}, "names the same axis twice"),
    ("unsqueeze", {"axis": 5}, "axis 5 is out of range for 5 dimensions"),
])
def test_squeeze_and_unsqueeze_reject_bad_axes(name, attrs, reason):
    with pytest.raises(dp.ShapeError, match=reason):
        dp.Graph().param("x", np.zeros((3, 1, 4, 1))).__getattr__(name)(**attrs)


@pytest.mark.parametrize("shape, axes", [((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (0, 1, 2)), ((2, 3, 4), (-1, 0, -2)),
                                         ((3, 4), (1, 0)), ((5,), (0,)), ((), ()), ((2, 1, 3, 2), (3, 1, 0, 2))],
                         ids=str)
def test_permute_matches_torch(shape, axes):
    assert SECOND_ORDER_CHECKS <= set(check_op("permute", shape, axes=axes).errors)
    assert_matches_torch("permute", lambda t: torch.permute(t, axes), rng.standard_normal(shape), axes=axes)


@pytest.mark.parametrize("axes, reason", [
    ((0, 1), r"axes \(0, 1\) must name each of the 3 axes once"),
    ((0, 1, 1), "must name each of the 3 axes once"),
    ((0, 1, 3), "axis 3 is out of range"),
    (2, "axes must be a tuple naming every axis once"),
])
def test_permute_rejects_what_is_not_an_ordering_of_the_axes(axes, reason):
    with pytest.raises(dp.ShapeError, match=reason):
        dp.Graph().param("x", np.zeros((2, 3, 4))).permute(axes=axes)
