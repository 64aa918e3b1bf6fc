"""dp.codegen: readable forward and backward source that runs on its own and agrees with the engine."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import dagprop as dp
from dagprop import source
from dagprop.op import SourceForm

from helpers import central_difference, example_loss


def _run(source: str, registry, leaves: dict):
    namespace: dict = {}
    exec(compile(source, "<codegen>", "exec"), namespace)
    values = namespace["forward"](registry, dict(leaves))
    return values, namespace


def _leaves(g: dp.Graph) -> dict:
    return {n.name: n.value for n in g if n.op is None}


# -- plugin ops: two without a source form (their lines call the op), one with ------------------


def _cube(x):
    return x**3


def _cube_derivative(x, *, out):
    return 3.0 * x**2


def _scale(x, *, by=1.0, note=None):
    return by * x


def _scale_vjp(g, x, *, out, by=1.0, note=None):
    return (by * g,)


def _scale_shape(x, *, by=1.0, note=None):
    return x


def _cubed_source(call):
    return f"{call.inputs[0]}**3"


def _cubed_derivative_source(call):
    return f"3.0 * {call.inputs[0]}**2"


class _Plugin:
    def __init__(self, *ops):
        self.ops = list(ops)

    @dp.hookimpl
    def dagprop_ops(self):
        return self.ops


CUBE = dp.Op.elementwise("cube", _cube, _cube_derivative)
SCALE = dp.Op("scale", forward=_scale, vjp=_scale_vjp, shape=_scale_shape)
CUBED = dp.Op.elementwise("cubed", _cube, _cube_derivative,
                          source=SourceForm(forward=_cubed_source, derivative=_cubed_derivative_source))


def test_generated_code_computes_the_engine_values_and_gradients(rng):
    g = dp.Graph()
    x = g.input("x", rng.standard_normal((3, 2)))
    V = g.param("V", rng.standard_normal((3, 3)))
    b = g.param("b", rng.standard_normal((3, 1)))
    v = V @ x + b
    h = v.tanh()
    loss = g.ops.l2_loss(h * h + h, g.input("y", rng.standard_normal((3, 2))))  # h reaches the loss twice
    source = dp.codegen(g, loss)
    g.forward()
    g.backward(loss)
    leaves = {n.name: n.value for n in g if n.op is None}
    values, namespace = _run(source, g.registry, leaves)
    np.testing.assert_allclose(values[loss.name], loss.value)
    grads = namespace["backward"](g.registry, values)
    np.testing.assert_allclose(grads["V"], V.grad)
    np.testing.assert_allclose(grads["b"], b.grad)
    assert "x" not in grads and "y" not in grads  # data inputs need no gradient

    def loss_of(Vv):
        return float(_run(source, g.registry, dict(leaves, V=Vv))[0][loss.name])

    np.testing.assert_allclose(grads["V"], central_difference(loss_of, V.value), rtol=1e-6, atol=1e-8)


def test_several_paths_into_one_node_are_added_explicitly():
    g = dp.Graph()
    a = g.param("a", 2.0)
    b, c = 3 * a, a ** 2
    d = g.op("mul", b, c, name="d")
    source = dp.codegen(g, d)
    assert "d_a = d_a + d_a_2" in source and "already has gradient from another path" in source
    g.forward()
    values, namespace = _run(source, g.registry, {n.name: n.value for n in g if n.op is None})
    assert float(namespace["backward"](g.registry, values)["a"]) == pytest.approx(9 * 2.0 ** 2)


def test_attributes_are_written_as_literals():
    g = dp.Graph(plugins=[_Plugin(SCALE)])
    m = g.param("m", np.arange(12.0).reshape(3, 4))
    picked = m[1:, ..., [0, 2]]
    total = picked.sum(axis=(0, 1), keepdims=True)
    loss = (g.ops.scale(total, by=-2.5, note=(slice(None, 1), float("-inf"))) ** 2).sum()
    source = dp.codegen(g, loss)
    assert "getitem_1 = m[1:, ..., [0, 2]]" in source  # an index, as written between brackets
    assert "np.add.at(d_m, (slice(1, None, None), Ellipsis, [0, 2]), d_getitem_1)" in source
    assert "getitem_1.sum(axis=(0, 1), keepdims=True)" in source
    # a fallback op's attributes are literals too
    assert "ops['scale'].forward(sum_1, by=-2.5, note=(slice(None, 1, None), float('-inf')))" in source
    g.forward()
    g.backward(loss)
    values, namespace = _run(source, g.registry, {"m": m.value})
    np.testing.assert_allclose(namespace["backward"](g.registry, values)["m"], m.grad)


def test_hostile_node_names_cannot_inject_code():
    g = dp.Graph(plugins=[_Plugin(CUBE)])
    x = g.param("x\nraise SystemExit('injected')", [1.0, 2.0])
    y = g.op("mul", x, x, name="y'); import os; os.system('echo pwned') #")
    z = g.op("cube", y, name="\"\"\"; __import__('os').system('echo pwned'); \"\"\"")
    loss = g.op("sum", z, name="class")
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == ["import numpy as np"] and tree.body[0] is imports[0]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Raise)]
    assert {n.name for n in tree.body[1:]} == {"forward", "backward"}
    # the names live on only as string constants: dict keys, and the op names of fallback calls
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert strings <= {n.name for n in g} | {"cube"}
    values, namespace = _run(source, g.registry, {x.name: x.value})
    np.testing.assert_allclose(namespace["backward"](g.registry, values)[x.name], x.grad)


def test_forward_only_without_a_loss():
    g = dp.Graph()
    w = g.param("w", [[1.0, 2.0]])
    (w * w).sum()
    source = dp.codegen(g)
    assert "def forward(ops, v):" in source and "def backward" not in source


ONE_OF_EACH_ATTRIBUTE_TYPE = {
    type(None): None, bool: True, int: -3, float: float("-inf"), str: "k", slice: slice(1, None, 2),
    type(Ellipsis): Ellipsis, tuple: (0,), list: [1, 2], dict: {"a": (1, 2.5)}, np.generic: np.int64(4),
    np.ndarray: np.array([0, 2]),
}


def test_files_and_generated_source_take_the_same_attribute_types():
    from dagprop.io import decode_attr, encode_attr
    from dagprop.op import ATTRIBUTE_TYPES
    from dagprop.source import _literal

    assert set(ONE_OF_EACH_ATTRIBUTE_TYPE) == set(ATTRIBUTE_TYPES)
    node = dp.Graph().param("w", 1.0)
    for kind, value in ONE_OF_EACH_ATTRIBUTE_TYPE.items():
        written = eval(_literal(node, "attr", value), {"float": float})  # the source a user would run
        saved = decode_attr(encode_attr(value))
        for copy in (written, saved):
            assert np.array_equal(copy, value) if kind is np.ndarray else copy == value, kind


@pytest.mark.parametrize("value", [print, object(), 1j])
def test_other_attribute_types_are_refused_by_both_with_one_message(value):
    from dagprop.io import encode_attr
    from dagprop.op import ATTRIBUTE_TYPES_TEXT
    from dagprop.source import _literal

    node = dp.Graph().param("w", 1.0)
    for write in (lambda: _literal(node, "attr", value), lambda: encode_attr(value)):
        with pytest.raises(dp.GraphError, match=ATTRIBUTE_TYPES_TEXT):
            write()


# -- the code a teacher writes ----------------------------------------------------------------------


def _two_layer_mlp(rng):
    """Column vectors, as in the course notes: a batch of 4 examples, 3 -> 5 -> 2."""
    g = dp.Graph()
    x = g.input("x", rng.standard_normal((3, 4)))
    W1, b1 = g.param("W1", rng.standard_normal((5, 3))), g.param("b1", rng.standard_normal((5, 1)))
    W2, b2 = g.param("W2", rng.standard_normal((2, 5))), g.param("b2", rng.standard_normal((2, 1)))
    z1 = g.op("matmul", W1, x, name="z1")
    a1 = g.op("add", z1, b1, name="a1")
    h1 = g.op("tanh", a1, name="h1")
    z2 = g.op("matmul", W2, h1, name="z2")
    a2 = g.op("add", z2, b2, name="a2")
    L = g.op("l2_loss", a2, g.input("y", rng.standard_normal((2, 4))), name="L")
    return g, L


def test_a_two_layer_mlp_reads_like_the_course(rng):
    g, L = _two_layer_mlp(rng)
    g.forward()
    g.backward(L)
    source = dp.codegen(g, L)
    lines = [line.strip() for line in source.splitlines()]
    for line in ["import numpy as np",
                 "z1 = W1 @ x", "a1 = z1 + b1", "h1 = np.tanh(a1)", "z2 = W2 @ h1", "a2 = z2 + b2",
                 "L = 0.5 * np.vdot(a2 - y, a2 - y)",
                 "d_L = np.asarray(seed, dtype=float)",
                 "d_a2 = d_L * (a2 - y)",
                 "d_z2 = d_a2", "d_b2 = d_a2.sum(axis=1, keepdims=True)",  # b2 was broadcast along the batch
                 "d_W2 = d_z2 @ h1.T", "d_h1 = W2.T @ d_z2",
                 "d_a1 = d_h1 * (1 - h1 * h1)",
                 "d_z1 = d_a1", "d_b1 = d_a1.sum(axis=1, keepdims=True)",
                 "d_W1 = d_z1 @ x.T"]:
        assert line in lines, line
    assert "ops[" not in source and "d_x" not in source  # no op is called; the data gets no gradient
    values, namespace = _run(source, None, _leaves(g))  # no registry needed
    grads = namespace["backward"](None, values)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(grads[name], g[name].grad, rtol=1e-12)


def test_fan_out_is_summed_explicitly_for_sourced_ops():
    g = dp.Graph()
    x = g.param("x", [1.0, -2.0])
    y = g.op("add", x, x, name="y")
    loss = g.op("sum", g.op("mul", y, y, name="s"), name="L")
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    assert "    # s = mul(y, y); y already has gradient from another path: add\n" \
           "    d_y = d_s * y\n    d_y_2 = d_s * y\n    d_y = d_y + d_y_2\n" in source
    assert "    d_x = d_y\n    d_x_2 = d_y\n    d_x = d_x + d_x_2\n" in source
    values, namespace = _run(source, None, _leaves(g))
    np.testing.assert_array_equal(namespace["backward"](None, values)["x"], x.grad)


@pytest.mark.parametrize("a, b, written", [
    ((3, 4), (3, 1), "d_b = d_c.sum(axis=1, keepdims=True)"),
    ((3, 4), (4,), "d_b = d_c.sum(axis=0)"),
    ((2, 3, 4), (3, 1), "d_b = d_c.sum(axis=0).sum(axis=1, keepdims=True)"),
    ((3, 4), (), "d_b = d_c.sum()"),
    ((3, 1), (1, 4), "d_a = d_c.sum(axis=1, keepdims=True)"),
    ((3, 4), (3, 4), "d_b = d_c\n"),
])
def test_broadcasting_is_undone_only_where_it_happened(a, b, written):
    rng = np.random.default_rng(0)
    g = dp.Graph()
    A, B = g.param("a", rng.standard_normal(a)), g.param("b", rng.standard_normal(b))
    c = g.op("add", A, B, name="c")
    loss = g.op("sum", g.op("mul", c, c), name="L")
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    assert written in source
    values, namespace = _run(source, None, _leaves(g))
    grads = namespace["backward"](None, values)
    np.testing.assert_allclose(grads["a"], A.grad, rtol=1e-12)
    np.testing.assert_allclose(grads["b"], B.grad, rtol=1e-12)


# -- ops with and without a source form, and the cases a form leaves to the op ----------------------


def test_a_plugin_op_writes_itself_from_the_source_of_its_derivative():
    g = dp.Graph(plugins=[_Plugin(CUBED, CUBE)])
    x = g.param("x", [0.5, -1.5])
    loss = g.op("sum", g.op("cube", g.op("cubed", x, name="c"), name="k"), name="L")
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    assert "    c = x**3\n" in source and "    d_x = d_c * (3.0 * x**2)\n" in source
    assert "    k = ops['cube'].forward(c)\n" in source and "    d_c, = ops['cube'].vjp(d_k, c, out=k)\n" in source
    values, namespace = _run(source, g.registry, _leaves(g))
    np.testing.assert_allclose(namespace["backward"](g.registry, values)["x"], x.grad, rtol=1e-12)


def test_each_rule_falls_back_on_its_own():
    g = dp.Graph()
    x, y = g.param("x", [0.5, 2.0]), g.param("y", [3.0, 0.0])
    W = g.param("W", np.ones((3, 2, 2)))
    p = g.op("pow", x, y, name="p")  # an exponent node: the engine's guards at x = 0 stay in the op
    q = g.op("matmul", p, W, name="q")  # a vector times a stack of matrices
    loss = g.op("sum", q, name="L")
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    assert "    p = x ** y\n" in source and "ops['pow'].vjp(d_p, x, y, out=p, needs=(True, True))" in source
    assert "    q = p @ W\n" in source and "ops['matmul'].vjp(d_q, p, W, out=q, needs=(True, True))" in source
    values, namespace = _run(source, g.registry, _leaves(g))
    grads = namespace["backward"](g.registry, values)
    for node in (x, y, W):
        np.testing.assert_allclose(grads[node.name], node.grad, rtol=1e-12)


def test_without_shapes_every_line_calls_the_op():
    g = dp.Graph()
    W, x = g.param("W", np.eye(2)), g.input("x")  # x has no value yet, so no shape
    loss = g.op("sum", g.op("matmul", W, x, name="z"), name="L")
    source = dp.codegen(g, loss)
    assert "    z = ops['matmul'].forward(W, x)\n" in source and "    d_L = seed\n" in source
    values, namespace = _run(source, g.registry, {"W": W.value, "x": np.array([1.0, 2.0])})
    np.testing.assert_allclose(namespace["backward"](g.registry, values)["W"], [[1.0, 2.0], [1.0, 2.0]])


def _wrong_count_vjp_source(call):
    return (call.grad, call.grad)


def test_a_source_form_with_the_wrong_number_of_gradients_is_named():
    bad = _Plugin(dp.Op("bad", forward=_scale, vjp=_scale_vjp,
                        source=SourceForm(forward=_cubed_source, vjp=_wrong_count_vjp_source)))
    g = dp.Graph(plugins=[bad])
    loss = g.op("sum", g.op("bad", g.param("x", [1.0]), name="b"), name="L")
    g.forward()
    with pytest.raises(dp.GraphError, match="source form of op 'bad' .* wrote 2 gradients for node 'b', which "
                                            "has 1 inputs"):
        dp.codegen(g, loss)


# -- the generated code gives the engine's numbers ----------------------------------------------------


def _assert_same_numbers(g: dp.Graph, loss) -> str:
    """Run the graph and its generated source; the values and gradients must agree to rounding."""
    g.forward()
    g.backward(loss)
    source = dp.codegen(g, loss)
    values, namespace = _run(source, g.registry, _leaves(g))
    grads = namespace["backward"](g.registry, values)
    for node in g:
        if node.op is not None:
            _assert_close(values[node.name], node.value, node.name)
        if node.name in grads:
            _assert_close(grads[node.name], node.grad, f"d {node.name}")
    assert {n.name for n in g if n.grad is not None} == set(grads)
    return source


def _assert_close(got, expected, what):
    expected = np.asarray(expected)
    assert np.shape(got) == expected.shape, what
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * scale, err_msg=what)


@pytest.mark.parametrize("name", sorted(dp.Graph().registry.names()))
def test_every_built_in_op_at_its_example(name):
    _assert_same_numbers(*example_loss(name))


SHAPES = [(), (3,), (1, 3), (2, 3), (2, 1), (2, 2, 3)]
UNARY = ["neg", "exp", "log", "reciprocal", "relu", "sigmoid", "tanh", "pow", "sum", "mean", "max", "min",
         "transpose", "reshape", "broadcast_to", "getitem", "softmax", "log_softmax", "cube", "scale", "stack"]
BINARY = ["add", "sub", "mul", "div", "matmul", "pow_node", "l2_loss", "concat"]


def _positive(x):
    """A value between 1/e and e, for log, division and fractional powers."""
    return x.tanh().exp()


def _apply(draw, g: dp.Graph, name: str, x, y):
    shape = x.shape
    if name in ("log", "reciprocal"):
        return g.op(name, _positive(x))
    if name == "pow":
        exponent = draw(st.sampled_from([2, 3.0, -1.0, 0.5, 1.0]))
        return g.op("pow", _positive(x) if exponent in (-1.0, 0.5) else x, exponent=exponent)
    if name in ("sum", "mean", "max", "min"):
        axis = draw(st.sampled_from([None, 0, -1, (0, -1)])) if shape else None
        return g.op(name, x, axis=axis, keepdims=draw(st.booleans()))
    if name == "transpose":
        return g.op(name, x, axes=(1, 2, 0)) if len(shape) == 3 else g.op(name, x)
    if name == "reshape":
        return g.op(name, x, shape=(-1,))
    if name == "broadcast_to":
        return g.op(name, x, shape=(2, *shape))
    if name == "getitem":
        if not shape or shape[0] == 0:
            return None
        return g.op(name, x, index=draw(st.sampled_from([(Ellipsis, slice(None, 1)), [0, 0], (0,), (slice(1, None),)])))
    if name in ("softmax", "log_softmax"):
        return g.op(name, x, axis=-1) if shape else None
    if name == "scale":
        return g.op(name, x, by=-1.5)
    if name == "stack":
        return g.op(name, x, x, axis=-1)
    if name == "div":
        return g.op(name, x, _positive(y))
    if name == "pow_node":
        return g.op("pow", _positive(x), y)
    if name == "concat":
        return g.op(name, x, y, axis=0) if shape else None
    return g.op(name, x, y) if name in BINARY else g.op(name, x)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_graphs_give_the_engines_values_and_gradients(data):
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = dp.Graph(plugins=[_Plugin(CUBE, SCALE)])
    nodes = [g.param(f"p{k}", rng.standard_normal(draw(st.sampled_from(SHAPES))))
             for k in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(UNARY + BINARY))
        x, y = draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))  # often the same node: fan-out
        try:
            made = _apply(draw, g, name, x, y)
        except dp.ShapeError:
            continue
        if made is not None:
            nodes.append(made)
    consumed = {i.index for n in g for i in n.inputs}
    ends = [g.op("sum", n) for n in list(g) if n.op is not None and n.index not in consumed]
    assume(ends)
    loss = ends[0]
    for end in ends[1:]:
        loss = loss + end
    g.forward()
    assume(all(np.all(np.isfinite(n.value)) and np.all(np.abs(n.value) < 1e8) for n in g))
    _assert_same_numbers(g, loss)


# -- the rewrites compiled steps make of written lines ------------------------------------------


def _shared(body: list[str]) -> list[str]:
    return source._computed_once(body, lambda wanted: wanted)


def test_an_operation_written_twice_is_computed_once_before_its_first_use():
    body = ["    a, b, = v[0], v[1],", "    r = np.vdot(a - b, a - b)", "    d = 2.0 * (a - b)", "    e = a - b"]
    shared = _shared(body)
    assert len(shared) == len(body)  # each line stays at its index
    assert shared[1].splitlines() == ["    a_sub_b = a - b", "    r = np.vdot(a_sub_b, a_sub_b)"]
    assert shared[2:] == ["    d = 2.0 * a_sub_b", "    e = a_sub_b"]


def test_operations_sharing_a_shared_one_are_shared_in_a_second_round():
    shared = _shared(["    c = (a * b + 1) * 2", "    d = np.exp(a * b + 1)"])
    assert "\n".join(shared).splitlines() == ["    a_mult_b = a * b", "    a_mult_b_add_c = a_mult_b + 1",
                                             "    c = a_mult_b_add_c * 2", "    d = np.exp(a_mult_b_add_c)"]


@pytest.mark.parametrize("body", [
    ["    c = 2 * a * b", "    d = a * b ** 2"],  # neither computes a * b: (2 * a) * b and a * (b ** 2)
    ["    c = a - b", "    a = a * 2", "    d = a - b"],  # a changed in between
    ["    c = x if a - b else y", "    d = y if x else a - b"],  # evaluated on some paths only
    ["    t = a - b", "    t[0] += 1", "    d = a - b"],  # a shared result could be changed in place
    ["    t = a - b", "    np.add(a, b, out=t)", "    d = a - b"],
    ["    c = d = a - b", "    e = a - b"],
    ["    c = a.b - c", "    d = a.b - c"],  # not two names
])
def test_what_is_not_shared(body):
    assert _shared(body) == body


def test_names_holding_one_object_are_found():
    held = source._same_objects(["    a = x + 1", "    b = a", "    c = b", "    b = c * 2", "    d, e, = a, b"])
    assert held["a"] == held["c"] and len({held["a"], held["b"], held["d"], held["e"]}) == 4
    assert source._same_objects(["    a = b", "    a += 1"]) == {}  # rebound another way: nothing is claimed
