"""Convolution: unfold (im2col), fold (col2im), conv2d and conv1d, with torch.nn.functional's semantics.

A convolution is a matrix product in disguise. ``unfold`` copies every window of the
(padded) image into a column, so that sliding a kernel over the image becomes one
product of the flattened kernels with the matrix of columns: that is conv2d's forward
(one product per group), and what its ``decompose`` draws (unfold, reshape, matmul,
add). ``fold`` is unfold's adjoint: it adds each column back onto the pixels its window
covered, overlapping windows adding up. So the gradient of an image is the fold of the
kernels' transpose times the output's gradient, and the gradient of the kernels is the
output's gradient times the columns' transpose. The two ops' backward passes are each
other, so ``backward(create_graph=True)`` through a convolution is built of unfold,
fold and matmul nodes, and second derivatives go through them again.

Layouts are torch's: images (N, C, H, W), kernels (out_channels, in_channels / groups,
kh, kw); each of ``stride``, ``padding`` and ``dilation`` is an int or a (height, width)
pair; a convolution's ``padding`` may also be ``"valid"`` (none) or ``"same"`` (as much
as keeps the size; stride 1, and an odd dilated kernel extent, since the padding here is
the same on both sides).

>>> import numpy as np
>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.input("x", np.arange(9.0).reshape(1, 1, 3, 3))
>>> w = g.param("w", np.ones((1, 1, 2, 2)))
>>> y = g.ops.conv2d(x, w)        # the sum of each 2x2 window
>>> L = y.sum()
>>> g.forward(); g.backward(L)
>>> y.value[0, 0], w.grad[0, 0]   # each kernel element saw four pixels
(array([[ 8., 12.],
       [20., 24.]]), array([[ 8., 12.],
       [20., 24.]]))
>>> g.ops.unfold(x, kernel_size=2).shape  # 1 channel * 2 * 2 rows, one column per window
(1, 4, 4)
"""

from __future__ import annotations

import functools

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.backend import namespace
from dagprop.op import SourceForm
from ._common import swap_last
from ._windows import Windows, pair, permute, reshape, scatter_windows, windows

# -- unfold and fold ---------------------------------------------------------------------------


def _check_image(x):
    if len(x) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got shape {x}")


def _unfold_forward(x, *, kernel_size, stride=1, padding=0, dilation=1):
    xp = namespace(x)
    view = windows(xp, x, Windows.of(kernel_size, stride, padding, dilation))
    n, c, kh, kw, oh, ow = view.shape
    return reshape(xp, view, (n, c * kh * kw, oh * ow))


def _unfold_shape(x, *, kernel_size, stride=1, padding=0, dilation=1):
    _check_image(x)
    geometry = Windows.of(kernel_size, stride, padding, dilation)
    oh, ow = geometry.out_size(x[2:])
    kh, kw = geometry.kernel
    return x[0], x[1] * kh * kw, oh * ow


def _unfold_vjp(g, x, *, out, kernel_size, stride=1, padding=0, dilation=1):
    return (_fold_forward(g, output_size=x.shape[2:], kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation),)


def _unfold_jvp(tangents, x, *, out, kernel_size, stride=1, padding=0, dilation=1):
    (t,) = tangents
    return (None if t is None else _unfold_forward(t, kernel_size=kernel_size, stride=stride, padding=padding,
                                                   dilation=dilation),)


def _unfold_vjp_graph(g, x, *, out, kernel_size, stride=1, padding=0, dilation=1):
    return (g.fold(output_size=tuple(x.shape[2:]), kernel_size=kernel_size, stride=stride, padding=padding,
                   dilation=dilation),)


def _fold_forward(cols, *, output_size, kernel_size, stride=1, padding=0, dilation=1):
    geometry = Windows.of(kernel_size, stride, padding, dilation)
    size = pair(output_size, "output_size", 0)
    (kh, kw), (oh, ow) = geometry.kernel, geometry.out_size(size)
    n, rows, _ = cols.shape
    xp = namespace(cols)
    return scatter_windows(xp, reshape(xp, cols, (n, rows // (kh * kw), kh, kw, oh, ow)), size, geometry)


def _fold_shape(cols, *, output_size, kernel_size, stride=1, padding=0, dilation=1):
    if len(cols) != 3:
        raise ValueError(f"cols must have 3 dimensions (N, C * kh * kw, L), got shape {cols}")
    geometry = Windows.of(kernel_size, stride, padding, dilation)
    size = pair(output_size, "output_size", 0)
    kh, kw = geometry.kernel
    if cols[1] % (kh * kw):
        raise ValueError(f"cols has {cols[1]} rows, which is not a multiple of kh * kw = {kh} * {kw}: each "
                         f"channel needs one row per kernel element")
    oh, ow = geometry.out_size(size)
    if cols[2] != oh * ow:
        raise ValueError(f"cols has {cols[2]} columns, but windows of this geometry fit {oh} * {ow} = {oh * ow} "
                         f"times in an output of size {size}; give one column per window")
    return cols[0], cols[1] // (kh * kw), size[0], size[1]


def _fold_vjp(g, cols, *, out, output_size, kernel_size, stride=1, padding=0, dilation=1):
    return (_unfold_forward(g, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation),)


def _fold_jvp(tangents, cols, *, out, output_size, kernel_size, stride=1, padding=0, dilation=1):
    (t,) = tangents
    return (None if t is None else _fold_forward(t, output_size=output_size, kernel_size=kernel_size,
                                                 stride=stride, padding=padding, dilation=dilation),)


def _fold_vjp_graph(g, cols, *, out, output_size, kernel_size, stride=1, padding=0, dilation=1):
    return (g.unfold(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation),)


# -- conv2d ------------------------------------------------------------------------------------


def _conv_geometry(kernel: tuple[int, ...], stride=1, padding=0, dilation=1) -> Windows:
    """The windows of a convolution with a kernel of spatial shape ``kernel``; ``padding`` may be a string."""
    if isinstance(padding, str):
        padding = _named_padding(padding, kernel, stride, dilation)
    return Windows.of(tuple(kernel), stride, padding, dilation)


def _named_padding(padding: str, kernel: tuple[int, ...], stride, dilation) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding != "same":
        raise ValueError(f"padding must be an int, a pair of ints, 'valid' or 'same', got {padding!r}")
    if pair(stride, "stride", 1) != (1, 1):
        raise ValueError(f"padding='same' needs stride 1 (as in torch), got stride={stride!r}")
    extents = [d * (k - 1) for k, d in zip(kernel, pair(dilation, "dilation", 1))]
    if any(e % 2 for e in extents):
        raise ValueError(f"padding='same' with a dilated kernel of even extent ({kernel}, dilation {dilation!r}) "
                         f"needs one more row or column of padding on one side, which this op does not do; "
                         f"use an odd kernel")
    return extents[0] // 2, extents[1] // 2


def _check_groups(groups):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")


def _conv2d_shape(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    _check_image(x)
    if len(weight) != 4:
        raise ValueError(f"weight must have 4 dimensions (out_channels, in_channels / groups, kh, kw), "
                         f"got shape {weight}")
    _check_groups(groups)
    channels, (out_channels, per_group) = x[1], weight[:2]
    if channels % groups:
        raise ValueError(f"x has {channels} channels, which groups={groups} does not divide")
    if out_channels % groups:
        raise ValueError(f"weight has {out_channels} output channels, which groups={groups} does not divide")
    if per_group * groups != channels:
        raise ValueError(f"weight takes {per_group} input channels per group, so {per_group * groups} with "
                         f"groups={groups}, but x has {channels} channels")
    if bias is not None and tuple(bias) != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},), one number per output channel, got {bias}")
    oh, ow = _conv_geometry(weight[2:], stride, padding, dilation).out_size(x[2:])
    return x[0], out_channels, oh, ow


def _columns(xp, x, geometry, groups):
    """im2col laid out for one matrix product per group: (groups, C / groups * kh * kw, N * oh * ow)."""
    view = windows(xp, x, geometry)
    n, c, kh, kw, oh, ow = view.shape
    # the channels split by group in a reshape of their own: dask's reshape cannot split and merge at once
    by_group = reshape(xp, view, (n, groups, c // groups, kh, kw, oh, ow))
    return reshape(xp, permute(xp, by_group, (1, 2, 3, 4, 0, 5, 6)), (groups, c // groups * kh * kw, n * oh * ow))


def _convolve(xp, x, weight, geometry, groups):
    """The convolution of ``x`` with ``weight``, without bias: (N, O, oh, ow)."""
    out_channels = weight.shape[0]
    product = reshape(xp, weight, (groups, out_channels // groups, -1)) @ _columns(xp, x, geometry, groups)
    oh, ow = geometry.out_size(x.shape[2:])
    return permute(xp, reshape(xp, product, (out_channels, x.shape[0], oh, ow)), (1, 0, 2, 3))


def _conv2d_forward(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    xp = namespace(x, weight, bias)
    out = _convolve(xp, x, weight, _conv_geometry(weight.shape[2:], stride, padding, dilation), groups)
    if xp is not np:
        return out if bias is None else out + reshape(xp, bias, (-1, 1, 1))
    if bias is None:
        return np.ascontiguousarray(out)
    # written into a fresh array: out is a transposed view, and the sum would keep its layout
    return np.add(out, bias[:, None, None], out=np.empty(out.shape))


def _conv2d_vjp(g, x, weight, bias=None, *, out, needs, stride=1, padding=0, dilation=1, groups=1):
    xp = namespace(g, x, weight)
    geometry = _conv_geometry(weight.shape[2:], stride, padding, dilation)
    n, out_channels, oh, ow = g.shape
    # the gradient laid out like the product that made the output: (groups, O / groups, N * oh * ow)
    g_product = reshape(xp, permute(xp, reshape(xp, g, (n, groups, out_channels // groups, oh * ow)), (1, 2, 0, 3)),
                           (groups, out_channels // groups, n * oh * ow))
    kernels = reshape(xp, weight, (groups, out_channels // groups, -1))
    gx = gw = None
    if needs[0]:
        g_columns = swap_last(kernels) @ g_product
        kh, kw = geometry.kernel
        split = reshape(xp, g_columns, (groups, x.shape[1] // groups, kh, kw, n, oh, ow))  # then merged, for dask
        g_windows = reshape(xp, permute(xp, split, (4, 0, 1, 2, 3, 5, 6)), (n, x.shape[1], kh, kw, oh, ow))
        gx = scatter_windows(xp, g_windows, x.shape[2:], geometry)
    if needs[1]:
        gw = reshape(xp, g_product @ swap_last(_columns(xp, x, geometry, groups)), weight.shape)
    if bias is None:
        return gx, gw
    return gx, gw, (xp.sum(g, axis=(0, 2, 3)) if needs[2] else None)


def _conv2d_jvp(tangents, x, weight, bias=None, *, out, stride=1, padding=0, dilation=1, groups=1):
    # linear in x and in weight: the tangent of each is convolved with the other's value
    xp = namespace(x, weight)
    geometry = _conv_geometry(weight.shape[2:], stride, padding, dilation)
    tx, tw = tangents[:2]
    from_x = None if tx is None else _convolve(xp, tx, weight, geometry, groups)
    from_w = None if tw is None else _convolve(xp, x, tw, geometry, groups)
    if bias is None:
        return from_x, from_w
    tb = tangents[2]
    return from_x, from_w, (None if tb is None else xp.broadcast_to(reshape(xp, tb, (-1, 1, 1)), out.shape))


def _conv2d_vjp_graph(g, x, weight, bias=None, *, out, needs, stride=1, padding=0, dilation=1, groups=1):
    geometry = _conv_geometry(weight.shape[2:], stride, padding, dilation)
    gx, gw = _conv_grad_nodes(g, x, weight, geometry, groups, needs)
    if bias is None:
        return gx, gw
    return gx, gw, (g.sum(axis=(0, 2, 3)) if needs[2] else None)


def _grouped_columns_node(x, geometry, groups):
    """``x`` unfolded, split by group: a node (N, groups, C / groups * kh * kw, oh * ow)."""
    cols = x.unfold(**geometry.attrs())
    n, rows, windows_count = cols.shape
    return cols.reshape(shape=(n, groups, rows // groups, windows_count))


def _conv_grad_nodes(g, x, weight, geometry, groups, needs):
    """The gradients of x and weight as nodes: fold(kernels^T @ g) and the sum over images of g @ columns^T."""
    n, out_channels, oh, ow = g.shape
    g_grouped = g.reshape(shape=(n, groups, out_channels // groups, oh * ow))
    gx = gw = None
    if needs[0]:
        kernels = weight.reshape(shape=(groups, out_channels // groups, -1))
        g_columns = kernels.transpose(axes=(0, 2, 1)) @ g_grouped  # (N, groups, C / groups * kh * kw, L)
        gx = g_columns.reshape(shape=(n, -1, oh * ow)).fold(output_size=tuple(x.shape[2:]),
                                                            **geometry.attrs())
    if needs[1]:
        cols = _grouped_columns_node(x, geometry, groups)
        gw = (g_grouped @ cols.transpose(axes=(0, 1, 3, 2))).sum(axis=0).reshape(shape=weight.shape)
    return gx, gw


def _conv2d_decompose(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    geometry = _conv_geometry(weight.shape[2:], stride, padding, dilation)
    out_channels = weight.shape[0]
    kernels = weight.reshape(shape=(groups, out_channels // groups, -1))
    product = kernels @ _grouped_columns_node(x, geometry, groups)  # (N, groups, O / groups, oh * ow)
    out = product.reshape(shape=(x.shape[0], out_channels) + geometry.out_size(x.shape[2:]))
    return out if bias is None else out + bias.reshape(shape=(out_channels, 1, 1))


# -- conv1d: conv2d on images one row high -----------------------------------------------------


def _single(value, what):
    """A 1-d attribute (an int, or a sequence of one int) as an int; strings pass through."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{what} of a 1-d convolution must be an int or a sequence of one int, got {value!r}")
        value = value[0]
    return value


def _as_2d(stride, padding, dilation):
    """conv1d's attributes as conv2d's on a row: nothing moves along the height."""
    padding = _single(padding, "padding")
    return {"stride": (1, _single(stride, "stride")), "padding": padding if isinstance(padding, str) else (0, padding),
            "dilation": (1, _single(dilation, "dilation"))}


def _conv1d_shape(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    if len(x) != 3:
        raise ValueError(f"x must have 3 dimensions (N, C, L), got shape {x}")
    if len(weight) != 3:
        raise ValueError(f"weight must have 3 dimensions (out_channels, in_channels / groups, k), got shape {weight}")
    shape = _conv2d_shape(_row(x), _row(weight), bias, groups=groups, **_as_2d(stride, padding, dilation))
    return shape[:2] + shape[3:]


def _row(shape):
    """A shape (..., L) as an image one row high: (..., 1, L)."""
    return tuple(shape[:-1]) + (1, shape[-1])


def _conv1d_forward(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    return _unrow(_conv2d_forward(_as_row(x), _as_row(weight), bias, groups=groups,
                                  **_as_2d(stride, padding, dilation)))


def _conv1d_vjp(g, x, weight, bias=None, *, out, needs, stride=1, padding=0, dilation=1, groups=1):
    gx, gw, *gb = _conv2d_vjp(_as_row(g), _as_row(x), _as_row(weight), bias, out=None, needs=needs, groups=groups,
                              **_as_2d(stride, padding, dilation))
    return (_unrow(gx), _unrow(gw), *gb)


def _conv1d_jvp(tangents, x, weight, bias=None, *, out, stride=1, padding=0, dilation=1, groups=1):
    tx, tw, *tb = tangents
    moved = _conv2d_jvp((_as_row(tx), _as_row(tw), *tb), _as_row(x), _as_row(weight), bias, out=_as_row(out),
                        groups=groups, **_as_2d(stride, padding, dilation))
    return tuple(_unrow(m) for m in moved)


def _as_row(array):
    """An array (N, C, L) as images one row high, (N, C, 1, L); None stays None."""
    return None if array is None else array[:, :, None, :]


def _unrow(array):
    """Images one row high back as (N, C, L); None stays None."""
    return None if array is None else array[:, :, 0, :]


def _conv1d_vjp_graph(g, x, weight, bias=None, *, out, needs, stride=1, padding=0, dilation=1, groups=1):
    geometry = _conv_geometry(_row(weight.shape)[2:], **_as_2d(stride, padding, dilation))
    gx, gw = _conv_grad_nodes(g.reshape(shape=_row(g.shape)), x.reshape(shape=_row(x.shape)),
                              weight.reshape(shape=_row(weight.shape)), geometry, groups, needs)
    gx = None if gx is None else gx.reshape(shape=x.shape)
    gw = None if gw is None else gw.reshape(shape=weight.shape)
    if bias is None:
        return gx, gw
    return gx, gw, (g.sum(axis=(0, 2)) if needs[2] else None)


def _conv1d_decompose(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    rows = x.graph.op("conv2d", x.reshape(shape=_row(x.shape)), weight.reshape(shape=_row(weight.shape)),
                      *([] if bias is None else [bias]), groups=groups, **_as_2d(stride, padding, dilation))
    n, out_channels, _, length = rows.shape
    return rows.reshape(shape=(n, out_channels, length))


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _windows_source(x, geometry):
    """An expression for the windows of ``x``: a view (N, C, oh, ow, kh, kw), NumPy's own sliding_window_view."""
    (ph, pw), (sh, sw), (dh, dw) = geometry.padding, geometry.stride, geometry.dilation
    if ph or pw:
        x = f"np.pad({x}, ((0, 0), (0, 0), ({ph}, {ph}), ({pw}, {pw})))"
    view = f"np.lib.stride_tricks.sliding_window_view({x}, {geometry.extent()}, axis=(2, 3))"
    steps = [f"::{step}" if step != 1 else ":" for step in (sh, sw, dh, dw)]
    while steps and steps[-1] == ":":
        steps.pop()
    return f"{view}[:, :, {', '.join(steps)}]" if steps else view


_MOST_OFFSETS = 16  # beyond this, col2im written one line per kernel offset would not read well


def _col2im_source(target, plane, image_shape, geometry):
    """Statements giving ``target`` the image (N, C, H, W) onto which each window's values are added back:
    one line per kernel offset (i, j), adding ``plane(i, j)``, an (N, C, oh, ow) expression, at the
    pixels that offset read. None for a kernel of more than _MOST_OFFSETS elements."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = geometry.kernel, geometry.stride, geometry.dilation, geometry.padding
    n, c, height, width = image_shape
    oh, ow = geometry.out_size((height, width))
    if kh * kw > _MOST_OFFSETS:
        return None
    lines = [f"{target} = np.zeros({(n, c, height + 2 * ph, width + 2 * pw)})"]
    for i in range(kh):
        rows = _slice_source(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            columns = _slice_source(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            lines.append(f"{target}[:, :, {rows}, {columns}] += {plane(i, j)}")
    if ph or pw:
        lines.append(f"{target} = {target}[:, :, {ph}:{ph + height}, {pw}:{pw + width}]")
    return lines


def _slice_source(start, stop, step):
    return f"{start or ''}:{stop}" + (f":{step}" if step != 1 else "")


def _plane_of_columns(cols, image_shape, geometry):
    """``plane(i, j)`` for the columns ``cols`` of unfold's layout: the values at kernel offset (i, j)."""
    grid = tuple(image_shape[:2]) + geometry.kernel + geometry.out_size(image_shape[2:])
    return functools.partial(_columns_at_offset, cols, grid)


def _columns_at_offset(cols, grid, i, j):
    return f"{cols}.reshape{grid}[:, :, {i}, {j}]"


def _gradient_through_weights(g, w, i, j):
    """The (N, C, oh, ow) gradient that kernel offset (i, j) sends back: d_y through the weights w[:, :, i, j]."""
    return f"np.einsum('nohw,oc->nchw', {g}, {w}[:, :, {i}, {j}])"


def _unfold_geometry(attrs):
    return Windows.of(**{"stride": 1, "padding": 0, "dilation": 1, **attrs})


def _unfold_source(call):
    view = _windows_source(call.inputs[0], _unfold_geometry(call.attrs))
    # the view is (N, C, oh, ow, kh, kw); unfold's rows run over (C, kh, kw) and its columns over (oh, ow)
    return f"{view}.transpose(0, 1, 4, 5, 2, 3).reshape({call.literal(call.out_shape)})"


def _unfold_vjp_source(call):
    geometry = _unfold_geometry(call.attrs)
    lines = _col2im_source(call.targets[0], _plane_of_columns(call.grad, call.shapes[0], geometry), call.shapes[0],
                           geometry)
    return None if lines is None else (lines,)


def _fold_source(call):
    attrs = dict(call.attrs)
    del attrs["output_size"]
    geometry = _unfold_geometry(attrs)
    image_shape = call.out_shape
    return _col2im_source(call.out, _plane_of_columns(call.inputs[0], image_shape, geometry), image_shape, geometry)


def _fold_vjp_source(call):
    attrs = dict(call.attrs)
    del attrs["output_size"]
    view = _windows_source(call.grad, _unfold_geometry(attrs))
    return (f"{view}.transpose(0, 1, 4, 5, 2, 3).reshape({call.literal(call.shapes[0])})",)


def _conv2d_call_geometry(call):
    attrs = {k: call.attrs[k] for k in ("stride", "padding", "dilation") if k in call.attrs}
    return _conv_geometry(call.shapes[1][2:], **attrs)


def _conv2d_source(call):
    if call.attrs.get("groups", 1) != 1:
        return None
    x, w = call.inputs[:2]
    product = f"np.einsum('nchwij,ocij->nohw', {_windows_source(x, _conv2d_call_geometry(call))}, {w})"
    return product if len(call.inputs) == 2 else f"{product} + {call.inputs[2]}[:, None, None]"


def _conv2d_vjp_source(call):
    # the textbook backward pass: each kernel offset sends the output's gradient back through its
    # weights onto the pixels it read; a weight's gradient is the windows weighted by the gradient
    if call.attrs.get("groups", 1) != 1:
        return None
    (x, w), g = call.inputs[:2], call.grad
    geometry = _conv2d_call_geometry(call)
    gx = _col2im_source(call.targets[0], functools.partial(_gradient_through_weights, g, w), call.shapes[0], geometry)
    if gx is None:
        return None
    gw = f"np.einsum('nchwij,nohw->ocij', {_windows_source(x, geometry)}, {g})"
    return (gx, gw) + ((f"{g}.sum(axis=(0, 2, 3))",) if len(call.inputs) == 3 else ())


def _conv1d_source(call):
    if call.attrs.get("groups", 1) != 1:
        return None
    x, w = call.inputs[:2]
    attrs = _as_2d(call.attrs.get("stride", 1), call.attrs.get("padding", 0), call.attrs.get("dilation", 1))
    geometry = _conv_geometry(_row(call.shapes[1])[2:], **attrs)
    (_, p), (_, s), (_, d) = geometry.padding, geometry.stride, geometry.dilation
    if p:
        x = f"np.pad({x}, ((0, 0), (0, 0), ({p}, {p})))"
    view = f"np.lib.stride_tricks.sliding_window_view({x}, {geometry.extent()[1]}, axis=2)"
    if d != 1:
        view = f"{view}[:, :, {'::' + str(s) if s != 1 else ':'}, ::{d}]"
    elif s != 1:
        view = f"{view}[:, :, ::{s}]"
    product = f"np.einsum('ncli,oci->nol', {view}, {w})"
    return product if len(call.inputs) == 2 else f"{product} + {call.inputs[2]}[:, None]"


# -- examples and the registration ------------------------------------------------------------


def _unfold_example(rng):
    return ((2, 2, 4, 5),), {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1}


def _fold_example(rng):
    return ((2, 6, 12),), {"output_size": (3, 4), "kernel_size": (1, 3), "stride": 1, "padding": (0, 1)}


def _conv2d_example(rng):
    return ((2, 4, 5, 4), (6, 2, 3, 2), (6,)), {"stride": (2, 1), "padding": 1, "groups": 2}


def _conv1d_example(rng):
    return ((2, 3, 7), (4, 3, 3), (4,)), {"stride": 2, "padding": 1, "dilation": 2}


_WINDOWS_DOC = "stride, padding, dilation: ints or (height, width) pairs"


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: unfold, fold, conv2d and conv1d."""
    return [
        Op("unfold", forward=_unfold_forward, vjp=_unfold_vjp, jvp=_unfold_jvp, vjp_graph=_unfold_vjp_graph,
           shape=_unfold_shape, example=_unfold_example,
           source=SourceForm(forward=_unfold_source, vjp=_unfold_vjp_source),
           doc=f"im2col: every kernel_size window of x (N, C, H, W) as a column, (N, C * kh * kw, windows); "
               f"{_WINDOWS_DOC}; torch's F.unfold"),
        Op("fold", forward=_fold_forward, vjp=_fold_vjp, jvp=_fold_jvp, vjp_graph=_fold_vjp_graph,
           inputs=("cols",), shape=_fold_shape, example=_fold_example,
           source=SourceForm(forward=_fold_source, vjp=_fold_vjp_source),
           doc=f"col2im, unfold's adjoint: each column added back onto its window of an output_size image, "
               f"overlaps adding up; {_WINDOWS_DOC}; torch's F.fold"),
        Op("conv2d", forward=_conv2d_forward, vjp=_conv2d_vjp, jvp=_conv2d_jvp, vjp_graph=_conv2d_vjp_graph,
           decompose=_conv2d_decompose, inputs=("x", "weight", "bias"), min_inputs=2, shape=_conv2d_shape,
           example=_conv2d_example, source=SourceForm(forward=_conv2d_source, vjp=_conv2d_vjp_source),
           doc=f"2-d convolution (cross-correlation) of x (N, C, H, W) with weight (O, C / groups, kh, kw), "
               f"plus bias (O,); {_WINDOWS_DOC}, padding also 'same' or 'valid'; torch's F.conv2d"),
        Op("conv1d", forward=_conv1d_forward, vjp=_conv1d_vjp, jvp=_conv1d_jvp, vjp_graph=_conv1d_vjp_graph,
           decompose=_conv1d_decompose, inputs=("x", "weight", "bias"), min_inputs=2, shape=_conv1d_shape,
           example=_conv1d_example, source=SourceForm(forward=_conv1d_source),
           doc="1-d convolution of x (N, C, L) with weight (O, C / groups, k), plus bias (O,): conv2d on rows "
               "one pixel high; stride, padding, dilation ints, padding also 'same' or 'valid'; torch's F.conv1d"),
    ]
