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
