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
from dagprop import Op, broadcast_shape
from dagprop.op import SourceForm
from dagprop.backend import namespace
from dagprop.rules import dense_entries
from ._common import as_matrices, check_axis, matmul_grad_nodes, matmul_grads, matmul_jvp, matmul_shape


def _matmul_vjp(g, a, b, *, out, needs):
    return matmul_grads(g, a, b, needs)


def _matmul_jvp(tangents, a, b, *, out):
    ta, tb = tangents
    return matmul_jvp(ta, tb, a, b)


def _matmul_vjp_graph(g, a, b, *, out, needs):
    return matmul_grad_nodes(g, a, b, needs)


def _matmul_jacobian(a, b, *, out, needs=(True, True)):
    xp = namespace(a, b)
    if a.ndim == 2 and b.ndim == 2:
        # d out[i, j] / d a[k, l] = [i == k] b[l, j];  d out[i, j] / d b[k, l] = a[i, k] [j == l]
        return (xp.eye(a.shape[0], dtype=xp.float64)[:, None, :, None] * b.mT[None, :, None, :] if needs[0] else None,
                a[:, None, :, None] * xp.eye(b.shape[1], dtype=xp.float64)[None, :, None, :] if needs[1] else None)
    # matmul is linear in each operand, so the Jacobian's columns are the products
    # of one operand with each basis element of the other
    a2, b2 = as_matrices(a, b)
    ndim = max(a2.ndim, b2.ndim)
    basis_a = xp.reshape(xp.eye(a.size, dtype=xp.float64), (a.size,) + (1,) * (ndim - a2.ndim) + a2.shape)
    basis_b = xp.reshape(xp.eye(b.size, dtype=xp.float64), (b.size,) + (1,) * (ndim - b2.ndim) + b2.shape)
    columns_a = xp.reshape(basis_a @ b2, (a.size, out.size))
    columns_b = xp.reshape(a2 @ basis_b, (b.size, out.size))
    return xp.reshape(columns_a.T, out.shape + a.shape), xp.reshape(columns_b.T, out.shape + b.shape)


def _matmul_sparse_jacobian(a, b, *, out, needs):
    if a.ndim > 2 or b.ndim > 2:  # a batch: the dense Jacobian's non-zero entries
        return tuple(None if j is None else dense_entries(j, out.size)
                     for j in _matmul_jacobian(a, b, out=out, needs=needs))
    # as matrices a (n, k) and b (k, m), whose flat indices are the operands' own:
    # d out[i, j] / d a[i, l] = b[l, j] and d out[i, j] / d b[l, j] = a[i, l], listed by (i, j, l)
    a2, b2 = as_matrices(a, b)
    (n, k), m = a2.shape, b2.shape[1]
    i, j, l = np.ogrid[:n, :m, :k]
    rows = np.broadcast_to(i * m + j, (n, m, k)).ravel()
    return (_entries(rows, i * k + l, b2.T[np.newaxis], (n, m, k)) if needs[0] else None,
            _entries(rows, l * m + j, a2[:, np.newaxis], (n, m, k)) if needs[1] else None)


def _entries(rows, columns, values, shape):
    return rows, np.broadcast_to(columns, shape).ravel(), np.broadcast_to(values, shape).ravel()


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
    if axes is None and x.__class__ is np.ndarray:
        return x.T
    return namespace(x).permute_dims(x, _transpose_axes(x.ndim, axes))


def _transpose_shape(x, *, axes=None):
    return tuple(x[i] for i in _transpose_axes(len(x), axes))


def _inverse_axes(ndim, axes):
    """The permutation undoing ``axes``: the inverse of a permutation is its argsort."""
    return tuple(int(i) for i in np.argsort(_transpose_axes(ndim, axes)))


def _transpose_vjp(g, x, *, out, axes=None):
    if axes is None and g.__class__ is np.ndarray:
        return (g.T,)
    return (namespace(g).permute_dims(g, _inverse_axes(x.ndim, axes)),)


def _transpose_jvp(tangents, x, *, out, axes=None):
    (t,) = tangents
    return (None if t is None else _transpose_forward(t, axes=axes),)


def _transpose_vjp_graph(g, x, *, out, axes=None):
    if axes is None:
        return (g.T,)
    return (g.transpose(axes=_inverse_axes(x.ndim, axes)),)


# -- how generated code writes them (dp.codegen) ---------------------------------------------


def _matmul_source(call):
    a, b = call.inputs
    return f"{a} @ {b}"


def _matrix_transpose(x, ndim):
    return f"{x}.T" if ndim == 2 else f"np.swapaxes({x}, -1, -2)"


def _matmul_vjp_source(call):
    (a, b), g = call.inputs, call.grad
    rows, columns = len(call.shapes[0]), len(call.shapes[1])
    if rows == columns == 1:  # a dot product
        return f"{g} * {b}", f"{g} * {a}"
    if rows == 1 and columns == 2:  # a row vector times a matrix
        return f"{b} @ {g}", f"np.outer({a}, {g})"
    if rows == 2 and columns == 1:  # a matrix times a column vector
        return f"np.outer({g}, {b})", f"{a}.T @ {g}"
    if rows == 1 or columns == 1:  # a vector times a stack of matrices: left to the op's own rule
        return None
    # dA = G B^T and dB = A^T G, matrix by matrix, summed over the batch dimensions that broadcast
    batch = broadcast_shape(call.shapes[0][:-2], call.shapes[1][:-2])
    return (call.sum_to(f"{g} @ {_matrix_transpose(b, columns)}", 0, batch + call.shapes[0][-2:]),
            call.sum_to(f"{_matrix_transpose(a, rows)} @ {g}", 1, batch + call.shapes[1][-2:]))


def _transpose_source(call):
    x, axes = call.inputs[0], call.attrs.get("axes")
    if axes is None or _transpose_axes(len(call.shapes[0]), axes) == (1, 0):
        return f"{x}.T"
    return f"np.transpose({x}, {_transpose_axes(len(call.shapes[0]), axes)!r})"


def _transpose_vjp_source(call):
    g, axes = call.grad, call.attrs.get("axes")
    if axes is None or _transpose_axes(len(call.shapes[0]), axes) == (1, 0):
        return (f"{g}.T",)
    return (f"np.transpose({g}, {_inverse_axes(len(call.shapes[0]), axes)!r})",)


def _batched_matrices(rng):
    return ((2, 3, 4), (4, 5)), {}


def _three_axes(rng):
    return ((2, 3, 4),), {"axes": (1, 2, 0)}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: matmul and transpose."""
    return [
        Op("matmul", forward=np.matmul, vjp=_matmul_vjp, jacobian=_matmul_jacobian, jvp=_matmul_jvp,
           vjp_graph=_matmul_vjp_graph, sparse_jacobian=_matmul_sparse_jacobian, inputs=("a", "b"), shape=matmul_shape, example=_batched_matrices,
           source=SourceForm(forward=_matmul_source, vjp=_matmul_vjp_source),
           doc="a @ b with np.matmul's rules: 1-D operands promoted, batch dimensions broadcast"),
        Op("transpose", forward=_transpose_forward, vjp=_transpose_vjp, jvp=_transpose_jvp,
           vjp_graph=_transpose_vjp_graph, shape=_transpose_shape,
           example=_three_axes, source=SourceForm(forward=_transpose_source, vjp=_transpose_vjp_source),
           doc="permute the axes (default: reverse them), like np.transpose"),
    ]
