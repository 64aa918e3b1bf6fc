"""Activations: relu, sigmoid, tanh (elementwise), softmax and log_softmax (along an axis).

The elementwise ones are each a forward and a derivative (:meth:`dagprop.Op.elementwise`),
from which every rule is built. softmax and log_softmax have theirs written out: the
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
"""

from __future__ import annotations

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.op import SourceForm
from ._common import check_axis, log_softmax, numpy_call, softmax, softmax_backward


def _relu_forward(x):
    return np.maximum(x, 0.0)


def _relu_derivative(x, *, out):
    return x > 0  # at exactly 0 we take the derivative to be 0, as most libraries do


def _sigmoid_forward(x):
    # 1 / (1 + exp(-x)) written so that exp never overflows
    return np.exp(-np.logaddexp(0.0, -x))


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
    return (others[:, :, None] == others[:, None, :]).all(axis=0)


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
    s = out.ravel()
    jacobian = np.diag(s) - _same_slice(out.shape, axis) * np.outer(s, s)
    return (jacobian.reshape(out.shape + x.shape),)


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
    return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)


def _log_softmax_jvp(tangents, x, *, out, axis=-1):
    (t,) = tangents
    return (t - (np.exp(out) * t).sum(axis=axis, keepdims=True),)


def _log_softmax_vjp_graph(g, x, *, out, axis=-1):
    return (g - out.exp() * g.sum(axis=axis, keepdims=True),)


def _log_softmax_jacobian(x, *, out, axis=-1):
    # d log s_i / d x_j = [i == j] - s_j, within one slice along the axis
    s = np.exp(out).ravel()
    jacobian = np.eye(s.size) - _same_slice(out.shape, axis) * s[None, :]
    return (jacobian.reshape(out.shape + x.shape),)


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
    return f"1 - {call.out}**2"


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


def _matrix(rng):
    return ((3, 4),), {}


def _logits_by_columns(rng):
    return (rng.normal(0.0, 2.0, (4, 3)),), {"axis": 0}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: relu, sigmoid, tanh, softmax and log_softmax."""
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
    ]
