"""The indexing family: getitem, scatter_add, concat, stack, split and pad."""

import numpy as np
import pytest
import torch

import dagprop as dp
from dagprop.testing import check_op

from helpers import SECOND_ORDER_CHECKS, run_op as run

rng = np.random.default_rng(13)


INDICES = [
    1, -1, slice(1, 3), slice(None, None, -2), Ellipsis, None,
    (0, 2), (slice(None), 1), (Ellipsis, 0), (None, slice(1, None), None),
    [0, 0, 3, 0],                               # a repeated fancy index
    np.array([[1, 1], [2, 1]]),                 # a 2-D index array, with repeats
    ([0, 3, 0], [1, 1, 1]),                     # two index arrays, pairs (0, 1) repeated
    (slice(None), [2, 0, 2]),                   # a slice and a fancy index
    (Ellipsis, np.array([0, 0])),
    np.array([True, False, True, True]),        # a boolean mask
    (Ellipsis, [2, 2, 0]),                      # Ellipsis then a repeated fancy index
    (np.array([[3], [3]]), np.array([[0, 0, 2]])),  # broadcast index arrays: (3, 0) picked four times
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_getitem(index):
    assert SECOND_ORDER_CHECKS <= set(check_op("getitem", (4, 3), index=index).errors)
    x = rng.standard_normal((4, 3))
    g = dp.Graph()
    node = g.param("x", x)[index]
    assert node.op == "getitem" and node.shape == x[index].shape
    g.forward()
    np.testing.assert_array_equal(node.value, x[index])


def test_getitem_repeated_fancy_indices_accumulate():
    x, index = rng.standard_normal(5), [0, 3, 0, 0, 4, 3]
    seed = rng.standard_normal(len(index))
    g, (leaf,), out = run("getitem", x, index=index)
    g.backward(out, seed=seed)
    np.testing.assert_allclose(leaf.grad, np.bincount(index, weights=seed, minlength=5))


def test_getitem_rows_picked_twice_get_both_gradients():
    x = rng.standard_normal((3, 2))
    g, (leaf,), out = run("getitem", x, index=[2, 2])
    g.backward(out, seed=np.array([[1.0, 2.0], [10.0, 20.0]]))
    np.testing.assert_allclose(leaf.grad, [[0.0, 0.0], [0.0, 0.0], [11.0, 22.0]])


@pytest.mark.parametrize("index, reason", [
    (5, "index 5 is out of bounds for axis 0 with size 4"),
    ((0, 0, 0), "too many indices"),
])
def test_getitem_rejects_bad_indices(index, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.param("x", np.zeros((4, 3)))[index]


@pytest.mark.parametrize("shapes, axis", [
    (((2, 3), (4, 3), (1, 3)), 0),
    (((2, 3), (2, 1), (2, 2)), 1),
    (((2, 3), (2, 1), (2, 2)), -1),
    (((2, 1, 3), (2, 2, 3), (2, 1, 3)), 1),
    (((3,), (2,), (1,)), 0),
    (((2, 3),), 0),
    (((2, 3, 1), (2, 3, 4)), 2),
    (((2, 3, 1), (2, 3, 4)), -1),
    (((1, 2), (3, 2), (2, 2), (1, 2)), -2),
], ids=str)
def test_concat(shapes, axis):
    assert SECOND_ORDER_CHECKS <= set(check_op("concat", *shapes, axis=axis).errors)


def test_concat_gradient_is_the_matching_slice_for_each_input():
    xs = [rng.standard_normal((2, n)) for n in (3, 1, 2)]
    seed = rng.standard_normal((2, 6))
    g, leaves, out = run("concat", *xs, axis=1)
    np.testing.assert_array_equal(out.value, np.concatenate(xs, axis=1))
    g.backward(out, seed=seed)
    for leaf, expected in zip(leaves, (seed[:, :3], seed[:, 3:4], seed[:, 4:])):
        np.testing.assert_array_equal(leaf.grad, expected)


@pytest.mark.parametrize("shapes, axis, reason", [
    (((2, 3), (2, 4)), 0, r"input 1 has shape \(2, 4\) and input 0 has \(2, 3\)"),
    (((2, 3), (2, 3, 1)), 0, "must match except along axis 0"),
    (((), ()), 0, "0-d inputs"),
    (((2, 3), (2, 3)), 2, "out of range"),
])
def test_concat_rejects_shapes_that_do_not_line_up(shapes, axis, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.op("concat", *[g.param(f"x{i}", np.zeros(s)) for i, s in enumerate(shapes)], axis=axis)


@pytest.mark.parametrize("shape, axis", [
    ((2, 3), 0), ((2, 3), 1), ((2, 3), 2), ((2, 3), -1), ((), 0), ((2, 1, 3), -2), ((4,), 1),
], ids=str)
def test_stack_three_inputs(shape, axis):
    assert SECOND_ORDER_CHECKS <= set(check_op("stack", shape, shape, shape, axis=axis).errors)


def test_stack_gradient_is_each_inputs_slice():
    xs = [rng.standard_normal((2, 3)) for _ in range(3)]
    seed = rng.standard_normal((2, 3, 3))
    g, leaves, out = run("stack", *xs, axis=-1)
    np.testing.assert_array_equal(out.value, np.stack(xs, axis=-1))
    g.backward(out, seed=seed)
    for k, leaf in enumerate(leaves):
        np.testing.assert_array_equal(leaf.grad, seed[:, :, k])


@pytest.mark.parametrize("shapes, axis, reason", [
    (((2, 3), (3, 2)), 0, "stack needs equal shapes"),
    (((2, 3), (2, 3)), 3, "axis 3 is out of range for 3 dimensions"),
])
def test_stack_rejects_bad_inputs(shapes, axis, reason):
    g = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        g.op("stack", *[g.param(f"x{i}", np.zeros(s)) for i, s in enumerate(shapes)], axis=axis)


# -- scatter_add: getitem's adjoint ----------------------------------------------------------------

SCATTERS = [
    ((3, 2), (4, 2), [0, 2, 0]),                        # rows 0 picked twice
    ((6,), (4,), [0, 3, 0, 0, 1, 3]),
    ((2,), (4, 3), (slice(1, 3), 2)),                   # a slice and an int: no repeats
    ((4, 2), (4, 3), (Ellipsis, [1, 1])),
    ((2,), (4, 3), ([0, 0], [1, 1])),                   # (0, 1) twice
    ((3,), (4, 3), np.array([[False, True, False], [False, False, False],
                             [True, False, False], [False, False, True]])),
    ((), (4, 3), (2, 1)),
    ((1, 4, 3), (4, 3), None),
]


@pytest.mark.parametrize("g, shape, index", SCATTERS, ids=repr)
def test_scatter_add(g, shape, index):
    assert SECOND_ORDER_CHECKS <= set(check_op("scatter_add", g, shape=shape, index=index).errors)
    values = rng.standard_normal(g)
    _, _, out = run("scatter_add", values, shape=shape, index=index)
    expected = np.zeros(shape)
    np.add.at(expected, index, values)
    np.testing.assert_array_equal(out.value, expected)


def test_scatter_add_adds_values_at_a_repeated_index():
    _, _, out = run("scatter_add", np.array([1.0, 2.0, 4.0]), shape=(3,), index=[2, 0, 2])
    np.testing.assert_array_equal(out.value, [2.0, 0.0, 5.0])


def test_scatter_add_gradient_reads_back_where_each_value_went():
    values, seed = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    g, (leaf,), out = run("scatter_add", values, shape=(4, 2), index=[3, 1, 3])
    g.backward(out, seed=seed)
    np.testing.assert_array_equal(leaf.grad, seed[[3, 1, 3]])


@pytest.mark.parametrize("g, shape, index, reason", [
    ((2,), (4,), [0, 1, 1], (r"g has shape \(2,\), but indexing an array of shape \(4,\) with this index "
                             r"picks shape \(3,\)")),
    ((3,), (4,), [0, 1, 5], "out of bounds"),
])
def test_scatter_add_rejects_values_that_do_not_fit_the_index(g, shape, index, reason):
    graph = dp.Graph()
    with pytest.raises(dp.ShapeError, match=reason):
        graph.op("scatter_add", graph.param("g", np.zeros(g)), shape=shape, index=index)


def test_getitem_and_scatter_add_are_each_others_backward_nodes():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((4, 3)))
    picked = x[[0, 0, 2]]
    loss = picked.scatter_add(shape=(4, 3), index=[0, 0, 2]).sum()
    g.forward()
    g.backward(loss, create_graph=True)
    backward_ops = [n.op for n in g if n.scope == ("backward",) and n.op is not None]
    assert x.grad_node.op == "scatter_add" and "getitem" in backward_ops
    g.forward()
    np.testing.assert_array_equal(x.grad_node.value, np.array([[2.0] * 3, [0.0] * 3, [1.0] * 3, [0.0] * 3]))


# -- forward mode and second derivatives, against closed forms ---------------------------------------


def test_forward_mode_jacobian_of_getitem_equals_reverse_mode():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((4, 3)))
    y = x[[3, 0, 3], 1:]
    g.forward()
    forward = g.jacobian(y, x, mode="forward")
    np.testing.assert_array_equal(forward, g.jacobian(y, x, mode="reverse"))
    assert forward[0, 0, 3, 1] == forward[2, 0, 3, 1] == 1.0 and forward.sum() == y.value.size


def test_hessian_through_a_repeated_index_counts_the_repeats():
    # L = sum(x[[0, 0, 2]]**2) = 2 x0^2 + x2^2: the Hessian is diag(4, 0, 2)
    g = dp.Graph()
    x = g.param("x", rng.standard_normal(3))
    loss = (x[[0, 0, 2]] ** 2).sum()
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, x), np.diag([4.0, 0.0, 2.0]))
    np.testing.assert_allclose(g.hvp(loss, x, np.array([1.0, 1.0, -1.0])), [4.0, 0.0, -2.0])


def test_hessian_through_concat_and_stack():
    # concat([x, 3x]) and stack([x, x]) hold x's elements 1 + 9 and 1 + 1 times (squared weights):
    # L = 10 |x|^2 + 2 |x|^2, so the Hessian is 24 I
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((2, 3)))
    loss = (g.op("concat", x, x * 3.0, axis=1) ** 2).sum() + (g.op("stack", x, x, axis=-1) ** 2).sum()
    g.forward()
    np.testing.assert_allclose(g.hessian(loss, x).reshape(6, 6), 24 * np.eye(6), atol=1e-12)


def test_concat_tangent_is_the_inputs_tangents_joined():
    a, b, ta, tb = (rng.standard_normal(s) for s in ((2, 1), (2, 3), (2, 1), (2, 3)))
    g = dp.Graph()
    left, right = g.param("a", a), g.param("b", b)
    joined = g.op("concat", left, right, axis=1)
    g.jvp({left: ta, right: tb})
    np.testing.assert_array_equal(joined.tangent, np.concatenate([ta, tb], axis=1))
    np.testing.assert_array_equal(g.edge_tangent(right, joined), np.concatenate([np.zeros((2, 1)), tb], axis=1))


# -- split and pad (issue 12), against torch in float64 --------------------------------------------


def assert_matches_torch(name, function, x, **attrs):
    """The op's value and gradient (for a random seed) equal torch's, exactly: nothing here does arithmetic
    but pad's additions of copied elements' gradients."""
    g, (leaf,), out = run(name, x, **attrs)
    seed = rng.standard_normal(out.shape)
    g.backward(out, seed=seed)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = function(t)
    expected.backward(torch.tensor(seed, dtype=torch.float64))
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.value, expected.detach().numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(leaf.grad, t.grad.numpy(), rtol=1e-12, atol=0)


SPLITS = [((7, 3), 3, 0), ((7, 3), 7, 0), ((7, 3), 10, 0), ((3, 7), 2, 1), ((3, 7), 2, -1), ((3, 7), [2, 0, 5], 1),
          ((7, 3), [7], 0), ((2, 6, 2), [1, 2, 3], 1)]


@pytest.mark.parametrize("shape, sizes, axis", SPLITS, ids=str)
def test_every_piece_of_split_matches_torch(shape, sizes, axis):
    x = rng.standard_normal(shape)
    pieces = torch.split(torch.tensor(x), sizes, dim=axis)
    for part in range(-len(pieces), len(pieces)):
        if 0 not in pieces[part].shape:
            check_op("split", x, sizes=sizes, axis=axis, part=part)
        assert_matches_torch("split", lambda t: torch.split(t, sizes, dim=axis)[part], x,
                             sizes=sizes, axis=axis, part=part)


def test_split_pieces_gradients_add_up_to_the_whole():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((5, 2)))
    pieces = [x.split(sizes=2, part=k) for k in range(3)]
    loss = sum(((k + 1) * piece).sum() for k, piece in enumerate(pieces))
    g.forward()
    g.backward(loss)
    np.testing.assert_array_equal(x.grad, [[1, 1], [1, 1], [2, 2], [2, 2], [3, 3]])
    np.testing.assert_array_equal(np.concatenate([p.value for p in pieces]), x.value)


@pytest.mark.parametrize("attrs, reason", [
    ({"sizes": 2, "part": 3}, r"part 3 must be an int naming one of the 3 pieces \(0 to 2"),
    ({"sizes": 2, "part": -4}, "part -4 must be an int naming one of the 3 pieces"),
    ({"sizes": 0, "part": 0}, "sizes 0 must be a positive piece size"),
    ({"sizes": [2, 2], "part": 0}, r"sizes \[2, 2\] add up to 4, but axis 0 has length 5"),
    ({"sizes": [2, -1, 4], "part": 0}, "sizes must be a positive int"),
    ({"sizes": 2, "axis": 2, "part": 0}, "axis 2 is out of range for 2 dimensions"),
    ({"sizes": 2.5, "part": 0}, "sizes must be a positive int"),
])
def test_split_rejects_bad_pieces(attrs, reason):
    with pytest.raises(dp.ShapeError, match=reason):
        dp.Graph().param("x", np.zeros((5, 2))).split(**attrs)


PADS = [((2, 3, 4), (1, 2)), ((2, 3, 4), (1, 2, 0, 1)), ((2, 3, 4), (0, 0, 2, 1, 1, 0)), ((3, 4), (-1, 2)),
        ((3, 4), (1, -2, -1, 0)), ((3, 4), (-2, -2)), ((5,), (3, 3)), ((3, 4), ())]


@pytest.mark.parametrize("shape, pad", PADS, ids=str)
@pytest.mark.parametrize("value", [0.0, -1.5])
def test_constant_pad_matches_torch(shape, pad, value):
    # negative widths crop, as in torch
    assert SECOND_ORDER_CHECKS <= set(check_op("pad", shape, pad=pad, value=value).errors)
    assert_matches_torch("pad", lambda t: torch.nn.functional.pad(t, pad, value=value), rng.standard_normal(shape),
                         pad=pad, value=value)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [((2, 3, 5), (2, 1)), ((1, 3, 4, 5), (1, 2, 3, 0)), ((2, 3, 5), (0, 4))],
                         ids=str)
def test_copying_pad_modes_match_torch(mode, shape, pad):
    # the gradient of an element copied to several places is the sum of theirs
    if mode == "reflect" and max(pad) >= min(shape[-len(pad) // 2:]):
        pytest.skip("reflect padding must be shorter than the axis")
    assert SECOND_ORDER_CHECKS <= set(check_op("pad", shape, pad=pad, mode=mode).errors)
    assert_matches_torch("pad", lambda t: torch.nn.functional.pad(t, pad, mode=mode), rng.standard_normal(shape),
                         pad=pad, mode=mode)


def test_pad_backward_node_is_a_pad_by_minus_the_widths():
    g = dp.Graph()
    x = g.param("x", rng.standard_normal((3, 4)))
    loss = (x.pad(pad=(1, -1, 2, 0)) * g.const(rng.standard_normal((5, 4)))).sum()
    g.forward()
    g.backward(loss, create_graph=True)
    assert x.grad_node.op == "pad" and x.grad_node.attrs["pad"] == (-1, 1, -2, 0)


@pytest.mark.parametrize("shape, attrs, reason", [
    ((3, 4), {"pad": (1,)}, "pad must be a tuple of ints, two per padded axis"),
    ((3, 4), {"pad": (1, 1, 1, 1, 1, 1)}, r"pads 3 axes, but the input has 2"),
    ((3, 4), {"pad": (-3, -2)}, "would leave axis 1 \\(length 4\\) with -1 elements"),
    ((3, 4), {"pad": (1, 1), "mode": "wrap"}, "mode must be one of 'constant', 'reflect', 'replicate', 'circular'"),
    ((3, 4), {"pad": (4, 0), "mode": "reflect"}, "reflect padding of axis 1 must be shorter than its length 4"),
    ((3, 4), {"pad": (5, 0), "mode": "circular"}, "may wrap around once at most"),
    ((3, 4), {"pad": (-1, 0), "mode": "replicate"}, "only mode 'constant' takes negative widths"),
    ((3, 4), {"pad": (1, 0), "mode": "reflect", "value": 2.0}, "takes its values from x and no value"),
])
def test_pad_rejects_bad_widths_and_modes(shape, attrs, reason):
    with pytest.raises(dp.ShapeError, match=reason):
        dp.Graph().param("x", np.zeros(shape)).pad(**attrs)
