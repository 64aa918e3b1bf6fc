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

The table below is the whole plugin. The converters of linear algebra, reductions and
shaping are here; those of elementwise ops (arithmetic, activations, comparisons) are in
the private module ``_torch_elementwise``, and those of layers and losses in
``_torch_layers``. None of them imports ``torch``: converters see nodes and Python values.

>>> from dagprop_plugins.torch_converters import dagprop_torch_converters
>>> table = dagprop_torch_converters()
>>> table["aten.linear"].__name__, len(table) >= 100
('convert_linear', True)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import dagprop as dp
from ._torch_common import is_bool, scaled, swap_axes, traced_dtype
from ._torch_elementwise import (convert_abs, convert_add, convert_clamp, convert_clamp_max, convert_clamp_min,
                                 convert_div, convert_elu, convert_eq, convert_erf, convert_exp, convert_ge,
                                 convert_gelu, convert_gt, convert_hardtanh, convert_le, convert_leaky_relu,
                                 convert_log, convert_log_sigmoid, convert_log_softmax, convert_logical_not,
                                 convert_lt, convert_masked_fill, convert_maximum, convert_minimum, convert_mul,
                                 convert_ne, convert_neg, convert_pow, convert_reciprocal, convert_relu,
                                 convert_relu6, convert_rsqrt, convert_rsub, convert_sigmoid, convert_silu,
                                 convert_softmax, convert_softplus, convert_sqrt, convert_square, convert_sub,
                                 convert_tanh, convert_where)
from ._torch_layers import (convert_adaptive_avg_pool2d, convert_avg_pool2d, convert_batch_norm, convert_conv1d,
                            convert_conv2d, convert_convolution, convert_cross_entropy_loss, convert_embedding,
                            convert_group_norm, convert_layer_norm, convert_max_pool2d,
                            convert_max_pool2d_with_indices, convert_mse_loss, convert_native_batch_norm,
                            convert_native_batch_norm_no_training, convert_native_layer_norm,
                            convert_scaled_dot_product_attention)


# -- helpers ---------------------------------------------------------------------------------------


def _axes(dim):
    """torch's ``dim`` (an int, a list, or None or [] for every axis) as dagprop's ``axis``."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(int(d) for d in dim)
    return int(dim)


def _is_float(dtype):
    return dtype is None or bool(getattr(dtype, "is_floating_point", True))


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
    return b.op("add", scaled(b, bias, beta), scaled(b, b.op("matmul", x, other), alpha))


def convert_t(b, x):
    """A matrix's transpose (a vector as it is)."""
    return b.op("transpose", x)


def convert_transpose(b, x, dim0, dim1):
    """Swap two axes."""
    return b.op("transpose", x, axes=swap_axes(len(x.shape), int(dim0), int(dim1)))


def convert_numpy_t(b, x):
    """x.T: every axis reversed."""
    return b.op("transpose", x)


def convert_mt(b, x):
    """x.mT: the last two axes swapped."""
    return b.op("transpose", x, axes=swap_axes(len(x.shape), -2, -1))


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
        if is_bool(traced_dtype(traced)):
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
