"""Elementwise arithmetic: add, sub, mul, div, neg, pow, exp, log, reciprocal.

Binary ops broadcast like NumPy; their vjps undo the broadcasting with
:func:`dagprop.unbroadcast`, so a bias added to every column gets the column sum.
The unary ones state their derivative once, and :meth:`dagprop.Op.elementwise` makes
their vjp and Jacobian from it.
"""

from __future__ import annotations

import numpy as np

import dagprop as dp
from dagprop import Op, broadcast_shape, unbroadcast


def _add_vjp(g, a, b, *, out):
    return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


def _sub_vjp(g, a, b, *, out):
    return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)


def _mul_vjp(g, a, b, *, out, needs):
    return (unbroadcast(g * b, a.shape) if needs[0] else None,
            unbroadcast(g * a, b.shape) if needs[1] else None)


def _div_vjp(g, a, b, *, out, needs):
    return (unbroadcast(g / b, a.shape) if needs[0] else None,
            unbroadcast(-g * out / b, b.shape) if needs[1] else None)


def _neg_derivative(x, *, out):
    return -1.0


def _pow_forward(x, y=None, *, exponent=None):
    if (y is None) == (exponent is None):
        raise ValueError("pow takes either an exponent node or exponent=<number>, not both or neither")
    return np.power(x, exponent if y is None else y)


def _pow_shape(x, y=None, *, exponent=None):
    return x if y is None else broadcast_shape(x, y)


def _pow_vjp(g, x, y=None, *, out, needs, exponent=None):
    # torch's rules (pow_backward, pow_backward_self, pow_backward_exponent). Where the exponent
    # is 0, x ** 0 is the constant 1 and the gradient of x is 0, not g * 0 * x ** -1 (NaN at x = 0).
    # Where x is 0 and the exponent is >= 0, the exponent's gradient is 0, not out * log(0)
    # (NaN, or -inf). The masked terms may divide by zero: errstate keeps that quiet.
    p = exponent if y is None else y
    with np.errstate(divide="ignore", invalid="ignore"):
        gx = unbroadcast(np.where(p == 0, 0.0, g * p * np.power(x, p - 1)), x.shape) if needs[0] else None
        if y is None:
            return (gx,)
        # only here, when the exponent needs a gradient, is log(x) evaluated
        gy = unbroadcast(g * np.where((x == 0) & (y >= 0), 0.0, out * np.log(x)), y.shape) if needs[1] else None
    return gx, gy


def _exp_derivative(x, *, out):
    return out


def _log_derivative(x, *, out):
    return 1.0 / x


def _reciprocal_forward(x):
    return 1.0 / x


def _reciprocal_derivative(x, *, out):
    return -out * out


def _binary(rng):
    return ((3, 4), (4,)), {}


def _positive(rng):
    return (rng.uniform(0.5, 2.0, (3, 4)),), {}


def _unary(rng):
    return ((3, 4),), {}


def _divide_example(rng):
    return ((3, 4), rng.uniform(0.5, 2.0, (4,))), {}


def _pow_example(rng):
    return (rng.uniform(0.5, 2.0, (3, 4)),), {"exponent": 3.0}


def _binary_op(name, forward, vjp, doc):
    return Op(name, forward=forward, vjp=vjp, inputs=("a", "b"), shape=broadcast_shape, example=_binary, doc=doc)


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: add, sub, mul, div, neg, pow, exp, log and reciprocal."""
    return [
        _binary_op("add", np.add, _add_vjp, "a + b, broadcasting"),
        _binary_op("sub", np.subtract, _sub_vjp, "a - b, broadcasting"),
        _binary_op("mul", np.multiply, _mul_vjp, "a * b elementwise, broadcasting"),
        Op("div", forward=np.divide, vjp=_div_vjp, inputs=("a", "b"), shape=broadcast_shape,
           example=_divide_example, doc="a / b elementwise, broadcasting"),
        Op.elementwise("neg", np.negative, _neg_derivative, example=_unary, doc="-x"),
        Op("pow", forward=_pow_forward, vjp=_pow_vjp, inputs=("x", "y"), min_inputs=1, shape=_pow_shape,
           example=_pow_example, doc="x ** exponent (a number attribute) or x ** y (a node), elementwise"),
        Op.elementwise("exp", np.exp, _exp_derivative, example=_unary, doc="e ** x"),
        Op.elementwise("log", np.log, _log_derivative, example=_positive, doc="natural logarithm"),
        Op.elementwise("reciprocal", _reciprocal_forward, _reciprocal_derivative, example=_positive, doc="1 / x"),
    ]
