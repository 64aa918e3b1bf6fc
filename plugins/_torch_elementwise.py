"""The torch converters of elementwise ops: arithmetic, activations, comparisons and where.
Private to dagprop_plugins: :mod:`dagprop_plugins.torch_converters` registers them."""

from __future__ import annotations

import math

import dagprop as dp
from ._torch_common import scaled


def convert_add(b, x, other, alpha=1):
    """x + alpha * other (add.Tensor, add.Scalar)."""
    return b.op("add", x, scaled(b, other, alpha))


def convert_sub(b, x, other, alpha=1):
    """x - alpha * other."""
    return b.op("sub", x, scaled(b, other, alpha))


def convert_rsub(b, x, other, alpha=1):
    """other - alpha * x (what ``1 - x`` becomes)."""
    return b.op("sub", other, scaled(b, x, alpha))


def convert_mul(b, x, other):
    """x * other."""
    return b.op("mul", x, other)


def convert_div(b, x, other, rounding_mode=None):
    """x / other; rounding modes ("trunc", "floor") are not differentiable and not converted."""
    if rounding_mode is not None:
        raise NotImplementedError(f"rounding_mode={rounding_mode!r} rounds the quotient, which has no dagprop op")
    return b.op("div", x, other)


def convert_pow(b, x, exponent):
    """x ** exponent: a number exponent as pow's attribute, a tensor one as pow's second input;
    number ** tensor as exp(log(number) * tensor)."""
    if not isinstance(x, dp.Node):
        return b.op("exp", b.op("mul", exponent, math.log(x)))
    if isinstance(exponent, dp.Node):
        return b.op("pow", x, exponent)
    return b.op("pow", x, exponent=float(exponent))


def convert_square(b, x):
    """x ** 2."""
    return b.op("pow", x, exponent=2.0)


def _unary(name, doc):
    def convert(b, x):
        return b.op(name, x)
    convert.__name__ = convert.__qualname__ = f"convert_{name}"
    convert.__doc__ = doc
    return convert


convert_neg = _unary("neg", "-x.")
convert_exp = _unary("exp", "e ** x.")
convert_log = _unary("log", "Natural logarithm.")
convert_reciprocal = _unary("reciprocal", "1 / x.")
convert_sqrt = _unary("sqrt", "Square root.")
convert_rsqrt = _unary("rsqrt", "1 / sqrt(x).")
convert_abs = _unary("abs", "|x|.")
convert_erf = _unary("erf", "The error function.")
convert_relu = _unary("relu", "max(x, 0).")
convert_sigmoid = _unary("sigmoid", "1 / (1 + exp(-x)).")
convert_tanh = _unary("tanh", "Hyperbolic tangent.")
convert_silu = _unary("silu", "x * sigmoid(x).")
convert_log_sigmoid = _unary("log_sigmoid", "log(sigmoid(x)).")


def convert_maximum(b, x, other):
    """Elementwise max of two tensors (ties split the gradient, as torch)."""
    return b.op("maximum", x, other)


def convert_minimum(b, x, other):
    """Elementwise min of two tensors."""
    return b.op("minimum", x, other)


def convert_clamp(b, x, min=None, max=None):
    """clamp (clip) between numbers; tensor bounds become maximum and minimum."""
    if isinstance(min, dp.Node) or isinstance(max, dp.Node):
        if min is not None:
            x = b.op("maximum", x, min)
        return x if max is None else b.op("minimum", x, max)
    if min is None and max is None:
        return x
    return b.op("clip", x, min=None if min is None else float(min), max=None if max is None else float(max))


def convert_clamp_min(b, x, min):
    """max(x, min)."""
    return convert_clamp(b, x, min=min)


def convert_clamp_max(b, x, max):
    """min(x, max)."""
    return convert_clamp(b, x, max=max)


def convert_hardtanh(b, x, min_val=-1.0, max_val=1.0):
    """clip(x, min_val, max_val); relu6 is hardtanh(x, 0, 6)."""
    return b.op("clip", x, min=float(min_val), max=float(max_val))


def convert_relu6(b, x):
    """clip(x, 0, 6)."""
    return b.op("clip", x, min=0.0, max=6.0)


def convert_gelu(b, x, approximate="none"):
    """GELU, exact (erf) or with the tanh approximation."""
    return b.op("gelu", x, approximate=approximate)


def convert_softplus(b, x, beta=1, threshold=20):
    """log(1 + exp(beta x)) / beta, linear above threshold."""
    return b.op("softplus", x, beta=float(beta), threshold=float(threshold))


def convert_leaky_relu(b, x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return b.op("leaky_relu", x, negative_slope=float(negative_slope))


def convert_elu(b, x, alpha=1, scale=1, input_scale=1):
    """ELU; SELU's scales (scale, input_scale other than 1) are not converted."""
    if scale != 1 or input_scale != 1:
        raise NotImplementedError(f"elu with scale={scale} and input_scale={input_scale} (selu) has no dagprop op")
    return b.op("elu", x, alpha=float(alpha))


def convert_softmax(b, x, dim, half_to_float_or_dtype=None):
    """softmax along ``dim`` (softmax.int and _softmax)."""
    return b.op("softmax", x, axis=int(dim))


def convert_log_softmax(b, x, dim, half_to_float_or_dtype=None):
    """log_softmax along ``dim`` (log_softmax.int and _log_softmax)."""
    return b.op("log_softmax", x, axis=int(dim))


def convert_where(b, condition, x, other):
    """x where condition, else other."""
    return b.op("where", condition, x, other)


def convert_masked_fill(b, x, mask, value):
    """value where mask, else x."""
    return b.op("where", mask, value, x)


def _above(b, x, y):
    return b.op("step", b.op("sub", x, y))


def convert_gt(b, x, other):
    """x > other as 1.0 or 0.0 (no gradient)."""
    return _above(b, x, other)


def convert_lt(b, x, other):
    """x < other as 1.0 or 0.0."""
    return _above(b, other, x)


def convert_ge(b, x, other):
    """x >= other: 1 - (other > x)."""
    return b.op("sub", 1.0, _above(b, other, x))


def convert_le(b, x, other):
    """x <= other: 1 - (x > other)."""
    return b.op("sub", 1.0, _above(b, x, other))


def convert_ne(b, x, other):
    """x != other: (x > other) + (other > x)."""
    return b.op("add", _above(b, x, other), _above(b, other, x))


def convert_eq(b, x, other):
    """x == other: 1 - (x != other)."""
    return b.op("sub", 1.0, convert_ne(b, x, other))


def convert_logical_not(b, x):
    """1 - x on a 0/1 mask."""
    return b.op("sub", 1.0, x)
