"""g.add_table: many nodes checked as a whole and added at once, as Graph.op and the leaf calls would add them."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import dagprop as dp


def by_hand() -> tuple[dp.Graph, dp.Node]:
    g = dp.Graph()
    x = g.input("x", [[1.0, 2.0], [3.0, -1.0]])
    W = g.param("W", [[0.5, -1.0], [2.0, 0.25]])
    with g.scope("layer"):
        h = (x @ W).tanh()
    loss = g.op("sum", h * h, name="loss")
    return g, loss


def table_of(graph: dp.Graph) -> dp.NodeTable:
    nodes = graph.nodes
    return dp.NodeTable(names=[n.name for n in nodes], kinds=[n.kind for n in nodes], ops=[n.op for n in nodes],
                     inputs=[[i.index for i in n.inputs] for n in nodes], attrs=[dict(n.attrs) for n in nodes],
                     values=[None if n.op else n.value for n in nodes],
                     requires_grad=[n.requires_grad for n in nodes], scopes=[n.scope for n in nodes])


def test_a_table_builds_the_graph_node_by_node_building_builds():
    expected, loss = by_hand()
    g = dp.Graph()
    nodes = g.add_table(table_of(expected))
    assert [(n.name, n.kind, n.op, n.static_shape, n.requires_grad, n.scope) for n in nodes] == \
        [(n.name, n.kind, n.op, n.static_shape, n.requires_grad, n.scope) for n in expected.nodes]
    assert nx.utils.graphs_equal(nx.MultiDiGraph(g.nx.edges(keys=True, data=True)),
                                 nx.MultiDiGraph(expected.nx.edges(keys=True, data=True)))
    for graph, target in ((g, g["loss"]), (expected, loss)):
        graph.forward()
        graph.backward(target)
    # tanh(x @ W) summed in squares: d/dW = x.T @ (2 h (1 - h^2)), written out independently
    x, W = expected["x"].value, expected["W"].value
    h = np.tanh(x @ W)
    np.testing.assert_allclose(g["W"].grad, x.T @ (2 * h * (1 - h ** 2)), rtol=1e-12)
    np.testing.assert_array_equal(g["W"].grad, expected["W"].grad)


def test_nodes_can_be_added_to_a_graph_that_has_some():
    g, loss = by_hand()
    table = dp.NodeTable(names=["twice"], kinds=["op"], ops=["mul"], inputs=[[0]], attrs=[{}], values=[None],
                      requires_grad=[False])
    with pytest.raises(dp.GraphError, match="op 'mul' takes 2 inputs"):
        g.add_table(table)
    # positions are the table's own: the graph's nodes are not addressable from a table
    table = dp.NodeTable(names=["c", "twice"], kinds=["const", "op"], ops=[None, "mul"], inputs=[[], [0, 0]],
                      attrs=[{}, {}], values=[2.0, None], requires_grad=[False, False])
    c, twice = g.add_table(table)
    g.forward()
    assert float(twice.value) == 4.0 and not twice.requires_grad and c.index == len(g.nodes) - 2


def change(**columns):
    table = table_of(by_hand()[0])
    for column, (position, entry) in columns.items():
        getattr(table, column)[position] = entry
    return table


@pytest.mark.parametrize("table, error, message", [
    (change(names=(3, "x")), dp.GraphError, "node 'x' appears twice in the table"),
    (change(names=(3, "")), dp.GraphError, "node #3 of the table: a node name must be a non-empty string"),
    (change(kinds=(1, "weight")), dp.GraphError, "node 'W': unknown kind 'weight'"),
    (change(ops=(2, "fused_matmul")), dp.UnknownOpError, "node 'matmul_1' uses op 'fused_matmul'"),
    (change(ops=(2, None)), dp.UnknownOpError, "node 'matmul_1' uses op None"),
    (change(inputs=(2, [0, 5])), dp.GraphError, "node 'matmul_1': input 5 is not the position of an earlier node"),
    (change(inputs=(2, [0])), dp.GraphError, "node 'matmul_1': op 'matmul' takes 2 inputs (a, b), got 1"),
    (change(inputs=(1, [0])), dp.GraphError, "node 'W' is a param but has inputs ('x')"),
    (change(attrs=(3, {"colour": "red"})), dp.GraphError, "node 'tanh_1': op 'tanh' has no attribute colour"),
    (change(values=(1, None)), dp.GraphError, "node 'W': a param needs a value"),
    (change(values=(1, np.ones((3, 2)))), dp.ShapeError, "cannot take inputs of shapes x (2, 2), W (3, 2)"),
    (change(values=(2, np.ones(2))), dp.GraphError, "node 'matmul_1' is an op node: its value comes from forward"),
    (change(scopes=(3, ("layer", ""))), dp.GraphError, "node 'tanh_1': scope ('layer', '') must be a tuple"),
])
def test_a_bad_table_raises_naming_the_node_and_leaves_the_graph_as_it_was(table, error, message):
    g = dp.Graph()
    w = g.param("w", 1.0)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        g.add_table(table)
    assert [n.name for n in g.nodes] == ["w"] and list(g.nx) == ["w"] and g.run.values == [w.value]


def test_a_name_the_graph_has_is_refused():
    g = dp.Graph()
    g.param("x", 0.0)
    with pytest.raises(dp.GraphError, match="a node named 'x' already exists in this graph"):
        g.add_table(table_of(by_hand()[0]))
    assert len(g.nodes) == 1
