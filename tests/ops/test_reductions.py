"""The reductions family: sum, mean, max, min, var, logsumexp and prod over axes, with keepdims."""

import functools
import math
import warnings

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

FAMILY = ["sum", "mean", "max", "min"]
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


@pytest.mark.parametrize("name, scale", [("sum", 1.0), ("mean", 1 / 6), ("max", 1 / 6), ("min", 1 / 6)])
def test_vjp_takes_a_plain_number_as_the_incoming_gradient(name, scale):
    op = dp.Graph().registry[name]
    x = np.ones((2, 3))
    (grad,) = op.vjp(2.0, x, out=op.forward(x))  # as generated code passes its default seed
    np.testing.assert_allclose(grad, np.full((2, 3), 2.0 * scale))


# -- max and min: torch.amax / torch.amin's values and gradients, ties shared evenly ---------------

EXTREMA = [("max", torch.amax, np.max), ("min", torch.amin, np.min)]
REDUCED_AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def torch_reduction(reduce, x, axis, keepdims, seed):
    """Value and input gradient of a torch reduction in float64; axis None reduces every axis."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = reduce(t) if axis is None else reduce(t, dim=axis, keepdim=keepdims)
    if axis is None and keepdims:
        out = out.reshape((1,) * x.ndim)
    out.backward(torch.tensor(seed, dtype=torch.float64))
    return out.detach().numpy(), t.grad.numpy()


def run_reduction(name, x, seed, **attrs):
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, **attrs)
    g.forward()
    g.backward(out, seed=seed)
    return out, leaf.grad


@pytest.mark.parametrize("name, reduce, reference", EXTREMA)
@pytest.mark.parametrize("axis", REDUCED_AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_and_min_match_torch_amax_and_amin_with_ties(name, reduce, reference, axis, keepdims):
    # small integers: most slices hold the extremum two, three or more times
    x = rng.integers(0, 3, (2, 3, 4)).astype(np.float64)
    expected_shape = reference(x, axis=axis, keepdims=keepdims).shape
    seed = rng.standard_normal(expected_shape)
    out, grad = run_reduction(name, x, seed, axis=axis, keepdims=keepdims)
    expected_value, expected_grad = torch_reduction(reduce, x, axis, keepdims, seed)
    assert out.shape == expected_shape
    np.testing.assert_array_equal(out.value, expected_value)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-15, atol=0)


@pytest.mark.parametrize("name, pick", [("max", np.argmax), ("min", np.argmin)])
def test_a_three_way_tie_splits_the_gradient_in_thirds(name, pick):
    # negated for min, so that the extremum sits in the same places either way
    x = np.array([[5.0, 5.0, 5.0, 1.0], [2.0, 7.0, -1.0, 2.0]]) * (1.0 if name == "max" else -1.0)
    assert pick(x[1]) == 1
    _, grad = run_reduction(name, x, np.array([3.0, 4.0]), axis=1)
    np.testing.assert_allclose(grad, [[1.0, 1.0, 1.0, 0.0], [0.0, 4.0, 0.0, 0.0]], rtol=1e-15)


# Central differences see a two-way tie as slope 1/2 on either element (moving it up moves the
# max, moving it down leaves the other in place), which is the even split; at a three-way tie
# they see 1/2 where the split gives 1/3, so ties of three are checked against torch above.
TWO_WAY_TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 0.5, -2.0, 2.0], [-1.0, 0.0, -1.0, -3.0]])


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("axis", [None, 1, -1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_check_op_with_two_way_ties(name, axis, keepdims):
    x = TWO_WAY_TIES if name == "max" else -TWO_WAY_TIES
    check_op(name, x, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("name, reduce, reference", EXTREMA)
@pytest.mark.parametrize("axis", [0, 1, -1], ids=str)
def test_a_kept_max_broadcast_back_against_its_input_matches_torch(name, reduce, reference, axis):
    # x - max(x, keepdims=True), the shape softmax's circuit uses: the kept axis broadcasts
    x = np.round(rng.standard_normal((3, 4)), 1)
    # two-way ties only (see above): rows 0 and 1 each hold their extremum twice, and columns 0 and 1
    # hold the same value in rows 0 and 1
    x[0, :2] = reference(x[0]) + (1.0 if name == "max" else -1.0)
    x[1, :2] = x[0, :2]
    seed = rng.standard_normal((3, 4))
    g = dp.Graph()
    leaf = g.param("x", x)
    shifted = leaf - g.op(name, leaf, axis=axis, keepdims=True)
    g.forward()
    g.backward(shifted, seed=seed)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = t - reduce(t, dim=axis, keepdim=True)
    expected.backward(torch.tensor(seed))
    np.testing.assert_allclose(shifted.value, expected.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(leaf.grad, t.grad.numpy(), rtol=1e-14, atol=1e-15)
    check_op(name, x, axis=axis, keepdims=True)


@pytest.mark.parametrize("name", ["max", "min"])
def test_no_axis_reduces_nothing(name):
    x = rng.standard_normal((2, 3))
    seed = rng.standard_normal((2, 3))
    out, grad = run_reduction(name, x, seed, axis=())
    np.testing.assert_array_equal(out.value, x)
    np.testing.assert_array_equal(grad, seed)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("shape, axis", [((0, 3), 0), ((0, 3), None), ((3, 0), -1), ((2, 0, 4), (0, 1))], ids=str)
def test_max_and_min_over_an_empty_axis_are_rejected_like_torch(name, shape, axis):
    with pytest.raises((RuntimeError, IndexError), match="non-zero size|dim to be specified"):
        torch.amax(torch.zeros(shape), dim=() if axis is None else axis)
    with pytest.raises(ValueError, match="zero-size array"):
        np.max(np.zeros(shape), axis=axis)
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=r"has size 0 and an empty axis has no max or min"):
        g.op(name, g.param("x", np.zeros(shape)), axis=axis)


@pytest.mark.parametrize("name, reduce, reference", EXTREMA)
def test_max_and_min_of_an_empty_array_over_a_full_axis_are_empty(name, reduce, reference):
    x = np.zeros((0, 3))
    out, grad = run_reduction(name, x, np.zeros(0), axis=1)
    expected_value, expected_grad = torch_reduction(reduce, x, 1, False, np.zeros(0))
    assert out.value.shape == expected_value.shape == (0,) and grad.shape == expected_grad.shape == (0, 3)


def test_max_gradient_of_a_nan_is_nan_as_in_torch():
    x = np.array([[1.0, np.nan, 2.0], [1.0, 3.0, 3.0]])
    _, grad = run_reduction("max", x, np.array([1.0, 1.0]), axis=1)
    _, expected = torch_reduction(torch.amax, x, 1, False, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(grad, expected)  # NaN on the first row, [0, 0.5, 0.5] on the second


# -- empty arrays: sum and mean like numpy and torch -----------------------------------------------

EMPTY_CASES = [((0, 3), None), ((0, 3), 0), ((0, 3), 1), ((3, 0), 0), ((3, 0), 1), ((3, 0), None),
               ((2, 0, 4), 1), ((2, 0, 4), (0, 2)), ((2, 0, 4), (1, 2)), ((2, 0, 4), None), ((2, 0, 4), ())]


@pytest.mark.parametrize("name, reduce", [("sum", torch.sum), ("mean", torch.mean)])
@pytest.mark.parametrize("shape, axis", EMPTY_CASES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean_of_empty_arrays_match_torch(name, reduce, shape, axis, keepdims):
    x = np.zeros(shape)
    expected_shape = np.sum(x, axis=axis, keepdims=keepdims).shape
    seed = rng.standard_normal(expected_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" must not escape
        out, grad = run_reduction(name, x, seed, axis=axis, keepdims=keepdims)
    assert out.value.shape == expected_shape and grad.shape == shape
    if axis == ():  # torch reads dim=() as every axis; numpy, and dagprop, as none
        np.testing.assert_array_equal(out.value, x)
        return
    expected_value, expected_grad = torch_reduction(reduce, x, axis, keepdims, seed)
    np.testing.assert_array_equal(out.value, expected_value)  # NaN wherever torch's mean has nothing to average
    np.testing.assert_array_equal(grad, expected_grad)


# -- forward mode and the vjp as graph nodes (second derivatives) --------------------------------

@pytest.mark.parametrize("name", FAMILY)
def test_every_reduction_has_forward_mode_and_a_vjp_built_of_nodes(name):
    op = dp.Graph().registry[name]
    assert op.jvp is not None and op.vjp_graph is not None


@pytest.mark.parametrize("name", ["mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, 1, (0, 2), ()], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_check_op_compares_forward_mode_and_the_graph_vjp(name, axis, keepdims):
    errors = check_op(name, (2, 3, 4), axis=axis, keepdims=keepdims).errors
    assert {"jvp vs finite differences", "<u, Jv> vs <J^T u, v>", "vjp_graph vs vjp"} <= set(errors)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_graph_vjp_splits_ties_like_the_vjp(name, axis, keepdims):
    # three-way and two-way ties, and a slice without one
    x = np.array([[5.0, 5.0, 5.0, 1.0], [2.0, 7.0, -1.0, 7.0], [0.0, 3.0, 5.0, 2.0]])
    x = x if name == "max" else -x
    shape = np.max(x, axis=axis, keepdims=keepdims).shape
    seed = rng.standard_normal(shape)
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, axis=axis, keepdims=keepdims)
    g.forward()
    g.backward(out, seed=seed)
    expected = leaf.grad.copy()
    g.zero_grad()
    g.backward(out, seed=seed, create_graph=True)
    np.testing.assert_allclose(leaf.grad, expected, rtol=1e-15)
    np.testing.assert_allclose(leaf.grad_node.value, expected, rtol=1e-15)


@pytest.mark.parametrize("name", ["max", "min"])
def test_extremum_jvp_is_the_mean_tangent_over_the_ties(name):
    # the transpose of the even split: where k elements tie, the result moves by their mean tangent
    x = np.array([[5.0, 5.0, 5.0, 1.0], [2.0, 7.0, -1.0, 7.0]]) * (1.0 if name == "max" else -1.0)
    v = rng.standard_normal((2, 4))
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, axis=1)
    g.jvp({leaf: v})
    np.testing.assert_allclose(out.tangent, [v[0, :3].mean(), (v[1, 1] + v[1, 3]) / 2], rtol=1e-15)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), ()], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_mean_jvp_is_the_mean_of_the_tangent(axis, keepdims):
    x, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    g = dp.Graph()
    leaf = g.param("x", x)
    out = leaf.mean(axis=axis, keepdims=keepdims)
    g.jvp({leaf: v})
    np.testing.assert_allclose(out.tangent, np.mean(v, axis=axis, keepdims=keepdims), rtol=1e-12)


@pytest.mark.parametrize("axis, keepdims", [(1, False), (0, True), (None, False)], ids=str)
def test_hessian_of_squared_mean_is_a_block_of_two_over_n_squared(axis, keepdims):
    # L = sum(mean(x, axis) ** 2): d2L/dx_i dx_j = 2 / n ** 2 when i and j are averaged together
    x = rng.standard_normal((3, 4))
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (leaf.mean(axis=axis, keepdims=keepdims) ** 2.0).sum()
    g.forward()
    index = np.indices(x.shape).reshape(2, -1)
    together = np.ones((12, 12), bool) if axis is None else index[1 - axis][:, None] == index[1 - axis][None, :]
    n = x.size if axis is None else x.shape[axis]
    np.testing.assert_allclose(g.hessian(loss, leaf).reshape(12, 12), together * 2.0 / n**2, rtol=1e-12)


@pytest.mark.parametrize("name", ["max", "min"])
def test_hessian_of_squared_extremum_splits_twice_among_ties(name):
    # L = sum(max(x, axis=1) ** 2); its gradient, 2 max * hits / count, differentiated again through
    # the max (the hits are steps, flat): 2 hits_i hits_j / count ** 2 within a row
    x = np.array([[3.0, 3.0, 1.0], [0.5, 2.0, -1.0], [4.0, 4.0, 4.0]]) * (1.0 if name == "max" else -1.0)
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (g.op(name, leaf, axis=1) ** 2.0).sum()
    g.forward()
    hits = x == (x.max(axis=1, keepdims=True) if name == "max" else x.min(axis=1, keepdims=True))
    share = hits / hits.sum(axis=1, keepdims=True)
    expected = np.zeros((3, 3, 3, 3))
    for r in range(3):
        expected[r, :, r, :] = 2.0 * np.outer(share[r], share[r])
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, rtol=1e-15)
    v = rng.standard_normal((3, 3))
    np.testing.assert_allclose(g.hvp(loss, leaf, v), np.tensordot(expected, v, axes=2), rtol=1e-12)


def test_x_minus_its_max_differentiates_twice_through_the_max():
    # x - max(x), as in softmax's circuit: the backward pass as nodes goes through the max's graph
    # vjp; the second derivative of sum((x - max(x)) ** 2) / 2 along a row is
    # I - hits 1^T - 1 hits^T + n hits hits^T
    x = np.array([[1.0, 4.0, 2.0], [0.0, -1.0, 3.0]])
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = ((leaf - leaf.max(axis=1, keepdims=True)) ** 2.0).sum() * 0.5
    g.forward()
    hessian = g.hessian(loss, leaf)
    for r in range(2):
        hits = (x[r] == x[r].max()).astype(float)
        ones = np.ones(3)
        expected = np.eye(3) - np.outer(hits, ones) - np.outer(ones, hits) + 3 * np.outer(hits, hits)
        np.testing.assert_allclose(hessian[r, :, r, :], expected, rtol=1e-15)


@pytest.mark.parametrize("name", ["mean", "max", "min"])
@pytest.mark.parametrize("shape, axis", [((0, 3), 1), ((2, 0, 4), (0, 2))], ids=str)
def test_empty_arrays_get_an_empty_graph_vjp_and_tangent(name, shape, axis):
    g = dp.Graph()
    leaf = g.param("x", np.zeros(shape))
    out = g.op(name, leaf, axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.forward()
        g.backward(out, seed=np.zeros(out.shape), create_graph=True)
        g.jvp({leaf: np.zeros(shape)})
    assert leaf.grad_node.shape == shape and out.tangent.shape == out.shape


def test_mean_over_an_empty_axis_has_a_still_tangent_and_an_empty_graph_vjp():
    g = dp.Graph()
    leaf = g.param("x", np.zeros((0, 3)))
    out = leaf.mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.forward()
        g.backward(out, seed=np.ones(3), create_graph=True)
        g.jvp({leaf: np.zeros((0, 3))})
    assert np.isnan(out.value).all() and leaf.grad_node.shape == (0, 3)
    np.testing.assert_array_equal(out.tangent, np.zeros(3))


# -- var, logsumexp, prod (issue 12), against torch in float64 -------------------------------------

NEW_AXES = [None, 0, 1, -1, (0, 2), (-1, 0)]


@pytest.mark.parametrize("axis", NEW_AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("correction", [1, 0, 0.5])
def test_var_passes_check_op(axis, keepdims, correction):
    errors = check_op("var", (2, 3, 4), axis=axis, keepdims=keepdims, correction=correction).errors
    assert {"vjp vs decomposition", "second derivatives vs finite differences"} <= set(errors)


@pytest.mark.parametrize("axis", NEW_AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("correction", [1, 0, 0.5])
def test_var_matches_torch(axis, keepdims, correction):
    x = rng.standard_normal((2, 3, 4)) * 3.0 + 1.0
    seed = rng.standard_normal(np.sum(x, axis=axis, keepdims=keepdims).shape)
    out, grad = run_reduction("var", x, seed, axis=axis, keepdims=keepdims, correction=correction)
    expected, expected_grad = torch_reduction(functools.partial(torch.var, correction=correction), x, axis,
                                              keepdims, seed)
    np.testing.assert_allclose(out.value, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)


@pytest.mark.parametrize("shape, correction", [((1,), 1), ((1,), 0), ((2,), 1), ((3,), 3), ((3,), 5), ((0,), 1)],
                         ids=str)
def test_var_without_degrees_of_freedom_gives_torch_nan_and_inf_quietly(shape, correction):
    x = rng.standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, grad = run_reduction("var", x, np.ones(()), correction=correction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the degrees of freedom are <= 0
        expected, expected_grad = torch_reduction(functools.partial(torch.var, correction=correction), x, None,
                                                  False, np.ones(()))
    np.testing.assert_array_equal(out.value, expected)
    if correction < x.size:
        np.testing.assert_array_equal(grad, expected_grad)
    else:  # 2 / 0 * g * (x - mean): infinities signed by the deviation, where torch gives +inf throughout
        assert not np.isfinite(grad).any() and not np.isfinite(expected_grad).any()


def test_var_rejects_a_correction_that_is_not_a_number():
    with pytest.raises(dp.ShapeError, match="correction must be a number"):
        dp.Graph().param("x", np.zeros(3)).var(correction="unbiased")


def test_var_hessian_is_its_closed_form():
    # var = |x - mean|^2 / (n - c): the Hessian is 2 / (n - c) (I - 1/n)
    x = rng.standard_normal(5)
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = leaf.var(correction=1)
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, leaf), 2 / 4 * (np.eye(5) - 1 / 5), rtol=1e-12, atol=1e-15)


def test_var_decomposes_into_mean_sub_mul_mean_and_a_scaling():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((3, 4)))
    out = g.registry["var"].decompose(x, axis=1, keepdims=False, correction=1)
    g.forward()
    np.testing.assert_allclose(out.value, np.var(x.value, axis=1, ddof=1), rtol=1e-14)
    assert sorted({n.op for n in g if n.op}) == ["mean", "mul", "sub"]


@pytest.mark.parametrize("name", ["logsumexp", "prod"])
@pytest.mark.parametrize("axis", NEW_AXES + [(0, 1, 2), ()], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_and_prod_pass_check_op(name, axis, keepdims):
    errors = check_op(name, (2, 3, 4), axis=axis, keepdims=keepdims).errors
    assert "second derivatives vs finite differences" in errors


@pytest.mark.parametrize("name", ["logsumexp", "prod", "var"])
def test_new_reductions_of_a_scalar(name):
    check_op(name, (), **({"correction": 0} if name == "var" else {}))


def torch_logsumexp(t, dim=None, keepdim=False):
    return torch.logsumexp(t, dim=tuple(range(t.ndim)) if dim is None else dim, keepdim=keepdim)


def torch_prod(t, dim=None, keepdim=False):
    return torch.prod(t) if dim is None else torch.prod(t, dim=dim, keepdim=keepdim)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_matches_torch(axis, keepdims):
    x = rng.standard_normal((2, 3, 4)) * 5.0
    seed = rng.standard_normal(np.sum(x, axis=axis, keepdims=keepdims).shape)
    out, grad = run_reduction("logsumexp", x, seed, axis=axis, keepdims=keepdims)
    expected, expected_grad = torch_reduction(torch_logsumexp, x, axis, keepdims, seed)
    np.testing.assert_allclose(out.value, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)


@pytest.mark.parametrize("x", [
    [1000.0, 1000.0, -np.inf],  # would overflow without the shift
    [-1000.0, -1001.0],  # would underflow to log(0)
    [-np.inf, -np.inf],  # all -inf: -inf, and NaN gradients
    [np.inf, 1.0],
    [np.nan, 1.0],
], ids=str)
def test_logsumexp_is_stable_and_matches_torch_at_infinities(x):
    x = np.array(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, grad = run_reduction("logsumexp", x, np.ones(()))
    expected, expected_grad = torch_reduction(torch_logsumexp, x, None, False, np.ones(()))
    np.testing.assert_allclose(out.value, expected, rtol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-14)


def test_logsumexp_over_an_empty_axis_is_minus_infinity_as_in_torch():
    out, grad = run_reduction("logsumexp", np.zeros((0, 3)), np.ones(3), axis=0)
    expected, _ = torch_reduction(torch_logsumexp, np.zeros((0, 3)), 0, False, np.ones(3))
    np.testing.assert_array_equal(out.value, expected)
    assert grad.shape == (0, 3)


def test_logsumexp_hessian_is_diag_softmax_minus_its_outer_product():
    x = rng.standard_normal(5)
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = leaf.logsumexp()
    g.forward()
    p = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(g.hessian(loss, leaf), np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


def test_logsumexp_decomposes_into_max_sub_exp_sum_log_add():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((3, 4)))
    out = g.registry["logsumexp"].decompose(x, axis=1, keepdims=False)
    g.forward()
    np.testing.assert_allclose(out.value, np.log(np.exp(x.value).sum(axis=1)), rtol=1e-14)
    assert sorted({n.op for n in g if n.op}) == ["add", "exp", "log", "max", "sub", "sum"]


# prod: where the slice holds zeros, torch gives the product of the others (no division by zero)
PROD_CASES = [
    ([[2.0, 3.0, 4.0], [0.5, -1.0, 2.0]], "no zero"),
    ([[2.0, 0.0, 4.0], [0.5, -1.0, 2.0]], "one zero"),
    ([[0.0, 0.0, 4.0], [0.0, -1.0, 2.0]], "two zeros"),
    ([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "all zeros"),
]


@pytest.mark.parametrize("x, case", PROD_CASES, ids=[case for _, case in PROD_CASES])
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_prod_matches_torch_with_zeros(x, case, axis, keepdims):
    x = np.array(x)
    seed = rng.standard_normal(np.sum(x, axis=axis, keepdims=keepdims).shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, not even a silenced one
        out, grad = run_reduction("prod", x, seed, axis=axis, keepdims=keepdims)
    expected, expected_grad = torch_reduction(torch_prod, x, axis, keepdims, seed)
    np.testing.assert_allclose(out.value, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)


@pytest.mark.parametrize("x", [[2.0, 0.0, 4.0, -1.5], [0.0, 0.0, 4.0, -1.5], [0.0, 0.0, 0.0, 3.0], [1.5, -2.0, 0.5, 3.0]],
                         ids=str)
def test_prod_second_derivatives_match_torch_at_zeros(x):
    # the graph form of the vjp is exact in value and slope at zeros: d2 prod / dx_i dx_j is the
    # product of all but x_i and x_j, nonzero when those two are the only zeros
    x = np.array(x)
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = leaf.prod()
    g.forward()
    expected = torch.autograd.functional.hessian(torch.prod, torch.tensor(x)).numpy()
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, rtol=1e-12, atol=0)
    g.backward(loss, create_graph=True)
    np.testing.assert_array_equal(leaf.grad_node.value, leaf.grad)


def test_prod_over_several_axes_is_the_product_of_the_others():
    x = rng.standard_normal((2, 3, 4))
    x[0, 1, 2] = 0.0
    out, grad = run_reduction("prod", x, np.ones(3), axis=(0, 2))
    others = np.array([[[np.prod(np.delete(x[:, j, :].ravel(), i * 4 + k)) for k in range(4)] for j in range(3)]
                       for i in range(2)])
    np.testing.assert_allclose(out.value, np.prod(x, axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(grad, others, rtol=1e-12, atol=1e-300)
