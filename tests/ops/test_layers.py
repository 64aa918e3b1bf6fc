"""The layers family: linear and attention (composite ops with hand-written backward passes)."""

import warnings

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

from helpers import SECOND_ORDER_CHECKS

rng = np.random.default_rng(19)


def run(name, *arrays):
    g = dp.Graph()
    leaves = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    out = g.op(name, *leaves)
    g.forward()
    return g, leaves, out


@pytest.mark.parametrize("h, W, b", [
    ((4, 3), (3, 2), (2,)),
    ((3,), (3, 2), (2,)),
    ((2, 4, 3), (3, 2), (2,)),
    ((4, 3), (3, 2), (1, 2)),
    ((4, 3), (3, 2), ()),
    ((4, 3), (3, 2), (4, 2)),
    ((2, 1, 4, 3), (3, 2), (1, 2)),
], ids=str)
def test_linear(h, W, b):
    assert SECOND_ORDER_CHECKS <= set(check_op("linear", h, W, b).errors)


def test_linear_closed_form_with_row_vectors():
    H, W, b, G = (rng.standard_normal(s) for s in ((5, 3), (3, 2), (2,), (5, 2)))
    g, (gh, gW, gb), out = run("linear", H, W, b)
    np.testing.assert_allclose(out.value, H @ W + b)
    g.backward(out, seed=G)
    np.testing.assert_allclose(gb.grad, G.sum(axis=0))  # the column sums of the incoming gradient
    np.testing.assert_allclose(gW.grad, H.T @ G)
    np.testing.assert_allclose(gh.grad, G @ W.T)


def test_linear_decomposes_into_matmul_then_add():
    g = dp.Graph()
    h, W, b = g.param("h", np.zeros((4, 3))), g.param("W", np.zeros((3, 2))), g.param("b", np.zeros(2))
    out = g.registry["linear"].decompose(h, W, b)
    assert out.op == "add" and out.inputs[0].op == "matmul" and out.inputs[1] is b


@pytest.mark.parametrize("h, W, b, reason", [
    ((4, 3), (2, 2), (2,), "inner dimensions 3 and 2 differ"),
    ((4, 3), (3, 2), (3,), r"bias of shape \(3,\) does not fit h @ W of shape \(4, 2\)"),
    ((4, 3), (3, 2), (5, 4, 2), "does not fit"),
])
def test_linear_rejects_shapes_that_do_not_fit(h, W, b, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.ops.linear(g.param("h", np.zeros(h)), g.param("W", np.zeros(W)), g.param("b", np.zeros(b)))


ATTENTION_SHAPES = [
    ((3, 4), (5, 4), (5, 2)),
    ((2, 3), (4, 3), (4, 2)),           # d = 3: the scale 1/sqrt(3) is not exact in binary
    ((2, 3, 3), (2, 4, 3), (2, 4, 2)),  # a batch
    ((2, 3, 3), (4, 3), (4, 2)),        # keys and values shared by the batch
    ((1, 3), (1, 3), (1, 1)),           # a single key: every weight is 1
    ((3, 4), (2, 5, 4), (5, 2)),        # the batch comes from the keys
    ((3, 4), (5, 4), (2, 5, 2)),        # the batch comes from the values
]


@pytest.mark.parametrize("Q, K, V", ATTENTION_SHAPES, ids=str)
def test_attention(Q, K, V):
    assert SECOND_ORDER_CHECKS <= set(check_op("attention", Q, K, V).errors)


def attention_by_loops(Q, K, V):
    """Each query's output: the values averaged with weights softmax(q . k_j / sqrt(d))."""
    d = Q.shape[-1]
    out = np.zeros((Q.shape[0], V.shape[1]))
    for i, q in enumerate(Q):
        scores = np.array([q @ k / np.sqrt(d) for k in K])
        weights = np.exp(scores) / np.exp(scores).sum()
        out[i] = sum(w * v for w, v in zip(weights, V))
    return out


def test_attention_value_and_value_gradient_closed_form():
    Q, K, V = rng.standard_normal((3, 2)), rng.standard_normal((4, 2)), rng.standard_normal((4, 5))
    G = rng.standard_normal((3, 5))
    g, (gQ, gK, gV), out = run("attention", Q, K, V)
    np.testing.assert_allclose(out.value, attention_by_loops(Q, K, V))
    g.backward(out, seed=G)
    scores = Q @ K.T / np.sqrt(2)
    weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gV.grad, weights.T @ G)


def test_attention_batch_matches_each_item_alone():
    Q, K, V = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2))
    _, _, out = run("attention", Q, K, V)
    for k in range(2):
        np.testing.assert_allclose(out.value[k], attention_by_loops(Q[k], K[k], V[k]))


def test_attention_vjp_is_plain_numpy_and_honours_needs():
    op = dp.Graph().registry["attention"]
    Q, K, V = rng.standard_normal((3, 2)), rng.standard_normal((4, 2)), rng.standard_normal((4, 5))
    out, g = op.forward(Q, K, V), rng.standard_normal((3, 5))
    gQ, gK, gV = op.vjp(g, Q, K, V, out=out, needs=(False, False, True))
    assert gQ is None and gK is None and gV.shape == V.shape
    full = op.vjp(g, Q, K, V, out=out, needs=(True, True, True))
    assert [a.shape for a in full] == [Q.shape, K.shape, V.shape]


def test_attention_decomposes_into_its_circuit():
    g = dp.Graph()
    Q, K, V = g.param("Q", np.zeros((2, 3, 4))), g.param("K", np.zeros((2, 5, 4))), g.param("V", np.zeros((2, 5, 6)))
    out = g.registry["attention"].decompose(Q, K, V)
    ops = [n.op for n in g if n.op is not None]
    assert ops == ["transpose", "matmul", "mul", "softmax", "matmul"]
    transpose = next(n for n in g if n.op == "transpose")
    assert transpose.attrs == {"axes": (0, 2, 1)}
    scale = next(n for n in g if n.kind == "const")
    np.testing.assert_allclose(scale.value, 0.5)
    assert out.shape == (2, 3, 6)


@pytest.mark.parametrize("Q, K, V, reason", [
    ((3, 4), (5, 3), (5, 2), "queries have 4 features and keys 3"),
    ((3, 4), (5, 4), (6, 2), "K has 5 tokens and V has 6"),
    ((4,), (5, 4), (5, 2), "attention takes"),
    ((2, 3, 4), (3, 5, 4), (3, 5, 2), "batch dimensions"),
])
def test_attention_rejects_shapes_that_do_not_fit(Q, K, V, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.ops.attention(*[g.param(n, np.zeros(s)) for n, s in zip("QKV", (Q, K, V))])


# -- attention opened (its inner softmax too) equals the op at extreme scores (issue 10) -------------

def torch_attention(Q, K, V, seed):
    """softmax(Q K^T / sqrt(d)) V and the gradients of <seed, it> for Q, K and V, from torch in float64."""
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (Q, K, V)]
    tq, tk, tv = tensors
    out = torch.softmax(tq @ tk.transpose(-1, -2) / np.sqrt(Q.shape[-1]), -1) @ tv
    out.backward(torch.tensor(seed, dtype=torch.float64))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def queries_for_scores(scores):
    """Q and K (the identity) whose attention scores Q K^T / sqrt(d) are exactly ``scores`` (d a square)."""
    keys = scores.shape[-1]
    d = 4  # a square, so that sqrt(d) = 2 and scores * 2 / 2 is exact
    Q = np.zeros(scores.shape[:-1] + (d,))
    Q[..., :keys] = 2.0 * scores
    return Q, np.eye(keys, d)


SCORES = {
    "huge": np.array([[1000.0, 999.0, -1000.0]]),
    "hugely negative": np.array([[-800.0, -801.0, -802.0]]),
    "mixed rows": np.array([[1000.0, 999.0, -1000.0], [-800.0, -801.0, -802.0], [0.5, -0.25, 2.0]]),
    "normal times 50": np.random.default_rng(4).normal(0.0, 50.0, (4, 3)),
}


@pytest.mark.parametrize("scores", SCORES.values(), ids=SCORES.keys())
def test_opened_attention_equals_the_op_and_torch_at_extreme_scores(scores):
    Q, K = queries_for_scores(scores)
    V = rng.standard_normal((3, 2))
    seed = rng.standard_normal((scores.shape[0], 2))
    g = dp.Graph()
    leaves = [g.param(n, a) for n, a in zip("QKV", (Q, K, V))]
    g.op("attention", *leaves, name="out")
    g.forward()
    g.backward("out", seed=seed)
    h = g.expanded()  # attention, and the softmax inside it, opened
    assert {e.op for e in h.expansions.values()} == {"attention", "softmax"}
    assert "max" in {n.op for n in h}
    expected_value, expected_grads = torch_attention(Q, K, V, seed)
    scale = np.abs(seed).max() * np.abs(V).max() * np.abs(Q).max()
    for graph in (g, h):
        assert np.isfinite(graph["out"].value).all()
        np.testing.assert_allclose(graph["out"].value, expected_value, rtol=1e-12, atol=1e-14)
        for name, expected in zip("QKV", expected_grads):
            assert np.isfinite(graph[name].grad).all()
            np.testing.assert_allclose(graph[name].grad, expected, rtol=1e-11, atol=1e-14 * scale, err_msg=name)
    for name in "QKV":
        np.testing.assert_allclose(h[name].grad, g[name].grad, rtol=1e-11, atol=1e-14 * scale, err_msg=name)


@pytest.mark.parametrize("scores", [SCORES["huge"], SCORES["mixed rows"]], ids=["huge", "mixed rows"])
def test_check_op_passes_for_attention_at_extreme_scores(scores):
    Q, K = queries_for_scores(scores)
    check_op("attention", Q, K, rng.standard_normal((3, 2)))


# -- empty arrays flow through attention like torch ------------------------------------------------

@pytest.mark.parametrize("Q, K, V", [
    ((3, 4), (0, 4), (0, 2)),        # no keys: the softmax runs over an empty axis
    ((0, 4), (5, 4), (5, 2)),        # no queries
    ((3, 4), (5, 4), (5, 0)),        # values without features
    ((0, 3, 4), (0, 5, 4), (0, 5, 2)),  # an empty batch
    ((2, 3, 4), (2, 0, 4), (2, 0, 2)),
], ids=str)
def test_attention_of_empty_arrays_matches_torch(Q, K, V):
    arrays = [rng.standard_normal(shape) for shape in (Q, K, V)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, leaves, out = run("attention", *arrays)
        seed = rng.standard_normal(out.shape)
        g.backward(out, seed=seed)
    expected_value, expected_grads = torch_attention(*arrays, seed)
    np.testing.assert_allclose(out.value, expected_value, rtol=1e-12, atol=1e-15)
    for leaf, expected in zip(leaves, expected_grads):
        np.testing.assert_allclose(leaf.grad, expected, rtol=1e-12, atol=1e-15)


# -- forward mode and second derivatives -------------------------------------------------------------

def squared_linear(h, W, b):
    """A graph with L = sum(linear(h, W, b)**2), h a const, W and b the params."""
    g = dp.Graph()
    weights, bias = g.param("W", W), g.param("b", b)
    loss = (g.ops.linear(g.const(h), weights, bias) ** 2).sum()
    g.forward()
    return g, weights, bias, loss


def test_hessian_of_a_squared_linear_layer_closed_form():
    h, W, b, direction = (rng.standard_normal(s) for s in ((5, 3), (3, 2), (2,), (3, 2)))
    g, weights, bias, loss = squared_linear(h, W, b)
    # L = sum_rows |h_r W + b|^2: d2L / dW_ij dW_kl = 2 (h^T h)_ik [j == l], d2L / db^2 = 2 * rows * I
    np.testing.assert_allclose(g.hessian(loss, weights), 2 * np.einsum("ik,jl->ijkl", h.T @ h, np.eye(2)),
                               atol=1e-12)
    np.testing.assert_allclose(g.hvp(loss, weights, direction), 2 * h.T @ h @ direction, atol=1e-12)
    np.testing.assert_allclose(g.hessian(loss, bias), 10 * np.eye(2), atol=1e-12)


def test_hessian_of_a_squared_linear_layer_with_respect_to_a_vector_input():
    h, W, b = rng.standard_normal(3), rng.standard_normal((3, 2)), rng.standard_normal(2)
    g = dp.Graph()
    x = g.param("h", h)
    loss = (g.ops.linear(x, g.const(W), g.const(b)) ** 2).sum()
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, x), 2 * W @ W.T, atol=1e-12)  # |h W + b|^2 is quadratic in h


def backward_nodes_of(name, *arrays):
    """The nodes backward(create_graph=True) builds for one op node, and the gradient nodes of its inputs."""
    g = dp.Graph()
    leaves = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    out = g.op(name, *leaves)
    g.forward()
    g.backward(out, seed=np.ones(out.shape), create_graph=True)
    return [n for n in g if n.scope == ("backward",)], [leaf.grad_node for leaf in leaves]


@pytest.mark.parametrize("name, shapes", [
    ("linear", ((4, 3), (3, 2), (2,))),
    ("attention", ((3, 4), (5, 4), (5, 2))),
], ids=["linear", "attention"])
def test_backward_nodes_are_the_gradient_formulas_without_a_rebuilt_output(name, shapes):
    # a hand-written vjp_graph, not the circuit differentiated: nothing in the backward pass is left unused
    nodes, grads = backward_nodes_of(name, *(rng.standard_normal(s) for s in shapes))
    used = {i.index for n in nodes for i in n.inputs} | {n.index for n in grads}
    assert [n.name for n in nodes if n.index not in used] == []


def test_linear_backward_nodes_read_like_the_textbook():
    nodes, (gh, gW, gb) = backward_nodes_of("linear", *(rng.standard_normal(s) for s in ((4, 3), (3, 2), (2,))))
    assert [n.op for n in nodes if n.op is not None] == ["transpose", "matmul", "transpose", "matmul", "sum"]
    assert gh.op == gW.op == "matmul" and gb.op == "sum"


@pytest.mark.parametrize("name, shapes", [
    ("linear", ((2, 3), (3, 2), (2,))),
    ("attention", ((3, 2), (4, 2), (4, 2))),
    ("attention", ((2, 3, 2), (4, 2), (4, 2))),
], ids=str)
def test_forward_mode_jacobian_equals_reverse_mode(name, shapes):
    g = dp.Graph()
    leaves = [g.param(f"x{i}", rng.standard_normal(s)) for i, s in enumerate(shapes)]
    out = g.op(name, *leaves)
    g.forward()
    for leaf in leaves:
        np.testing.assert_allclose(g.jacobian(out, leaf, mode="forward"), g.jacobian(out, leaf, mode="reverse"),
                                   rtol=1e-12, atol=1e-14)


def test_attention_tangent_of_the_values_is_the_weights_times_it():
    Q, K, V, tV = (rng.standard_normal(s) for s in ((3, 2), (4, 2), (4, 5), (4, 5)))
    g = dp.Graph()
    leaves = [g.param(n, a) for n, a in zip("QKV", (Q, K, V))]
    out = g.op("attention", *leaves)
    g.jvp({leaves[2]: tV})
    scores = Q @ K.T / np.sqrt(2)
    weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.tangent, weights @ tV)


@pytest.mark.parametrize("scores", [SCORES["huge"], SCORES["mixed rows"]], ids=["huge", "mixed rows"])
def test_attention_forward_mode_and_backward_nodes_stay_finite_at_extreme_scores(scores):
    Q, K = queries_for_scores(scores)
    V = rng.standard_normal((3, 2))
    g = dp.Graph()
    leaves = [g.param(n, a) for n, a in zip("QKV", (Q, K, V))]
    out = g.op("attention", *leaves)
    g.jvp({leaf: rng.standard_normal(leaf.shape) for leaf in leaves})
    assert np.isfinite(out.tangent).all()
    g.backward(out, seed=np.ones(out.shape), create_graph=True)
    g.forward()
    for leaf in leaves:
        assert np.isfinite(leaf.grad_node.value).all()
        np.testing.assert_allclose(leaf.grad_node.value, leaf.grad, rtol=1e-12, atol=1e-12)
