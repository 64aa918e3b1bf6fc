"""Losses: l2_loss, squared_error and cross_entropy, each returning one number.

Every input gets a gradient, targets included: a target may itself be computed
by the graph (a target that is data, such as one-hot labels fed as an input, needs
none and gets none). l2_loss and squared_error let one side broadcast against the
other (a scalar target, a row repeated down a batch), but refuse shapes such as (3,)
and (3, 1) that would broadcast each other into a (3, 3) grid of comparisons.

Each loss has a vjp, a jvp (forward mode) and a vjp_graph: the vjp built out of
graph nodes, for ``backward(create_graph=True)`` and second derivatives.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> logits = g.param("logits", [[0.0, 0.0], [0.0, 0.0]])
>>> target = g.input("target", [[1.0, 0.0], [0.0, 1.0]])
>>> L = g.ops.cross_entropy(logits, target)
>>> g.forward(); g.backward(L)
>>> round(float(L.value), 6), logits.grad
(0.693147, array([[-0.25,  0.25],
       [ 0.25, -0.25]]))
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op, broadcast_shape, unbroadcast
from dagprop.op import SourceForm
from dagprop.backend import namespace
from ._common import log_softmax, softmax


def _elementwise_loss_shape(a, b):
    joined = broadcast_shape(a, b)
    if joined not in (tuple(a), tuple(b)):
        raise ValueError(f"shapes {a} and {b} broadcast to {joined}, larger than both; a loss compares "
                         f"element with element, so reshape one side")
    return ()


def _l2_loss_forward(z, y):
    residual = z - y
    if residual.__class__ is np.ndarray:
        return np.asarray(0.5 * np.vdot(residual, residual))
    return 0.5 * _squared_norm(namespace(residual), residual)


def _squared_norm(xp, residual):
    """The sum of squares, as a 0-d array: by np.vdot (BLAS) for NumPy arrays, by the standard's vecdot otherwise."""
    if xp is np:
        return np.asarray(np.vdot(residual, residual))
    flat = xp.reshape(residual, (-1,))
    return xp.vecdot(flat, flat)


def _l2_loss_vjp(g, z, y, *, out, needs):
    residual = g * (z - y)
    return (unbroadcast(residual, z.shape) if needs[0] else None,
            unbroadcast(-residual, y.shape) if needs[1] else None)


def _squared_error_forward(yhat, y):
    residual = y - yhat
    return _squared_norm(namespace(residual), residual)


def _squared_error_vjp(g, yhat, y, *, out):
    residual = 2.0 * g * (yhat - y)
    return unbroadcast(residual, yhat.shape), unbroadcast(-residual, y.shape)


def _l2_loss_jvp(tangents, z, y, *, out):
    tz, ty = tangents
    residual = z - y
    xp = namespace(residual)
    return (None if tz is None else xp.asarray(xp.sum(residual * tz)),
            None if ty is None else xp.asarray(-xp.sum(residual * ty)))


def _l2_loss_vjp_graph(g, z, y, *, out, needs):
    residual = g * (z - y)
    return (unbroadcast(residual, z.shape) if needs[0] else None,
            unbroadcast(-residual, y.shape) if needs[1] else None)


def _squared_error_jvp(tangents, yhat, y, *, out):
    tyhat, ty = tangents
    residual = 2.0 * (yhat - y)
    xp = namespace(residual)
    return (None if tyhat is None else xp.asarray(xp.sum(residual * tyhat)),
            None if ty is None else xp.asarray(-xp.sum(residual * ty)))


def _squared_error_vjp_graph(g, yhat, y, *, out, needs):
    residual = (2.0 * g) * (yhat - y)
    return (unbroadcast(residual, yhat.shape) if needs[0] else None,
            unbroadcast(-residual, y.shape) if needs[1] else None)


def _l2_loss_source(call):
    # the forward's own arithmetic (vdot), so generated code and compiled steps give its bits
    z, y = call.inputs
    return f"0.5 * np.vdot({z} - {y}, {z} - {y})"


def _l2_loss_vjp_source(call):
    (z, y), g = call.inputs, call.grad
    compared = broadcast_shape(*call.shapes)
    return call.sum_to(f"{g} * ({z} - {y})", 0, compared), call.sum_to(f"-{g} * ({z} - {y})", 1, compared)


def _squared_error_source(call):
    # the forward's own arithmetic (vdot: np.sum adds in another order), on the residual the vjp
    # forms write too, so that a compiled step computes it once
    yhat, y = call.inputs
    return f"np.vdot({yhat} - {y}, {yhat} - {y})"


def _squared_error_vjp_source(call):
    (yhat, y), g = call.inputs, call.grad
    compared = broadcast_shape(*call.shapes)
    return (call.sum_to(f"2.0 * {g} * ({yhat} - {y})", 0, compared),
            call.sum_to(f"-2.0 * {g} * ({yhat} - {y})", 1, compared))


def _cross_entropy_shape(logits, target):
    if not logits:
        raise ValueError("logits need a last axis of classes; got a 0-d array")
    if tuple(target) != tuple(logits):
        raise ValueError(f"target has shape {target} but logits have {logits}; target holds one probability "
                         f"per logit")
    return ()


def _rows(logits):
    """How many distributions the loss averages over: the product of all axes but the last."""
    return math.prod(logits.shape[:-1])


def _cross_entropy_forward(logits, target):
    rows = _rows(logits)
    xp = namespace(logits, target)
    if rows == 0:  # the mean over no rows is NaN, as in numpy and torch, without numpy's RuntimeWarning
        return xp.asarray(float("nan"), dtype=xp.float64)
    return -xp.sum(target * log_softmax(logits, -1)) / rows


def _cross_entropy_vjp(g, logits, target, *, out, needs):
    xp = namespace(g, logits, target)
    if logits.size == 0:  # empty inputs (no rows, or no classes) have empty gradients
        return xp.zeros(logits.shape, dtype=xp.float64), xp.zeros(target.shape, dtype=xp.float64)
    scale = g / _rows(logits)
    # softmax times each row's total mass: (softmax - target) when the target rows sum to 1
    mass = xp.sum(target, axis=-1, keepdims=True)
    glogits = scale * (softmax(logits, -1) * mass - target) if needs[0] else None
    gtarget = -scale * log_softmax(logits, -1) if needs[1] else None
    return glogits, gtarget


def _cross_entropy_jvp(tangents, logits, target, *, out):
    tlogits, ttarget = tangents
    xp = namespace(logits, target)
    if logits.size == 0:  # no element to move: the output stays where it is
        return tuple(None if t is None else xp.zeros((), dtype=xp.float64) for t in tangents)
    scale = 1.0 / _rows(logits)
    log_p = log_softmax(logits, -1)
    from_logits = None
    if tlogits is not None:
        # the vjp's softmax * mass - target, contracted with the tangent
        mass = xp.sum(target, axis=-1, keepdims=True)
        from_logits = xp.asarray(scale * xp.sum((xp.exp(log_p) * mass - target) * tlogits))
    from_target = None if ttarget is None else xp.asarray(-scale * xp.sum(log_p * ttarget))
    return from_logits, from_target


def _cross_entropy_vjp_graph(g, logits, target, *, out, needs):
    rows = _rows(logits)
    scale = g * (1.0 / rows) if rows else g  # no rows: empty inputs, whose gradients are empty whatever the scale
    log_p = logits.log_softmax(axis=-1)
    glogits = scale * (log_p.exp() * target.sum(axis=-1, keepdims=True) - target) if needs[0] else None
    gtarget = -scale * log_p if needs[1] else None
    return glogits, gtarget


def _prediction_and_target(rng):
    return ((3, 4), (3, 4)), {}


def _regression(rng):
    return ((5,), (5,)), {}


def _classification(rng):
    return (rng.normal(0.0, 2.0, (4, 3)), rng.dirichlet(np.ones(3), size=4)), {}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: l2_loss, squared_error and cross_entropy."""
    return [
        Op("l2_loss", forward=_l2_loss_forward, vjp=_l2_loss_vjp, jvp=_l2_loss_jvp, vjp_graph=_l2_loss_vjp_graph,
           inputs=("z", "y"), shape=_elementwise_loss_shape, example=_prediction_and_target,
           source=SourceForm(forward=_l2_loss_source, vjp=_l2_loss_vjp_source),
           doc="0.5 * sum((z - y) ** 2)"),
        Op("squared_error", forward=_squared_error_forward, vjp=_squared_error_vjp, jvp=_squared_error_jvp,
           vjp_graph=_squared_error_vjp_graph, inputs=("yhat", "y"), shape=_elementwise_loss_shape, example=_regression,
           source=SourceForm(forward=_squared_error_source, vjp=_squared_error_vjp_source), doc="sum((y - yhat) ** 2)"),
        Op("cross_entropy", forward=_cross_entropy_forward, vjp=_cross_entropy_vjp, jvp=_cross_entropy_jvp,
           vjp_graph=_cross_entropy_vjp_graph, inputs=("logits", "target"), shape=_cross_entropy_shape,
           example=_classification,
           doc="mean over rows of -sum(target * log_softmax(logits)) over the last axis (target: probabilities)"),
    ]
