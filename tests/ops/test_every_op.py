"""What every built-in op owes: its family provides it, and it has a doc line, a shape rule
and an example that passes check_op."""

import importlib

import numpy as np
import pytest

import dagprop as dp
from dagprop.hooks import BUILTIN_PLUGINS
from dagprop.testing import check_op

FAMILIES = {
    "elementwise": ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "reciprocal", "step", "erf", "sqrt", "rsqrt",
                    "abs", "where", "maximum", "minimum", "clip"],
    "activations": ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu", "softplus", "leaky_relu",
                    "elu", "log_sigmoid", "dropout"],
    "linalg": ["matmul", "transpose"],
    "reductions": ["sum", "mean", "max", "min", "var", "logsumexp", "prod"],
    "shaping": ["reshape", "broadcast_to", "flatten", "squeeze", "unsqueeze", "permute"],
    "indexing": ["getitem", "scatter_add", "concat", "stack", "split", "pad"],
    "losses": ["l2_loss", "squared_error", "cross_entropy"],
    "layers": ["linear", "attention"],
    "convolution": ["unfold", "fold", "conv2d", "conv1d"],
    "pooling": ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"],
    "normalization": ["layer_norm", "batch_norm", "group_norm"],
    "lookup": ["embedding"],
}
EVERY_OP = [name for names in FAMILIES.values() for name in names]


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_plugin_provides_its_ops(family):
    module = importlib.import_module(f"dagprop_plugins.{family}")
    assert [op.name for op in module.dagprop_ops()] == FAMILIES[family]
    assert f"dagprop_plugins.{family}" in BUILTIN_PLUGINS


def test_the_built_in_ops_are_exactly_these():
    registry = dp.Graph().registry
    built_in = sorted(op.name for op in registry if op.plugin.startswith("dagprop_plugins."))
    assert built_in == sorted(EVERY_OP)


@pytest.mark.parametrize("name", EVERY_OP)
def test_example_passes_check_op(name):
    op = dp.Graph().registry[name]
    assert op.doc and op.shape is not None and op.example is not None
    args, attrs = op.example(np.random.default_rng(0))
    check_op(name, *args, **attrs)


@pytest.mark.parametrize("name", EVERY_OP)
def test_every_op_has_forward_mode_and_a_backward_pass_made_of_nodes(name):
    op = dp.Graph().registry[name]
    assert op.jvp is not None, f"{name} has no jvp rule (forward mode would contract a dense Jacobian)"
    assert op.vjp_graph is not None, f"{name} has no vjp_graph rule (create_graph=True, second derivatives)"
    args, attrs = op.example(np.random.default_rng(0))
    errors = check_op(name, *args, **attrs).errors
    assert "jvp vs finite differences" in errors and "vjp_graph vs vjp" in errors
