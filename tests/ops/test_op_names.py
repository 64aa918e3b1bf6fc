"""The names an op may take: it becomes a node method (x.<name>()), so not a keyword, not a
name starting with '_' (dagprop/op.py), and not a name a Node attribute would shadow
(dagprop/registry.py)."""

import numpy as np
import pytest

import dagprop as dp
from dagprop.registry import NODE_ATTRIBUTES


def _forward(x):
    return 2.0 * x


def _vjp(g, x, *, out):
    return (2.0 * g,)


class Shadowing:
    """A plugin whose only op is named like a Node attribute."""

    def __init__(self, name):
        self.name = name

    @dp.hookimpl
    def dagprop_ops(self):
        return [dp.Op(self.name, forward=_forward, vjp=_vjp)]


def test_the_reserved_names_are_the_public_attributes_of_node():
    # Node.__getattr__ turns unknown names into ops; any public attribute would shadow one
    assert NODE_ATTRIBUTES == {name for name in dir(dp.Node) if not name.startswith("_")}


@pytest.mark.parametrize("name", sorted(NODE_ATTRIBUTES))
def test_an_op_named_like_a_node_attribute_is_refused(name):
    with pytest.raises(dp.PluginError) as caught:
        dp.Graph(plugins=[Shadowing(name)])
    assert str(caught.value) == (
        f"op {name!r} from plugin '{Shadowing.__module__}.Shadowing' cannot be registered: {name!r} is an "
        f"attribute of dagprop.Node, so node.{name} would give that attribute and never the op (ops are node "
        f"methods only under names Node does not use); rename the op"
    )


def test_register_plugin_refuses_it_and_changes_nothing():
    before = dp.Graph().registry.names()
    plugin = Shadowing("grad")
    try:
        with pytest.raises(dp.PluginError, match="'grad' is an attribute of dagprop.Node"):
            dp.register_plugin(plugin)
    finally:
        dp.unregister_plugin(plugin)
    assert dp.Graph().registry.names() == before


def test_a_name_close_to_an_attribute_is_fine():
    g = dp.Graph(plugins=[Shadowing("values")])
    x = g.param("x", np.array([1.0, 2.0]))
    y = x.values()
    g.forward()
    np.testing.assert_array_equal(y.value, [2.0, 4.0])


@pytest.mark.parametrize("name", ["lambda", "class", "None"])
def test_an_op_name_may_not_be_a_keyword(name):
    with pytest.raises(dp.PluginError, match=rf"op '{name}': an op name must be a Python identifier and not a "
                                             rf"keyword, since it becomes a node method \(x.{name}\(...\)\)"):
        dp.Op(name, forward=_forward, vjp=_vjp)


@pytest.mark.parametrize("name", ["_hidden", "__add__"])
def test_an_op_name_may_not_start_with_an_underscore(name):
    with pytest.raises(dp.PluginError, match=rf"op '{name}': an op name may not start with '_'"):
        dp.Op(name, forward=_forward, vjp=_vjp)
