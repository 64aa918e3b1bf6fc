"""The linalg family: matmul (np.matmul semantics) and transpose."""

import numpy as np
import pytest

import dagprop as dp
from dagprop.testing import check_op

rng = np.random.default_rng(3)


def run(name, *arrays, **attrs):
    g = dp.Graph()
    leaves = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    out = g.op(name, *leaves, **attrs)
    g.forward()
    return g, leaves, out


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


@pytest.mark.parametrize("a, b", MATMUL_SHAPES, ids=str)
def test_matmul(a, b):
    check_op("matmul", a, b)


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
    check_op("transpose", shape, axes=axes)
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
