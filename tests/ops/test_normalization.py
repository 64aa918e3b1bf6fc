"""The normalization family: layer_norm, batch_norm, group_norm, checked against torch.nn.functional."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dagprop as dp
from dagprop.testing import check_op

# torch.func.jvp compiles a helper with torch.jit.script on first use, which torch itself deprecates
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

rng = np.random.default_rng(12)

RTOL, ATOL = 1e-10, 1e-12


def positive(*shape):
    """Running variances: away from 0, so that sqrt(var + eps) is well conditioned."""
    return rng.uniform(0.5, 2.0, shape)


def run(name, arrays, seed, tangents, **attrs):
    """The op's value, every input's gradient of <seed, out> and the tangent of out, from dagprop."""
    g = dp.Graph()
    leaves = [g.param(f"a{k}", a) for k, a in enumerate(arrays)]
    out = g.op(name, *leaves, **attrs)
    g.forward()
    g.backward(out, seed=seed)
    g.jvp({leaf: t for leaf, t in zip(leaves, tangents) if t is not None})
    return out.value, [leaf.grad for leaf in leaves], out.tangent


def torch_run(function, arrays, seed, tangents):
    """The same from torch in float64: autograd for the gradients, torch.func.jvp for the tangent."""
    inputs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = function(*inputs)
    out.backward(torch.tensor(seed, dtype=torch.float64))
    primals = tuple(torch.tensor(a, dtype=torch.float64) for a in arrays)
    _, tangent = torch.func.jvp(function, primals, tuple(torch.tensor(t, dtype=torch.float64) for t in tangents))
    return out.detach().numpy(), [i.grad.numpy() for i in inputs], tangent.numpy()


def assert_like_torch(ours, theirs, slots=None):
    (value, grads, tangent), (t_value, t_grads, t_tangent) = ours, theirs
    np.testing.assert_allclose(value, t_value, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(tangent, t_tangent, rtol=RTOL, atol=ATOL)
    for k, t_grad in zip(slots if slots is not None else range(len(t_grads)), t_grads):
        np.testing.assert_allclose(grads[k], t_grad, rtol=RTOL, atol=ATOL, err_msg=f"gradient of input {k}")


# -- layer_norm --------------------------------------------------------------------------------

LAYER_CASES = [((5,), (5,)), ((4, 3), (3,)), ((4, 3), 3), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)),
               ((2, 3, 4), (2, 3, 4))]


@pytest.mark.parametrize("x, normalized_shape", LAYER_CASES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["x", "x, weight", "x, weight, bias"])
def test_layer_norm_check_op(x, normalized_shape, affine):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    errors = check_op("layer_norm", x, *[shape] * affine, normalized_shape=normalized_shape).errors
    assert {"vjp vs decomposition", "jvp vs finite differences", "vjp_graph vs vjp",
            "second derivatives vs finite differences"} <= set(errors)


@pytest.mark.parametrize("x, normalized_shape", LAYER_CASES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["x", "x, weight", "x, weight, bias"])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_layer_norm_matches_torch(x, normalized_shape, affine, eps):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    arrays = [rng.normal(1.0, 3.0, x)] + [rng.standard_normal(shape) for _ in range(affine)]
    seed, tangents = rng.standard_normal(x), [rng.standard_normal(a.shape) for a in arrays]

    def layer_norm(x, weight=None, bias=None):
        return F.layer_norm(x, shape, weight, bias, eps)

    assert_like_torch(run("layer_norm", arrays, seed, tangents, normalized_shape=normalized_shape, eps=eps),
                      torch_run(layer_norm, arrays, seed, tangents))


def test_layer_norm_decomposes_into_mean_sub_var_add_rsqrt_mul_then_weight_and_bias():
    g = dp.Graph()
    x, w, b = g.param("x", rng.standard_normal((2, 3))), g.param("w", np.ones(3)), g.param("b", np.zeros(3))
    out = g.registry["layer_norm"].decompose(x, w, b, normalized_shape=(3,), eps=1e-5)
    assert [n.op for n in g if n.op is not None] == ["mean", "sub", "var", "add", "rsqrt", "mul", "mul", "add"]
    var = next(n for n in g if n.op == "var")
    assert var.attrs == {"axis": (1,), "keepdims": True, "correction": 0}
    assert out.shape == (2, 3)


def test_layer_norm_hessian_matches_torch():
    x, w, b, c = (rng.standard_normal(s) for s in ((2, 3), (3,), (3,), (2, 3)))
    g = dp.Graph()
    leaf = g.param("x", x)
    loss = (leaf.layer_norm(g.const(w), g.const(b), normalized_shape=(3,)) * g.const(c)).sum()
    g.forward()

    def scalar(t):
        return (F.layer_norm(t, (3,), torch.tensor(w), torch.tensor(b)) * torch.tensor(c)).sum()

    expected = torch.autograd.functional.hessian(scalar, torch.tensor(x)).numpy()
    np.testing.assert_allclose(g.hessian(loss, leaf), expected, rtol=1e-9, atol=1e-12)


# -- batch_norm --------------------------------------------------------------------------------

BATCH_SHAPES = [(4, 3), (4, 3, 5), (2, 3, 2, 2), (2, 3, 1, 2, 2)]


@pytest.mark.parametrize("x", BATCH_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["no affine", "weight", "weight, bias"])
def test_batch_norm_eval_mode_check_op(x, affine):
    errors = check_op("batch_norm", x, (3,), positive(3), *[(3,)] * affine, training=False).errors
    assert {"vjp vs decomposition", "jvp vs finite differences", "vjp_graph vs vjp",
            "second derivatives vs finite differences"} <= set(errors)


def without_decomposition(name):
    """A plugin providing a copy of the op without its decompose, named ``<name>_rules``."""
    op = dp.Graph().registry[name]

    class Rules:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dataclasses.replace(op, name=f"{name}_rules", decompose=None, plugin="")]

    return Rules()


@pytest.mark.parametrize("x", BATCH_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["no affine", "weight", "weight, bias"])
def test_batch_norm_training_mode_rules_check_op(x, affine):
    # the vjp, jvp and vjp_graph against finite differences; the circuit is compared below
    errors = check_op("batch_norm_rules", x, (3,), positive(3), *[(3,)] * affine,
                      plugins=[without_decomposition("batch_norm")], training=True).errors
    assert {"jvp vs finite differences", "vjp_graph vs vjp", "second derivatives vs finite differences"} <= set(errors)


def test_batch_norm_training_mode_check_op():
    # the running statistics get no gradient from the op nor from its circuit
    check_op("batch_norm", (4, 3, 2), (3,), positive(3), (3,), (3,), training=True)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_circuit_gives_the_op_values_and_gradients(training):
    arrays = [rng.standard_normal((4, 3, 2)), rng.standard_normal(3), positive(3), rng.standard_normal(3),
              rng.standard_normal(3)]
    seed = rng.standard_normal((4, 3, 2))
    results = []
    for opened in (False, True):
        g = dp.Graph()
        leaves = [g.param(f"a{k}", a) for k, a in enumerate(arrays)]
        op = g.registry["batch_norm"]
        out = op.decompose(*leaves, training=training) if opened else g.op("batch_norm", *leaves, training=training)
        g.forward()
        g.backward(out, seed=seed)
        results.append((out.value, [leaf.grad for leaf in leaves]))
    (value, grads), (circuit_value, circuit_grads) = results
    np.testing.assert_allclose(circuit_value, value, rtol=1e-12, atol=1e-14)
    for grad, circuit_grad in zip(grads, circuit_grads):
        if grad is None:
            assert training and circuit_grad is None
        else:
            np.testing.assert_allclose(circuit_grad, grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("x", BATCH_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["no affine", "weight", "weight, bias"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(x, affine, training):
    running_mean, running_var = rng.standard_normal(3), positive(3)
    arrays = [rng.normal(0.5, 2.0, x)] + [rng.standard_normal(3) for _ in range(affine)]
    seed, tangents = rng.standard_normal(x), [rng.standard_normal(a.shape) for a in arrays]

    def batch_norm(x, weight=None, bias=None):
        # clones: torch updates the running statistics in place when training
        return F.batch_norm(x, torch.tensor(running_mean), torch.tensor(running_var), weight, bias,
                            training=training, momentum=0.1, eps=1e-5)

    ours = run("batch_norm", [arrays[0], running_mean, running_var] + arrays[1:], seed,
               [tangents[0], None, None] + tangents[1:], training=training)
    assert_like_torch(ours, torch_run(batch_norm, arrays, seed, tangents), slots=[0, 3, 4][:1 + affine])


def test_batch_norm_eval_mode_running_statistics_get_their_true_gradients():
    # torch does not differentiate its buffers: compare with autograd through the eval-mode formula
    x, mean, var, w, b, seed = (rng.standard_normal((4, 3, 2)), rng.standard_normal(3), positive(3),
                                rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((4, 3, 2)))
    tangents = [rng.standard_normal(a.shape) for a in (x, mean, var, w, b)]

    def formula(x, mean, var, w, b):
        column = (1, 3, 1)
        return (x - mean.reshape(column)) / torch.sqrt(var.reshape(column) + 1e-5) * w.reshape(column) \
            + b.reshape(column)

    ours = run("batch_norm", [x, mean, var, w, b], seed, tangents, training=False)
    assert_like_torch(ours, torch_run(formula, [x, mean, var, w, b], seed, tangents))
    expected = F.batch_norm(torch.tensor(x), torch.tensor(mean), torch.tensor(var), torch.tensor(w), torch.tensor(b))
    np.testing.assert_allclose(ours[0], expected.numpy(), rtol=RTOL, atol=ATOL)


def test_batch_norm_training_mode_gives_the_running_statistics_no_gradient_and_leaves_them_alone():
    mean, var = rng.standard_normal(3), positive(3)
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((4, 3)))
    running_mean, running_var = g.param("running_mean", mean.copy()), g.param("running_var", var.copy())
    out = x.batch_norm(running_mean, running_var, training=True, momentum=0.5)
    g.forward()
    g.backward(out, seed=rng.standard_normal((4, 3)))
    g.jvp({running_mean: np.ones(3), running_var: np.ones(3)})
    assert running_mean.grad is None and running_var.grad is None
    assert out.tangent is None or not np.any(out.tangent)
    np.testing.assert_array_equal(running_mean.value, mean)
    np.testing.assert_array_equal(running_var.value, var)
    # the batch's own statistics: every channel of the output has mean 0 and (biased) variance about 1
    np.testing.assert_allclose(out.value.mean(axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(out.value.var(axis=0), 1.0, rtol=1e-4)


# -- group_norm --------------------------------------------------------------------------------

GROUP_CASES = [((2, 4), 2), ((2, 4, 3), 1), ((2, 4, 3), 2), ((2, 4, 3), 4), ((3, 6, 2, 2), 3), ((1, 6, 2, 1, 2), 2)]


@pytest.mark.parametrize("x, num_groups", GROUP_CASES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["no affine", "weight", "weight, bias"])
def test_group_norm_check_op(x, num_groups, affine):
    errors = check_op("group_norm", x, *[(x[1],)] * affine, num_groups=num_groups).errors
    assert {"vjp vs decomposition", "jvp vs finite differences", "vjp_graph vs vjp",
            "second derivatives vs finite differences"} <= set(errors)


@pytest.mark.parametrize("x, num_groups", GROUP_CASES, ids=str)
@pytest.mark.parametrize("affine", [0, 1, 2], ids=["no affine", "weight", "weight, bias"])
def test_group_norm_matches_torch(x, num_groups, affine):
    arrays = [rng.normal(-1.0, 2.0, x)] + [rng.standard_normal(x[1]) for _ in range(affine)]
    seed, tangents = rng.standard_normal(x), [rng.standard_normal(a.shape) for a in arrays]

    def group_norm(x, weight=None, bias=None):
        return F.group_norm(x, num_groups, weight, bias, eps=1e-5)

    assert_like_torch(run("group_norm", arrays, seed, tangents, num_groups=num_groups),
                      torch_run(group_norm, arrays, seed, tangents))


def test_group_norm_with_one_group_per_channel_is_instance_norm_and_with_one_group_layer_norm():
    x = rng.standard_normal((2, 4, 3))
    g = dp.Graph()
    leaf = g.param("x", x)
    per_channel, one_group = leaf.group_norm(num_groups=4), leaf.group_norm(num_groups=1)
    whole = leaf.layer_norm(normalized_shape=(4, 3))
    g.forward()
    np.testing.assert_allclose(per_channel.value, F.instance_norm(torch.tensor(x)).numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(one_group.value, whole.value, rtol=1e-13, atol=1e-14)


# -- shapes and attributes ---------------------------------------------------------------------


@pytest.mark.parametrize("name, shapes, attrs, message", [
    ("layer_norm", [(4, 3)], {"normalized_shape": (4,)}, r"x has shape \(4, 3\); its last 1 axis must be "
                                                          r"normalized_shape \(4,\)"),
    ("layer_norm", [(3,)], {"normalized_shape": (2, 3)}, r"its last 2 axes must be normalized_shape \(2, 3\)"),
    ("layer_norm", [(4, 3), (4,)], {"normalized_shape": 3}, r"weight has shape \(4,\); it must be normalized_shape"),
    ("layer_norm", [(4, 3), (3,), (1, 3)], {"normalized_shape": 3}, r"bias has shape \(1, 3\)"),
    ("layer_norm", [(4, 3)], {"normalized_shape": ()}, "normalized_shape must be an int or a non-empty tuple"),
    ("layer_norm", [(4, 3)], {"normalized_shape": 3, "eps": -1.0}, "eps must be a number >= 0"),
    ("batch_norm", [(4,), (4,), (4,)], {}, r"x has shape \(4,\); batch_norm takes \(N, C, ...\) arrays"),
    ("batch_norm", [(4, 3), (4,), (3,)], {}, r"running_mean has shape \(4,\); it holds one number per channel, "
                                             r"shape \(3,\)"),
    ("batch_norm", [(4, 3), (3,), (3,), (3, 1)], {}, r"weight has shape \(3, 1\)"),
    ("batch_norm", [(1, 3, 1), (3,), (3,)], {"training": True}, "each channel needs more than one value"),
    ("batch_norm", [(4, 3), (3,), (3,)], {"training": "yes"}, "training must be True or False"),
    ("group_norm", [(2, 6, 3)], {"num_groups": 4}, r"num_groups 4 does not divide the 6 channels"),
    ("group_norm", [(2, 6, 3)], {"num_groups": 0}, r"num_groups 0 does not divide"),
    ("group_norm", [(2, 6, 3)], {"num_groups": 2.0}, "num_groups must be an int"),
    ("group_norm", [(2, 6, 3), (3,)], {"num_groups": 3}, r"weight has shape \(3,\); it holds one number per channel"),
])
def test_bad_shapes_and_attributes_are_refused_when_the_node_is_built(name, shapes, attrs, message):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=message):
        g.op(name, *[g.param(f"a{k}", np.ones(s)) for k, s in enumerate(shapes)], **attrs)


def test_batch_norm_in_eval_mode_takes_one_example_per_channel():
    g = dp.Graph()
    out = g.op("batch_norm", g.param("x", np.ones((1, 3))), g.const(np.zeros(3)), g.const(np.ones(3)))
    g.forward()
    np.testing.assert_allclose(out.value, 1.0 / np.sqrt(1.0 + 1e-5))
