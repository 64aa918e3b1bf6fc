"""Elementwise arithmetic: add, sub, mul, div, neg, pow, exp, log, reciprocal, step, erf, sqrt,
rsqrt, abs, where, maximum, minimum and clip.

Binary ops broadcast like NumPy; their vjps undo the broadcasting with
:func:`dagprop.unbroadcast`, so a bias added to every column gets the column sum.
The unary ones state their derivative once, and :meth:`dagprop.Op.elementwise` makes
their vjp, jvp, Jacobian and vjp_graph from it; the binary ones, pow, step, erf and where
have each rule written out: the vjp, the jvp (forward mode) and the vjp_graph (the vjp
built out of graph nodes, for ``backward(create_graph=True)`` and second derivatives).
At a kink the gradient is torch's: abs has slope 0 at 0, maximum and minimum split it in
halves at a tie, clip passes it at its bounds; the masks are built with comparisons
(``a > b`` on nodes is a ``step`` node), which pass no gradient. where's condition is
a 0/1 mask and gets no gradient either.
Each op also says how generated code writes it (:class:`dagprop.op.SourceForm`):
``a * b`` forward, ``d_a = d_z * b`` backward.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> a = g.param("a", [1.0, 2.0, 3.0])
>>> b = g.param("b", [3.0, 2.0, 1.0])
>>> top = a.maximum(b)
>>> g.forward(); g.backward(top, seed=[1.0, 1.0, 1.0])
>>> top.value, a.grad, b.grad
(array([3., 2., 3.]), array([0. , 0.5, 1. ]), array([1. , 0.5, 0. ]))
"""

from __future__ import annotations

import functools
import math

import numpy as np

import dagprop as dp
from dagprop import Op, broadcast_shape, unbroadcast
from dagprop.op import SourceForm
from dagprop.rules import broadcast_entries
from dagprop.backend import namespace
from ._common import erf, floats, numpy_call, same_shape


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


def _add_sparse_jacobian(a, b, *, out, needs):
    return _broadcast_entries(a, b, out, needs, 1.0, 1.0)


def _sub_sparse_jacobian(a, b, *, out, needs):
    return _broadcast_entries(a, b, out, needs, 1.0, -1.0)


def _mul_sparse_jacobian(a, b, *, out, needs):
    return _broadcast_entries(a, b, out, needs, b, a)


def _div_sparse_jacobian(a, b, *, out, needs):
    return _broadcast_entries(a, b, out, needs, 1.0 / b if needs[0] else None, -out / b if needs[1] else None)


def _broadcast_entries(a, b, out, needs, d_a, d_b):
    """Each output element depends on the element of a and of b broadcast to it, by d_a and d_b."""
    return (broadcast_entries(a.shape, out.shape, d_a) if needs[0] else None,
            broadcast_entries(b.shape, out.shape, d_b) if needs[1] else None)


def _div_jvp(tangents, a, b, *, out):
    ta, tb = tangents
    xp = namespace(out)
    return (None if ta is None else xp.broadcast_to(ta / b, out.shape),
            None if tb is None else xp.broadcast_to(-tb * out / b, out.shape))


def _div_vjp_graph(g, a, b, *, out, needs):
    return (unbroadcast(g / b, a.shape) if needs[0] else None,
            unbroadcast(-g * out / b, b.shape) if needs[1] else None)


def _add_jvp(tangents, a, b, *, out):
    xp = namespace(out)
    return tuple(None if t is None else xp.broadcast_to(t, out.shape) for t in tangents)


def _sub_jvp(tangents, a, b, *, out):
    ta, tb = tangents
    xp = namespace(out)
    return (None if ta is None else xp.broadcast_to(ta, out.shape),
            None if tb is None else xp.broadcast_to(-tb, out.shape))


def _sub_vjp_graph(g, a, b, *, out, needs):
    return (unbroadcast(g, a.shape) if needs[0] else None, unbroadcast(-g, b.shape) if needs[1] else None)


def _mul_jvp(tangents, a, b, *, out):
    ta, tb = tangents
    xp = namespace(out)
    return (None if ta is None else xp.broadcast_to(ta * b, out.shape),
            None if tb is None else xp.broadcast_to(a * tb, out.shape))


def _mul_vjp_graph(g, a, b, *, out, needs):
    return (unbroadcast(g * b, a.shape) if needs[0] else None,
            unbroadcast(g * a, b.shape) if needs[1] else None)


def _add_vjp_graph(g, a, b, *, out):
    return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


def _neg_derivative(x, *, out):
    return -1.0


def _step_forward(x):
    xp = namespace(x)
    return xp.astype(x > 0, xp.result_type(x.dtype, xp.float64))


def _step_vjp(g, x, *, out):
    return (None,)  # flat everywhere but at 0, where it has no derivative: no gradient flows through


def _step_jvp(tangents, x, *, out):
    return (None,)


def _step_vjp_graph(g, x, *, out):
    return (None,)


def _step_source(call):
    return f"({call.inputs[0]} > 0).astype(float)"


def _pow_forward(x, y=None, *, exponent=None):
    if (y is None) == (exponent is None):
        raise ValueError("pow takes either an exponent node or exponent=<number>, not both or neither")
    xp = namespace(x, y)
    return xp.pow(x, _exponent(xp, exponent) if y is None else y)


def _exponent(xp, exponent):
    """pow's exponent attribute (a number or a NumPy array) in the namespace of its base."""
    return exponent if xp is np or _number(exponent) else xp.asarray(exponent)


def _zero_where(xp, mask, value):
    """``value`` with 0 where ``mask`` holds; ``mask`` may be a plain bool, for a number exponent."""
    if isinstance(mask, (bool, np.bool_)):
        return xp.zeros_like(value) if mask else value
    return xp.where(mask, 0.0, value)


def _pow_shape(x, y=None, *, exponent=None):
    return x if y is None else broadcast_shape(x, y)


def _pow_vjp(g, x, y=None, *, out, needs, exponent=None):
    # torch's rules (pow_backward, pow_backward_self, pow_backward_exponent). Where the exponent
    # is 0, x ** 0 is the constant 1 and the gradient of x is 0, not g * 0 * x ** -1 (NaN at x = 0).
    # Where x is 0 and the exponent is >= 0, the exponent's gradient is 0, not out * log(0)
    # (NaN, or -inf). The masked terms may divide by zero: errstate keeps that quiet.
    xp = namespace(g, x, y)
    p = _exponent(xp, exponent) if y is None else y
    with np.errstate(divide="ignore", invalid="ignore"):
        gx = unbroadcast(_zero_where(xp, p == 0, g * p * xp.pow(x, p - 1)), x.shape) if needs[0] else None
        if y is None:
            return (gx,)
        # only here, when the exponent needs a gradient, is log(x) evaluated
        gy = unbroadcast(g * xp.where((x == 0) & (y >= 0), 0.0, out * xp.log(x)), y.shape) if needs[1] else None
    return gx, gy


def _pow_jvp(tangents, x, y=None, *, out, exponent=None):
    # the vjp's masks, for the same reasons: no x tangent where the exponent is 0, no exponent
    # tangent where x is 0 and the exponent >= 0
    tx, ty = tangents if len(tangents) == 2 else (tangents[0], None)
    xp = namespace(out)
    p = _exponent(xp, exponent) if y is None else y
    with np.errstate(divide="ignore", invalid="ignore"):
        from_x = None if tx is None else xp.broadcast_to(_zero_where(xp, p == 0, tx * p * xp.pow(x, p - 1)),
                                                         out.shape)
        if y is None:
            return (from_x,)
        from_y = None if ty is None else xp.broadcast_to(ty * xp.where((x == 0) & (y >= 0), 0.0, out * xp.log(x)),
                                                         out.shape)
    return from_x, from_y


def _pow_vjp_graph(g, x, y=None, *, out, needs, exponent=None):
    if y is None:
        return (_pow_number_base_grad(g, x, exponent) if needs[0] else None,)
    return (unbroadcast(_pow_node_base_grad(g, x, y), x.shape) if needs[0] else None,
            unbroadcast(_pow_node_exponent_grad(g, x, y, out), y.shape) if needs[1] else None)


def _pow_number_base_grad(g, x, p):
    # A number exponent is known when the nodes are built, so its 0 is handled here: x ** 0 is
    # the constant 1, and x's gradient is a const of zeros, which ignores g as the vjp does
    # (g * 0 would turn an inf or NaN arriving in g into NaN).
    if _number(p):
        if p == 0:
            return x.graph.const(np.zeros(x.shape))
        return g if p == 1 else g * (p * x ** (p - 1))
    # an array exponent: where it is 0, x ** 0 * 0 stands in for 0 * x ** -1 (NaN at x = 0)
    p = np.asarray(p, dtype=np.float64)
    return g * (p * x.graph.op("pow", x, exponent=np.where(p == 0, 0.0, p - 1)))


def _is_zero(node):
    """1 where ``node`` is 0, else 0, built of steps: it passes no gradient."""
    return 1.0 - (node > 0) - (node < 0)


def _pow_node_base_grad(g, x, y):
    # g * y * x ** (y - 1), except where both x and y are 0: there the vjp gives 0 and the
    # formula 0 * 0 ** -1 = NaN, so the exponent is raised to 0 there (0 * 0 ** 0 = 0). Away
    # from x = 0 the added term is exactly 0 and passes no gradient, so the node's own
    # derivatives are the formula's; at x = 0 they are what pow's vjp gives for the shifted power.
    return g * (y * x ** (y - 1.0 + _is_zero(x) * _is_zero(y)))


def _pow_node_exponent_grad(g, x, y, out):
    # g * out * log(x), except where x is 0 and y >= 0: there the vjp gives 0 and the formula
    # out * log(0) is NaN (y > 0) or -inf (y = 0), so log takes 1 instead of 0 there (out *
    # log(1) = 0). Where x is not 0 the added term is exactly 0 and passes no gradient.
    at_zero = _is_zero(x) * (1.0 - (y < 0))
    return g * (out * (x + at_zero).log())


def _exp_derivative(x, *, out):
    return out


def _log_derivative(x, *, out):
    return 1.0 / x


def _reciprocal_forward(x):
    return 1.0 / x


def _reciprocal_derivative(x, *, out):
    return -out * out


_TWO_OVER_ROOT_PI = 2.0 / math.sqrt(math.pi)

def _erf_forward(x):
    return erf(x)


def _erf_slope(x):
    """d erf(x) / dx = 2 / sqrt(pi) * exp(-x^2), on arrays."""
    return _TWO_OVER_ROOT_PI * namespace(x).exp(-x * x)


def _erf_vjp(g, x, *, out):
    return (g * _erf_slope(x),)


def _erf_jvp(tangents, x, *, out):
    (t,) = tangents
    return (None if t is None else t * _erf_slope(x),)


def _erf_vjp_graph(g, x, *, out):
    # the slope needs exp, which an elementwise derivative (given arrays or nodes) cannot call:
    # hence these rules by hand, the slope built here from nodes
    return (g * ((x * x * -1.0).exp() * _TWO_OVER_ROOT_PI),)


def _sqrt_derivative(x, *, out):
    with np.errstate(divide="ignore"):  # inf at 0, as in torch
        return 0.5 / out


def _rsqrt_forward(x):
    with np.errstate(divide="ignore"):  # inf at 0, as in torch
        return 1.0 / namespace(x).sqrt(x)


def _rsqrt_derivative(x, *, out):
    # d x^(-1/2) / dx = -1/2 x^(-3/2) = -1/2 out^3
    return -0.5 * out * out * out


def _abs_derivative(x, *, out):
    # sign(x), 0 at 0 as in torch; written with comparisons so that nodes build it too
    return floats(x > 0) * 1.0 - floats(x < 0)


def _clip_forward(x, *, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clip needs min, max or both (as torch.clamp)")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and not _number(bound):
            raise ValueError(f"clip's {name} must be a number or None, got {bound!r}")
    # torch.clamp: max wins where min > max, as np.clip (lower bound first, then upper) gives
    xp = namespace(x)
    if xp is np:
        return np.clip(x, min, max)
    lower = x if min is None else xp.where(x < min, float(min), x)  # the standard's clip refuses min > max
    return lower if max is None else xp.where(lower > max, float(max), lower)


def _clip_derivative(x, *, out, min=None, max=None):
    # torch's clamp_backward: the gradient passes where min <= x <= max, bounds included (so
    # nowhere when min > max)
    if min is not None and max is not None and min > max:
        return 0.0
    inside = 1.0
    if min is not None:
        inside = inside - floats(x < min)
    if max is not None:
        inside = inside - floats(x > max)
    return inside


def _where_forward(condition, a, b):
    return namespace(condition, a, b).where(_chosen(condition), a, b)


def _chosen(condition):
    """Where the 0/1 mask ``condition`` picks ``a``; read as > 0.5, so a nudged mask picks the same."""
    return condition > 0.5


def _where_shape(condition, a, b):
    return broadcast_shape(condition, a, b)


def _where_vjp(g, condition, a, b, *, out, needs):
    picked = _chosen(condition)
    xp = namespace(g)
    return (None,
            unbroadcast(xp.where(picked, g, 0.0), a.shape) if needs[1] else None,
            unbroadcast(xp.where(picked, 0.0, g), b.shape) if needs[2] else None)


def _where_jvp(tangents, condition, a, b, *, out):
    _, ta, tb = tangents
    picked = _chosen(condition)
    xp = namespace(out)
    return (None,
            None if ta is None else xp.broadcast_to(xp.where(picked, ta, 0.0), out.shape),
            None if tb is None else xp.broadcast_to(xp.where(picked, 0.0, tb), out.shape))


def _where_vjp_graph(g, condition, a, b, *, out, needs):
    picked = condition > 0.5  # a step node: the mask passes no gradient
    return (None,
            unbroadcast(g * picked, a.shape) if needs[1] else None,
            unbroadcast(g - g * picked, b.shape) if needs[2] else None)


def _larger_share(a, b):
    """How much of maximum(a, b)'s gradient goes to ``a``: 1 where a > b, 0 where a < b, half at a tie (torch).

    Written with comparisons, so ``a`` and ``b`` may be arrays or nodes (then it is built of steps).
    """
    return 0.5 + 0.5 * floats(a > b) - 0.5 * floats(a < b)


def _extremum_vjp(share, g, a, b, *, out, needs):
    # maximum's or minimum's vjp, and (given nodes) its vjp_graph: share builds its mask of
    # comparisons either way
    to_a = share(a, b)
    return (unbroadcast(g * to_a, a.shape) if needs[0] else None,
            unbroadcast(g * (1.0 - to_a), b.shape) if needs[1] else None)


def _extremum_jvp(share, tangents, a, b, *, out):
    ta, tb = tangents
    to_a = share(a, b)
    xp = namespace(out)
    return (None if ta is None else xp.broadcast_to(ta * to_a, out.shape),
            None if tb is None else xp.broadcast_to(tb * (1.0 - to_a), out.shape))


def _smaller_share(a, b):
    """How much of minimum(a, b)'s gradient goes to ``a``: 1 where a < b, 0 where a > b, half at a tie."""
    return _larger_share(b, a)


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _infix_source(operator, call):
    a, b = call.inputs
    return f"{a} {operator} {b}"


def _add_vjp_source(call):
    return call.sum_to(call.grad, 0), call.sum_to(call.grad, 1)


def _sub_vjp_source(call):
    return call.sum_to(call.grad, 0), call.sum_to(f"-{call.grad}", 1)


def _mul_vjp_source(call):
    a, b = call.inputs
    return call.sum_to(f"{call.grad} * {b}", 0), call.sum_to(f"{call.grad} * {a}", 1)


def _div_vjp_source(call):
    a, b = call.inputs
    return call.sum_to(f"{call.grad} / {b}", 0), call.sum_to(f"-{call.grad} * {call.out} / {b}", 1)


def _neg_source(call):
    return f"-{call.inputs[0]}"


def _neg_vjp_source(call):
    return (f"-{call.grad}",)


def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _pow_source(call):
    x = call.inputs[0]
    exponent = call.inputs[1] if len(call.inputs) == 2 else call.literal(call.attrs["exponent"])
    return f"{x} ** {exponent}" if _number(call.attrs.get("exponent", 0)) else None


def _pow_vjp_source(call):
    # Only for a number exponent other than 0, where the engine's rule is the textbook's; with an
    # exponent node the engine's guards at x = 0 (see _pow_vjp) are not worth writing out.
    p = call.attrs.get("exponent")
    if len(call.inputs) == 2 or not _number(p) or p == 0:
        return None
    x, g = call.inputs[0], call.grad
    if p == 1:
        return (g,)
    power = x if p == 2 else f"{x} ** {call.literal(p - 1)}"
    return (f"{g} * {call.literal(p)} * {power}",)


def _exp_derivative_source(call):
    return call.out


def _log_vjp_source(call):
    return (f"{call.grad} / {call.inputs[0]}",)


def _reciprocal_source(call):
    return f"1 / {call.inputs[0]}"


def _reciprocal_vjp_source(call):
    return (f"-{call.grad} * ({call.out} * {call.out})",)


def _erf_derivative_source(call):
    return f"{_TWO_OVER_ROOT_PI!r} * np.exp(-{call.inputs[0]} * {call.inputs[0]})"


def _sqrt_derivative_source(call):
    return f"0.5 / {call.out}"


def _rsqrt_source(call):
    return f"1 / np.sqrt({call.inputs[0]})"


def _rsqrt_derivative_source(call):
    return f"-0.5 * {call.out}**3"


def _abs_derivative_source(call):
    return f"np.sign({call.inputs[0]})"


def _clip_source(call):
    low, high = call.attrs.get("min"), call.attrs.get("max")
    return f"np.clip({call.inputs[0]}, {call.literal(low)}, {call.literal(high)})"


def _clip_derivative_source(call):
    x, low, high = call.inputs[0], call.attrs.get("min"), call.attrs.get("max")
    if low is not None and high is not None and low > high:
        return None
    bounds = ([f"({x} >= {call.literal(low)})"] if low is not None else []) + \
        ([f"({x} <= {call.literal(high)})"] if high is not None else [])
    return " & ".join(bounds)


def _where_source(call):
    condition, a, b = call.inputs
    return f"np.where({condition} > 0.5, {a}, {b})"


def _where_vjp_source(call):
    condition, _, _ = call.inputs
    return (f"np.zeros({condition}.shape)",
            call.sum_to(f"np.where({condition} > 0.5, {call.grad}, 0.0)", 1),
            call.sum_to(f"np.where({condition} > 0.5, 0.0, {call.grad})", 2))


def _extremum_vjp_source(wins, call):
    a, b = call.inputs
    to_a = f"(({a} {wins} {b}) + 0.5 * ({a} == {b}))"
    to_b = f"(({b} {wins} {a}) + 0.5 * ({a} == {b}))"
    return call.sum_to(f"{call.grad} * {to_a}", 0), call.sum_to(f"{call.grad} * {to_b}", 1)


def _binary_numpy_source(function, call):
    a, b = call.inputs
    return f"np.{function}({a}, {b})"


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


def _clip_example(rng):
    return ((3, 4),), {"min": -0.5, "max": 1.0}


def _where_example(rng):
    return (rng.integers(0, 2, (3, 1)).astype(float), (3, 4), (4,)), {}


def _binary_op(name, forward, vjp, source, doc, **rules):
    return Op(name, forward=forward, vjp=vjp, inputs=("a", "b"), shape=broadcast_shape, example=_binary,
              source=source, doc=doc, **rules)


def _infix(operator, vjp_source):
    return SourceForm(forward=functools.partial(_infix_source, operator), vjp=vjp_source)


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: add, sub, mul, div, neg, pow, exp, log, reciprocal, step, erf, sqrt, rsqrt, abs, where,
    maximum, minimum and clip."""
    return [
        _binary_op("add", np.add, _add_vjp, _infix("+", _add_vjp_source), "a + b, broadcasting",
                   jvp=_add_jvp, vjp_graph=_add_vjp_graph,
                   sparse_jacobian=_add_sparse_jacobian),
        _binary_op("sub", np.subtract, _sub_vjp, _infix("-", _sub_vjp_source), "a - b, broadcasting",
                   jvp=_sub_jvp, vjp_graph=_sub_vjp_graph,
                   sparse_jacobian=_sub_sparse_jacobian),
        _binary_op("mul", np.multiply, _mul_vjp, _infix("*", _mul_vjp_source), "a * b elementwise, broadcasting",
                   jvp=_mul_jvp, vjp_graph=_mul_vjp_graph,
                   sparse_jacobian=_mul_sparse_jacobian),
        Op("div", forward=np.divide, vjp=_div_vjp, jvp=_div_jvp, vjp_graph=_div_vjp_graph, inputs=("a", "b"),
           sparse_jacobian=_div_sparse_jacobian,
           shape=broadcast_shape, example=_divide_example, source=_infix("/", _div_vjp_source),
           doc="a / b elementwise, broadcasting"),
        Op.elementwise("neg", np.negative, _neg_derivative, example=_unary,
                       source=SourceForm(forward=_neg_source, vjp=_neg_vjp_source), doc="-x"),
        Op("pow", forward=_pow_forward, vjp=_pow_vjp, jvp=_pow_jvp, vjp_graph=_pow_vjp_graph, inputs=("x", "y"),
           min_inputs=1, shape=_pow_shape,
           example=_pow_example, source=SourceForm(forward=_pow_source, vjp=_pow_vjp_source),
           doc="x ** exponent (a number attribute) or x ** y (a node), elementwise"),
        Op.elementwise("exp", np.exp, _exp_derivative, example=_unary,
                       source=SourceForm(forward=numpy_call("exp"), derivative=_exp_derivative_source), doc="e ** x"),
        Op.elementwise("log", np.log, _log_derivative, example=_positive,
                       source=SourceForm(forward=numpy_call("log"), vjp=_log_vjp_source), doc="natural logarithm"),
        Op.elementwise("reciprocal", _reciprocal_forward, _reciprocal_derivative, example=_positive,
                       source=SourceForm(forward=_reciprocal_source, vjp=_reciprocal_vjp_source), doc="1 / x"),
        Op("step", forward=_step_forward, vjp=_step_vjp, jvp=_step_jvp,
           vjp_graph=_step_vjp_graph, shape=same_shape, example=_unary, source=SourceForm(forward=_step_source),
           doc="1 where x > 0, else 0 (Heaviside); passes no gradient. x > y on nodes builds it"),
        Op("erf", forward=_erf_forward, vjp=_erf_vjp, jvp=_erf_jvp, vjp_graph=_erf_vjp_graph, shape=same_shape,
           example=_unary, source=SourceForm(derivative=_erf_derivative_source),
           doc="the error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x, elementwise"),
        Op.elementwise("sqrt", np.sqrt, _sqrt_derivative, example=_positive,
                       source=SourceForm(forward=numpy_call("sqrt"), derivative=_sqrt_derivative_source),
                       doc="square root, elementwise"),
        Op.elementwise("rsqrt", _rsqrt_forward, _rsqrt_derivative, example=_positive,
                       source=SourceForm(forward=_rsqrt_source, derivative=_rsqrt_derivative_source),
                       doc="1 / sqrt(x), elementwise"),
        Op.elementwise("abs", np.abs, _abs_derivative, example=_unary,
                       source=SourceForm(forward=numpy_call("abs"), derivative=_abs_derivative_source),
                       doc="|x|, elementwise; its slope is sign(x), 0 at 0 (as in torch)"),
        Op("where", forward=_where_forward, vjp=_where_vjp, jvp=_where_jvp, vjp_graph=_where_vjp_graph,
           inputs=("condition", "a", "b"), shape=_where_shape, example=_where_example,
           source=SourceForm(forward=_where_source, vjp=_where_vjp_source),
           doc="a where the 0/1 mask condition is 1 (read as > 0.5), else b, broadcasting; "
               "the mask gets no gradient"),
        _binary_op("maximum", np.maximum, functools.partial(_extremum_vjp, _larger_share),
                   SourceForm(forward=functools.partial(_binary_numpy_source, "maximum"),
                              vjp=functools.partial(_extremum_vjp_source, ">")),
                   "the larger of a and b, elementwise, broadcasting; a tie splits the gradient in halves (torch)",
                   jvp=functools.partial(_extremum_jvp, _larger_share),
                   vjp_graph=functools.partial(_extremum_vjp, _larger_share)),
        _binary_op("minimum", np.minimum, functools.partial(_extremum_vjp, _smaller_share),
                   SourceForm(forward=functools.partial(_binary_numpy_source, "minimum"),
                              vjp=functools.partial(_extremum_vjp_source, "<")),
                   "the smaller of a and b, elementwise, broadcasting; a tie splits the gradient in halves (torch)",
                   jvp=functools.partial(_extremum_jvp, _smaller_share),
                   vjp_graph=functools.partial(_extremum_vjp, _smaller_share)),
        Op.elementwise("clip", _clip_forward, _clip_derivative, example=_clip_example,
                       source=SourceForm(forward=_clip_source, derivative=_clip_derivative_source),
                       doc="x held within [min, max] (torch.clamp; either bound may be None); the gradient "
                           "passes where min <= x <= max"),
    ]
