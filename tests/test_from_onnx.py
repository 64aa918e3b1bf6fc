"""dagprop.from_onnx: models built with onnx.helper against numpy references written here and
gradients against central differences; a torch export against torch; malformed files; the
unsupported-op error; the converter hook."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

import dagprop as dp
from dagprop.importers.onnx import converters, example_inputs, read_model, tiny_model_bytes

from helpers import central_difference

RNG_SEED = 20240612
EPS_BN, EPS_LN = float(np.float32(1e-3)), float(np.float32(1e-5))  # float attributes are float32 in a file
erf = np.vectorize(math.erf)


# -- building models ---------------------------------------------------------------------------------


def make_model(nodes, inputs, outputs, initializers=(), *, opset=17, extra_opsets=()):
    graph = oh.make_graph(nodes, "test", inputs, outputs, initializer=list(initializers))
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset), *extra_opsets])
    model.ir_version = 8 if opset < 19 else 9 if opset < 21 else 10
    return model


def tensor_info(name, shape, elem_type=TensorProto.FLOAT):
    return oh.make_tensor_value_info(name, elem_type, shape)


def initializer(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def weights(rng, shape, scale=0.5):
    """Float32 weights, as real files hold; the references compute in float64 from the same numbers."""
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def ints(name, values):
    return initializer(name, np.array(values, dtype=np.int64))


def scalar_constant(output, value, dtype=np.float32):
    return oh.make_node("Constant", [], [output], value=numpy_helper.from_array(np.array(value, dtype=dtype)))


def check_model(model, inputs, params, reference, *, rtol=1e-12):
    """Values against ``reference(params, inputs)``; every param's gradient against central differences.

    The loss weights each output by fixed random numbers, so that an output whose plain sum
    does not depend on the params (a softmax) still has a gradient to check.
    """
    g = dp.from_onnx(model, inputs=inputs)
    expected = reference(params, inputs)
    names = [o.name for o in model.graph.output]
    rng = np.random.default_rng(1)
    mix = {name: rng.standard_normal(np.shape(expected[name])) for name in names}
    terms = [g.op("sum", g.op("mul", g[name], mix[name])) for name in names]
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    g.forward()
    g.backward(loss)
    for name in names:
        assert g[name].value.shape == np.shape(expected[name]), name
        np.testing.assert_allclose(g[name].value, expected[name], rtol=rtol, atol=1e-12, err_msg=name)

    def reference_loss(changed):
        out = reference(changed, inputs)
        return sum(float((out[name] * mix[name]).sum()) for name in names)

    for name, value in params.items():
        numeric = central_difference(lambda v: reference_loss({**params, name: v}), value)
        np.testing.assert_allclose(g[name].grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    return g


def as_float64(params):
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


# -- numpy references --------------------------------------------------------------------------------


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def coerced_2d(function, x, axis):
    """ONNX Softmax before opset 13: over the axes from ``axis`` on, the input taken as a matrix."""
    rows = math.prod(x.shape[:axis])
    return function(x.reshape(rows, -1), axis=1).reshape(x.shape)


def conv2d(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), group=1):
    """Direct convolution; ``pads`` in ONNX order (top, left, bottom, right)."""
    top, left, bottom, right = pads
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, h, width = x.shape
    o, cg, kh, kw = w.shape
    oh_, ow = (h - kh) // stride[0] + 1, (width - kw) // stride[1] + 1
    out = np.zeros((n, o, oh_, ow))
    per_group = o // group
    for k in range(group):
        xs = x[:, k * cg:(k + 1) * cg]
        ws = w[k * per_group:(k + 1) * per_group]
        for i in range(oh_):
            for j in range(ow):
                patch = xs[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
                out[:, k * per_group:(k + 1) * per_group, i, j] = np.einsum("nckl,ockl->no", patch, ws)
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def pool2d(x, kernel, stride, pads=(0, 0, 0, 0), *, kind, count_include_pad=False):
    """Max or average pooling over windows clipped to the padded input; ``pads`` as for conv2d."""
    top, left, bottom, right = pads
    n, c, h, w = x.shape
    out_h = (h + top + bottom - kernel[0]) // stride[0] + 1
    out_w = (w + left + right - kernel[1]) // stride[1] + 1
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * stride[0] - top, j * stride[1] - left
            r1, c1 = r0 + kernel[0], c0 + kernel[1]
            window = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
            if kind == "max":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                count = kernel[0] * kernel[1] if count_include_pad else window.shape[2] * window.shape[3]
                out[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return out


def layer_norm(x, scale, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def gelu(x):
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


# -- an MLP: Gemm, Relu, Reshape, Softmax and LogSoftmax at two opsets ------------------------------------


def mlp_model(opset, rng):
    params = {"W1": weights(rng, (5, 3)), "b1": weights(rng, (5,)), "W2": weights(rng, (5, 6)),
              "b2": weights(rng, (1, 6)), "W3": weights(rng, (4, 4))}
    nodes = [
        oh.make_node("Gemm", ["x", "W1", "b1"], ["h"], transB=1),
        oh.make_node("Relu", ["h"], ["r"]),
        oh.make_node("Gemm", ["r", "W2", "b2"], ["z"], alpha=0.5, beta=2.0),
        oh.make_node("Gemm", ["W3", "z"], ["u"], transA=1),
        oh.make_node("Reshape", ["u", "shape"], ["u3"]),
        oh.make_node("Softmax", ["u3"], ["p"], axis=1),
        oh.make_node("LogSoftmax", ["u3"], ["logp"]),
    ]
    inits = [initializer(k, v) for k, v in params.items()] + [ints("shape", [0, 2, 3])]
    model = make_model(nodes, [tensor_info("x", [4, 3])], [tensor_info("p", [4, 2, 3]), tensor_info("logp", [4, 2, 3])],
                       inits, opset=opset)
    return model, as_float64(params)


def mlp_reference(opset):
    def reference(p, inputs):
        h = np.maximum(inputs["x"] @ p["W1"].T + p["b1"], 0)
        z = 0.5 * (h @ p["W2"]) + 2.0 * p["b2"]
        u3 = (p["W3"].T @ z).reshape(4, 2, 3)
        if opset >= 13:
            return {"p": softmax(u3, axis=1), "logp": log_softmax(u3, axis=-1)}
        return {"p": coerced_2d(softmax, u3, 1), "logp": coerced_2d(log_softmax, u3, 1)}
    return reference


class TestMLP:
    @pytest.mark.parametrize("opset", [11, 13, 17])
    def test_values_and_gradients(self, opset):
        rng = np.random.default_rng(RNG_SEED)
        model, params = mlp_model(opset, rng)
        check_model(model, {"x": rng.standard_normal((4, 3))}, params, mlp_reference(opset))

    def test_names_kinds_and_nodes(self):
        rng = np.random.default_rng(RNG_SEED)
        model, _ = mlp_model(13, rng)
        g = dp.from_onnx(model)
        assert [n.name for n in g.params] == ["W1", "b1", "W2", "b2", "W3"]
        assert [(n.name, n.kind, n.value) for n in g if n.kind == "input"] == [("x", "input", None)]
        assert g["p"].op == "softmax" and g["logp"].op == "log_softmax"
        assert g["h"].op == "add" and g["h"].inputs[0].op == "matmul"
        assert g["h"].inputs[0].inputs[1].op == "transpose"  # transB=1
        assert "shape" not in g  # an integer initializer is used now, never a node
        assert g["u3"].attrs == {"shape": (4, 2, 3)}  # the 0 copied the input's first axis

    def test_inputs_can_be_fed_later(self):
        rng = np.random.default_rng(RNG_SEED)
        model, params = mlp_model(13, rng)
        g = dp.from_onnx(model)
        x = rng.standard_normal((4, 3))
        g.forward(feeds={"x": x})
        np.testing.assert_allclose(g["p"].value, mlp_reference(13)(params, {"x": x})["p"], rtol=1e-12)

    def test_the_opset_11_softmax_needs_shapes_and_says_so(self):
        node = oh.make_node("Softmax", ["x"], ["p"], axis=1, name="soft")
        model = make_model([node], [tensor_info("x", ["batch", 2, 3])], [tensor_info("p", ["batch", 2, 3])], opset=11)
        with pytest.raises(dp.LoadError, match=r"ONNX node 'soft' \(Softmax, outputs p\).*needs the shape of the "
                                               r"input \(x\), which is not known.*inputs="):
            dp.from_onnx(model)
        g = dp.from_onnx(model, inputs={"x": np.arange(12.0).reshape(2, 2, 3)})
        g.forward()
        np.testing.assert_allclose(g["p"].value, coerced_2d(softmax, np.arange(12.0).reshape(2, 2, 3), 1))

    def test_given_inputs_are_checked_against_the_declared_shape(self):
        rng = np.random.default_rng(RNG_SEED)
        model, _ = mlp_model(13, rng)
        with pytest.raises(dp.LoadError, match=r"input 'x' is declared with shape \(4, 3\).*gives it shape \(3, 4\)"):
            dp.from_onnx(model, inputs={"x": np.zeros((3, 4))})
        with pytest.raises(dp.LoadError, match="'y'.*its inputs are: x"):
            dp.from_onnx(model, inputs={"y": np.zeros((4, 3))})


# -- a CNN: Conv, BatchNormalization, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm ----------


def cnn_model(rng, variant):
    params = {"W1": weights(rng, (4, 3, 3, 3)), "B1": weights(rng, (4,)), "scale": 1 + weights(rng, (4,), 0.2),
              "bias": weights(rng, (4,)), "W2": weights(rng, (6, 2, 2, 2)), "W3": weights(rng, (5, 6)),
              "b3": weights(rng, (5,))}
    stats = {"mean": weights(rng, (4,)), "var": (0.5 + rng.random(4)).astype(np.float32)}
    if variant == "pads":
        pool = oh.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2])
        conv2 = oh.make_node("Conv", ["m", "W2"], ["c2"], group=2, pads=[0, 0, 1, 1])
    else:  # auto_pad and ceil_mode
        pool = oh.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
        conv2 = oh.make_node("Conv", ["m", "W2"], ["c2"], group=2, auto_pad="SAME_UPPER")
    nodes = [
        oh.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        oh.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-3),
        oh.make_node("Relu", ["bn"], ["r"]),
        pool,
        conv2,
        oh.make_node("AveragePool", ["c2"], ["a"], kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
        oh.make_node("GlobalAveragePool", ["a"], ["gap"]),
        oh.make_node("Flatten", ["gap"], ["flat"]),
        oh.make_node("Gemm", ["flat", "W3", "b3"], ["y"], transB=1),
    ]
    inits = [initializer(k, v) for k, v in {**params, **stats}.items()]
    model = make_model(nodes, [tensor_info("x", [2, 3, 7, 7])], [tensor_info("y", [2, 5])], inits, opset=13)
    return model, as_float64(params), as_float64(stats)


def cnn_reference(variant, stats):
    def reference(p, inputs):
        c1 = conv2d(inputs["x"], p["W1"], p["B1"], pads=(1, 1, 1, 1))
        bn = ((c1 - stats["mean"].reshape(1, -1, 1, 1)) / np.sqrt(stats["var"].reshape(1, -1, 1, 1) + EPS_BN)
              * p["scale"].reshape(1, -1, 1, 1) + p["bias"].reshape(1, -1, 1, 1))
        r = np.maximum(bn, 0)
        if variant == "pads":
            m = pool2d(r, (2, 2), (2, 2), kind="max")               # 7x7 -> 3x3
        else:
            m = pool2d(r, (2, 2), (2, 2), (0, 0, 1, 1), kind="max")  # ceil_mode: 7x7 -> 4x4
        c2 = conv2d(m, p["W2"], None, pads=(0, 0, 1, 1), group=2)   # SAME_UPPER with a 2x2 kernel: the same
        a = pool2d(c2, (2, 2), (1, 1), (1, 1, 1, 1), kind="avg", count_include_pad=False)
        flat = a.mean(axis=(2, 3))
        return {"y": flat @ p["W3"].T + p["b3"]}
    return reference


class TestCNN:
    @pytest.mark.parametrize("variant", ["pads", "auto_pad_and_ceil_mode"])
    def test_values_and_gradients(self, variant):
        rng = np.random.default_rng(RNG_SEED)
        model, params, stats = cnn_model(rng, variant)
        g = check_model(model, {"x": rng.standard_normal((2, 3, 7, 7))}, params, cnn_reference(variant, stats))
        assert g["c1"].op == "conv2d" and g["c2"].op == "conv2d" and g["m"].op == "max_pool2d"
        assert g["c2"].inputs[0].op == "pad"  # the uneven padding, before a conv2d with padding 0
        assert g["a"].attrs["count_include_pad"] is False  # ONNX's default, unlike torch's
        assert g["bn"].op == "batch_norm" and g["bn"].attrs["training"] is False

    def test_running_statistics_are_consts(self):
        rng = np.random.default_rng(RNG_SEED)
        model, _, _ = cnn_model(rng, "pads")
        g = dp.from_onnx(model, inputs={"x": rng.standard_normal((2, 3, 7, 7))})
        assert g["mean"].kind == "const" and g["var"].kind == "const"
        assert [p.name for p in g.params] == ["W1", "B1", "scale", "bias", "W2", "W3", "b3"]

    def test_gradient_of_the_input(self):
        rng = np.random.default_rng(RNG_SEED)
        model, params, stats = cnn_model(rng, "pads")
        x = rng.standard_normal((2, 3, 7, 7))
        g = dp.from_onnx(model, inputs={"x": x}, inputs_require_grad=True)
        loss = g["y"].sum()
        g.forward()
        g.backward(loss)
        reference = cnn_reference("pads", stats)
        numeric = central_difference(lambda v: reference(params, {"x": v})["y"].sum(), x)
        np.testing.assert_allclose(g["x"].grad, numeric, rtol=1e-6, atol=1e-8)


# -- a transformer-ish block at two opsets -----------------------------------------------------------------


def transformer_model(opset, rng):
    """Embedding and position lookup (Gather), layer norm, one two-head attention (MatMul, Reshape, Transpose,
    Div, Softmax), GELU, a [CLS]-like mean joined in front (ReduceMean, Unsqueeze, Concat), ReduceSum, Squeeze
    and a Gather of one position.

    Opset 11: Unsqueeze, Squeeze, ReduceMean and ReduceSum take ``axes`` as an attribute, layer norm is
    written out (ReduceMean, Sub, Pow, Add, Sqrt, Div) and GELU with Erf. Opset 20: ``axes`` are inputs,
    LayerNormalization and Gelu are single ops.
    """
    params = {"E": weights(rng, (10, 8)), "P": weights(rng, (6, 8)), "ln_s": 1 + weights(rng, (8,), 0.2),
              "ln_b": weights(rng, (8,), 0.2), "Wq": weights(rng, (8, 8)), "Wk": weights(rng, (8, 8)),
              "Wv": weights(rng, (8, 8))}
    inits = [initializer(k, v) for k, v in params.items()]
    inits += [ints("positions", [0, 1, 2, 3]), ints("heads", [0, 0, 2, 4]), ints("merged", [0, 0, -1])]
    nodes = [
        oh.make_node("Gather", ["E", "tokens"], ["emb"]),
        oh.make_node("Gather", ["P", "positions"], ["pos"]),
        oh.make_node("Add", ["emb", "pos"], ["h"]),
    ]
    axes_as_inputs = opset >= 13

    def with_axes(op, inputs, output, axes, **attrs):
        """An op whose axes are an attribute before opset 13 (18 for ReduceMean), an input from then on."""
        moved = opset >= (18 if op == "ReduceMean" else 13)
        if moved:
            name = f"{output}_axes"
            inits.append(ints(name, axes))
            return oh.make_node(op, [*inputs, name], [output], **attrs)
        return oh.make_node(op, inputs, [output], axes=axes, **attrs)

    if opset >= 17:
        nodes.append(oh.make_node("LayerNormalization", ["h", "ln_s", "ln_b"], ["n"], axis=-1, epsilon=1e-5))
    else:
        nodes += [
            with_axes("ReduceMean", ["h"], "mu", [-1]),
            oh.make_node("Sub", ["h", "mu"], ["d"]),
            scalar_constant("two", 2.0),
            oh.make_node("Pow", ["d", "two"], ["d2"]),
            with_axes("ReduceMean", ["d2"], "var", [-1]),
            scalar_constant("eps", 1e-5),
            oh.make_node("Add", ["var", "eps"], ["var_eps"]),
            oh.make_node("Sqrt", ["var_eps"], ["std"]),
            oh.make_node("Div", ["d", "std"], ["normed"]),
            oh.make_node("Mul", ["normed", "ln_s"], ["scaled"]),
            oh.make_node("Add", ["scaled", "ln_b"], ["n"]),
        ]
    nodes += [
        oh.make_node("MatMul", ["n", "Wq"], ["q"]),
        oh.make_node("MatMul", ["n", "Wk"], ["k"]),
        oh.make_node("MatMul", ["n", "Wv"], ["v"]),
        oh.make_node("Reshape", ["q", "heads"], ["q4"]),
        oh.make_node("Reshape", ["k", "heads"], ["k4"]),
        oh.make_node("Reshape", ["v", "heads"], ["v4"]),
        oh.make_node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        oh.make_node("Transpose", ["k4"], ["kT"], perm=[0, 2, 3, 1]),
        oh.make_node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        oh.make_node("MatMul", ["qh", "kT"], ["scores"]),
        scalar_constant("root_d", 2.0),
        oh.make_node("Div", ["scores", "root_d"], ["scaled_scores"]),
        oh.make_node("Softmax", ["scaled_scores"], ["att"], axis=-1),
        oh.make_node("MatMul", ["att", "vh"], ["ctx"]),
        oh.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        oh.make_node("Reshape", ["ctx_t", "merged"], ["joined"]),
    ]
    if opset >= 20:
        nodes.append(oh.make_node("Gelu", ["joined"], ["act"]))
    else:
        nodes += [
            scalar_constant("root2", math.sqrt(2.0), np.float64),
            oh.make_node("Div", ["joined", "root2"], ["scaled_in"]),
            oh.make_node("Erf", ["scaled_in"], ["erf"]),
            scalar_constant("one", 1.0),
            oh.make_node("Add", ["erf", "one"], ["erf1"]),
            oh.make_node("Mul", ["joined", "erf1"], ["x_erf1"]),
            scalar_constant("half", 0.5),
            oh.make_node("Mul", ["x_erf1", "half"], ["act"]),
        ]
    nodes += [
        with_axes("ReduceMean", ["act"], "pooled", [1], keepdims=0),
        with_axes("Unsqueeze", ["pooled"], "cls", [1]),
        oh.make_node("Concat", ["cls", "act"], ["seq"], axis=1),
        with_axes("ReduceSum", ["seq"], "total", [2], keepdims=1),
        with_axes("Squeeze", ["total"], "y", [0, -1]),
        scalar_constant("first", 0, np.int64),
        oh.make_node("Gather", ["seq", "first"], ["first_token"], axis=1),
    ]
    assert axes_as_inputs == (opset >= 13)
    model = make_model(nodes, [tensor_info("tokens", [1, 4], TensorProto.INT64)],
                       [tensor_info("y", [5]), tensor_info("first_token", [1, 8])], inits, opset=opset)
    return model, as_float64(params)


def transformer_reference(p, inputs):
    tokens = inputs["tokens"].astype(np.int64)
    h = p["E"][tokens] + p["P"][[0, 1, 2, 3]]
    n = layer_norm(h, p["ln_s"], p["ln_b"], EPS_LN)

    def heads(z):
        return z.reshape(1, 4, 2, 4).transpose(0, 2, 1, 3)
    q, k, v = heads(n @ p["Wq"]), heads(n @ p["Wk"]), heads(n @ p["Wv"])
    att = softmax(q @ k.transpose(0, 1, 3, 2) / 2.0, axis=-1)
    joined = (att @ v).transpose(0, 2, 1, 3).reshape(1, 4, 8)
    act = gelu(joined)
    seq = np.concatenate([act.mean(axis=1, keepdims=True), act], axis=1)
    return {"y": seq.sum(axis=2), "first_token": seq[:, 0]}


class TestTransformerBlock:
    @pytest.mark.parametrize("opset", [11, 13, 18, 20])
    def test_values_and_gradients(self, opset):
        rng = np.random.default_rng(RNG_SEED)
        model, params = transformer_model(opset, rng)
        tokens = np.array([[1, 5, 2, 7]], dtype=np.float64)
        g = check_model(model, {"tokens": tokens}, params,
                        lambda p, inputs: {k: np.squeeze(v, 0) if k == "y" else v
                                           for k, v in transformer_reference(p, inputs).items()})
        assert g["emb"].op == "embedding" and g["pos"].op == "getitem"
        assert g["n"].op == ("layer_norm" if opset >= 17 else "add")
        assert g["act"].op == ("gelu" if opset >= 20 else "mul")
        assert g["cls"].op == "unsqueeze" and g["y"].op == "squeeze"

    def test_repeated_tokens_sum_their_gradient_rows(self):
        rng = np.random.default_rng(RNG_SEED)
        model, params = transformer_model(20, rng)
        g = dp.from_onnx(model, inputs={"tokens": [[3, 3, 3, 3]]})
        loss = g["y"].sum()
        g.forward()
        g.backward(loss)
        assert np.count_nonzero(np.abs(g["E"].grad).sum(axis=1)) == 1


# -- PyTorch exports -------------------------------------------------------------------------------------


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.MaxPool2d(2)
        self.avg = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(4, 6)
        self.ln = torch.nn.LayerNorm(6)
        self.embed = torch.nn.Embedding(7, 6)

    def forward(self, x, tokens):
        h = self.pool(torch.relu(self.bn(self.conv(x))))
        h = self.ln(self.fc(self.avg(h).flatten(1)))                 # (2, 6)
        e = self.embed(tokens)                                         # (2, 3, 6)
        scores = torch.softmax(e @ h.unsqueeze(-1) / 2.0, dim=1)      # (2, 3, 1)
        mixed = (scores * e).sum(dim=1)                                # (2, 6)
        return torch.nn.functional.gelu(mixed + h), torch.log_softmax(h.pow(2).mean(dim=0, keepdim=True), dim=-1)


def export(module, args, **options):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of dynamo
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=17, input_names=["x", "tokens"],
                          output_names=["y", "z"], **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = TorchNet().double().eval()
    with torch.no_grad():  # statistics unlike the defaults, so that the exporter keeps them apart
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model


class TestTorchExport:

    @pytest.mark.parametrize("options", [{}, {"training": torch.onnx.TrainingMode.PRESERVE,
                                              "do_constant_folding": False}], ids=["folded", "as_written"])
    def test_values_and_gradients_match_torch(self, net, options):
        x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
        tokens = torch.tensor([[1, 4, 6], [0, 4, 2]])
        g = dp.from_onnx(export(net, (x, tokens), **options), inputs={"x": x.detach().numpy(), "tokens": tokens},
                         inputs_require_grad=True)
        rng = np.random.default_rng(3)
        mix_y, mix_z = rng.standard_normal((2, 6)), rng.standard_normal((1, 6))
        loss = g.op("sum", g.op("mul", g["y"], mix_y)) + g.op("sum", g.op("mul", g["z"], mix_z))
        g.forward()
        g.backward(loss)

        net.zero_grad()
        y, z = net(x, tokens)
        ((y * torch.from_numpy(mix_y)).sum() + (z * torch.from_numpy(mix_z)).sum()).backward()

        def close(ours, theirs, what):
            theirs = theirs.detach().numpy()
            assert np.max(np.abs(ours - theirs)) <= 1e-9 * np.max(np.abs(theirs)), what

        close(g["y"].value, y, "y")
        close(g["z"].value, z, "z")
        close(g["x"].grad, x.grad, "x.grad")
        compared = [name for name, _ in net.named_parameters() if name in g]
        for name, parameter in net.named_parameters():
            if name in g:
                close(g[name].grad, parameter.grad, name)
        assert {"fc.weight", "fc.bias", "ln.weight", "ln.bias", "embed.weight"} <= set(compared)
        if options:
            assert {"conv.weight", "bn.weight", "bn.bias"} <= set(compared)


# -- malformed files ---------------------------------------------------------------------------------------


class TestMalformed:
    def test_random_bytes(self, tmp_path):
        path = tmp_path / "random.onnx"
        path.write_bytes(np.random.default_rng(0).bytes(300))
        with pytest.raises(dp.LoadError, match="random.onnx"):
            dp.from_onnx(path)

    def test_truncated_model(self, tmp_path):
        rng = np.random.default_rng(RNG_SEED)
        model, _ = mlp_model(13, rng)
        data = model.SerializeToString()
        path = tmp_path / "truncated.onnx"
        path.write_bytes(data[:len(data) // 2])
        with pytest.raises(dp.LoadError, match=r"truncated\.onnx"):
            dp.from_onnx(path)
        with pytest.raises(dp.LoadError, match=r"cannot read ONNX model \(\d+ bytes\)"):
            dp.from_onnx(data[:len(data) // 2])

    def test_a_model_failing_the_checker(self, tmp_path):
        node = oh.make_node("Relu", ["undefined"], ["y"])
        model = make_model([node], [tensor_info("x", [2])], [tensor_info("y", [2])])
        path = tmp_path / "bad.onnx"
        path.write_bytes(model.SerializeToString())
        with pytest.raises(dp.LoadError, match=r"'.*bad\.onnx' fails onnx\.checker: .*undefined"):
            dp.from_onnx(path)

    def test_missing_file_and_wrong_type(self, tmp_path):
        with pytest.raises(dp.LoadError, match="no such file"):
            dp.from_onnx(tmp_path / "missing.onnx")
        with pytest.raises(dp.LoadError, match="not a regular file"):
            dp.from_onnx(tmp_path)
        with pytest.raises(dp.LoadError, match="takes a path, the bytes of a model or an onnx.ModelProto"):
            dp.from_onnx(42)

    def test_an_empty_protobuf_is_not_a_model(self):
        with pytest.raises(dp.LoadError, match="no graph"):
            dp.from_onnx(b"")

    def test_read_model_does_not_change_the_given_model(self):
        model = onnx.load_model_from_string(tiny_model_bytes())
        before = model.SerializeToString()
        read_model(model)
        assert model.SerializeToString() == before


# -- unsupported ops and the converter hook -------------------------------------------------------------------


def model_with_unsupported_ops():
    nodes = [oh.make_node("Sin", ["x"], ["a"]), oh.make_node("Cos", ["a"], ["b"]), oh.make_node("Sin", ["b"], ["c"]),
             oh.make_node("Relu", ["c"], ["d"]), oh.make_node("Foo", ["d"], ["y"], domain="com.example")]
    return make_model(nodes, [tensor_info("x", [3])], [tensor_info("y", [3])],
                      extra_opsets=[oh.make_opsetid("com.example", 1)])


class SinCos:
    @dp.hookimpl
    def dagprop_onnx_converters(self):
        return {"Sin": convert_sin, "Cos": convert_cos, "com.example:Foo": convert_foo}


# dagprop has no sin or cos op: these stand-ins (2x, -x, exp) only show the hook at work
def convert_sin(ctx, x):
    return ctx.output("mul", x, 2.0)


def convert_cos(ctx, x):
    return ctx.output("neg", x)


def convert_foo(ctx, x):
    return ctx.output("exp", x)


class OtherRelu:
    @dp.hookimpl
    def dagprop_onnx_converters(self):
        return {"Relu": convert_cos}


class TestUnsupportedAndPlugins:
    def test_every_unsupported_op_is_listed_once_with_its_count(self):
        with pytest.raises(dp.UnsupportedOpsError) as caught:
            dp.from_onnx(model_with_unsupported_ops())
        error = caught.value
        assert error.ops == {"Sin": 2, "Cos": 1, "com.example:Foo": 1}
        message = str(error)
        assert "Sin (2), Cos (1), com.example:Foo (1)" in message
        assert "dagprop_onnx_converters" in message and "plugins=" in message
        assert isinstance(error, dp.DagpropError)

    def test_a_plugin_adds_converters(self):
        g = dp.from_onnx(model_with_unsupported_ops(), inputs={"x": [0.5, -1.0, 2.0]}, plugins=[SinCos()])
        g.forward()
        x = np.array([0.5, -1.0, 2.0])
        np.testing.assert_allclose(g["y"].value, np.exp(np.maximum(2 * -(2 * x), 0)))  # Foo(Relu(Sin(Cos(Sin x))))
        assert g["y"].op == "exp"

    def test_two_plugins_converting_one_op_type_are_an_error_naming_both(self):
        with pytest.raises(dp.PluginError, match=r"'Relu' is converted by two plugins, 'dagprop_plugins.onnx_conv"
                                                 r"erters' and '.*OtherRelu'"):
            dp.from_onnx(tiny_model_bytes(), plugins=[OtherRelu()])

    def test_a_converter_that_cannot_take_the_attributes_is_named(self):
        node = oh.make_node("Relu", ["x"], ["y"])
        node.attribute.append(oh.make_attribute("alpha", 2.0))
        model = make_model([node], [tensor_info("x", [2])], [tensor_info("y", [2])])
        with pytest.raises(dp.LoadError, match=r"ONNX Relu node \(outputs y\).*convert_relu.*alpha"):
            dp.from_onnx(model, check=False)

    def test_the_builtin_table_comes_through_the_hook(self):
        table = converters()
        for op_type in ("Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Softmax",
                        "LogSoftmax", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
                        "LayerNormalization", "Gelu", "Reshape", "Flatten", "Transpose", "Concat", "Gather",
                        "Unsqueeze", "Squeeze", "ReduceMean", "ReduceSum", "Erf", "Pow", "Sqrt", "Constant",
                        "Identity"):
            assert table[op_type].__module__ == "dagprop_plugins.onnx_converters", op_type

    def test_the_converter_module_does_not_import_onnx(self):
        import subprocess
        import sys

        code = "import sys, dagprop_plugins.onnx_converters; print('onnx' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.stdout.strip() == "False", result.stderr


# -- smaller behaviours ------------------------------------------------------------------------------------


class TestDetails:
    def test_an_output_that_is_an_alias_gets_a_node_named_as_it(self):
        nodes = [oh.make_node("Relu", ["x"], ["r"]), oh.make_node("Identity", ["r"], ["y"])]
        model = make_model(nodes, [tensor_info("x", [2])], [tensor_info("y", [2])])
        g = dp.from_onnx(model, inputs={"x": [-1.0, 1.0]})
        g.forward()
        assert g["y"].value.tolist() == [0.0, 1.0] and g["y"].inputs[0].name == "r"

    def test_shape_computations_are_folded(self):
        nodes = [oh.make_node("Shape", ["x"], ["s"]),
                 oh.make_node("Gather", ["s", "zero"], ["n"]),
                 oh.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
                 oh.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
                 oh.make_node("Reshape", ["x", "target"], ["y"])]
        inits = [ints("zero", 0), ints("axes", [0]), ints("minus_one", [-1])]
        model = make_model(nodes, [tensor_info("x", [2, 3, 2])], [tensor_info("y", [2, 6])], inits, opset=13)
        g = dp.from_onnx(model, inputs={"x": np.arange(12.0).reshape(2, 3, 2)})
        assert [n.op for n in g if n.kind == "op"] == ["reshape"]
        g.forward()
        assert g["y"].value.shape == (2, 6)

    def test_torch_style_node_names_become_scopes(self):
        nodes = [oh.make_node("Relu", ["x"], ["/block/act/Relu_output_0"], name="/block/act/Relu"),
                 oh.make_node("Neg", ["/block/act/Relu_output_0"], ["y"], name="/Neg")]
        model = make_model(nodes, [tensor_info("x", [2])], [tensor_info("y", [2])])
        g = dp.from_onnx(model)
        assert g["/block/act/Relu_output_0"].scope == ("block", "act") and g["y"].scope == ()

    def test_slice_and_split(self):
        nodes = [oh.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["s"]),
                 oh.make_node("Split", ["s", "sizes"], ["a", "b"], axis=1)]
        inits = [ints("starts", [1, 0]), ints("ends", [2**63 - 1, 5]), ints("axes", [0, -1]), ints("steps", [1, 2]),
                 ints("sizes", [1, 2])]
        model = make_model(nodes, [tensor_info("x", [3, 5])], [tensor_info("a", [2, 1]), tensor_info("b", [2, 2])],
                           inits, opset=13)
        x = np.arange(15.0).reshape(3, 5)
        g = dp.from_onnx(model, inputs={"x": x})
        g.forward()
        np.testing.assert_array_equal(g["a"].value, x[1:, 0:5:2][:, :1])
        np.testing.assert_array_equal(g["b"].value, x[1:, 0:5:2][:, 1:])

    def test_example_inputs_are_seeded_and_integer_inputs_valid_indices(self):
        rng = np.random.default_rng(RNG_SEED)
        model, _ = transformer_model(20, rng)
        first, again = example_inputs(model, seed=5), example_inputs(model, seed=5)
        assert first["tokens"].shape == (1, 4)
        np.testing.assert_array_equal(first["tokens"], again["tokens"])
        assert set(first["tokens"].ravel()) <= set(range(10))
        assert example_inputs(model, given={"tokens": None}) == {}

    def test_tiny_model(self):
        g = dp.from_onnx(tiny_model_bytes(), inputs={"x": [[-1.0, 2.0]]})
        g.forward()
        assert g["y"].value.tolist() == [[0.0, 2.0]]
