"""Reductions: sum, mean, max, min, var, logsumexp and prod over some axes (default all),
optionally keeping them as size 1.

The gradient of a sum copies the incoming gradient to every element that was
added up; a mean also divides it by how many there were. The gradient of a max
(or min) goes to the elements equal to it, split evenly among ties, as
``torch.amax`` does. A variance sends each element 2 / (count - correction) times
its deviation from the mean; a logsumexp, the softmax; a product, the product of
the other elements, computed without dividing, so zeros are no special case. Each
op has the vjp, a jvp (forward mode) and a vjp_graph, the vjp built out of graph
nodes for ``backward(create_graph=True)``; a max's or min's picks its elements with
``step`` nodes, which pass no gradient. var and logsumexp are also composite ops:
their ``decompose`` draws the textbook circuit.

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

>>> k = dp.Graph()
>>> z = k.param("z", [2.0, 0.0, 4.0])
>>> p = z.prod()
>>> k.forward(); k.backward(p)
>>> p.value, z.grad
(array(0.), array([0., 8., 0.]))
"""

from __future__ import annotations

import functools
import math

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.op import SourceForm
from dagprop.backend import is_lazy, namespace
from ._common import check_axes, floats


def _reduced_shape(x, *, axis=None, keepdims=False):
    axes = check_axes(axis, len(x))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in axes)


def _kept(reduced, x, axis, keepdims, xp=None):
    """A reduced array (an output or its gradient) with the reduced axes of ``x`` back as size 1;
    ``xp``, the array's namespace, when the caller knows it already."""
    if xp is None:
        xp = namespace(reduced)
    reduced = xp.asarray(reduced)
    if keepdims or axis is None:  # axis None: a 0-d result, which broadcasts as it is
        return reduced
    return xp.reshape(reduced, _reduced_shape(x.shape, axis=axis, keepdims=True))


def _spread(g, x, axis, keepdims, divisor=1):
    """``g / divisor``, the gradient of a reduced output, copied back over the axes that were reduced."""
    # NumPy is checked inline: this runs for every sum and mean on every backward pass
    xp = np if g.__class__ is np.ndarray else namespace(g)
    g = _kept(g, x, axis, keepdims, xp)
    if xp is not np:
        if is_lazy(x):
            return _spread_lazy(xp, g if divisor == 1 else g / divisor, x)
        return xp.broadcast_to(g if divisor == 1 else g / divisor, x.shape)
    spread = np.empty(x.shape, dtype=g.dtype)
    spread[...] = g if divisor == 1 else g / divisor  # broadcasting assignment: one pass, in C
    return spread


def _spread_lazy(xp, g, x):
    """``g`` broadcast to a dask array ``x``'s shape in ``x``'s own chunks.

    Left to itself dask broadcasts into one chunk as large as ``x`` along the reduced axes,
    which the op meeting ``x``'s chunks then rechunks into dense copies, all ready at once
    (they depend on nothing but the seed) and held until each is used: for
    ``tanh(x @ W + b).sum()`` a quarter of x's bytes. In ``x``'s chunks each block is a
    read-only view of ``g``, made beside the block it meets.
    """
    if g.ndim:  # g's kept axes (size > 1) must already be chunked as x's are
        g = g.rechunk(tuple((1,) if n == 1 else c for n, c in zip(g.shape, x.chunks)))
    return xp.broadcast_to(g, x.shape, chunks=x.chunks)


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


def _sum(xp, x, axis, keepdims):
    """The sum over ``axis``: for NumPy arrays np.add.reduce, np.sum's arithmetic without its Python-level
    dispatch. The shape rule has already checked ``axis``; None, an int or a tuple go through as they are."""
    if xp is np:
        return np.asarray(np.add.reduce(x, axis=_as_axis(axis), keepdims=keepdims))
    return xp.sum(x, axis=_as_axis(axis), keepdims=keepdims)


def _sum_forward(x, *, axis=None, keepdims=False):
    if x.__class__ is np.ndarray:  # inline: the hottest reduction
        return np.asarray(np.add.reduce(x, axis=_as_axis(axis), keepdims=keepdims))
    return _sum(namespace(x), x, axis, keepdims)


def _sum_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_spread(g, x, axis, keepdims),)


def _mean_forward(x, *, axis=None, keepdims=False):
    xp = np if x.__class__ is np.ndarray else namespace(x)
    total = _sum(xp, x, axis, keepdims)
    count = _count(x.shape, axis)
    if count == 0:  # the mean of nothing is NaN, as in numpy and torch, without numpy's RuntimeWarning
        return xp.full(total.shape, float("nan"), dtype=xp.float64)
    return xp.asarray(total / count)


def _mean_vjp(g, x, *, out, axis=None, keepdims=False):
    if x.size == 0:  # an empty x (which it is whenever nothing was averaged) has an empty gradient
        xp = namespace(g)
        return (xp.zeros(x.shape, dtype=xp.float64),)
    return (_spread(g, x, axis, keepdims, _count(x.shape, axis)),)


def _mean_jvp(tangents, x, *, out, axis=None, keepdims=False):
    (t,) = tangents
    if _count(x.shape, axis) == 0:  # nothing was averaged: the output does not move (its NaN is fixed)
        xp = namespace(t)
        return (xp.zeros(out.shape, dtype=xp.float64),)
    return (_mean_forward(t, axis=axis, keepdims=keepdims),)


def _mean_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    spread = _spread_node(g, x, axis, keepdims)
    count = _count(x.shape, axis)
    return (spread if count in (0, 1) else spread / float(count),)  # a count of 0 spreads over an empty x


def _max_forward(x, *, axis=None, keepdims=False):
    xp = namespace(x)
    if xp is np:
        return np.asarray(np.maximum.reduce(x, axis=_as_axis(axis), keepdims=keepdims))
    return xp.max(x, axis=_as_axis(axis), keepdims=keepdims)


def _min_forward(x, *, axis=None, keepdims=False):
    xp = namespace(x)
    if xp is np:
        return np.asarray(np.minimum.reduce(x, axis=_as_axis(axis), keepdims=keepdims))
    return xp.min(x, axis=_as_axis(axis), keepdims=keepdims)


def _extremum_shape(x, *, axis=None, keepdims=False):
    empty = [i for i in check_axes(axis, len(x)) if x[i] == 0]
    if empty:
        raise ValueError(f"axis {empty[0]} has size 0 and an empty axis has no max or min (as in numpy and "
                         f"torch); reduce over other axes, or use sum")
    return _reduced_shape(x, axis=axis, keepdims=keepdims)


def _extremum_vjp(g, x, *, out, axis=None, keepdims=False):
    # torch's rule for amax and amin: the elements equal to the result share its gradient evenly.
    # Written as torch writes it, (g / count) * hits, so a NaN or inf in g spreads as it does there.
    xp = namespace(g, x)
    hits = floats(x == _kept(out, x, axis, keepdims))
    count = xp.sum(hits, axis=check_axes(axis, x.ndim), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # count is 0 only where out is NaN: NaN, as in torch
        share = _kept(g, x, axis, keepdims) / count
        return (xp.asarray(share * hits, dtype=xp.float64),)


def _extremum_jvp(tangents, x, *, out, axis=None, keepdims=False):
    # the mean of the tangent over the elements equal to the result: the vjp's even split, transposed
    (t,) = tangents
    xp = namespace(t, x)
    hits = floats(x == _kept(out, x, axis, keepdims))
    axes = check_axes(axis, x.ndim)
    with np.errstate(divide="ignore", invalid="ignore"):  # as in the vjp: count is 0 only where out is NaN
        moved = _sum(xp, t * hits, axes, keepdims) / _sum(xp, hits, axes, keepdims)
    return (xp.asarray(moved, dtype=xp.float64),)


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
    return x - _sum(namespace(x), x, axis, True) / max(_count(x.shape, axis), 1)


def _var_forward(x, *, axis=None, keepdims=False, correction=1):
    deviation = _var_deviation(x, axis)
    xp = namespace(x)
    squares = _sum(xp, deviation * deviation, axis, keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):  # no degrees of freedom: inf or NaN, as in torch
        return xp.asarray(squares / _degrees_of_freedom(x.shape, axis, correction))


def _var_scale(shape, axis, correction):
    with np.errstate(divide="ignore"):  # a plain float: a NumPy scalar would turn another library's array into NumPy's
        return float(np.float64(2.0) / _degrees_of_freedom(shape, axis, correction))


def _var_vjp(g, x, *, out, axis=None, keepdims=False, correction=1):
    # torch's var_backward: 2 / (N - correction) * g * (x - mean); the mean's own gradient
    # cancels, since the deviations sum to zero
    with np.errstate(invalid="ignore"):
        return (_spread(g, x, axis, keepdims) * (_var_scale(x.shape, axis, correction) * _var_deviation(x, axis)),)


def _var_jvp(tangents, x, *, out, axis=None, keepdims=False, correction=1):
    (t,) = tangents
    moved = _sum_forward(t * _var_deviation(x, axis), axis=axis, keepdims=keepdims)
    with np.errstate(invalid="ignore"):
        return (namespace(moved).asarray(moved * _var_scale(x.shape, axis, correction)),)


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


def _logsumexp_forward(x, *, axis=None, keepdims=False):
    # torch's logsumexp: shift by the max, unless the max is infinite (then shift by 0, so that
    # inf - inf gives no NaN); an empty slice has max -inf and gives log(0) = -inf
    axes = _as_axis(axis)
    xp = namespace(x)
    if xp is np:
        shift = np.maximum.reduce(x, axis=axes, keepdims=True, initial=-np.inf)
    elif _count(x.shape, axis) == 0:  # the standard's max has no initial value for an empty slice
        shift = xp.zeros(_reduced_shape(x.shape, axis=axis, keepdims=True), dtype=x.dtype)
    else:
        shift = xp.max(x, axis=axes, keepdims=True)
    shift = xp.where(xp.isinf(shift), 0.0, shift)
    with np.errstate(divide="ignore"):
        total = xp.log(_sum(xp, xp.exp(x - shift), axes, True)) + shift
    return total if keepdims else xp.reshape(total, _reduced_shape(x.shape, axis=axis))


def _logsumexp_softmax(x, out, axis, keepdims):
    """exp(x - logsumexp(x)): the softmax over the reduced axes, the derivative of logsumexp."""
    with np.errstate(invalid="ignore"):  # NaN where out is infinite (inf - inf), as in torch
        return namespace(x).exp(x - _kept(out, x, axis, keepdims))


def _logsumexp_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_kept(g, x, axis, keepdims) * _logsumexp_softmax(x, out, axis, keepdims),)


def _logsumexp_jvp(tangents, x, *, out, axis=None, keepdims=False):
    (t,) = tangents
    return (_sum_forward(t * _logsumexp_softmax(x, out, axis, keepdims), axis=axis, keepdims=keepdims),)


def _logsumexp_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    return (_spread_node(g, x, axis, keepdims) * (x - _kept_node(out, x, axis, keepdims)).exp(),)


def _logsumexp_decompose(x, *, axis=None, keepdims=False):
    # the stable circuit: log(sum(exp(x - max))) + max. The max's gradient cancels (shifting every
    # x by the same amount shifts the result by it), so each x gets g * softmax, as in the vjp.
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted.exp().sum(axis=axis, keepdims=keepdims).log() + x.max(axis=axis, keepdims=keepdims)


def _prod_forward(x, *, axis=None, keepdims=False):
    xp = namespace(x)
    if xp is np:
        return np.asarray(np.multiply.reduce(x, axis=_as_axis(axis), keepdims=keepdims))
    return xp.prod(x, axis=_as_axis(axis), keepdims=keepdims)


def _product_of_the_others(x, axis):
    """For every element, the product of the other elements of its slice: d prod / d x, with no division.

    The reduced axes are moved last and flattened, and the product of the elements before and
    after each one are two exclusive running products (torch's prod_safe_zeros_backward), so a
    zero makes the others' products 0 and its own the product of the rest.
    """
    axes = check_axes(axis, x.ndim)
    kept = [i for i in range(x.ndim) if i not in axes]
    xp = namespace(x)
    rows = xp.reshape(xp.permute_dims(x, tuple(kept + list(axes))), tuple([x.shape[i] for i in kept] + [-1]))
    if xp is np:
        before = np.ones_like(rows)
        np.cumprod(rows[..., :-1], axis=-1, out=before[..., 1:])
        after = np.ones_like(rows)
        np.cumprod(rows[..., :0:-1], axis=-1, out=after[..., -2::-1])
    else:  # the same running products, in the same order, without writing into slices
        before = xp.cumulative_prod(rows, axis=-1, include_initial=True)[..., :-1]
        after = xp.flip(xp.cumulative_prod(xp.flip(rows, axis=-1), axis=-1, include_initial=True)[..., :-1], axis=-1)
    others = xp.reshape(before * after, tuple([x.shape[i] for i in kept + list(axes)]))
    return xp.permute_dims(others, tuple(int(i) for i in np.argsort(kept + list(axes))))


def _prod_vjp(g, x, *, out, axis=None, keepdims=False):
    return (_kept(g, x, axis, keepdims) * _product_of_the_others(x, axis),)


def _prod_jvp(tangents, x, *, out, axis=None, keepdims=False):
    (t,) = tangents
    return (_sum_forward(t * _product_of_the_others(x, axis), axis=axis, keepdims=keepdims),)


def _prod_vjp_graph(g, x, *, out, axis=None, keepdims=False):
    return (_spread_node(g, x, axis, keepdims) * _product_of_the_others_node(x, axis),)


def _product_of_the_others_node(x, axis):
    """:func:`_product_of_the_others` as nodes, right in value and in first derivative, zeros included.

    ``nonzero`` is x with its zeros replaced by 1 (``ones`` marks them with steps, so it still
    moves as x does), and ``P / nonzero`` (P its product) is the product of the others for an
    element whose others hold no zero. An element whose others hold zeros has a product of 0;
    its slope is not 0 when they hold exactly one, at k: there it is d x_k times the product
    of the rest. So ``P / nonzero`` is multiplied by 1 where the others hold no zero, by x_k
    (0, with slope 1 along x_k) where they hold one, and by 0 where they hold more; no
    division by a zero, and the second derivatives match torch's.
    """
    ones = 1.0 - (x > 0) - (x < 0)
    nonzero = x + ones
    zeros_held = ones.sum(axis=axis, keepdims=True) - ones  # how many zeros each element's product holds
    at_zeros = (x * ones).sum(axis=axis, keepdims=True) - x * ones  # the others' zeros added up: x_k
    none_held = 1.0 - (zeros_held > 0.5)
    one_held = (zeros_held > 0.5) - (zeros_held > 1.5)
    return nonzero.prod(axis=axis, keepdims=True) / nonzero * (none_held + one_held * at_zeros)


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
    count = _count(call.shapes[0], call.attrs.get("axis"))
    # numpy's mean is this sum divided by the count, bit for bit, with a Python layer less
    return None if count == 0 else f"{_reduction_source('sum', call)} / {count}"


def _mean_vjp_source(call):
    count = _count(call.shapes[0], call.attrs.get("axis"))
    if count == 0:
        return None
    return (f"{_sum_vjp_source(call)[0]} / {count}",)  # divided per element, as the rule does


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


def _logsumexp_source(call):
    if 0 in call.shapes[0]:
        return None  # an empty slice has no max: the op's own forward gives -inf
    x, out = call.inputs[0], call.out
    kept = ", ".join(_axis_argument(call) + ["keepdims=True"])
    lines = [f"{out} = {x}.max({kept})",  # the shift, so that exp cannot overflow
             f"{out} = np.log(np.exp({x} - {out}).sum({kept})) + {out}"]
    if not call.attrs.get("keepdims", False):
        lines.append(f"{call.out} = {call.out}.reshape({call.literal(call.out_shape)})")
    return lines


def _logsumexp_vjp_source(call):
    x = call.inputs[0]
    return (f"{_kept_source(call, call.grad)} * np.exp({x} - {_kept_source(call, call.out)})",)


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
    """This family's ops: sum, mean, max, min, var, logsumexp and prod."""
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
        Op("logsumexp", forward=_logsumexp_forward, vjp=_logsumexp_vjp, jvp=_logsumexp_jvp,
           vjp_graph=_logsumexp_vjp_graph, decompose=_logsumexp_decompose, shape=_reduced_shape,
           example=_over_last_keeping, source=SourceForm(forward=_logsumexp_source, vjp=_logsumexp_vjp_source),
           doc=f"log(sum(exp(x))) {_AXIS_DOC}, computed stably; its gradient is the softmax"),
        Op("prod", forward=_prod_forward, vjp=_prod_vjp, jvp=_prod_jvp, vjp_graph=_prod_vjp_graph,
           shape=_reduced_shape, example=_over_rows, source=SourceForm(forward=functools.partial(_reduction_source, "prod")),
           doc=f"product {_AXIS_DOC}; each element's gradient is the product of the others (zeros included)"),
    ]
