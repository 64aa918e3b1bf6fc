"""Reductions: sum, mean, max and min over some axes (default all), optionally keeping them as size 1.

The gradient of a sum copies the incoming gradient to every element that was
added up; a mean also divides it by how many there were. The gradient of a max
(or min) goes to the elements equal to it, split evenly among ties, as
``torch.amax`` does. Each op has the vjp, a jvp (forward mode: the same reduction
of the tangent) and a vjp_graph, the vjp built out of graph nodes for
``backward(create_graph=True)``; a max's or min's picks its elements with ``step``
nodes, which pass no gradient.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
>>> m = x.mean(axis=1)
>>> L = m.sum()
>>> g.forward(); g.backward(L)
>>> m.value, x.grad
(array([2., 5.]), array([[0.33333333, 0.33333333, 0.33333333],
       [0.33333333, 0.33333333, 0.33333333]]))

>>> h = dp.Graph()
>>> y = h.param("y", [[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
>>> top = y.max(axis=1)
>>> h.forward(); h.backward(top, seed=[1.0, 1.0])
>>> top.value, y.grad
(array([3., 2.]), array([[0. , 0.5, 0.5],
       [1. , 0. , 0. ]]))
"""

from __future__ import annotations

import functools
import math

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.op import SourceForm
from ._common import check_axes


def _reduced_shape(x, *, axis=None, keepdims=False):
    axes = check_axes(axis, len(x))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in axes)


def _kept(reduced, x, axis, keepdims):
    """A reduced array (an output or its gradient) with the reduced axes of ``x`` back as size 1."""
    reduced = np.asarray(reduced)
    if keepdims or axis is None:  # axis None: a 0-d result, which broadcasts as it is
        return reduced
    return reduced.reshape(_reduced_shape(x.shape, axis=axis, keepdims=True))


def _spread(g, x, axis, keepdims, scale=1.0):
    """``scale * g``, the gradient of a reduced output, copied back over the axes that were reduced."""
    g = _kept(g, x, axis, keepdims)
    spread = np.empty(x.shape, dtype=g.dtype)
    spread[...] = g if scale == 1.0 else g * scale  # broadcasting assignment: one pass, in C
    return spread


def _spread_node(g, x, axis, keepdims):
    """The nodes copying ``g``, a reduced output's gradient, back over the axes of ``x`` that were reduced."""
    kept = _reduced_shape(x.shape, axis=axis, keepdims=True)
    if g.shape != kept:
        g = g.reshape(shape=kept)
    return g.broadcast_to(shape=x.shape) if kept != x.shape else g


def _sum_jvp(tangents, x, *, out, axis=None, keepdims=False):
    (t,) = tangents
    return (_sum_forward(t, axis=axis, keepdims=keepdims),)


def _sum_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    return (_spread_node(g, x, axis, keepdims),)


def _count(shape, axis):
    """How many elements a reduction over ``axis`` takes together."""
    return math.prod(shape) if axis is None else math.prod(shape[i] for i in check_axes(axis, len(shape)))


# The shape rule has already checked ``axis``; numpy's reduce takes None, an int or a tuple as they are.
def _sum_forward(x, *, axis=None, keepdims=False):
    return np.asarray(np.add.reduce(x, axis=_as_axis(axis), keepdims=keepdims))


def _sum_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_spread(g, x, axis, keepdims),)


def _mean_forward(x, *, axis=None, keepdims=False):
    total = np.add.reduce(x, axis=_as_axis(axis), keepdims=keepdims)
    count = _count(x.shape, axis)
    if count == 0:  # the mean of nothing is NaN, as in numpy and torch, without numpy's RuntimeWarning
        return np.full(np.shape(total), np.nan)
    return np.asarray(total / count)


def _mean_vjp(g, x, *, out, axis=None, keepdims=False):
    if x.size == 0:  # an empty x (which it is whenever nothing was averaged) has an empty gradient
        return (np.zeros(x.shape),)
    return (_spread(g, x, axis, keepdims, 1.0 / _count(x.shape, axis)),)


def _mean_jvp(tangents, x, *, out, axis=None, keepdims=False):
    (t,) = tangents
    if _count(x.shape, axis) == 0:  # nothing was averaged: the output does not move (its NaN is fixed)
        return (np.zeros(out.shape),)
    return (_mean_forward(t, axis=axis, keepdims=keepdims),)


def _mean_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    spread = _spread_node(g, x, axis, keepdims)
    count = _count(x.shape, axis)
    return (spread if count in (0, 1) else spread * (1.0 / count),)  # a count of 0 spreads over an empty x


def _max_forward(x, *, axis=None, keepdims=False):
    return np.asarray(np.maximum.reduce(x, axis=_as_axis(axis), keepdims=keepdims))


def _min_forward(x, *, axis=None, keepdims=False):
    return np.asarray(np.minimum.reduce(x, axis=_as_axis(axis), keepdims=keepdims))


def _extremum_shape(x, *, axis=None, keepdims=False):
    empty = [i for i in check_axes(axis, len(x)) if x[i] == 0]
    if empty:
        raise ValueError(f"axis {empty[0]} has size 0 and an empty axis has no max or min (as in numpy and "
                         f"torch); reduce over other axes, or use sum")
    return _reduced_shape(x, axis=axis, keepdims=keepdims)


def _extremum_vjp(g, x, *, out, axis=None, keepdims=False):
    # torch's rule for amax and amin: the elements equal to the result share its gradient evenly.
    # Written as torch writes it, (g / count) * hits, so a NaN or inf in g spreads as it does there.
    hits = x == _kept(out, x, axis, keepdims)
    count = hits.sum(axis=check_axes(axis, x.ndim), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # count is 0 only where out is NaN: NaN, as in torch
        share = _kept(g, x, axis, keepdims) / count
        return (np.asarray(share * hits, dtype=np.float64),)


def _extremum_jvp(tangents, x, *, out, axis=None, keepdims=False):
    # the mean of the tangent over the elements equal to the result: the vjp's even split, transposed
    (t,) = tangents
    hits = x == _kept(out, x, axis, keepdims)
    axes = check_axes(axis, x.ndim)
    with np.errstate(divide="ignore", invalid="ignore"):  # as in the vjp: count is 0 only where out is NaN
        moved = np.add.reduce(t * hits, axis=axes, keepdims=keepdims) / np.add.reduce(hits, axis=axes,
                                                                                       keepdims=keepdims)
    return (np.asarray(moved, dtype=np.float64),)


def _max_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    # out - x >= 0 everywhere and is exactly 0 where x is the max, so 1 - step(out - x) marks the hits.
    # In a slice holding a NaN, out - x is NaN everywhere and step(NaN) is 0, so every element counts
    # as a hit and g is split evenly over the slice, where the vjp (as torch) gives NaN.
    return (_share_among_hits(g, 1.0 - (_kept_node(out, x, axis, keepdims) > x), x, axis, keepdims),)


def _min_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    return (_share_among_hits(g, 1.0 - (_kept_node(out, x, axis, keepdims) < x), x, axis, keepdims),)


def _share_among_hits(g, hits, x, axis, keepdims):
    """``g`` split evenly among the elements ``hits`` marks with 1, as nodes; as the vjp, (g / count) * hits."""
    count = hits.sum(axis=check_axes(axis, len(x.shape)), keepdims=True)
    return (_kept_node(g, x, axis, keepdims) / count) * hits


def _kept_node(reduced, x, axis, keepdims):
    """A reduced node with the reduced axes of ``x`` back as size 1, so it broadcasts against ``x``."""
    kept = _reduced_shape(x.shape, axis=axis, keepdims=True)
    return reduced if keepdims or axis is None or reduced.shape == kept else reduced.reshape(shape=kept)


def _degrees_of_freedom(shape, axis, correction):
    """What var divides by: the count less ``correction``, never below 0 (then var is inf or NaN, as in torch)."""
    return max(_count(shape, axis) - correction, 0)


def _var_shape(x, *, axis=None, keepdims=False, correction=1):
    if isinstance(correction, (bool, np.bool_)) or not isinstance(correction, (int, float, np.integer, np.floating)):
        raise ValueError(f"correction must be a number (1: unbiased, 0: biased), got {correction!r}")
    return _reduced_shape(x, axis=axis, keepdims=keepdims)


def _var_deviation(x, axis):
    """``x`` less its mean over ``axis`` (an empty x has no mean to subtract)."""
    return x - np.add.reduce(x, axis=_as_axis(axis), keepdims=True) / max(_count(x.shape, axis), 1)


def _var_forward(x, *, axis=None, keepdims=False, correction=1):
    deviation = _var_deviation(x, axis)
    squares = np.add.reduce(deviation * deviation, axis=_as_axis(axis), keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):  # no degrees of freedom: inf or NaN, as in torch
        return np.asarray(squares / _degrees_of_freedom(x.shape, axis, correction))


def _var_scale(shape, axis, correction):
    with np.errstate(divide="ignore"):
        return np.float64(2.0) / _degrees_of_freedom(shape, axis, correction)


def _var_vjp(g, x, *, out, axis=None, keepdims=False, correction=1):
    # torch's var_backward: 2 / (N - correction) * g * (x - mean); the mean's own gradient
    # cancels, since the deviations sum to zero
    with np.errstate(invalid="ignore"):
        return (_spread(g, x, axis, keepdims) * (_var_scale(x.shape, axis, correction) * _var_deviation(x, axis)),)


def _var_jvp(tangents, x, *, out, axis=None, keepdims=False, correction=1):
    (t,) = tangents
    moved = _sum_forward(t * _var_deviation(x, axis), axis=axis, keepdims=keepdims)
    with np.errstate(invalid="ignore"):
        return (np.asarray(moved * _var_scale(x.shape, axis, correction)),)


def _var_vjp_graph(g, x, *, out, axis=None, keepdims=False, correction=1):
    deviation = x - x.mean(axis=axis, keepdims=True)
    return (_spread_node(g, x, axis, keepdims) * deviation * float(_var_scale(x.shape, axis, correction)),)


def _var_decompose(x, *, axis=None, keepdims=False, correction=1):
    deviation = x - x.mean(axis=axis, keepdims=True)
    biased = (deviation * deviation).mean(axis=axis, keepdims=keepdims)
    if correction == 0:
        return biased
    with np.errstate(divide="ignore"):  # rescaled from count to count - correction
        return biased * float(np.float64(_count(x.shape, axis)) / _degrees_of_freedom(x.shape, axis, correction))


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _axis_argument(call):
    """``axis=1`` or ``axis=(0, 2)`` as the node has it, the axes made non-negative; nothing for all axes."""
    if call.attrs.get("axis") is None:
        return []
    axes = check_axes(call.attrs["axis"], len(call.shapes[0]))
    return [f"axis={axes[0] if len(axes) == 1 else axes!r}"]


def _kept_source(call, expression):
    """A reduced expression with the reduced axes back as size 1, so it broadcasts against the input."""
    if call.attrs.get("keepdims", False) or call.attrs.get("axis") is None:
        return expression
    axes = check_axes(call.attrs["axis"], len(call.shapes[0]))
    return f"np.expand_dims({expression}, {axes[0] if len(axes) == 1 else axes!r})"


def _reduction_source(method, call):
    arguments = _axis_argument(call) + (["keepdims=True"] if call.attrs.get("keepdims", False) else [])
    return f"{call.inputs[0]}.{method}({', '.join(arguments)})"


def _sum_vjp_source(call):
    x = call.inputs[0]
    return (f"np.broadcast_to({_kept_source(call, call.grad)}, {x}.shape)",)


def _mean_source(call):
    return None if _count(call.shapes[0], call.attrs.get("axis")) == 0 else _reduction_source("mean", call)


def _mean_vjp_source(call):
    count = _count(call.shapes[0], call.attrs.get("axis"))
    return None if count == 0 else (f"{_sum_vjp_source(call)[0]} / {count}",)


def _extremum_vjp_source(call):
    # the elements equal to the result share its gradient evenly
    x = call.inputs[0]
    hits = f"({x} == {_kept_source(call, call.out)})"
    arguments = _axis_argument(call)
    count = f"{hits}.sum({', '.join(arguments + ['keepdims=True'] if arguments else [])})"
    return (f"{hits} * ({_kept_source(call, call.grad)} / {count})",)


def _var_source(call):
    arguments = _axis_argument(call) + (["keepdims=True"] if call.attrs.get("keepdims", False) else [])
    correction = call.attrs.get("correction", 1)
    if _degrees_of_freedom(call.shapes[0], call.attrs.get("axis"), correction) == 0:
        return None  # numpy's var would warn; the op's own forward gives torch's inf or NaN quietly
    if correction:
        arguments.append(f"ddof={call.literal(correction)}")
    return f"{call.inputs[0]}.var({', '.join(arguments)})"


def _var_vjp_source(call):
    x = call.inputs[0]
    dof = _degrees_of_freedom(call.shapes[0], call.attrs.get("axis"), call.attrs.get("correction", 1))
    if dof == 0:
        return None
    arguments = _axis_argument(call) + ["keepdims=True"]
    return (f"{_kept_source(call, call.grad)} * 2 * ({x} - {x}.mean({', '.join(arguments)})) / {call.literal(dof)}",)


def _reduction_form(method, vjp_source):
    return SourceForm(forward=functools.partial(_reduction_source, method), vjp=vjp_source)


def _as_axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _over_rows(rng):
    return ((3, 4),), {"axis": 0}


def _over_last_keeping(rng):
    return ((2, 3, 4),), {"axis": -1, "keepdims": True}


def _over_columns(rng):
    return ((4, 3),), {"axis": 0}


_AXIS_DOC = "over axis (None: all axes; an int or a tuple), keepdims keeps them as size 1"


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: sum, mean, max and min."""
    return [
        Op("sum", forward=_sum_forward, vjp=_sum_vjp, jvp=_sum_jvp, vjp_graph=_sum_vjp_graph, shape=_reduced_shape,
           example=_over_rows, source=_reduction_form("sum", _sum_vjp_source), doc=f"sum {_AXIS_DOC}"),
        Op("mean", forward=_mean_forward, vjp=_mean_vjp, jvp=_mean_jvp, vjp_graph=_mean_vjp_graph,
           shape=_reduced_shape, example=_over_last_keeping,
           source=SourceForm(forward=_mean_source, vjp=_mean_vjp_source), doc=f"mean {_AXIS_DOC}"),
        Op("max", forward=_max_forward, vjp=_extremum_vjp, jvp=_extremum_jvp, vjp_graph=_max_vjp_graph,
           shape=_extremum_shape, example=_over_columns,
           source=_reduction_form("max", _extremum_vjp_source),
           doc=f"largest element {_AXIS_DOC}; ties share the gradient evenly"),
        Op("min", forward=_min_forward, vjp=_extremum_vjp, jvp=_extremum_jvp, vjp_graph=_min_vjp_graph,
           shape=_extremum_shape, example=_over_last_keeping,
           source=_reduction_form("min", _extremum_vjp_source),
           doc=f"smallest element {_AXIS_DOC}; ties share the gradient evenly"),
        Op("var", forward=_var_forward, vjp=_var_vjp, jvp=_var_jvp, vjp_graph=_var_vjp_graph,
           decompose=_var_decompose, shape=_var_shape, example=_over_last_keeping,
           source=SourceForm(forward=_var_source, vjp=_var_vjp_source),
           doc=f"variance {_AXIS_DOC}: the sum of squared deviations over (count - correction), "
               f"correction=1 unbiased (torch's default), 0 biased"),
    ]
