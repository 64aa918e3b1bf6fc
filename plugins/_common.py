"""Helpers several built-in families share: shape and axis checks, matrix products, softmax and generated code.
Private to dagprop_plugins; not part of the public API."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from dagprop import broadcast_shape, unbroadcast
from dagprop.backend import constant, is_foreign, is_lazy, namespace, to_numpy

from ._windows import reshape

Shape = tuple[int, ...]


def as_shape(shape) -> Shape:
    """``shape`` (an int, or a sequence of ints) as a tuple of ints."""
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)


def same_shape(x: Shape) -> Shape:
    """The shape rule of an op whose output is shaped like its one input."""
    return x


def check_axis(axis, ndim: int, what: str = "axis") -> int:
    """``axis`` as a non-negative int below ``ndim``; ValueError naming it when it is not one."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{what} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} is out of range for {ndim} dimension{'s' if ndim != 1 else ''}")
    return int(axis) % ndim


def check_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    normalised = tuple(check_axis(a, ndim) for a in axes)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"axis {axis!r} names the same axis twice")
    return tuple(sorted(normalised))


# -- matrix products with np.matmul's rules --------------------------------------------


def matmul_shape(a: Shape, b: Shape) -> Shape:
    """The shape of ``np.matmul(a, b)``: 1-D operands promoted then demoted, batch dims broadcast."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError("matmul does not take 0-d operands; use mul to scale by a number")
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        raise ValueError(f"inner dimensions {inner_a} and {inner_b} differ")
    try:
        batch = broadcast_shape(a[:-2], b[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions {a[:-2]} and {b[:-2]} do not broadcast together") from None
    rows = a[-2:-1]  # empty when a is 1-D
    columns = b[-1:] if len(b) > 1 else ()
    return batch + rows + columns


def as_matrices(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` with a 1-D ``a`` made a row (1, n) and a 1-D ``b`` a column (n, 1), as matmul does."""
    return (a[None, ...] if a.ndim == 1 else a), (b[..., None] if b.ndim == 1 else b)


def matmul_grads(g: np.ndarray, a: np.ndarray, b: np.ndarray,
                 needs: tuple[bool, ...] = (True, True)) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The gradients of ``a`` and ``b`` in ``a @ b`` from the gradient ``g`` of the product.

    Works on the promoted operands, where ``dA = G B^T`` and ``dB = A^T G``, then sums
    over broadcast batch dims and drops the axes the promotion added.
    """
    if a.ndim == 2 and b.ndim == 2:  # the common case, without the promotion bookkeeping
        return (g @ b.T if needs[0] else None), (a.T @ g if needs[1] else None)
    a2, b2 = as_matrices(a, b)
    g2 = g[..., None] if b.ndim == 1 else g
    g2 = g2[..., None, :] if a.ndim == 1 else g2
    xp = namespace(g)
    ga = reshape(xp, unbroadcast(g2 @ swap_last(b2), a2.shape), a.shape) if needs[0] else None
    gb = reshape(xp, unbroadcast(swap_last(a2) @ g2, b2.shape), b.shape) if needs[1] else None
    return ga, gb


def swap_last(x: np.ndarray) -> np.ndarray:
    """The matrix transpose of every matrix in a stack: the last two axes swapped."""
    if isinstance(x, np.ndarray):
        return x.mT
    return namespace(x).matrix_transpose(x)  # dask arrays have no .mT


def matmul_jvp(ta: np.ndarray | None, tb: np.ndarray | None, a: np.ndarray, b: np.ndarray
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """What the tangents of ``a`` and ``b`` contribute to the tangent of ``a @ b``: ``ta @ b`` and ``a @ tb``.

    matmul is linear in each operand, and a tangent is shaped like its operand, so
    each product has the output's shape, batch broadcasting and 1-D promotion included.
    """
    return (None if ta is None else ta @ b), (None if tb is None else a @ tb)


# -- the same products built out of graph nodes (for a vjp_graph) ------------------------


def swap_last_node(x):
    """The node transposing every matrix in the stack ``x``: ``x.T`` for a matrix."""
    if x.ndim == 2:
        return x.T
    return x.transpose(axes=tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def matmul_grad_nodes(g, a, b, needs: tuple[bool, ...] = (True, True)) -> tuple:
    """:func:`matmul_grads` built out of graph nodes: ``g @ b^T`` and ``a^T @ g``, or None where not needed.

    ``g``, ``a`` and ``b`` are nodes of known shape. A 1-D operand is promoted with a
    reshape (a row on the left, a column on the right) only where the product needs it.
    """
    if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a number
        return (g * b if needs[0] else None), (g * a if needs[1] else None)
    if a.ndim == 2 and b.ndim == 2:
        return (g @ b.T if needs[0] else None), (a.T @ g if needs[1] else None)
    return (_left_grad_node(g, a, b) if needs[0] else None), (_right_grad_node(g, a, b) if needs[1] else None)


def _left_grad_node(g, a, b):
    if a.ndim == 1 and g.ndim == 1:  # vector @ matrix: the gradient is the matrix times g
        return b @ g
    g2 = _promoted_grad_node(g, a, b)
    rows_of_b = b.reshape(shape=(1, b.shape[0])) if b.ndim == 1 else swap_last_node(b)
    grad = unbroadcast(g2 @ rows_of_b, (1,) + a.shape if a.ndim == 1 else a.shape)
    return grad.reshape(shape=a.shape) if a.ndim == 1 else grad


def _right_grad_node(g, a, b):
    if b.ndim == 1 and g.ndim == 1:  # matrix @ vector: the transposed matrix times g
        return a.T @ g
    g2 = _promoted_grad_node(g, a, b)
    columns_of_a = a.reshape(shape=(a.shape[0], 1)) if a.ndim == 1 else swap_last_node(a)
    grad = unbroadcast(columns_of_a @ g2, b.shape + (1,) if b.ndim == 1 else b.shape)
    return grad.reshape(shape=b.shape) if b.ndim == 1 else grad


def _promoted_grad_node(g, a, b):
    """``g`` with the axis back that matmul dropped for a 1-D operand (one of the two is 1-D here)."""
    if b.ndim == 1:
        return g.reshape(shape=g.shape + (1,))
    if a.ndim == 1:
        return g.reshape(shape=g.shape[:-1] + (1,) + g.shape[-1:])
    return g


# -- softmax along an axis --------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed after subtracting the max so it never overflows."""
    xp = namespace(x)
    if x.size == 0:  # nothing to normalise; an empty axis has no max to subtract
        return xp.zeros(x.shape, dtype=xp.float64)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x - log(sum(exp(x)))`` along ``axis``, stable for large and very negative ``x``."""
    xp = namespace(x)
    if x.size == 0:  # as in softmax
        return xp.zeros(x.shape, dtype=xp.float64)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax_backward(g: np.ndarray, s: np.ndarray, axis: int = -1) -> np.ndarray:
    """The gradient of softmax's input from the gradient ``g`` of its output ``s``: ``s * (g - <g, s>)``."""
    return s * (g - namespace(g).sum(g * s, axis=axis, keepdims=True))


# -- generated code (dp.codegen) ----------------------------------------------------------


def numpy_call(function: str):
    """A source form's forward for an op that is one NumPy function of one input: ``np.tanh(a1)``."""
    return functools.partial(_numpy_call_source, function)


def _numpy_call_source(function: str, call) -> str:
    return f"np.{function}({call.inputs[0]})"


# math.erf is the C library's, accurate to an ulp; numpy has no erf, and scipy is not a dependency
_erf_ufunc = np.frompyfunc(math.erf, 1, 1)


def erf(x: Any) -> Any:
    """The error function, elementwise, in float64 (one C call per element).

    The array API standard has no erf: a dask array gets it chunk by chunk (staying lazy),
    another library's array is computed on the host and moved back to its device.
    """
    if not is_foreign(x):
        return np.asarray(_erf_ufunc(x), dtype=np.float64)
    if is_lazy(x):
        return x.map_blocks(erf, dtype=np.float64)
    return constant(namespace(x), erf(to_numpy(x)), x)


def floats(mask):
    """A comparison's result ready for arithmetic: the array API standard does none on booleans,
    so another library's mask becomes float64; NumPy's and a node's (a step node) stay as they are."""
    if mask.__class__ is np.ndarray or not is_foreign(mask):
        return mask
    xp = namespace(mask)
    return xp.astype(mask, xp.float64)
