"""Lookup: embedding, the rows of a weight table picked by integer indices.

``embedding(indices, weight)`` gives ``weight[indices]``: for indices of any shape and a
weight of shape (V, D), an array of shape ``indices.shape + (D,)``, one row per index.
The indices arrive as floats (every leaf is float64) standing for integers: each is taken
as the nearest integer, and NaN, inf or an index outside [0, V) is refused when the graph
runs. They get no gradient (the output does not change when they move a little). The weight's gradient is
the incoming gradient's rows added back into the rows they came from: a token that
occurs twice collects both (``np.add.at``), and the row ``padding_idx``, if given, gets
none, as in torch.

Other array namespaces than NumPy (array-api-strict, CuPy) gather rows with ``xp.take``
and add them back with ``dagprop.backend.add_at``. For dask arrays, which stay lazy, the
indices are checked chunk by chunk when the rows are computed, and the weight's gradient
is ``onehot^T @ g`` (below): a non-finite gradient there turns its whole column of the
weight's gradient into NaN, where NumPy keeps it to its own rows.

The backward pass as nodes (``backward(create_graph=True)``) is the textbook view of a
lookup: picking rows is multiplying by a one-hot matrix, ``weight[i] = onehot(i) @ weight``,
so the weight's gradient is ``onehot^T @ g``. The one-hot matrix is built from the indices
node with comparisons (``step`` nodes, which pass no gradient), so it follows the indices
when they are fed new values.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> W = g.param("W", [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
>>> tokens = g.input("tokens", [2.0, 0.0, 2.0])
>>> E = tokens.embedding(W)
>>> L = E.sum()
>>> g.forward(); g.backward(L)
>>> E.value
array([[4., 5.],
       [0., 1.],
       [4., 5.]])
>>> W.grad
array([[1., 1.],
       [0., 0.],
       [2., 2.]])
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op
from dagprop.backend import add_at, all_finite, is_lazy, namespace
from dagprop.op import SourceForm


def _padding_row(padding_idx, vocabulary: int) -> int | None:
    """``padding_idx`` as a row number in [0, V) (torch counts a negative one from the end), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
        raise ValueError(f"padding_idx must be an int or None, got {padding_idx!r}")
    if not -vocabulary <= padding_idx < vocabulary:
        raise ValueError(f"padding_idx {padding_idx} is out of range for a weight of {vocabulary} rows")
    return int(padding_idx) % vocabulary


def _rows(xp, indices, vocabulary: int):
    """The integer row numbers the float ``indices`` stand for, each checked to be a row of the weight.

    Each index is rounded to the nearest integer: an index is data fed as a float, and
    finite-difference checks (``check_op``, ``gradcheck``) nudge every input, indices
    included, by a little; the nudged index still picks its row. Lazy (dask) indices are
    checked chunk by chunk when they are computed, not before.
    """
    if xp is np:
        return _numpy_rows(indices, vocabulary)
    if is_lazy(indices):
        return indices.map_blocks(_chunk_rows, vocabulary, dtype=np.intp)
    if not all_finite(indices):
        raise ValueError(_NOT_FINITE)
    rows = xp.round(indices)
    outside = (rows < 0) | (rows >= vocabulary)
    if bool(xp.any(outside)):
        where = tuple(int(axis[0]) for axis in xp.nonzero(outside)) if indices.ndim else ()
        raise ValueError(_out_of_range(float(indices[where]), where, vocabulary))
    return xp.astype(rows, xp.int64)


_NOT_FINITE = "indices must be finite numbers standing for row numbers; got NaN or inf"


def _out_of_range(index: float, where: tuple[int, ...], vocabulary: int) -> str:
    return (f"index {index!r} at position {where} is out of range for a weight of {vocabulary} rows: indices must "
            f"be integers in [0, {vocabulary})")


def _numpy_rows(indices: np.ndarray, vocabulary: int, start: tuple[int, ...] = ()) -> np.ndarray:
    """:func:`_rows` for NumPy indices; ``start`` is where they begin in a larger array (a dask chunk's place)."""
    if not np.isfinite(indices).all():
        raise ValueError(_NOT_FINITE)
    rows = np.rint(indices)
    outside = (rows < 0) | (rows >= vocabulary)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        place = tuple(i + s for i, s in zip(where, start)) if start else where
        raise ValueError(_out_of_range(float(indices[where]), place, vocabulary))
    return rows.astype(np.intp)


def _chunk_rows(indices: np.ndarray, vocabulary: int, block_info=None) -> np.ndarray:
    """:func:`_numpy_rows` for one chunk of dask indices, naming a bad index by its place in the whole array."""
    start = tuple(begin for begin, _ in block_info[0]["array-location"]) if block_info else ()
    return _numpy_rows(indices, vocabulary, start)


def _gather(xp, table, rows):
    """``table[rows]``: the rows of a (V, D) table, shaped ``rows.shape + (D,)``."""
    if xp is np:
        return table[rows]
    # the standard's take wants 1-D indices
    picked = xp.take(table, xp.reshape(rows, (-1,)), axis=0)
    return xp.reshape(picked, tuple(rows.shape) + (table.shape[1],))


def _embedding_shape(indices, weight, *, padding_idx=None):
    if len(weight) != 2:
        raise ValueError(f"weight has shape {weight}; embedding takes a (V, D) table: one row of D numbers for each "
                         f"of V tokens")
    _padding_row(padding_idx, weight[0])
    return tuple(indices) + (weight[1],)


def _embedding_forward(indices, weight, *, padding_idx=None):
    xp = namespace(indices, weight)
    return _gather(xp, weight, _rows(xp, indices, weight.shape[0]))


def _embedding_vjp(g, indices, weight, *, out, needs, padding_idx=None):
    if not needs[1]:
        return None, None
    xp = namespace(g, indices, weight)
    vocabulary, width = weight.shape
    rows = _rows(xp, indices, vocabulary)
    padding = _padding_row(padding_idx, vocabulary)
    if xp is np:
        grad = np.zeros(weight.shape)
        # np.add.at, not +=: a row picked twice collects both gradients
        np.add.at(grad, rows.ravel(), g.reshape(-1, width))
        if padding is not None:
            grad[padding] = 0.0
        return None, grad
    rows = xp.reshape(rows, (-1,))
    if is_lazy(g) or is_lazy(rows):
        return None, _lazy_rows_sum(xp, g, rows, vocabulary, padding)
    grad = add_at(xp, xp.zeros(weight.shape, dtype=g.dtype, device=g.device), rows, xp.reshape(g, (-1, width)))
    if padding is not None:
        padding_row = xp.asarray((np.arange(vocabulary) == padding)[:, None], device=g.device)
        grad = xp.where(padding_row, 0.0, grad)
    return None, grad


def _lazy_rows_sum(xp, g, rows, vocabulary: int, padding: int | None):
    """The weight's gradient for lazy arrays, which cannot be written into: ``onehot^T @ g``, as vjp_graph."""
    targets = np.arange(vocabulary)
    if padding is not None:
        targets[padding] = -1  # no index matches it: the padding row gets no gradient
    onehot = xp.astype(xp.reshape(rows, (-1, 1)) == xp.asarray(targets), g.dtype)
    return xp.matrix_transpose(onehot) @ xp.reshape(g, (-1, g.shape[-1]))


def _embedding_jvp(tangents, indices, weight, *, out, padding_idx=None):
    _, t = tangents
    if t is None:
        return None, None
    xp = namespace(indices, weight)
    return None, _gather(xp, t, _rows(xp, indices, weight.shape[0]))


def _embedding_vjp_graph(g, indices, weight, *, out, needs, padding_idx=None):
    if not needs[1]:
        return None, None
    vocabulary, width = weight.shape
    count = math.prod(indices.shape)
    # onehot[n, v] = 1 where index n rounds to row v: |index - v| < 1/2, as two comparisons
    offsets = indices.reshape(shape=(count, 1)) - np.arange(vocabulary, dtype=np.float64)
    onehot = (offsets > -0.5) * (offsets < 0.5)
    padding = _padding_row(padding_idx, vocabulary)
    if padding is not None:
        onehot = onehot * (np.arange(vocabulary) != padding).astype(np.float64)
    return None, onehot.T @ g.reshape(shape=(count, width))


def _embedding_source(call):
    indices, weight = call.inputs
    return f"{weight}[np.rint({indices}).astype(int)]"


def _embedding_vjp_source(call):
    indices, weight = call.inputs
    target, (vocabulary, width) = call.targets[1], call.shapes[1]
    lines = [f"{target} = np.zeros(({vocabulary}, {width}))",
             f"np.add.at({target}, np.rint({indices}).astype(int).ravel(), {call.grad}.reshape(-1, {width}))"]
    padding = call.attrs.get("padding_idx")
    if padding is not None:
        lines.append(f"{target}[{call.literal(padding)}] = 0.0")
    return None, lines


def _tokens_and_table(rng):
    # a token repeated, so the example shows rows adding up
    return (np.array([[1.0, 3.0, 0.0], [3.0, 3.0, 2.0]]), (5, 4)), {}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's op: embedding."""
    return [
        Op("embedding", forward=_embedding_forward, vjp=_embedding_vjp, jvp=_embedding_jvp,
           vjp_graph=_embedding_vjp_graph, inputs=("indices", "weight"), shape=_embedding_shape,
           example=_tokens_and_table, source=SourceForm(forward=_embedding_source, vjp=_embedding_vjp_source),
           doc="weight[indices]: row i of the (V, D) weight for each integer-valued index i; no gradient to the "
               "indices, none to row padding_idx"),
    ]
