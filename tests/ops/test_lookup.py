"""The lookup family: embedding, checked against torch.nn.functional.embedding."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dagprop as dp
from dagprop.testing import check_op

# torch.func.jvp compiles a helper with torch.jit.script on first use, which torch itself deprecates
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

rng = np.random.default_rng(21)

INDICES = {
    "one token": np.array(2.0),
    "a sentence": np.array([0.0, 4.0, 1.0, 4.0]),
    "a batch with repeats": np.array([[1.0, 3.0, 0.0], [3.0, 3.0, 2.0]]),
    "three axes": np.array([[[0.0, 5.0], [5.0, 5.0]], [[2.0, 1.0], [0.0, 0.0]]]),
}


def embed(indices, weight, seed, tangent, **attrs):
    """The lookup, the weight's gradient of <seed, out>, the indices' gradient and out's tangent, from dagprop."""
    g = dp.Graph()
    i, w = g.param("indices", indices), g.param("weight", weight)
    out = i.embedding(w, **attrs)
    g.forward()
    g.backward(out, seed=seed)
    g.jvp({w: tangent})
    return out.value, w.grad, i.grad, out.tangent


def torch_embed(indices, weight, seed, tangent, padding_idx=None):
    t_indices = torch.tensor(indices).long()
    w = torch.tensor(weight, requires_grad=True)
    out = F.embedding(t_indices, w, padding_idx=padding_idx)
    out.backward(torch.tensor(seed))
    _, moved = torch.func.jvp(lambda v: F.embedding(t_indices, v, padding_idx=padding_idx), (torch.tensor(weight),),
                              (torch.tensor(tangent),))
    return out.detach().numpy(), w.grad.numpy(), moved.numpy()


@pytest.mark.parametrize("indices", INDICES.values(), ids=INDICES.keys())
@pytest.mark.parametrize("padding_idx", [None, 4, -1, 3])
def test_embedding_matches_torch(indices, padding_idx):
    weight = rng.standard_normal((6, 3))
    seed, tangent = rng.standard_normal(indices.shape + (3,)), rng.standard_normal((6, 3))
    value, grad, index_grad, moved = embed(indices, weight, seed, tangent, padding_idx=padding_idx)
    t_value, t_grad, t_moved = torch_embed(indices, weight, seed, tangent, padding_idx)
    np.testing.assert_array_equal(value, t_value)  # a lookup copies rows exactly
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(moved, t_moved)
    assert index_grad is None


def test_repeated_tokens_add_up_their_rows_and_the_padding_row_gets_none():
    weight = rng.standard_normal((4, 2))
    value, grad, _, _ = embed(np.array([1.0, 3.0, 1.0, 1.0, 0.0]), weight, np.ones((5, 2)), np.zeros((4, 2)),
                              padding_idx=0)
    np.testing.assert_array_equal(value, weight[[1, 3, 1, 1, 0]])  # the padding row is looked up like any other
    np.testing.assert_array_equal(grad, [[0.0, 0.0], [3.0, 3.0], [0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize("indices", INDICES.values(), ids=INDICES.keys())
@pytest.mark.parametrize("padding_idx", [None, 5])
def test_embedding_check_op(indices, padding_idx):
    # with padding_idx only where it does not occur: the frozen row's zero gradient is a choice (torch's),
    # which finite differences cannot confirm
    if padding_idx is not None:
        indices = np.where(indices == padding_idx, 1.0, indices)
    errors = check_op("embedding", indices, (6, 3), padding_idx=padding_idx).errors
    assert {"jvp vs finite differences", "vjp_graph vs vjp", "second derivatives vs finite differences"} <= set(errors)


def test_the_backward_pass_as_nodes_follows_the_indices_fed_later():
    # the weight's gradient node is a one-hot matrix built from the indices node, not from a copy of their value
    g = dp.Graph()
    tokens = g.input("tokens", [0.0, 2.0, 2.0])
    weight = g.param("weight", rng.standard_normal((3, 2)))
    loss = tokens.embedding(weight, padding_idx=1).sum()
    g.forward()
    g.backward(loss, create_graph=True)
    np.testing.assert_array_equal(weight.grad_node.value, [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    g.forward(feeds={"tokens": [1.0, 1.0, 0.0]})
    np.testing.assert_array_equal(weight.grad_node.value, [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    assert "step" in {n.op for n in g}


def test_an_index_near_an_integer_picks_its_row():
    weight = rng.standard_normal((3, 2))
    value, *_ = embed(np.array([2.0 - 1e-9, 1e-7, 0.8]), weight, np.zeros((3, 2)), np.zeros((3, 2)))
    np.testing.assert_array_equal(value, weight[[2, 0, 1]])


@pytest.mark.parametrize("indices, message", [
    ([0.0, 3.0], r"index 3\.0 at position \(1,\) is out of range for a weight of 3 rows: indices must be "
                 r"integers in \[0, 3\)"),
    ([[0.0, -1.0]], r"index -1\.0 at position \(0, 1\) is out of range"),
    ([np.nan], "indices must be finite numbers"),
    ([np.inf], "indices must be finite numbers"),
])
def test_indices_out_of_range_are_refused_when_the_graph_runs(indices, message):
    g = dp.Graph()
    g.input("i", indices).embedding(g.param("w", np.ones((3, 2))))
    with pytest.raises(dp.OpError, match=message):
        g.forward()


@pytest.mark.parametrize("weight, attrs, message", [
    ((3,), {}, r"weight has shape \(3,\); embedding takes a \(V, D\) table"),
    ((2, 3, 4), {}, r"weight has shape \(2, 3, 4\)"),
    ((3, 2), {"padding_idx": 3}, "padding_idx 3 is out of range for a weight of 3 rows"),
    ((3, 2), {"padding_idx": -4}, "padding_idx -4 is out of range"),
    ((3, 2), {"padding_idx": 1.0}, "padding_idx must be an int or None"),
])
def test_bad_weights_and_padding_are_refused_when_the_node_is_built(weight, attrs, message):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=message):
        g.input("i", [0.0]).embedding(g.param("w", np.ones(weight)), **attrs)


def test_output_shape_is_the_indices_shape_then_the_row_width():
    g = dp.Graph()
    out = g.input("i", np.zeros((2, 5))).embedding(g.param("w", np.ones((7, 3))))
    assert out.shape == (2, 5, 3)
