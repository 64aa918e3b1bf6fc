"""The linalg family: matmul (np.matmul semantics) and transpose."""

import numpy as np
import pytest

import dagprop as dp
from dagprop.testing import check_op

from helpers import SECOND_ORDER_CHECKS, run_op as run

rng = np.random.default_rng(3)


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),         # vector @ matrix: a row, then the row axis dropped
    ((3, 4), (4,)),         # matrix @ vector: a column, then the column axis dropped
    ((4,), (4,)),           # dot product: 0-d result
    ((2, 3, 4), (4, 5)),    # a batch of matrices times one shared matrix
    ((3, 4), (2, 4, 5)),    # one matrix times a batch
    ((2, 1, 3, 4), (5, 4, 2)),  # batch dims (2, 1) and (5,) broadcast to (2, 5)
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
]


@pytest.mark.parametrize("a, b", MATMUL_SHAPES + [
    ((1, 4), (4, 1)),
    ((2, 3, 4), (2, 4, 5)),     # equal batches
    ((3, 1, 2, 4), (4,)),       # a vector under a stack of stacks
    ((4,), (3, 1, 4, 2)),
], ids=str)
def test_matmul(a, b):
    report = check_op("matmul", a, b)
    assert SECOND_ORDER_CHECKS <= set(report.errors)  # forward mode and the backward as nodes were checked


@pytest.mark.parametrize("a, b", MATMUL_SHAPES, ids=str)
def test_matmul_value_and_shape_follow_numpy(a, b):
    x, y = rng.standard_normal(a), rng.standard_normal(b)
    g = dp.Graph()
    node = g.param("a", x) @ g.param("b", y)
    expected = np.matmul(x, y)
    assert node.shape == expected.shape  # inferred before any forward pass
    g.forward()
    np.testing.assert_allclose(node.value, expected)


def test_matmul_gradients_of_a_plain_product():
    A, B, G = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    g, (a, b), out = run("matmul", A, B)
    g.backward(out, seed=G)
    np.testing.assert_allclose(a.grad, G @ B.T)
    np.testing.assert_allclose(b.grad, A.T @ G)


def test_a_weight_shared_by_a_batch_gets_the_sum_of_its_gradients():
    A, W, G = rng.standard_normal((5, 3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((5, 3, 2))
    g, (a, w), out = run("matmul", A, W)
    g.backward(out, seed=G)
    np.testing.assert_allclose(w.grad, sum(A[k].T @ G[k] for k in range(5)))
    np.testing.assert_allclose(a.grad, G @ W.T)


def test_dot_product_gradients():
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    g, (a, b), out = run("matmul", u, v)
    g.backward(out, seed=np.array(2.0))
    np.testing.assert_allclose(a.grad, 2 * v)
    np.testing.assert_allclose(b.grad, 2 * u)


def test_matmul_explicit_jacobian_closed_form():
    A, B = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    ja, jb = dp.Graph().registry["matmul"].jacobian(A, B, out=A @ B)
    # d(AB)_ij / dA_kl = [i == k] B_lj and d(AB)_ij / dB_kl = A_ik [j == l]
    np.testing.assert_allclose(ja, np.einsum("ik,lj->ijkl", np.eye(2), B))
    np.testing.assert_allclose(jb, np.einsum("ik,jl->ijkl", A, np.eye(4)))


@pytest.mark.parametrize("a, b, reason", [
    ((3, 4), (3, 4), "inner dimensions 4 and 3 differ"),
    ((3,), (4,), "inner dimensions 3 and 4 differ"),
    ((2, 3, 4), (3, 4, 5), r"batch dimensions \(2,\) and \(3,\) do not broadcast"),
    ((), (3,), "0-d"),
])
def test_matmul_rejects_shapes_that_do_not_fit(a, b, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.param("a", np.zeros(a)) @ g.param("b", np.zeros(b))


@pytest.mark.parametrize("shape, axes", [
    ((3, 4), None),
    ((2, 3, 4), None),
    ((2, 3, 4), (1, 2, 0)),
    ((2, 3, 4), (-1, 0, 1)),
    ((2, 3, 4, 2), (0, 1, 3, 2)),
    ((5,), None),
    ((), None),
], ids=str)
def test_transpose(shape, axes):
    report = check_op("transpose", shape, axes=axes)
    assert SECOND_ORDER_CHECKS <= set(report.errors)
    x = rng.standard_normal(shape)
    g, (leaf,), out = run("transpose", x, axes=axes)
    np.testing.assert_array_equal(out.value, np.transpose(x, axes))
    seed = rng.standard_normal(out.shape)
    g.backward(out, seed=seed)
    np.testing.assert_array_equal(np.transpose(leaf.grad, axes), seed)


def test_node_T_reverses_the_axes():
    g = dp.Graph()
    x = g.param("x", np.zeros((2, 3, 4)))
    assert x.T.op == "transpose" and x.T.shape == (4, 3, 2)


@pytest.mark.parametrize("axes, reason", [
    ((0, 0, 1), "not a permutation"),
    ((0, 1), "2 entries for 3 dimensions"),
    ((0, 1, 3), "out of range"),
])
def test_transpose_rejects_bad_axes(axes, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.op("transpose", g.param("x", np.zeros((2, 3, 4))), axes=axes)


def test_matmul_jacobian_costs_only_its_own_size_and_skips_unneeded_operands():
    import tracemalloc

    import dagprop as dp

    g = dp.Graph()
    h = g.input("h", np.ones((1, 64)))
    w = g.param("w", np.ones((64, 64)))
    loss = (h @ w).sum()
    g.forward()
    tracemalloc.start()
    g.backward(loss, mode="jacobian")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    jacobian_bytes = 64 * 64 * 64 * 8  # d out / d w: out.size x w.size
    assert peak < 3 * jacobian_bytes  # a D^2 x D^2 identity would be 128 MB
    np.testing.assert_allclose(w.grad, np.ones((64, 64)))


# -- forward mode and second derivatives, against closed forms ---------------------------------------


def squared_norm_of_product(A, x):
    """A graph with L = sum((A @ x)**2), A a const and x the param."""
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = ((g.const(A) @ leaf) ** 2).sum()
    g.forward()
    return g, leaf, loss


def test_hessian_of_a_squared_product_is_2_AT_A():
    A, x, v = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    g, leaf, loss = squared_norm_of_product(A, x)
    # L = x^T A^T A x, whatever x is
    np.testing.assert_allclose(g.hessian(loss, leaf), 2 * A.T @ A, atol=1e-12)
    np.testing.assert_allclose(g.hvp(loss, leaf, v), 2 * A.T @ A @ v, atol=1e-12)


def test_hessian_through_a_batch_of_matrices_times_a_vector():
    B, x, v = rng.standard_normal((2, 3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    g, leaf, loss = squared_norm_of_product(B, x)
    expected = 2 * sum(B[k].T @ B[k] for k in range(2))
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, atol=1e-12)
    np.testing.assert_allclose(g.hvp(loss, leaf, v), expected @ v, atol=1e-12)


def test_hessian_of_a_bilinear_form_through_a_transpose():
    # L = sum(X.T @ X) = sum over rows k of (sum_i X_ki)^2: d2L / dX_ki dX_lj = 2 [k == l]
    X = rng.standard_normal((3, 2))
    g = dp.Graph()
    leaf = g.param("X", X)
    loss = (leaf.transpose(axes=(1, 0)) @ leaf).sum()
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, leaf), 2 * np.einsum("kl,ij->kilj", np.eye(3), np.ones((2, 2))),
                               atol=1e-12)


def test_gradient_nodes_of_a_product_are_the_textbook_formulas():
    A, x = rng.standard_normal((3, 4)), rng.standard_normal(4)
    g = dp.Graph()
    W, leaf = g.param("W", A), g.param("x", x)
    y = W @ leaf
    g.forward()
    g.backward(y, seed=np.ones(3), create_graph=True)
    g.forward()
    assert leaf.grad_node.op == "matmul" and leaf.grad_node.inputs[0].op == "transpose"  # W^T g
    np.testing.assert_allclose(leaf.grad_node.value, A.T @ np.ones(3))
    np.testing.assert_allclose(W.grad_node.value, np.outer(np.ones(3), x))


@pytest.mark.parametrize("a, b", [((3, 4), (4,)), ((2, 3, 4), (4, 2)), ((4,), (2, 4, 3))], ids=str)
def test_forward_mode_jacobian_of_matmul_equals_reverse_mode(a, b):
    g = dp.Graph()
    left, right = g.param("a", rng.standard_normal(a)), g.param("b", rng.standard_normal(b))
    y = left @ right
    g.forward()
    for wrt in (left, right):
        np.testing.assert_allclose(g.jacobian(y, wrt, mode="forward"), g.jacobian(y, wrt, mode="reverse"),
                                   atol=1e-12)


def test_transpose_tangent_is_the_transposed_tangent():
    x, t = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    g = dp.Graph()
    leaf = g.param("x", x)
    y = leaf.transpose(axes=(2, 0, 1))
    g.jvp({leaf: t})
    np.testing.assert_array_equal(y.tangent, np.transpose(t, (2, 0, 1)))
