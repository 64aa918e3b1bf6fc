"""The torch converters of layers and losses: convolution, pooling, normalisation, embedding,
attention, mean squared error and cross-entropy.
Private to dagprop_plugins: :mod:`dagprop_plugins.torch_converters` registers them."""

from __future__ import annotations

import math

import numpy as np

from ._torch_common import is_bool, swap_axes, traced_dtype

_NONE, _MEAN, _SUM = 0, 1, 2  # torch's loss reductions, as ATen numbers them


def _window(value):
    """A kernel size, stride, padding or dilation as dagprop takes it: an int, or a pair as a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value) if len(value) > 1 else int(value[0])
    return value


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
    keys = b.op("transpose", key, axes=swap_axes(len(key.shape), -2, -1))
    scores = b.op("mul", b.op("matmul", query, keys), scale)
    queries, keys_count = query.shape[-2], key.shape[-2]
    if is_causal:
        scores = b.op("add", scores, b.const(np.triu(np.full((queries, keys_count), -np.inf), 1)))
    if attn_mask is not None:
        traced = b.torch_node.args[3] if len(b.torch_node.args) > 3 else b.torch_node.kwargs.get("attn_mask")
        if is_bool(traced_dtype(traced)):
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
