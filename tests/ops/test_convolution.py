"""The convolution family: unfold, fold, conv2d and conv1d, against torch.nn.functional in float64."""

import functools
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dagprop as dp
from dagprop.testing import check_op

from helpers import SECOND_ORDER_CHECKS, assert_close

rng = np.random.default_rng(12)


# (x shape, weight shape, attributes): every attribute that changes the code path, kept tiny for check_op
CONV2D_CASES = [
    ((1, 1, 4, 4), (1, 1, 3, 3), {}),
    ((3, 2, 5, 4), (3, 2, 2, 3), {"stride": 2}),
    ((2, 2, 5, 5), (3, 2, 3, 3), {"padding": 1}),
    ((1, 3, 6, 5), (2, 3, 2, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (2, 1)}),
    ((2, 4, 4, 4), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((2, 4, 3, 3), (4, 1, 2, 2), {"groups": 4}),                         # depthwise
    ((3, 3, 4, 5), (2, 3, 1, 1), {}),                                    # 1x1 kernels
    ((1, 2, 4, 6), (2, 2, 1, 3), {"stride": (1, 2), "dilation": 2}),     # non-square, dilated
    ((2, 2, 5, 5), (2, 2, 3, 3), {"padding": "same", "dilation": 2}),
    ((2, 2, 5, 7), (3, 2, 2, 3), {"stride": (2, 3), "padding": (0, 1)}),  # windows side by side, a row left over
    ((1, 2, 4, 5), (2, 2, 3, 2), {"padding": "valid"}),
]

CONV1D_CASES = [
    ((1, 1, 6), (1, 1, 3), {}),
    ((3, 2, 7), (4, 2, 3), {"stride": 2, "padding": 1}),
    ((2, 4, 8), (2, 2, 2), {"groups": 2, "dilation": 3}),
    ((2, 3, 5), (2, 3, 1), {}),
    ((1, 2, 6), (3, 2, 3), {"padding": "same"}),
]

UNFOLD_CASES = [
    ((1, 1, 3, 3), {"kernel_size": 2}),
    ((2, 3, 5, 4), {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1}),
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": (2, 1)}),
    ((3, 1, 4, 4), {"kernel_size": 1, "stride": 3}),
    ((2, 2, 5, 6), {"kernel_size": (2, 3), "stride": (2, 3), "padding": (1, 0)}),  # side by side, a row left over
]


def _tensor(array):
    return torch.tensor(array, dtype=torch.float64)


def _with_bias(weight_shape, bias):
    return (rng.standard_normal(weight_shape[0]),) if bias else ()


def _call(function, attrs, *tensors):
    return function(*tensors, **attrs)


def _against_torch(name, torch_function, arrays, attrs):
    """Value, gradients (a random seed) and jvp (random tangents) of our op and of torch's, on the same arrays."""
    g = dp.Graph()
    leaves = [g.param(f"in{k}", a) for k, a in enumerate(arrays)]
    out = g.op(name, *leaves, **attrs)
    g.forward()
    seed = rng.standard_normal(out.shape)
    g.backward(out, seed=seed)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    g.jvp(dict(zip(leaves, tangents)))

    tensors = [_tensor(a).requires_grad_() for a in arrays]
    expected = torch_function(*tensors, **attrs)
    expected.backward(_tensor(seed))
    # torch's jvp by the double-backward trick (its forward-mode AD loads jit decompositions that warn)
    _, expected_tangent = torch.autograd.functional.jvp(functools.partial(_call, torch_function, attrs),
                                                        tuple(_tensor(a) for a in arrays),
                                                        tuple(_tensor(t) for t in tangents))
    assert out.shape == tuple(expected.shape)
    assert_close(out.value, expected.detach().numpy())
    for leaf, tensor in zip(leaves, tensors):
        assert_close(leaf.grad, tensor.grad.numpy())
    assert_close(out.tangent, expected_tangent.numpy())


# -- check_op: vjp, jvp and vjp_graph against finite differences and each other ---------------


@pytest.mark.parametrize("x, weight, attrs", CONV2D_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_check_op(x, weight, attrs, bias):
    report = check_op("conv2d", x, weight, *([(weight[0],)] if bias else []), **attrs)
    assert SECOND_ORDER_CHECKS | {"vjp vs decomposition"} <= set(report.errors)


@pytest.mark.parametrize("x, weight, attrs", CONV1D_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_check_op(x, weight, attrs, bias):
    report = check_op("conv1d", x, weight, *([(weight[0],)] if bias else []), **attrs)
    assert SECOND_ORDER_CHECKS | {"vjp vs decomposition"} <= set(report.errors)


@pytest.mark.parametrize("x, attrs", UNFOLD_CASES, ids=str)
def test_unfold_and_fold_check_op(x, attrs):
    report = check_op("unfold", x, **attrs)
    assert SECOND_ORDER_CHECKS <= set(report.errors)
    cols = dp.Graph().registry["unfold"].shape(x, **attrs)
    report = check_op("fold", cols, output_size=x[2:], **attrs)
    assert SECOND_ORDER_CHECKS <= set(report.errors)


# -- against torch.nn.functional ---------------------------------------------------------------


@pytest.mark.parametrize("x, weight, attrs", CONV2D_CASES + [
    ((3, 1, 8, 8), (8, 1, 3, 3), {}),
    ((3, 8, 4, 4), (16, 8, 3, 3), {"padding": 1, "stride": 2}),
    ((1, 6, 7, 5), (9, 2, 3, 2), {"groups": 3, "stride": (1, 2), "padding": (2, 0), "dilation": (2, 1)}),
], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(x, weight, attrs, bias):
    arrays = (rng.standard_normal(x), rng.standard_normal(weight)) + _with_bias(weight, bias)
    _against_torch("conv2d", F.conv2d, arrays, attrs)


@pytest.mark.parametrize("x, weight, attrs", CONV1D_CASES + [((3, 4, 9), (6, 2, 3), {"groups": 2, "padding": 2})],
                         ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_matches_torch(x, weight, attrs, bias):
    arrays = (rng.standard_normal(x), rng.standard_normal(weight)) + _with_bias(weight, bias)
    _against_torch("conv1d", F.conv1d, arrays, attrs)


@pytest.mark.parametrize("x, attrs", UNFOLD_CASES, ids=str)
def test_unfold_matches_torch(x, attrs):
    _against_torch("unfold", F.unfold, (rng.standard_normal(x),), attrs)


@pytest.mark.parametrize("x, attrs", UNFOLD_CASES, ids=str)
def test_fold_matches_torch_and_is_unfolds_adjoint(x, attrs):
    cols = rng.standard_normal(dp.Graph().registry["unfold"].shape(x, **attrs))

    _against_torch("fold", F.fold, (cols,), dict(attrs, output_size=x[2:]))
    ops = dp.Graph().registry
    image = rng.standard_normal(x)
    folded = ops["fold"].forward(cols, output_size=x[2:], **attrs)
    # <unfold(x), cols> = <x, fold(cols)>: overlapping windows add up in fold
    assert np.vdot(ops["unfold"].forward(image, **attrs), cols) == pytest.approx(np.vdot(image, folded), rel=1e-12)


def test_overlapping_windows_add_up_in_fold():
    ones = np.ones((1, 4, 4))  # a 3x3 image, four 2x2 windows with stride 1: the centre is in all four
    folded = dp.Graph().registry["fold"].forward(ones, output_size=(3, 3), kernel_size=2)
    np.testing.assert_array_equal(folded[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


# -- second derivatives ------------------------------------------------------------------------


def _torch_conv_loss(x, attrs):
    def loss(w):
        return (F.conv2d(_tensor(x), w, **attrs) ** 2).sum()
    return loss


@pytest.mark.parametrize("attrs", [{}, {"stride": 2, "padding": 1}, {"groups": 2, "dilation": (1, 2)}], ids=str)
def test_hessian_through_conv2d_equals_torch(attrs):
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 2 // attrs.get("groups", 1), 2, 2))
    g = dp.Graph()
    xn, wn = g.param("x", x), g.param("w", w)
    loss = (g.ops.conv2d(xn, wn, **attrs) ** 2).sum()
    g.forward()
    expected = torch.autograd.functional.hessian(_torch_conv_loss(x, attrs), _tensor(w)).numpy()
    assert_close(g.hessian(loss, wn), expected)

    def loss_of_x(xt):
        return (F.conv2d(xt, _tensor(w), **attrs) ** 2).sum()

    # with respect to the image: the backward pass of conv2d (a fold) differentiated through unfold again
    assert_close(g.hessian(loss, xn), torch.autograd.functional.hessian(loss_of_x, _tensor(x)).numpy())


def test_mixed_second_derivative_of_a_conv_layer_equals_torch():
    x, w, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    v = rng.standard_normal(w.shape)
    g = dp.Graph()
    xn, wn, bn = g.param("x", x), g.param("w", w), g.param("b", b)
    loss = g.ops.conv2d(xn, wn, bn, padding=1).tanh().sum()
    g.forward()

    def torch_loss(wt):
        return F.conv2d(_tensor(x), wt, _tensor(b), padding=1).tanh().sum()

    _, expected = torch.autograd.functional.hvp(torch_loss, _tensor(w), _tensor(v))
    assert_close(g.hvp(loss, wn, v), expected.numpy())


def test_create_graph_builds_the_backward_pass_of_unfold_and_fold_nodes():
    g = dp.Graph()
    x, w = g.param("x", rng.standard_normal((1, 2, 4, 4))), g.param("w", rng.standard_normal((3, 2, 2, 2)))
    loss = g.ops.conv2d(x, w, stride=2).sum()
    g.forward()
    g.backward(loss, create_graph=True)
    ops_used = {node.op for node in g}
    assert {"fold", "unfold", "matmul"} <= ops_used
    assert x.grad_node.op == "fold"


def test_the_decomposition_is_unfold_reshape_matmul_add():
    g = dp.Graph()
    x, w, b = (g.param(n, rng.standard_normal(s)) for n, s in (("x", (1, 2, 4, 4)), ("w", (3, 2, 2, 2)), ("b", (3,))))
    out = g.registry["conv2d"].decompose(x, w, b)
    assert out.op == "add"
    assert {node.op for node in g if node.op is not None} == {"unfold", "reshape", "matmul", "add"}


# -- shapes that do not fit ----------------------------------------------------------------------


@pytest.mark.parametrize("x, weight, bias, attrs, reason", [
    ((1, 3, 5, 5), (2, 2, 3, 3), None, {}, r"weight takes 2 input channels per group, so 2 with groups=1, "
                                            r"but x has 3 channels"),
    ((1, 3, 5, 5), (4, 1, 3, 3), None, {"groups": 2}, "x has 3 channels, which groups=2 does not divide"),
    ((1, 4, 5, 5), (3, 2, 3, 3), None, {"groups": 2}, "weight has 3 output channels, which groups=2 does not divide"),
    ((1, 2, 5, 5), (2, 2, 3, 3), None, {"groups": 0}, "groups must be a positive int, got 0"),
    ((1, 2, 2, 5), (2, 2, 3, 3), None, {}, r"the kernel's height 3 is larger than the padded input's height "
                                           r"2 \+ 2 \* 0 = 2"),
    ((1, 2, 5, 4), (2, 2, 2, 2), None, {"dilation": (1, 4)}, r"the kernel's width 2 dilated to 5 is larger than the "
                                                             r"padded input's width 4"),
    ((1, 2, 5, 5), (2, 2, 3, 3), (3,), {}, r"bias must have shape \(2,\), one number per output channel, got \(3,\)"),
    ((2, 5, 5), (2, 2, 3, 3), None, {}, r"x must have 4 dimensions \(N, C, H, W\), got shape \(2, 5, 5\)"),
    ((1, 2, 5, 5), (2, 2, 3), None, {}, r"weight must have 4 dimensions"),
    ((1, 2, 5, 5), (2, 2, 3, 3), None, {"stride": 0}, "stride must be at least 1, got 0"),
    ((1, 2, 5, 5), (2, 2, 3, 3), None, {"padding": -1}, "padding must be at least 0, got -1"),
    ((1, 2, 5, 5), (2, 2, 3, 3), None, {"stride": (1, 2, 3)}, r"stride must be an int or a pair of ints"),
    ((1, 2, 5, 5), (2, 2, 3, 3), None, {"padding": "full"}, r"padding must be an int, a pair of ints, 'valid' or "
                                                            r"'same', got 'full'"),
    ((1, 2, 5, 5), (2, 2, 3, 3), None, {"padding": "same", "stride": 2}, r"padding='same' needs stride 1"),
    ((1, 2, 5, 5), (2, 2, 2, 2), None, {"padding": "same"}, r"padding='same' with a dilated kernel of even extent"),
], ids=lambda case: case if isinstance(case, str) else None)
def test_conv2d_rejects_shapes_that_do_not_fit(x, weight, bias, attrs, reason):
    g = dp.Graph()
    inputs = [g.param("x", np.zeros(x)), g.param("w", np.zeros(weight))]
    inputs += [] if bias is None else [g.param("b", np.zeros(bias))]
    described = f"x {x}, w {weight}" + ("" if bias is None else f", b {bias}")
    # the message names the node, the op, its plugin and every input's shape, then says why
    where = f"op node 'conv': conv2d (plugin 'dagprop_plugins.convolution') cannot take inputs of shapes {described}: "
    with pytest.raises(dp.ShapeError, match=re.escape(where) + reason):
        g.op("conv2d", *inputs, name="conv", **attrs)
    assert "conv" not in g  # a failed call leaves the graph as it was


@pytest.mark.parametrize("cols, attrs, reason", [
    ((1, 5, 4), {"output_size": 3, "kernel_size": 2}, r"cols has 5 rows, which is not a multiple of kh \* kw = 2 \* 2"),
    ((1, 4, 5), {"output_size": 3, "kernel_size": 2}, r"cols has 5 columns, but windows of this geometry fit "
                                                      r"2 \* 2 = 4 times"),
    ((4, 4), {"output_size": 3, "kernel_size": 2}, r"cols must have 3 dimensions"),
])
def test_fold_rejects_shapes_that_do_not_fit(cols, attrs, reason):
    g = dp.Graph()
    where = f"op node 'f': fold (plugin 'dagprop_plugins.convolution') cannot take inputs of shapes c {cols}: "
    with pytest.raises(dp.ShapeError, match=re.escape(where) + reason):
        g.op("fold", g.param("c", np.zeros(cols)), name="f", **attrs)


def test_conv1d_rejects_an_image():
    g = dp.Graph()
    with pytest.raises(dp.ShapeError,
                       match=r"conv1d .*: x must have 3 dimensions \(N, C, L\), got shape \(1, 2, 3, 3\)"):
        g.ops.conv1d(g.param("x", np.zeros((1, 2, 3, 3))), g.param("w", np.zeros((1, 2, 3))))


# -- generated code --------------------------------------------------------------------------


@pytest.mark.parametrize("attrs, attrs_1d", [
    ({}, {}),
    ({"stride": 2, "padding": 1, "dilation": (1, 2)}, {"stride": 2, "padding": 1, "dilation": 2}),
    ({"padding": "same"}, {"padding": "same"}),
], ids=str)
def test_generated_code_writes_the_convolutions_with_windows_and_einsum(attrs, attrs_1d):
    g = dp.Graph()
    x, w, b = (g.param(n, rng.standard_normal(s)) for n, s in (("x", (2, 2, 6, 6)), ("w", (3, 2, 3, 3)), ("b", (3,))))
    x1, w1 = g.param("x1", rng.standard_normal((2, 2, 9))), g.param("w1", rng.standard_normal((3, 2, 3)))
    c = g.param("c", rng.standard_normal((2, 8, 9)))
    outputs = [g.op("conv2d", x, w, b, name="y", **attrs),
               g.op("unfold", x, name="u", kernel_size=2, stride=2, padding=1),
               g.op("fold", c, name="f", output_size=(5, 5), kernel_size=2, stride=2, padding=1),
               g.op("conv1d", x1, w1, name="y1", **attrs_1d)]
    loss = outputs[0].sum()
    for out in outputs:
        loss = loss + (out * out).sum()
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    # the forward pass of conv2d and conv1d as an einsum over the windows, col2im one line per kernel offset
    assert "y = np.einsum('nchwij,ocij->nohw', np.lib.stride_tricks.sliding_window_view(" in source
    assert "y1 = np.einsum('ncli,oci->nol', np.lib.stride_tricks.sliding_window_view(" in source
    # its backward pass: each kernel offset sends d_y back through its weights; d_w weighs the windows by d_y
    assert "] += np.einsum('nohw,oc->nchw', d_y, w[:, :, 1, 2])" in source
    assert "d_w = np.einsum('nchwij,nohw->ocij', np.lib.stride_tricks.sliding_window_view(" in source
    assert "f[:, :, 1:6:2, 1:6:2] += c.reshape(2, 2, 2, 2, 3, 3)[:, :, 1, 1]" in source
    assert "ops['conv2d']" not in source and "ops['unfold']" not in source and "ops['fold']" not in source
    namespace = {}
    exec(source, namespace)
    values = namespace["forward"](g.registry, {n.name: n.value for n in g if n.op is None})
    for out in outputs:
        assert_close(values[out.name], out.value, rtol=1e-12)
    grads = namespace["backward"](g.registry, values)
    for leaf in (x, w, b, c, x1, w1):
        assert_close(grads[leaf.name], leaf.grad, rtol=1e-12)
