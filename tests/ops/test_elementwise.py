"""The elementwise family: add, sub, mul, div, neg, pow, exp, log, reciprocal."""

import numpy as np
import pytest

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
