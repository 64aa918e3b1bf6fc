"""The elementwise family: add, sub, mul, div, neg, pow, exp, log, reciprocal, step, erf, sqrt, rsqrt, abs,
where, maximum, minimum and clip."""

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


# -- forward mode and the vjp as graph nodes (second derivatives) --------------------------------

FAMILY = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "reciprocal", "step", "erf", "sqrt", "rsqrt", "abs",
          "where", "maximum", "minimum", "clip"]


@pytest.mark.parametrize("name", FAMILY)
def test_every_op_has_forward_mode_and_a_vjp_built_of_nodes(name):
    op = dp.Graph().registry[name]
    assert op.jvp is not None and op.vjp_graph is not None


@pytest.mark.parametrize("shapes", [((4,), (3, 4)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 1, 3), (4, 1))], ids=str)
def test_pow_exponent_node_checks_every_rule_when_either_side_broadcasts(shapes):
    x, y = shapes
    errors = check_op("pow", positive(*x), rng.uniform(-1.0, 2.0, y)).errors
    assert {"jvp vs finite differences", "vjp_graph vs vjp", "second derivatives vs finite differences"} <= set(errors)


@pytest.mark.parametrize("exponent", [2, 2.0, 0.0, 0, -1.0, 1.5])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)], ids=str)
def test_pow_number_exponent_checks_every_rule(exponent, shape):
    errors = check_op("pow", positive(*shape), exponent=exponent).errors
    assert "second derivatives vs finite differences" in errors


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((3, 4), ())], ids=str)
def test_div_checks_every_rule(shapes):
    a, b = shapes
    errors = check_op("div", rng.standard_normal(a), positive(*b)).errors
    assert "second derivatives vs finite differences" in errors


@pytest.mark.parametrize("exponent", [3.0, 2.0, 1.0, 0.5, -2.0, 0.0])
def test_pow_number_exponent_hessian_is_its_closed_form(exponent):
    x = positive(4)
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (leaf ** exponent).sum()
    g.forward()
    expected = np.diag(exponent * (exponent - 1) * x ** (exponent - 2))
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, rtol=1e-12)
    v = rng.standard_normal(4)
    np.testing.assert_allclose(g.hvp(loss, leaf, v), expected @ v, rtol=1e-12)


def test_pow_exponent_node_second_derivatives_are_their_closed_forms():
    x, y = positive(3, 2), rng.uniform(-1.0, 2.0, (3, 2))
    g = dp.Graph()
    base, power = g.param("x", x), g.param("y", y)
    loss = (base ** power).sum()
    g.forward()
    n = x.size
    np.testing.assert_allclose(g.hessian(loss, base).reshape(n, n), np.diag((y * (y - 1) * x ** (y - 2)).ravel()),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.hessian(loss, power).reshape(n, n), np.diag((x ** y * np.log(x) ** 2).ravel()),
                               rtol=1e-12, atol=1e-14)
    # the mixed derivative: d/dx of dL/dy = x ** y * log(x) is x ** (y - 1) * (1 + y log(x))
    g.backward(loss, create_graph=True)
    total = power.grad_node.sum()
    g.forward()
    g.zero_grad()
    g.backward(total)
    np.testing.assert_allclose(base.grad, x ** (y - 1) * (1 + y * np.log(x)), rtol=1e-12)


def test_div_second_derivatives_are_their_closed_forms():
    a, b = rng.standard_normal(4), positive(4)
    g = dp.Graph()
    num, den = g.param("a", a), g.param("b", b)
    loss = (num / den).sum()
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, den), np.diag(2 * a / b**3), rtol=1e-12)
    np.testing.assert_allclose(g.hessian(loss, num), np.zeros((4, 4)))
    v = rng.standard_normal(4)
    np.testing.assert_allclose(g.hvp(loss, den, v), 2 * a / b**3 * v, rtol=1e-12)
    g.backward(loss, create_graph=True)
    total = num.grad_node.sum()  # of 1 / b, whose derivative in b is -1 / b ** 2
    g.forward()
    g.zero_grad()
    g.backward(total)
    np.testing.assert_allclose(den.grad, -1 / b**2, rtol=1e-12)


def test_pow_jvp_is_the_directional_derivative():
    x, y = positive(3), rng.uniform(-1.0, 2.0, 3)
    vx, vy = rng.standard_normal(3), rng.standard_normal(3)
    g = dp.Graph()
    base, power = g.param("x", x), g.param("y", y)
    out = base ** power
    g.jvp({base: vx, power: vy})
    np.testing.assert_allclose(out.tangent, y * x ** (y - 1) * vx + x**y * np.log(x) * vy, rtol=1e-12)


def pow_gradients(x, y, seed, create_graph, **attrs):
    g = dp.Graph()
    base = g.param("x", x)
    power = g.op("pow", base, **attrs) if y is None else g.op("pow", base, g.param("y", y))
    with np.errstate(divide="ignore", invalid="ignore"):
        g.forward()
        g.backward(power, seed=seed, create_graph=create_graph)
    return base.grad, (None if y is None else g["y"].grad)


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 2.0, 3.0, -1.0, -0.5, 0])
def test_pow_number_exponent_graph_gradient_equals_the_vjp_at_edge_points(exponent):
    seed = rng.standard_normal(EDGE_BASES.shape)
    expected, _ = pow_gradients(EDGE_BASES, None, seed, False, exponent=exponent)
    got, _ = pow_gradients(EDGE_BASES, None, seed, True, exponent=exponent)
    np.testing.assert_allclose(got, expected, rtol=1e-14)  # NaN and inf in the same places


def test_pow_exponent_node_graph_gradients_equal_the_vjp_on_the_edge_grid():
    # the graph form shifts the power and the log where x = 0 (see _pow_node_base_grad) to
    # reproduce the vjp's masks: 0 where x = y = 0, and no log(0) where x = 0 and y >= 0
    x, y = np.meshgrid(EDGE_BASES, [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0], indexing="ij")
    seed = rng.standard_normal(x.shape)
    expected = pow_gradients(x, y, seed, False)
    got = pow_gradients(x, y, seed, True)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_pow_exponent_node_second_derivatives_at_a_zero_base():
    # x ** y at x = 0 for y >= 2 is smooth in x (d2/dx2 = y (y - 1) x ** (y - 2)) and constant 0 in y
    y = np.array([2.0, 3.0, 4.0])
    g = dp.Graph()
    base, power = g.param("x", np.zeros(3)), g.param("y", y)
    loss = (base ** power).sum()
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, base), np.diag([2.0, 0.0, 0.0]))
    np.testing.assert_array_equal(g.hessian(loss, power), np.zeros((3, 3)))


def test_pow_zero_exponent_gives_a_zero_gradient_node():
    g = dp.Graph()
    x = g.param("x", [0.0, 2.0])
    loss = (x ** 0.0).sum()
    g.forward()
    g.backward(loss, create_graph=True)
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    np.testing.assert_array_equal(g.hessian(loss, x), np.zeros((2, 2)))


# -- erf, sqrt, rsqrt, abs, where, maximum, minimum, clip (issue 12), against torch in float64 -------


def torch_values_and_gradients(function, arrays, seed, differentiable=None):
    """torch's value of function(*tensors) and the gradient of <seed, value> for each input, in float64.

    ``differentiable`` says which inputs take a gradient (default: all); the others get None.
    """
    differentiable = differentiable or [True] * len(arrays)
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=d) for a, d in zip(arrays, differentiable)]
    out = function(*tensors)
    out.backward(torch.tensor(seed, dtype=torch.float64))
    return out.detach().numpy(), [t.grad.numpy() if d else None for t, d in zip(tensors, differentiable)]


def dagprop_values_and_gradients(name, arrays, seed, **attrs):
    g = dp.Graph()
    leaves = [g.param(f"x{k}", a) for k, a in enumerate(arrays)]
    out = g.op(name, *leaves, **attrs)
    g.forward()
    g.backward(out, seed=seed)
    return out.value, [leaf.grad for leaf in leaves]


def assert_matches_torch(name, function, arrays, differentiable=None, **attrs):
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    g = dp.Graph()
    leaves = [g.param(f"x{k}", a) for k, a in enumerate(arrays)]
    out = g.op(name, *leaves, **attrs)
    g.forward()
    seed = rng.standard_normal(out.shape)
    g.backward(out, seed=seed)
    expected_value, expected_grads = torch_values_and_gradients(function, arrays, seed, differentiable)
    np.testing.assert_allclose(out.value, expected_value, rtol=1e-12, atol=0)
    for leaf, expected in zip(leaves, expected_grads):
        if expected is not None:
            np.testing.assert_allclose(leaf.grad, expected, rtol=1e-12, atol=0, err_msg=leaf.name)


@pytest.mark.parametrize("name", ["erf", "sqrt", "rsqrt"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4)], ids=str)
def test_new_unary_ops_pass_check_op(name, shape):
    x = rng.standard_normal(shape) if name == "erf" else positive(*shape)
    errors = check_op(name, x).errors
    assert "second derivatives vs finite differences" in errors


def test_erf_matches_torch_far_out_and_at_zero():
    x = np.concatenate([np.linspace(-7.0, 7.0, 57), [0.0, -0.0, 1e-300, 30.0, -30.0]])
    assert_matches_torch("erf", torch.erf, [x])


@pytest.mark.parametrize("name, function", [("sqrt", torch.sqrt), ("rsqrt", torch.rsqrt)])
def test_sqrt_and_rsqrt_match_torch(name, function):
    assert_matches_torch(name, function, [np.concatenate([positive(20), [1e-8, 1.0, 4.0, 1e8]])])


@pytest.mark.parametrize("name, function", [("sqrt", torch.sqrt), ("rsqrt", torch.rsqrt)])
def test_sqrt_and_rsqrt_at_zero_give_torch_infinities(name, function):
    # the slope of sqrt at 0 is +inf, of rsqrt -inf: a seed of 1 carries it, as in torch
    x = np.array([0.0, 1.0])
    value, (grad,) = dagprop_values_and_gradients(name, [x], np.ones(2))
    expected_value, (expected_grad,) = torch_values_and_gradients(function, [x], np.ones(2))
    np.testing.assert_array_equal(value, expected_value)
    np.testing.assert_array_equal(grad, expected_grad)


def test_erf_second_derivative_is_its_closed_form():
    # d2 erf / dx2 = -2x * 2/sqrt(pi) exp(-x^2)
    x = rng.standard_normal(5)
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = leaf.erf().sum()
    g.forward()
    expected = np.diag(-2 * x * 2 / np.sqrt(np.pi) * np.exp(-x**2))
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, rtol=1e-12, atol=1e-15)


def test_erf_backward_graph_is_built_of_nodes():
    g = dp.Graph()
    x = g.param("x", [0.5, -1.0])
    loss = x.erf().sum()
    g.forward()
    g.backward(loss, create_graph=True)
    assert x.grad_node.op is not None  # a node, recomputed when x moves
    g.run.values[x.index] = np.array([0.0, 2.0])
    g.forward()
    np.testing.assert_allclose(x.grad_node.value, 2 / np.sqrt(np.pi) * np.exp(-np.array([0.0, 4.0])), rtol=1e-14)


def test_sqrt_and_rsqrt_second_derivatives_are_their_closed_forms():
    x = positive(4)
    for name, second in [("sqrt", -0.25 * x ** -1.5), ("rsqrt", 0.75 * x ** -2.5)]:
        g = dp.Graph()
        leaf = g.param("x", x)
        loss = g.op(name, leaf).sum()
        g.forward()
        np.testing.assert_allclose(g.hessian(loss, leaf), np.diag(second), rtol=1e-12, err_msg=name)


def away_from_zero(*shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.25, 2.0, shape)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4)], ids=str)
def test_abs_passes_check_op(shape):
    check_op("abs", away_from_zero(*shape))


def test_abs_matches_torch_with_slope_zero_at_zero():
    x = np.array([-2.0, -0.5, 0.0, -0.0, 0.5, 3.0])
    assert_matches_torch("abs", torch.abs, [x])
    _, (grad,) = dagprop_values_and_gradients("abs", [x], np.ones(6))
    np.testing.assert_array_equal(grad, [-1.0, -1.0, 0.0, 0.0, 1.0, 1.0])


WHERE_SHAPES = [((3, 4), (3, 4), (3, 4)), ((3, 1), (3, 4), (4,)), ((), (3, 4), ()), ((4,), (3, 1), (2, 1, 1))]


@pytest.mark.parametrize("shapes", WHERE_SHAPES, ids=str)
def test_where_passes_check_op(shapes):
    condition, a, b = shapes
    check_op("where", rng.integers(0, 2, condition).astype(float), a, b)


@pytest.mark.parametrize("shapes", WHERE_SHAPES, ids=str)
def test_where_matches_torch(shapes):
    condition, a, b = shapes
    mask = rng.integers(0, 2, condition).astype(float)
    assert_matches_torch("where", lambda c, x, y: torch.where(c > 0.5, x, y),
                         [mask, rng.standard_normal(a), rng.standard_normal(b)], differentiable=[False, True, True])


def test_where_gives_its_mask_no_gradient_and_no_tangent():
    g = dp.Graph()
    c, a, b = g.param("c", [1.0, 0.0]), g.param("a", [1.0, 2.0]), g.param("b", [3.0, 4.0])
    out = g.op("where", c, a, b)
    g.forward()
    g.backward(out, seed=np.ones(2))
    assert c.grad is None
    np.testing.assert_array_equal(a.grad, [1.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 1.0])
    g.jvp({c: np.ones(2), a: np.ones(2), b: np.full(2, 2.0)})
    np.testing.assert_array_equal(out.tangent, [1.0, 2.0])


def test_where_takes_a_mask_built_by_a_comparison():
    g = dp.Graph()
    x = g.param("x", [-1.0, 2.0, -3.0])
    out = g.op("where", x > 0, x, x * 0.1)  # a leaky relu
    loss = out.sum()
    g.forward()
    g.backward(loss)
    np.testing.assert_allclose(out.value, [-0.1, 2.0, -0.3])
    np.testing.assert_allclose(x.grad, [0.1, 1.0, 0.1])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_maximum_and_minimum_pass_check_op(name, shapes):
    check_op(name, *shapes)  # random normal values: no tie within the finite-difference step


@pytest.mark.parametrize("name, function", [("maximum", torch.maximum), ("minimum", torch.minimum)])
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_maximum_and_minimum_match_torch_with_ties_split_in_halves(name, function, shapes):
    a, b = shapes
    # values on a coarse grid, so that many pairs tie
    assert_matches_torch(name, function, [rng.integers(-2, 3, a).astype(float), rng.integers(-2, 3, b).astype(float)])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_a_tie_sends_half_the_gradient_each_way(name):
    g = dp.Graph()
    a, b = g.param("a", [1.0, 2.0, 3.0]), g.param("b", [1.0, 1.0, 4.0])
    out = g.op(name, a, b)
    g.forward()
    g.backward(out, seed=np.ones(3), create_graph=True)
    larger = name == "maximum"
    np.testing.assert_array_equal(a.grad, [0.5, 1.0 if larger else 0.0, 0.0 if larger else 1.0])
    np.testing.assert_array_equal(b.grad, [0.5, 0.0 if larger else 1.0, 1.0 if larger else 0.0])
    np.testing.assert_array_equal(a.grad_node.value, a.grad)  # the graph form splits the same way


CLIP_BOUNDS = [(-0.5, 1.0), (None, 0.3), (-0.2, None), (0.0, 0.0), (1.0, -1.0)]


@pytest.mark.parametrize("low, high", CLIP_BOUNDS, ids=str)
def test_clip_passes_check_op(low, high):
    bounds = [b for b in (low, high) if b is not None]
    x = rng.standard_normal((3, 4))
    for bound in bounds:  # keep every element clear of the bounds, where clip has a kink
        x = np.where(np.abs(x - bound) < 0.1, bound + 0.2, x)
    check_op("clip", x, min=low, max=high)


@pytest.mark.parametrize("low, high", CLIP_BOUNDS, ids=str)
def test_clip_matches_torch_clamp_with_bounds_included(low, high):
    x = np.array([-2.0, -1.0, -0.5, -0.2, 0.0, 0.3, 0.7, 1.0, 2.0])  # each bound among the points
    assert_matches_torch("clip", lambda t: torch.clamp(t, min=low, max=high), [x], min=low, max=high)


def test_clip_passes_the_gradient_at_the_bounds():
    _, (grad,) = dagprop_values_and_gradients("clip", [np.array([-1.0, -0.5, 0.0, 1.0, 1.5])], np.ones(5),
                                              min=-0.5, max=1.0)
    np.testing.assert_array_equal(grad, [0.0, 1.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("attrs, reason", [({}, "clip needs min, max or both"),
                                           ({"min": np.zeros(2)}, "clip's min must be a number or None")])
def test_clip_refuses_missing_or_array_bounds(attrs, reason):
    g = dp.Graph()
    g.param("x", [1.0, 2.0]).clip(**attrs)
    with pytest.raises(dp.OpError, match=reason):
        g.forward()


@pytest.mark.parametrize("name, second", [("abs", 0.0), ("clip", 0.0)])
def test_piecewise_linear_ops_have_a_zero_hessian(name, second):
    x = away_from_zero(4)
    g = dp.Graph()
    leaf = g.param("x", x)
    attrs = {"min": -1.0, "max": 1.0} if name == "clip" else {}
    loss = (g.op(name, leaf, **attrs) * g.const(rng.standard_normal(4))).sum()
    g.forward()
    np.testing.assert_array_equal(g.hessian(loss, leaf), np.full((4, 4), second))


def test_maximum_hessian_of_a_product_follows_the_winner():
    # L = sum(maximum(a, b) * a): where a wins, d2L/da2 = 2; where b wins, 0
    a, b = np.array([1.0, -1.0, 2.0]), np.array([0.0, 0.0, 3.0])
    g = dp.Graph()
    left, right = g.param("a", a), g.param("b", b)
    loss = (g.op("maximum", left, right) * left).sum()
    g.forward()
    np.testing.assert_array_equal(g.hessian(loss, left), np.diag([2.0, 0.0, 0.0]))
