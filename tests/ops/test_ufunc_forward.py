"""The rule the plugin guide states for NumPy ufuncs as forward: they take no attributes and
exactly the declared inputs, and work everywhere a function does (codegen, save and load)."""

import re

import numpy as np
import pytest

import dagprop as dp
from dagprop import Op

rng = np.random.default_rng(5)


def _vjp(g, *args, out):
    return tuple(g for _ in args)


UFUNC_OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "matmul": 2, "neg": 1, "exp": 1, "log": 1, "tanh": 1,
             "sqrt": 1, "abs": 1, "maximum": 2, "minimum": 2}


def test_the_built_in_ops_that_pass_a_ufunc_are_these():
    registry = dp.Graph().registry
    assert {op.name for op in registry if isinstance(op.forward, np.ufunc)} == set(UFUNC_OPS)


@pytest.mark.parametrize("name", UFUNC_OPS)
@pytest.mark.parametrize("keyword", ["where", "dtype", "out", "casting"])
def test_a_ufunc_forward_takes_no_attributes(name, keyword):
    g = dp.Graph()
    args = [g.param(f"x{i}", np.full((3, 3), 1.5)) for i in range(UFUNC_OPS[name])]
    with pytest.raises(dp.GraphError, match=rf"op '{name}' has no attribute {keyword} \(it accepts: none\)"):
        g.op(name, *args, **{keyword: None})


def test_a_ufunc_taking_fewer_inputs_than_the_op_declares_is_refused():
    # np.exp(a, b) would write exp(a) into the input b
    with pytest.raises(dp.PluginError, match=r"ufunc exp, which takes 1 input, but the op declares 2 \(a, b\)"):
        Op("exp2", forward=np.exp, vjp=_vjp, inputs=("a", "b"))


@pytest.mark.parametrize("options, declared", [({}, "1 (x)"), ({"variadic": True}, "1 to any number of (x)"),
                                               ({"inputs": ("a", "b"), "min_inputs": 1}, "1 to 2 (a, b)")])
def test_a_ufunc_forward_must_match_the_declared_inputs(options, declared):
    expected = f"ufunc add, which takes 2 inputs, but the op declares {declared};"
    with pytest.raises(dp.PluginError, match=re.escape(expected)):
        Op("plus", forward=np.add, vjp=_vjp, **options)


def test_a_ufunc_with_two_outputs_is_refused():
    with pytest.raises(dp.PluginError, match="ufunc divmod, which returns 2 arrays"):
        Op("divmod", forward=np.divmod, vjp=_vjp, inputs=("a", "b"))


def test_ufunc_forwards_work_in_generated_code_and_saved_graphs(tmp_path):
    g = dp.Graph()
    a, b = g.param("a", rng.uniform(0.5, 2.0, 3)), g.param("b", rng.standard_normal(3))
    loss = g.op("sum", ((a + b) * a - b / a).exp().log().tanh() - (-a), name="loss")
    g.forward()
    g.backward(loss)
    namespace = {}
    exec(dp.codegen(g, loss), namespace)
    values = namespace["forward"](g.registry, {"a": a.value, "b": b.value})
    np.testing.assert_allclose(values["loss"], loss.value)
    np.testing.assert_allclose(namespace["backward"](g.registry, values)["a"], a.grad)
    loaded = dp.load(dp.save(g, tmp_path / "graph.json", loss=loss))
    loaded.forward()
    np.testing.assert_allclose(loaded["loss"].value, loss.value)
