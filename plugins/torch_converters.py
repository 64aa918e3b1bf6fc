"""PyTorch converters: how :func:`dagprop.from_torch` turns each ATen op into dagprop nodes.

Registered through the ``dagprop_torch_converters`` hook exactly like a third-party
plugin's. Each converter is ``convert(b, *args, **kwargs)``: ``b`` is a
:class:`dagprop.importers.torch.Builder` (the graph, ``b.op`` and ``b.const`` to build
nodes, ``b.static`` for a value needed now, the call's ``out_shape`` and the ``dtypes``
of its arguments); ``args`` and ``kwargs`` are the call's arguments in the ATen
schema's order, tensors as dagprop nodes, declared with the schema's defaults. It
returns the node holding the result, or a tuple for an op with several results, and
raises ``NotImplementedError`` for arguments it does not handle. See
:mod:`dagprop.importers.torch` for the whole contract.

Torch's layouts are kept: a linear layer's weight is (out, in) as in ``state_dict``, so
the converter transposes it into dagprop's ``linear(h, W, b) = h @ W + b``; images are
NCHW, as dagprop's conv2d and pools take them. Where torch's attributes and dagprop's
differ in name (``dim`` and ``axis``, ``keepdim`` and ``keepdims``) the converter renames.

This module does not import ``torch``: converters see nodes and Python values.

>>> from dagprop_plugins.torch_converters import dagprop_torch_converters
>>> table = dagprop_torch_converters()
>>> table["aten.linear"].__name__, len(table) >= 100
('convert_linear', True)
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

import dagprop as dp

_NONE, _MEAN, _SUM = 0, 1, 2  # torch's loss reductions, as ATen numbers them


# -- helpers ---------------------------------------------------------------------------------------


def _axes(dim):
    """torch's ``dim`` (an int, a list, or None or [] for every axis) as dagprop's ``axis``."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(int(d) for d in dim)
    return int(dim)


def _swap(ndim, first, second):
    """The permutation that swaps two axes, for dagprop's transpose."""
    axes = list(range(ndim))
    axes[first], axes[second] = axes[second], axes[first]
    return tuple(axes)


def _window(value):
    """A kernel size, stride, padding or dilation as dagprop takes it: an int, or a pair as a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value) if len(value) > 1 else int(value[0])
    return value


def _is_bool(dtype):
    return dtype is not None and str(dtype) == "torch.bool"


def _traced_dtype(traced):
    """The dtype of a value of the traced program (None for an argument that is not one)."""
    return getattr(getattr(traced, "meta", {}).get("val"), "dtype", None)


def _is_float(dtype):
    return dtype is None or bool(getattr(dtype, "is_floating_point", True))


def _scaled(b, value, factor):
    return value if factor == 1 else b.op("mul", value, factor)


# -- arithmetic ------------------------------------------------------------------------------------


def convert_add(b, x, other, alpha=1):
    """x + alpha * other (add.Tensor, add.Scalar)."""
    return b.op("add", x, _scaled(b, other, alpha))


def convert_sub(b, x, other, alpha=1):
    """x - alpha * other."""
    return b.op("sub", x, _scaled(b, other, alpha))


def convert_rsub(b, x, other, alpha=1):
    """other - alpha * x (what ``1 - x`` becomes)."""
    return b.op("sub", other, _scaled(b, x, alpha))


def convert_mul(b, x, other):
    """x * other."""
    return b.op("mul", x, other)


def convert_div(b, x, other, rounding_mode=None):
    """x / other; rounding modes ("trunc", "floor") are not differentiable and not converted."""
    if rounding_mode is not None:
        raise NotImplementedError(f"rounding_mode={rounding_mode!r} rounds the quotient, which has no dagprop op")
    return b.op("div", x, other)


def convert_pow(b, x, exponent):
    """x ** exponent: a number exponent as pow's attribute, a tensor one as pow's second input;
    number ** tensor as exp(log(number) * tensor)."""
    if not isinstance(x, dp.Node):
        return b.op("exp", b.op("mul", exponent, math.log(x)))
    if isinstance(exponent, dp.Node):
        return b.op("pow", x, exponent)
    return b.op("pow", x, exponent=float(exponent))


def convert_square(b, x):
    """x ** 2."""
    return b.op("pow", x, exponent=2.0)


def _unary(name, doc):
    def convert(b, x):
        return b.op(name, x)
    convert.__name__ = convert.__qualname__ = f"convert_{name}"
    convert.__doc__ = doc
    return convert


convert_neg = _unary("neg", "-x.")
convert_exp = _unary("exp", "e ** x.")
convert_log = _unary("log", "Natural logarithm.")
convert_reciprocal = _unary("reciprocal", "1 / x.")
convert_sqrt = _unary("sqrt", "Square root.")
convert_rsqrt = _unary("rsqrt", "1 / sqrt(x).")
convert_abs = _unary("abs", "|x|.")
convert_erf = _unary("erf", "The error function.")
convert_relu = _unary("relu", "max(x, 0).")
convert_sigmoid = _unary("sigmoid", "1 / (1 + exp(-x)).")
convert_tanh = _unary("tanh", "Hyperbolic tangent.")
convert_silu = _unary("silu", "x * sigmoid(x).")
convert_log_sigmoid = _unary("log_sigmoid", "log(sigmoid(x)).")


def convert_maximum(b, x, other):
    """Elementwise max of two tensors (ties split the gradient, as torch)."""
    return b.op("maximum", x, other)


def convert_minimum(b, x, other):
    """Elementwise min of two tensors."""
    return b.op("minimum", x, other)


def convert_clamp(b, x, min=None, max=None):
    """clamp (clip) between numbers; tensor bounds become maximum and minimum."""
    if isinstance(min, dp.Node) or isinstance(max, dp.Node):
        if min is not None:
            x = b.op("maximum", x, min)
        return x if max is None else b.op("minimum", x, max)
    if min is None and max is None:
        return x
    return b.op("clip", x, min=None if min is None else float(min), max=None if max is None else float(max))


def convert_clamp_min(b, x, min):
    """max(x, min)."""
    return convert_clamp(b, x, min=min)


def convert_clamp_max(b, x, max):
    """min(x, max)."""
    return convert_clamp(b, x, max=max)


def convert_hardtanh(b, x, min_val=-1.0, max_val=1.0):
    """clip(x, min_val, max_val); relu6 is hardtanh(x, 0, 6)."""
    return b.op("clip", x, min=float(min_val), max=float(max_val))


def convert_relu6(b, x):
    """clip(x, 0, 6)."""
    return b.op("clip", x, min=0.0, max=6.0)


def convert_gelu(b, x, approximate="none"):
    """GELU, exact (erf) or with the tanh approximation."""
    return b.op("gelu", x, approximate=approximate)


def convert_softplus(b, x, beta=1, threshold=20):
    """log(1 + exp(beta x)) / beta, linear above threshold."""
    return b.op("softplus", x, beta=float(beta), threshold=float(threshold))


def convert_leaky_relu(b, x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return b.op("leaky_relu", x, negative_slope=float(negative_slope))


def convert_elu(b, x, alpha=1, scale=1, input_scale=1):
    """ELU; SELU's scales (scale, input_scale other than 1) are not converted."""
    if scale != 1 or input_scale != 1:
        raise NotImplementedError(f"elu with scale={scale} and input_scale={input_scale} (selu) has no dagprop op")
    return b.op("elu", x, alpha=float(alpha))


def convert_softmax(b, x, dim, half_to_float_or_dtype=None):
    """softmax along ``dim`` (softmax.int and _softmax)."""
    return b.op("softmax", x, axis=int(dim))


def convert_log_softmax(b, x, dim, half_to_float_or_dtype=None):
    """log_softmax along ``dim`` (log_softmax.int and _log_softmax)."""
    return b.op("log_softmax", x, axis=int(dim))


def convert_where(b, condition, x, other):
    """x where condition, else other."""
    return b.op("where", condition, x, other)


def convert_masked_fill(b, x, mask, value):
    """value where mask, else x."""
    return b.op("where", mask, value, x)


def _above(b, x, y):
    return b.op("step", b.op("sub", x, y))


def convert_gt(b, x, other):
    """x > other as 1.0 or 0.0 (no gradient)."""
    return _above(b, x, other)


def convert_lt(b, x, other):
    """x < other as 1.0 or 0.0."""
    return _above(b, other, x)


def convert_ge(b, x, other):
    """x >= other: 1 - (other > x)."""
    return b.op("sub", 1.0, _above(b, other, x))


def convert_le(b, x, other):
    """x <= other: 1 - (x > other)."""
    return b.op("sub", 1.0, _above(b, x, other))


def convert_ne(b, x, other):
    """x != other: (x > other) + (other > x)."""
    return b.op("add", _above(b, x, other), _above(b, other, x))


def convert_eq(b, x, other):
    """x == other: 1 - (x != other)."""
    return b.op("sub", 1.0, convert_ne(b, x, other))


def convert_logical_not(b, x):
    """1 - x on a 0/1 mask."""
    return b.op("sub", 1.0, x)


# -- linear algebra --------------------------------------------------------------------------------


def convert_linear(b, x, weight, bias=None):
    """x @ weight.T + bias: the (out, in) weight is transposed into dagprop's linear(h, W, b)."""
    transposed = b.op("transpose", weight)
    if bias is None:
        return b.op("matmul", x, transposed)
    return b.op("linear", x, transposed, bias)


def convert_matmul(b, x, other):
    """x @ other (matmul, mm, bmm)."""
    return b.op("matmul", x, other)


def convert_addmm(b, bias, x, other, beta=1, alpha=1):
    """beta * bias + alpha * (x @ other)."""
    if beta == 1 and alpha == 1:
        return b.op("linear", x, other, bias)
    return b.op("add", _scaled(b, bias, beta), _scaled(b, b.op("matmul", x, other), alpha))


def convert_t(b, x):
    """A matrix's transpose (a vector as it is)."""
    return b.op("transpose", x)


def convert_transpose(b, x, dim0, dim1):
    """Swap two axes."""
    return b.op("transpose", x, axes=_swap(len(x.shape), int(dim0), int(dim1)))


def convert_numpy_t(b, x):
    """x.T: every axis reversed."""
    return b.op("transpose", x)


def convert_mt(b, x):
    """x.mT: the last two axes swapped."""
    return b.op("transpose", x, axes=_swap(len(x.shape), -2, -1))


def convert_permute(b, x, dims):
    """Reorder the axes."""
    ndim = len(x.shape)
    return b.op("transpose", x, axes=tuple(int(d) % ndim for d in dims) if ndim else None)


# -- reductions ------------------------------------------------------------------------------------


def _reduction(name, doc):
    def convert(b, x, dim=None, keepdim=False, dtype=None):
        return b.op(name, x, axis=_axes(dim), keepdims=bool(keepdim))
    convert.__name__ = convert.__qualname__ = f"convert_{name}"
    convert.__doc__ = doc
    return convert


convert_sum = _reduction("sum", "Sum over ``dim`` (all axes when None or []).")
convert_mean = _reduction("mean", "Mean over ``dim``.")


def convert_amax(b, x, dim=(), keepdim=False):
    """Largest element over ``dim`` (ties share the gradient, as torch's amax)."""
    return b.op("max", x, axis=_axes(dim), keepdims=bool(keepdim))


def convert_amin(b, x, dim=(), keepdim=False):
    """Smallest element over ``dim``."""
    return b.op("min", x, axis=_axes(dim), keepdims=bool(keepdim))


def convert_max(b, x, dim=None, keepdim=False):
    """max of every element, max of two tensors, or (values, indices) along ``dim``: the indices are not
    converted (using them is an error)."""
    if isinstance(dim, dp.Node):
        return b.op("maximum", x, dim)
    if dim is None:
        return b.op("max", x)
    return b.op("max", x, axis=int(dim), keepdims=bool(keepdim)), None


def convert_min(b, x, dim=None, keepdim=False):
    """min, like max."""
    if isinstance(dim, dp.Node):
        return b.op("minimum", x, dim)
    if dim is None:
        return b.op("min", x)
    return b.op("min", x, axis=int(dim), keepdims=bool(keepdim)), None


def _var_default(x, unbiased=True):
    return None, 1 if unbiased else 0, False


def _var_dim(x, dim, unbiased=True, keepdim=False):
    return dim, 1 if unbiased else 0, keepdim


def _var_correction(x, dim=None, *, correction=None, keepdim=False):
    return dim, 1 if correction is None else correction, keepdim


# var's overloads take the same things in different places: var(x, unbiased), var.dim(x, dim, unbiased,
# keepdim), var.correction(x, dim, correction=, keepdim=)
_VAR_ARGUMENTS: dict[str, Callable[..., tuple]] = {"default": _var_default, "dim": _var_dim, "correction": _var_correction}


def convert_var(b, x, *args, **kwargs):
    """Variance over ``dim`` with torch's correction (1, unbiased, by default; 0: biased)."""
    read = _VAR_ARGUMENTS.get(b.overload)
    if read is None:
        raise NotImplementedError(f"the overload var.{b.overload} is not converted")
    dim, correction, keepdim = read(x, *args, **kwargs)
    return b.op("var", x, axis=_axes(dim), keepdims=bool(keepdim), correction=float(correction))


def convert_std(b, x, *args, **kwargs):
    """sqrt of the variance (std's overloads are var's)."""
    return b.op("sqrt", convert_var(b, x, *args, **kwargs))


def convert_logsumexp(b, x, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, computed stably."""
    return b.op("logsumexp", x, axis=_axes(dim), keepdims=bool(keepdim))


def convert_prod(b, x, dim=None, keepdim=False, dtype=None):
    """Product over ``dim`` (prod.default: every element)."""
    if not isinstance(dim, int):
        return b.op("prod", x)
    return b.op("prod", x, axis=int(dim), keepdims=bool(keepdim))


# -- shaping ---------------------------------------------------------------------------------------


def convert_reshape(b, x, shape):
    """view, reshape, _unsafe_view, unflatten: the same elements in the call's output shape."""
    return b.op("reshape", x, shape=tuple(b.out_shape))


def convert_unflatten(b, x, dim, sizes):
    """One axis split into several: a reshape to the output shape."""
    return b.op("reshape", x, shape=tuple(b.out_shape))


def convert_flatten(b, x, start_dim=0, end_dim=-1):
    """Axes start_dim..end_dim joined into one."""
    return b.op("flatten", x, start_axis=int(start_dim), end_axis=int(end_dim))


def convert_squeeze(b, x, dim=None):
    """Drop size-1 axes (all of them, one, or a list; torch leaves an axis of another size alone)."""
    ndim = len(x.shape)
    asked = range(ndim) if dim is None else [dim] if isinstance(dim, int) else dim
    axes = tuple(sorted({int(d) % ndim for d in asked if x.shape[int(d) % ndim] == 1}))
    return b.op("squeeze", x, axis=axes) if axes else x


def convert_unsqueeze(b, x, dim):
    """A new size-1 axis at ``dim``."""
    return b.op("unsqueeze", x, axis=int(dim))


def convert_expand(b, x, size, implicit=False):
    """Repeat along size-1 or new axes: broadcast_to the output shape (expand and expand_as)."""
    if tuple(x.shape) == tuple(b.out_shape):
        return x
    return b.op("broadcast_to", x, shape=tuple(b.out_shape))


def convert_broadcast_tensors(b, tensors):
    """Each tensor broadcast to the shape they share."""
    return tuple(t if tuple(t.shape) == shape else b.op("broadcast_to", t, shape=shape)
                 for t, shape in zip(tensors, b.out_shape))


def convert_identity(b, x, *args, **kwargs):
    """contiguous, clone, alias, lift_fresh_copy: the same values."""
    return x


def convert_to(b, x, *args, **kwargs):
    """A cast (``to``, ``_to_copy``, ``type_as``): the same values unless floats become integers."""
    if _is_float(b.dtypes[0] if b.dtypes else None) and not _is_float(b.out_dtype):
        raise NotImplementedError(f"casting floats to {b.out_dtype} rounds them, which has no dagprop op")
    return x


def convert_detach(b, x):
    """Refused: detach stops the gradient, and dagprop has no op that does."""
    raise NotImplementedError("detach stops the gradient, which no dagprop op does; compute the detached "
                              "tensor from buffers or constants instead")


def convert_dropout(b, x, p=0.5, train=False):
    """Identity in eval mode; in train mode dagprop's dropout (its mask is not torch's)."""
    if not train or p == 0:
        return x
    return b.op("dropout", x, p=float(p), training=True)


def convert_select(b, x, dim, index):
    """x[..., index, ...]: one entry along ``dim``."""
    dim = int(dim) % len(x.shape)
    return b.op("getitem", x, index=(slice(None),) * dim + (int(index),))


def convert_slice(b, x, dim=0, start=None, end=None, step=1):
    """x[..., start:end:step, ...] along ``dim``."""
    if tuple(b.out_shape) == tuple(x.shape) and step == 1:
        return x
    dim = int(dim) % len(x.shape)
    return b.op("getitem", x, index=(slice(None),) * dim + (slice(start, end, int(step)),))


def convert_index(b, x, indices):
    """x[indices] with index tensors known now (integer or boolean; None keeps an axis)."""
    index: list = []
    for k, (entry, traced) in enumerate(zip(indices, b.torch_node.args[1])):
        if entry is None:
            index.append(slice(None))
            continue
        values = b.static(entry, f"index tensor {k}")
        if _is_bool(_traced_dtype(traced)):
            index.extend(np.nonzero(values))
        else:
            index.append(values.astype(np.int64))
    return b.op("getitem", x, index=tuple(index))


def convert_cat(b, tensors, dim=0):
    """Join along ``dim`` (cat, concat)."""
    return b.op("concat", *tensors, axis=int(dim))


def convert_stack(b, tensors, dim=0):
    """Stack along a new axis ``dim``."""
    return b.op("stack", *tensors, axis=int(dim))


def _pieces(b, x, sizes, dim):
    return tuple(b.op("split", x, sizes=sizes, axis=int(dim), part=k) for k in range(len(b.out_shape)))


def convert_split(b, x, split_size, dim=0):
    """Pieces of ``split_size`` along ``dim`` (a list of sizes: split_with_sizes)."""
    sizes = [int(s) for s in split_size] if isinstance(split_size, (list, tuple)) else int(split_size)
    return _pieces(b, x, sizes, dim)


def convert_chunk(b, x, chunks, dim=0):
    """``chunks`` pieces along ``dim``, the last one shorter: split with the pieces' sizes."""
    axis = int(dim) % len(x.shape)
    return _pieces(b, x, [shape[axis] for shape in b.out_shape], dim)


def convert_unbind(b, x, dim=0):
    """Every entry along ``dim``, each without that axis."""
    axis = int(dim) % len(x.shape)
    return tuple(b.op("getitem", x, index=(slice(None),) * axis + (k,)) for k in range(x.shape[axis]))


def convert_constant_pad_nd(b, x, pad, value=0):
    """Pad with a constant, torch's order (last axis first)."""
    return b.op("pad", x, pad=tuple(int(p) for p in pad), value=float(value))


def convert_pad(b, x, pad, mode="constant", value=None):
    """F.pad: constant mode (others are refused unless dagprop's pad takes them)."""
    return b.op("pad", x, pad=tuple(int(p) for p in pad), mode=mode, value=0.0 if value is None else float(value))


def convert_zeros_like(b, x, *args, **kwargs):
    """Zeros of x's shape, a const (also new_zeros, empty_like, new_empty)."""
    return b.const(np.zeros(b.out_shape))


def convert_ones_like(b, x, *args, **kwargs):
    """Ones of x's shape, a const (also new_ones)."""
    return b.const(np.ones(b.out_shape))


def convert_full_like(b, x, fill_value, *args, **kwargs):
    """``fill_value`` in x's shape, a const."""
    return b.const(np.full(b.out_shape, float(fill_value)))


def convert_new_full(b, x, size, fill_value, *args, **kwargs):
    """``fill_value`` in the shape ``size``, a const."""
    return b.const(np.full(b.out_shape, float(fill_value)))


# -- layers ----------------------------------------------------------------------------------------


def convert_conv2d(b, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution, NCHW, with torch's weight layout (out, in/groups, kh, kw)."""
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return b.op("conv2d", *inputs, stride=_window(stride), padding=_window(padding), dilation=_window(dilation),
                groups=int(groups))


def convert_conv1d(b, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution, NCL."""
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return b.op("conv1d", *inputs, stride=_window(stride), padding=_window(padding), dilation=_window(dilation),
                groups=int(groups))


def convert_convolution(b, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """The general convolution a decomposed program has: conv1d or conv2d, not transposed."""
    if transposed:
        raise NotImplementedError("transposed convolutions have no dagprop op")
    if len(x.shape) == 3:
        return convert_conv1d(b, x, weight, bias, stride, padding, dilation, groups)
    if len(x.shape) == 4:
        return convert_conv2d(b, x, weight, bias, stride, padding, dilation, groups)
    raise NotImplementedError(f"a convolution of a {len(x.shape)}-axis input; dagprop has conv1d and conv2d")


def convert_max_pool2d(b, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """Max over windows; ceil_mode (a last, partial window) is not converted."""
    if ceil_mode:
        raise NotImplementedError("ceil_mode=True (a partial last window) is not supported by dagprop's max_pool2d")
    return b.op("max_pool2d", x, kernel_size=_window(kernel_size), stride=_window(stride) if stride else None,
                padding=_window(padding), dilation=_window(dilation))


def convert_max_pool2d_with_indices(b, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """max_pool2d's values; its indices are not converted."""
    return convert_max_pool2d(b, x, kernel_size, stride, padding, dilation, ceil_mode), None


def convert_avg_pool2d(b, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Mean over windows; ceil_mode and divisor_override are not converted."""
    if ceil_mode or divisor_override is not None:
        raise NotImplementedError("avg_pool2d with ceil_mode=True or a divisor_override is not supported")
    return b.op("avg_pool2d", x, kernel_size=_window(kernel_size), stride=_window(stride) if stride else None,
                padding=_window(padding), count_include_pad=bool(count_include_pad))


def convert_adaptive_avg_pool2d(b, x, output_size):
    """Mean over torch's adaptive windows."""
    return b.op("adaptive_avg_pool2d", x, output_size=_window(output_size))


def _norm_inputs(b, x, weight, bias, channels):
    """weight and bias as dagprop's optional trailing inputs: a bias without a weight gets a weight of ones."""
    if bias is not None and weight is None:
        weight = b.const(np.ones(channels))
    return tuple(v for v in (weight, bias) if v is not None)


def convert_batch_norm(b, x, weight=None, bias=None, running_mean=None, running_var=None, training=False,
                       momentum=0.1, eps=1e-5, cudnn_enabled=True):
    """Batch norm over axis 1; the running statistics are consts and are not updated."""
    channels = x.shape[1]
    if running_mean is None or running_var is None:
        if not training:
            raise NotImplementedError("batch norm in eval mode without running statistics")
        running_mean, running_var = b.const(np.zeros(channels)), b.const(np.ones(channels))
    return b.op("batch_norm", x, running_mean, running_var, *_norm_inputs(b, x, weight, bias, channels),
                training=bool(training), momentum=float(momentum if momentum is not None else 0.1), eps=float(eps))


def convert_native_batch_norm(b, x, weight, bias, *rest):
    """The batch norms of a decomposed program (native_batch_norm, _native_batch_norm_legit, its
    no_stats and _functional forms): the normalised tensor; saved and updated statistics are not converted."""
    if b.overload == "no_stats":
        (training, momentum, eps), running_mean, running_var = rest, None, None
    else:
        running_mean, running_var, training, momentum, eps = rest
    normalised = convert_batch_norm(b, x, weight, bias, running_mean, running_var, training, momentum, eps)
    return (normalised,) + (None,) * (len(b.out_shape) - 1)


def convert_native_batch_norm_no_training(b, x, weight, bias, running_mean, running_var, momentum, eps):
    """Batch norm with running statistics, in a decomposed program."""
    normalised = convert_batch_norm(b, x, weight, bias, running_mean, running_var, False, momentum, eps)
    return (normalised,) + (None,) * (len(b.out_shape) - 1)


def convert_layer_norm(b, x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    """Layer norm over the last len(normalized_shape) axes."""
    shape = tuple(int(s) for s in normalized_shape)
    return b.op("layer_norm", x, *_norm_inputs(b, x, weight, bias, shape), normalized_shape=shape, eps=float(eps))


def convert_native_layer_norm(b, x, normalized_shape, weight, bias, eps):
    """Layer norm in a decomposed program: the normalised tensor (mean and rstd are not converted)."""
    return convert_layer_norm(b, x, normalized_shape, weight, bias, eps), None, None


def convert_group_norm(b, x, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    """Group norm over groups of channels."""
    return b.op("group_norm", x, *_norm_inputs(b, x, weight, bias, x.shape[1]), num_groups=int(num_groups),
                eps=float(eps))


def convert_embedding(b, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by integer indices; the padding row gets no gradient, as in torch."""
    if scale_grad_by_freq:
        raise NotImplementedError("scale_grad_by_freq=True scales gradients by token counts, which dagprop's "
                                  "embedding does not")
    return b.op("embedding", indices, weight, padding_idx=None if padding_idx is None or padding_idx < 0
                else int(padding_idx))


def convert_scaled_dot_product_attention(b, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                         scale=None, enable_gqa=False):
    """softmax(Q K^T * scale + mask) V: dagprop's attention op when there is no mask and the scale is
    1/sqrt(d); else its circuit, with the mask added (boolean: -inf where False) before the softmax."""
    if dropout_p:
        raise NotImplementedError(f"dropout_p={dropout_p} drops attention weights at random; convert the model "
                                  f"in eval mode")
    if enable_gqa:
        raise NotImplementedError("enable_gqa=True (grouped-query attention) is not converted")
    if attn_mask is None and not is_causal and scale is None:
        return b.op("attention", query, key, value)
    depth = query.shape[-1]
    scale = 1.0 / math.sqrt(depth) if scale is None else float(scale)
    keys = b.op("transpose", key, axes=_swap(len(key.shape), -2, -1))
    scores = b.op("mul", b.op("matmul", query, keys), scale)
    queries, keys_count = query.shape[-2], key.shape[-2]
    if is_causal:
        scores = b.op("add", scores, b.const(np.triu(np.full((queries, keys_count), -np.inf), 1)))
    if attn_mask is not None:
        traced = b.torch_node.args[3] if len(b.torch_node.args) > 3 else b.torch_node.kwargs.get("attn_mask")
        if _is_bool(_traced_dtype(traced)):
            scores = b.op("where", attn_mask, scores, -np.inf)
        else:
            scores = b.op("add", scores, attn_mask)
    return b.op("matmul", b.op("softmax", scores, axis=-1), value)


# -- losses ----------------------------------------------------------------------------------------


def _reduced(b, losses, reduction):
    if reduction == _MEAN:
        return b.op("mean", losses)
    if reduction == _SUM:
        return b.op("sum", losses)
    return losses


def convert_mse_loss(b, x, target, reduction=_MEAN):
    """(x - target) ** 2, averaged (reduction 1), summed (2) or kept (0)."""
    return _reduced(b, b.op("pow", b.op("sub", x, target), exponent=2.0), reduction)


def convert_cross_entropy_loss(b, logits, target, weight=None, reduction=_MEAN, ignore_index=-100,
                               label_smoothing=0.0):
    """Cross-entropy of (N, C) logits, averaged over rows: class-index targets become one-hot rows
    (an embedding of the identity matrix), probability targets are used as they are."""
    if weight is not None or label_smoothing:
        raise NotImplementedError("cross_entropy with class weights or label smoothing is not converted")
    if len(logits.shape) != 2 or reduction == _NONE:
        raise NotImplementedError("cross_entropy is converted for (N, C) logits with reduction 'mean' or 'sum'")
    if tuple(target.shape) != tuple(logits.shape):
        classes = logits.shape[1]
        target = b.op("embedding", target, b.const(np.eye(classes)))
    loss = b.op("cross_entropy", logits, target)
    return loss if reduction == _MEAN else b.op("mul", loss, float(logits.shape[0]))


@dp.hookimpl
def dagprop_torch_converters():
    """The built-in ``{torch op name: converter}`` table."""
    return {
        # arithmetic and activations
        "aten.add": convert_add, "aten.sub": convert_sub, "aten.rsub": convert_rsub, "aten.mul": convert_mul,
        "aten.div": convert_div, "aten.true_divide": convert_div, "aten.pow": convert_pow,
        "aten.square": convert_square, "aten.neg": convert_neg, "aten.exp": convert_exp, "aten.log": convert_log,
        "aten.reciprocal": convert_reciprocal, "aten.sqrt": convert_sqrt, "aten.rsqrt": convert_rsqrt,
        "aten.abs": convert_abs, "aten.erf": convert_erf,
        "aten.relu": convert_relu, "aten.sigmoid": convert_sigmoid, "aten.tanh": convert_tanh,
        "aten.silu": convert_silu, "aten.log_sigmoid": convert_log_sigmoid, "aten.gelu": convert_gelu,
        "aten.softplus": convert_softplus, "aten.leaky_relu": convert_leaky_relu, "aten.elu": convert_elu,
        "aten.hardtanh": convert_hardtanh, "aten.relu6": convert_relu6,
        "aten.clamp": convert_clamp, "aten.clip": convert_clamp, "aten.clamp_min": convert_clamp_min,
        "aten.clamp_max": convert_clamp_max, "aten.maximum": convert_maximum, "aten.minimum": convert_minimum,
        "aten.softmax": convert_softmax, "aten._softmax": convert_softmax,
        "aten.log_softmax": convert_log_softmax, "aten._log_softmax": convert_log_softmax,
        "aten.where": convert_where, "aten.masked_fill": convert_masked_fill,
        "aten.gt": convert_gt, "aten.lt": convert_lt, "aten.ge": convert_ge, "aten.le": convert_le,
        "aten.eq": convert_eq, "aten.ne": convert_ne, "aten.logical_not": convert_logical_not,
        # linear algebra
        "aten.linear": convert_linear, "aten.matmul": convert_matmul, "aten.mm": convert_matmul,
        "aten.bmm": convert_matmul, "aten.addmm": convert_addmm, "aten.t": convert_t,
        "aten.transpose": convert_transpose, "aten.permute": convert_permute,
        "aten.numpy_T": convert_numpy_t, "aten.mT": convert_mt,
        # reductions
        "aten.sum": convert_sum, "aten.mean": convert_mean, "aten.amax": convert_amax, "aten.amin": convert_amin,
        "aten.max": convert_max, "aten.min": convert_min, "aten.var": convert_var, "aten.std": convert_std,
        "aten.logsumexp": convert_logsumexp, "aten.prod": convert_prod,
        # shaping
        "aten.view": convert_reshape, "aten.reshape": convert_reshape, "aten._unsafe_view": convert_reshape,
        "aten.unflatten": convert_unflatten, "aten.flatten": convert_flatten, "aten.squeeze": convert_squeeze,
        "aten.unsqueeze": convert_unsqueeze, "aten.expand": convert_expand, "aten.expand_as": convert_expand,
        "aten.broadcast_tensors": convert_broadcast_tensors,
        "aten.contiguous": convert_identity, "aten.clone": convert_identity, "aten.alias": convert_identity,
        "aten.lift_fresh_copy": convert_identity, "aten.to": convert_to, "aten._to_copy": convert_to,
        "aten.type_as": convert_to, "aten.detach": convert_detach, "aten.dropout": convert_dropout,
        "aten.select": convert_select, "aten.slice": convert_slice, "aten.index": convert_index,
        "aten.cat": convert_cat, "aten.concat": convert_cat, "aten.stack": convert_stack,
        "aten.split": convert_split, "aten.split_with_sizes": convert_split, "aten.chunk": convert_chunk,
        "aten.unbind": convert_unbind, "aten.constant_pad_nd": convert_constant_pad_nd, "aten.pad": convert_pad,
        "aten.zeros_like": convert_zeros_like, "aten.empty_like": convert_zeros_like,
        "aten.new_zeros": convert_zeros_like, "aten.new_empty": convert_zeros_like,
        "aten.ones_like": convert_ones_like, "aten.new_ones": convert_ones_like,
        "aten.full_like": convert_full_like, "aten.new_full": convert_new_full,
        # layers
        "aten.conv2d": convert_conv2d, "aten.conv1d": convert_conv1d, "aten.convolution": convert_convolution,
        "aten.max_pool2d": convert_max_pool2d, "aten.max_pool2d_with_indices": convert_max_pool2d_with_indices,
        "aten.avg_pool2d": convert_avg_pool2d, "aten.adaptive_avg_pool2d": convert_adaptive_avg_pool2d,
        "aten._adaptive_avg_pool2d": convert_adaptive_avg_pool2d,
        "aten.batch_norm": convert_batch_norm, "aten.native_batch_norm": convert_native_batch_norm,
        "aten._native_batch_norm_legit": convert_native_batch_norm,
        "aten._native_batch_norm_legit_functional": convert_native_batch_norm,
        "aten._native_batch_norm_legit_no_training": convert_native_batch_norm_no_training,
        "aten.layer_norm": convert_layer_norm, "aten.native_layer_norm": convert_native_layer_norm,
        "aten.group_norm": convert_group_norm, "aten.embedding": convert_embedding,
        "aten.scaled_dot_product_attention": convert_scaled_dot_product_attention,
        # losses
        "aten.mse_loss": convert_mse_loss, "aten.cross_entropy_loss": convert_cross_entropy_loss,
    }
