"""The pooling family: max_pool2d, avg_pool2d and adaptive_avg_pool2d, against torch.nn.functional in float64."""

import functools
import re

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dagprop as dp
from dagprop.testing import check_op

from helpers import SECOND_ORDER_CHECKS, assert_close

rng = np.random.default_rng(21)


MAX_CASES = [
    ((1, 1, 4, 4), {"kernel_size": 2}),
    ((3, 2, 5, 5), {"kernel_size": 3, "stride": 1}),                           # overlapping windows
    ((2, 2, 5, 4), {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1}),
    ((1, 3, 6, 7), {"kernel_size": 2, "stride": 2, "dilation": (2, 3)}),
    ((2, 1, 5, 6), {"kernel_size": 3, "stride": (1, 2), "padding": (1, 0), "dilation": 2}),
    ((1, 2, 3, 3), {"kernel_size": 1}),
    ((2, 2, 5, 7), {"kernel_size": 2, "padding": 1}),                          # tiles, a row and a column left over
]

AVG_CASES = [
    ((1, 1, 4, 4), {"kernel_size": 2}),
    ((3, 2, 5, 5), {"kernel_size": 3, "stride": 1}),
    ((2, 2, 5, 4), {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1}),
    ((2, 2, 5, 4), {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1, "count_include_pad": False}),
    ((1, 3, 6, 7), {"kernel_size": (2, 4), "stride": 3, "padding": (1, 2), "count_include_pad": False}),
    ((2, 1, 7, 5), {"kernel_size": (3, 2), "padding": 1, "count_include_pad": False}),  # tiles, some left over
]

ADAPTIVE_CASES = [
    ((1, 1, 4, 4), {"output_size": 2}),
    ((3, 2, 5, 7), {"output_size": (3, 4)}),
    ((2, 2, 5, 7), {"output_size": 1}),
    ((1, 2, 3, 4), {"output_size": (5, 7)}),       # larger than the input: windows repeat
    ((2, 1, 6, 5), {"output_size": (None, 2)}),    # None keeps the height
    ((2, 5, 7), {"output_size": (2, 3)}),          # one image, (C, H, W)
]


def _tensor(array):
    return torch.tensor(array, dtype=torch.float64)


def _call(function, attrs, *tensors):
    return function(*tensors, **attrs)


def _against_torch(name, torch_function, x, attrs):
    """Value, gradient (a random seed) and jvp (a random tangent) of our op and of torch's at x."""
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.op(name, leaf, **attrs)
    g.forward()
    seed, tangent = rng.standard_normal(out.shape), rng.standard_normal(x.shape)
    g.backward(out, seed=seed)
    g.jvp({leaf: tangent})

    tensor = _tensor(x).requires_grad_()
    expected = torch_function(tensor, **attrs)
    expected.backward(_tensor(seed))
    # torch's jvp by the double-backward trick (its forward-mode AD loads jit decompositions that warn)
    _, expected_tangent = torch.autograd.functional.jvp(functools.partial(_call, torch_function, attrs), _tensor(x),
                                                        _tensor(tangent))
    assert out.shape == tuple(expected.shape)
    assert_close(out.value, expected.detach().numpy())
    assert_close(leaf.grad, tensor.grad.numpy())
    assert_close(out.tangent, expected_tangent.numpy())


# -- check_op: vjp, jvp and vjp_graph against finite differences and each other ---------------


@pytest.mark.parametrize("x, attrs", MAX_CASES, ids=str)
def test_max_pool2d_check_op(x, attrs):
    assert SECOND_ORDER_CHECKS <= set(check_op("max_pool2d", x, **attrs).errors)


@pytest.mark.parametrize("x, attrs", AVG_CASES, ids=str)
def test_avg_pool2d_check_op(x, attrs):
    assert SECOND_ORDER_CHECKS | {"vjp vs decomposition"} <= set(check_op("avg_pool2d", x, **attrs).errors)


@pytest.mark.parametrize("x, attrs", ADAPTIVE_CASES, ids=str)
def test_adaptive_avg_pool2d_check_op(x, attrs):
    report = check_op("adaptive_avg_pool2d", x, **attrs)
    assert SECOND_ORDER_CHECKS | {"vjp vs decomposition"} <= set(report.errors)


# -- against torch.nn.functional ---------------------------------------------------------------


@pytest.mark.parametrize("x, attrs", MAX_CASES + [((3, 8, 6, 6), {"kernel_size": 2})], ids=str)
def test_max_pool2d_matches_torch(x, attrs):
    _against_torch("max_pool2d", F.max_pool2d, rng.standard_normal(x), attrs)


@pytest.mark.parametrize("x, attrs", AVG_CASES, ids=str)
def test_avg_pool2d_matches_torch(x, attrs):
    _against_torch("avg_pool2d", F.avg_pool2d, rng.standard_normal(x), attrs)


@pytest.mark.parametrize("x, attrs", ADAPTIVE_CASES + [((1, 1, 7, 7), {"output_size": (3, 5)})], ids=str)
def test_adaptive_avg_pool2d_matches_torch(x, attrs):
    _against_torch("adaptive_avg_pool2d", F.adaptive_avg_pool2d, rng.standard_normal(x), attrs)


def test_adaptive_windows_are_torchs():
    # 5 rows into 3: [floor(i*5/3), ceil((i+1)*5/3)) = [0, 2), [1, 4), [3, 5): the windows overlap
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    out = dp.Graph().registry["adaptive_avg_pool2d"].forward(x, output_size=(3, 1))
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 2.0, 3.5])


# -- ties: the whole gradient goes to one element per window, the first maximum ------------------


TIE_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 1},                                  # overlapping windows share their maxima
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0), "dilation": (1, 2)},
    {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": 1},
]


def _tied(kind, shape):
    if kind == "few values":
        return rng.integers(-1, 2, size=shape).astype(float)
    if kind == "constant":
        return np.full(shape, 0.5)
    if kind == "zeros and negatives":  # a window's max can be 0, the value padding would have
        return -rng.integers(0, 2, size=shape).astype(float)
    return np.full(shape, -np.inf)  # every element equal to the padding's -inf


@pytest.mark.parametrize("attrs", TIE_CASES, ids=str)
@pytest.mark.parametrize("kind", ["few values", "constant", "zeros and negatives", "all -inf"])
@pytest.mark.filterwarnings("ignore:invalid value encountered")  # -inf - -inf in the comparisons as nodes
def test_ties_go_to_the_first_maximum_as_in_torch(attrs, kind):
    x = _tied(kind, (2, 3, 6, 7))
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.ops.max_pool2d(leaf, **attrs)
    g.forward()
    seed = rng.standard_normal(out.shape)
    g.backward(out, seed=seed)
    tensor = _tensor(x).requires_grad_()
    expected = F.max_pool2d(tensor, **attrs)
    expected.backward(_tensor(seed))
    np.testing.assert_array_equal(out.value, expected.detach().numpy())
    assert_close(leaf.grad, tensor.grad.numpy())
    # the backward pass built as nodes picks the same elements
    h = dp.Graph()
    twin = h.param("x", x)
    loss = (h.ops.max_pool2d(twin, **attrs) * h.const(seed)).sum()
    h.forward()
    h.backward(loss, create_graph=True)
    assert_close(twin.grad_node.value, tensor.grad.numpy())


def test_each_window_sends_its_gradient_to_one_element():
    x = np.zeros((1, 1, 3, 3))  # nine equal elements; 2x2 windows with stride 1 overlap
    g = dp.Graph()
    leaf = g.param("x", x)
    out = g.ops.max_pool2d(leaf, kernel_size=2, stride=1)
    g.forward()
    g.backward(out, seed=np.ones((1, 1, 2, 2)))
    # each window's first element (its top left) takes all of its gradient
    np.testing.assert_array_equal(leaf.grad[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


# -- second derivatives and the backward pass as nodes -------------------------------------------


@pytest.mark.parametrize("name, attrs", [
    ("max_pool2d", {"kernel_size": 2, "stride": 1, "padding": 1}),
    ("avg_pool2d", {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False}),
    ("adaptive_avg_pool2d", {"output_size": (2, 3)}),
])
def test_hessian_through_a_pool_equals_torch(name, attrs):
    x = rng.standard_normal((1, 2, 4, 4))
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (g.op(name, leaf, **attrs) ** 2).sum()
    g.forward()

    def torch_loss(xt):
        return (getattr(F, name)(xt, **attrs) ** 2).sum()

    assert_close(g.hessian(loss, leaf), torch.autograd.functional.hessian(torch_loss, _tensor(x)).numpy())


def test_the_max_pools_gradient_node_depends_on_x_through_unfold():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((1, 1, 4, 4)))
    loss = g.ops.max_pool2d(x, kernel_size=2).sum()
    g.forward()
    g.backward(loss, create_graph=True)
    assert x.grad_node.op == "fold"
    assert nx.has_path(g.nx, x.name, x.grad_node.name)
    assert {"unfold", "step"} <= {g[name].op for name in nx.ancestors(g.nx, x.grad_node.name)}


# -- shapes that do not fit ----------------------------------------------------------------------


@pytest.mark.parametrize("name, x, attrs, reason", [
    ("max_pool2d", (1, 1, 4, 4), {"kernel_size": 2, "padding": 2},
     "padding 2 is more than half the kernel's height 2, so a window could hold padding only"),
    ("avg_pool2d", (1, 1, 4, 4), {"kernel_size": (3, 2), "padding": (1, 2)},
     "padding 2 is more than half the kernel's width 2"),
    ("max_pool2d", (1, 1, 4, 4), {"kernel_size": 5},
     r"the kernel's height 5 is larger than the padded input's height 4 \+ 2 \* 0 = 4"),
    ("max_pool2d", (1, 4, 4), {"kernel_size": 2}, r"x must have 4 dimensions \(N, C, H, W\), got shape \(1, 4, 4\)"),
    ("avg_pool2d", (1, 1, 4, 4), {"kernel_size": 0}, "kernel_size must be at least 1, got 0"),
    ("max_pool2d", (1, 1, 4, 4), {"kernel_size": 2, "stride": 0}, "stride must be at least 1, got 0"),
    ("adaptive_avg_pool2d", (1, 1, 4, 4), {"output_size": 0}, "output_size must be at least 1"),
    ("adaptive_avg_pool2d", (1, 1, 4, 4), {"output_size": (1, 2, 3)}, "output_size must be an int or a pair"),
    ("adaptive_avg_pool2d", (4, 4), {"output_size": 2}, r"x must have 4 dimensions \(N, C, H, W\) or 3"),
], ids=lambda case: case if isinstance(case, str) and " " in case else None)
def test_pools_reject_shapes_that_do_not_fit(name, x, attrs, reason):
    g = dp.Graph()
    where = f"op node 'pool': {name} (plugin 'dagprop_plugins.pooling') cannot take inputs of shapes x {x}: "
    with pytest.raises(dp.ShapeError, match=re.escape(where) + reason):
        g.op(name, g.param("x", np.zeros(x)), name="pool", **attrs)


# -- generated code --------------------------------------------------------------------------


def test_generated_code_writes_tiling_pools_as_reshapes():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((2, 3, 4, 6)))
    top = g.op("max_pool2d", x, kernel_size=2, name="top")
    mean = g.op("avg_pool2d", x, kernel_size=(2, 3), name="mean")
    overall = g.op("adaptive_avg_pool2d", x, output_size=1, name="overall")
    padded = g.op("max_pool2d", x, kernel_size=3, stride=1, padding=1, name="padded")  # left to the op's own call
    loss = (top * top).sum() + (mean * mean).sum() + (overall * overall).sum() + (padded * padded).sum()
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    assert "top = x.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5))" in source
    assert "mean = x.reshape(2, 3, 2, 2, 2, 3).mean(axis=(3, 5))" in source
    assert "overall = x.mean(axis=(2, 3), keepdims=True)" in source
    namespace = {}
    exec(source, namespace)
    values = namespace["forward"](g.registry, {"x": x.value})
    for node in (top, mean, overall, padded):
        assert_close(values[node.name], node.value, rtol=1e-12)
    assert_close(namespace["backward"](g.registry, values)["x"], x.grad, rtol=1e-12)
