"""The elementwise family: add, sub, mul, div, neg, pow, exp, log, reciprocal."""

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

rng = np.random.default_rng(7)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((2, 1, 3), (4, 1)),
]


@pytest.mark.parametrize("name", ["add", "sub", "mul"])
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_ops_broadcast(name, shapes):
    check_op(name, *shapes)


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_div_broadcasts(shapes):
    a, b = shapes
    check_op("div", rng.standard_normal(a), positive(*b))


@pytest.mark.parametrize("name", ["neg", "exp"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4)], ids=str)
def test_unary_ops(name, shape):
    check_op(name, shape)


@pytest.mark.parametrize("name", ["log", "reciprocal"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4)], ids=str)
def test_unary_ops_on_positive_inputs(name, shape):
    check_op(name, positive(*shape))


@pytest.mark.parametrize("exponent", [3.0, 0.5, -2.0, 1.0])
def test_pow_with_a_number_exponent(exponent):
    check_op("pow", positive(3, 4), exponent=exponent)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), ())], ids=str)
def test_pow_with_an_exponent_node(shapes):
    x, y = shapes
    check_op("pow", positive(*x), rng.uniform(-1.0, 2.0, y))


def test_bias_added_to_every_row_gets_the_column_sums():
    g = dp.Graph()
    a, b = g.param("a", rng.standard_normal((3, 4))), g.param("b", rng.standard_normal(4))
    out = a + b
    g.forward()
    seed = rng.standard_normal((3, 4))
    g.backward(out, seed=seed)
    np.testing.assert_allclose(b.grad, seed.sum(axis=0))
    np.testing.assert_allclose(a.grad, seed)


def test_outer_product_by_broadcasting_mul():
    g = dp.Graph()
    col, row = rng.standard_normal((3, 1)), rng.standard_normal((1, 4))
    a, b = g.param("a", col), g.param("b", row)
    out = a * b
    g.forward()
    seed = rng.standard_normal((3, 4))
    g.backward(out, seed=seed)
    np.testing.assert_allclose(out.value, col * row)
    np.testing.assert_allclose(a.grad, (seed * row).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(b.grad, (seed * col).sum(axis=0, keepdims=True))


def test_scalar_times_matrix_gets_the_sum_of_products():
    g = dp.Graph()
    matrix = rng.standard_normal((3, 4))
    s, m = g.param("s", 2.0), g.param("m", matrix)
    out = s * m
    g.forward()
    seed = rng.standard_normal((3, 4))
    g.backward(out, seed=seed)
    assert s.grad.shape == ()
    np.testing.assert_allclose(s.grad, (seed * matrix).sum())
    np.testing.assert_allclose(m.grad, 2.0 * seed)


def test_shapes_that_do_not_broadcast_are_rejected_when_the_node_is_built():
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match="do not broadcast"):
        g.param("a", np.zeros((3, 4))) + g.param("b", np.zeros(3))


# -- pow at the edges of its domain, against torch's pow backward (issue 10) ---------------------

# where x ** (p - 1) or log(x) is not an ordinary number: x = 0 and negative x (and, below, p = 0).
# Not -0.0: torch computes x ** 0.5 and x ** -0.5 as sqrt and rsqrt, whose results at -0.0 carry
# the zero's sign (-0.0, -inf) where C's pow, and numpy, give +0.0 and +inf.
EDGE_BASES = np.array([0.0, -2.0, -0.5, 0.5, 1.5])


def torch_pow_gradients(x, y, seed):
    """Value of x ** y and its gradients (x's; y's when y is an array) from torch's autograd, in float64."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(y, dtype=torch.float64, requires_grad=True) if isinstance(y, np.ndarray) else y
    out = tx ** ty
    out.backward(torch.tensor(seed, dtype=torch.float64))
    return out.detach().numpy(), tx.grad.numpy(), (ty.grad.numpy() if isinstance(ty, torch.Tensor) else None)


def run_pow(x, y=None, seed=None, **attrs):
    g = dp.Graph()
    base = g.param("x", x)
    power = g.op("pow", base, **attrs) if y is None else g.op("pow", base, g.param("y", y))
    with np.errstate(divide="ignore", invalid="ignore"):  # numpy's own warnings for 0 ** -1, (-2) ** 0.5
        g.forward()
    g.backward(power, seed=seed)
    return power.value, base.grad, (None if y is None else g["y"].grad)


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 2.0, 3.0, -1.0, -2.0, -0.5, 0])
def test_pow_number_exponent_gradient_matches_torch_at_edge_points(exponent):
    seed = rng.standard_normal(EDGE_BASES.shape)
    value, grad, _ = run_pow(EDGE_BASES, seed=seed, exponent=exponent)
    expected_value, expected_grad, _ = torch_pow_gradients(EDGE_BASES, exponent, seed)
    # assert_allclose counts NaN as equal to NaN and inf as equal to inf of the same sign
    np.testing.assert_allclose(value, expected_value, rtol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-14)
    if exponent == 0:
        np.testing.assert_array_equal(grad, 0.0)  # x ** 0 is the constant 1, even at x = 0


def test_pow_zero_at_zero_sends_no_nan_upstream():
    g = dp.Graph()
    w = g.param("w", [2.0, -1.0])
    x = g.input("x", [0.0, 3.0])
    loss = ((w * x) ** 0.0).sum()
    g.forward(check_finite=True)
    g.backward(loss, check_finite=True)
    np.testing.assert_array_equal(w.grad, [0.0, 0.0])


def test_pow_zero_exponent_ignores_even_a_non_finite_incoming_gradient():
    # torch's pow_backward returns zeros_like(x) for a zero exponent, whatever arrives
    op = dp.Graph().registry["pow"]
    x = np.array([0.0, 1.0, -3.0])
    (grad,) = op.vjp(np.array([np.inf, np.nan, 1.0]), x, out=op.forward(x, exponent=0.0), needs=(True,),
                     exponent=0.0)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0])


def test_pow_exponent_node_gradients_match_torch_on_a_grid():
    # bases 0, negative and positive against exponents 0, negative, positive, whole and fractional
    x, y = np.meshgrid(EDGE_BASES, [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0], indexing="ij")
    seed = rng.standard_normal(x.shape)
    value, gx, gy = run_pow(x, y, seed=seed)
    expected_value, expected_gx, expected_gy = torch_pow_gradients(x, y, seed)
    np.testing.assert_allclose(value, expected_value, rtol=1e-14)
    np.testing.assert_allclose(gx, expected_gx, rtol=1e-14)
    np.testing.assert_allclose(gy, expected_gy, rtol=1e-14)
    at_zero = (x == 0) & (y >= 0)
    np.testing.assert_array_equal(gy[at_zero], 0.0)  # not out * log(0) = 0 * -inf
    assert np.isfinite(gy[x > 0]).all() and np.isfinite(gx[(x != 0) & (y == np.round(y))]).all()


def test_pow_exponent_node_broadcast_over_a_zero_base_matches_torch():
    # the exponent's gradient sums over the bases it was broadcast against, 0 among them
    x, y = np.array([[0.0], [0.5], [2.0]]), np.array([0.0, 1.0, 2.5])
    seed = rng.standard_normal((3, 3))
    _, gx, gy = run_pow(x, y, seed=seed)
    _, expected_gx, expected_gy = torch_pow_gradients(x, y, seed)
    np.testing.assert_allclose(gx, expected_gx, rtol=1e-12, atol=1e-15)  # sums in another order
    np.testing.assert_allclose(gy, expected_gy, rtol=1e-12, atol=1e-15)
    assert np.isfinite(gy).all()


def test_pow_gradient_rules_raise_no_floating_point_warnings():
    # the vjp masks 0 * inf and log(0); what it hides must not surface as RuntimeWarnings either
    op = dp.Graph().registry["pow"]
    x, y = np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.0])
    with np.errstate(all="raise"):
        op.vjp(np.ones(3), x, out=np.array([1.0, 0.0, 1.0]), needs=(True,), exponent=0.0)
        op.vjp(np.ones(3), x, y, out=np.array([1.0, 0.0, 1.0]), needs=(True, True))
