"""A plugin with deliberately wrong rules: the checks plugin authors rely on must catch every one."""

import numpy as np
import pytest

import dagprop as dp
from dagprop import Op
from dagprop.testing import check_op


def _square_forward(x):
    return x * x


def _square_vjp(g, x, *, out):
    return (2.0 * g * x,)


def _vjp_missing_the_factor_two(g, x, *, out):
    return (g * x,)


def _vjp_of_the_wrong_shape(g, x, *, out):
    return (2.0 * (g * x).sum(),)


def _vjp_with_one_result_too_many(g, x, *, out):
    return 2.0 * g * x, None


def _derivative_missing_the_factor_two(x, *, out):
    return x


def _jacobian_missing_the_factor_two(x, *, out):
    return (np.diag(x.ravel()).reshape(x.shape + x.shape),)


def _decompose_right_value_wrong_slope(x):
    # x * (a constant equal to x): the right value at this point, but slope x instead of 2x
    return x * x.graph.const(x.value)


def _same_shape(x):
    return x


def _square(name, **rules):
    rules.setdefault("vjp", _square_vjp)
    return Op(name, forward=_square_forward, shape=_same_shape, doc="x * x, with a planted mistake", **rules)


class WrongSquares:
    """Seven versions of x * x: one correct, six with a planted mistake each."""

    @dp.hookimpl
    def dagprop_ops(self):
        return [
            _square("good_square"),
            _square("wrong_vjp_square", vjp=_vjp_missing_the_factor_two),
            _square("wrong_jacobian_square", jacobian=_jacobian_missing_the_factor_two),
            _square("wrong_decomposition_square", decompose=_decompose_right_value_wrong_slope),
            _square("wrong_shape_square", vjp=_vjp_of_the_wrong_shape),
            _square("wrong_count_square", vjp=_vjp_with_one_result_too_many),
            Op.elementwise("wrong_derivative_square", _square_forward, _derivative_missing_the_factor_two,
                           doc="x * x, with a planted mistake"),
        ]


PLUGIN = WrongSquares()


def test_the_correct_op_passes():
    check = check_op("good_square", (3, 2), plugins=[PLUGIN])
    assert check.errors["vjp vs finite differences"] < 1e-8


def test_check_op_catches_a_wrong_vjp():
    with pytest.raises(dp.GradcheckError, match="vjp disagrees with finite differences"):
        check_op("wrong_vjp_square", (3, 2), plugins=[PLUGIN])


def test_gradcheck_catches_a_wrong_vjp():
    g = dp.Graph(plugins=[PLUGIN])
    x = g.param("x", np.array([1.0, -2.0, 3.0]))
    loss = g.op("wrong_vjp_square", x).sum()
    # d(x^2)/dx = 2x = 6 at x = 3, the largest error; the planted vjp says x = 3
    expected = r"with respect to 'x' is wrong at index \(2,\): analytic 3, numeric 6"
    with pytest.raises(dp.GradcheckError, match=expected) as caught:
        dp.gradcheck(g, loss)
    assert "3 of 3 elements disagree" in str(caught.value)


def test_gradcheck_catches_a_wrong_vjp_deep_inside_a_graph():
    g = dp.Graph(plugins=[PLUGIN])
    W = g.param("W", np.array([[1.0, 2.0], [0.5, -1.0]]))
    h = g.op("wrong_vjp_square", g.input("x", np.array([1.0, 1.0])) @ W).tanh()
    loss = g.ops.l2_loss(h, np.zeros(2))
    with pytest.raises(dp.GradcheckError, match="'W'"):
        dp.gradcheck(g, loss)


def test_check_op_catches_a_wrong_jacobian():
    with pytest.raises(dp.GradcheckError, match="explicit jacobian disagrees with the vjp"):
        check_op("wrong_jacobian_square", (3,), plugins=[PLUGIN])


def test_check_op_catches_a_wrong_derivative():
    # vjp and jacobian are built from the one derivative, so only finite differences can tell
    with pytest.raises(dp.GradcheckError, match="vjp disagrees with finite differences"):
        check_op("wrong_derivative_square", (3, 2), plugins=[PLUGIN])


def test_check_op_catches_a_decomposition_with_the_wrong_gradient():
    with pytest.raises(dp.GradcheckError, match="vjp disagrees with autodiff through the decomposition"):
        check_op("wrong_decomposition_square", (2, 2), plugins=[PLUGIN])


@pytest.mark.parametrize("name, reason", [
    ("wrong_shape_square", r"returned shape \(\) for input 0 \(x\); expected \(3, 2\)"),
    ("wrong_count_square", "returned tuple of length 2; expected a tuple of 1"),
])
def test_a_malformed_vjp_is_reported_with_the_expected_structure(name, reason):
    with pytest.raises(dp.OpError, match=reason):
        check_op(name, (3, 2), plugins=[PLUGIN])


def test_a_globally_registered_wrong_plugin_is_caught_too():
    dp.register_plugin(PLUGIN)
    try:
        with pytest.raises(dp.GradcheckError):
            check_op("wrong_vjp_square", (4,))
    finally:
        dp.unregister_plugin(PLUGIN)
    assert "wrong_vjp_square" not in dp.Graph().registry
