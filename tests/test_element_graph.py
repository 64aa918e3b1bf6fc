"""The element-level graph: names, attributes, edge weights against finite differences for
every registered op, zero derivatives omitted, plugin ops without explicit jacobians."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dagprop as dp
from dagprop import rules
from dagprop.paths import element_graph, element_name

import notes_mlp

REGISTRY = dp.Graph().registry
OPS_WITH_EXAMPLES = sorted(op.name for op in REGISTRY if op.example is not None)


def finite_difference_jacobian(forward, args, slot, attrs, eps=1e-6):
    """d forward(*args)[o] / d args[slot][i] by central differences, shaped (out.size, in.size)."""
    base = [np.array(a, dtype=np.float64) for a in args]
    out = np.asarray(forward(*base, **attrs))
    jacobian = np.zeros((out.size, base[slot].size))
    for i in range(base[slot].size):
        plus = [a.copy() for a in base]
        minus = [a.copy() for a in base]
        plus[slot].flat[i] += eps
        minus[slot].flat[i] -= eps
        jacobian[:, i] = (np.asarray(forward(*plus, **attrs)) - np.asarray(forward(*minus, **attrs))).ravel() / (2 * eps)
    return jacobian


@pytest.mark.parametrize("name", OPS_WITH_EXAMPLES)
def test_edge_weights_match_finite_differences_for_every_registered_op(name):
    op = REGISTRY[name]
    rng = np.random.default_rng(7)
    raw, attrs = op.example(rng)
    args = [rng.standard_normal(a) if isinstance(a, tuple) else np.asarray(a, dtype=np.float64) for a in raw]
    g = dp.Graph()
    leaves = [g.param(f"in{slot}", a) for slot, a in enumerate(args)]
    out = g.op(name, *leaves, name="out", **attrs)
    g.forward()
    eg = g.element_graph()
    out_names = [element_name("out", i) for i in np.ndindex(out.value.shape)]
    for slot, leaf in enumerate(leaves):
        expected = finite_difference_jacobian(op.forward, args, slot, attrs)
        in_names = [element_name(leaf.name, i) for i in np.ndindex(leaf.value.shape)]
        weights = np.array([[eg.edges[i, o]["weight"] if eg.has_edge(i, o) else 0.0 for i in in_names]
                            for o in out_names]).reshape(expected.shape)
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: d out / d {leaf.name}")
        # an edge exists exactly where the derivative is non-zero
        missing = (weights == 0) & (np.abs(expected) > 1e-6)
        assert not missing.any(), f"{name}: edges missing for non-zero derivatives"


def test_names_and_attributes_on_the_notes_mlp():
    g, n = notes_mlp.build()
    eg = g.element_graph()
    assert eg.number_of_nodes() == 16 + 8 + 4 + 2 + 4 + 4 + 2 + 2 + 1
    assert "L" in eg and "W1[2,0]" in eg and "yhat[1]" in eg
    node = eg.nodes["W1[2,0]"]
    assert node["value"] == -0.3 and node["tensor"] == "W1" and node["index"] == (2, 0) and node["kind"] == "param"
    assert node["grad"] == pytest.approx(n["W1"].grad[2, 0])
    assert eg.nodes["L"]["grad"] == 1.0 and eg.nodes["L"]["op"] == "squared_error"
    assert eg.nodes["x[1]"]["grad"] is None  # an input without requires_grad
    # a21 = sum_j w21j h1j: d a2[0] / d W2[0,2] = h1[2], d a2[0] / d h1[2] = W2[0,2] = 0.2 (the notes' w213)
    assert eg.edges["W2[0,2]", "a2[0]"]["weight"] == pytest.approx(n["h1"].value[2])
    assert eg.edges["h1[2]", "a2[0]"]["weight"] == pytest.approx(0.2)
    assert not eg.has_edge("W2[0,2]", "a2[1]")  # W2's first row does not touch a2[1]
    assert not eg.has_edge("a1[0]", "h1[1]")  # sigmoid is elementwise
    assert eg.has_edge("a2[1]", "yhat[0]")  # softmax couples every output to every input
    assert nx.is_directed_acyclic_graph(eg)


def test_scalar_nodes_keep_their_plain_name_and_grad_is_none_before_backward():
    g = dp.Graph()
    a = g.param("a", 2.0)
    b = g.param("b", [1.0, -1.0])
    c = g.op("mul", a, b, name="c")
    g.forward()
    eg = g.element_graph()
    assert sorted(eg) == ["a", "b[0]", "b[1]", "c[0]", "c[1]"]
    assert all(eg.nodes[v]["grad"] is None for v in eg)
    # a scalar broadcast against a vector feeds every element
    assert eg.edges["a", "c[1]"]["weight"] == -1.0 and eg.edges["b[1]", "c[1]"]["weight"] == 2.0


def test_zero_derivatives_make_no_edge():
    g = dp.Graph()
    x = g.param("x", [-1.0, 2.0])
    r = g.op("relu", x, name="r")
    m = g.op("mul", x, g.const([0.0, 3.0], name="mask"), name="m")
    g.forward()
    eg = g.element_graph()
    assert not eg.has_edge("x[0]", "r[0]") and eg.edges["x[1]", "r[1]"]["weight"] == 1.0
    assert not eg.has_edge("x[0]", "m[0]") and eg.edges["x[1]", "m[1]"]["weight"] == 3.0
    assert all(w != 0 for _, _, w in eg.edges(data="weight"))


class VjpOnly:
    """A third-party op with no explicit jacobian: the element graph must still know its derivatives."""

    @staticmethod
    def _forward(x):
        return np.cumsum(x) ** 2

    @staticmethod
    def _vjp(g, x, *, out):
        inner = np.cumsum(x)
        return (np.cumsum((2 * inner * g)[::-1])[::-1],)

    @dp.hookimpl
    def dagprop_ops(self):
        return [dp.Op("cumsum_squared", forward=self._forward, vjp=self._vjp, doc="cumsum(x) ** 2")]


def test_a_plugin_op_without_jacobian_gets_element_edges_from_its_vjp():
    g = dp.Graph(plugins=[VjpOnly()])
    x = g.param("x", [1.0, 2.0, -0.5])
    y = g.op("cumsum_squared", x, name="y")
    loss = g.op("sum", y, name="loss")
    g.forward()
    g.backward(loss)
    eg = g.element_graph()
    expected = finite_difference_jacobian(VjpOnly._forward, [x.value], 0, {})
    for o in range(3):
        for i in range(3):
            weight = eg.edges[f"x[{i}]", f"y[{o}]"]["weight"] if eg.has_edge(f"x[{i}]", f"y[{o}]") else 0.0
            assert weight == pytest.approx(expected[o, i], abs=1e-6)
    assert not eg.has_edge("x[2]", "y[0]")  # y[0] depends on x[0] only
    for i in range(3):
        assert sum(p.contribution for p in g.paths(x, loss, index=(i,))) == pytest.approx(x.grad[i])


def test_element_graph_before_forward_is_a_clear_error():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    g.op("mul", x, x, name="y")
    with pytest.raises(dp.GraphError, match=r"node 'y' has no value.*run g.forward\(\) first"):
        g.element_graph()


def test_expanded_softmax_gives_finer_paths_with_the_same_sum():
    g, n = notes_mlp.build()
    expanded = g.expanded(["softmax"])  # run already: same leaves, same seed
    boxed = g.paths("W1", "L", index=(2, 0))
    circuit = expanded.paths("W1", "L", index=(2, 0))
    assert len(circuit) > len(boxed)
    assert sum(p.contribution for p in circuit) == pytest.approx(sum(p.contribution for p in boxed), rel=1e-9)
    assert sum(p.contribution for p in circuit) == pytest.approx(n["W1"].grad[2, 0], rel=1e-9)
    # the notes' attention circuit: a2[0] reaches the loss through exp, then both the
    # numerator branch (exp -> mul) and the denominator branch (exp -> sum -> 1/b -> mul)
    through_a2 = expanded.paths("a2", "L", index=(0,))
    assert len(through_a2) == expanded.count_paths("a2", "L", (0,)) > len(g.paths("a2", "L", index=(0,)))
    via_denominator = ["yhat.sum_1[0]" in p.nodes for p in through_a2]
    assert any(via_denominator) and not all(via_denominator)
    assert sum(p.contribution for p in through_a2) == pytest.approx(n["a2"].grad[0], rel=1e-9)


# -- element identity: names never collide ----------------------------------------------------------


def test_a_node_named_like_an_element_stays_apart_from_that_element():
    g = dp.Graph()
    W = g.param("W", [1.0, 2.0])
    w0 = g.param("W[0]", 5.0)  # a 0-d node whose name is element 0 of W's name
    w0_vector = g.param("W[0][1]", [3.0])  # and a 1-d node named like element 1 of node "W[0]"
    loss = g.op("sum", g.op("add", g.op("mul", W, w0, name="m"), w0_vector, name="y"), name="L")
    g.forward()
    g.backward(loss)
    eg = g.element_graph()
    assert eg.number_of_nodes() == 2 + 1 + 1 + 2 + 2 + 1
    assert {(eg.nodes[e]["tensor"], eg.nodes[e]["index"]) for e in eg} == {
        ("W", (0,)), ("W", (1,)), ("W[0]", ()), ("W[0][1]", (0,)), ("m", (0,)), ("m", (1,)), ("y", (0,)), ("y", (1,)),
        ("L", ())}
    assert eg.nodes["W[0]"]["tensor"] == "W" and eg.nodes["W[0][]"]["tensor"] == "W[0]"
    assert eg.nodes["W[0][1][0]"]["tensor"] == "W[0][1]"
    # the paths from each keep their own numbers: d L / d W[0] (the element) is w0 = 5, d L / d w0 is 1 + 2
    assert [p.nodes for p in g.paths(W, loss, index=(0,))] == [("W[0]", "m[0]", "y[0]", "L")]
    assert g.paths(W, loss, index=(0,))[0].contribution == 5.0
    assert sum(p.contribution for p in g.paths(w0, loss, index=())) == 3.0
    assert {p.nodes[0] for p in g.paths(w0, loss, index=())} == {"W[0][]"}


names = st.text(min_size=1, max_size=6, alphabet=st.sampled_from("W[]0,1 x"))
shapes = st.sampled_from([(), (1,), (2,), (2, 1), (1, 2)])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, shapes), min_size=1, max_size=6, unique_by=lambda pair: pair[0]))
def test_element_identities_are_unique_for_any_node_names(nodes):
    g = dp.Graph()
    leaves = [g.param(name, np.ones(shape)) for name, shape in nodes]
    g.op("stack", *[g.op("sum", leaf) for leaf in leaves], name="all sums")
    g.forward()
    eg = g.element_graph()
    expected = {(node.name, index) for node in g for index in np.ndindex(node.shape)}
    assert eg.number_of_nodes() == len(expected)  # no two elements share a key
    assert {(eg.nodes[e]["tensor"], eg.nodes[e]["index"]) for e in eg} == expected
    for element in eg:
        identity = (eg.nodes[element]["tensor"], eg.nodes[element]["index"])
        assert dp.paths.split_element_name(element) == identity
        assert element_name(*identity) == element


@given(st.text(min_size=1), st.lists(st.integers(0, 10 ** 6), max_size=4))
def test_element_names_read_back_for_any_text(name, index):
    assert dp.paths.split_element_name(element_name(name, tuple(index))) == (name, tuple(index))


@pytest.mark.parametrize("name", ["x", "W[0]", "a]", "[]"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (1, 0, 2), (2, 1, 12)])
def test_the_names_of_all_elements_at_once_are_their_element_names(name, shape):
    assert dp.paths.elements._element_names(name, shape) == [element_name(name, i) for i in np.ndindex(shape)]


# -- the size guard -----------------------------------------------------------------------------------


def test_a_large_layer_is_refused_before_its_jacobian_is_built(monkeypatch):
    g = dp.Graph()
    W = g.param("W", np.zeros((512, 512)))
    y = g.op("matmul", W, g.input("x", np.ones(512)), name="y")
    g.forward()
    built = []
    monkeypatch.setattr(rules, "local_jacobians", lambda *args, **kwargs: built.append(args) or 1 / 0)
    with pytest.raises(dp.GraphError) as info:
        g.element_graph()
    message = str(info.value)
    assert message.startswith("the local Jacobian of op node 'y' (matmul, output (512,), inputs 'W' (512, 512), "
                              "'x' (512,)) would have 134,479,872 entries, more than max_size=1,000,000")
    assert "pass a larger max_size= to dagprop.paths.element_graph" in message
    assert built == []
    with pytest.raises(dp.GraphError, match=r"would have 263,168 elements \(largest nodes: 'W' \(512, 512\), "
                                            r"'x' \(512,\), 'y' \(512,\)\), more than max_size=100,000"):
        element_graph(g.run, max_size=100_000)


def test_max_size_counts_elements_and_edges_and_can_be_raised():
    g, n = notes_mlp.build()
    eg = element_graph(g.run, max_size=None)
    size = eg.number_of_nodes() + eg.number_of_edges()
    assert element_graph(g.run, max_size=size).number_of_edges() == eg.number_of_edges()
    with pytest.raises(dp.GraphError, match=rf"edges, more than max_size={size - 1}"):
        element_graph(g.run, max_size=size - 1)
    with pytest.raises(dp.GraphError, match="max_size must be a positive int or None"):
        element_graph(g.run, max_size=0)
    with pytest.raises(dp.GraphError, match="more than max_size=10"):
        dp.paths.paths(g, "W1", "L", index=(2, 0), max_size=10)


OPS_WITH_SPARSE_RULES = sorted(op.name for op in REGISTRY if op.sparse_jacobian is not None)
SPARSE_SHAPES = {"matmul": [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 2))],
                 "default": [((3, 4), (3, 4)), ((3, 4), (4,)), ((), (2, 3)), ((3, 1), (1, 4))]}


@pytest.mark.parametrize("name", OPS_WITH_SPARSE_RULES)
def test_sparse_jacobian_rules_give_the_dense_jacobians_nonzero_entries_exactly(name):
    node_op = REGISTRY[name]
    rng = np.random.default_rng(3)
    for shapes in SPARSE_SHAPES.get(name, SPARSE_SHAPES["default"]):
        args = [rng.standard_normal(shape) for shape in shapes]
        args[0].flat[0] = 0.0  # a zero derivative (mul, matmul) makes no entry
        g = dp.Graph()
        node = g.op(name, *[g.param(f"in{slot}", a) for slot, a in enumerate(args)])
        g.forward()
        for needs in [(True, True), (True, False), (False, True)]:
            sparse = rules.sparse_local_jacobians(node, args, node.value, needs)
            dense = rules.local_jacobians(node, args, node.value, needs)
            for entries, jacobian in zip(sparse, dense):
                assert (entries is None) == (jacobian is None), (name, shapes, needs)
                if jacobian is None:
                    continue
                flat = jacobian.reshape(node.value.size, -1)
                rows, columns = np.nonzero(flat)
                assert entries[0].tolist() == rows.tolist() and entries[1].tolist() == columns.tolist(), (name, shapes)
                assert entries[2].tolist() == flat[rows, columns].tolist(), (name, shapes)


class RepeatsAnEntry:
    """A third-party op whose sparse_jacobian lists one partial derivative twice."""

    @staticmethod
    def _forward(x):
        return 2 * x

    @staticmethod
    def _vjp(g, x, *, out):
        return (2 * g,)

    @staticmethod
    def _sparse_jacobian(x, *, out, needs):
        return (([0, 0], [0, 0], [1.0, 1.0]),)

    @dp.hookimpl
    def dagprop_ops(self):
        return [dp.Op("twice", forward=self._forward, vjp=self._vjp, sparse_jacobian=self._sparse_jacobian)]


def test_a_sparse_jacobian_rule_that_repeats_an_entry_is_a_clear_error():
    g = dp.Graph(plugins=[RepeatsAnEntry()])
    x = g.param("x", [1.0, 2.0])
    y = g.op("twice", x, name="y")
    g.forward()
    with pytest.raises(dp.OpError, match=r"sparse_jacobian of op 'twice' at node 'y'.*same \(row, column\) twice"):
        g.element_graph()


def test_element_paths_do_not_build_the_networkx_element_graph(monkeypatch):
    g = dp.Graph()
    W = g.param("W", np.arange(6.0).reshape(2, 3) - 2)
    x = g.input("x", [1.0, -1.0, 2.0])
    L = (W @ x).tanh().sum()
    g.forward(); g.backward(L)
    expected = [(p.nodes, p.contribution) for p in g.paths(W, L, index=(1, 2))]
    counted, best = g.count_paths(W, L, index=(1, 2)), g.top_paths(W, L, 1, index=(1, 2))
    monkeypatch.setattr(dp.paths.elements, "ElementGraph", None)  # building one would raise
    assert [(p.nodes, p.contribution) for p in g.paths(W, L, index=(1, 2))] == expected
    assert g.count_paths(W, L, index=(1, 2)) == counted == 1
    assert g.top_paths(W, L, 1, index=(1, 2))[0].nodes == best[0].nodes == ("W[1,2]", "matmul_1[1]", "tanh_1[1]", "sum_1")


# -- the bulk builder gives exactly the graph networkx's own calls give ------------------------------


def reference_element_graph(run, nodes=None, *, max_size=dp.paths.elements.MAX_SIZE):
    """The element graph built the plain way, through networkx's public add_nodes_from and add_edges_from."""
    derivatives = dp.paths.elements.LocalDerivatives.build(run, nodes, max_size=max_size)
    graph = nx.DiGraph(run=run)
    names = {}
    for node in derivatives.nodes:
        value = np.asarray(run.values[node.index])
        grad = run.grads[node.index]
        for flat, index in enumerate(np.ndindex(value.shape)):
            names[node.index, flat] = element_name(node.name, index)
            graph.add_nodes_from([(names[node.index, flat], {
                "value": value[index].item(),
                "grad": None if grad is None else np.broadcast_to(grad, value.shape)[index].item(),
                "tensor": node.name, "index": index, "kind": node.kind, "op": node.op})])
    for local in derivatives.local:
        op = run.nodes[local.consumer].op
        graph.add_edges_from((names[local.source, i], names[local.consumer, o], {"weight": w, "op": op})
                             for o, i, w in zip(local.rows.tolist(), local.columns.tolist(), local.values.tolist()))
    return graph


def assert_same_graph(built, expected):
    """The same nodes, edges and attributes, in the same orders, with attribute dicts shared as networkx shares them."""
    assert isinstance(built, nx.DiGraph) and not built.is_multigraph()
    assert built.graph == expected.graph and built.graph["run"] is expected.graph["run"]
    assert [(n, list(data.items())) for n, data in built.nodes(data=True)] == \
        [(n, list(data.items())) for n, data in expected.nodes(data=True)]
    for name in expected:
        for side in ("succ", "pred"):
            assert [(other, list(data.items())) for other, data in getattr(built, side)[name].items()] == \
                [(other, list(data.items())) for other, data in getattr(expected, side)[name].items()], (name, side)
    assert list(built.edges(data=True)) == list(expected.edges(data=True))
    assert list(nx.topological_sort(built)) == list(nx.topological_sort(expected))
    edge_dicts = {id(data) for _, _, data in built.edges(data=True)}
    assert len(edge_dicts) == built.number_of_edges()  # each edge has a dict of its own...
    assert all(built.succ[u][v] is built.pred[v][u] for u, v in built.edges)  # ...seen from both ends
    node_dicts = {id(data) for _, data in built.nodes(data=True)}
    assert len(node_dicts) == built.number_of_nodes()


def broadcasting_graph():
    g = dp.Graph()
    column, row = g.param("column", [[1.0], [-2.0], [3.0]]), g.param("row", [[0.5, 0.0, -1.5, 2.0]])
    scalar = g.param("scalar", 2.0)
    grid = g.op("mul", column, row, name="grid")  # (3,1) * (1,4) -> (3,4), and a zero derivative
    loss = g.op("sum", g.op("add", grid, scalar, name="shifted").tanh(), name="L")
    g.forward(); g.backward(loss)
    return g


def matmul_graph():
    g = dp.Graph()
    W = g.param("W", np.arange(12.0).reshape(3, 4) / 7 - 0.5)
    X = g.input("X", np.arange(8.0).reshape(4, 2) - 3)
    b = g.param("b", [0.1, -0.2])
    loss = g.op("sum", ((W @ X) + b).tanh() @ g.input("v", [1.0, -1.0]), name="L")
    g.forward(); g.backward(loss)
    return g


def several_paths_graph():
    """x reaches y along four paths: twice through x * x (both slots of one op), once through exp, and directly."""
    g = dp.Graph()
    x = g.param("x", [0.5, -1.0, 2.0])
    y = g.op("add", g.op("add", x * x, x.exp()), x, name="y")
    loss = g.op("sum", y * y, name="L")
    g.forward(); g.backward(loss)
    return g


def forward_only_graph():
    g = dp.Graph()
    x = g.param("x", [[1.0, 2.0], [3.0, 4.0]])
    g.op("sum", x * x, axis=0, name="s")
    g.forward()  # no backward: every grad is None
    return g


GRAPHS = {"broadcasting": broadcasting_graph, "matmul": matmul_graph, "several paths": several_paths_graph,
          "forward only": forward_only_graph, "notes mlp": lambda: notes_mlp.build()[0]}


@pytest.mark.parametrize("build", GRAPHS.values(), ids=GRAPHS.keys())
def test_element_graph_equals_the_one_networkx_public_calls_build(build):
    g = build()
    eg = element_graph(g.run)
    assert eg.number_of_edges() > 0
    assert_same_graph(eg, reference_element_graph(g.run))
    assert_same_graph(g.element_graph(), reference_element_graph(g.run))


def test_element_graph_of_some_nodes_equals_the_reference():
    g = several_paths_graph()
    some = [n for n in g if n.name != "L"][1:]  # without x: edges only among the rest
    assert_same_graph(element_graph(g.run, some), reference_element_graph(g.run, some))
    assert_same_graph(element_graph(g.run, reversed(some)), reference_element_graph(g.run, some))


def test_the_reference_check_sees_a_different_order():
    g = several_paths_graph()
    expected = reference_element_graph(g.run)
    reordered = nx.DiGraph(run=g.run)
    reordered.add_nodes_from(reversed(list(expected.nodes(data=True))))
    reordered.add_edges_from(expected.edges(data=True))
    with pytest.raises(AssertionError):
        assert_same_graph(reordered, expected)


def test_an_element_graph_can_still_grow_through_networkx_calls():
    g = matmul_graph()
    eg = g.element_graph()
    eg.add_edge("W[0,0]", "extra", weight=1.0)
    assert eg.has_edge("W[0,0]", "extra") and eg.in_degree("extra") == 1
    assert nx.utils.graphs_equal(eg.copy(), eg)
