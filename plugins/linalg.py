"""Linear algebra: matmul (with all of ``np.matmul``'s rules) and transpose.

matmul promotes a 1-D left operand to a row and a 1-D right operand to a column,
then drops the added axis from the result; dimensions before the last two are a
batch and broadcast. Its vjp sums the gradient over broadcast batch dimensions
with :func:`dagprop.unbroadcast`, so a weight shared by a whole batch gets the
sum of the batch's gradients.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> W = g.param("W", [[1.0, 2.0], [3.0, 4.0]])
>>> x = g.input("x", [1.0, 1.0])
>>> y = W @ x
>>> L = y.sum()
>>> g.forward(); g.backward(L)
>>> y.value, W.grad
(array([3., 7.]), array([[1., 1.],
       [1., 1.]]))
"""

from __future__ import annotations

import numpy as np

import dagprop as dp
from dagprop import Op
from ._common import as_matrices, check_axis, matmul_grads, matmul_shape


def _matmul_vjp(g, a, b, *, out, needs):
    return matmul_grads(g, a, b, needs)


def _matmul_jacobian(a, b, *, out, needs=(True, True)):
    if a.ndim == 2 and b.ndim == 2:
        # d out[i, j] / d a[k, l] = [i == k] b[l, j];  d out[i, j] / d b[k, l] = a[i, k] [j == l]
        return (np.einsum("ik,lj->ijkl", np.eye(a.shape[0]), b) if needs[0] else None,
                np.einsum("ik,jl->ijkl", a, np.eye(b.shape[1])) if needs[1] else None)
    # matmul is linear in each operand, so the Jacobian's columns are the products
    # of one operand with each basis element of the other
    a2, b2 = as_matrices(a, b)
    ndim = max(a2.ndim, b2.ndim)
    basis_a = np.eye(a.size).reshape((a.size,) + (1,) * (ndim - a2.ndim) + a2.shape)
    basis_b = np.eye(b.size).reshape((b.size,) + (1,) * (ndim - b2.ndim) + b2.shape)
    columns_a = np.matmul(basis_a, b2).reshape(a.size, out.size)
    columns_b = np.matmul(a2, basis_b).reshape(b.size, out.size)
    return columns_a.T.reshape(out.shape + a.shape), columns_b.T.reshape(out.shape + b.shape)


def _transpose_axes(ndim, axes):
    """``axes`` checked and made non-negative; None means all axes reversed."""
    if axes is None:
        return tuple(reversed(range(ndim)))
    axes = tuple(axes)
    if len(axes) != ndim:
        raise ValueError(f"axes {axes} has {len(axes)} entries for {ndim} dimensions")
    normalised = tuple(check_axis(a, ndim, "axes entry") for a in axes)
    if sorted(normalised) != list(range(ndim)):
        raise ValueError(f"axes {axes} is not a permutation of the {ndim} axes")
    return normalised


def _transpose_forward(x, *, axes=None):
    return x.T if axes is None else np.transpose(x, _transpose_axes(x.ndim, axes))


def _transpose_shape(x, *, axes=None):
    return tuple(x[i] for i in _transpose_axes(len(x), axes))


def _transpose_vjp(g, x, *, out, axes=None):
    # undo the permutation: the inverse of a permutation is its argsort
    if axes is None:
        return (g.T,)
    return (np.transpose(g, np.argsort(_transpose_axes(x.ndim, axes))),)


def _batched_matrices(rng):
    return ((2, 3, 4), (4, 5)), {}


def _three_axes(rng):
    return ((2, 3, 4),), {"axes": (1, 2, 0)}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: matmul and transpose."""
    return [
        Op("matmul", forward=np.matmul, vjp=_matmul_vjp, jacobian=_matmul_jacobian, inputs=("a", "b"),
           shape=matmul_shape, example=_batched_matrices,
           doc="a @ b with np.matmul's rules: 1-D operands promoted, batch dimensions broadcast"),
        Op("transpose", forward=_transpose_forward, vjp=_transpose_vjp, shape=_transpose_shape,
           example=_three_axes, doc="permute the axes (default: reverse them), like np.transpose"),
    ]
