"""Ops come from pluggy plugins: local plugins, registered plugins, entry points, and their errors."""

from __future__ import annotations

import sys
import textwrap
import types

import numpy as np
import pytest

import dagprop as dp
from dagprop import registry as registry_module


def _cube_vjp(g, x, *, out):
    return (3 * x**2 * g,)


def _cube_forward(x):
    return x**3


@dp.hookimpl
def dagprop_ops():
    return [dp.Op("cube", forward=_cube_forward, vjp=_cube_vjp, inputs=("x",))]


this_module = sys.modules[__name__]


def test_a_module_plugin_adds_an_op_to_one_graph():
    g = dp.Graph(plugins=[this_module])
    x = g.param("x", [1.0, 2.0])
    y = g.ops.cube(x)
    loss = y.sum()
    g.forward()
    g.backward(loss)
    np.testing.assert_allclose(x.grad, [3.0, 12.0])
    assert g.registry["cube"].plugin == __name__
    assert "cube" not in dp.Graph().registry  # other graphs are unaffected


def test_plugin_op_passes_check_op():
    report = dp.testing.check_op("cube", (2, 3), plugins=[this_module])
    assert report.errors["vjp vs finite differences"] < 1e-6


def test_register_plugin_reaches_new_graphs_and_unregister_removes_it():
    plugin = types.SimpleNamespace(dagprop_ops=dp.hookimpl(lambda: [dp.Op("square_it", forward=np.square,
                                                                           vjp=lambda g, x, *, out: (2 * x * g,))]))
    dp.register_plugin(plugin)
    try:
        g = dp.Graph()
        assert g.ops.square_it(g.param("a", 2.0)).op == "square_it"
    finally:
        dp.unregister_plugin(plugin)
    assert "square_it" not in dp.Graph().registry


def test_two_plugins_defining_one_op_name_both_get_named():
    class First:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("twin", forward=np.copy, vjp=lambda g, x, *, out: (g,))]

    class Second(First):
        pass

    with pytest.raises(dp.PluginError, match=r"'twin' is defined by two plugins.*First.*Second|Second.*First"):
        dp.Graph(plugins=[First(), Second()])


def test_a_plugin_cannot_silently_replace_a_builtin():
    class Impostor:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("add", forward=np.subtract, vjp=lambda g, a, b, *, out: (g, -g), inputs=("a", "b"))]

    with pytest.raises(dp.PluginError, match=r"'add'.*dagprop_plugins.elementwise"):
        dp.Graph(plugins=[Impostor()])
    with pytest.raises(dp.PluginError):
        dp.register_plugin(Impostor())
    assert dp.Graph().registry["add"].plugin == "dagprop_plugins.elementwise"


def test_malformed_plugins_are_reported():
    class ReturnsJunk:
        @dp.hookimpl
        def dagprop_ops(self):
            return ["not an op"]

    class Misspelled:
        @dp.hookimpl
        def dagprop_opz(self):
            return []

    with pytest.raises(dp.PluginError, match="each item must be a dagprop.Op"):
        dp.Graph(plugins=[ReturnsJunk()])
    with pytest.raises(dp.PluginError, match="unknown hook"):
        dp.Graph(plugins=[Misspelled()])
    with pytest.raises(dp.PluginError, match="identifier"):
        dp.Op("not a name", forward=np.copy, vjp=np.copy)
    with pytest.raises(dp.PluginError, match="vjp must be callable"):
        dp.Op("x", forward=np.copy, vjp=None)


def test_vjp_returning_the_wrong_structure_names_op_plugin_and_expectation():
    class Bare:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("bare", forward=np.copy, vjp=lambda g, x, *, out: g)]  # forgot the tuple

    g = dp.Graph(plugins=[Bare()])
    x = g.param("x", [1.0, 2.0])
    y = g.op("bare", x).sum()
    g.forward()
    with pytest.raises(dp.OpError, match=r"vjp of op 'bare'.*plugin.*Bare.*returned ndarray; expected a tuple of 1"):
        g.backward(y)


def test_forward_returning_the_wrong_shape_is_caught():
    class Shrinks:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("shrink", forward=lambda x: x[:1], vjp=lambda g, x, *, out: (g,), shape=lambda s: s)]

    g = dp.Graph(plugins=[Shrinks()])
    y = g.op("shrink", g.param("x", [1.0, 2.0]), name="s")
    with pytest.raises(dp.OpError, match=r"forward of op 'shrink' at node 's'.*returned shape \(1,\)"):
        g.forward()


def test_entry_point_plugin_is_loaded(tmp_path, monkeypatch):
    package = tmp_path / "dagprop_cube_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np
        import dagprop as dp

        def _vjp(g, x, *, out):
            return (3 * x ** 2 * g,)

        @dp.hookimpl
        def dagprop_ops():
            return [dp.Op("cube_ep", forward=lambda x: x ** 3, vjp=_vjp)]
    """))
    dist = tmp_path / "dagprop_cube_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dagprop-cube-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dagprop]\ncube = dagprop_cube_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry_module, "_default", None)
    g = dp.Graph()
    x = g.param("x", 2.0)
    y = g.ops.cube_ep(x)
    g.forward()
    g.backward(y)
    assert float(x.grad) == 12.0
    assert g.registry["cube_ep"].plugin == "cube"  # the entry point's name
    monkeypatch.setattr(registry_module, "_default", None)


def test_check_op_with_the_wrong_number_of_inputs_says_so():
    with pytest.raises(dp.GraphError, match=r"check_op\('exp'\): the op takes 1 inputs \(x\), got 2"):
        dp.testing.check_op("exp", (2,), (2,))


def test_a_hook_function_without_hookimpl_is_reported():
    """Forgetting @dp.hookimpl used to register nothing, silently (issue 11, item 14)."""

    class Forgetful:
        def dagprop_ops(self):
            return [dp.Op("forgotten", forward=_cube_forward, vjp=_cube_vjp)]

    with pytest.raises(dp.PluginError, match=r"has a dagprop_ops that is not marked @dagprop.hookimpl.*"
                                             r"put @dp.hookimpl on the line above its def"):
        dp.Graph(plugins=[Forgetful()])
    with pytest.raises(dp.PluginError, match="not marked @dagprop.hookimpl"):
        dp.register_plugin(Forgetful())
    assert "forgotten" not in dp.Graph().registry
