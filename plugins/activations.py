"""Activations: relu, sigmoid, tanh (elementwise), softmax and log_softmax (along an axis), and
the elementwise ones of today's networks: gelu, silu, softplus, leaky_relu, elu, log_sigmoid,
and dropout.

relu, sigmoid, tanh, leaky_relu and dropout are each a forward and a derivative
(:meth:`dagprop.Op.elementwise`), from which every rule is built: their derivatives are
written with operators and comparisons only, so the same function serves arrays (the vjp,
the jvp, the diagonal Jacobian) and graph nodes (the vjp_graph). gelu, silu, softplus,
elu and log_sigmoid need exp, tanh or erf in their derivatives, which arrays do not have
as methods: each states its derivative twice, once on arrays and once on nodes
(``x.exp()``, ``x.sigmoid()``, ``x.erf()``), and every other rule is built from those two.
gelu also opens up (``decompose``) into its formula, with erf or with the tanh
approximation. dropout's mask is drawn from its ``seed`` attribute, never from ``x``, so
the same seed drops the same elements in every run and every rule.

softmax and log_softmax have their rules written out: the
vjp, the Jacobian, the jvp (forward mode) and the vjp_graph, the vjp built out of graph
nodes from the op's own output (``s * (g - sum(g * s))``), so that
``backward(create_graph=True)`` and second derivatives need no circuit.
softmax is also a composite op: its ``decompose`` builds the stable textbook circuit
``exp(x - max(x)) / sum(exp(x - max(x)))``, which its own forward computes too, so
that large inputs cannot overflow. Both give the same values and gradients.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [0.0, 0.0, 0.0, 0.0])
>>> p = x.softmax()
>>> g.forward(); p.value
array([0.25, 0.25, 0.25, 0.25])

>>> h = dp.Graph()
>>> z = h.param("z", [-1.0, 0.0, 2.0])
>>> exact, tanh_form = z.gelu(), z.gelu(approximate="tanh")
>>> kept = z.dropout(p=0.5, training=True, seed=0)
>>> h.forward(); exact.value.round(4), tanh_form.value.round(4), kept.value
(array([-0.1587,  0.    ,  1.9545]), array([-0.1588,  0.    ,  1.9546]), array([-2.,  0.,  0.]))
"""

from __future__ import annotations

import functools
import math

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.op import SourceForm
from dagprop.backend import is_foreign, namespace
from ._common import check_axis, erf, floats, log_softmax, numpy_call, same_shape, softmax, softmax_backward

_NUMBER = (int, float, np.integer, np.floating)


def _relu_forward(x):
    return np.maximum(x, 0.0) if x.__class__ is np.ndarray else namespace(x).maximum(x, 0.0)


def _relu_derivative(x, *, out):
    mask = x > 0  # at exactly 0 we take the derivative to be 0, as most libraries do
    return mask if mask.__class__ is np.ndarray else floats(mask)


def _sigmoid_forward(x):
    # 1 / (1 + exp(-x)) written so that exp never overflows
    xp = namespace(x)
    return xp.exp(-xp.logaddexp(0.0, -x))


def _sigmoid_derivative(x, *, out):
    return out * (1.0 - out)


def _tanh_derivative(x, *, out):
    return 1.0 - out * out


def _along_axis_shape(x, *, axis=-1):
    check_axis(axis, len(x))
    return x


def _same_slice(shape, axis):
    """For every pair of elements (flattened), whether they lie on the same 1-D slice along ``axis``."""
    coords = np.indices(shape).reshape(len(shape), -1)
    others = np.delete(coords, axis % len(shape), axis=0)
    return (others[:, :, None] == others[:, None, :]).all(axis=0).astype(np.float64)


def _softmax_forward(x, *, axis=-1):
    return softmax(x, axis)


def _softmax_vjp(g, x, *, out, axis=-1):
    return (softmax_backward(g, out, axis),)


def _softmax_jvp(tangents, x, *, out, axis=-1):
    # softmax's Jacobian is symmetric, so pushing a tangent is pulling a gradient
    (t,) = tangents
    return (softmax_backward(t, out, axis),)


def _softmax_vjp_graph(g, x, *, out, axis=-1):
    return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


def _softmax_jacobian(x, *, out, axis=-1):
    # diag(s) - s s^T on each slice along the axis; elements of different slices do not interact
    xp = namespace(out)
    s = xp.reshape(out, (-1,))
    jacobian = xp.eye(s.size, dtype=s.dtype) * s - xp.asarray(_same_slice(out.shape, axis)) * (s[:, None] * s)
    return (xp.reshape(jacobian, out.shape + x.shape),)


def _softmax_decompose(x, *, axis=-1):
    # softmax is shift-invariant, so subtracting each slice's max changes nothing but keeps
    # exp at or below 1 (no overflow) with a 1 in every sum (no 0 to invert). The gradient
    # through the max cancels (exactly in exact arithmetic; here up to rounding), so the
    # circuit's gradients are the op's.
    if x.shape is not None and x.shape[axis] == 0:
        return x  # an empty axis: nothing to normalise (and no max), so no circuit; the op stays a box
    e = (x - x.max(axis=axis, keepdims=True)).exp()
    return e * e.sum(axis=axis, keepdims=True).reciprocal()


def _log_softmax_forward(x, *, axis=-1):
    return log_softmax(x, axis)


def _log_softmax_vjp(g, x, *, out, axis=-1):
    xp = namespace(g)
    return (g - xp.exp(out) * xp.sum(g, axis=axis, keepdims=True),)


def _log_softmax_jvp(tangents, x, *, out, axis=-1):
    (t,) = tangents
    xp = namespace(t)
    return (t - xp.sum(xp.exp(out) * t, axis=axis, keepdims=True),)


def _log_softmax_vjp_graph(g, x, *, out, axis=-1):
    return (g - out.exp() * g.sum(axis=axis, keepdims=True),)


def _log_softmax_jacobian(x, *, out, axis=-1):
    # d log s_i / d x_j = [i == j] - s_j, within one slice along the axis
    xp = namespace(out)
    s = xp.reshape(xp.exp(out), (-1,))
    jacobian = xp.eye(s.size, dtype=s.dtype) - xp.asarray(_same_slice(out.shape, axis)) * s
    return (xp.reshape(jacobian, out.shape + x.shape),)


# -- elementwise ops whose derivative needs exp, tanh or erf ----------------------------------


def _smooth_elementwise(name, forward, derivative, derivative_nodes, **fields) -> Op:
    """An elementwise op whose derivative is stated twice: on arrays, and on graph nodes.

    ``derivative(x, *, out, **attrs)`` gives d out / d x on arrays (NumPy functions allowed);
    ``derivative_nodes`` the same built from nodes (``x.exp()``, ``x.erf()``), for the
    vjp_graph. The vjp, the jvp and the diagonal Jacobian all come from the first.
    """
    return Op(name, forward=forward, vjp=functools.partial(_times_slope, derivative),
              jvp=functools.partial(_tangent_times_slope, derivative),
              jacobian=functools.partial(_diagonal_jacobian, derivative),
              vjp_graph=functools.partial(_times_slope, derivative_nodes), **fields)


def _times_slope(derivative, g, x, *, out, **attrs):
    return (g * derivative(x, out=out, **attrs),)


def _tangent_times_slope(derivative, tangents, x, *, out, **attrs):
    (t,) = tangents
    return (None if t is None else t * derivative(x, out=out, **attrs),)


def _diagonal_jacobian(derivative, x, *, out, **attrs):
    """The derivative on the diagonal: each output element depends on its own input element only."""
    xp = namespace(x)
    if xp is not np:
        diagonal = xp.reshape(xp.broadcast_to(xp.asarray(derivative(x, out=out, **attrs), dtype=x.dtype), x.shape),
                              (1, x.size))
        jacobian = xp.where(xp.eye(x.size, dtype=xp.bool), diagonal, xp.zeros((), dtype=x.dtype))
        return (xp.reshape(jacobian, out.shape + x.shape),)
    jacobian = np.zeros((x.size, x.size))
    np.fill_diagonal(jacobian, np.broadcast_to(derivative(x, out=out, **attrs), x.shape).ravel())
    return (jacobian.reshape(out.shape + x.shape),)


def _check_number(value, what: str, *, positive: bool = False) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{what} must be > 0, got {value!r}")


def _stable_sigmoid(x):
    xp = namespace(x)
    return xp.exp(-xp.logaddexp(0.0, -x))


# gelu: x * Phi(x), Phi the standard normal CDF; "tanh" is the approximation of GPT-2 and BERT.
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715
_GELU_FORMS = ("none", "tanh")


def _gelu_shape(x, *, approximate="none"):
    if approximate not in _GELU_FORMS:
        raise ValueError(f"approximate must be 'none' (exact, with erf) or 'tanh', got {approximate!r}")
    return x


def _gelu_tanh_inner(x):
    """sqrt(2/pi) * (x + 0.044715 x^3), the argument of the tanh approximation (arrays or nodes)."""
    return (x + x * x * x * _TANH_CUBIC) * _TANH_SCALE


def _gelu_forward(x, *, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + namespace(x).tanh(_gelu_tanh_inner(x)))
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


def _gelu_derivative(x, *, out, approximate="none"):
    xp = namespace(x)
    if approximate == "tanh":
        t = xp.tanh(_gelu_tanh_inner(x))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _TANH_SCALE * (1.0 + 3.0 * _TANH_CUBIC * x * x)
    # Phi(x) + x * phi(x), phi the standard normal density
    cdf = 0.5 * (1.0 + erf(x * _SQRT_HALF))
    return cdf + x * xp.exp(-0.5 * x * x) * _INV_SQRT_TWO_PI


def _gelu_derivative_nodes(x, *, out, approximate="none"):
    if approximate == "tanh":
        t = _gelu_tanh_inner(x).tanh()
        return (1.0 + t) * 0.5 + x * 0.5 * (1.0 - t * t) * _TANH_SCALE * (1.0 + x * x * (3.0 * _TANH_CUBIC))
    return ((x * _SQRT_HALF).erf() + 1.0) * 0.5 + x * (x * x * -0.5).exp() * _INV_SQRT_TWO_PI


def _gelu_decompose(x, *, approximate="none"):
    if approximate == "tanh":
        return x * 0.5 * (_gelu_tanh_inner(x).tanh() + 1.0)
    return x * 0.5 * ((x * _SQRT_HALF).erf() + 1.0)


def _silu_forward(x):
    return x * _stable_sigmoid(x)


def _silu_derivative(x, *, out):
    s = _stable_sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _silu_derivative_nodes(x, *, out):
    s = x.sigmoid()
    return s * (1.0 + x * (1.0 - s))


def _softplus_shape(x, *, beta=1.0, threshold=20.0):
    _check_number(beta, "beta", positive=True)
    _check_number(threshold, "threshold")
    return x


def _softplus_forward(x, *, beta=1.0, threshold=20.0):
    # torch's: linear where beta * x > threshold, where log(1 + exp(beta x)) / beta equals x to rounding
    scaled = beta * x
    xp = namespace(x)
    return xp.where(scaled > threshold, x, xp.logaddexp(0.0, scaled) / beta)


def _softplus_derivative(x, *, out, beta=1.0, threshold=20.0):
    scaled = beta * x
    return namespace(x).where(scaled > threshold, 1.0, _stable_sigmoid(scaled))


def _softplus_derivative_nodes(x, *, out, beta=1.0, threshold=20.0):
    scaled = x * beta
    linear = scaled > threshold
    return linear + (1.0 - linear) * scaled.sigmoid()


def _leaky_relu_forward(x, *, negative_slope=0.01):
    # checked here: Op.elementwise gives the op its shape rule, which takes no attributes
    _check_number(negative_slope, "negative_slope")
    return namespace(x).where(x > 0, x, negative_slope * x)


def _leaky_relu_derivative(x, *, out, negative_slope=0.01):
    # the slope at exactly 0 is negative_slope, as in torch
    return floats(x > 0) * (1.0 - negative_slope) + negative_slope


def _elu_shape(x, *, alpha=1.0):
    _check_number(alpha, "alpha")
    return x


def _elu_forward(x, *, alpha=1.0):
    xp = namespace(x)
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0.0)))


def _elu_derivative(x, *, out, alpha=1.0):
    # the slope at exactly 0 is alpha, as in torch; exp of the negative part only, so it cannot overflow
    xp = namespace(x)
    return xp.where(x > 0, 1.0, alpha * xp.exp(xp.minimum(x, 0.0)))


def _elu_derivative_nodes(x, *, out, alpha=1.0):
    positive = x > 0
    negative = 1.0 - positive
    return positive + negative * (x * negative).exp() * alpha


def _log_sigmoid_forward(x):
    return -namespace(x).logaddexp(0.0, -x)


def _log_sigmoid_derivative(x, *, out):
    return _stable_sigmoid(-x)  # 1 - sigmoid(x), without the cancellation at large x


def _log_sigmoid_derivative_nodes(x, *, out):
    return (-x).sigmoid()


# dropout: the mask is drawn from the seed, never from x, so every rule multiplies by the same one


def _check_dropout(p, training, seed):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, _NUMBER) or not 0 <= p <= 1:
        raise ValueError(f"p, the probability of dropping an element, must be a number in [0, 1], got {p!r}")
    if not isinstance(training, (bool, np.bool_)):
        raise ValueError(f"training must be True or False, got {training!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 (for numpy.random.default_rng), got {seed!r}")


def _dropout_scale(shape, p, seed):
    """What each element is multiplied by: 1 / (1 - p) where it is kept (a draw >= p), 0 where it is dropped."""
    kept = np.random.default_rng(seed).random(shape) >= p
    return kept * (1.0 / (1.0 - p)) if p < 1 else np.zeros(shape)


def _dropout_forward(x, *, p=0.5, training=False, seed=0):
    # checked here: Op.elementwise gives the op its shape rule, which takes no attributes
    _check_dropout(p, training, seed)
    return x * _dropout_mask_for(x, p, seed) if training else x


def _dropout_derivative(x, *, out, p=0.5, training=False, seed=0):
    # an array built from x's shape alone, so it serves graph nodes too: a constant mask
    return _dropout_mask_for(x, p, seed) if training else 1.0


def _dropout_mask_for(x, p, seed):
    """The mask, drawn by NumPy from the seed whatever the backend (so every backend drops the same
    elements), in the namespace of ``x`` when ``x`` is an array of another library."""
    scale = _dropout_scale(x.shape, p, seed)
    return namespace(x).asarray(scale) if is_foreign(x) else scale


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _relu_source(call):
    return f"np.maximum({call.inputs[0]}, 0.0)"


def _relu_derivative_source(call):
    return f"{call.inputs[0]} > 0"


def _sigmoid_source(call):
    # the textbook form; it agrees with the stable forward above except below about -709, where
    # exp(-x) overflows (a RuntimeWarning) and it gives 0 for a number smaller than 1e-308
    return f"1 / (1 + np.exp(-{call.inputs[0]}))"


def _sigmoid_derivative_source(call):
    return f"{call.out} * (1 - {call.out})"


def _tanh_derivative_source(call):
    return f"1 - {call.out} * {call.out}"


def _axis_keyword(call):
    return f"axis={call.literal(call.attrs.get('axis', -1))}, keepdims=True"


def _softmax_source(call):
    # the forward's own two steps: shift by the max (so exp cannot overflow), then normalise
    x, s = call.inputs[0], call.out
    if 0 in call.shapes[0]:
        return None
    return [f"{s} = np.exp({x} - {x}.max({_axis_keyword(call)}))",
            f"{s} = {s} / {s}.sum({_axis_keyword(call)})"]


def _softmax_vjp_source(call):
    s, g = call.out, call.grad
    return (f"{s} * ({g} - ({g} * {s}).sum({_axis_keyword(call)}))",)


def _log_softmax_source(call):
    x, y = call.inputs[0], call.out
    if 0 in call.shapes[0]:
        return None
    return [f"{y} = {x} - {x}.max({_axis_keyword(call)})",
            f"{y} = {y} - np.log(np.exp({y}).sum({_axis_keyword(call)}))"]


def _log_softmax_vjp_source(call):
    y, g = call.out, call.grad
    return (f"{g} - np.exp({y}) * {g}.sum({_axis_keyword(call)})",)


def _gelu_source(call):
    if call.attrs.get("approximate", "none") != "tanh":
        return None  # numpy has no erf: the line calls the op's own forward
    x = call.inputs[0]
    return f"0.5 * {x} * (1 + np.tanh({_TANH_SCALE!r} * ({x} + {_TANH_CUBIC!r} * {x}**3)))"


def _gelu_derivative_source(call):
    if call.attrs.get("approximate", "none") != "tanh":
        return None
    x = call.inputs[0]
    t = f"np.tanh({_TANH_SCALE!r} * ({x} + {_TANH_CUBIC!r} * {x}**3))"
    return f"0.5 * (1 + {t}) + 0.5 * {x} * (1 - {t}**2) * {_TANH_SCALE!r} * (1 + {3 * _TANH_CUBIC!r} * {x}**2)"


def _silu_source(call):
    return f"{call.inputs[0]} / (1 + np.exp(-{call.inputs[0]}))"


def _silu_derivative_source(call):
    x = call.inputs[0]
    return f"(1 + np.exp(-{x}) + {x} * np.exp(-{x})) / (1 + np.exp(-{x}))**2"


def _softplus_source(call):
    x, beta, threshold = call.inputs[0], call.attrs.get("beta", 1.0), call.attrs.get("threshold", 20.0)
    scaled = x if beta == 1 else f"{call.literal(beta)} * {x}"
    soft = f"np.logaddexp(0, {scaled})" + ("" if beta == 1 else f" / {call.literal(beta)}")
    return f"np.where({scaled} > {call.literal(threshold)}, {x}, {soft})"


def _softplus_derivative_source(call):
    x, beta, threshold = call.inputs[0], call.attrs.get("beta", 1.0), call.attrs.get("threshold", 20.0)
    scaled = x if beta == 1 else f"{call.literal(beta)} * {x}"
    negated = f"-{x}" if beta == 1 else f"-({scaled})"
    return f"np.where({scaled} > {call.literal(threshold)}, 1.0, 1 / (1 + np.exp({negated})))"


def _leaky_relu_source(call):
    x = call.inputs[0]
    return f"np.where({x} > 0, {x}, {call.literal(call.attrs.get('negative_slope', 0.01))} * {x})"


def _leaky_relu_derivative_source(call):
    return f"np.where({call.inputs[0]} > 0, 1.0, {call.literal(call.attrs.get('negative_slope', 0.01))})"


def _elu_source(call):
    x = call.inputs[0]
    return f"np.where({x} > 0, {x}, {call.literal(call.attrs.get('alpha', 1.0))} * np.expm1(np.minimum({x}, 0)))"


def _elu_derivative_source(call):
    x = call.inputs[0]
    return f"np.where({x} > 0, 1.0, {call.literal(call.attrs.get('alpha', 1.0))} * np.exp(np.minimum({x}, 0)))"


def _log_sigmoid_source(call):
    return f"-np.logaddexp(0, -{call.inputs[0]})"


def _log_sigmoid_derivative_source(call):
    return f"1 / (1 + np.exp({call.inputs[0]}))"


def _dropout_source(call):
    if not call.attrs.get("training", False):
        return f"{call.inputs[0]}"
    return None  # the mask comes from numpy's generator: the line calls the op's own forward


def _dropout_derivative_source(call):
    return "1.0" if not call.attrs.get("training", False) else None


def _matrix(rng):
    return ((3, 4),), {}


def _logits_by_columns(rng):
    return (rng.normal(0.0, 2.0, (4, 3)),), {"axis": 0}


def _gelu_example(rng):
    return ((3, 4),), {"approximate": "tanh"}


def _softplus_example(rng):
    return (rng.normal(0.0, 3.0, (3, 4)),), {"beta": 2.0, "threshold": 5.0}


def _away_from_zero(rng):
    # off the kink at 0, where finite differences straddle two slopes
    x = rng.standard_normal((3, 4))
    return (x + np.where(x >= 0, 0.1, -0.1),), {}


def _leaky_relu_example(rng):
    return _away_from_zero(rng)[0], {"negative_slope": 0.1}


def _elu_example(rng):
    return _away_from_zero(rng)[0], {"alpha": 1.5}


def _dropout_example(rng):
    # the mask's seed left at its default: check_op takes a keyword seed of its own
    return ((3, 4),), {"p": 0.25, "training": True}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: relu, sigmoid, tanh, softmax, log_softmax, gelu, silu, softplus, leaky_relu, elu,
    log_sigmoid and dropout."""
    return [
        Op.elementwise("relu", _relu_forward, _relu_derivative, example=_matrix,
                       source=SourceForm(forward=_relu_source, derivative=_relu_derivative_source),
                       doc="max(x, 0), elementwise"),
        Op.elementwise("sigmoid", _sigmoid_forward, _sigmoid_derivative, example=_matrix,
                       source=SourceForm(forward=_sigmoid_source, derivative=_sigmoid_derivative_source),
                       doc="1 / (1 + exp(-x)), elementwise"),
        Op.elementwise("tanh", np.tanh, _tanh_derivative, example=_matrix,
                       source=SourceForm(forward=numpy_call("tanh"), derivative=_tanh_derivative_source),
                       doc="hyperbolic tangent, elementwise"),
        Op("softmax", forward=_softmax_forward, vjp=_softmax_vjp, jacobian=_softmax_jacobian, jvp=_softmax_jvp,
           vjp_graph=_softmax_vjp_graph, decompose=_softmax_decompose, shape=_along_axis_shape,
           example=_logits_by_columns,
           source=SourceForm(forward=_softmax_source, vjp=_softmax_vjp_source),
           doc="exp(x) / sum(exp(x)) along axis (default the last)"),
        Op("log_softmax", forward=_log_softmax_forward, vjp=_log_softmax_vjp, jacobian=_log_softmax_jacobian,
           jvp=_log_softmax_jvp, vjp_graph=_log_softmax_vjp_graph,
           shape=_along_axis_shape, example=_logits_by_columns,
           source=SourceForm(forward=_log_softmax_source, vjp=_log_softmax_vjp_source),
           doc="x - log(sum(exp(x))) along axis (default the last), computed stably"),
        _smooth_elementwise("gelu", _gelu_forward, _gelu_derivative, _gelu_derivative_nodes,
                            decompose=_gelu_decompose, shape=_gelu_shape, example=_gelu_example,
                            source=SourceForm(forward=_gelu_source, derivative=_gelu_derivative_source),
                            doc="x * Phi(x), Phi the standard normal CDF (approximate='none', with erf) or "
                                "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh')"),
        _smooth_elementwise("silu", _silu_forward, _silu_derivative, _silu_derivative_nodes,
                            shape=same_shape, example=_matrix,
                            source=SourceForm(forward=_silu_source, derivative=_silu_derivative_source),
                            doc="x * sigmoid(x) (swish), elementwise"),
        _smooth_elementwise("softplus", _softplus_forward, _softplus_derivative, _softplus_derivative_nodes,
                            shape=_softplus_shape, example=_softplus_example,
                            source=SourceForm(forward=_softplus_source, derivative=_softplus_derivative_source),
                            doc="log(1 + exp(beta x)) / beta, and x where beta x > threshold (torch's), elementwise"),
        Op.elementwise("leaky_relu", _leaky_relu_forward, _leaky_relu_derivative, example=_leaky_relu_example,
                       source=SourceForm(forward=_leaky_relu_source, derivative=_leaky_relu_derivative_source),
                       doc="x where x > 0, else negative_slope * x, elementwise"),
        _smooth_elementwise("elu", _elu_forward, _elu_derivative, _elu_derivative_nodes,
                            shape=_elu_shape, example=_elu_example,
                            source=SourceForm(forward=_elu_source, derivative=_elu_derivative_source),
                            doc="x where x > 0, else alpha * (exp(x) - 1), elementwise"),
        _smooth_elementwise("log_sigmoid", _log_sigmoid_forward, _log_sigmoid_derivative,
                            _log_sigmoid_derivative_nodes, shape=same_shape, example=_matrix,
                            source=SourceForm(forward=_log_sigmoid_source, derivative=_log_sigmoid_derivative_source),
                            doc="log(sigmoid(x)) = -log(1 + exp(-x)), computed stably, elementwise"),
        Op.elementwise("dropout", _dropout_forward, _dropout_derivative, example=_dropout_example,
                       source=SourceForm(forward=_dropout_source, derivative=_dropout_derivative_source),
                       doc="x (training=False), or x times a mask drawn from seed, kept with probability 1 - p "
                           "and scaled by 1 / (1 - p) (training=True)"),
    ]
