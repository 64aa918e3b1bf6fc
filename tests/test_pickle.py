"""Graphs pickle: structure, values, gradients, edge gradients, seeds and tangents travel; ops
are looked up again by name; the plan, locks and caches are made again on the other side."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import dagprop as dp

from test_compile import same_bits


def layer(rng: np.random.Generator) -> tuple[dp.Graph, dp.Node]:
    """A layer whose hidden value reaches the loss twice, with a renamed node and a scope."""
    g = dp.Graph()
    x = g.input("x", rng.standard_normal((3, 2)))
    with g.scope("layer"):
        W = g.param("W", rng.standard_normal((3, 3)))
        b = g.param("b", rng.standard_normal((3, 1)))
        h = (W @ x + b).tanh()
    g.rename(h, "h")
    loss = g.ops.l2_loss(h * h + h, g.input("y", rng.standard_normal((3, 2))))
    return g, loss


def round_trip(*objects):
    return pickle.loads(pickle.dumps(objects if len(objects) > 1 else objects[0]))


def assert_same_numbers(expected: dp.Graph, got: dp.Graph) -> None:
    want, have = expected.run, got.run
    assert [n.name for n in expected] == [n.name for n in got]
    for node in expected:
        assert same_bits(want.values[node.index], have.values[node.index]), node.name
        assert same_bits(want.grads[node.index], have.grads[node.index]), node.name
    assert sorted(want.edge_grads) == sorted(have.edge_grads)
    for key, grad in want.edge_grads.items():
        assert same_bits(grad, have.edge_grads[key]), key
    assert [(n.name, s.tolist()) for n, s in want.seeds] == [(n.name, s.tolist()) for n, s in have.seeds]


def test_values_gradients_and_edge_gradients_travel(rng):
    g, loss = layer(rng)
    g.forward()
    g.backward(loss)
    h, loss2 = round_trip(g, loss)
    assert_same_numbers(g, h)
    assert same_bits(h.edge_grad("h", h["mul_1"]), g.edge_grad("h", g["mul_1"]))
    assert [(n.name, n.kind, n.op, n.scope, [i.name for i in n.inputs]) for n in h] == \
           [(n.name, n.kind, n.op, n.scope, [i.name for i in n.inputs]) for n in g]
    assert h.registry is g.registry  # the default registry of this process: ops looked up by name
    assert all(a.op_def is b.op_def for a, b in zip(g, h))


def test_a_node_of_the_unpickled_graph_belongs_to_it(rng):
    g, loss = layer(rng)
    h, loss2, W2 = round_trip(g, loss, g["W"])
    assert loss2.graph is h and loss2 is h[loss.name] and W2 is h["W"]
    assert h.nx.nodes["h"]["handle"] is h["h"]
    alone = round_trip(g["b"])  # a node alone brings its graph
    assert alone.name == "b" and alone.graph["b"] is alone
    assert (alone * 2.0).graph is alone.graph


def test_a_second_backward_accumulates_after_unpickling(rng):
    g, loss = layer(rng)
    g.forward()
    g.backward(loss)
    h, loss2 = round_trip(g, loss)
    g.backward(loss)
    h.backward(loss2)
    assert_same_numbers(g, h)
    assert len(h.run.seeds) == 2


def test_the_plan_is_made_again_and_training_goes_on_bit_for_bit(rng):
    g, loss = layer(rng)
    g.forward()
    h, loss2 = round_trip(g, loss)
    assert h._plan is None  # worked out when first needed
    for graph, node in ((g, loss), (h, loss2)):
        for _ in range(3):
            graph.zero_grad()
            graph.forward()
            graph.backward(node)
            graph.step(0.1)
    assert_same_numbers(g, h)
    assert [h.nodes[i].name for i in h.plan.order] == [g.nodes[i].name for i in g.plan.order]


def test_compile_after_unpickling(rng):
    g, loss = layer(rng)
    h, loss2 = round_trip(g, loss)
    expected = g.compile(loss, lr=0.05)
    got = h.compile(loss2, lr=0.05)
    for _ in range(3):
        assert same_bits(got(), expected())
    assert_same_numbers(g, h)


def test_new_nodes_get_fresh_names_and_the_graph_its_own_lock(rng):
    g, loss = layer(rng)
    h = round_trip(g)
    assert (h["W"] * 2.0).name == (g["W"] * 2.0).name
    assert h._lock is not g._lock
    with h.scope("extra"):
        assert h.const(1.0).scope == ("extra",)


def test_tangents_seeds_and_gradient_nodes_travel(rng):
    g = dp.Graph()
    x = g.param("x", rng.standard_normal(3))
    y = (x * x).sum()
    g.jvp({x: np.ones(3)})
    g.backward(y, create_graph=True)
    h, y2 = round_trip(g, y)
    assert same_bits(h["x"].tangent, x.tangent)
    assert same_bits(h.edge_tangent("x", h["mul_1"]), g.edge_tangent(x, g["mul_1"]))
    assert h["x"].grad_node.name == x.grad_node.name and h["x"].grad_node.graph is h
    assert same_bits(h["x"].grad, x.grad)


def test_copies_are_independent(rng):
    g, loss = layer(rng)
    g.forward()
    g.backward(loss)
    for other in (copy.copy(g), copy.deepcopy(g)):
        other.step(1.0)
        assert not same_bits(other["W"].value, g["W"].value)
        assert other["W"].graph is other


class _Cubes:
    @dp.hookimpl
    def dagprop_ops(self):
        return [dp.Op("cube_for_pickling", forward=_cube, vjp=_cube_vjp)]


def _cube(x):
    return x ** 3


def _cube_vjp(g, x, *, out):
    return (3 * x * x * g,)


def test_plugins_given_to_the_graph_travel_along():
    g = dp.Graph(plugins=[_Cubes()])
    x = g.param("x", 2.0)
    y = g.ops.cube_for_pickling(x)
    g.forward()
    g.backward(y)
    h = round_trip(g)
    assert float(h[y.name].value) == 8.0 and float(h["x"].grad) == 12.0
    assert "cube_for_pickling" in h.registry


def test_an_op_unknown_on_the_other_side_is_a_clear_error():
    plugin = _Cubes()
    dp.register_plugin(plugin)
    try:
        g = dp.Graph()
        g.ops.cube_for_pickling(g.param("x", 2.0))
        data = pickle.dumps(g)
    finally:
        dp.unregister_plugin(plugin)
    with pytest.raises(dp.UnknownOpError) as error:
        pickle.loads(data)
    message = str(error.value)
    assert "cube_for_pickling_1" in message and "'cube_for_pickling'" in message
    assert "register the plugin" in message and "before unpickling" in message
