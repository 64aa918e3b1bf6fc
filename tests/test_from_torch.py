"""dp.from_torch: PyTorch modules as dagprop graphs whose values and gradients are torch's."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import dagprop as dp

TOLERANCE = 1e-9  # relative, in float64


# -- the three models ----------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class LeNet(nn.Module):
    """conv, batch norm (eval mode), relu, max pool, flatten, linear, log-softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, image):
        h = F.max_pool2d(F.relu(self.bn(self.conv1(image))), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.log_softmax(self.fc(torch.flatten(h, 1)), dim=1)


class Attention(nn.Module):
    def __init__(self, d, fused):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.fused = fused

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return torch.softmax(scores, dim=-1) @ v


class Block(nn.Module):
    """Embedding, then a pre-norm transformer block: attention and a GELU MLP, each with a residual."""

    def __init__(self, vocab=11, d=8, fused=False):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, fused)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, tokens):
        h = self.embed(tokens)
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


def lenet():
    torch.manual_seed(1)
    model = LeNet().double()
    with torch.no_grad():  # running statistics other than 0 and 1, so that eval mode uses them visibly
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model.eval(), (torch.randn(2, 1, 12, 12, dtype=torch.float64, requires_grad=True),)


def mlp():
    torch.manual_seed(0)
    return MLP().double(), (torch.randn(5, 4, dtype=torch.float64, requires_grad=True),)


def block(fused=False):
    torch.manual_seed(2)
    return Block(fused=fused).double(), (torch.randint(0, 11, (2, 5)),)


MODELS = {"mlp": mlp, "lenet": lenet, "transformer_block": block,
          "transformer_block_fused_attention": lambda: block(fused=True)}


def run_both(model, inputs, graph):
    """Forward and backward in torch and in dagprop from the same scalar: sum(output * R), R fixed."""
    out = model(*inputs)
    weights = np.random.default_rng(0).standard_normal(tuple(out.shape))
    (out * torch.from_numpy(weights)).sum().backward()
    loss = (graph["output"] * graph.const(weights)).sum()
    graph.forward()
    graph.backward(loss)
    return out


def relative_error(ours, theirs, scale):
    return float(np.max(np.abs(ours - theirs), initial=0.0)) / scale


@pytest.mark.parametrize("name", sorted(MODELS))
def test_values_and_gradients_are_torchs(name):
    model, inputs = MODELS[name]()
    g = dp.from_torch(model, *inputs)
    out = run_both(model, inputs, g)
    expected = out.detach().numpy()
    assert relative_error(g["output"].value, expected, np.max(np.abs(expected))) < TOLERANCE
    grads = {p_name: p.grad.numpy() for p_name, p in model.named_parameters()}
    # a gradient that is zero in exact arithmetic (the key bias: softmax ignores a shift shared by a row)
    # is rounding noise in both, so every gradient is compared at the scale of the model's largest
    scale = max(np.max(np.abs(grad)) for grad in grads.values())
    for p_name, grad in grads.items():
        assert g[p_name].kind == "param"
        assert relative_error(g[p_name].grad, grad, scale) < TOLERANCE, p_name
    for node, tensor in zip([n for n in g if n.kind == "input"], inputs):
        assert node.requires_grad == tensor.requires_grad
        if tensor.requires_grad:
            expected = tensor.grad.numpy()
            assert relative_error(node.grad, expected, np.max(np.abs(expected))) < TOLERANCE


# -- names and scopes ------------------------------------------------------------------------------


def test_inputs_are_named_after_forwards_parameters():
    model, (image,) = lenet()
    g = dp.from_torch(model, image)
    assert [n.name for n in g if n.kind == "input"] == ["image"]
    assert g["image"].requires_grad  # the example tensor asked for a gradient
    g_without = dp.from_torch(model, image.detach())
    assert not g_without["image"].requires_grad


def test_params_and_buffers_keep_their_state_dict_names():
    model, (image,) = lenet()
    g = dp.from_torch(model, image)
    assert sorted(n.name for n in g.params) == sorted(name for name, _ in model.named_parameters())
    for name in ("bn.running_mean", "bn.running_var"):  # buffers: consts, never fed, no gradient
        assert g[name].kind == "const"
        np.testing.assert_array_equal(g[name].value, model.state_dict()[name].numpy())
    assert "bn.num_batches_tracked" not in g  # nothing returned depends on it
    np.testing.assert_array_equal(g["conv1.weight"].value, model.conv1.weight.detach().numpy())


def test_the_result_is_named_output_and_several_results_are_numbered():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            h = self.fc(x)
            return h, torch.relu(h), h

    x = torch.randn(4, 3)
    g = dp.from_torch(Two(), x)
    assert "output" not in g
    assert [g[f"output_{k}"].shape for k in range(3)] == [(4, 2)] * 3
    assert g["output_0"].op == "linear" and g["output_1"].op == "relu"
    g.forward()
    np.testing.assert_array_equal(g["output_2"].value, g["output_0"].value)  # the same tensor twice


def test_module_nesting_becomes_scopes():
    model, (tokens,) = block()
    g = dp.from_torch(model, tokens)
    assert g["attn.q.weight"].scope == ("attn", "q")
    assert g["mlp.0.bias"].scope == ("mlp", "0")
    assert g["embed.weight"].scope == ("embed",)
    assert g["tokens"].scope == ()
    assert g["softmax"].scope == ("attn",)  # a function called in Attention.forward
    assert g["gelu"].scope == ("mlp", "1")
    assert {n.scope for n in g if n.op == "linear"} == {("attn", "q"), ("attn", "k"), ("attn", "v"),
                                                         ("mlp", "0"), ("mlp", "2")}
    g.forward()
    collapsed = dp.to_dot(g, collapse=["attn"])
    assert "<B>attn</B>" in collapsed and "scope attn, into linear" in collapsed  # one box, entered by ln1's output
    assert len(collapsed.splitlines()) < len(dp.to_dot(g).splitlines())


def test_calls_are_named_as_the_traced_program_names_them():
    model, (x,) = mlp()
    g = dp.from_torch(model, x)
    assert [(n.name, n.op) for n in g if n.kind == "op"] == [
        ("linear:transpose", "transpose"), ("linear", "linear"), ("tanh", "tanh"),
        ("linear_1:transpose", "transpose"), ("output", "linear")]


def test_the_fused_attention_becomes_dagprops_attention_op():
    model, (tokens,) = block(fused=True)
    g = dp.from_torch(model, tokens)
    assert g["scaled_dot_product_attention"].op == "attention"


# -- less common paths -------------------------------------------------------------------------------


def compare(model, *inputs, plugins=None):
    g = dp.from_torch(model, *inputs, plugins=plugins)
    out = run_both(model, inputs, g)
    np.testing.assert_allclose(g["output"].value, out.detach().numpy(), rtol=TOLERANCE, atol=1e-12)
    for name, p in model.named_parameters():
        if p.grad is not None:  # a parameter the result does not depend on is left out of the graph
            np.testing.assert_allclose(g[name].grad, p.grad.numpy(), rtol=TOLERANCE, atol=1e-12, err_msg=name)
    for node, tensor in zip([n for n in g if n.kind == "input"], inputs):
        if tensor.requires_grad:
            np.testing.assert_allclose(node.grad, tensor.grad.numpy(), rtol=TOLERANCE, atol=1e-12)
    return g


def test_masked_and_causal_attention_build_the_circuit():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 12)
            self.register_buffer("keep", torch.rand(3, 3) > 0.3)

        def forward(self, x):
            q, k, v = self.proj(x).chunk(3, dim=-1)
            causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            masked = F.scaled_dot_product_attention(q, k, v, attn_mask=self.keep | torch.eye(3, dtype=torch.bool),
                                                    scale=0.3)
            return causal + masked

    torch.manual_seed(3)
    compare(Masked().double(), torch.randn(2, 3, 4, dtype=torch.float64))


def test_in_place_changes_are_made_functional_first():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            h = self.fc(x) * 1.0
            h += x                                   # reassigns h
            h.mul_(3.0)                              # does not: later uses of h must see the change
            return torch.tanh(h)

    torch.manual_seed(4)
    compare(InPlace().double(), torch.randn(2, 3, dtype=torch.float64, requires_grad=True))


class InPlaceLeNet(LeNet):
    """LeNet with in-place relus: its program is made functional, which lowers batch norm and flatten."""

    def forward(self, image):
        h = F.max_pool2d(F.relu(self.bn(self.conv1(image)), inplace=True), 2)
        h = F.max_pool2d(F.relu(self.conv2(h), inplace=True), 2)
        return F.log_softmax(self.fc(torch.flatten(h, 1)), dim=1)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_functional_program_converts_the_lowered_ops(mode):
    model, (image,) = lenet()
    changed = InPlaceLeNet().double()
    changed.load_state_dict(model.state_dict())
    changed.train(mode == "train")
    g = compare(changed, image)
    assert g["bn.running_var"].kind == "const"


def test_batch_norm_in_training_mode_uses_the_batch_statistics():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double().train()
    before = model[1].running_mean.clone()
    g = compare(model, torch.randn(6, 3, dtype=torch.float64))
    assert g["1.running_mean"].kind == "const"
    np.testing.assert_array_equal(g["1.running_mean"].value, before.numpy())  # not updated


def test_frozen_parameters_are_consts():
    model = MLP().double()
    model.fc1.requires_grad_(False)
    g = dp.from_torch(model, torch.randn(2, 4, dtype=torch.float64))
    assert g["fc1.weight"].kind == "const" and g["fc2.weight"].kind == "param"


def test_constants_made_in_forward_are_folded():
    class Positions(nn.Module):
        def forward(self, x):
            mask = torch.ones(x.shape[1], x.shape[1], dtype=x.dtype).tril()  # from constants: folded
            return (x @ mask.T) * torch.arange(x.shape[1]) + x.mean(dim=1, keepdim=True)

    g = compare(Positions(), torch.randn(2, 3, dtype=torch.float64, requires_grad=True))
    assert not any(n.op in ("tril", "arange") for n in g)


# -- unsupported ops -------------------------------------------------------------------------------------


class Unusual(nn.Module):
    """Three ops the built-in converters do not convert, called 3, 2 and 1 times."""

    def forward(self, x):
        h = torch.cumsum(x, 1) + torch.cumsum(x * 2, 1)
        h = torch.sinh(h / 4) + torch.sinh(x)
        return torch.cumsum(torch.cosh(h / 4), 0)


def test_unsupported_ops_are_all_listed_with_their_counts():
    with pytest.raises(dp.UnsupportedOpsError) as caught:
        dp.from_torch(Unusual(), torch.randn(2, 3))
    assert caught.value.ops == {"aten.cumsum": 3, "aten.sinh": 2, "aten.cosh": 1}
    message = str(caught.value)
    assert "aten.cumsum: 3 calls" in message and "aten.sinh: 2 calls" in message and "aten.cosh: 1 call" in message
    assert "dagprop_torch_converters" in message and "plugins=[" in message


def convert_cumsum(b, x, dim, dtype=None):
    """cumsum as a matmul with a triangle of ones, along the last axis after a transpose."""
    axes = list(range(len(x.shape)))
    axes[dim], axes[-1] = axes[-1], axes[dim]
    n = x.shape[dim]
    moved = b.op("transpose", x, axes=tuple(axes))
    return b.op("transpose", b.op("matmul", moved, b.const(np.triu(np.ones((n, n))))), axes=tuple(axes))


def convert_sinh(b, x):
    return (b.op("exp", x) - b.op("exp", -x)) * 0.5


def convert_cosh(b, x):
    return (b.op("exp", x) + b.op("exp", -x)) * 0.5


class Hyperbolic:
    @dp.hookimpl
    def dagprop_torch_converters(self):
        return {"aten.cumsum": convert_cumsum, "aten.sinh": convert_sinh, "aten.cosh": convert_cosh}


def test_a_plugin_adds_the_missing_converters_through_the_hook():
    torch.manual_seed(6)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    g = dp.from_torch(Unusual(), x, plugins=[Hyperbolic()])
    out = run_both(Unusual(), (x,), g)
    np.testing.assert_allclose(g["output"].value, out.detach().numpy(), rtol=TOLERANCE)
    np.testing.assert_allclose(g["x"].grad, x.grad.numpy(), rtol=TOLERANCE)


def test_a_registered_plugin_is_used_too():
    plugin = Hyperbolic()
    dp.register_plugin(plugin)
    try:
        g = dp.from_torch(Unusual(), torch.randn(2, 3))
    finally:
        dp.unregister_plugin(plugin)
    assert g["output"].shape == (2, 3)


def test_arguments_a_converter_refuses_are_listed_with_the_reason():
    class Pools(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2, ceil_mode=True).sum() + torch.cumsum(x, 0).sum()

    with pytest.raises(dp.UnsupportedOpsError) as caught:
        dp.from_torch(Pools(), torch.randn(1, 1, 5, 5))
    assert caught.value.ops == {"aten.max_pool2d": 1, "aten.cumsum": 1}
    assert "ceil_mode=True" in str(caught.value)


def test_a_failing_converter_is_a_plugin_error_naming_the_call():
    def broken(b, x, dim, dtype=None):
        raise KeyError("oops")

    class Broken:
        @dp.hookimpl
        def dagprop_torch_converters(self):
            return {"aten.cumsum": broken}

    with pytest.raises(dp.PluginError, match=r"broken of aten.cumsum failed on the call 'cumsum'.*KeyError"):
        dp.from_torch(Unusual(), torch.randn(2, 3), plugins=[Broken()])


def test_two_converters_of_one_op_are_an_error_naming_both():
    class Again:
        @dp.hookimpl
        def dagprop_torch_converters(self):
            return {"aten.relu": convert_sinh}

    with pytest.raises(dp.PluginError, match=r"'aten.relu' is converted by two plugins, "
                                             r"'dagprop_plugins.torch_converters' and '.*Again'"):
        dp.from_torch(MLP(), torch.randn(2, 4), plugins=[Again()])


# -- the optional dependency -------------------------------------------------------------------------


def test_import_dagprop_does_not_import_torch():
    code = ("import sys, dagprop, dagprop.importers, dagprop_plugins.torch_converters; "
            "g = dagprop.Graph(); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- the built-in converters, one small model each -------------------------------------------------


class Function(nn.Module):
    """``forward(x) = function(self, x)``, with a (3, 4) weight and a (4,) bias to use as parameters."""

    def __init__(self, function):
        super().__init__()
        self.function = function
        self.weight = nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
        self.bias = nn.Parameter(torch.randn(4, dtype=torch.float64))

    def forward(self, x):
        return self.function(self, x)


def arithmetic(m, x):
    return (x * 2 - 1 / (x**2 + 1) + (3 - x) ** 2 + torch.exp(-x.abs()) + torch.sqrt(x * x + 1)
            + torch.rsqrt(x * x + 1) + torch.log(x * x + 1) + 2**x + torch.square(x) / m.bias + x.neg())


def activations(m, x):
    return (torch.relu(x) + torch.sigmoid(x) * torch.tanh(x) + F.gelu(x) + F.gelu(x, approximate="tanh")
            + F.silu(x) + F.softplus(x, beta=2.0) + F.leaky_relu(x, 0.2) + F.elu(x) + F.logsigmoid(x)
            + F.hardtanh(x) + F.relu6(x * 4) + x.clamp(-0.5, 0.5) + x.clamp(min=0.1) + torch.erf(x))


def softmaxes(m, x):
    return torch.softmax(x, dim=1) + torch.log_softmax(x, dim=-1) + F.softmax(x * m.bias, dim=0)


def masks(m, x):
    y = x * 0.5 + 0.1
    return (torch.where(x > 0, x, x * 0.1) + x.masked_fill(x < -0.5, 0.0) + (x >= y) * x + (x <= y) * y
            + (x == x) * 2 + torch.maximum(x, y) + torch.minimum(x, y) + torch.max(x, y))


def reductions(m, x):
    return (x.sum() + x.sum(dim=(0, 2)).sum() + x.mean(dim=1, keepdim=True).sum() + x.amax(dim=-1).sum()
            + x.max(dim=1).values.sum() + x.min() + x.var(dim=1).sum() + x.var(dim=2, correction=0).sum()
            + x.std() + torch.logsumexp(x, dim=1).sum() + (x * 0.1 + 1).prod(dim=2).sum())


def shaping(m, x):
    a = x.view(2, 12).reshape(4, 6).flatten().unflatten(0, (2, 12))
    b = x.permute(2, 0, 1).transpose(0, 2).unsqueeze(1).squeeze(1)
    c = torch.cat([x, x * 2], dim=1)[:, 1:5:2] + torch.stack([x, -x]).sum(dim=0)[:, ::2]
    d = sum(x.split(2, dim=2)[k].sum() for k in range(2)) + sum(p.sum() for p in x.chunk(3, dim=1))
    e = sum(p.mean() for p in x.unbind(1)) + x.select(2, -1).sum() + x[:, [0, 2]].sum() + x[0, :, 1:].sum()
    f = F.pad(x, (1, 2)).sum() + x.contiguous().clone().double().sum() + x[:1].expand(3, 3, 4).sum()
    return a.sum() * b.sum() + c.sum() + d + e + f


def products(m, x):
    rows = x.reshape(6, 4)
    return (x @ m.weight.T @ m.weight + torch.bmm(x, x.transpose(1, 2)).sum() + torch.mm(rows, rows.t()).sum()
            + torch.addmm(m.bias, rows, m.weight.T @ m.weight).sum() + F.linear(x, m.weight).sum())


def layers(m, x):
    images = x.reshape(2, 1, 3, 4).expand(2, 2, 3, 4)
    return (F.conv1d(x, m.weight[:, :2].reshape(3, 1, 2).expand(3, 3, 2), stride=1, padding=1).sum()
            + F.avg_pool2d(images, 2, stride=1).sum() + F.adaptive_avg_pool2d(images, (2, 3)).sum()
            + F.group_norm(images, 2, m.bias[:2], m.bias[2:]).sum() + F.dropout(x, 0.5, training=False).sum()
            + F.layer_norm(x, (4,), m.bias, None).sum() + F.layer_norm(x, (3, 4)).sum())


def losses(m, x):
    logits = x.reshape(6, 4) @ m.weight.T @ m.weight
    target = torch.tensor([0, 3, 1, 1, 2, 0])
    return (F.mse_loss(x, torch.full((3, 4), 0.5)) + F.mse_loss(x, torch.ones_like(x), reduction="sum")
            + F.cross_entropy(logits, target) + F.cross_entropy(logits, target, reduction="sum")
            + F.cross_entropy(logits, torch.softmax(torch.arange(24.0).reshape(6, 4), dim=1)))


@pytest.mark.filterwarnings("ignore:Using a target size")  # mse_loss broadcasting a target, on purpose
@pytest.mark.parametrize("function", [arithmetic, activations, softmaxes, masks, reductions, shaping, products,
                                      layers, losses], ids=lambda f: f.__name__)
def test_builtin_converters_agree_with_torch(function):
    torch.manual_seed(7)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    compare(Function(function), x)
