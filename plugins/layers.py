"""Layers: linear and attention, composite ops with hand-written backward passes.

Both can be opened up (``decompose``) into the ops they are made of, so a diagram
can show a layer as one box or as its circuit; the gradients are the same. Their
forward mode (``jvp``) and their backward pass as nodes (``vjp_graph``, for
``backward(create_graph=True)``) are hand-written too: the nodes are the textbook's
gradient formulas, not the circuit rebuilt and differentiated.
Rows are examples (the row-vector convention): ``linear(h, W, b) = h @ W + b``
with ``h`` of shape (batch, n_in), ``W`` (n_in, n_out), ``b`` (n_out,).

>>> import numpy as np
>>> import dagprop as dp
>>> g = dp.Graph()
>>> h = g.input("h", [[1.0, 2.0], [3.0, 4.0]])
>>> W = g.param("W", np.eye(2))
>>> b = g.param("b", [0.5, -0.5])
>>> y = g.ops.linear(h, W, b)
>>> L = y.sum()
>>> g.forward(); g.backward(L)
>>> y.value, b.grad
(array([[1.5, 1.5],
       [3.5, 3.5]]), array([2., 2.]))
"""

from __future__ import annotations

import math

import numpy as np

import dagprop as dp
from dagprop import Op, broadcast_shape, unbroadcast
from dagprop.backend import namespace
from dagprop.op import SourceForm
from ._common import (matmul_grad_nodes, matmul_grads, matmul_jvp, matmul_shape, softmax, softmax_backward,
                      swap_last, swap_last_node)


def _linear_forward(h, W, b):
    return h @ W + b


def _linear_shape(h, W, b):
    product = matmul_shape(h, W)
    try:
        fits = broadcast_shape(product, b) == product
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"bias of shape {b} does not fit h @ W of shape {product}")
    return product


def _linear_vjp(g, h, W, b, *, out, needs):
    gh, gW = matmul_grads(g, h, W, needs[:2])
    # the bias was added to every row, so it collects the gradient of every row
    gb = unbroadcast(g, b.shape) if needs[2] else None
    return gh, gW, gb


def _linear_jvp(tangents, h, W, b, *, out):
    th, tW, tb = tangents
    from_h, from_W = matmul_jvp(th, tW, h, W)
    return from_h, from_W, (None if tb is None else namespace(tb).broadcast_to(tb, out.shape))


def _linear_vjp_graph(g, h, W, b, *, out, needs):
    gh, gW = matmul_grad_nodes(g, h, W, needs[:2])
    return gh, gW, (unbroadcast(g, b.shape) if needs[2] else None)


def _linear_decompose(h, W, b):
    return h @ W + b


def _linear_source(call):
    h, W, b = call.inputs
    return f"{h} @ {W} + {b}"


def _linear_vjp_source(call):
    (h, W, b), g = call.inputs, call.grad
    if len(call.shapes[0]) != 2 or len(call.shapes[1]) != 2:  # vectors and batches: left to the op's own rule
        return None
    return f"{g} @ {W}.T", f"{h}.T @ {g}", call.sum_to(g, 2)


def _attention_shape(Q, K, V):
    for name, shape in (("Q", Q), ("K", K), ("V", V)):
        if len(shape) < 2:
            raise ValueError(f"{name} has shape {shape}; attention takes (..., tokens, features) arrays")
    if Q[-1] != K[-1]:
        raise ValueError(f"queries have {Q[-1]} features and keys {K[-1]}; they must match")
    if K[-2] != V[-2]:
        raise ValueError(f"K has {K[-2]} tokens and V has {V[-2]}; each key needs one value")
    scores = matmul_shape(Q, K[:-2] + (K[-1], K[-2]))
    return matmul_shape(scores, V)


def _attention_weights(Q, K):
    """softmax(Q K^T / sqrt(d)): row i says how much query i attends to each key."""
    return softmax(Q @ swap_last(K) / math.sqrt(Q.shape[-1]), -1)


def _attention_forward(Q, K, V):
    return _attention_weights(Q, K) @ V


def _attention_vjp(g, Q, K, V, *, out, needs):
    weights = _attention_weights(Q, K)
    gV = unbroadcast(swap_last(weights) @ g, V.shape) if needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, gV
    # gradient of the unscaled scores Q K^T: through the weights' softmax, then the 1/sqrt(d)
    gscores = softmax_backward(g @ swap_last(V), weights, -1) / math.sqrt(Q.shape[-1])
    gQ = unbroadcast(gscores @ K, Q.shape) if needs[0] else None
    gK = unbroadcast(swap_last(gscores) @ Q, K.shape) if needs[1] else None
    return gQ, gK, gV


def _attention_jvp(tangents, Q, K, V, *, out):
    tQ, tK, tV = tangents
    xp = namespace(Q, K, V)
    weights = _attention_weights(Q, K)
    scale = 1.0 / math.sqrt(Q.shape[-1])
    from_Q = None if tQ is None else _through_weights(xp, tQ @ swap_last(K) * scale, weights) @ V
    from_K = None if tK is None else _through_weights(xp, Q @ swap_last(tK) * scale, weights) @ V
    from_V = None if tV is None else weights @ tV
    return from_Q, from_K, from_V


def _through_weights(xp, scores_tangent, weights):
    """The tangent of the weights softmax(scores) given the scores' tangent t: ``s * (t - <s, t>)`` per row."""
    return weights * (scores_tangent - xp.sum(weights * scores_tangent, axis=-1, keepdims=True))


def _attention_vjp_graph(g, Q, K, V, *, out, needs):
    # the weights are not among the op's nodes, so they are built again from Q and K
    scale = Q.graph.const(1.0 / np.sqrt(Q.shape[-1]))
    weights = ((Q @ swap_last_node(K)) * scale).softmax(axis=-1)
    gV = unbroadcast(swap_last_node(weights) @ g, V.shape) if needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, gV
    g_weights = g @ swap_last_node(V)
    g_scores = weights * (g_weights - (g_weights * weights).sum(axis=-1, keepdims=True)) * scale
    gQ = unbroadcast(g_scores @ K, Q.shape) if needs[0] else None
    gK = unbroadcast(swap_last_node(g_scores) @ Q, K.shape) if needs[1] else None
    return gQ, gK, gV


def _attention_decompose(Q, K, V):
    if Q.shape is None or K.shape is None:
        raise ValueError("the attention circuit needs the shapes of Q and K; give the inputs values first")
    graph = Q.graph
    last_two_swapped = tuple(range(K.ndim - 2)) + (K.ndim - 1, K.ndim - 2)
    scores = (Q @ graph.op("transpose", K, axes=last_two_swapped)) * graph.const(1.0 / np.sqrt(Q.shape[-1]))
    return scores.softmax(axis=-1) @ V


def _batch_of_rows(rng):
    return ((4, 3), (3, 2), (2,)), {}


def _queries_keys_values(rng):
    return ((3, 4), (5, 4), (5, 2)), {}


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops: linear and attention."""
    return [
        Op("linear", forward=_linear_forward, vjp=_linear_vjp, jvp=_linear_jvp, vjp_graph=_linear_vjp_graph,
           decompose=_linear_decompose, inputs=("h", "W", "b"),
           shape=_linear_shape, example=_batch_of_rows,
           source=SourceForm(forward=_linear_source, vjp=_linear_vjp_source),
           doc="h @ W + b: a dense layer on row vectors"),
        Op("attention", forward=_attention_forward, vjp=_attention_vjp, jvp=_attention_jvp,
           vjp_graph=_attention_vjp_graph, decompose=_attention_decompose,
           inputs=("Q", "K", "V"), shape=_attention_shape, example=_queries_keys_values,
           doc="softmax(Q @ K^T / sqrt(d)) @ V with d = Q.shape[-1], K^T swapping K's last two axes"),
    ]
