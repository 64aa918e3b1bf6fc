"""Indexing: getitem, scatter_add, concat, stack, split and pad.

None of these does arithmetic; each picks elements out of its inputs or places them
in a new array, so each vjp moves the gradient back to where the elements came from.
Where one element went to several places (getitem with a repeated index, pad's
reflect, replicate and circular modes), the gradients from those places are added
up. scatter_add is getitem's adjoint: it puts values back at an index into zeros,
adding where the index repeats, so the backward pass of getitem (and split) can
itself be a node (``backward(create_graph=True)``). concat and stack join their
inputs, and give each the part of the gradient that holds it; constant padding's
adjoint is a padding by the opposite widths (a negative width crops). The attributes
follow torch: ``split`` takes a piece size or a list of sizes, and ``pad`` lists the
widths from the last axis back.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [10.0, 20.0, 30.0])
>>> picked = x[[0, 0, 2]]
>>> L = picked.sum()
>>> g.forward(); g.backward(L)
>>> picked.value, x.grad
(array([10., 10., 30.]), array([2., 0., 1.]))

>>> h = dp.Graph()
>>> y = h.param("y", [1.0, 2.0, 3.0, 4.0, 5.0])
>>> rest = y.split(sizes=2, part=-1)
>>> padded = y.pad(pad=(1, -2), value=9.0)
>>> L = rest.sum() + padded.sum()
>>> h.forward(); h.backward(L)
>>> rest.value, padded.value, y.grad
(array([5.]), array([9., 1., 2., 3.]), array([1., 1., 1., 0., 1.]))
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.op import SourceForm
from dagprop.backend import add_at, gather, namespace
from ._common import as_shape, check_axis


def _getitem_forward(x, *, index):
    return _picked(x, index)


def _picked(x, index):
    """``x[index]``; another library's array through :func:`dagprop.backend.gather`, as the standard
    indexes with neither lists nor more than one integer array."""
    return x[index] if x.__class__ is np.ndarray else gather(namespace(x), x, index)


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
    return (None if t is None else _picked(t, index),)


def _getitem_vjp_graph(g, x, *, out, index):
    return (g.scatter_add(shape=x.shape, index=index),)


def _scatter_add_forward(g, *, shape, index):
    # which element of the result each element of g goes to; np.add.at (unlike +=)
    # adds once per occurrence, so an element picked twice gets both values
    shape = as_shape(shape)
    xp = namespace(g)
    if xp is not np:
        return add_at(xp, xp.zeros(shape, dtype=xp.float64), index, g)
    size = math.prod(shape)
    targets = np.arange(size).reshape(shape)[index]
    result = np.zeros(size)
    np.add.at(result, np.ravel(targets), np.ravel(g))
    return result.reshape(shape)


def _scatter_add_shape(g, *, shape, index):
    target = as_shape(shape)
    picked = _getitem_shape(target, index=index)
    if g != picked:
        raise ValueError(f"g has shape {g}, but indexing an array of shape {target} with this index "
                         f"picks shape {picked}; they must match")
    return target


def _scatter_add_vjp(g, values, *, out, shape, index):
    # each value was added at one place, so its gradient is read back from there
    return (_picked(g, index),)


def _scatter_add_jvp(tangents, values, *, out, shape, index):
    (t,) = tangents
    return (None if t is None else _scatter_add_forward(t, shape=shape, index=index),)


def _scatter_add_vjp_graph(g, values, *, out, shape, index):
    return (g[index],)


def _concat_forward(*xs, axis=0):
    return namespace(*xs).concat(xs, axis=axis)


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
    if g.__class__ is not np.ndarray:  # the standard has no split
        return tuple(_picked(g, slot) for slot in _concat_slots(xs, axis))
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
    return namespace(*xs).stack(xs, axis=axis)


def _stack_shape(*shapes, axis=0):
    first = shapes[0]
    for k, other in enumerate(shapes[1:], start=1):
        if other != first:
            raise ValueError(f"input {k} has shape {other} and input 0 has {first}; stack needs equal shapes")
    ax = check_axis(axis, len(first) + 1)
    return first[:ax] + (len(shapes),) + first[ax:]


def _stack_vjp(g, *xs, out, axis=0):
    if g.__class__ is not np.ndarray:
        return tuple(_picked(g, slot) for slot in _stack_slots(xs, axis))
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
    xp = namespace(t)
    if xp is not np:
        return add_at(xp, xp.zeros(shape, dtype=xp.float64), index, t)
    placed = np.zeros(shape)
    placed[index] = t
    return placed


def _split_piece(shape, sizes, axis, part):
    """Where piece ``part`` lies: the axis split and the piece's start and stop along it (torch.split's pieces)."""
    if not shape:
        raise ValueError("split needs an axis to split, and a 0-d input has none")
    ax = check_axis(axis, len(shape))
    length = shape[ax]
    if _is_int(sizes):
        if sizes <= 0:
            raise ValueError(f"sizes {sizes} must be a positive piece size (or a list of sizes)")
        count = max(1, -(-length // sizes))  # the last piece takes what is left; an empty axis gives one
        starts = [k * sizes for k in range(count)]
        stops = [min(start + sizes, length) for start in starts]
    elif isinstance(sizes, (list, tuple)) and all(_is_int(n) and n >= 0 for n in sizes) and sizes:
        if sum(sizes) != length:
            raise ValueError(f"sizes {list(sizes)} add up to {sum(sizes)}, but axis {axis} has length {length}")
        stops = [int(n) for n in np.cumsum(sizes)]
        starts = [0] + stops[:-1]
        count = len(sizes)
    else:
        raise ValueError(f"sizes must be a positive int (the size of every piece but the last) or a non-empty "
                         f"list of sizes >= 0, got {sizes!r}")
    if not _is_int(part) or not -count <= part < count:
        raise ValueError(f"part {part!r} must be an int naming one of the {count} pieces "
                         f"(0 to {count - 1}, or counting from the end with -1)")
    return ax, starts[part], stops[part]


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _split_index(shape, sizes, axis, part):
    """The index of piece ``part`` in the input: every axis whole but a range of the one split."""
    ax, start, stop = _split_piece(shape, sizes, axis, part)
    return (slice(None),) * ax + (slice(start, stop),)


def _split_shape(x, *, sizes, axis=0, part):
    ax, start, stop = _split_piece(x, sizes, axis, part)
    return x[:ax] + (stop - start,) + x[ax + 1:]


def _split_forward(x, *, sizes, axis=0, part):
    return _picked(x, _split_index(x.shape, sizes, axis, part))


def _split_vjp(g, x, *, out, sizes, axis=0, part):
    return (_placed(g, _split_index(x.shape, sizes, axis, part), x.shape),)


def _split_jvp(tangents, x, *, out, sizes, axis=0, part):
    (t,) = tangents
    return (None if t is None else _picked(t, _split_index(x.shape, sizes, axis, part)),)


def _split_vjp_graph(g, x, *, out, sizes, axis=0, part):
    return (g.scatter_add(shape=x.shape, index=_split_index(x.shape, sizes, axis, part)),)


# torch's mode names, and numpy's for the same padding
_PAD_MODES: dict[str, Literal["constant", "reflect", "edge", "wrap"]] = {
    "constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_widths(shape, pad, mode, value):
    """Per axis, the (before, after) widths that torch's ``pad`` (last axis first) gives; checked."""
    if mode not in _PAD_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, _PAD_MODES))}, got {mode!r}")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or not all(_is_int(w) for w in pad):
        raise ValueError(f"pad must be a tuple of ints, two per padded axis (last axis first, as in torch: "
                         f"left, right, top, bottom, ...), got {pad!r}")
    if len(pad) > 2 * len(shape):
        raise ValueError(f"pad {tuple(pad)} pads {len(pad) // 2} axes, but the input has {len(shape)}")
    widths = [(0, 0)] * len(shape)
    for k in range(len(pad) // 2):
        widths[len(shape) - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    for ax, ((before, after), n) in enumerate(zip(widths, shape)):
        if n + before + after < 0:
            raise ValueError(f"pad {tuple(pad)} would leave axis {ax} (length {n}) with {n + before + after} "
                             f"elements")
        if mode == "constant":
            continue
        if before < 0 or after < 0:
            raise ValueError(f"pad {tuple(pad)} crops axis {ax}; only mode 'constant' takes negative widths")
        if value != 0.0:
            raise ValueError(f"mode {mode!r} takes its values from x and no value (got value={value!r})")
        if mode == "reflect" and max(before, after) >= n:
            raise ValueError(f"reflect padding of axis {ax} must be shorter than its length {n}, "
                             f"got {(before, after)}")
        if mode == "replicate" and n == 0 and (before or after):
            raise ValueError(f"replicate padding of axis {ax} needs an element to repeat, and it is empty")
        if mode == "circular" and max(before, after) > n:
            raise ValueError(f"circular padding of axis {ax} may wrap around once at most (length {n}), "
                             f"got {(before, after)}")
    return widths


def _pad_shape(x, *, pad, mode="constant", value=0.0):
    return tuple(n + before + after for n, (before, after) in zip(x, _pad_widths(x, pad, mode, value)))


def _pad_kept(shape, widths):
    """What constant padding keeps of x and where it goes in the output: two indexes (widths < 0 crop)."""
    kept, placed = [], []
    for n, (before, after) in zip(shape, widths):
        length = max(n - max(-before, 0) - max(-after, 0), 0)
        kept.append(slice(max(-before, 0), max(-before, 0) + length))
        placed.append(slice(max(before, 0), max(before, 0) + length))
    return tuple(kept), tuple(placed)


def _pad_sources(shape, widths, mode):
    """For a mode that copies x's elements (reflect, replicate, circular): per axis, where each output one comes from.

    Indexing x with these (np.ix_) pads it, and adding the gradient back at them
    (scatter_add) is the vjp: an element copied to several places gets all their gradients.
    """
    return np.ix_(*(np.pad(np.arange(n), w, mode=_PAD_MODES[mode]) for n, w in zip(shape, widths)))


def _pad_forward(x, *, pad, mode="constant", value=0.0):
    widths = _pad_widths(x.shape, pad, mode, value)
    if mode != "constant":
        return _picked(x, _pad_sources(x.shape, widths, mode))
    xp = namespace(x)
    kept, placed = _pad_kept(x.shape, widths)
    if xp is not np:  # the padding, then x's kept part added where it goes (writing into slices is not for every library)
        out = xp.full(_pad_shape(x.shape, pad=pad), float(value), dtype=xp.result_type(x.dtype, xp.float64))
        inside = add_at(xp, xp.zeros(out.shape, dtype=out.dtype), placed, _picked(x, kept))
        return xp.where(add_at(xp, xp.zeros(out.shape, dtype=xp.float64), placed, 1.0) > 0, inside, out)
    out = np.full(_pad_shape(x.shape, pad=pad), value, dtype=np.result_type(x, np.float64))
    out[placed] = x[kept]
    return out


def _negated(pad):
    return tuple(-w for w in pad)


def _pad_vjp(g, x, *, out, pad, mode="constant", value=0.0):
    # constant padding's adjoint crops what it added and pads back what it cropped: pad by -pad
    if mode == "constant":
        return (_pad_forward(g, pad=_negated(pad)),)
    return (_scatter_add_forward(g, shape=x.shape, index=_pad_sources(x.shape, _pad_widths(x.shape, pad, mode, value),
                                                                      mode)),)


def _pad_jvp(tangents, x, *, out, pad, mode="constant", value=0.0):
    (t,) = tangents
    return (None if t is None else _pad_forward(t, pad=pad, mode=mode),)


def _pad_vjp_graph(g, x, *, out, pad, mode="constant", value=0.0):
    if mode == "constant":
        return (g.pad(pad=_negated(pad)),)
    return (g.scatter_add(shape=x.shape, index=_pad_sources(x.shape, _pad_widths(x.shape, pad, mode, value), mode)),)


# -- how generated code writes them (dp.codegen) ---------------------------------------------


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
    # occurrence, so an element picked twice by an index array gets both gradients. A basic index
    # picks each element once: += adds to the zeros as add.at does (so -0.0 comes out 0.0, as the rule's)
    subscript, index, target = _subscript(call), call.attrs["index"], call.targets[0]
    if subscript is None:
        return None
    scatter = (f"{target}[{subscript}] += {call.grad}" if _basic(index)
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
    scatter = (f"{out}[{subscript}] += {call.inputs[0]}" if _basic(index)
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


def _written_slice(part):
    return f"{part.start or ''}:{'' if part.stop is None else part.stop}"


def _split_written_index(call):
    attrs = call.attrs
    index = _split_index(call.shapes[0], attrs["sizes"], attrs.get("axis", 0), attrs["part"])
    return ", ".join(_written_slice(part) for part in index)


def _split_source(call):
    return f"{call.inputs[0]}[{_split_written_index(call)}]"


def _split_vjp_source(call):
    target = call.targets[0]
    return ([f"{target} = np.zeros({call.inputs[0]}.shape)", f"{target}[{_split_written_index(call)}] = {call.grad}"],)


def _pad_source(call):
    pad, mode, value = call.attrs["pad"], call.attrs.get("mode", "constant"), call.attrs.get("value", 0.0)
    widths = _pad_widths(call.shapes[0], pad, mode, value)
    if any(w < 0 for pair in widths for w in pair):
        return None  # cropping: the op's own forward
    if mode != "constant":
        return f"np.pad({call.inputs[0]}, {widths!r}, mode={_PAD_MODES[mode]!r})"
    constant = f", constant_values={call.literal(value)}" if value != 0.0 else ""
    return f"np.pad({call.inputs[0]}, {widths!r}{constant})"


def _pad_vjp_source(call):
    pad, mode = call.attrs["pad"], call.attrs.get("mode", "constant")
    widths = _pad_widths(call.shapes[0], pad, mode, call.attrs.get("value", 0.0))
    if mode != "constant" or any(w < 0 for pair in widths for w in pair):
        return None  # the gradients of copied elements add up: the op's own rule
    _, placed = _pad_kept(call.shapes[0], widths)
    return (f"{call.grad}[{', '.join(_written_slice(part) for part in placed)}]",)


def _getitem_example(rng):
    return ((4, 3),), {"index": ([0, 2, 0], slice(1, None))}


def _scatter_add_example(rng):
    return ((3, 2),), {"shape": (4, 2), "index": [0, 2, 0]}


def _concat_example(rng):
    return ((2, 3), (4, 3), (1, 3)), {"axis": 0}


def _stack_example(rng):
    return ((2, 3), (2, 3), (2, 3)), {"axis": 1}


def _split_example(rng):
    return ((3, 5),), {"sizes": 2, "axis": 1, "part": 1}


def _pad_example(rng):
    return ((2, 3, 4),), {"pad": (1, 2, 0, 1)}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: getitem, scatter_add, concat, stack, split and pad."""
    return [
        Op("getitem", forward=_getitem_forward, vjp=_getitem_vjp, jvp=_getitem_jvp, vjp_graph=_getitem_vjp_graph,
           shape=_getitem_shape, example=_getitem_example,
           source=SourceForm(forward=_getitem_source, vjp=_getitem_vjp_source),
           doc="x[index] with NumPy indexing: ints, slices, Ellipsis, None, integer arrays"),
        Op("scatter_add", forward=_scatter_add_forward, vjp=_scatter_add_vjp, jvp=_scatter_add_jvp,
           vjp_graph=_scatter_add_vjp_graph, inputs=("g",), shape=_scatter_add_shape, example=_scatter_add_example,
           source=SourceForm(forward=_scatter_add_source, vjp=_scatter_add_vjp_source),
           doc="zeros of shape with g added at index (np.add.at: a repeated index adds twice); getitem's adjoint"),
        Op("concat", forward=_concat_forward, vjp=_concat_vjp, jvp=_concat_jvp, vjp_graph=_concat_vjp_graph,
           variadic=True, inputs=("x",), shape=_concat_shape, example=_concat_example,
           source=SourceForm(forward=functools.partial(_joined_source, "concatenate"), vjp=_concat_vjp_source),
           doc="join the inputs end to end along an existing axis"),
        Op("stack", forward=_stack_forward, vjp=_stack_vjp, jvp=_stack_jvp, vjp_graph=_stack_vjp_graph,
           variadic=True, inputs=("x",), shape=_stack_shape, example=_stack_example,
           source=SourceForm(forward=functools.partial(_joined_source, "stack"), vjp=_stack_vjp_source),
           doc="put equally shaped inputs side by side along a new axis"),
        Op("split", forward=_split_forward, vjp=_split_vjp, jvp=_split_jvp, vjp_graph=_split_vjp_graph,
           shape=_split_shape, example=_split_example, source=SourceForm(forward=_split_source, vjp=_split_vjp_source),
           doc="piece number part of x cut along axis into pieces of size sizes (the last one shorter) or of "
               "the sizes in a list, as torch.split"),
        Op("pad", forward=_pad_forward, vjp=_pad_vjp, jvp=_pad_jvp, vjp_graph=_pad_vjp_graph, shape=_pad_shape,
           example=_pad_example, source=SourceForm(forward=_pad_source, vjp=_pad_vjp_source),
           doc="x padded with pad (torch order: last axis first, (before, after) each) by value (mode 'constant'; "
               "negative widths crop) or by 'reflect', 'replicate' or 'circular' copies"),
    ]
