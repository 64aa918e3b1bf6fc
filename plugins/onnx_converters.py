"""ONNX converters: how :func:`dagprop.from_onnx` turns each standard ONNX op into dagprop nodes.

Registered through the ``dagprop_onnx_converters`` hook exactly like a third-party
plugin's. Each converter is ``convert(ctx, *inputs, **attributes)``: ``ctx`` is a
:class:`dagprop.importers.onnx.Context` (the graph, the opset, ``ctx.op`` and
``ctx.output`` to build nodes, ``ctx.static`` and ``ctx.shape`` for what is known at
conversion time); ``inputs`` are the ONNX node's inputs in order (a node, a numpy array
when the value is known now, None for an optional input left out); ``attributes`` are
its attributes by their ONNX names, declared as keywords with the ONNX defaults. It
returns the node computing the first output, or a tuple with one per output. See
:mod:`dagprop.importers.onnx` for the whole contract.

Where an attribute became an input at some opset (``axes`` of Unsqueeze, Squeeze and
ReduceSum at 13, of ReduceMean at 18; ``split`` at 13; Slice's ``starts``, ``ends`` and
``axes`` at 10; Dropout's ``ratio`` at 12), the converter has one parameter of that name:
an attribute arrives as the keyword, an input in its slot, and both mean the same.
Softmax and LogSoftmax read ``ctx.opset``: before 13 their axis defaults to 1 and the
input is taken as a 2-D matrix (axes before ``axis`` by the rest).

This module does not import ``onnx``: converters see Python values and numpy arrays.

>>> from dagprop_plugins.onnx_converters import dagprop_onnx_converters
>>> table = dagprop_onnx_converters()
>>> table["Gemm"].__name__, len(table) >= 38
('convert_gemm', True)
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Node

_INT_MAX = np.iinfo(np.int64).max


def _ints(ctx, value, what):
    """A value known now (an input array or an attribute list) as a list of Python ints."""
    return [int(v) for v in np.ravel(ctx.static(value, what))]


def _pair(values):
    """A per-axis list as conv2d and the pools take it: a tuple for two axes, an int for one."""
    return tuple(int(v) for v in values) if len(values) > 1 else int(values[0])


# -- arithmetic and activations ----------------------------------------------------------------


def convert_add(ctx, a, b):
    """Add: numpy broadcasting, as dagprop's add."""
    return ctx.output("add", a, b)


def convert_sub(ctx, a, b):
    """Sub: a - b."""
    return ctx.output("sub", a, b)


def convert_mul(ctx, a, b):
    """Mul: a * b."""
    return ctx.output("mul", a, b)


def convert_div(ctx, a, b):
    """Div: a / b; integers known now divide as ONNX does, truncating."""
    if ctx.is_static(a, b) and np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return np.trunc(a / b).astype(np.result_type(a, b))
    return ctx.output("div", a, b)


def convert_pow(ctx, x, y):
    """Pow: a 0-d exponent known now becomes ``exponent=``; any other is an input of pow."""
    if not isinstance(y, Node) or y.kind == "const":
        exponent = ctx.static(y, "the exponent")
        if exponent.ndim == 0:
            return ctx.output("pow", x, exponent=float(exponent))
    return ctx.output("pow", x, y)


def _unary(op, doc):
    """A converter passing its one input to the dagprop op ``op``: ONNX and dagprop agree on these."""
    def convert(ctx, x):
        return ctx.output(op, x)
    convert.__name__ = convert.__qualname__ = f"convert_{op}"
    convert.__doc__ = doc
    return convert


convert_relu = _unary("relu", "Relu: max(x, 0).")
convert_sigmoid = _unary("sigmoid", "Sigmoid: 1 / (1 + exp(-x)).")
convert_tanh = _unary("tanh", "Tanh: tanh(x).")
convert_exp = _unary("exp", "Exp: exp(x).")
convert_log = _unary("log", "Log: log(x).")
convert_neg = _unary("neg", "Neg: -x.")
convert_reciprocal = _unary("reciprocal", "Reciprocal: 1 / x.")
convert_sqrt = _unary("sqrt", "Sqrt: sqrt(x).")
convert_erf = _unary("erf", "Erf: the error function.")


def convert_gelu(ctx, x, *, approximate="none"):
    """Gelu (opset 20): approximate 'none' (with erf) or 'tanh'."""
    return ctx.output("gelu", x, approximate=approximate)


def _softmax_like(op_name, ctx, x, axis):
    if ctx.opset >= 13:
        return ctx.output(op_name, x, axis=-1 if axis is None else axis)
    # before opset 13: axis defaults to 1 and the input counts as a matrix, the axes before
    # `axis` flattened into rows and the rest into columns; softmax runs along each row
    rank = ctx.rank(x)
    axis = (1 if axis is None else axis) % max(rank, 1)
    if axis == rank - 1:
        return ctx.output(op_name, x, axis=-1)
    shape = ctx.shape(x)
    rows = ctx.op("reshape", x, shape=(math.prod(shape[:axis]), math.prod(shape[axis:])))
    return ctx.output("reshape", ctx.op(op_name, rows, axis=1), shape=tuple(shape))


def convert_softmax(ctx, x, *, axis=None):
    """Softmax: along ``axis`` (default -1) from opset 13; before, over the axes from ``axis`` (default 1) on."""
    return _softmax_like("softmax", ctx, x, axis)


def convert_log_softmax(ctx, x, *, axis=None):
    """LogSoftmax: as Softmax, with the same opset-13 change of default and meaning."""
    return _softmax_like("log_softmax", ctx, x, axis)


# -- matrix products ---------------------------------------------------------------------------


def convert_matmul(ctx, a, b):
    """MatMul: numpy's matmul (1-D operands and batch broadcasting included)."""
    return ctx.output("matmul", a, b)


def convert_gemm(ctx, a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    """Gemm: alpha * A' @ B' + beta * C, A' and B' transposed where transA, transB say."""
    a = ctx.op("transpose", a) if transA else a
    b = ctx.op("transpose", b) if transB else b
    with_c = c is not None and beta != 0
    scaled = alpha != 1.0
    y = (ctx.op if with_c or scaled else ctx.output)("matmul", a, b)
    if scaled:
        y = (ctx.op if with_c else ctx.output)("mul", y, float(alpha))
    if with_c:
        c = ctx.op("mul", c, float(beta)) if beta != 1.0 else c
        y = ctx.output("add", y, c)
    return y


# -- convolution and pooling ---------------------------------------------------------------------


def _padding(ctx, x, auto_pad, pads, kernel, strides, dilations):
    """(begin, end) padding of each spatial axis, from ``pads`` or ``auto_pad``."""
    spatial = len(kernel)
    if auto_pad in ("NOTSET", ""):
        pads = list(pads) if pads else [0] * (2 * spatial)
        return [int(p) for p in pads[:spatial]], [int(p) for p in pads[spatial:]]
    if auto_pad == "VALID":
        return [0] * spatial, [0] * spatial
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"auto_pad {auto_pad!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    sizes = ctx.shape(x)[2:]
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin, end


def _torch_pad(begin, end):
    """Per-axis (begin, end) in torch's pad order: the last axis first."""
    return tuple(int(v) for axis in reversed(range(len(begin))) for v in (begin[axis], end[axis]))


def _ceil_extra(ctx, x, kernel, strides, dilations, begin, end):
    """How much more end padding makes floor-mode pooling give ceil_mode=1's output size."""
    extra = []
    for size, k, s, d, b, e in zip(ctx.shape(x)[2:], kernel, strides, dilations, begin, end):
        span = size + b + e - d * (k - 1) - 1
        extra.append((-span) % s if span % s else 0)
    return extra


def convert_conv(ctx, x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
                 strides=None):
    """Conv on 1-D or 2-D images (3-D or 4-D inputs): conv1d or conv2d; uneven padding becomes a pad node."""
    kernel = list(kernel_shape) if kernel_shape else list(ctx.shape(w, "the weight")[2:])
    spatial = len(kernel)
    if spatial not in (1, 2):
        raise ValueError(f"only 1-D and 2-D convolutions are supported (conv1d, conv2d); this one is {spatial}-D")
    strides = list(strides) if strides else [1] * spatial
    dilations = list(dilations) if dilations else [1] * spatial
    begin, end = _padding(ctx, x, auto_pad, pads, kernel, strides, dilations)
    if begin != end:
        x = ctx.op("pad", x, pad=_torch_pad(begin, end))
        begin = [0] * spatial
    args = (x, w) if b is None else (x, w, b)
    return ctx.output("conv2d" if spatial == 2 else "conv1d", *args, stride=_pair(strides), padding=_pair(begin),
                      dilation=_pair(dilations), groups=int(group))


def convert_max_pool(ctx, x, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape, pads=None,
                     storage_order=0, strides=None):
    """MaxPool on 2-D images: max_pool2d (ONNX strides default to 1, not to the kernel size as in torch).

    Uneven padding and ceil_mode=1 become a pad node of -inf, which no window picks.
    The second output (the indices) is not computed.
    """
    kernel = list(kernel_shape)
    if len(kernel) != 2:
        raise ValueError(f"only 2-D max pooling is supported (max_pool2d); this one is {len(kernel)}-D")
    strides = list(strides) if strides else [1, 1]
    dilations = list(dilations) if dilations else [1, 1]
    begin, end = _padding(ctx, x, auto_pad, pads, kernel, strides, dilations)
    if ceil_mode:
        end = [e + more for e, more in zip(end, _ceil_extra(ctx, x, kernel, strides, dilations, begin, end))]
    if begin != end:
        x = ctx.op("pad", x, pad=_torch_pad(begin, end), value=-np.inf)
        begin = [0, 0]
    y = ctx.output("max_pool2d", x, kernel_size=_pair(kernel), stride=_pair(strides), padding=_pair(begin),
                   dilation=_pair(dilations))
    return y, None


def convert_average_pool(ctx, x, *, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
                         kernel_shape, pads=None, strides=None):
    """AveragePool on 2-D images: avg_pool2d (ONNX's count_include_pad defaults to 0, torch's to True)."""
    kernel = list(kernel_shape)
    if len(kernel) != 2:
        raise ValueError(f"only 2-D average pooling is supported (avg_pool2d); this one is {len(kernel)}-D")
    strides = list(strides) if strides else [1, 1]
    if dilations and any(d != 1 for d in dilations):
        raise ValueError(f"dilations {list(dilations)}: avg_pool2d has no dilation")
    begin, end = _padding(ctx, x, auto_pad, pads, kernel, strides, [1, 1])
    if ceil_mode and any(_ceil_extra(ctx, x, kernel, strides, [1, 1], begin, end)):
        raise ValueError("ceil_mode=1 adds windows here that hang over the edge; avg_pool2d has no ceil mode")
    if begin != end:
        if not count_include_pad:
            raise ValueError(f"uneven padding (begin {begin}, end {end}) with count_include_pad=0 cannot be "
                             f"expressed with avg_pool2d")
        x = ctx.op("pad", x, pad=_torch_pad(begin, end))
        begin = [0, 0]
    return ctx.output("avg_pool2d", x, kernel_size=_pair(kernel), stride=_pair(strides), padding=_pair(begin),
                      count_include_pad=bool(count_include_pad))


def convert_global_average_pool(ctx, x):
    """GlobalAveragePool: the mean over every axis after the channels, kept as size 1."""
    return ctx.output("mean", x, axis=tuple(range(2, ctx.rank(x))), keepdims=True)


def convert_global_max_pool(ctx, x):
    """GlobalMaxPool: the max over every axis after the channels, kept as size 1."""
    return ctx.output("max", x, axis=tuple(range(2, ctx.rank(x))), keepdims=True)


# -- normalization -----------------------------------------------------------------------------


def convert_batch_norm(ctx, x, scale, bias, mean, var, *, epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1):
    """BatchNormalization: batch_norm with the running statistics (inference), or the batch's (training_mode=1).

    The running statistics, when initializers, are consts (``constant_inputs``): torch keeps
    them as buffers, and batch_norm would otherwise give them their true gradient.

    The running statistics are not updated (outputs 1 and 2 are not computed).
    ONNX's momentum weighs the old running value, torch's the new one: 1 - momentum.
    """
    if not spatial:
        raise ValueError("spatial=0 (per-activation statistics, before opset 9) is not supported")
    y = ctx.output("batch_norm", x, mean, var, scale, bias, training=bool(training_mode),
                   momentum=1.0 - float(momentum), eps=float(epsilon))
    return y, None, None


# the running mean and variance are statistics, not weights: initializers used only there become consts
convert_batch_norm.constant_inputs = (3, 4)  # type: ignore[attr-defined]


def convert_layer_norm(ctx, x, scale, bias=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    """LayerNormalization (opset 17): layer_norm over the axes from ``axis`` on.

    Mean and InvStdDev (outputs 1 and 2) are not computed.
    """
    rank = ctx.rank(x)
    axis %= rank
    scale_shape = ctx.shape(scale, "the scale")
    try:
        normalized = tuple(ctx.shape(x)[axis:])
    except ValueError:
        if len(scale_shape) != rank - axis:
            raise
        normalized = tuple(scale_shape)
    fits = tuple(scale_shape) == normalized and (bias is None or tuple(ctx.shape(bias, "the bias")) == normalized)
    if fits:
        args = (x, scale) if bias is None else (x, scale, bias)
        return ctx.output("layer_norm", *args, normalized_shape=normalized, eps=float(epsilon)), None, None
    # a scale or bias that only broadcasts to the normalized shape: applied after the op
    y = ctx.op("layer_norm", x, normalized_shape=normalized, eps=float(epsilon))
    y = ctx.op("mul", y, scale) if bias is not None else ctx.output("mul", y, scale)
    return (y if bias is None else ctx.output("add", y, bias)), None, None


def convert_dropout(ctx, x, ratio=None, training_mode=None, *, seed=None):
    """Dropout: the identity in inference; dropout(training=True) when training_mode is true."""
    training = training_mode is not None and bool(np.ravel(ctx.static(training_mode, "training_mode"))[0])
    if not training:
        return x, None
    p = 0.5 if ratio is None else float(np.ravel(ctx.static(ratio, "ratio"))[0])
    return ctx.output("dropout", x, p=p, training=True, seed=0 if seed is None else int(seed)), None


# -- shaping -------------------------------------------------------------------------------------


def convert_reshape(ctx, data, shape, *, allowzero=0):
    """Reshape: the shape known now; 0 copies that axis of the input (unless allowzero=1), -1 is inferred."""
    target = _ints(ctx, shape, "the target shape")
    if not allowzero and 0 in target:
        source = ctx.shape(data, "the data")
        target = [source[k] if n == 0 else n for k, n in enumerate(target)]
    return ctx.output("reshape", data, shape=tuple(target))


def convert_flatten(ctx, x, *, axis=1):
    """Flatten: a matrix of the axes before ``axis`` by the rest (a flatten node, two for axis > 1)."""
    rank = ctx.rank(x)
    axis = axis + rank if axis < 0 else axis
    if axis == 0 or axis == rank:
        return ctx.output("reshape", x, shape=(1, -1) if axis == 0 else (-1, 1))
    if axis == 1:
        return ctx.output("flatten", x, start_axis=1)
    return ctx.output("flatten", ctx.op("flatten", x, start_axis=axis), start_axis=0, end_axis=axis - 1)


def convert_transpose(ctx, x, *, perm=None):
    """Transpose: ``perm`` (default: the axes reversed)."""
    return ctx.output("transpose", x, axes=None if perm is None else tuple(int(p) for p in perm))


def convert_concat(ctx, *xs, axis):
    """Concat along ``axis``."""
    return ctx.output("concat", *xs, axis=int(axis))


def convert_gather(ctx, data, indices, *, axis=0):
    """Gather: indices known now pick with getitem; indices computed by the graph (token ids) look up
    the rows of a 2-D table with embedding."""
    if not isinstance(indices, Node) or indices.kind == "const":
        picked = ctx.static(indices, "the indices").astype(np.int64)
        if ctx.is_static(data):
            return np.take(data, picked, axis=axis)
        axis = axis % ctx.rank(data) if axis < 0 else axis
        return ctx.output("getitem", data, index=(slice(None),) * axis + (picked.tolist(),))
    if axis == 0 and ctx.rank(data, "the table") == 2:
        return ctx.output("embedding", indices, data)
    raise ValueError(f"Gather with indices computed by the graph is supported along axis 0 of a 2-D table "
                     f"(an embedding) only; here axis={axis} of a {ctx.rank(data)}-D input")


def _normalized_axes(ctx, axes, rank_of):
    axes = [int(a) for a in axes]
    if any(a < 0 for a in axes):
        rank = rank_of()
        axes = [a % rank for a in axes]
    return sorted(axes)


def convert_unsqueeze(ctx, x, axes=None):
    """Unsqueeze: ``axes`` an attribute before opset 13, an input from 13; one unsqueeze node per axis."""
    listed = _ints(ctx, axes, "axes")
    axes = _normalized_axes(ctx, listed, lambda: ctx.rank(x) + len(listed))
    if ctx.is_static(x):  # shape arithmetic, usually on integers
        return np.expand_dims(x, tuple(axes))
    for axis in axes[:-1]:
        x = ctx.op("unsqueeze", x, axis=axis)
    return ctx.output("unsqueeze", x, axis=axes[-1])


def convert_squeeze(ctx, x, axes=None):
    """Squeeze: ``axes`` an attribute before opset 13, an optional input from 13; none squeezes every size-1 axis."""
    if axes is not None:
        axes = _normalized_axes(ctx, _ints(ctx, axes, "axes"), lambda: ctx.rank(x))
    if ctx.is_static(x):  # shape arithmetic, usually on integers
        return np.squeeze(x, axis=None if axes is None else tuple(axes))
    if axes is None:
        return ctx.output("squeeze", x)
    return ctx.output("squeeze", x, axis=axes[0] if len(axes) == 1 else tuple(axes))


def convert_slice(ctx, data, starts, ends, axes=None, steps=None):
    """Slice: starts, ends, axes and steps known now (attributes before opset 10, inputs from 10); getitem."""
    starts, ends = _ints(ctx, starts, "starts"), _ints(ctx, ends, "ends")
    axes = list(range(len(starts))) if axes is None else _ints(ctx, axes, "axes")
    steps = [1] * len(starts) if steps is None else _ints(ctx, steps, "steps")
    if any(a < 0 for a in axes):
        rank = ctx.rank(data)
        axes = [a % rank for a in axes]
    index = [slice(None)] * (max(axes) + 1)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        # ONNX clamps like Python slicing; its "to the very end" markers are +-INT64_MAX
        index[axis] = slice(start, None if abs(end) >= _INT_MAX - 1 else end, step)
    return ctx.output("getitem", data, index=tuple(index))


def convert_split(ctx, x, split=None, *, axis=0, num_outputs=None):
    """Split into the node's outputs: sizes from ``split`` (attribute before opset 13, input from 13), else equal
    parts (the last smaller when ``num_outputs`` does not divide the axis, opset 18). One getitem per part."""
    rank = ctx.rank(x)
    axis %= rank
    size = ctx.shape(x)[axis]
    parts = len(ctx.outputs) if num_outputs is None else int(num_outputs)
    if split is not None:
        sizes = _ints(ctx, split, "split")
    else:
        chunk = -(-size // parts)
        sizes = [min(chunk, size - k * chunk) for k in range(parts)]
    pieces, start = [], 0
    for k, n in enumerate(sizes):
        index = (slice(None),) * axis + (slice(start, start + n),)
        pieces.append(ctx.output("getitem", x, index=index, output=k) if ctx.outputs[k] else None)
        start += n
    return tuple(pieces)


def convert_identity(ctx, x):
    """Identity: the same node (a graph output gets a node of its own, named as the output)."""
    return x


def convert_shape(ctx, x, *, start=0, end=None):
    """Shape: the input's shape as an integer array, known now (``start`` and ``end`` from opset 15)."""
    return np.array(ctx.shape(x)[start:end], dtype=np.int64)


def convert_cast(ctx, x, *, to, saturate=1):
    """Cast: values known now are cast; a computed value cast to a float type is itself (dagprop is float64)."""
    import onnx  # only here: the module itself never imports onnx

    dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
    if ctx.is_static(x):
        return np.asarray(x).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        return x
    raise ValueError(f"casting a value computed by the graph to {dtype} has no gradient; dagprop keeps every "
                     f"value as float64")


def convert_constant(ctx, *, value=None, value_float=None, value_floats=None, value_int=None, value_ints=None,
                     sparse_value=None, value_string=None, value_strings=None):
    """Constant: its value, known now (it becomes a const node only where an op uses it)."""
    if value is not None:
        return np.asarray(value)
    if value_float is not None or value_floats is not None:
        return np.asarray(value_float if value_float is not None else value_floats, dtype=np.float64)
    if value_int is not None or value_ints is not None:
        return np.asarray(value_int if value_int is not None else value_ints, dtype=np.int64)
    raise ValueError("only numeric Constants are supported (not sparse_value or strings)")


# -- reductions ----------------------------------------------------------------------------------


def _reduce(op_name, ctx, x, axes, keepdims, noop_with_empty_axes):
    axes = [] if axes is None else _ints(ctx, axes, "axes")
    if not axes and noop_with_empty_axes:
        return x
    return ctx.output(op_name, x, axis=tuple(axes) if axes else None, keepdims=bool(keepdims))


def convert_reduce_sum(ctx, x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    """ReduceSum: ``axes`` an attribute before opset 13, an input from 13; no axes reduces all."""
    return _reduce("sum", ctx, x, axes, keepdims, noop_with_empty_axes)


def convert_reduce_mean(ctx, x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    """ReduceMean: ``axes`` an attribute before opset 18, an input from 18; no axes reduces all."""
    return _reduce("mean", ctx, x, axes, keepdims, noop_with_empty_axes)


def convert_reduce_max(ctx, x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    """ReduceMax: ``axes`` an attribute before opset 18, an input from 18."""
    return _reduce("max", ctx, x, axes, keepdims, noop_with_empty_axes)


def convert_reduce_min(ctx, x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    """ReduceMin: ``axes`` an attribute before opset 18, an input from 18."""
    return _reduce("min", ctx, x, axes, keepdims, noop_with_empty_axes)


@dp.hookimpl
def dagprop_onnx_converters():
    """The built-in ``{ONNX op type: converter}`` table."""
    return {
        "Add": convert_add, "Sub": convert_sub, "Mul": convert_mul, "Div": convert_div, "Pow": convert_pow,
        "Sqrt": convert_sqrt, "Erf": convert_erf, "Exp": convert_exp, "Log": convert_log, "Neg": convert_neg,
        "Reciprocal": convert_reciprocal,
        "Relu": convert_relu, "Sigmoid": convert_sigmoid, "Tanh": convert_tanh, "Gelu": convert_gelu,
        "Softmax": convert_softmax, "LogSoftmax": convert_log_softmax,
        "MatMul": convert_matmul, "Gemm": convert_gemm,
        "Conv": convert_conv, "MaxPool": convert_max_pool, "AveragePool": convert_average_pool,
        "GlobalAveragePool": convert_global_average_pool, "GlobalMaxPool": convert_global_max_pool,
        "BatchNormalization": convert_batch_norm, "LayerNormalization": convert_layer_norm,
        "Dropout": convert_dropout,
        "Reshape": convert_reshape, "Flatten": convert_flatten, "Transpose": convert_transpose,
        "Concat": convert_concat, "Gather": convert_gather, "Unsqueeze": convert_unsqueeze,
        "Squeeze": convert_squeeze, "Slice": convert_slice, "Split": convert_split,
        "Identity": convert_identity, "Shape": convert_shape, "Cast": convert_cast, "Constant": convert_constant,
        "ReduceSum": convert_reduce_sum, "ReduceMean": convert_reduce_mean, "ReduceMax": convert_reduce_max,
        "ReduceMin": convert_reduce_min,
    }
