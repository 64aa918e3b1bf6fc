"""The losses family: l2_loss, squared_error, cross_entropy."""

import warnings

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

rng = np.random.default_rng(17)


def run(name, *arrays):
    g = dp.Graph()
    leaves = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    out = g.op(name, *leaves)
    g.forward()
    g.backward(out)
    return out, leaves


def distributions(*shape):
    """Random probability vectors along the last axis."""
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


def one_hot(labels, classes):
    return np.eye(classes)[labels]


def test_family_specifics():
    assert dp.Graph().registry["squared_error"].inputs == ("yhat", "y")


PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), ()), ((5,), (5,)), ((), ()), ((1, 4), (3, 4))]


@pytest.mark.parametrize("name", ["l2_loss", "squared_error"])
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_regression_losses(name, shapes):
    check_op(name, *shapes)


def test_l2_loss_closed_form():
    z, y = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    out, (gz, gy) = run("l2_loss", z, y)
    np.testing.assert_allclose(out.value, 0.5 * ((z - y) ** 2).sum())
    np.testing.assert_allclose(gz.grad, z - y)
    np.testing.assert_allclose(gy.grad, y - z)


def test_squared_error_closed_form():
    yhat, y = rng.standard_normal(6), rng.standard_normal(6)
    out, (gyhat, gy) = run("squared_error", yhat, y)
    np.testing.assert_allclose(out.value, ((y - yhat) ** 2).sum())
    np.testing.assert_allclose(gyhat.grad, 2 * (yhat - y))
    np.testing.assert_allclose(gy.grad, 2 * (y - yhat))


def test_a_target_broadcast_over_rows_gets_the_sum_over_rows():
    z, y = rng.standard_normal((3, 2)), rng.standard_normal(2)
    out, (gz, gy) = run("l2_loss", z, y)
    np.testing.assert_allclose(out.value, 0.5 * ((z - y) ** 2).sum())
    np.testing.assert_allclose(gy.grad, (y - z).sum(axis=0))


@pytest.mark.parametrize("name", ["l2_loss", "squared_error"])
def test_shapes_that_would_compare_every_pair_are_rejected(name):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=r"broadcast to \(3, 3\), larger than both"):
        g.op(name, g.param("a", np.zeros(3)), g.param("b", np.zeros((3, 1))))


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 4)], ids=str)
def test_cross_entropy(shape):
    check_op("cross_entropy", rng.normal(0.0, 2.0, shape), distributions(*shape))


def softmax(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 4)], ids=str)
def test_cross_entropy_closed_form(shape):
    logits, target = rng.standard_normal(shape), distributions(*shape)
    rows = int(np.prod(shape[:-1]))
    out, (glogits, gtarget) = run("cross_entropy", logits, target)
    np.testing.assert_allclose(out.value, -(target * np.log(softmax(logits))).sum() / rows)
    np.testing.assert_allclose(glogits.grad, (softmax(logits) - target) / rows, atol=1e-15)
    np.testing.assert_allclose(gtarget.grad, -np.log(softmax(logits)) / rows)


def test_cross_entropy_with_class_labels_picks_the_log_probability_of_each_label():
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 3, 1, 2])
    out, (glogits, _) = run("cross_entropy", logits, one_hot(labels, 4))
    p = softmax(logits)
    np.testing.assert_allclose(out.value, -np.log(p[np.arange(5), labels]).mean())
    np.testing.assert_allclose(glogits.grad, (p - one_hot(labels, 4)) / 5, atol=1e-15)


def test_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, (glogits, _) = run("cross_entropy", logits, np.array([[0.0, 1.0], [1.0, 0.0]]))
    np.testing.assert_allclose(out.value, 500.0)
    np.testing.assert_allclose(glogits.grad, [[0.5, -0.5], [0.0, 0.0]], atol=1e-15)


@pytest.mark.parametrize("logits, target, reason", [
    ((4, 3), (4, 2), r"target has shape \(4, 2\) but logits have \(4, 3\)"),
    ((), (), "0-d"),
])
def test_cross_entropy_rejects_mismatched_shapes(logits, target, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.op("cross_entropy", g.param("logits", np.zeros(logits)), g.input("target", np.zeros(target)))


def test_a_constant_target_gets_no_gradient():
    g = dp.Graph()
    logits = g.param("logits", rng.standard_normal((2, 3)))
    target = g.input("target", distributions(2, 3))
    loss = g.op("cross_entropy", logits, target)
    g.forward()
    g.backward(loss)
    assert target.grad is None and logits.grad.shape == (2, 3)


# -- empty arrays: a mean over no rows is NaN, a sum over no classes is 0 ---------------------------

@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 4), (0, 2, 4), (0,)], ids=str)
def test_cross_entropy_of_empty_arrays_matches_torch(shape):
    logits, target = rng.standard_normal(shape), rng.standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 0 / 0 must not escape
        out, (glogits, gtarget) = run("cross_entropy", logits, target)
    # the op's definition written in torch: the mean over rows of -sum(target * log_softmax) over classes
    t_logits, t_target = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (logits, target))
    expected = -(t_target * torch.log_softmax(t_logits, -1)).sum(-1).mean()
    expected.backward()
    np.testing.assert_array_equal(out.value, expected.detach().numpy())  # NaN when there are no rows
    assert np.isnan(out.value) == (0 in shape[:-1])
    np.testing.assert_array_equal(glogits.grad, t_logits.grad.numpy())
    np.testing.assert_array_equal(gtarget.grad, t_target.grad.numpy())


# -- forward mode and the vjp as graph nodes (second derivatives) --------------------------------

@pytest.mark.parametrize("name", ["l2_loss", "squared_error", "cross_entropy"])
def test_every_loss_has_forward_mode_and_a_vjp_built_of_nodes(name):
    op = dp.Graph().registry[name]
    assert op.jvp is not None and op.vjp_graph is not None


@pytest.mark.parametrize("name", ["l2_loss", "squared_error"])
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_regression_losses_check_forward_mode_and_second_derivatives(name, shapes):
    errors = check_op(name, *shapes).errors
    assert {"jvp vs finite differences", "<u, Jv> vs <J^T u, v>", "vjp_graph vs vjp",
            "second derivatives vs finite differences"} <= set(errors)


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 4)], ids=str)
def test_cross_entropy_checks_forward_mode_and_second_derivatives(shape):
    # targets whose rows do not sum to 1 too: the softmax term scales by each row's mass
    for target in (distributions(*shape), rng.uniform(0.0, 2.0, shape)):
        errors = check_op("cross_entropy", rng.normal(0.0, 2.0, shape), target).errors
        assert "second derivatives vs finite differences" in errors


def two_leaf_graph(name, a, b):
    g = dp.Graph()
    first, second = g.param("a", a), g.param("b", b)
    loss = g.op(name, first, second)
    g.forward()
    return g, first, second, loss


@pytest.mark.parametrize("name, curvature", [("l2_loss", 1.0), ("squared_error", 2.0)])
def test_regression_loss_hessians_count_the_rows_a_side_was_broadcast_over(name, curvature):
    # a (4,) side compared with each of 3 rows: every element appears in 3 squares
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    g, first, second, loss = two_leaf_graph(name, a, b)
    np.testing.assert_allclose(g.hessian(loss, first).reshape(12, 12), curvature * np.eye(12))
    np.testing.assert_allclose(g.hessian(loss, second), 3 * curvature * np.eye(4))
    v = rng.standard_normal(4)
    np.testing.assert_allclose(g.hvp(loss, second, v), 3 * curvature * v, rtol=1e-14)
    # the mixed derivative: d/db of dL/da, summed over a, is -curvature per row of a
    g.backward(loss, create_graph=True)
    total = first.grad_node.sum()
    g.forward()
    g.zero_grad()
    g.backward(total)
    np.testing.assert_allclose(second.grad, np.full(4, -3 * curvature))


@pytest.mark.parametrize("name, scale", [("l2_loss", 1.0), ("squared_error", 2.0)])
def test_regression_loss_jvp_is_the_residual_against_the_tangents(name, scale):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    va, vb = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    g, first, second, loss = two_leaf_graph(name, a, b)
    g.jvp({first: va, second: vb})
    np.testing.assert_allclose(loss.tangent, scale * ((a - b) * (va - vb)).sum(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 4)], ids=str)
def test_cross_entropy_hessian_in_the_logits_is_the_softmax_jacobian_over_the_rows(shape):
    # dL/dlogits = (softmax * mass - target) / rows, so each row's Hessian block is
    # mass (diag(p) - p p^T) / rows, with mass the row's target total
    logits, target = rng.standard_normal(shape), rng.uniform(0.0, 2.0, shape)
    g = dp.Graph()
    leaf = g.param("logits", logits)
    loss = g.op("cross_entropy", leaf, g.input("target", target))
    g.forward()
    n = shape[-1]
    rows = logits.size // n
    flat_logits, flat_target = logits.reshape(rows, n), target.reshape(rows, n)
    hessian = g.hessian(loss, leaf).reshape(rows, n, rows, n)
    for r in range(rows):
        p = softmax(flat_logits[r])
        expected = flat_target[r].sum() * (np.diag(p) - np.outer(p, p)) / rows
        np.testing.assert_allclose(hessian[r, :, r, :], expected, rtol=1e-10, atol=1e-15)
        for other in set(range(rows)) - {r}:
            np.testing.assert_array_equal(hessian[r, :, other, :], 0.0)


def test_cross_entropy_mixed_derivative_is_the_softmax_minus_the_identity():
    # d/dtarget of dL/dlogits: d[(p * mass - target) / rows]_i / d target_j = (p_i - [i == j]) / rows within a row
    logits, target = rng.standard_normal((2, 3)), distributions(2, 3)
    g, first, second, loss = two_leaf_graph("cross_entropy", logits, target)
    g.backward(loss, create_graph=True)
    w = rng.standard_normal((2, 3))
    total = (first.grad_node * g.const(w)).sum()
    g.forward()
    g.zero_grad()
    g.backward(total)
    p = softmax(logits)
    np.testing.assert_allclose(second.grad, ((w * p).sum(axis=1, keepdims=True) - w) / 2, rtol=1e-12)


def test_cross_entropy_jvp_is_the_directional_derivative():
    logits, target = rng.standard_normal((3, 4)), distributions(3, 4)
    v_logits, v_target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    g, first, second, loss = two_leaf_graph("cross_entropy", logits, target)
    g.jvp({first: v_logits, second: v_target})
    p = softmax(logits)
    expected = (((p - target) * v_logits).sum() - (np.log(p) * v_target).sum()) / 3
    np.testing.assert_allclose(loss.tangent, expected, rtol=1e-12)


def test_a_constant_target_gets_no_gradient_node():
    g = dp.Graph()
    logits = g.param("logits", rng.standard_normal((2, 3)))
    target = g.input("target", one_hot([2, 0], 3))
    loss = g.op("cross_entropy", logits, target)
    g.forward()
    g.backward(loss, create_graph=True)
    assert target.grad is None and target.grad_node is None
    assert not any(n.op == "neg" for n in g if "backward" in n.scope)  # nothing built for the target
    np.testing.assert_allclose(logits.grad_node.value, (softmax(logits.value) - target.value) / 2, atol=1e-15)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 4), (0,)], ids=str)
def test_cross_entropy_of_empty_arrays_builds_an_empty_backward_pass(shape):
    g, first, second, loss = two_leaf_graph("cross_entropy", np.zeros(shape), np.zeros(shape))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.backward(loss, create_graph=True)
        g.jvp({first: np.zeros(shape), second: np.zeros(shape)})
    assert first.grad_node.shape == second.grad_node.shape == shape
    assert loss.tangent.shape == () and loss.tangent == 0.0
