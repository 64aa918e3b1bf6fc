"""Elementwise ops defined by their derivative, stated once (Op.elementwise in dagprop/op.py):
the vjp, the explicit Jacobian and the shape rule all come from it."""

import sys

import numpy as np
import pytest

import dagprop as dp
from dagprop import Op
from dagprop.testing import check_op

rng = np.random.default_rng(3)

ELEMENTWISE = ["relu", "sigmoid", "tanh", "neg", "exp", "log", "reciprocal"]


def closed_form_derivative(name, x):
    """d out / d x of each built-in elementwise op, written independently of the plugins."""
    sigma = 1.0 / (1.0 + np.exp(-x))
    return {
        "relu": (x > 0) * 1.0,
        "sigmoid": sigma * (1.0 - sigma),
        "tanh": 1.0 / np.cosh(x) ** 2,
        "neg": -np.ones_like(x),
        "exp": np.exp(x),
        "log": 1.0 / x,
        "reciprocal": -1.0 / x**2,
    }[name]


def point(name, shape):
    """Inputs inside the op's domain (log and reciprocal: positive) and off relu's kink."""
    x = rng.uniform(0.5, 2.0, shape) if name in ("log", "reciprocal") else rng.standard_normal(shape)
    return x + np.where(x >= 0, 0.1, -0.1) if name == "relu" else x


def _leaky_forward(x, *, slope=0.01):
    return np.where(x > 0, x, slope * x)


def _leaky_derivative(x, *, out, slope=0.01):
    return np.where(x > 0, 1.0, slope)


def _cube_forward(x):
    return x**3


def _cube_derivative(x, *, out):
    return 3.0 * x**2


def _cube_vjp(g, x, *, out):
    return (3.0 * x**2 * g,)


class Leaky:
    """A plugin with one elementwise op that has an attribute."""

    @dp.hookimpl
    def dagprop_ops(self):
        return [Op.elementwise("leaky", _leaky_forward, _leaky_derivative, doc="x where x > 0, else slope * x")]


LEAKY = Leaky()


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_each_built_in_elementwise_op_states_its_derivative_once(name):
    op = dp.Graph().registry[name]
    x = point(name, (3, 4))
    out = op.forward(x)
    derivative = np.broadcast_to(op.derivative(x, out=out), x.shape)
    np.testing.assert_allclose(derivative, closed_form_derivative(name, x), rtol=1e-12)
    g = rng.standard_normal(x.shape)
    (grad,) = op.vjp(g, x, out=out)
    np.testing.assert_allclose(grad, g * closed_form_derivative(name, x), rtol=1e-12)
    (jacobian,) = op.jacobian(x, out=out)
    np.testing.assert_allclose(jacobian.reshape(x.size, x.size), np.diag(derivative.ravel()), rtol=1e-12)
    assert op.shape((3, 4)) == (3, 4)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("shape", [(), (1,), (2, 3, 2)], ids=str)
def test_elementwise_ops_pass_check_op_at_every_rank(name, shape):
    report = check_op(name, point(name, shape))
    assert "jacobian vs vjp" in report.errors


def test_the_jacobian_is_float_even_when_the_derivative_is_boolean():
    x = np.array([-1.0, 2.0])
    (jacobian,) = dp.Graph().registry["relu"].jacobian(x, out=np.maximum(x, 0.0))
    assert jacobian.dtype == np.float64
    np.testing.assert_array_equal(jacobian, [[0.0, 0.0], [0.0, 1.0]])


def test_an_attribute_reaches_the_derivative_on_every_route():
    x0 = np.array([-2.0, 3.0, -0.5])
    g = dp.Graph(plugins=[LEAKY])
    x = g.param("x", x0)
    loss = x.leaky(slope=0.25).sum()
    expected = np.where(x0 > 0, 1.0, 0.25)
    for _ in range(3):  # the first run is interpreted, the later ones take the fast path
        g.zero_grad()
        g.forward()
        g.backward(loss)
        np.testing.assert_allclose(x.grad, expected)
    g.zero_grad()
    g.backward(loss, mode="jacobian")
    np.testing.assert_allclose(x.grad, expected)
    check_op("leaky", (3, 4), plugins=[LEAKY], slope=0.25)


def test_an_elementwise_vjp_costs_one_python_call_more_than_a_hand_written_one():
    # the vjp runs once per node per backward pass (a 100,000-node tanh chain is benchmarked)
    hand = Op("cube", forward=_cube_forward, vjp=_cube_vjp)
    built = Op.elementwise("cube", _cube_forward, _cube_derivative)
    x = np.array([1.0, 2.0])

    def python_calls(op):
        calls = []

        def record(frame, event, arg):
            if event == "call":
                calls.append(frame.f_code.co_name)

        sys.setprofile(record)
        try:
            op.vjp(np.ones(2), x, out=x**3)
        finally:
            sys.setprofile(None)
        return calls

    assert len(python_calls(built)) == len(python_calls(hand)) + 1


def test_the_engine_still_reads_whether_an_elementwise_vjp_takes_needs():
    op = Op.elementwise("cube", _cube_forward, _cube_derivative)
    assert op.vjp_takes_needs is False and op.jacobian_takes_needs is False
    assert op.attr_names == frozenset()
    assert Op.elementwise("leaky", _leaky_forward, _leaky_derivative).attr_names == frozenset({"slope"})


@pytest.mark.parametrize("given", ["vjp", "jacobian", "shape"])
def test_elementwise_refuses_the_rules_it_builds(given):
    with pytest.raises(dp.PluginError, match=rf"op 'cube': Op.elementwise builds {given} from the derivative"):
        Op.elementwise("cube", _cube_forward, _cube_derivative, **{given: _cube_vjp})


def test_elementwise_takes_exactly_one_input():
    with pytest.raises(dp.PluginError, match=r"one input, but the op declares inputs \('a', 'b'\)"):
        Op.elementwise("cube", _cube_forward, _cube_derivative, inputs=("a", "b"))
    assert Op.elementwise("cube", _cube_forward, _cube_derivative, inputs=("z",)).inputs == ("z",)


def test_a_derivative_next_to_a_hand_written_vjp_is_refused():
    # the two could disagree, and a forward-mode rule would trust the derivative
    with pytest.raises(dp.PluginError, match=r"not built from its derivative.*Op.elementwise"):
        Op("cube", forward=_cube_forward, vjp=_cube_vjp, derivative=_cube_derivative)


def test_a_ufunc_derivative_is_refused():
    # np.cos(x, out=out) would overwrite the op's output with the derivative
    with pytest.raises(dp.PluginError, match="derivative is the ufunc cos, which would take the op's output"):
        Op.elementwise("sin", np.sin, np.cos)


def test_a_derivative_must_be_callable():
    with pytest.raises(dp.PluginError, match="derivative must be callable or None, got 3"):
        Op.elementwise("cube", _cube_forward, 3)


def test_an_elementwise_op_keeps_its_rules_when_registered():
    op = dp.Graph(plugins=[LEAKY]).registry["leaky"]
    assert op.plugin.endswith(".Leaky") and op.derivative is _leaky_derivative
    assert "derivative" in repr(op)
