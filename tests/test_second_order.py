"""Second derivatives: g.hessian (reverse-over-reverse) and g.hvp (forward-over-reverse).

Checked against closed forms written here, central differences of gradients computed by
plain numpy, and torch.autograd.functional.hessian.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.errors import BackwardError, GraphError

from helpers import central_difference


def test_hessian_of_a_tanh_sum_is_its_closed_form_diagonal():
    xv = np.array([0.5, -1.0, 2.0])
    g = dp.Graph()
    x = g.param("x", xv)
    L = x.tanh().sum()
    g.forward()
    t = np.tanh(xv)
    np.testing.assert_allclose(g.hessian(L, x), np.diag(-2 * t * (1 - t**2)), rtol=1e-12, atol=1e-15)


def test_hessian_of_a_tanh_chain_against_central_differences_of_its_gradient():
    xv = np.array([[0.3, -0.8], [1.1, 0.2]])
    g = dp.Graph()
    x = g.param("x", xv)
    L = ((x * 1.5).tanh() * x).tanh().sum()

    def gradient(v):
        inner = np.tanh(1.5 * v)
        s = inner * v
        outer = 1 - np.tanh(s) ** 2
        return outer * (1.5 * (1 - inner**2) * v + inner)

    g.forward()
    H = g.hessian(L, x)
    assert H.shape == (2, 2, 2, 2)
    numeric = np.stack([central_difference(lambda v, k=k: gradient(v).flat[k], xv) for k in range(xv.size)])
    np.testing.assert_allclose(H.reshape(4, 4), numeric.reshape(4, 4), rtol=1e-6, atol=1e-8)
    # symmetric, as a Hessian of a smooth function must be
    np.testing.assert_allclose(H.reshape(4, 4), H.reshape(4, 4).T, atol=1e-14)


def test_hvp_is_the_hessian_times_v_and_matches_differences_of_gradients():
    rng = np.random.default_rng(0)
    xv, v = rng.standard_normal(4), rng.standard_normal(4)
    g = dp.Graph()
    x = g.param("x", xv)
    L = (x.sigmoid() * x.exp()).sum()

    def gradient(p):
        s = 1 / (1 + np.exp(-p))
        return np.exp(p) * s * (2 - s)

    g.forward()
    eps = 1e-6
    expected = (gradient(xv + eps * v) - gradient(xv - eps * v)) / (2 * eps)
    np.testing.assert_allclose(g.hvp(L, x, v), expected, rtol=1e-6)
    np.testing.assert_allclose(g.hvp(L, x, v), g.hessian(L, x) @ v, rtol=1e-12)


def test_second_derivatives_leave_the_graph_as_it_was_and_follow_its_new_values():
    g = dp.Graph()
    w = g.param("w", [0.5, 1.5])
    L = (w * w * w).sum()
    g.forward()
    g.backward(L)
    names = [n.name for n in g]
    np.testing.assert_allclose(g.hessian(L, w), np.diag([3.0, 9.0]))
    assert [n.name for n in g] == names
    np.testing.assert_array_equal(w.grad, [0.75, 6.75])
    g.step(lr=0.1)  # new values: the kept copy must see them
    g.forward()
    new = np.array([0.5, 1.5]) - 0.1 * np.array([0.75, 6.75])
    np.testing.assert_allclose(g.hvp(L, w, [1.0, 1.0]), 6 * new, rtol=1e-12)


def test_second_derivative_errors_name_the_problem():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    y = x * x
    total = y.sum()
    other = g.param("other", 1.0)
    with pytest.raises(BackwardError, match="run forward"):
        g.hessian(total, x)
    g.forward()
    with pytest.raises(BackwardError, match="scalar loss"):
        g.hessian(y, x)
    with pytest.raises(GraphError, match="leaf"):
        g.hessian(total, y)
    with pytest.raises(BackwardError, match="does not depend on 'other'"):
        g.hessian(total, other)
    with pytest.raises(GraphError, match=r"v has shape \(3,\)"):
        g.hvp(total, x, [1.0, 2.0, 3.0])


def test_hessian_of_an_mlp_with_softmax_equals_torch():
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((4, 1))
    W1, b1 = rng.standard_normal((5, 4)), rng.standard_normal((5, 1))
    W2, b2 = rng.standard_normal((3, 5)), rng.standard_normal((3, 1))
    c = rng.standard_normal((3, 1))

    g = dp.Graph()
    x = g.param("x", x0)
    h = (g.const(W1) @ x + g.const(b1)).tanh()
    p = (g.const(W2) @ h + g.const(b2)).softmax(axis=0)
    L = (p * g.const(c)).sum()
    g.forward()

    def loss(xt):
        ht = torch.tanh(torch.tensor(W1) @ xt + torch.tensor(b1))
        pt = torch.softmax(torch.tensor(W2) @ ht + torch.tensor(b2), dim=0)
        return (pt * torch.tensor(c)).sum()

    expected = torch.autograd.functional.hessian(loss, torch.tensor(x0)).numpy()
    np.testing.assert_allclose(g.hessian(L, x), expected, rtol=1e-9, atol=1e-12)
    v = rng.standard_normal((4, 1))
    np.testing.assert_allclose(g.hvp(L, x, v), np.tensordot(expected, v, axes=2), rtol=1e-9, atol=1e-12)


def test_a_loss_whose_gradient_is_blocked_everywhere_has_a_zero_hessian():
    g = dp.Graph()
    x = g.param("x", [1.0, -2.0])
    L = (x > 0).sum()  # flat almost everywhere: no gradient flows through the step
    g.forward()
    np.testing.assert_array_equal(g.hessian(L, x), np.zeros((2, 2)))
    np.testing.assert_array_equal(g.hvp(L, x, [1.0, 1.0]), np.zeros(2))
