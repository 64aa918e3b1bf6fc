"""gradcheck and the whole-graph Jacobian."""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp


def _wrong_square_vjp(g, x, *, out):
    return (3 * x * g,)  # should be 2 x g


class WrongSquare:
    @dp.hookimpl
    def dagprop_ops(self):
        return [dp.Op("wrong_square", forward=np.square, vjp=_wrong_square_vjp)]


def test_gradcheck_passes_on_a_correct_graph_and_reports_errors(rng):
    g = dp.Graph()
    w = g.param("w", rng.standard_normal((3, 2)))
    b = g.param("b", rng.standard_normal(2))
    loss = ((g.input("x", rng.standard_normal((4, 3))) @ w + b).tanh() ** 2).sum()
    report = dp.gradcheck(g, loss)
    assert set(report.max_abs_error) == {"w", "b"}
    assert max(report.max_abs_error.values()) < 1e-7
    assert report.analytic["w"].shape == (3, 2)


def test_gradcheck_names_node_index_and_both_values_of_the_worst_mismatch():
    g = dp.Graph(plugins=[WrongSquare()])
    x = g.param("x", [1.0, -2.0, 0.5])
    loss = g.op("wrong_square", x).sum()
    with pytest.raises(dp.GradcheckError) as info:
        dp.gradcheck(g, loss)
    message = str(info.value)
    assert "'x'" in message and "index (1,)" in message  # |3x - 2x| is largest at x = -2
    assert "analytic -6" in message and "numeric -4" in message


def test_gradcheck_leaves_values_and_gradients_untouched(rng):
    g = dp.Graph()
    w = g.param("w", rng.standard_normal(3))
    loss = (w * w).sum()
    assert loss.value is None
    dp.gradcheck(g, loss)
    assert loss.value is None and w.grad is None
    g.forward()
    g.backward(loss)
    before_value, before_grad = loss.value.copy(), w.grad.copy()
    w_before = w.value.copy()
    dp.gradcheck(g, loss)
    np.testing.assert_array_equal(loss.value, before_value)
    np.testing.assert_array_equal(w.grad, before_grad)
    np.testing.assert_array_equal(w.value, w_before)


def test_gradcheck_of_an_input_with_wrt(rng):
    g = dp.Graph()
    x = g.input("x", rng.standard_normal(4))
    loss = (x.exp()).sum()
    report = dp.gradcheck(g, loss, wrt=[x])
    np.testing.assert_allclose(report.numeric["x"], np.exp(x.value), rtol=1e-6)


def test_gradcheck_refuses_a_non_scalar_loss_and_a_loss_without_params():
    g = dp.Graph()
    w = g.param("w", [1.0, 2.0])
    with pytest.raises(dp.BackwardError, match="scalar"):
        dp.gradcheck(g, w * 2)
    with pytest.raises(dp.GraphError, match="depends on no param"):
        dp.gradcheck(g, g.input("d", 1.0) * 3)


def test_jacobian_matches_the_closed_form_of_a_matrix_product(rng):
    g = dp.Graph()
    a = g.param("a", rng.standard_normal((2, 3)))
    b = g.input("b", rng.standard_normal((3, 4)))
    c = a @ b
    g.forward()
    jac = g.jacobian(c, a)
    # d c[i, j] / d a[k, l] = delta(i, k) * b[l, j]
    expected = np.einsum("ik,lj->ijkl", np.eye(2), b.value)
    np.testing.assert_allclose(jac, expected)
    np.testing.assert_allclose(g.jacobian(c, b), np.einsum("ik,jl->ijkl", a.value, np.eye(4)))
    assert a.grad is None  # computing a Jacobian leaves gradients alone


def test_jacobian_needs_a_forward_first():
    g = dp.Graph()
    x = g.param("x", [1.0])
    with pytest.raises(dp.BackwardError, match="forward"):
        g.jacobian(x * 2, x)


def test_a_nan_gradient_fails_gradcheck():
    def nan_vjp(g, x, *, out):
        return (g * np.nan * x,)

    class NanGradient:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("nan_grad", forward=np.square, vjp=nan_vjp)]

    g = dp.Graph(plugins=[NanGradient()])
    x = g.param("x", [1.0, 2.0])
    loss = g.op("nan_grad", x).sum()
    with pytest.raises(dp.GradcheckError, match=r"analytic nan, numeric 2 .*2 of 2 elements disagree"):
        dp.gradcheck(g, loss)
