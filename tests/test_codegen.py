"""dp.codegen: readable forward and backward source that runs on its own and agrees with the engine."""

from __future__ import annotations

import ast

import numpy as np
import pytest

import dagprop as dp

from helpers import central_difference


def _run(source: str, registry, leaves: dict):
    namespace: dict = {}
    exec(compile(source, "<codegen>", "exec"), namespace)
    values = namespace["forward"](registry, dict(leaves))
    return values, namespace


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
    g = dp.Graph()
    m = g.param("m", np.arange(12.0).reshape(3, 4))
    picked = m[1:, ..., [0, 2]]
    total = picked.sum(axis=(0, 1), keepdims=True)
    loss = (total ** 2).sum()
    source = dp.codegen(g, loss)
    assert "index=(slice(1, None, None), Ellipsis, [0, 2])" in source and "axis=(0, 1)" in source
    g.forward()
    g.backward(loss)
    values, namespace = _run(source, g.registry, {"m": m.value})
    np.testing.assert_allclose(namespace["backward"](g.registry, values)["m"], m.grad)


def test_hostile_node_names_cannot_inject_code():
    g = dp.Graph()
    x = g.param("x\nraise SystemExit('injected')", [1.0, 2.0])
    y = g.op("mul", x, x, name="y'); import os; os.system('echo pwned') #")
    loss = g.op("sum", y, name="class")
    source = dp.codegen(g, loss)
    tree = ast.parse(source)
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom, ast.Raise))]
    assert {n.name for n in tree.body} == {"forward", "backward"}
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert called <= {"forward", "vjp", "update"}
    g.forward()
    g.backward(loss)
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
