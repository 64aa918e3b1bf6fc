"""Normalization: layer_norm, batch_norm and group_norm, composite ops with hand-written rules.

Each standardises ``x`` over some axes, ``xhat = (x - mean) / sqrt(var + eps)`` with the
biased variance (divided by the count, as torch does), then scales and shifts it by an
optional ``weight`` and ``bias``. The three differ only in the axes they average over:

- ``layer_norm``: the last ``len(normalized_shape)`` axes of each example; ``weight`` and
  ``bias`` are shaped ``normalized_shape``;
- ``batch_norm``: every axis but the channel axis 1 (``x`` is (N, C, ...)), with the batch's
  statistics (``training=True``) or the given running ones (``training=False``); ``weight``
  and ``bias`` are per channel, shaped (C,);
- ``group_norm``: each example's channels split into ``num_groups`` groups, over each group
  and every spatial axis; ``weight`` and ``bias`` are per channel.

One backward rule serves all three: the gradient of ``x`` from the gradient ``h`` of
``xhat`` is ``rstd * (h - mean(h) - xhat * mean(h * xhat))``. Its matrix is symmetric,
so the same formula pushes a tangent forward (the jvp). It is written with operators
and ``mean`` only, so the vjp (on arrays) and the vjp_graph (on nodes, for
``backward(create_graph=True)``) call the very same function. Each op also opens up
(``decompose``) into the circuit a course draws: mean, sub, var, add eps, rsqrt, mul,
then the weight and the bias.

Weight and bias are optional trailing inputs: give ``x``, ``(x, weight)`` or ``(x,
weight, bias)`` (for a bias alone, pass a weight of ones).

>>> import numpy as np
>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", [[1.0, 2.0, 3.0], [2.0, 2.0, 5.0]])
>>> y = x.layer_norm(normalized_shape=(3,), eps=0.0)
>>> g.forward(); np.round(y.value, 4)
array([[-1.2247,  0.    ,  1.2247],
       [-0.7071, -0.7071,  1.4142]])
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.op import SourceForm

Shape = tuple[int, ...]


# -- the shared step: standardise over some axes, and its backward rule -------------------------


def _standardize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``xhat = (x - mean) * rstd`` over ``axes``, and ``rstd = 1 / sqrt(var + eps)`` (the axes kept as 1)."""
    centred = x - x.mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    return centred * rstd, rstd


def _standardize_nodes(x, axes: tuple[int, ...], eps: float):
    """:func:`_standardize` built out of graph nodes: mean, sub, var, add eps, rsqrt, mul."""
    centred = x - x.mean(axis=axes, keepdims=True)
    rstd = (x.var(axis=axes, keepdims=True, correction=0) + eps).rsqrt()
    return centred * rstd, rstd


def _standardize_backward(h, xhat, rstd, axes: tuple[int, ...]):
    """The gradient of ``x`` from the gradient ``h`` of ``xhat``: ``rstd * (h - mean(h) - xhat * mean(h * xhat))``.

    The mean's and the variance's gradients are the two subtracted terms. The matrix of
    this map is ``rstd * (I - 11^T / n - xhat xhat^T / n)``, symmetric, so it is also
    the jvp: given a tangent of ``x`` it returns the tangent of ``xhat``. Written with
    operators and ``mean`` only, it takes arrays and graph nodes alike.
    """
    return rstd * (h - h.mean(axis=axes, keepdims=True) - xhat * (h * xhat).mean(axis=axes, keepdims=True))


def _sum_over(t, axes: tuple[int, ...]):
    """``t`` summed over ``axes`` (arrays or nodes); ``t`` itself when there are none."""
    return t.sum(axis=axes) if axes else t


def _affine(xhat, weight, bias):
    """``xhat * weight + bias``, leaving out what is None (arrays or nodes)."""
    out = xhat if weight is None else xhat * weight
    return out if bias is None else out + bias


def _reshape(t, shape: Shape):
    """``t`` reshaped, an array or a node (whose reshape takes the shape as an attribute)."""
    if t is None:
        return None
    return t.reshape(shape=shape) if isinstance(t, dp.Node) else np.reshape(t, shape)


def _channel_shape(channels: int, ndim: int) -> Shape:
    """The shape (C, 1, ..., 1) that lines a per-channel vector up with axis 1 of an (N, C, ...) array."""
    return (channels,) + (1,) * (ndim - 2)


def _as_count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an int, got {value!r}")
    return int(value)


def _check_eps(eps) -> None:
    if isinstance(eps, bool) or not isinstance(eps, Real) or not eps >= 0:
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")


def _check_per_channel(channels: int, x: Shape, **vectors: Shape | None) -> None:
    for name, shape in vectors.items():
        if shape is not None and tuple(shape) != (channels,):
            raise ValueError(f"{name} has shape {tuple(shape)}; it holds one number per channel, shape ({channels},) "
                             f"for x of shape {x}")


def _check_channels_first(x: Shape, op: str) -> int:
    if len(x) < 2:
        raise ValueError(f"x has shape {x}; {op} takes (N, C, ...) arrays, with at least a batch and a channel axis")
    return x[1]


def _pad(tangents: tuple, count: int) -> tuple:
    """The tangents (or gradients) of the inputs given, followed by None for the optional ones left out."""
    return tuple(tangents) + (None,) * (count - len(tangents))


# -- layer_norm --------------------------------------------------------------------------------


def _normalized_shape(normalized_shape) -> Shape:
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        return (int(normalized_shape),)
    if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
        raise ValueError(f"normalized_shape must be an int or a non-empty tuple of ints, got {normalized_shape!r}")
    return tuple(_as_count(n, "each entry of normalized_shape") for n in normalized_shape)


def _layer_axes(ndim: int, normalized_shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The normalised (last) axes, and the leading ones a weight or bias gradient is summed over."""
    k = len(_normalized_shape(normalized_shape))
    return tuple(range(ndim - k, ndim)), tuple(range(ndim - k))


def _layer_norm_shape(x, weight=None, bias=None, *, normalized_shape, eps=1e-5):
    shape = _normalized_shape(normalized_shape)
    _check_eps(eps)
    if len(x) < len(shape) or tuple(x[len(x) - len(shape):]) != shape:
        raise ValueError(f"x has shape {x}; its last {len(shape)} ax{'is' if len(shape) == 1 else 'es'} must be "
                         f"normalized_shape {shape}")
    for name, given in (("weight", weight), ("bias", bias)):
        if given is not None and tuple(given) != shape:
            raise ValueError(f"{name} has shape {tuple(given)}; it must be normalized_shape {shape}")
    return x


def _layer_norm_forward(x, weight=None, bias=None, *, normalized_shape, eps=1e-5):
    axes, _ = _layer_axes(x.ndim, normalized_shape)
    xhat, _ = _standardize(x, axes, eps)
    return _affine(xhat, weight, bias)


def _layer_norm_vjp(g, x, weight=None, bias=None, *, out, needs, normalized_shape, eps=1e-5):
    axes, leading = _layer_axes(x.ndim, normalized_shape)
    xhat, rstd = _standardize(x, axes, eps)
    grads = (_standardize_backward(g if weight is None else g * weight, xhat, rstd, axes) if needs[0] else None,
             _sum_over(g * xhat, leading) if weight is not None and needs[1] else None,
             _sum_over(g, leading) if bias is not None and needs[2] else None)
    return grads[:1 + (weight is not None) + (bias is not None)]


def _layer_norm_jvp(tangents, x, weight=None, bias=None, *, out, normalized_shape, eps=1e-5):
    tx, tw, tb = _pad(tangents, 3)
    axes, _ = _layer_axes(x.ndim, normalized_shape)
    xhat, rstd = _standardize(x, axes, eps)
    from_x = None if tx is None else _affine(_standardize_backward(tx, xhat, rstd, axes), weight, None)
    from_w = None if tw is None else xhat * tw
    from_b = None if tb is None else np.broadcast_to(tb, out.shape)
    return (from_x, from_w, from_b)[:len(tangents)]


def _layer_norm_vjp_graph(g, x, weight=None, bias=None, *, out, needs, normalized_shape, eps=1e-5):
    axes, leading = _layer_axes(x.ndim, normalized_shape)
    xhat, rstd = _standardize_nodes(x, axes, eps)
    grads = (_standardize_backward(g if weight is None else g * weight, xhat, rstd, axes) if needs[0] else None,
             _sum_over(g * xhat, leading) if weight is not None and needs[1] else None,
             _sum_over(g, leading) if bias is not None and needs[2] else None)
    return grads[:1 + (weight is not None) + (bias is not None)]


def _layer_norm_decompose(x, weight=None, bias=None, *, normalized_shape, eps=1e-5):
    axes, _ = _layer_axes(x.ndim, normalized_shape)
    xhat, _ = _standardize_nodes(x, axes, eps)
    return _affine(xhat, weight, bias)


# -- batch_norm --------------------------------------------------------------------------------


def _batch_axes(ndim: int) -> tuple[int, ...]:
    """Every axis but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def _batch_norm_shape(x, running_mean, running_var, weight=None, bias=None, *, training=False, momentum=0.1,
                      eps=1e-5):
    channels = _check_channels_first(x, "batch_norm")
    if not isinstance(training, (bool, np.bool_)):
        raise ValueError(f"training must be True or False, got {training!r}")
    if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, Real)):
        raise ValueError(f"momentum must be a number or None, got {momentum!r}")
    _check_eps(eps)
    _check_per_channel(channels, x, running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    if training and math.prod(x) // max(channels, 1) == 1:
        raise ValueError(f"x has shape {x}: with training=True each channel needs more than one value for its batch "
                         f"variance (torch refuses this too)")
    return x


def _batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, *, training=False, momentum=0.1,
                        eps=1e-5):
    channel = _channel_shape(x.shape[1], x.ndim)
    if training:
        xhat, _ = _standardize(x, _batch_axes(x.ndim), eps)
    else:
        xhat = (x - running_mean.reshape(channel)) / np.sqrt(running_var.reshape(channel) + eps)
    return _affine(xhat, _reshape(weight, channel), _reshape(bias, channel))


def _batch_norm_vjp(g, x, running_mean, running_var, weight=None, bias=None, *, out, needs, training=False,
                    momentum=0.1, eps=1e-5):
    channel, axes = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    w = _reshape(weight, channel)
    h = g if w is None else g * w
    if training:
        xhat, rstd = _standardize(x, axes, eps)
        gx = _standardize_backward(h, xhat, rstd, axes) if needs[0] else None
        g_mean = g_var = None  # the batch's statistics were used: the output does not depend on the running ones
    else:
        rstd = 1.0 / np.sqrt(running_var.reshape(channel) + eps)
        xhat = (x - running_mean.reshape(channel)) * rstd
        gx = h * rstd if needs[0] or needs[1] else None
        g_mean = -_sum_over(gx, axes) if needs[1] else None
        # d xhat / d var = -(x - mean) / 2 (var + eps)^(3/2) = -xhat * rstd^2 / 2
        g_var = -0.5 * _sum_over(h * xhat, axes) * rstd.reshape(-1) ** 2 if needs[2] else None
        gx = gx if needs[0] else None
    grads = (gx, g_mean, g_var,
             _sum_over(g * xhat, axes) if weight is not None and needs[3] else None,
             _sum_over(g, axes) if bias is not None and needs[4] else None)
    return grads[:3 + (weight is not None) + (bias is not None)]


def _batch_norm_jvp(tangents, x, running_mean, running_var, weight=None, bias=None, *, out, training=False,
                    momentum=0.1, eps=1e-5):
    tx, t_mean, t_var, tw, tb = _pad(tangents, 5)
    channel, axes = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    w = _reshape(weight, channel)
    if training:
        xhat, rstd = _standardize(x, axes, eps)
        from_x = None if tx is None else _affine(_standardize_backward(tx, xhat, rstd, axes), w, None)
        from_mean = from_var = None
    else:
        rstd = 1.0 / np.sqrt(running_var.reshape(channel) + eps)
        xhat = (x - running_mean.reshape(channel)) * rstd
        scale = rstd if w is None else rstd * w
        from_x = None if tx is None else tx * scale
        from_mean = None if t_mean is None else np.broadcast_to(-t_mean.reshape(channel) * scale, out.shape)
        from_var = None if t_var is None else -0.5 * t_var.reshape(channel) * rstd**2 * xhat * (1.0 if w is None else w)
    from_w = None if tw is None else xhat * tw.reshape(channel)
    from_b = None if tb is None else np.broadcast_to(tb.reshape(channel), out.shape)
    return (from_x, from_mean, from_var, from_w, from_b)[:len(tangents)]


def _batch_norm_vjp_graph(g, x, running_mean, running_var, weight=None, bias=None, *, out, needs, training=False,
                          momentum=0.1, eps=1e-5):
    channel, axes = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    w = _reshape(weight, channel)
    h = g if w is None else g * w
    g_mean = g_var = None
    if training:
        xhat, rstd = _standardize_nodes(x, axes, eps)
        gx = _standardize_backward(h, xhat, rstd, axes) if needs[0] else None
    else:
        rstd = (running_var + eps).rsqrt()
        xhat = (x - _reshape(running_mean, channel)) * _reshape(rstd, channel)
        gx = h * _reshape(rstd, channel) if needs[0] or needs[1] else None
        g_mean = -_sum_over(gx, axes) if needs[1] else None
        g_var = _sum_over(h * xhat, axes) * (rstd * rstd * -0.5) if needs[2] else None
        gx = gx if needs[0] else None
    grads = (gx, g_mean, g_var,
             _sum_over(g * xhat, axes) if weight is not None and needs[3] else None,
             _sum_over(g, axes) if bias is not None and needs[4] else None)
    return grads[:3 + (weight is not None) + (bias is not None)]


def _batch_norm_decompose(x, running_mean, running_var, weight=None, bias=None, *, training=False, momentum=0.1,
                          eps=1e-5):
    channel = _channel_shape(x.shape[1], x.ndim)
    if training:
        xhat, _ = _standardize_nodes(x, _batch_axes(x.ndim), eps)
    else:
        xhat = (x - _reshape(running_mean, channel)) * _reshape((running_var + eps).rsqrt(), channel)
    return _affine(xhat, _reshape(weight, channel), _reshape(bias, channel))


# -- group_norm --------------------------------------------------------------------------------


def _grouped(shape: Shape, num_groups: int) -> tuple[Shape, tuple[int, ...]]:
    """(N, C, ...) split as (N, G, C/G, ...), and the axes of one group: all but the first two."""
    grouped = (shape[0], num_groups, shape[1] // num_groups) + tuple(shape[2:])
    return grouped, tuple(range(2, len(grouped)))


def _group_norm_shape(x, weight=None, bias=None, *, num_groups, eps=1e-5):
    channels = _check_channels_first(x, "group_norm")
    groups = _as_count(num_groups, "num_groups")
    if groups < 1 or channels % groups:
        raise ValueError(f"num_groups {num_groups!r} does not divide the {channels} channels of x (shape {x}); "
                         f"each group holds the same number of channels")
    _check_eps(eps)
    _check_per_channel(channels, x, weight=weight, bias=bias)
    return x


def _group_norm_forward(x, weight=None, bias=None, *, num_groups, eps=1e-5):
    grouped, axes = _grouped(x.shape, num_groups)
    xhat, _ = _standardize(x.reshape(grouped), axes, eps)
    channel = _channel_shape(x.shape[1], x.ndim)
    return _affine(xhat.reshape(x.shape), _reshape(weight, channel), _reshape(bias, channel))


def _group_norm_vjp(g, x, weight=None, bias=None, *, out, needs, num_groups, eps=1e-5):
    grouped, axes = _grouped(x.shape, num_groups)
    channel, per_channel = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    xhat, rstd = _standardize(x.reshape(grouped), axes, eps)
    h = g if weight is None else g * weight.reshape(channel)
    grads = (_standardize_backward(h.reshape(grouped), xhat, rstd, axes).reshape(x.shape) if needs[0] else None,
             _sum_over(g * xhat.reshape(x.shape), per_channel) if weight is not None and needs[1] else None,
             _sum_over(g, per_channel) if bias is not None and needs[2] else None)
    return grads[:1 + (weight is not None) + (bias is not None)]


def _group_norm_jvp(tangents, x, weight=None, bias=None, *, out, num_groups, eps=1e-5):
    tx, tw, tb = _pad(tangents, 3)
    grouped, axes = _grouped(x.shape, num_groups)
    channel = _channel_shape(x.shape[1], x.ndim)
    xhat, rstd = _standardize(x.reshape(grouped), axes, eps)
    xhat = xhat.reshape(x.shape)
    from_x = None if tx is None else _affine(
        _standardize_backward(tx.reshape(grouped), xhat.reshape(grouped), rstd, axes).reshape(x.shape),
        _reshape(weight, channel), None)
    from_w = None if tw is None else xhat * tw.reshape(channel)
    from_b = None if tb is None else np.broadcast_to(tb.reshape(channel), out.shape)
    return (from_x, from_w, from_b)[:len(tangents)]


def _group_norm_vjp_graph(g, x, weight=None, bias=None, *, out, needs, num_groups, eps=1e-5):
    grouped, axes = _grouped(x.shape, num_groups)
    channel, per_channel = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    xhat, rstd = _standardize_nodes(_reshape(x, grouped), axes, eps)
    h = g if weight is None else g * _reshape(weight, channel)
    grads = (_reshape(_standardize_backward(_reshape(h, grouped), xhat, rstd, axes), x.shape) if needs[0] else None,
             _sum_over(g * _reshape(xhat, x.shape), per_channel) if weight is not None and needs[1] else None,
             _sum_over(g, per_channel) if bias is not None and needs[2] else None)
    return grads[:1 + (weight is not None) + (bias is not None)]


def _group_norm_decompose(x, weight=None, bias=None, *, num_groups, eps=1e-5):
    grouped, axes = _grouped(x.shape, num_groups)
    xhat, _ = _standardize_nodes(_reshape(x, grouped), axes, eps)
    channel = _channel_shape(x.shape[1], x.ndim)
    return _affine(_reshape(xhat, x.shape), _reshape(weight, channel), _reshape(bias, channel))


# -- examples ----------------------------------------------------------------------------------


def _layer_norm_example(rng):
    return ((4, 3), (3,), (3,)), {"normalized_shape": (3,)}


def _batch_norm_example(rng):
    running_var = rng.uniform(0.5, 2.0, 3)
    return ((4, 3, 2), (3,), running_var, (3,), (3,)), {"training": True}


def _group_norm_example(rng):
    return ((2, 4, 3), (4,), (4,)), {"num_groups": 2}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: layer_norm, batch_norm and group_norm."""
    return [
        Op("layer_norm", forward=_layer_norm_forward, vjp=_layer_norm_vjp, jvp=_layer_norm_jvp,
           vjp_graph=_layer_norm_vjp_graph, decompose=_layer_norm_decompose, inputs=("x", "weight", "bias"),
           min_inputs=1, shape=_layer_norm_shape, example=_layer_norm_example,
           doc="(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) axes "
               "(biased variance)"),
        Op("batch_norm", forward=_batch_norm_forward, vjp=_batch_norm_vjp, jvp=_batch_norm_jvp,
           vjp_graph=_batch_norm_vjp_graph, decompose=_batch_norm_decompose,
           inputs=("x", "running_mean", "running_var", "weight", "bias"), min_inputs=3,
           shape=_batch_norm_shape, example=_batch_norm_example,
           doc="(x - mean) / sqrt(var + eps) * weight + bias per channel (axis 1): the batch's statistics "
               "(training=True, running ones not updated) or the running ones"),
        Op("group_norm", forward=_group_norm_forward, vjp=_group_norm_vjp, jvp=_group_norm_jvp,
           vjp_graph=_group_norm_vjp_graph, decompose=_group_norm_decompose, inputs=("x", "weight", "bias"),
           min_inputs=1, shape=_group_norm_shape, example=_group_norm_example,
           doc="(x - mean) / sqrt(var + eps) * weight + bias over each group of num_groups channels "
               "(and all spatial axes) of each example"),
    ]
