"""Sliding windows over the last two axes of an (N, C, H, W) array, shared by convolution and pooling.
Private to dagprop_plugins; not part of the public API.

A window geometry (:class:`Windows`) is a kernel size, a stride, a padding and a dilation,
each a (height, width) pair. :func:`windows` views every window of a padded copy of ``x``
at once (im2col without copying), and :func:`stacked` copies them into one slab per kernel
offset; :func:`scatter_windows` is the adjoint (col2im): it adds per-window values back
onto the positions they were read from, all at once with ``np.bincount``, so overlapping
windows add up and no Python loop runs over pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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


def padded(x: np.ndarray, padding: Pair, fill: float = 0.0) -> np.ndarray:
    """``x`` with ``padding`` rows above and below and columns left and right filled with ``fill``."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    out = np.full(x.shape[:-2] + (x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), fill)
    out[..., ph:ph + x.shape[-2], pw:pw + x.shape[-1]] = x
    return out


def windows(x: np.ndarray, geometry: Windows, fill: float = 0.0) -> np.ndarray:
    """Every window of ``x`` (N, C, H, W), as a read-only view shaped (N, C, kh, kw, oh, ow).

    ``view[n, c, i, j]`` is the (oh, ow) plane of the elements at kernel offset (i, j) of
    every window: im2col without the copy. Padding reads ``fill``.
    """
    kh, kw = geometry.kernel
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    oh, ow = geometry.out_size(x.shape[2:])
    xp = padded(x, geometry.padding, fill)
    sn, sc, srow, scol = xp.strides
    return np.lib.stride_tricks.as_strided(xp, shape=(xp.shape[0], xp.shape[1], kh, kw, oh, ow),
                                           strides=(sn, sc, dh * srow, dw * scol, sh * srow, sw * scol),
                                           writeable=False)


def scatter_windows(values: np.ndarray, size: tuple[int, ...], geometry: Windows) -> np.ndarray:
    """The adjoint of :func:`windows` (col2im): zeros of shape (N, C) + ``size`` with ``values`` added back.

    ``values`` is shaped like a window view, (N, C, kh, kw, oh, ow); each element is added
    to the input position its window read it from, so where windows overlap the values
    add up, and values read from the padding are dropped. All at once, as ``np.add.at``
    would do it but faster: ``np.bincount`` of the elements' flat positions in the padded
    input, weighted by the elements; or, when the windows tile the input without
    overlapping, one transposing copy.
    """
    n, c, kh, kw, oh, ow = values.shape
    (sh, sw), (dh, dw), (ph, pw) = geometry.stride, geometry.dilation, geometry.padding
    height, width = size
    padded_height, padded_width = height + 2 * ph, width + 2 * pw
    if geometry.stride == geometry.kernel and geometry.dilation == (1, 1):
        # the windows tile the input side by side (a pool's default): each position gets at most one
        # value, and putting the values back is a transpose
        tiles = values.transpose(0, 1, 4, 2, 5, 3).reshape(n, c, oh * kh, ow * kw)
        out = np.zeros((n, c, padded_height, padded_width))
        out[:, :, :oh * kh, :ow * kw] = tiles
        return out[:, :, ph:ph + height, pw:pw + width]
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


def stacked(x: np.ndarray, geometry: Windows, fill: float = 0.0) -> np.ndarray:
    """The windows of ``x`` (N, C, H, W) copied into one contiguous slab per kernel offset: (kh * kw, N, C, oh, ow).

    Slab ``k`` holds the element at offset ``divmod(k, kw)`` of every window, so an operation
    across a window's elements (a max, a sum) is a few operations on whole slabs.
    """
    view = windows(x, geometry, fill)
    n, c, kh, kw, oh, ow = view.shape
    return view.transpose(2, 3, 0, 1, 4, 5).reshape(kh * kw, n, c, oh, ow)


def inside(size: tuple[int, ...], geometry: Windows) -> np.ndarray:
    """Which window elements lie inside the input rather than in its padding: booleans (kh, kw, oh, ow)."""
    return windows(np.ones((1, 1) + tuple(size)), geometry)[0, 0] > 0
