"""Pooling: max_pool2d, avg_pool2d and adaptive_avg_pool2d, with torch.nn.functional's semantics.

Each output pixel summarises one window of its channel of the input (N, C, H, W). An
average pool spreads each output's gradient evenly over its window, so its backward pass
is a ``fold`` (see the convolution family) of the scaled gradient; an adaptive average
pool, whose windows vary in size, is two products with averaging matrices,
``A_h @ x @ A_w^T``, which is what its ``decompose`` draws. A max pool passes each
output's whole gradient to one element of its window, the largest; when several are
equal, to the first in the window's row-major order, as torch does. Its backward pass as
nodes (``backward(create_graph=True)``) finds that element again from ``unfold(x)``
with comparisons, which are ``step`` nodes and pass no gradient, and folds the gradient
back onto it.

Windows are torch's: ``kernel_size``, ``stride`` (default: the kernel size), ``padding``
and ``dilation`` are ints or (height, width) pairs, the padding at most half the kernel
(so every window holds some input); the output size rounds down (``ceil_mode`` is not
provided).

>>> import numpy as np
>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [[[[1.0, 2.0, 0.0, 0.0],
...                      [4.0, 3.0, 0.0, 0.0]]]])
>>> top = g.ops.max_pool2d(x, kernel_size=2)
>>> g.forward(); g.backward(top, seed=[[[[1.0, 1.0]]]])
>>> top.value, x.grad                  # the second window's tie goes to its first zero
(array([[[[4., 0.]]]]), array([[[[0., 0., 1., 0.],
         [1., 0., 0., 0.]]]]))
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.backend import constant, namespace
from dagprop.op import SourceForm
from ._windows import Windows, inside, pair, permute, reshape, scatter_windows, stacked


def _pool_geometry(kernel_size, stride, padding, dilation=1) -> Windows:
    """The windows of a pool: the stride defaults to the kernel size, the padding is at most half the kernel."""
    geometry = Windows.of(kernel_size, kernel_size if stride is None else stride, padding, dilation)
    for axis, k, p in zip(("height", "width"), geometry.kernel, geometry.padding):
        if 2 * p > k:
            raise ValueError(f"padding {p} is more than half the kernel's {axis} {k}, so a window could hold "
                             f"padding only (torch refuses it too)")
    return geometry


def _pool_shape(x, geometry):
    if len(x) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got shape {x}")
    return x[:2] + geometry.out_size(x[2:])


# -- max_pool2d ---------------------------------------------------------------------------------


def _max_and_argmax(xp, x, geometry):
    """Each window's largest element and its position in the window, torch's way.

    The window's elements are visited in row-major order and a later one is taken only
    when strictly larger (or NaN): the first of equal maxima wins. Elements in the
    padding are never taken. One vectorised step per kernel offset, over every window.
    """
    slabs = stacked(xp, x, geometry, fill=-math.inf)
    count = slabs.shape[0]
    valid = constant(xp, inside(x.shape[2:], geometry).reshape(count, 1, 1, *slabs.shape[3:]), x) \
        if any(geometry.padding) else None
    best = slabs[0, ...]
    where = xp.zeros_like(best, dtype=xp.int64)
    if valid is not None:  # the first element inside the input is taken whatever its value (even -inf)
        best = xp.full_like(best, -math.inf)
        where = where - 1
    for k in range(1 if valid is None else 0, count):
        candidate = slabs[k, ...]
        taken = (candidate > best) | xp.isnan(candidate)
        if valid is not None:
            taken = (taken | (where < 0)) & valid[k, ...]
        best = xp.where(taken, candidate, best)
        where = xp.where(taken, k, where)
    return best, where


def _max_pool2d_forward(x, *, kernel_size, stride=None, padding=0, dilation=1):
    return _max_and_argmax(namespace(x), x, _pool_geometry(kernel_size, stride, padding, dilation))[0]


def _max_pool2d_shape(x, *, kernel_size, stride=None, padding=0, dilation=1):
    return _pool_shape(x, _pool_geometry(kernel_size, stride, padding, dilation))


def _max_pool2d_vjp(g, x, *, out, kernel_size, stride=None, padding=0, dilation=1):
    xp = namespace(g, x)
    geometry = _pool_geometry(kernel_size, stride, padding, dilation)
    _, where = _max_and_argmax(xp, x, geometry)
    kh, kw = geometry.kernel
    # one slab per kernel offset, holding g where that offset's element was taken and 0 elsewhere
    routed = reshape(xp, xp.where(where == _offsets(xp, kh * kw, x), g, 0.0), (kh, kw) + tuple(g.shape))
    return (scatter_windows(xp, permute(xp, routed, (2, 3, 0, 1, 4, 5)), x.shape[2:], geometry),)


def _offsets(xp, count: int, like):
    """The kernel offsets 0 .. count - 1 along a new first axis, to compare with each window's argmax."""
    return constant(xp, np.arange(count).reshape(-1, 1, 1, 1, 1), like)


def _max_pool2d_jvp(tangents, x, *, out, kernel_size, stride=None, padding=0, dilation=1):
    (t,) = tangents
    xp = namespace(x, t)
    geometry = _pool_geometry(kernel_size, stride, padding, dilation)
    _, where = _max_and_argmax(xp, x, geometry)
    slabs = stacked(xp, t, geometry)
    if xp is np:
        return (np.take_along_axis(slabs, where[None], axis=0)[0],)
    # take_along_axis is not in every namespace (dask's): each window's element picked by a mask, the rest 0
    kh, kw = geometry.kernel
    return (xp.sum(xp.where(where == _offsets(xp, kh * kw, x), slabs, 0.0), axis=0),)


def _max_pool2d_vjp_graph(g, x, *, out, kernel_size, stride=None, padding=0, dilation=1):
    geometry = _pool_geometry(kernel_size, stride, padding, dilation)
    graph = x.graph
    n, c, oh, ow = out.shape
    kh, kw = geometry.kernel
    size = kh * kw
    # every window as a column, (N, C, kh * kw, windows); the padding reads 0 there, so it is masked out
    columns = x.unfold(**geometry.attrs()).reshape(shape=(n, c, size, oh * ow))
    best = out.reshape(shape=(n, c, 1, oh * ow))
    # out >= each element of its window, equal at the maxima: 1 - step(out - element) marks them
    hits = 1.0 - (best > columns)
    if any(geometry.padding):
        hits = hits * graph.const(inside(x.shape[2:], geometry).reshape(1, 1, size, oh * ow).astype(float))
    # keep the first hit of each window: the number of hits before each position, by a product with
    # a strictly lower triangular matrix of ones, must be 0
    earlier = graph.const(np.tril(np.ones((size, size)), -1)) @ hits
    first = hits * (1.0 - (earlier > 0))
    routed = first * g.reshape(shape=(n, c, 1, oh * ow))
    return (routed.reshape(shape=(n, c * size, oh * ow)).fold(output_size=tuple(x.shape[2:]),
                                                             **geometry.attrs()),)


# -- avg_pool2d ---------------------------------------------------------------------------------


def _divisor(size, geometry, count_include_pad):
    """What each window's sum is divided by: its size, or (count_include_pad=False) its elements inside x
    (NumPy numbers, one per window: ``constant`` them into the arrays' namespace)."""
    kh, kw = geometry.kernel
    if count_include_pad or not any(geometry.padding):
        return float(kh * kw)
    return inside(size, geometry).sum(axis=(0, 1)).astype(float)


def _avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0, count_include_pad=True):
    xp = namespace(x)
    geometry = _pool_geometry(kernel_size, stride, padding)
    divisor = _divisor(x.shape[2:], geometry, count_include_pad)
    return xp.sum(stacked(xp, x, geometry), axis=0) / (divisor if isinstance(divisor, float)
                                                       else constant(xp, divisor, x))


def _avg_pool2d_shape(x, *, kernel_size, stride=None, padding=0, count_include_pad=True):
    return _pool_shape(x, _pool_geometry(kernel_size, stride, padding))


def _avg_pool2d_vjp(g, x, *, out, kernel_size, stride=None, padding=0, count_include_pad=True):
    xp = namespace(g)
    geometry = _pool_geometry(kernel_size, stride, padding)
    divisor = _divisor(x.shape[2:], geometry, count_include_pad)
    share = g / (divisor if isinstance(divisor, float) else constant(xp, divisor, g))
    spread = xp.broadcast_to(share[:, :, None, None, :, :], tuple(g.shape[:2]) + geometry.kernel + tuple(g.shape[2:]))
    return (scatter_windows(xp, spread, x.shape[2:], geometry),)


def _avg_pool2d_jvp(tangents, x, *, out, kernel_size, stride=None, padding=0, count_include_pad=True):
    (t,) = tangents
    return (_avg_pool2d_forward(t, kernel_size=kernel_size, stride=stride, padding=padding,
                                count_include_pad=count_include_pad),)


def _avg_pool2d_vjp_graph(g, x, *, out, kernel_size, stride=None, padding=0, count_include_pad=True):
    geometry = _pool_geometry(kernel_size, stride, padding)
    n, c, oh, ow = g.shape
    size = geometry.kernel[0] * geometry.kernel[1]
    share = g * g.graph.const(1.0 / _divisor(x.shape[2:], geometry, count_include_pad))
    columns = share.reshape(shape=(n, c, 1, oh * ow)).broadcast_to(shape=(n, c, size, oh * ow))
    return (columns.reshape(shape=(n, c * size, oh * ow)).fold(output_size=tuple(x.shape[2:]),
                                                              **geometry.attrs()),)


def _avg_pool2d_decompose(x, *, kernel_size, stride=None, padding=0, count_include_pad=True):
    geometry = _pool_geometry(kernel_size, stride, padding)
    n, c = x.shape[:2]
    oh, ow = geometry.out_size(x.shape[2:])
    size = geometry.kernel[0] * geometry.kernel[1]
    sums = x.unfold(**geometry.attrs()).reshape(shape=(n, c, size, oh * ow)).sum(axis=2)
    divisor = _divisor(x.shape[2:], geometry, count_include_pad)
    return (sums * x.graph.const(1.0 / np.reshape(divisor, -1))).reshape(shape=(n, c, oh, ow))


# -- adaptive_avg_pool2d ------------------------------------------------------------------------


def _adaptive_sizes(size, output_size):
    """The output's (height, width): ``output_size`` an int or a pair, None in a pair keeping the input's size."""
    given = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(given) != 2:
        raise ValueError(f"output_size must be an int or a pair (height, width), got {output_size!r}")
    return pair(tuple(n if o is None else o for o, n in zip(given, size)), "output_size", 1)


def _averaging(size, out):
    """The (out, size) matrix averaging torch's adaptive windows: row i averages the elements from
    floor(i * size / out) up to, not including, ceil((i + 1) * size / out)."""
    i = np.arange(out)
    starts = (i * size) // out
    ends = -((-(i + 1) * size) // out)
    columns = np.arange(size)
    inside_window = (columns >= starts[:, None]) & (columns < ends[:, None])
    return inside_window / (ends - starts)[:, None]


def _adaptive_matrices(shape, output_size):
    """A_h (oh, H) and A_w (ow, W): the pool is A_h @ x @ A_w^T on every channel."""
    oh, ow = _adaptive_sizes(shape[-2:], output_size)
    return _averaging(shape[-2], oh), _averaging(shape[-1], ow)


def _adaptive_avg_pool2d_forward(x, *, output_size):
    xp = namespace(x)
    rows, columns = _adaptive_matrices(x.shape, output_size)
    return constant(xp, rows, x) @ x @ constant(xp, columns.T, x)


def _adaptive_avg_pool2d_shape(x, *, output_size):
    if len(x) not in (3, 4):
        raise ValueError(f"x must have 4 dimensions (N, C, H, W) or 3 (C, H, W), got shape {x}")
    return tuple(x[:-2]) + _adaptive_sizes(x[-2:], output_size)


def _adaptive_avg_pool2d_vjp(g, x, *, out, output_size):
    xp = namespace(g)
    rows, columns = _adaptive_matrices(x.shape, output_size)
    return (constant(xp, rows.T, g) @ g @ constant(xp, columns, g),)


def _adaptive_avg_pool2d_jvp(tangents, x, *, out, output_size):
    (t,) = tangents
    return (_adaptive_avg_pool2d_forward(t, output_size=output_size),)


def _adaptive_avg_pool2d_vjp_graph(g, x, *, out, output_size):
    rows, columns = _adaptive_matrices(x.shape, output_size)
    return (g.graph.const(rows.T) @ g @ g.graph.const(columns),)


def _adaptive_avg_pool2d_decompose(x, *, output_size):
    rows, columns = _adaptive_matrices(x.shape, output_size)
    return x.graph.const(rows) @ x @ x.graph.const(columns.T)


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _tiles_source(call, method):
    """``x`` cut into non-overlapping tiles and reduced, ``x.reshape(N, C, oh, kh, ow, kw).max(axis=(3, 5))``,
    when the windows tile the input exactly (no padding or dilation, stride = kernel); None otherwise."""
    attrs = call.attrs
    geometry = _pool_geometry(attrs["kernel_size"], attrs.get("stride"), attrs.get("padding", 0),
                              attrs.get("dilation", 1))
    n, c, height, width = call.shapes[0]
    (kh, kw), (oh, ow) = geometry.kernel, call.out_shape[2:]
    if geometry.stride != geometry.kernel or any(geometry.padding) or geometry.dilation != (1, 1) \
            or (oh * kh, ow * kw) != (height, width):
        return None
    return f"{call.inputs[0]}.reshape({n}, {c}, {oh}, {kh}, {ow}, {kw}).{method}(axis=(3, 5))"


def _max_pool2d_source(call):
    return _tiles_source(call, "max")


def _avg_pool2d_source(call):
    return _tiles_source(call, "mean")


def _adaptive_avg_pool2d_source(call):
    shape = call.shapes[0]
    if call.out_shape[-2:] != (1, 1):
        return None
    return f"{call.inputs[0]}.mean(axis=({len(shape) - 2}, {len(shape) - 1}), keepdims=True)"


# -- examples and the registration ------------------------------------------------------------


def _max_pool2d_example(rng):
    return ((2, 2, 5, 4),), {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1}


def _avg_pool2d_example(rng):
    return ((2, 2, 5, 4),), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}


def _adaptive_avg_pool2d_example(rng):
    return ((2, 2, 5, 7),), {"output_size": (3, 4)}


_WINDOWS_DOC = "kernel_size, stride (default kernel_size), padding: ints or (height, width) pairs"


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: max_pool2d, avg_pool2d and adaptive_avg_pool2d."""
    return [
        Op("max_pool2d", forward=_max_pool2d_forward, vjp=_max_pool2d_vjp, jvp=_max_pool2d_jvp,
           vjp_graph=_max_pool2d_vjp_graph, shape=_max_pool2d_shape, example=_max_pool2d_example,
           source=SourceForm(forward=_max_pool2d_source),
           doc=f"the largest element of each window of x (N, C, H, W); {_WINDOWS_DOC}, dilation; the gradient "
               f"goes to the first maximum in row-major window order; torch's F.max_pool2d"),
        Op("avg_pool2d", forward=_avg_pool2d_forward, vjp=_avg_pool2d_vjp, jvp=_avg_pool2d_jvp,
           vjp_graph=_avg_pool2d_vjp_graph, decompose=_avg_pool2d_decompose, shape=_avg_pool2d_shape,
           example=_avg_pool2d_example, source=SourceForm(forward=_avg_pool2d_source),
           doc=f"the mean of each window of x (N, C, H, W); {_WINDOWS_DOC}; count_include_pad=False divides by "
               f"the elements inside x only; torch's F.avg_pool2d"),
        Op("adaptive_avg_pool2d", forward=_adaptive_avg_pool2d_forward, vjp=_adaptive_avg_pool2d_vjp,
           jvp=_adaptive_avg_pool2d_jvp, vjp_graph=_adaptive_avg_pool2d_vjp_graph,
           decompose=_adaptive_avg_pool2d_decompose, shape=_adaptive_avg_pool2d_shape,
           example=_adaptive_avg_pool2d_example, source=SourceForm(forward=_adaptive_avg_pool2d_source),
           doc="means over torch's adaptive windows (floor(i*H/out) to ceil((i+1)*H/out)) giving output_size "
               "(an int or a pair; None keeps that size); x (N, C, H, W) or (C, H, W); torch's "
               "F.adaptive_avg_pool2d"),
    ]
