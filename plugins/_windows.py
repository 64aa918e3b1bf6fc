"""Sliding windows over the last two axes of an (N, C, H, W) array, shared by convolution and pooling.
Private to dagprop_plugins; not part of the public API.

A window geometry (:class:`Windows`) is a kernel size, a stride, a padding and a dilation,
each a (height, width) pair. :func:`windows` views every window of a padded copy of ``x``
at once (im2col without copying), and :func:`stacked` copies them into one slab per kernel
offset; :func:`scatter_windows` is the adjoint (col2im): it adds per-window values back
onto the positions they were read from, all at once with ``np.bincount``, so overlapping
windows add up and no Python loop runs over pixels.

Each takes the array namespace ``xp`` of its arrays first (``dagprop.backend.namespace``).
NumPy gets the strided views and ``np.bincount`` above; any other namespace (the Python
array API standard: array-api-strict, dask.array, CuPy) gets standard-only equivalents
with one step per kernel offset: strided slices stacked (im2col), and each offset's
plane spread back with zeros in between and added up (col2im). Their values keep their
type, and dask arrays stay lazy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dagprop.backend import device_of

Pair = tuple[int, int]


def pair(value, what: str, least: int) -> Pair:
    """``value`` (an int, or a pair of ints for height and width) as a pair; ValueError naming it otherwise."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what} must be an int or a pair of ints (height, width), got {value!r}")
    if min(values) < least:
        raise ValueError(f"{what} must be at least {least}, got {value!r}")
    return int(values[0]), int(values[1])


class Windows(NamedTuple):
    """Where the windows lie: kernel size, stride, padding and dilation, each (height, width)."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair

    @classmethod
    def of(cls, kernel_size, stride, padding, dilation) -> Windows:
        """The geometry from an op's attributes, each an int or a pair, checked."""
        return cls(pair(kernel_size, "kernel_size", 1), pair(stride, "stride", 1), pair(padding, "padding", 0),
                   pair(dilation, "dilation", 1))

    def attrs(self) -> dict[str, Pair]:
        """The geometry as the attributes of an unfold or fold node cutting the same windows."""
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation}

    def extent(self) -> Pair:
        """How many rows and columns of the padded input one window spans: ``dilation * (kernel - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]

    def out_size(self, size: tuple[int, ...]) -> Pair:
        """How many window positions fit down and across an input of ``size`` (height, width).

        Raises ValueError when one window does not fit in the padded input.
        """
        counts = []
        for axis, n, k, s, p, e in zip(("height", "width"), size, self.kernel, self.stride, self.padding,
                                       self.extent()):
            if n + 2 * p < e:
                dilated = f" dilated to {e}" if e != k else ""
                raise ValueError(f"the kernel's {axis} {k}{dilated} is larger than the padded input's {axis} "
                                 f"{n} + 2 * {p} = {n + 2 * p}")
            counts.append((n + 2 * p - e) // s + 1)
        return counts[0], counts[1]


def padded(xp, x, padding: Pair, fill: float = 0.0):
    """``x`` with ``padding`` rows above and below and columns left and right filled with ``fill``."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    if xp is not np:
        return _padded_standard(xp, x, padding, fill)
    out = np.full(x.shape[:-2] + (x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), fill)
    out[..., ph:ph + x.shape[-2], pw:pw + x.shape[-1]] = x
    return out


def windows(xp, x, geometry: Windows, fill: float = 0.0):
    """Every window of ``x`` (N, C, H, W), shaped (N, C, kh, kw, oh, ow).

    ``view[n, c, i, j]`` is the (oh, ow) plane of the elements at kernel offset (i, j) of
    every window: im2col, without the copy for NumPy (a read-only view). Padding reads ``fill``.
    """
    kh, kw = geometry.kernel
    oh, ow = geometry.out_size(x.shape[2:])
    if xp is not np:
        return xp.reshape(xp.stack(_offset_planes(xp, x, geometry, fill), axis=2),
                          (x.shape[0], x.shape[1], kh, kw, oh, ow))
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    source = padded(np, x, geometry.padding, fill)
    sn, sc, srow, scol = source.strides
    return np.lib.stride_tricks.as_strided(source, shape=(source.shape[0], source.shape[1], kh, kw, oh, ow),
                                           strides=(sn, sc, dh * srow, dw * scol, sh * srow, sw * scol),
                                           writeable=False)


def scatter_windows(xp, values, size: tuple[int, ...], geometry: Windows):
    """The adjoint of :func:`windows` (col2im): zeros of shape (N, C) + ``size`` with ``values`` added back.

    ``values`` is shaped like a window view, (N, C, kh, kw, oh, ow); each element is added
    to the input position its window read it from, so where windows overlap the values
    add up, and values read from the padding are dropped. All at once, as ``np.add.at``
    would do it but faster: ``np.bincount`` of the elements' flat positions in the padded
    input, weighted by the elements; or, when the windows tile the input without
    overlapping, one transposing copy. Other namespaces than NumPy add one plane per kernel offset.
    """
    n, c, kh, kw, oh, ow = values.shape
    (sh, sw), (dh, dw), (ph, pw) = geometry.stride, geometry.dilation, geometry.padding
    height, width = size
    padded_height, padded_width = height + 2 * ph, width + 2 * pw
    if geometry.stride == geometry.kernel and geometry.dilation == (1, 1):
        # the windows tile the input side by side (a pool's default): each position gets at most one
        # value, and putting the values back is a transpose
        tiles = reshape(xp, permute(xp, values, (0, 1, 4, 2, 5, 3)), (n, c, oh * kh, ow * kw))
        if xp is not np:
            tiles = _spread(xp, _spread(xp, tiles, 3, 0, 1, padded_width), 2, 0, 1, padded_height)
            return tiles[:, :, ph:ph + height, pw:pw + width]
        out = np.zeros((n, c, padded_height, padded_width))
        out[:, :, :oh * kh, :ow * kw] = tiles
        return out[:, :, ph:ph + height, pw:pw + width]
    if xp is not np:
        planes = [_spread(xp, _spread(xp, values[:, :, i, j, :, :], 3, j * dw, sw, padded_width), 2, i * dh, sh,
                          padded_height) for i in range(kh) for j in range(kw)]
        total = planes[0]
        for plane in planes[1:]:
            total = total + plane
        return total[:, :, ph:ph + height, pw:pw + width]
    plane = padded_height * padded_width
    # how far one step along each axis of values moves in the flattened padded input
    steps = (c * plane, plane, dh * padded_width, dw, sh * padded_width, sw)
    # visit the elements in the order they lie in memory, so that flattening them copies nothing
    order = _memory_order(values)
    ordered = values.transpose(order)
    if not ordered.flags.c_contiguous:
        ordered = np.ascontiguousarray(ordered)
    # built from the innermost axis outwards, so that every addition runs over long rows
    positions = np.zeros(1, dtype=np.intp)
    for axis in reversed(order):
        positions = np.add.outer(np.arange(values.shape[axis]) * steps[axis], positions).ravel()
    sums = np.bincount(positions, weights=ordered.ravel(), minlength=n * c * plane)
    return sums.reshape(n, c, padded_height, padded_width)[:, :, ph:ph + height, pw:pw + width]


def _memory_order(array: np.ndarray) -> tuple[int, ...]:
    """The axes of ``array`` from the one with the longest stride to the shortest (C order when it is contiguous)."""
    return tuple(int(axis) for axis in np.argsort([-abs(stride) for stride in array.strides], kind="stable"))


def stacked(xp, x, geometry: Windows, fill: float = 0.0):
    """The windows of ``x`` (N, C, H, W) copied into one contiguous slab per kernel offset: (kh * kw, N, C, oh, ow).

    Slab ``k`` holds the element at offset ``divmod(k, kw)`` of every window, so an operation
    across a window's elements (a max, a sum) is a few operations on whole slabs.
    """
    if xp is not np:
        return xp.stack(_offset_planes(xp, x, geometry, fill), axis=0)
    view = windows(np, x, geometry, fill)
    n, c, kh, kw, oh, ow = view.shape
    return view.transpose(2, 3, 0, 1, 4, 5).reshape(kh * kw, n, c, oh, ow)


def inside(size: tuple[int, ...], geometry: Windows) -> np.ndarray:
    """Which window elements lie inside the input rather than in its padding: NumPy booleans (kh, kw, oh, ow).

    It depends on the geometry only, so it is NumPy whatever the arrays' namespace (``xp.asarray`` it).
    """
    return windows(np, np.ones((1, 1) + tuple(size)), geometry)[0, 0] > 0


# -- the standard-only versions, for namespaces other than NumPy ------------------------------


def _offset_planes(xp, x, geometry: Windows, fill: float) -> list:
    """The (N, C, oh, ow) plane of every kernel offset, row-major: strided slices of the padded ``x``."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    oh, ow = geometry.out_size(x.shape[2:])
    source = padded(xp, x, geometry.padding, fill)
    return [source[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]


def _padded_standard(xp, x, padding: Pair, fill: float):
    """:func:`padded` without writing into an array: blocks of ``fill`` joined on with ``xp.concat``."""
    ph, pw = padding
    lead, (height, width) = tuple(x.shape[:-2]), x.shape[-2:]
    if pw:
        side = xp.full(lead + (height, pw), fill, dtype=x.dtype, device=device_of(x))
        x = xp.concat([side, x, side], axis=-1)
    if ph:
        top = xp.full(lead + (ph, width + 2 * pw), fill, dtype=x.dtype, device=device_of(x))
        x = xp.concat([top, x, top], axis=-2)
    return x


def _spread(xp, a, axis: int, start: int, step: int, length: int):
    """``a`` placed along ``axis`` of a zero array ``length`` long: its element k at ``start + k * step``.

    Not every namespace can write into an array (JAX's arrays are immutable), so zeros are
    stacked in between and joined on at the ends.
    """
    count = a.shape[axis]
    if step > 1:
        zeros = xp.zeros_like(a)
        shape = list(a.shape)
        shape[axis] = count * step
        a = xp.reshape(xp.stack([a] + [zeros] * (step - 1), axis=axis + 1), tuple(shape))
        a = a[(slice(None),) * axis + (slice(0, (count - 1) * step + 1), ...)]
    after = length - start - a.shape[axis]
    if not (start or after):
        return a
    blocks = [_zeros_along(xp, a, axis, start), a, _zeros_along(xp, a, axis, after)]
    return xp.concat([block for block in blocks if block.shape[axis]], axis=axis)


def _zeros_along(xp, a, axis: int, size: int):
    """Zeros shaped like ``a`` but ``size`` long along ``axis``, on its device."""
    shape = list(a.shape)
    shape[axis] = size
    return xp.zeros(tuple(shape), dtype=a.dtype, device=device_of(a))


def reshape(xp, x, shape: tuple[int, ...]):
    """``xp.reshape(x, shape)``; for NumPy the method, which skips ``np.reshape``'s dispatch (a microsecond a call)."""
    return x.reshape(shape) if xp is np else xp.reshape(x, shape)


def permute(xp, x, axes: tuple[int, ...]):
    """``xp.permute_dims(x, axes)``; for NumPy the method ``transpose``, as :func:`reshape`."""
    return x.transpose(axes) if xp is np else xp.permute_dims(x, axes)
