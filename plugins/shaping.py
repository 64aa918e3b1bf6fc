"""Shaping: reshape, broadcast_to, flatten, squeeze, unsqueeze and permute.

None of these does arithmetic or picks elements out: each lays the same elements out
in a new shape, so each vjp moves the gradient back to where the elements came from.
Where one element went to several places (broadcast_to), the gradients from those
places are added up. flatten, squeeze and unsqueeze are reshapes that work out the
shape themselves, and share the reshape's rules; permute reorders the axes, and its
vjp puts them back. Picking elements out, placing them, joining and padding
(getitem, scatter_add, concat, stack, split, pad) are the indexing family's.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [[1.0, 2.0, 3.0]])
>>> flat = x.broadcast_to(shape=(2, 3)).permute(axes=(1, 0)).flatten()
>>> L = (flat * flat).sum()
>>> g.forward(); g.backward(L)
>>> flat.value, x.grad
(array([1., 1., 2., 2., 3., 3.]), array([[ 4.,  8., 12.]]))
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op, broadcast_shape, unbroadcast
from dagprop.op import SourceForm
from dagprop.backend import namespace
from ._common import as_shape, check_axes, check_axis


def _reshape_forward(x, *, shape):
    return namespace(x).reshape(x, as_shape(shape))


def _reshape_shape(x, *, shape):
    target = as_shape(shape)
    size = math.prod(x)
    unknown = [i for i, n in enumerate(target) if n == -1]
    if len(unknown) > 1 or any(n < -1 for n in target):
        raise ValueError(f"shape {target} may hold sizes and at most one -1")
    known = math.prod(n for n in target if n != -1)
    if unknown and known != 0 and size % known == 0:
        return tuple(size // known if n == -1 else n for n in target)
    if unknown or known != size:
        raise ValueError(f"cannot reshape {size} elements into shape {target}")
    return target


def _broadcast_to_forward(x, *, shape):
    # a copy, not NumPy's read-only view, so the value behaves like every other
    xp = namespace(x)
    return xp.asarray(xp.broadcast_to(x, as_shape(shape)), copy=True)


def _broadcast_to_shape(x, *, shape):
    target = as_shape(shape)
    try:
        fits = len(x) <= len(target) and broadcast_shape(x, target) == target
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"shape {x} cannot be broadcast to {target}")
    return target


def _broadcast_to_vjp(g, x, *, out, shape):
    return (unbroadcast(g, x.shape),)


def _broadcast_to_jvp(tangents, x, *, out, shape):
    (t,) = tangents
    return (None if t is None else namespace(t).broadcast_to(t, out.shape),)


def _broadcast_to_vjp_graph(g, x, *, out, shape):
    return (unbroadcast(g, x.shape),)


# reshape, and flatten, squeeze and unsqueeze, which work out the new shape themselves, keep the
# elements in order: they share one set of rules back and forth


def _same_elements_vjp(g, x, *, out, **attrs):
    return (namespace(g).reshape(g, x.shape),)


def _same_elements_jvp(tangents, x, *, out, **attrs):
    (t,) = tangents
    return (None if t is None else namespace(t).reshape(t, out.shape),)


def _same_elements_vjp_graph(g, x, *, out, **attrs):
    return (g.reshape(shape=x.shape),)


def _flatten_shape(x, *, start_axis=0, end_axis=-1):
    ndim = max(len(x), 1)  # a 0-d x flattens to shape (1,), as in torch
    start = check_axis(start_axis, ndim, "start_axis")
    end = check_axis(end_axis, ndim, "end_axis")
    if start > end:
        raise ValueError(f"start_axis {start_axis} comes after end_axis {end_axis}; flatten joins the axes "
                         f"from start_axis to end_axis")
    if not x:
        return (1,)
    return x[:start] + (math.prod(x[start:end + 1]),) + x[end + 1:]


def _flatten_forward(x, *, start_axis=0, end_axis=-1):
    return namespace(x).reshape(x, _flatten_shape(x.shape, start_axis=start_axis, end_axis=end_axis))


def _squeeze_shape(x, *, axis=None):
    if axis is None:
        return tuple(n for n in x if n != 1)
    # torch's squeeze: a named axis of size other than 1 stays, as it is (numpy would refuse it)
    axes = check_axes(axis, max(len(x), 1))
    return tuple(n for i, n in enumerate(x) if not (i in axes and n == 1))


def _squeeze_forward(x, *, axis=None):
    return namespace(x).reshape(x, _squeeze_shape(x.shape, axis=axis))


def _unsqueeze_shape(x, *, axis):
    at = check_axis(axis, len(x) + 1)
    return x[:at] + (1,) + x[at:]


def _unsqueeze_forward(x, *, axis):
    return namespace(x).reshape(x, _unsqueeze_shape(x.shape, axis=axis))


def _permutation(axes, ndim):
    """``axes`` as non-negative ints, checked to be an ordering of all ``ndim`` axes."""
    if not isinstance(axes, (tuple, list)):
        raise ValueError(f"axes must be a tuple naming every axis once, got {axes!r}")
    order = tuple(check_axis(a, ndim) for a in axes) if ndim else tuple(axes)
    if sorted(order) != list(range(ndim)):
        raise ValueError(f"axes {tuple(axes)} must name each of the {ndim} axes once")
    return order


def _permute_shape(x, *, axes):
    return tuple(x[i] for i in _permutation(axes, len(x)))


def _permute_forward(x, *, axes):
    return namespace(x).permute_dims(x, _permutation(axes, x.ndim))


def _inverse_permutation(axes, ndim):
    return tuple(int(i) for i in np.argsort(_permutation(axes, ndim)))


def _permute_vjp(g, x, *, out, axes):
    return (namespace(g).permute_dims(g, _inverse_permutation(axes, x.ndim)),)


def _permute_jvp(tangents, x, *, out, axes):
    (t,) = tangents
    return (None if t is None else namespace(t).permute_dims(t, _permutation(axes, x.ndim)),)


def _permute_vjp_graph(g, x, *, out, axes):
    return (g.permute(axes=_inverse_permutation(axes, len(x.shape))),)


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _reshape_source(call):
    return f"{call.inputs[0]}.reshape({call.literal(call.attrs['shape'])})"


def _broadcast_to_source(call):
    return f"np.broadcast_to({call.inputs[0]}, {call.literal(call.attrs['shape'])})"


def _broadcast_to_vjp_source(call):
    return (call.sum_to(call.grad, 0),)


def _same_elements_source(call):
    return f"{call.inputs[0]}.reshape({call.literal(call.out_shape)})"


def _same_elements_vjp_source(call):
    return (f"{call.grad}.reshape({call.inputs[0]}.shape)",)


def _permute_source(call):
    return f"np.transpose({call.inputs[0]}, {_permutation(call.attrs['axes'], len(call.shapes[0]))!r})"


def _permute_vjp_source(call):
    return (f"np.transpose({call.grad}, {_inverse_permutation(call.attrs['axes'], len(call.shapes[0]))!r})",)


def _reshape_example(rng):
    return ((3, 4),), {"shape": (2, -1)}


def _broadcast_to_example(rng):
    return ((3, 1),), {"shape": (2, 3, 4)}


def _flatten_example(rng):
    return ((2, 3, 4),), {"start_axis": 1}


def _squeeze_example(rng):
    return ((3, 1, 4, 1),), {"axis": 1}


def _unsqueeze_example(rng):
    return ((3, 4),), {"axis": -1}


def _permute_example(rng):
    return ((2, 3, 4),), {"axes": (2, 0, 1)}


def _same_elements_form():
    return SourceForm(forward=_same_elements_source, vjp=_same_elements_vjp_source)


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: reshape, broadcast_to, flatten, squeeze, unsqueeze and permute."""
    return [
        Op("reshape", forward=_reshape_forward, vjp=_same_elements_vjp, jvp=_same_elements_jvp,
           vjp_graph=_same_elements_vjp_graph, shape=_reshape_shape, example=_reshape_example,
           source=SourceForm(forward=_reshape_source, vjp=_same_elements_vjp_source),
           doc="the same elements in a new shape (one size may be -1: whatever fits)"),
        Op("broadcast_to", forward=_broadcast_to_forward, vjp=_broadcast_to_vjp, jvp=_broadcast_to_jvp,
           vjp_graph=_broadcast_to_vjp_graph, shape=_broadcast_to_shape, example=_broadcast_to_example,
           source=SourceForm(forward=_broadcast_to_source, vjp=_broadcast_to_vjp_source),
           doc="repeat x along new or size-1 axes to fill shape"),
        Op("flatten", forward=_flatten_forward, vjp=_same_elements_vjp, jvp=_same_elements_jvp,
           vjp_graph=_same_elements_vjp_graph, shape=_flatten_shape, example=_flatten_example,
           source=_same_elements_form(), doc="the axes from start_axis to end_axis joined into one (torch.flatten)"),
        Op("squeeze", forward=_squeeze_forward, vjp=_same_elements_vjp, jvp=_same_elements_jvp,
           vjp_graph=_same_elements_vjp_graph, shape=_squeeze_shape, example=_squeeze_example,
           source=_same_elements_form(),
           doc="x without its size-1 axes (axis: only those named; one of another size stays, as in torch)"),
        Op("unsqueeze", forward=_unsqueeze_forward, vjp=_same_elements_vjp, jvp=_same_elements_jvp,
           vjp_graph=_same_elements_vjp_graph, shape=_unsqueeze_shape, example=_unsqueeze_example,
           source=_same_elements_form(), doc="x with a new axis of size 1 at position axis"),
        Op("permute", forward=_permute_forward, vjp=_permute_vjp, jvp=_permute_jvp, vjp_graph=_permute_vjp_graph,
           shape=_permute_shape, example=_permute_example,
           source=SourceForm(forward=_permute_source, vjp=_permute_vjp_source),
           doc="the axes reordered: axis k of the result is axis axes[k] of x"),
    ]
