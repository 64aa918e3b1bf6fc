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
from dagprop_plugins._common import check_axes


def _reduced_shape(x, *, axis=None, keepdims=False):
    axes = check_axes(axis, len(x))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in axes)


def _spread(g, x, axis, keepdims):
    """The gradient ``g`` of a reduced output copied back over the axes that were reduced."""
    axes = check_axes(axis, x.ndim)
    if not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, x.shape).copy()


def _count(x, axis):
    return math.prod(x.shape[i] for i in check_axes(axis, x.ndim))


def _sum_forward(x, *, axis=None, keepdims=False):
    return np.sum(x, axis=check_axes(axis, x.ndim), keepdims=keepdims)


def _sum_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_spread(g, x, axis, keepdims),)


def _mean_forward(x, *, axis=None, keepdims=False):
    return np.mean(x, axis=check_axes(axis, x.ndim), keepdims=keepdims)


def _mean_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_spread(g, x, axis, keepdims) / _count(x, axis),)


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
