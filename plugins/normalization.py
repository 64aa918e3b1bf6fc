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
so the same formula pushes a tangent forward (the jvp). Each op's rules are written
once, for arrays and graph nodes alike: its forward, given nodes, builds the circuit a
course draws (``decompose``: mean, sub, var, add eps, rsqrt, mul, then the weight and the
bias), and its vjp, given nodes, builds the backward pass as nodes (``vjp_graph``, for
``backward(create_graph=True)`` and second derivatives).

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

batch_norm and its running statistics. A graph is a pure function, so
``batch_norm(x, running_mean, running_var, ...)`` never updates ``running_mean`` and
``running_var`` (torch updates them in place with ``momentum`` during training; here
``momentum`` is accepted, for calls written for torch, and has no effect: update them
yourself between runs if you need to). With ``training=True`` the output depends on the
batch's statistics only, so the running ones get no gradient (None). With
``training=False`` they are used as given, and the output depends on them: where they
are params they get their true gradient (torch, which keeps them as buffers, does not
differentiate them at all); make them inputs or consts to leave them out.

>>> h = dp.Graph()
>>> x = h.param("x", [[1.0, 10.0], [3.0, 20.0]])
>>> mean, var = h.input("running_mean", [0.0, 0.0]), h.input("running_var", [1.0, 100.0])
>>> train = x.batch_norm(mean, var, training=True, eps=0.0)
>>> test = x.batch_norm(mean, var, training=False, eps=0.0)
>>> h.forward(); train.value, test.value
(array([[-1., -1.],
       [ 1.,  1.]]), array([[1., 1.],
       [3., 2.]]))
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.backend import namespace
from dagprop.op import SourceForm

_NUMBER = (int, float, np.integer, np.floating)

Shape = tuple[int, ...]


# -- the shared step: standardise over some axes, and its backward rule -------------------------
#
# Every rule below but the jvp takes arrays (forward, vjp) and graph nodes (decompose,
# vjp_graph) alike. Each rule asks :func:`_space` once for what to compute with: the
# arrays' namespace (the array API standard's functions), or for nodes and NumPy arrays
# the same few functions spelt as their methods. So the backward pass built as nodes is
# the vjp itself, not a copy.


class _Methods:
    """mean and sum over axes, spelt as the methods graph nodes and NumPy arrays both have."""

    @staticmethod
    def mean(t, axis: tuple[int, ...], keepdims: bool = False):
        return t.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def sum(t, axis: tuple[int, ...]):
        return t.sum(axis=axis)


class _NodeMethods(_Methods):
    """The array functions these rules use, for graph nodes: ops whose attributes are keywords."""

    @staticmethod
    def reshape(t, shape: Shape):
        return t.reshape(shape=shape)

    @staticmethod
    def var(t, axis: tuple[int, ...], keepdims: bool = False, correction: float = 0.0):
        return t.var(axis=axis, keepdims=keepdims, correction=correction)

    @staticmethod
    def rsqrt(t):
        return t.rsqrt()


class _NumpyMethods(_Methods):
    """The array functions these rules use, for NumPy arrays: ndarray's methods, which skip the
    dispatch of ``np.mean`` and ``np.reshape`` (a microsecond or two a call, a fifth of a small op)."""

    @staticmethod
    def reshape(t, shape: Shape):
        return t.reshape(shape)

    @staticmethod
    def var(t, axis: tuple[int, ...], keepdims: bool = False, correction: float = 0.0):
        return t.var(axis=axis, keepdims=keepdims, ddof=correction)

    @staticmethod
    def rsqrt(t):
        return 1.0 / np.sqrt(t)


_NODES, _NUMPY = _NodeMethods(), _NumpyMethods()


def _space(*values):
    """What a rule computes with: node or NumPy methods, or another array namespace's functions."""
    if any(isinstance(v, dp.Node) for v in values):
        return _NODES
    xp = namespace(*values)
    return _NUMPY if xp is np else xp


def _reshape(xp, t, shape: Shape):
    """``t`` reshaped; None stays None."""
    return None if t is None else xp.reshape(t, shape)


def _rsqrt(xp, t):
    """``1 / sqrt(t)``: the op rsqrt on a node."""
    return xp.rsqrt(t) if isinstance(xp, (_NodeMethods, _NumpyMethods)) else 1.0 / xp.sqrt(t)


def _standardize(xp, x, axes: tuple[int, ...], eps: float):
    """``xhat = (x - mean) * rstd`` over ``axes``, and ``rstd = 1 / sqrt(var + eps)`` (the axes kept as 1).

    The variance is the biased one, divided by the count (torch's ``correction=0``).
    On nodes this is the circuit a course draws: mean, sub, var, add eps, rsqrt, mul.
    """
    centred = x - xp.mean(x, axis=axes, keepdims=True)
    rstd = _rsqrt(xp, xp.var(x, axis=axes, keepdims=True, correction=0) + eps)
    return centred * rstd, rstd


def _standardize_backward(xp, h, xhat, rstd, axes: tuple[int, ...]):
    """The gradient of ``x`` from the gradient ``h`` of ``xhat``: ``rstd * (h - mean(h) - xhat * mean(h * xhat))``.

    The mean's and the variance's gradients are the two subtracted terms. The matrix of
    this map is ``rstd * (I - 11^T / n - xhat xhat^T / n)``, symmetric, so it is also
    the jvp: given a tangent of ``x`` it returns the tangent of ``xhat``.
    """
    return rstd * (h - xp.mean(h, axis=axes, keepdims=True) - xhat * xp.mean(h * xhat, axis=axes, keepdims=True))


def _sum_over(xp, t, axes: tuple[int, ...]):
    """``t`` summed over ``axes``; ``t`` itself when there are none."""
    return xp.sum(t, axis=axes) if axes else t


def _affine(xhat, weight, bias):
    """``xhat * weight + bias``, leaving out what is None."""
    out = xhat if weight is None else xhat * weight
    return out if bias is None else out + bias


def _given(grads: tuple, count: int) -> tuple:
    """The first ``count`` gradients: one per input given (optional trailing inputs may be left out)."""
    return grads[:count]


def _pad(tangents: tuple, count: int) -> tuple:
    """The tangents of the inputs given, followed by None for the optional ones left out."""
    return tuple(tangents) + (None,) * (count - len(tangents))


def _channel_shape(channels: int, ndim: int) -> Shape:
    """The shape (C, 1, ..., 1) that lines a per-channel vector up with axis 1 of an (N, C, ...) array."""
    return (channels,) + (1,) * (ndim - 2)


def _batch_axes(ndim: int) -> tuple[int, ...]:
    """Every axis but the channel axis 1: what batch_norm averages over, and per-channel gradients sum over."""
    return (0,) + tuple(range(2, ndim))


# -- checks shared by the shape rules ----------------------------------------------------------


def _as_count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an int, got {value!r}")
    return int(value)


def _check_eps(eps) -> None:
    if isinstance(eps, bool) or not isinstance(eps, _NUMBER) or not eps >= 0:
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


def _layer_norm(x, weight=None, bias=None, *, normalized_shape, eps=1e-5):
    """The forward on arrays, and on nodes the circuit (``decompose``)."""
    xp = _space(x, weight, bias)
    axes, _ = _layer_axes(x.ndim, normalized_shape)
    xhat, _ = _standardize(xp, x, axes, eps)
    return _affine(xhat, weight, bias)


def _layer_norm_vjp(g, x, weight=None, bias=None, *, out, needs, normalized_shape, eps=1e-5):
    """The vjp on arrays, and on nodes the vjp_graph."""
    xp = _space(g, x, weight)
    axes, leading = _layer_axes(x.ndim, normalized_shape)
    xhat, rstd = _standardize(xp, x, axes, eps)
    grads = (_standardize_backward(xp, g if weight is None else g * weight, xhat, rstd, axes) if needs[0] else None,
             _sum_over(xp, g * xhat, leading) if weight is not None and needs[1] else None,
             _sum_over(xp, g, leading) if bias is not None and needs[2] else None)
    return _given(grads, 1 + (weight is not None) + (bias is not None))


def _layer_norm_jvp(tangents, x, weight=None, bias=None, *, out, normalized_shape, eps=1e-5):
    tx, tw, tb = _pad(tangents, 3)
    xp = namespace(x, weight)
    axes, _ = _layer_axes(x.ndim, normalized_shape)
    xhat, rstd = _standardize(xp, x, axes, eps)
    from_x = None if tx is None else _affine(_standardize_backward(xp, tx, xhat, rstd, axes), weight, None)
    from_w = None if tw is None else xhat * tw
    from_b = None if tb is None else xp.broadcast_to(tb, out.shape)
    return _given((from_x, from_w, from_b), len(tangents))


# -- batch_norm --------------------------------------------------------------------------------


def _batch_norm_shape(x, running_mean, running_var, weight=None, bias=None, *, training=False, momentum=0.1,
                      eps=1e-5):
    channels = _check_channels_first(x, "batch_norm")
    if not isinstance(training, (bool, np.bool_)):
        raise ValueError(f"training must be True or False, got {training!r}")
    if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, _NUMBER)):
        raise ValueError(f"momentum must be a number or None, got {momentum!r}")
    _check_eps(eps)
    _check_per_channel(channels, x, running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    if training and math.prod(x) // max(channels, 1) == 1:
        raise ValueError(f"x has shape {x}: with training=True each channel needs more than one value for its batch "
                         f"variance (torch refuses this too)")
    return x


def _running_rstd(xp, running_var, eps: float):
    """``1 / sqrt(running_var + eps)``, one number per channel."""
    return _rsqrt(xp, running_var + eps)


def _batch_norm(x, running_mean, running_var, weight=None, bias=None, *, training=False, momentum=0.1, eps=1e-5):
    """The forward on arrays, and on nodes the circuit (``decompose``)."""
    xp = _space(x, running_mean, running_var, weight, bias)
    channel = _channel_shape(x.shape[1], x.ndim)
    if training:
        xhat, _ = _standardize(xp, x, _batch_axes(x.ndim), eps)
    else:
        xhat = (x - _reshape(xp, running_mean, channel)) * _reshape(xp, _running_rstd(xp, running_var, eps), channel)
    return _affine(xhat, _reshape(xp, weight, channel), _reshape(xp, bias, channel))


def _batch_norm_vjp(g, x, running_mean, running_var, weight=None, bias=None, *, out, needs, training=False,
                    momentum=0.1, eps=1e-5):
    """The vjp on arrays, and on nodes the vjp_graph."""
    xp = _space(g, x, running_mean, running_var, weight)
    channel, axes = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    h = g if weight is None else g * _reshape(xp, weight, channel)
    g_mean = g_var = None  # training: the batch's statistics were used, and the output does not depend on these
    if training:
        xhat, rstd = _standardize(xp, x, axes, eps)
        gx = _standardize_backward(xp, h, xhat, rstd, axes) if needs[0] else None
    else:
        per_channel = _running_rstd(xp, running_var, eps)
        rstd = _reshape(xp, per_channel, channel)
        xhat = (x - _reshape(xp, running_mean, channel)) * rstd
        gx = h * rstd if needs[0] or needs[1] else None
        g_mean = -_sum_over(xp, gx, axes) if needs[1] else None
        # d xhat / d var = -(x - mean) / 2 (var + eps)^(3/2) = -xhat * rstd^2 / 2
        g_var = _sum_over(xp, h * xhat, axes) * (per_channel * per_channel * -0.5) if needs[2] else None
        gx = gx if needs[0] else None
    grads = (gx, g_mean, g_var,
             _sum_over(xp, g * xhat, axes) if weight is not None and needs[3] else None,
             _sum_over(xp, g, axes) if bias is not None and needs[4] else None)
    return _given(grads, 3 + (weight is not None) + (bias is not None))


def _batch_norm_jvp(tangents, x, running_mean, running_var, weight=None, bias=None, *, out, training=False,
                    momentum=0.1, eps=1e-5):
    tx, t_mean, t_var, tw, tb = _pad(tangents, 5)
    xp = namespace(x, running_mean, running_var, weight)
    channel, axes = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    w = _reshape(xp, weight, channel)
    from_mean = from_var = None
    if training:
        xhat, rstd = _standardize(xp, x, axes, eps)
        from_x = None if tx is None else _affine(_standardize_backward(xp, tx, xhat, rstd, axes), w, None)
    else:
        rstd = _reshape(xp, _running_rstd(xp, running_var, eps), channel)
        xhat = (x - xp.reshape(running_mean, channel)) * rstd
        scale = rstd if w is None else rstd * w
        from_x = None if tx is None else tx * scale
        from_mean = None if t_mean is None else xp.broadcast_to(-xp.reshape(t_mean, channel) * scale, out.shape)
        from_var = None if t_var is None else -0.5 * xp.reshape(t_var, channel) * rstd * xhat * scale
    from_w = None if tw is None else xhat * xp.reshape(tw, channel)
    from_b = None if tb is None else xp.broadcast_to(xp.reshape(tb, channel), out.shape)
    return _given((from_x, from_mean, from_var, from_w, from_b), len(tangents))


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


def _group_norm(x, weight=None, bias=None, *, num_groups, eps=1e-5):
    """The forward on arrays, and on nodes the circuit (``decompose``)."""
    xp = _space(x, weight, bias)
    grouped, axes = _grouped(x.shape, num_groups)
    xhat, _ = _standardize(xp, _reshape(xp, x, grouped), axes, eps)
    channel = _channel_shape(x.shape[1], x.ndim)
    return _affine(_reshape(xp, xhat, x.shape), _reshape(xp, weight, channel), _reshape(xp, bias, channel))


def _group_norm_vjp(g, x, weight=None, bias=None, *, out, needs, num_groups, eps=1e-5):
    """The vjp on arrays, and on nodes the vjp_graph."""
    xp = _space(g, x, weight)
    grouped, axes = _grouped(x.shape, num_groups)
    channel, per_channel = _channel_shape(x.shape[1], x.ndim), _batch_axes(x.ndim)
    xhat, rstd = _standardize(xp, _reshape(xp, x, grouped), axes, eps)
    h = g if weight is None else g * _reshape(xp, weight, channel)
    grads = (_reshape(xp, _standardize_backward(xp, _reshape(xp, h, grouped), xhat, rstd, axes), x.shape)
             if needs[0] else None,
             _sum_over(xp, g * _reshape(xp, xhat, x.shape), per_channel) if weight is not None and needs[1] else None,
             _sum_over(xp, g, per_channel) if bias is not None and needs[2] else None)
    return _given(grads, 1 + (weight is not None) + (bias is not None))


def _group_norm_jvp(tangents, x, weight=None, bias=None, *, out, num_groups, eps=1e-5):
    tx, tw, tb = _pad(tangents, 3)
    xp = namespace(x, weight)
    grouped, axes = _grouped(x.shape, num_groups)
    channel = _channel_shape(x.shape[1], x.ndim)
    xhat, rstd = _standardize(xp, xp.reshape(x, grouped), axes, eps)
    from_x = None if tx is None else _affine(
        xp.reshape(_standardize_backward(xp, xp.reshape(tx, grouped), xhat, rstd, axes), x.shape),
        _reshape(xp, weight, channel), None)
    xhat = xp.reshape(xhat, x.shape)
    from_w = None if tw is None else xhat * xp.reshape(tw, channel)
    from_b = None if tb is None else xp.broadcast_to(xp.reshape(tb, channel), out.shape)
    return _given((from_x, from_w, from_b), len(tangents))


# -- how generated code writes them (dp.codegen): the forward's steps; the vjp calls the op's rule ----------


def _standardize_source(call, x, axes, eps, out):
    axis = f"axis={axes[0] if len(axes) == 1 else axes}, keepdims=True"
    return [f"{out} = {x} - {x}.mean({axis})",
            f"{out} = {out} / np.sqrt(({out} * {out}).mean({axis}) + {call.literal(eps)})"]


def _affine_source(call, out, weight, bias, shape=None):
    reshaped = [None if name is None else (name if shape is None else f"{name}.reshape({shape})")
                for name in (weight, bias)]
    if reshaped[0] is not None:
        yield f"{out} = {out} * {reshaped[0]}"
    if reshaped[1] is not None:
        yield f"{out} = {out} + {reshaped[1]}"


def _optional(names, count):
    return tuple(names) + (None,) * (count - len(names))


def _layer_norm_source(call):
    x, weight, bias = _optional(call.inputs, 3)
    axes, _ = _layer_axes(len(call.shapes[0]), call.attrs["normalized_shape"])
    return (_standardize_source(call, x, axes, call.attrs.get("eps", 1e-5), call.out)
            + list(_affine_source(call, call.out, weight, bias)))


def _batch_norm_source(call):
    x, running_mean, running_var, weight, bias = _optional(call.inputs, 5)
    shape = _channel_shape(call.shapes[0][1], len(call.shapes[0]))
    eps, out = call.attrs.get("eps", 1e-5), call.out
    if call.attrs.get("training", False):
        lines = _standardize_source(call, x, _batch_axes(len(call.shapes[0])), eps, out)
    else:
        lines = [f"{out} = ({x} - {running_mean}.reshape({shape})) / np.sqrt({running_var}.reshape({shape}) + "
                 f"{call.literal(eps)})"]
    return lines + list(_affine_source(call, out, weight, bias, shape))


def _group_norm_source(call):
    x, weight, bias = _optional(call.inputs, 3)
    shape = call.shapes[0]
    grouped, axes = _grouped(shape, call.attrs["num_groups"])
    out = call.out
    return ([f"{out} = {x}.reshape({grouped})"]
            + _standardize_source(call, out, axes, call.attrs.get("eps", 1e-5), out)
            + [f"{out} = {out}.reshape({shape})"]
            + list(_affine_source(call, out, weight, bias, _channel_shape(shape[1], len(shape)))))


# -- examples ----------------------------------------------------------------------------------


def _layer_norm_example(rng):
    return ((4, 3), (3,), (3,)), {"normalized_shape": (3,)}


def _batch_norm_example(rng):
    # eval mode, the running statistics given (a variance must be positive)
    return ((4, 3, 2), (3,), rng.uniform(0.5, 2.0, 3), (3,), (3,)), {"training": False}


def _group_norm_example(rng):
    return ((2, 4, 3), (4,), (4,)), {"num_groups": 2}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: layer_norm, batch_norm and group_norm."""
    return [
        Op("layer_norm", forward=_layer_norm, vjp=_layer_norm_vjp, jvp=_layer_norm_jvp,
           vjp_graph=_layer_norm_vjp, decompose=_layer_norm, inputs=("x", "weight", "bias"),
           min_inputs=1, shape=_layer_norm_shape, example=_layer_norm_example,
           source=SourceForm(forward=_layer_norm_source),
           doc="(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) axes "
               "(biased variance)"),
        Op("batch_norm", forward=_batch_norm, vjp=_batch_norm_vjp, jvp=_batch_norm_jvp,
           vjp_graph=_batch_norm_vjp, decompose=_batch_norm,
           inputs=("x", "running_mean", "running_var", "weight", "bias"), min_inputs=3,
           shape=_batch_norm_shape, example=_batch_norm_example, source=SourceForm(forward=_batch_norm_source),
           doc="(x - mean) / sqrt(var + eps) * weight + bias per channel (axis 1): the batch's statistics "
               "(training=True, running ones not updated) or the running ones"),
        Op("group_norm", forward=_group_norm, vjp=_group_norm_vjp, jvp=_group_norm_jvp,
           vjp_graph=_group_norm_vjp, decompose=_group_norm, inputs=("x", "weight", "bias"),
           min_inputs=1, shape=_group_norm_shape, example=_group_norm_example,
           source=SourceForm(forward=_group_norm_source),
           doc="(x - mean) / sqrt(var + eps) * weight + bias over each group of num_groups channels "
               "(and all spatial axes) of each example"),
    ]
