"""Building graphs: leaves, op nodes, operators, names, the networkx view, build-time errors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import dagprop as dp
from dagprop import scheduler


def test_the_documented_api_walkthrough_runs_and_is_right():
    g = dp.Graph()
    x = g.input("x", [[1, 3], [4, .3], [2, 2]])
    V = g.param("V", np.eye(3))
    b = g.param("b", np.zeros((3, 1)))
    c = g.const(2.0)
    v = V @ x + b
    z = g.op("matmul", v, g.input("alpha", [[5, -2]]).T, name="z")
    h = g.ops.sigmoid(z)
    h2 = z.sigmoid()
    y = np.array([[-1], [20], [5]], dtype=float)
    L = g.ops.l2_loss(z, g.input("y", y))
    g.forward()
    g.backward(L)
    xv, alpha = np.array([[1, 3], [4, .3], [2, 2]]), np.array([[5, -2]])
    z_expected = xv @ alpha.T
    dz = z_expected - y  # dL/dz of 0.5 ||z - y||^2
    np.testing.assert_allclose(z.value, z_expected)
    np.testing.assert_allclose(h.value, 1 / (1 + np.exp(-z_expected)))
    np.testing.assert_allclose(h2.value, h.value)
    np.testing.assert_allclose(V.grad, dz @ alpha @ xv.T)  # dL/dV = (dL/dz alpha) x^T
    np.testing.assert_allclose(b.grad, dz * alpha.sum())  # bias gradient: the columns of dL/dv summed
    np.testing.assert_allclose(g.edge_grad(v, z), dz @ alpha)
    assert g["z"] is z and c.kind == "const" and c.op is None
    assert x.grad is None and h.grad is None  # data input and a node the loss does not use
    assert g.jacobian(z, V).shape == (3, 1, 3, 3)
    g.step(lr=0.002)
    np.testing.assert_allclose(V.value, np.eye(3) - 0.002 * (dz @ alpha @ xv.T))
    g.zero_grad()
    assert V.grad is None and g.edge_grad(v, z) is None


def test_leaves_become_float64_arrays_and_scalars_are_zero_dimensional(graph):
    assert graph.input("a", [[1, 2]]).value.dtype == np.float64
    s = graph.param("s", 3)
    assert s.value.shape == () and s.value.dtype == np.float64
    assert graph.const(np.float32(1.5)).value.dtype == np.float32  # floating input keeps its precision


def test_leaf_values_are_copied(graph):
    data = np.ones(3)
    x = graph.input("x", data)
    data[0] = 7.0
    assert x.value[0] == 1.0


def test_node_handles_describe_themselves(graph):
    x = graph.input("x", np.zeros((2, 3)))
    w = graph.param("w", np.zeros((3, 4)))
    y = x @ w
    assert (x.kind, w.kind, y.kind) == ("input", "param", "op")
    assert (x.op, y.op) == (None, "matmul")
    assert y.shape == (2, 4) and y.value is None  # shape inferred before any forward
    assert "matmul" in repr(y)


def test_operators_and_reflected_forms_build_the_right_ops(graph):
    x = graph.param("x", [1.0, 2.0, 4.0])
    exprs = {
        "add": 1 + x, "sub": 10 - x, "mul": 2 * x, "div": 10.0 / x, "neg": -x, "matmul": np.ones((2, 3)) @ x,
    }
    for op, node in exprs.items():
        assert node.op == op
    graph.forward()
    np.testing.assert_allclose(exprs["div"].value, [10.0, 5.0, 2.5])
    np.testing.assert_allclose(exprs["sub"].value, [9.0, 8.0, 6.0])
    np.testing.assert_allclose(exprs["matmul"].value, [7.0, 7.0])
    array_left = np.array([1.0, 1.0, 1.0]) * x  # numpy defers to the node
    assert isinstance(array_left, dp.Node)


def test_number_exponent_is_an_attribute_and_node_exponent_an_input(graph):
    x = graph.param("x", [1.0, 2.0])
    cube = x ** 3
    assert cube.attrs == {"exponent": 3.0} and len(cube.inputs) == 1
    p = graph.param("p", 2.0)
    power = x ** p
    assert [n.name for n in power.inputs] == ["x", "p"]
    assert graph.nx.in_degree(cube.name) == 1


def test_transpose_indexing_and_method_sugar(graph):
    m = graph.param("m", np.arange(6.0).reshape(2, 3))
    t, row, total = m.T, m[1], m.sum(axis=0)
    assert (t.op, row.op, total.op) == ("transpose", "getitem", "sum")
    graph.forward()
    np.testing.assert_array_equal(t.value, np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(row.value, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(total.value, [3.0, 5.0, 7.0])


def test_networkx_view_has_one_edge_per_argument_slot(graph):
    x = graph.param("x", 2.0)
    y = x * x
    edges = sorted(graph.nx.edges(data="arg", keys=False))
    assert edges == [("x", y.name, 0), ("x", y.name, 1)]
    assert graph.nx.nodes[y.name]["op"] == "mul" and graph.nx.nodes["x"]["kind"] == "param"


def test_generated_names_are_readable_and_unique(graph):
    x = graph.param("x", 1.0)
    graph.param("add_1", 0.0)  # a user name that a generator would have used
    a, b = x + 1, x + 2
    assert a.name == "add_2" and b.name == "add_3"
    assert graph.const(5.0).name.startswith("const_")


def test_duplicate_name_is_rejected_and_graph_unchanged(graph):
    graph.param("w", 1.0)
    before = len(graph)
    with pytest.raises(dp.GraphError, match="'w' already exists"):
        graph.input("w", 2.0)
    with pytest.raises(dp.GraphError, match="already exists"):
        graph.op("neg", graph["w"], name="w")
    assert len(graph) == before and graph.nx.number_of_nodes() == before


def test_unknown_op_lists_close_matches(graph):
    x = graph.param("x", 1.0)
    with pytest.raises(dp.UnknownOpError, match="did you mean 'sigmoid'"):
        graph.op("sigmod", x)
    with pytest.raises(AttributeError, match="sigmoid"):
        x.sigmod()
    with pytest.raises(AttributeError, match="no registered plugin"):
        graph.ops.sigmod


def test_wrong_arity_and_unknown_attribute_are_build_errors(graph):
    x = graph.param("x", [1.0, 2.0])
    with pytest.raises(dp.GraphError, match="takes 2 inputs"):
        graph.op("add", x)
    with pytest.raises(dp.GraphError, match="no attribute axs"):
        graph.op("sum", x, axs=0)
    assert len(graph) == 1


def test_shape_mismatch_names_node_op_inputs_and_shapes(graph):
    a = graph.param("a", np.ones((3, 2)))
    b = graph.param("b", np.ones((4, 3)))
    with pytest.raises(dp.ShapeError) as info:
        graph.op("matmul", a, b, name="prod")
    message = str(info.value)
    assert "'prod'" in message and "matmul" in message and "(3, 2)" in message and "(4, 3)" in message
    assert "prod" not in graph


def test_nodes_of_two_graphs_cannot_be_mixed(graph):
    other = dp.Graph()
    with pytest.raises(dp.GraphError, match="another graph"):
        graph.param("a", 1.0) + other.param("b", 1.0)


def test_non_numeric_values_are_rejected(graph):
    with pytest.raises(dp.GraphError, match="not a real numeric array"):
        graph.input("s", ["a", "b"])
    with pytest.raises(dp.GraphError, match=r"not a real numeric array \(dtype complex128\)"):
        graph.param("z", [1 + 2j])  # casting would silently drop the imaginary part
    with pytest.raises(dp.GraphError, match="needs a value"):
        graph.param("p", None)


def test_nodes_are_not_iterable(graph):
    with pytest.raises(TypeError, match="not iterable"):
        list(graph.param("v", [1.0, 2.0]))


def test_lookup_by_name_suggests_close_names(graph):
    graph.param("weights", 1.0)
    with pytest.raises(KeyError, match="weights"):
        graph["weight"]


def test_the_networkx_mirror_is_the_graph_networkx_own_calls_build(graph):
    """Graph writes graph.nx through Mirror's fast methods: the result must be what add_node and
    add_edge give, node and edge order included, and networkx's topological order."""
    x, w = graph.param("x", [1.0, 2.0]), graph.param("w", 3.0)
    with graph.scope("layer"):
        y = (x * x + w * 2.0).tanh()
    graph.op("concat", y, x, y, name="cat").sum()
    graph.rename(y, "renamed")
    (graph["renamed"] - x).exp()
    expected = nx.MultiDiGraph()
    for node in graph.nodes:  # the order nodes were added, edges slot by slot: as Graph did before Mirror
        expected.add_node(node.name, kind=node.kind, op=node.op, attrs=node.attrs, scope=node.scope, handle=node)
        for slot, source in enumerate(node.inputs):
            expected.add_edge(source.name, node.name, arg=slot)
    assert nx.utils.graphs_equal(graph.nx, expected)
    assert sorted(graph.nx.edges(keys=True, data="arg")) == sorted(expected.edges(keys=True, data="arg"))
    fresh = dp.Graph()
    a = fresh.param("a", 1.0)
    b = a * a
    c = (b + a) * b
    built = nx.MultiDiGraph()
    for node in fresh.nodes:
        built.add_node(node.name, kind=node.kind, op=node.op, attrs=node.attrs, scope=node.scope, handle=node)
        for slot, source in enumerate(node.inputs):
            built.add_edge(source.name, node.name, arg=slot)
    assert list(fresh.nx.nodes(data=True)) == list(built.nodes(data=True))
    assert list(fresh.nx.edges(keys=True, data=True)) == list(built.edges(keys=True, data=True))
    plan_order = [fresh.nodes[i].name for i in scheduler.topological_order(fresh.nodes)]
    assert plan_order == list(nx.topological_sort(built)) == list(nx.topological_sort(fresh.nx))
    assert c.name in fresh.nx


def test_the_mirror_follows_the_nodes_when_read():
    """g.nx is brought up to date when read: nodes added after a read, nodes a failed pass built and
    removed, and a rename all show, as networkx's own calls would have built it."""

    def expected(graph):
        built = nx.MultiDiGraph()
        for node in graph.nodes:
            built.add_node(node.name, kind=node.kind, op=node.op, attrs=node.attrs, scope=node.scope, handle=node)
            for slot, source in enumerate(node.inputs):
                built.add_edge(source.name, node.name, arg=slot)
        return built

    g = dp.Graph()
    x = g.param("x", 0.0)
    assert list(g.nx) == ["x"]
    loss = x.sqrt() + x
    assert nx.utils.graphs_equal(g.nx, expected(g))
    g.forward()
    with pytest.warns(RuntimeWarning), pytest.raises(dp.NonFiniteError):
        g.backward(loss, create_graph=True, check_finite=True)  # builds its vjp nodes, then removes them
    assert nx.utils.graphs_equal(g.nx, expected(g)) and len(g.nx) == 3
    y = loss * 2.0
    g.rename(y, "y")
    assert nx.utils.graphs_equal(g.nx, expected(g)) and "y" in g.nx
    assert repr(g) == "<dagprop.Graph: 5 nodes, 5 edges>"
