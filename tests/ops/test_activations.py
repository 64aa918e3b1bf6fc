"""The activations family: relu, sigmoid, tanh, softmax, log_softmax, gelu, silu, softplus, leaky_relu, elu,
log_sigmoid and dropout."""

import warnings

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

rng = np.random.default_rng(11)


def away_from_zero(*shape):
    """Normal values pushed off the kink of relu, where finite differences straddle it."""
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, 0.1, -0.1)


def run(name, x, **attrs):
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, **attrs)
    g.forward()
    return g, leaf, out


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2)], ids=str)
def test_elementwise_activations(name, shape):
    check_op(name, away_from_zero(*shape))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((5,), -1), ((5,), 0), ((3, 4), -1), ((3, 4), 0), ((3, 4), 1),
                                         ((2, 3, 4), 1), ((2, 3, 4), -3)], ids=str)
def test_softmax_family_along_any_axis(name, shape, axis):
    check_op(name, rng.normal(0.0, 2.0, shape), axis=axis)


def test_elementwise_derivatives_match_their_closed_forms():
    x = away_from_zero(4, 3)
    seed = rng.standard_normal((4, 3))
    sigma = 1.0 / (1.0 + np.exp(-x))
    expected = {"relu": (x > 0) * 1.0, "sigmoid": sigma * (1 - sigma), "tanh": 1.0 / np.cosh(x) ** 2}
    for name, derivative in expected.items():
        g, leaf, out = run(name, x)
        g.backward(out, seed=seed)
        np.testing.assert_allclose(leaf.grad, seed * derivative, rtol=1e-12, err_msg=name)


def test_relu_passes_no_gradient_at_zero():
    g, leaf, out = run("relu", np.array([-1.0, 0.0, 2.0]))
    g.backward(out, seed=np.ones(3))
    np.testing.assert_array_equal(leaf.grad, [0.0, 0.0, 1.0])


def softmax_rows_jacobian(x):
    """diag(s) - s s^T for every row of a 2-D x (softmax over the last axis), as a (r, n, r, n) array."""
    rows, n = x.shape
    jacobian = np.zeros((rows, n, rows, n))
    for r in range(rows):
        s = np.exp(x[r]) / np.exp(x[r]).sum()
        jacobian[r, :, r, :] = np.diag(s) - np.outer(s, s)
    return jacobian


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_jacobian_is_diag_s_minus_s_s_transpose(axis):
    x = rng.standard_normal((3, 4))
    # axis 0 of x is the last axis of x.T: compare through a transpose of both index groups
    expected = softmax_rows_jacobian(x) if axis == -1 else softmax_rows_jacobian(x.T).transpose(1, 0, 3, 2)
    g, leaf, out = run("softmax", x, axis=axis)
    np.testing.assert_allclose(g.jacobian(out, leaf), expected, atol=1e-14)
    explicit, = g.registry["softmax"].jacobian(x, out=out.value, axis=axis)
    np.testing.assert_allclose(explicit, expected, atol=1e-14)


def test_softmax_jacobian_on_a_middle_axis():
    x = rng.standard_normal((2, 3, 2))
    explicit, = dp.Graph().registry["softmax"].jacobian(x, out=np.exp(x) / np.exp(x).sum(1, keepdims=True), axis=1)
    for i in range(2):
        for k in range(2):
            s = np.exp(x[i, :, k]) / np.exp(x[i, :, k]).sum()
            np.testing.assert_allclose(explicit[i, :, k, i, :, k], np.diag(s) - np.outer(s, s), atol=1e-14)
    # elements of different slices do not affect each other
    assert not explicit[0, :, 0, 1, :, 0].any()
    assert not explicit[0, :, 0, 0, :, 1].any()


def test_log_softmax_gradient_closed_form():
    x = rng.standard_normal((3, 5))
    seed = rng.standard_normal((3, 5))
    s = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    g, leaf, out = run("log_softmax", x)
    g.backward(out, seed=seed)
    np.testing.assert_allclose(out.value, np.log(s), rtol=1e-12)
    np.testing.assert_allclose(leaf.grad, seed - s * seed.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-14)


def test_softmax_decomposes_into_the_stable_textbook_circuit():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((3, 4)))
    circuit = g.registry["softmax"].decompose(x, axis=0)
    ops = [n.op for n in g if n.op is not None]
    assert ops == ["max", "sub", "exp", "sum", "reciprocal", "mul"]
    for reduction in ("max", "sum"):
        assert next(n for n in g if n.op == reduction).attrs == {"axis": 0, "keepdims": True}
    shifted = next(n for n in g if n.op == "sub")
    assert shifted.inputs[0] is x and shifted.inputs[1].op == "max"
    assert circuit.shape == (3, 4)


def test_softmax_and_log_softmax_do_not_overflow():
    x = np.array([[1000.0, 1000.0, 0.0], [-1000.0, 0.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _, _, soft = run("softmax", x)
        _, _, log_soft = run("log_softmax", x)
        _, _, sig = run("sigmoid", np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(soft.value, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], atol=1e-300)
    np.testing.assert_allclose(log_soft.value, [[-np.log(2), -np.log(2), -1000 - np.log(2)], [-1000, 0, -1000]])
    np.testing.assert_allclose(sig.value, [0.0, 0.5, 1.0])


def test_softmax_rows_are_distributions():
    _, _, out = run("softmax", rng.normal(0.0, 5.0, (4, 6)))
    np.testing.assert_allclose(out.value.sum(axis=-1), 1.0)
    assert (out.value > 0).all()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_an_axis_out_of_range_is_rejected(name):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match="axis 2 is out of range for 2 dimensions"):
        g.op(name, g.param("x", np.zeros((3, 4))), axis=2)


def test_an_unknown_attribute_is_rejected():
    g = dp.Graph()
    with pytest.raises(dp.GraphError, match="no attribute dim"):
        g.op("softmax", g.param("x", np.zeros(3)), dim=0)


# -- the opened softmax circuit equals the op at any logits (issue 10) ----------------------------

def torch_softmax(x, seed, axis=-1, log=False):
    """softmax (or log_softmax) of x along axis and the gradient of <seed, result>, from torch in float64."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = (torch.log_softmax if log else torch.softmax)(t, axis)
    out.backward(torch.tensor(seed, dtype=torch.float64))
    return out.detach().numpy(), t.grad.numpy()


def boxed_and_opened(x, seed, axis=-1):
    """A graph loss = sum(softmax(x) * seed), run, and its copy with softmax opened into its circuit."""
    g = dp.Graph()
    leaf = g.param("x", x)
    soft = g.op("softmax", leaf, axis=axis, name="s")
    g.op("sum", soft * g.const(seed), name="L")
    g.forward()
    g.backward("L")
    return g, g.expanded(["softmax"])


EXTREME_LOGITS = {
    "huge": np.array([[1000.0, 999.0, -1000.0]]),
    "hugely negative": np.array([[-800.0, -801.0, -802.0]]),
    "mixed rows": np.array([[1000.0, 999.0, -1000.0], [-800.0, -801.0, -802.0], [0.5, -0.25, 2.0]]),
    "normal times 50": np.random.default_rng(3).normal(0.0, 50.0, (4, 5)),
}
# -1e308 - 1e308 overflows to -inf, whose exp is the right 0: numpy warns about it all the same
NEAR_THE_FLOAT_LIMIT = pytest.param(np.array([[1e308, -1e308, 0.0], [-1e308, -1e308, -1e308]]),
                                    marks=pytest.mark.filterwarnings("ignore:overflow encountered in subtract"),
                                    id="near the float limit")


@pytest.mark.parametrize("logits", [pytest.param(x, id=k) for k, x in EXTREME_LOGITS.items()] + [NEAR_THE_FLOAT_LIMIT])
@pytest.mark.parametrize("axis", [-1, 0])
def test_opened_softmax_equals_the_op_and_torch_at_extreme_logits(logits, axis):
    seed = rng.standard_normal(logits.shape)
    g, h = boxed_and_opened(logits, seed, axis)
    expected_value, expected_grad = torch_softmax(logits, seed, axis)
    for graph in (g, h):
        assert np.isfinite(graph["s"].value).all() and np.isfinite(graph["x"].grad).all()
        np.testing.assert_allclose(graph["s"].value, expected_value, rtol=1e-12, atol=1e-300)
        # where one logit dominates, s (g - <g, s>) cancels to far below |seed|, in every implementation
        np.testing.assert_allclose(graph["x"].grad, expected_grad, rtol=1e-12, atol=1e-15 * np.abs(seed).max())
    np.testing.assert_allclose(h["s"].value, g["s"].value, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(h["x"].grad, g["x"].grad, rtol=1e-12, atol=1e-15 * np.abs(seed).max())


@pytest.mark.parametrize("axis", [-1, 0])
def test_opened_softmax_gradient_matches_the_op_to_rounding_at_ordinary_logits(axis):
    logits, seed = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    g, h = boxed_and_opened(logits, seed, axis)
    # the gradient through the max node cancels: what is left of it is rounding
    np.testing.assert_allclose(h["x"].grad, g["x"].grad, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(g["x"].grad, torch_softmax(logits, seed, axis)[1], rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("logits", [EXTREME_LOGITS["mixed rows"], EXTREME_LOGITS["normal times 50"],
                                    np.array([[710.0, 709.0, 0.0], [-745.0, -746.0, -750.0]])],
                         ids=["mixed rows", "normal times 50", "at the overflow limits"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_check_op_passes_for_softmax_at_large_logits(logits, axis):
    check_op("softmax", logits, axis=axis)


@pytest.mark.parametrize("logits", [EXTREME_LOGITS["huge"], EXTREME_LOGITS["hugely negative"],
                                    EXTREME_LOGITS["mixed rows"]], ids=["huge", "hugely negative", "mixed rows"])
def test_element_paths_through_the_opened_softmax_add_up_to_the_gradient(logits):
    seed = rng.standard_normal(logits.shape)
    g, h = boxed_and_opened(logits, seed)
    _, expected_grad = torch_softmax(logits, seed)
    for index in np.ndindex(logits.shape):
        count = h.count_paths("x", "L", index=index)
        found = h.paths("x", "L", index=index)
        assert count == len(found), index
        # every element reaches the loss, except one whose exp underflows to 0 (softmax exactly 0,
        # gradient exactly 0: a zero derivative makes no edge)
        assert (count > 0) == (expected_grad[index] != 0), index
        total = sum(p.contribution for p in found)
        assert total == pytest.approx(g["x"].grad[index], rel=1e-12, abs=1e-15), index
        assert total == pytest.approx(expected_grad[index], rel=1e-12, abs=1e-15), index
        # each path goes x -> (max ->) sub -> exp -> ...: the circuit's own elements, not the box
        assert all(p.nodes[1].startswith(("s.sub_1[", "s.max_1[")) for p in found), index


# -- empty arrays flow through softmax and log_softmax like torch ------------------------------------

EMPTY = [((0, 3), -1), ((0, 3), 0), ((3, 0), -1), ((3, 0), 0), ((2, 0, 4), 1), ((2, 0, 4), -1), ((0,), 0)]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", EMPTY, ids=str)
def test_softmax_family_of_empty_arrays_matches_torch(name, shape, axis):
    x, seed = np.zeros(shape), np.zeros(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, leaf, out = run(name, x, axis=axis)
        g.backward(out, seed=seed)
    expected_value, expected_grad = torch_softmax(x, seed, axis, log=name == "log_softmax")
    assert out.value.shape == expected_value.shape == shape
    assert leaf.grad.shape == expected_grad.shape == shape


@pytest.mark.parametrize("shape, axis", EMPTY, ids=str)
def test_opened_softmax_of_an_empty_array_is_empty(shape, axis):
    g, h = boxed_and_opened(np.zeros(shape), np.zeros(shape), axis)
    assert h["s"].value.shape == h["x"].grad.shape == shape


# -- forward mode and the vjp as graph nodes (second derivatives) --------------------------------

def row_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((4,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1)], ids=str)
def test_softmax_family_checks_forward_mode_and_second_derivatives(name, shape, axis):
    errors = check_op(name, rng.normal(0.0, 2.0, shape), axis=axis).errors
    assert {"jvp vs finite differences", "<u, Jv> vs <J^T u, v>", "vjp_graph vs vjp",
            "second derivatives vs finite differences"} <= set(errors)


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_jvp_is_s_times_v_minus_its_mean_under_s(axis):
    x, v = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    s = row_softmax(x, axis)
    g, leaf, out = run("softmax", x, axis=axis)
    g.jvp({leaf: v})
    np.testing.assert_allclose(out.tangent, s * (v - (s * v).sum(axis=axis, keepdims=True)), rtol=1e-12, atol=1e-15)
    g, leaf, out = run("log_softmax", x, axis=axis)
    g.jvp({leaf: v})
    np.testing.assert_allclose(out.tangent, v - (s * v).sum(axis=axis, keepdims=True), rtol=1e-12, atol=1e-15)


def weighted_sum_hessian(s, c):
    """d2/dx2 of sum(c * softmax(x)) for one 1-D slice, where s = softmax(x):
    diag((c - cbar) s) - (c s) s^T - s (c s)^T + 2 cbar s s^T, with cbar = <c, s>."""
    cbar = c @ s
    cs = c * s
    return np.diag((c - cbar) * s) - np.outer(cs, s) - np.outer(s, cs) + 2 * cbar * np.outer(s, s)


def hessian_of_weighted_sum(name, x, c, axis):
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (g.op(name, leaf, axis=axis) * g.const(c)).sum()
    g.forward()
    return g, leaf, loss, g.hessian(loss, leaf)


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_hessian_is_its_closed_form_slice_by_slice(axis):
    x, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    g, leaf, loss, hessian = hessian_of_weighted_sum("softmax", x, c, axis)
    # move the softmax axis last, so that slice r is row r, in the data and in both halves of the Hessian
    moved = (0, 1) if axis == -1 else (1, 0)
    rows = hessian.transpose(moved + tuple(2 + m for m in moved))
    xr, cr = x.transpose(moved), c.transpose(moved)
    for r in range(xr.shape[0]):
        s = np.exp(xr[r]) / np.exp(xr[r]).sum()
        np.testing.assert_allclose(rows[r, :, r, :], weighted_sum_hessian(s, cr[r]), rtol=1e-10, atol=1e-14)
        for other in set(range(xr.shape[0])) - {r}:
            np.testing.assert_array_equal(rows[r, :, other, :], 0.0)  # slices do not interact
    v = rng.standard_normal(x.shape)
    np.testing.assert_allclose(g.hvp(loss, leaf, v), np.tensordot(hessian, v, axes=2), rtol=1e-10, atol=1e-14)


def test_log_softmax_hessian_is_minus_the_weight_total_times_the_softmax_jacobian():
    # d/dx of sum(c * log_softmax(x)) along a row is c - s * C, with C the row's total of c, so the
    # Hessian of each row is -C (diag(s) - s s^T)
    x, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    g, leaf, loss, hessian = hessian_of_weighted_sum("log_softmax", x, c, -1)
    s = row_softmax(x, -1)
    for r in range(3):
        expected = -c[r].sum() * (np.diag(s[r]) - np.outer(s[r], s[r]))
        np.testing.assert_allclose(hessian[r, :, r, :], expected, rtol=1e-10, atol=1e-14)
    v = rng.standard_normal((3, 4))
    expected_hvp = -c.sum(axis=1, keepdims=True) * s * (v - (s * v).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(g.hvp(loss, leaf, v), expected_hvp, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_the_backward_pass_as_nodes_uses_the_rule_not_the_circuit(name):
    g, leaf, out = run(name, rng.standard_normal((2, 3)))
    loss = out.sum()
    g.forward()
    g.backward(loss, create_graph=True)
    built = [n.op for n in g if "backward" in n.scope and n.op is not None]
    assert "max" not in built and "reciprocal" not in built
    np.testing.assert_allclose(leaf.grad, leaf.grad_node.value)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", EMPTY, ids=str)
def test_softmax_family_of_empty_arrays_builds_an_empty_backward_pass(name, shape, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, leaf, out = run(name, np.zeros(shape), axis=axis)
        g.backward(out, seed=np.zeros(shape), create_graph=True)
        g.jvp({leaf: np.zeros(shape)})
    assert leaf.grad.shape == leaf.grad_node.shape == out.tangent.shape == shape


# -- gelu, silu, softplus, leaky_relu, elu, log_sigmoid (issue 12) ----------------------------------

def gelu_none(t):
    return torch.nn.functional.gelu(t, approximate="none")


def gelu_tanh(t):
    return torch.nn.functional.gelu(t, approximate="tanh")


# (our op, its attributes, the same function from torch)
SMOOTH = {
    "gelu": ("gelu", {}, gelu_none),
    "gelu tanh": ("gelu", {"approximate": "tanh"}, gelu_tanh),
    "silu": ("silu", {}, torch.nn.functional.silu),
    "softplus": ("softplus", {}, torch.nn.functional.softplus),
    "softplus beta 2 threshold 3": ("softplus", {"beta": 2.0, "threshold": 3.0},
                                    lambda t: torch.nn.functional.softplus(t, beta=2.0, threshold=3.0)),
    "softplus beta 0.5": ("softplus", {"beta": 0.5}, lambda t: torch.nn.functional.softplus(t, beta=0.5)),
    "leaky_relu": ("leaky_relu", {}, torch.nn.functional.leaky_relu),
    "leaky_relu 0.2": ("leaky_relu", {"negative_slope": 0.2},
                       lambda t: torch.nn.functional.leaky_relu(t, negative_slope=0.2)),
    "leaky_relu -0.5": ("leaky_relu", {"negative_slope": -0.5},
                        lambda t: torch.nn.functional.leaky_relu(t, negative_slope=-0.5)),
    "elu": ("elu", {}, torch.nn.functional.elu),
    "elu alpha 0.3": ("elu", {"alpha": 0.3}, lambda t: torch.nn.functional.elu(t, alpha=0.3)),
    "log_sigmoid": ("log_sigmoid", {}, torch.nn.functional.logsigmoid),
}


@pytest.mark.parametrize("case", SMOOTH.values(), ids=SMOOTH.keys())
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2)], ids=str)
def test_new_activations_check_op(case, shape):
    name, attrs, _ = case
    errors = check_op(name, 2.0 * away_from_zero(*shape), **attrs).errors
    assert {"jacobian vs vjp", "jvp vs finite differences", "vjp_graph vs vjp",
            "second derivatives vs finite differences"} <= set(errors)


def torch_elementwise(function, x, seed, tangent):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = function(t)
    out.backward(torch.tensor(seed, dtype=torch.float64))
    _, moved = torch.func.jvp(function, (torch.tensor(x, dtype=torch.float64),),
                              (torch.tensor(tangent, dtype=torch.float64),))
    return out.detach().numpy(), t.grad.numpy(), moved.numpy()


# ordinary inputs, around each op's bends, and far out where naive formulas overflow or cancel
INPUTS = {
    "normal": rng.normal(0.0, 2.0, (4, 5)),
    "bends": np.array([-3.0, -1.0, -0.5, -1e-3, 1e-3, 0.5, 1.0, 3.0, 9.9, 10.1, 19.9, 20.1]),
    "far out": np.array([-800.0, -60.0, -30.0, 30.0, 60.0, 800.0]),
}


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", SMOOTH.values(), ids=SMOOTH.keys())
@pytest.mark.parametrize("x", INPUTS.values(), ids=INPUTS.keys())
def test_new_activations_match_torch(case, x):
    name, attrs, function = case
    seed, tangent = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    g, leaf, out = run(name, x, **attrs)
    g.backward(out, seed=seed)
    g.jvp({leaf: tangent})
    value, grad, moved = torch_elementwise(function, x, seed, tangent)
    for ours, theirs, what in ((out.value, value, "value"), (leaf.grad, grad, "gradient"),
                               (out.tangent, moved, "tangent")):
        assert np.isfinite(ours).all(), what
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-300, err_msg=what)


@pytest.mark.parametrize("case", SMOOTH.values(), ids=SMOOTH.keys())
def test_new_activations_backward_as_nodes_is_finite_far_out(case):
    name, attrs, _ = case
    g, leaf, out = run(name, INPUTS["far out"], **attrs)
    loss = out.sum()
    g.forward()
    g.backward(loss, create_graph=True)
    assert np.isfinite(leaf.grad_node.value).all()
    np.testing.assert_allclose(leaf.grad_node.value, leaf.grad, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name, attrs, slope", [("leaky_relu", {"negative_slope": 0.2}, 0.2),
                                                ("elu", {"alpha": 0.3}, 0.3)])
def test_slope_at_zero_is_torchs(name, attrs, slope):
    g, leaf, out = run(name, np.array([0.0]), **attrs)
    g.backward(out, seed=np.ones(1))
    np.testing.assert_array_equal(leaf.grad, [slope])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_decomposes_into_its_formula(approximate):
    g = dp.Graph()
    x = g.param("x", rng.standard_normal(4))
    g.registry["gelu"].decompose(x, approximate=approximate)
    ops = {n.op for n in g if n.op is not None}
    assert ("erf" in ops) == (approximate == "none") and ("tanh" in ops) == (approximate == "tanh")


@pytest.mark.parametrize("approximate, function", [("none", gelu_none), ("tanh", gelu_tanh)])
def test_gelu_hessian_matches_torch(approximate, function):
    x, c = rng.normal(0.0, 1.5, (2, 3)), rng.standard_normal((2, 3))
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (leaf.gelu(approximate=approximate) * g.const(c)).sum()
    g.forward()
    expected = torch.autograd.functional.hessian(lambda t: (function(t) * torch.tensor(c)).sum(),
                                                 torch.tensor(x)).numpy()
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name, attrs, message", [
    ("gelu", {"approximate": "fast"}, "approximate must be 'none' \\(exact, with erf\\) or 'tanh', got 'fast'"),
    ("softplus", {"beta": 0.0}, "beta must be > 0, got 0.0"),
    ("softplus", {"threshold": float("nan")}, "threshold must be a finite number"),
    ("elu", {"alpha": "1"}, "alpha must be a finite number"),
])
def test_bad_attributes_are_refused_when_the_node_is_built(name, attrs, message):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=message):
        g.op(name, g.param("x", np.ones(3)), **attrs)


@pytest.mark.parametrize("attrs, message", [
    ({"p": 1.5, "training": True}, r"p, the probability of dropping an element, must be a number in \[0, 1\], got 1.5"),
    ({"training": 1}, "training must be True or False"),
    ({"seed": -1}, "seed must be an int >= 0"),
])
def test_bad_dropout_attributes_are_refused_when_the_graph_runs(attrs, message):
    g = dp.Graph()
    g.op("dropout", g.param("x", np.ones(3)), **attrs)
    with pytest.raises(dp.OpError, match=message):
        g.forward()


def test_bad_leaky_relu_slope_is_refused_when_the_graph_runs():
    g = dp.Graph()
    g.param("x", np.ones(3)).leaky_relu(negative_slope=None)
    with pytest.raises(dp.OpError, match="negative_slope must be a finite number, got None"):
        g.forward()


# -- dropout ---------------------------------------------------------------------------------------

def dropout(x, **attrs):
    g, leaf, out = run("dropout", x, **attrs)
    seed = rng.standard_normal(x.shape)
    g.backward(out, seed=seed)
    return out.value, leaf.grad / seed


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9])
def test_dropout_is_the_identity_when_not_training(p):
    x = rng.standard_normal((4, 5))
    value, slope = dropout(x, p=p, seed=3)
    np.testing.assert_array_equal(value, x)
    np.testing.assert_allclose(slope, 1.0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_comes_from_the_seed_and_is_scaled(p):
    x = rng.standard_normal((6, 7)) + 5.0  # no zeros in x, so a zero in the output is a dropped element
    kept = np.random.default_rng(7).random(x.shape) >= p
    value, slope = dropout(x, p=p, training=True, seed=7)
    np.testing.assert_allclose(value, np.where(kept, x / (1 - p), 0.0), rtol=1e-15)
    np.testing.assert_allclose(slope, np.where(kept, 1 / (1 - p), 0.0), rtol=1e-14)  # the gradient uses the same mask


def test_dropout_same_seed_same_mask_different_seed_different_mask():
    x = np.ones((8, 8))
    first, _ = dropout(x, p=0.5, training=True, seed=11)
    again, _ = dropout(x, p=0.5, training=True, seed=11)
    other, _ = dropout(x, p=0.5, training=True, seed=12)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    assert 0 < (first == 0).sum() < x.size


def test_dropout_keeps_everything_at_p_0_and_nothing_at_p_1():
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(dropout(x, p=0.0, training=True)[0], x)
    value, slope = dropout(x, p=1.0, training=True)
    np.testing.assert_array_equal(value, 0.0)
    np.testing.assert_array_equal(slope, 0.0)


@pytest.mark.parametrize("attrs", [{"p": 0.3, "training": True, "seed": 5}, {"p": 0.3}], ids=["training", "eval"])
def test_dropout_check_op_and_a_zero_hessian(attrs):
    # check_op's own keyword seed (of its random inputs) would take the op's: leave the mask's at its default there
    check_op("dropout", (3, 4), **{k: v for k, v in attrs.items() if k != "seed"})
    g = dp.Graph()
    leaf = g.param("x", rng.standard_normal(4))
    loss = (leaf.dropout(**attrs) * leaf.dropout(**attrs)).sum()  # the same mask twice: sum(m^2 x^2)
    g.forward()
    mask = np.where(np.random.default_rng(5).random(4) >= 0.3, 1 / 0.7, 0.0) if attrs.get("training") else np.ones(4)
    np.testing.assert_allclose(g.hessian(loss, leaf), np.diag(2 * mask**2), rtol=1e-14)
