"""Shaping: reshape, broadcast_to, getitem (indexing), concat, stack and scatter_add.

None of these does arithmetic; each moves elements around, so each vjp moves
the gradient back to where the elements came from. Where one element went to
several places (broadcast_to, getitem with a repeated index), the gradients
from those places are added up. scatter_add is getitem's adjoint: it puts
values back at an index into zeros, adding where the index repeats, so the
backward pass of getitem can itself be a node (``backward(create_graph=True)``).

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


def _reshape_jvp(tangents, x, *, out, shape):
    (t,) = tangents
    return (None if t is None else t.reshape(out.shape),)


def _reshape_vjp_graph(g, x, *, out, shape):
    return (g.reshape(shape=x.shape),)


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


def _broadcast_to_jvp(tangents, x, *, out, shape):
    (t,) = tangents
    return (None if t is None else np.broadcast_to(t, out.shape),)


def _broadcast_to_vjp_graph(g, x, *, out, shape):
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
    return (_scatter_add_forward(g, shape=x.shape, index=index),)


def _getitem_jvp(tangents, x, *, out, index):
    (t,) = tangents
    return (None if t is None else t[index],)


def _getitem_vjp_graph(g, x, *, out, index):
    return (g.scatter_add(shape=x.shape, index=index),)


def _scatter_add_forward(g, *, shape, index):
    # which element of the result each element of g goes to; np.add.at (unlike +=)
    # adds once per occurrence, so an element picked twice gets both values
    shape = _as_shape(shape)
    size = math.prod(shape)
    targets = np.arange(size).reshape(shape)[index]
    result = np.zeros(size)
    np.add.at(result, np.ravel(targets), np.ravel(g))
    return result.reshape(shape)


def _scatter_add_shape(g, *, shape, index):
    target = _as_shape(shape)
    picked = _getitem_shape(target, index=index)
    if g != picked:
        raise ValueError(f"g has shape {g}, but indexing an array of shape {target} with this index "
                         f"picks shape {picked}; they must match")
    return target


def _scatter_add_vjp(g, values, *, out, shape, index):
    # each value was added at one place, so its gradient is read back from there
    return (g[index],)


def _scatter_add_jvp(tangents, values, *, out, shape, index):
    (t,) = tangents
    return (None if t is None else _scatter_add_forward(t, shape=shape, index=index),)


def _scatter_add_vjp_graph(g, values, *, out, shape, index):
    return (g[index],)


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


def _concat_slots(xs, axis):
    """Per input, the index of the output's part that holds it: all of every axis but a range of ``axis``."""
    ax = check_axis(axis, len(xs[0].shape))
    ends = np.cumsum([x.shape[ax] for x in xs])
    starts = [0, *ends[:-1]]
    return [(slice(None),) * ax + (slice(int(start), int(end)),) for start, end in zip(starts, ends)]


def _concat_jvp(tangents, *xs, out, axis=0):
    return tuple(None if t is None else _placed(t, slot, out.shape)
                 for t, slot in zip(tangents, _concat_slots(xs, axis)))


def _concat_vjp_graph(g, *xs, out, axis=0):
    return tuple(g[slot] for slot in _concat_slots(xs, axis))


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


def _stack_slots(xs, axis):
    """Per input, the index of the output's slice that holds it: entry k along the new axis."""
    ax = check_axis(axis, len(xs[0].shape) + 1)
    return [(slice(None),) * ax + (k,) for k in range(len(xs))]


def _stack_jvp(tangents, *xs, out, axis=0):
    return tuple(None if t is None else _placed(t, slot, out.shape)
                 for t, slot in zip(tangents, _stack_slots(xs, axis)))


def _stack_vjp_graph(g, *xs, out, axis=0):
    return tuple(g[slot] for slot in _stack_slots(xs, axis))


def _placed(t, index, shape):
    """Zeros of ``shape`` holding ``t`` at ``index``: one input's share of a joined output's tangent."""
    placed = np.zeros(shape)
    placed[index] = t
    return placed


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


def _scatter_add_source(call):
    subscript, index, out = _subscript(call), call.attrs["index"], call.out
    if subscript is None:
        return None
    # as getitem's vjp: np.add.at (unlike +=) adds once per occurrence of a repeated index
    scatter = (f"{out}[{subscript}] = {call.inputs[0]}" if _basic(index)
               else f"np.add.at({out}, {call.literal(index)}, {call.inputs[0]})")
    return [f"{out} = np.zeros({call.literal(call.out_shape)})", scatter]


def _scatter_add_vjp_source(call):
    subscript = _subscript(call)
    return None if subscript is None else (f"{call.grad}[{subscript}]",)


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


def _scatter_add_example(rng):
    return ((3, 2),), {"shape": (4, 2), "index": [0, 2, 0]}


def _concat_example(rng):
    return ((2, 3), (4, 3), (1, 3)), {"axis": 0}


def _stack_example(rng):
    return ((2, 3), (2, 3), (2, 3)), {"axis": 1}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: reshape, broadcast_to, getitem, concat, stack and scatter_add."""
    return [
        Op("reshape", forward=_reshape_forward, vjp=_reshape_vjp, jvp=_reshape_jvp, vjp_graph=_reshape_vjp_graph,
           shape=_reshape_shape, example=_reshape_example,
           source=SourceForm(forward=_reshape_source, vjp=_reshape_vjp_source),
           doc="the same elements in a new shape (one size may be -1: whatever fits)"),
        Op("broadcast_to", forward=_broadcast_to_forward, vjp=_broadcast_to_vjp, jvp=_broadcast_to_jvp,
           vjp_graph=_broadcast_to_vjp_graph, shape=_broadcast_to_shape, example=_broadcast_to_example,
           source=SourceForm(forward=_broadcast_to_source, vjp=_broadcast_to_vjp_source),
           doc="repeat x along new or size-1 axes to fill shape"),
        Op("getitem", forward=_getitem_forward, vjp=_getitem_vjp, jvp=_getitem_jvp, vjp_graph=_getitem_vjp_graph,
           shape=_getitem_shape, example=_getitem_example,
           source=SourceForm(forward=_getitem_source, vjp=_getitem_vjp_source),
           doc="x[index] with NumPy indexing: ints, slices, Ellipsis, None, integer arrays"),
        Op("concat", forward=_concat_forward, vjp=_concat_vjp, jvp=_concat_jvp, vjp_graph=_concat_vjp_graph,
           variadic=True, inputs=("x",), shape=_concat_shape, example=_concat_example,
           source=SourceForm(forward=functools.partial(_joined_source, "concatenate"), vjp=_concat_vjp_source),
           doc="join the inputs end to end along an existing axis"),
        Op("stack", forward=_stack_forward, vjp=_stack_vjp, jvp=_stack_jvp, vjp_graph=_stack_vjp_graph,
           variadic=True, inputs=("x",), shape=_stack_shape, example=_stack_example,
           source=SourceForm(forward=functools.partial(_joined_source, "stack"), vjp=_stack_vjp_source),
           doc="put equally shaped inputs side by side along a new axis"),
        Op("scatter_add", forward=_scatter_add_forward, vjp=_scatter_add_vjp, jvp=_scatter_add_jvp,
           vjp_graph=_scatter_add_vjp_graph, inputs=("g",), shape=_scatter_add_shape, example=_scatter_add_example,
           source=SourceForm(forward=_scatter_add_source, vjp=_scatter_add_vjp_source),
           doc="zeros of shape with g added at index (np.add.at: a repeated index adds twice); getitem's adjoint"),
    ]
