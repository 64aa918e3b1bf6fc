"""Reductions: sum and mean over some axes (default all), optionally keeping them as size 1.

The gradient of a sum copies the incoming gradient to every element that was
added up; a mean also divides it by how many there were.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
>>> m = x.mean(axis=1)
>>> L = m.sum()
>>> g.forward(); g.backward(L)
>>> m.value, x.grad
(array([2., 5.]), array([[0.33333333, 0.33333333, 0.33333333],
       [0.33333333, 0.33333333, 0.33333333]]))
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op
from ._common import check_axes


def _reduced_shape(x, *, axis=None, keepdims=False):
    axes = check_axes(axis, len(x))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in axes)


def _spread(g, x, axis, keepdims, scale=1.0):
    """``scale * g``, the gradient of a reduced output, copied back over the axes that were reduced."""
    g = np.asarray(g)
    if not keepdims and axis is not None:
        g = g.reshape(tuple(1 if i in check_axes(axis, x.ndim) else n for i, n in enumerate(x.shape)))
    spread = np.empty(x.shape, dtype=g.dtype)
    spread[...] = g if scale == 1.0 else g * scale  # broadcasting assignment: one pass, in C
    return spread


def _count(x, axis):
    return x.size if axis is None else math.prod(x.shape[i] for i in check_axes(axis, x.ndim))


# The shape rule has already checked ``axis``; numpy's reduce takes None, an int or a tuple as they are.
def _sum_forward(x, *, axis=None, keepdims=False):
    return np.asarray(np.add.reduce(x, axis=_as_axis(axis), keepdims=keepdims))


def _sum_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_spread(g, x, axis, keepdims),)


def _mean_forward(x, *, axis=None, keepdims=False):
    return np.asarray(np.add.reduce(x, axis=_as_axis(axis), keepdims=keepdims) / _count(x, axis))


def _mean_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_spread(g, x, axis, keepdims, 1.0 / _count(x, axis)),)


def _as_axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _over_rows(rng):
    return ((3, 4),), {"axis": 0}


def _over_last_keeping(rng):
    return ((2, 3, 4),), {"axis": -1, "keepdims": True}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: sum and mean."""
    return [
        Op("sum", forward=_sum_forward, vjp=_sum_vjp, shape=_reduced_shape, example=_over_rows,
           doc="sum over axis (None: all axes; an int or a tuple), keepdims keeps them as size 1"),
        Op("mean", forward=_mean_forward, vjp=_mean_vjp, shape=_reduced_shape, example=_over_last_keeping,
           doc="mean over axis (None: all axes; an int or a tuple), keepdims keeps them as size 1"),
    ]
