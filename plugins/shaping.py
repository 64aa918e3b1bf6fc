"""Shaping: reshape, broadcast_to, getitem (indexing), concat and stack.

None of these does arithmetic; each moves elements around, so each vjp moves
the gradient back to where the elements came from. Where one element went to
several places (broadcast_to, getitem with a repeated index), the gradients
from those places are added up.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [10.0, 20.0, 30.0])
>>> picked = x[[0, 0, 2]]
>>> L = picked.sum()
>>> g.forward(); g.backward(L)
>>> picked.value, x.grad
(array([10., 10., 30.]), array([2., 0., 1.]))
"""

from __future__ import annotations

import functools
import math

import numpy as np

import dagprop as dp
from dagprop import Op, broadcast_shape, unbroadcast
from dagprop.op import SourceForm
from ._common import check_axis


def _as_shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)


def _reshape_forward(x, *, shape):
    return np.reshape(x, _as_shape(shape))


def _reshape_shape(x, *, shape):
    target = _as_shape(shape)
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


def _reshape_vjp(g, x, *, out, shape):
    return (g.reshape(x.shape),)


def _broadcast_to_forward(x, *, shape):
    # a copy, not NumPy's read-only view, so the value behaves like every other
    return np.array(np.broadcast_to(x, _as_shape(shape)))


def _broadcast_to_shape(x, *, shape):
    target = _as_shape(shape)
    try:
        fits = len(x) <= len(target) and broadcast_shape(x, target) == target
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"shape {x} cannot be broadcast to {target}")
    return target


def _broadcast_to_vjp(g, x, *, out, shape):
    return (unbroadcast(g, x.shape),)


def _getitem_forward(x, *, index):
    return x[index]


def _getitem_shape(x, *, index):
    try:
        # index a zero-strided stand-in of the right shape: the rules are NumPy's own
        return np.broadcast_to(np.empty(()), x)[index].shape
    except IndexError as exc:
        raise ValueError(str(exc)) from None


def _getitem_vjp(g, x, *, out, index):
    # which element of x each output element was read from; np.add.at (unlike +=)
    # adds once per occurrence, so an element picked twice gets both gradients
    sources = np.arange(x.size).reshape(x.shape)[index]
    grad = np.zeros(x.size)
    np.add.at(grad, np.ravel(sources), np.ravel(g))
    return (grad.reshape(x.shape),)


def _concat_forward(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


def _concat_shape(*shapes, axis=0):
    first = shapes[0]
    if not first:
        raise ValueError("concat joins arrays along an existing axis; 0-d inputs have none (use stack)")
    ax = check_axis(axis, len(first))
    for k, other in enumerate(shapes[1:], start=1):
        if len(other) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, other)) if i != ax):
            raise ValueError(f"input {k} has shape {other} and input 0 has {first}; "
                             f"they must match except along axis {axis}")
    return first[:ax] + (sum(s[ax] for s in shapes),) + first[ax + 1:]


def _concat_vjp(g, *xs, out, axis=0):
    ends = np.cumsum([x.shape[axis] for x in xs])
    return tuple(np.split(g, ends[:-1], axis=axis))


def _stack_forward(*xs, axis=0):
    return np.stack(xs, axis=axis)


def _stack_shape(*shapes, axis=0):
    first = shapes[0]
    for k, other in enumerate(shapes[1:], start=1):
        if other != first:
            raise ValueError(f"input {k} has shape {other} and input 0 has {first}; stack needs equal shapes")
    ax = check_axis(axis, len(first) + 1)
    return first[:ax] + (len(shapes),) + first[ax:]


def _stack_vjp(g, *xs, out, axis=0):
    return tuple(np.take(g, k, axis=axis) for k in range(len(xs)))


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _reshape_source(call):
    return f"{call.inputs[0]}.reshape({call.literal(call.attrs['shape'])})"


def _reshape_vjp_source(call):
    return (f"{call.grad}.reshape({call.inputs[0]}.shape)",)


def _broadcast_to_source(call):
    return f"np.broadcast_to({call.inputs[0]}, {call.literal(call.attrs['shape'])})"


def _broadcast_to_vjp_source(call):
    return (call.sum_to(call.grad, 0),)


def _subscript_part(call, part):
    """One entry of an index as it is written between brackets (``1:``, ``...``), or None if it has no such form."""
    if isinstance(part, slice):
        bounds = [("" if bound is None else call.literal(bound)) for bound in (part.start, part.stop, part.step)]
        return ":".join(bounds[:2]) + (f":{bounds[2]}" if bounds[2] else "")
    if part is Ellipsis:
        return "..."
    if part is None or isinstance(part, (int, np.integer, list, np.ndarray)):
        return call.literal(part)
    return None


def _subscript(call):
    """The node's index as written between brackets: ``1:, ..., [0, 2]``, or None if it has no such form."""
    index = call.attrs["index"]
    parts = list(index) if isinstance(index, tuple) else [index]
    written = [_subscript_part(call, part) for part in parts]
    if None in written:
        return None
    if not isinstance(index, tuple):
        return written[0]
    return "()" if not written else ", ".join(written) + ("," if len(written) == 1 else "")


def _basic(index):
    """Whether an index only slices (ints, slices, Ellipsis, None): no element can be picked twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) and not isinstance(p, bool)
               for p in parts)


def _getitem_source(call):
    subscript = _subscript(call)
    return None if subscript is None else f"{call.inputs[0]}[{subscript}]"


def _getitem_vjp_source(call):
    # the gradient goes back to the elements that were picked; np.add.at (unlike +=) adds once per
    # occurrence, so an element picked twice by an index array gets both gradients
    subscript, index, target = _subscript(call), call.attrs["index"], call.targets[0]
    if subscript is None:
        return None
    scatter = (f"{target}[{subscript}] = {call.grad}" if _basic(index)
               else f"np.add.at({target}, {call.literal(index)}, {call.grad})")
    return ([f"{target} = np.zeros({call.inputs[0]}.shape)", scatter],)


def _along(call, axis, entry):
    """``entry`` (an index or a slice, as written) taken along ``axis`` of the output's gradient."""
    return f"{call.grad}[{':, ' * axis}{entry}]"


def _joined_source(function, call):
    axis = call.literal(call.attrs.get("axis", 0))
    return f"np.{function}([{', '.join(call.inputs)}], axis={axis})"


def _concat_vjp_source(call):
    axis = check_axis(call.attrs.get("axis", 0), len(call.out_shape))
    ends = np.cumsum([shape[axis] for shape in call.shapes])
    starts = [0, *ends[:-1]]
    return tuple(_along(call, axis, f"{start or ''}:{end}") for start, end in zip(starts, ends))


def _stack_vjp_source(call):
    axis = check_axis(call.attrs.get("axis", 0), len(call.out_shape))
    return tuple(_along(call, axis, str(k)) for k in range(len(call.inputs)))


def _reshape_example(rng):
    return ((3, 4),), {"shape": (2, -1)}


def _broadcast_to_example(rng):
    return ((3, 1),), {"shape": (2, 3, 4)}


def _getitem_example(rng):
    return ((4, 3),), {"index": ([0, 2, 0], slice(1, None))}


def _concat_example(rng):
    return ((2, 3), (4, 3), (1, 3)), {"axis": 0}


def _stack_example(rng):
    return ((2, 3), (2, 3), (2, 3)), {"axis": 1}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: reshape, broadcast_to, getitem, concat and stack."""
    return [
        Op("reshape", forward=_reshape_forward, vjp=_reshape_vjp, shape=_reshape_shape, example=_reshape_example,
           source=SourceForm(forward=_reshape_source, vjp=_reshape_vjp_source),
           doc="the same elements in a new shape (one size may be -1: whatever fits)"),
        Op("broadcast_to", forward=_broadcast_to_forward, vjp=_broadcast_to_vjp, shape=_broadcast_to_shape,
           example=_broadcast_to_example,
           source=SourceForm(forward=_broadcast_to_source, vjp=_broadcast_to_vjp_source),
           doc="repeat x along new or size-1 axes to fill shape"),
        Op("getitem", forward=_getitem_forward, vjp=_getitem_vjp, shape=_getitem_shape, example=_getitem_example,
           source=SourceForm(forward=_getitem_source, vjp=_getitem_vjp_source),
           doc="x[index] with NumPy indexing: ints, slices, Ellipsis, None, integer arrays"),
        Op("concat", forward=_concat_forward, vjp=_concat_vjp, variadic=True, inputs=("x",), shape=_concat_shape,
           example=_concat_example,
           source=SourceForm(forward=functools.partial(_joined_source, "concatenate"), vjp=_concat_vjp_source),
           doc="join the inputs end to end along an existing axis"),
        Op("stack", forward=_stack_forward, vjp=_stack_vjp, variadic=True, inputs=("x",), shape=_stack_shape,
           example=_stack_example,
           source=SourceForm(forward=functools.partial(_joined_source, "stack"), vjp=_stack_vjp_source),
           doc="put equally shaped inputs side by side along a new axis"),
    ]
