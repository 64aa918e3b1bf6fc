"""Paths at the tensor and element level: sums equal gradients, counts, top-k, the table, bad input."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dagprop as dp
from dagprop import rules
from dagprop.jacobians import numeric_gradient
from dagprop.paths import search

import notes_mlp
from helpers import central_difference


def _sum(contributions):
    return sum(contributions[1:], contributions[0])


# -- the notes' 4-4-2 network --------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp():
    return notes_mlp.build()


def test_notes_forward_values_agree_with_the_notes(mlp):
    g, n = mlp
    # the notes' figures, rounded as printed there
    np.testing.assert_allclose(n["a1"].value, [2.9, 1.4, 2.1, 2.3], atol=1e-12)
    np.testing.assert_allclose(n["h1"].value, [0.95, 0.80, 0.89, 0.91], atol=0.005)
    np.testing.assert_allclose(n["a2"].value, [1.66, 0.45], atol=0.005)
    np.testing.assert_allclose(n["yhat"].value, [0.77, 0.23], atol=0.005)
    # the notes print 0.1058 from the rounded 0.77 and 0.23: 2 * 0.23**2
    assert float(n["L"].value) == pytest.approx(2 * 0.23 ** 2, abs=5e-4)


def test_engine_gradient_agrees_with_numpy_finite_differences(mlp):
    g, n = mlp
    numeric_w1 = central_difference(lambda w: notes_mlp.loss_numpy(w1=w), notes_mlp.W1)
    numeric_w2 = central_difference(lambda w: notes_mlp.loss_numpy(w2=w), notes_mlp.W2)
    np.testing.assert_allclose(n["W1"].grad, numeric_w1, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(n["W2"].grad, numeric_w2, rtol=1e-6, atol=1e-10)


def test_w131_paths_sum_to_the_gradient(mlp):
    g, n = mlp
    found = g.paths("W1", "L", index=(2, 0))  # w131: layer 1, neuron 3, input 1
    numeric = central_difference(lambda w: notes_mlp.loss_numpy(w1=w), notes_mlp.W1)[2, 0]
    assert len(found) == 4 == g.count_paths("W1", "L", (2, 0))
    assert sum(p.contribution for p in found) == pytest.approx(numeric, rel=1e-6)
    assert sum(p.contribution for p in found) == pytest.approx(n["W1"].grad[2, 0], rel=1e-12)
    assert sum(p.share for p in found) == pytest.approx(1.0)
    for p in found:
        assert p.level == "element"
        assert p.nodes[:3] == ("W1[2,0]", "a1[2]", "h1[2]") and p.nodes[-1] == "L"
        assert p.contribution == pytest.approx(math.prod(p.factors) * 1.0)
    assert [abs(p.contribution) for p in found] == sorted((abs(p.contribution) for p in found), reverse=True)


def test_w131_agrees_with_the_notes_hand_worked_paths_where_the_notes_are_complete(mlp):
    """The notes follow y1 <- a21 and y2 <- a22 only; those two paths match their table.

    Their sum, 0.001595, leaves out the two paths through the softmax's off-diagonal
    derivatives (y1 <- a22, y2 <- a21), which carry the same amounts again: the true
    gradient, confirmed by finite differences, is twice the notes' figure.
    """
    g, n = mlp
    by_route = {p.nodes: p for p in g.paths("W1", "L", index=(2, 0))}
    path1 = by_route[("W1[2,0]", "a1[2]", "h1[2]", "a2[0]", "yhat[0]", "L")]
    path2 = by_route[("W1[2,0]", "a1[2]", "h1[2]", "a2[1]", "yhat[1]", "L")]
    # the notes' factors: x1, h13(1-h13), w213 / w223, y(1-y), dL/dy, printed to 2-4 digits
    np.testing.assert_allclose(path1.factors, [2, 0.0979, 0.2, 0.1771, -0.46], rtol=0.01)
    np.testing.assert_allclose(path2.factors, [2, 0.0979, 0.3, 0.1771, 0.46], rtol=0.01)
    assert path1.contribution == pytest.approx(-0.003190, rel=0.015)
    assert path2.contribution == pytest.approx(0.004785, rel=0.015)
    assert path1.contribution + path2.contribution == pytest.approx(0.001595, rel=0.015)
    numeric = central_difference(lambda w: notes_mlp.loss_numpy(w1=w), notes_mlp.W1)[2, 0]
    assert numeric == pytest.approx(2 * 0.001595, rel=0.015)
    cross = [p for route, p in by_route.items() if route not in (path1.nodes, path2.nodes)]
    assert sorted(p.contribution for p in cross) == pytest.approx(sorted([path1.contribution, path2.contribution]))


def test_w212_agrees_with_the_notes_single_path_and_adds_the_cross_path(mlp):
    g, n = mlp
    found = g.paths("W2", "L", index=(0, 1))
    assert [p.nodes for p in found] == [("W2[0,1]", "a2[0]", "yhat[0]", "L"), ("W2[0,1]", "a2[0]", "yhat[1]", "L")] \
        or {p.nodes[2] for p in found} == {"yhat[0]", "yhat[1]"}
    through_y1 = next(p for p in found if p.nodes[2] == "yhat[0]")
    np.testing.assert_allclose(through_y1.factors, [0.8, 0.1771, -0.46], rtol=0.01)
    assert through_y1.contribution == pytest.approx(-0.065, rel=0.01)
    numeric = central_difference(lambda w: notes_mlp.loss_numpy(w2=w), notes_mlp.W2)[0, 1]
    assert sum(p.contribution for p in found) == pytest.approx(numeric, rel=1e-6)


@pytest.mark.parametrize("src", ["W1", "W2", "a1", "h1", "a2", "yhat", "x"])
def test_tensor_paths_of_the_mlp_sum_to_the_gradient(mlp, src):
    g, n = mlp
    found = g.paths(src, "L")
    assert len(found) == 1 and found[0].level == "tensor"
    expected = n[src].grad
    if src == "x":  # an input without requires_grad: the path still says what reaches it
        expected = central_difference(lambda v: notes_mlp.loss_numpy(x=v), notes_mlp.X)
    np.testing.assert_allclose(found[0].contribution, expected, rtol=1e-6, atol=1e-12)
    assert found[0].share == pytest.approx(1.0)


@pytest.mark.parametrize("src", ["W1", "W2", "a1", "h1", "a2", "yhat"])
def test_element_paths_of_the_mlp_sum_to_every_element_of_the_gradient(mlp, src):
    g, n = mlp
    for index in np.ndindex(n[src].value.shape):
        found = g.paths(src, "L", index=index)
        total = sum(p.contribution for p in found) if found else 0.0
        assert total == pytest.approx(n[src].grad[index], rel=1e-9, abs=1e-15)


def test_tensor_factors_are_jacobians_whose_chain_gives_the_contribution(mlp):
    g, n = mlp
    path = g.paths("h1", "L")[0]
    assert [f.shape for f in path.factors] == [(2, 4), (2, 2), (2,)]  # out.shape + in.shape
    carried = n["L"].grad
    for jacobian in reversed(path.factors):
        carried = np.tensordot(carried, jacobian, axes=carried.ndim)
    np.testing.assert_allclose(carried, path.contribution, rtol=1e-12, atol=1e-15)


def test_paths_to_an_intermediate_dst_sum_to_what_flows_through_it(mlp):
    g, n = mlp
    # every path from W1 to L passes h1, so what reaches W1 through h1 is all of W1.grad
    total = _sum([p.contribution for p in g.paths("W1", "h1")])
    np.testing.assert_allclose(total, n["W1"].grad, rtol=1e-12)
    found = g.paths("a1", "h1", index=((1,), (1,)))
    assert [p.nodes for p in found] == [("a1[1]", "h1[1]")]
    assert found[0].contribution == pytest.approx(n["a1"].grad[1])
    assert g.paths("a1", "h1", index=((1,), (2,))) == []  # sigmoid is elementwise: no cross edge


# -- repeated argument slots ----------------------------------------------------------------------


def test_x_times_x_gives_one_tensor_path_per_slot():
    g = dp.Graph()
    x = g.param("x", [1.5, -2.0])
    y = g.op("mul", x, x, name="y")
    g.forward()
    g.backward(y, seed=[1.0, 1.0])
    found = g.paths(x, y)
    assert sorted(p.slots for p in found) == [(0,), (1,)]
    for p in found:
        np.testing.assert_allclose(p.contribution, [1.5, -2.0])
        assert p.share == pytest.approx(0.5)
    np.testing.assert_allclose(_sum([p.contribution for p in found]), 2 * x.value)
    # at the element level one edge holds both slots: d(x*x)/dx = 2x
    (element,) = g.paths(x, y, index=((1,), (1,)))
    assert element.factors == (pytest.approx(-4.0),)
    assert "-[a]->" in dp.path_table(found).__str__() and "-[b]->" in str(dp.path_table(found))


def test_cube_through_repeated_slots():
    g = dp.Graph()
    x = g.param("x", 0.7)
    sq = g.op("mul", x, x, name="sq")
    cube = g.op("mul", sq, x, name="cube")
    total = g.op("add", cube, cube, name="total")
    g.forward()
    g.backward(total)
    # paths: x -> sq (2 slots) -> cube -> total (2 slots), and x -> cube -> total (2 slots)
    assert g.count_paths(x, total) == 6
    found = g.paths(x, total)
    assert len(found) == 6
    assert float(_sum([p.contribution for p in found])) == pytest.approx(2 * 3 * 0.7 ** 2)
    element = g.paths(x, total, index=())
    assert len(element) == 2 == g.count_paths(x, total, ())
    assert sum(p.contribution for p in element) == pytest.approx(6 * 0.7 ** 2)


def test_slots_that_cancel_leave_no_element_edge():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    z = g.op("sub", x, x, name="z")
    w = g.op("add", z, x, name="w")
    g.forward()
    g.backward(w, seed=[1.0, 1.0])
    assert g.count_paths(x, w) == 3  # two tensor paths via z (slots a and b) and one direct
    assert g.count_paths(x, w, index=((0,), (0,))) == 1  # the x - x edge has derivative 0
    assert list(g.element_graph().pred["z[0]"]) == []
    tensor = g.paths(x, w)
    np.testing.assert_allclose(_sum([p.contribution for p in tensor]), x.grad)
    np.testing.assert_allclose(x.grad, [1.0, 1.0])


# -- random DAGs ----------------------------------------------------------------------------------

BINARY = ("add", "sub", "mul")
UNARY = ("tanh", "sigmoid", "neg")


@st.composite
def random_graphs(draw):
    """A random DAG of small vectors and scalars (broadcast), often reusing a node twice."""
    n_leaves = draw(st.integers(1, 3))
    shapes = [draw(st.sampled_from([(), (2,), (3,)])) if i else (3,) for i in range(n_leaves)]
    values = [np.array(draw(st.lists(st.floats(-1.5, 1.5), min_size=int(np.prod(s)), max_size=int(np.prod(s)))))
              .reshape(s) for s in shapes]
    steps = []
    for k in range(draw(st.integers(1, 7))):
        available = n_leaves + k
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(BINARY)), draw(st.integers(0, available - 1)),
                          draw(st.integers(0, available - 1))))
        else:
            steps.append((draw(st.sampled_from(UNARY)), draw(st.integers(0, available - 1))))
    return values, steps


def build_random(values, steps):
    g = dp.Graph()
    nodes = [g.param(f"p{i}", v) for i, v in enumerate(values)]
    for k, (op, *args) in enumerate(steps):
        try:
            nodes.append(g.op(op, *[nodes[a] for a in args], name=f"n{k}"))
        except dp.ShapeError:  # (2,) and (3,) do not broadcast: use the first argument again
            nodes.append(g.op(op, *[nodes[args[0]]] * len(args), name=f"n{k}"))
    outputs = nodes[len(values):]
    combined = outputs[0]
    for extra in outputs[1:]:
        combined = g.op("add", combined, g.op("sum", extra))
    loss = g.op("sum", combined, name="loss")
    g.forward()
    g.backward(loss)
    return g, nodes[: len(values)], loss


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_path_sums_equal_gradients_on_random_dags(recipe):
    g, params, loss = build_random(*recipe)
    for p in params:
        numeric = numeric_gradient(g, loss, p)
        found = g.paths(p, loss, limit=100_000)
        assert len(found) == g.count_paths(p, loss)
        if not found:
            assert p.grad is None
            continue
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(_sum([q.contribution for q in found]), p.grad, rtol=1e-9, atol=1e-12)
        for index in np.ndindex(p.value.shape):
            elements = g.paths(p, loss, index=index, limit=100_000)
            assert len(elements) == g.count_paths(p, loss, index)
            total = sum(q.contribution for q in elements) if elements else 0.0
            assert total == pytest.approx(p.grad[index], rel=1e-9, abs=1e-12)


# -- counting -------------------------------------------------------------------------------------


def brute_force_tensor_count(g, src, dst):
    # every simple edge path of the multigraph (parallel edges are different paths)
    if src == dst:
        return 1
    return sum(1 for _ in nx.all_simple_edge_paths(g.nx, src, dst))


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_count_paths_matches_brute_force(recipe):
    g, params, loss = build_random(*recipe)
    names = [n.name for n in g.nodes]
    for src, dst in itertools.product(names[:4], names[-3:]):
        assert g.count_paths(src, dst) == brute_force_tensor_count(g, src, dst)
    eg = g.element_graph()
    for p in params:
        for index in np.ndindex(p.value.shape):
            element = dp.paths.element_name(p.name, index)
            expected = sum(1 for _ in nx.all_simple_paths(eg, element, "loss")) if element != "loss" else 1
            assert g.count_paths(p, loss, index) == expected


def ladder(rungs: int):
    """Two rails u, v with u' = u + v and v' = u - v: the number of paths doubles at each rung."""
    g = dp.Graph()
    x = g.param("x", 1.0)
    u, v = g.op("add", x, 0.0, name="u0"), g.op("mul", x, 1.0, name="v0")
    for k in range(1, rungs + 1):
        u, v = g.op("add", u, v, name=f"u{k}"), g.op("sub", u, v, name=f"v{k}")
    return g, x, u


def test_count_paths_on_a_ladder_with_2_to_the_60_paths_counts_without_listing():
    g, x, top = ladder(60)  # one path to each rail at rung 0, doubling at each of 60 rungs
    g.forward()
    # exact: listing 2**60 paths would never finish, so a right answer shows none were listed
    assert g.count_paths(x, top) == 2 ** 60
    assert g.count_paths(x, top, index=()) == 2 ** 60  # add and sub have non-zero derivatives
    g.backward(top)
    with pytest.raises(dp.GraphError, match=r"1,152,921,504,606,846,976 tensor-level paths.*count_paths.*top_paths"):
        g.paths(x, top)


# -- top paths ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(random_graphs(), st.integers(1, 6))
def test_top_paths_equal_the_top_of_full_enumeration(recipe, k):
    g, params, loss = build_random(*recipe)
    for p in params:
        everything = g.paths(p, loss, limit=100_000)
        best = g.top_paths(p, loss, k)
        assert len(best) == min(k, len(everything))
        np.testing.assert_allclose([np.linalg.norm(q.contribution) for q in best],
                                   [np.linalg.norm(q.contribution) for q in everything[:k]], rtol=1e-9, atol=1e-14)
        known = {(q.nodes, q.slots): q for q in everything}
        for q in best:
            np.testing.assert_allclose(q.contribution, known[q.nodes, q.slots].contribution, rtol=1e-12)
        index = (0,) * p.value.ndim
        everything = g.paths(p, loss, index=index, limit=100_000)
        best = g.top_paths(p, loss, k, index=index)
        assert len(best) == min(k, len(everything))
        np.testing.assert_allclose([abs(q.contribution) for q in best],
                                   [abs(q.contribution) for q in everything[:k]], rtol=1e-9, atol=1e-14)
        assert [q.nodes for q in best] == [q.nodes for q in everything[:k]]  # exact, ties included


def test_top_paths_on_a_ladder_find_the_largest_without_enumerating(searches):
    g = dp.Graph()
    a = g.param("a", 1.0)
    h = a
    for k in range(60):  # each rung: two edges with derivatives 1.5 and 0.5, 2**60 paths
        h = g.op("add", g.op("mul", h, 1.5), g.op("mul", h, 0.5), name=f"h{k}")
    g.forward()
    g.backward(h)
    for index in (None, ()):
        searches.clear()
        best = g.top_paths(a, h, 3, index=index)
        magnitudes = [float(np.abs(p.contribution)) for p in best]
        assert magnitudes == pytest.approx([1.5 ** 60, 1.5 ** 59 * 0.5, 1.5 ** 59 * 0.5])
        built = max(getattr(search_, "built", math.inf) for search_ in searches)
        assert built <= 4 * 3 * (3 * 60 + 2), built  # partial paths: a few per rung per path found, not 2**60
    assert float(a.grad) == pytest.approx(2.0 ** 60)


def doubling(depth: int, level: str):
    """``c = c + c`` (tensor level: two slots of one edge) or ``c = c * 1 + c * 1`` (element level: two
    element paths) ``depth`` times: 2**depth paths from x to the top, every one carrying exactly 1."""
    g = dp.Graph()
    x = g.param("x", 1.0)
    c = x
    for k in range(depth):
        c = g.op("add", c, c, name=f"c{k}") if level == "tensor" else \
            g.op("add", g.op("mul", c, 1.0), g.op("mul", c, 1.0), name=f"c{k}")
    g.forward()
    g.backward(c)
    return g, x, c


@pytest.fixture
def searches(monkeypatch):
    """Every Between built during a test, to read how many partial paths its search built."""
    made = []
    original = search.Between.build.__func__

    def build(cls, *args, **kwargs):
        made.append(original(cls, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(search.Between, "build", classmethod(build))
    return made


@pytest.fixture
def vjp_calls(monkeypatch):
    calls = []
    original = rules.pull_vjp
    monkeypatch.setattr(rules, "pull_vjp", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    return calls


@pytest.mark.parametrize("depth", [16, 64])
def test_top_paths_of_tied_tensor_paths_cost_k_times_the_depth(depth, searches, vjp_calls):
    g, x, top = doubling(depth, "tensor")
    assert g.count_paths(x, top) == 2 ** depth
    for k in (1, 5, 20):
        searches.clear()
        vjp_calls.clear()
        best = g.top_paths(x, top, k)
        assert [float(p.contribution) for p in best] == [1.0] * k
        # one vjp per partial path the search builds (2**depth if ties went breadth first), then a
        # backward pass along each path found and one for the total
        assert len(vjp_calls) <= 4 * k * (depth + 1) + 2 * (k + 1) * (depth + 1), len(vjp_calls)
        built = getattr(searches[-1], "built", math.inf)
        assert built <= 4 * k * (depth + 1), built
        # ties in the order paths() lists them: the slots read as binary numbers, counted from dst
        assert [p.slots[::-1] for p in best] == [tuple(int(b) for b in f"{n:0{depth}b}") for n in range(k)]
    dp.to_dot(g, highlight=g.top_paths(x, top, 5))  # the combination the issue reported


@pytest.mark.parametrize("depth", [16, 64])
def test_top_paths_of_tied_element_paths_cost_k_times_the_depth(depth, searches):
    g, x, top = doubling(depth, "element")
    assert g.count_paths(x, top, index=()) == 2 ** depth
    for k in (1, 5, 20):
        searches.clear()
        best = g.top_paths(x, top, k, index=())
        assert [p.contribution for p in best] == [1.0] * k and len(best[0].nodes) == 2 * depth + 1
        element_search = searches[-1]  # the last Between built is the element-level one
        built = getattr(element_search, "built", math.inf)
        assert built <= 4 * k * depth, built
    dp.to_dot(g, level="element", highlight=g.top_paths(x, top, 3, index=()), max_nodes=None)


@pytest.mark.parametrize("level", ["tensor", "element"])
def test_top_paths_are_exactly_the_head_of_paths_even_among_ties(level):
    g, x, top = doubling(5, level)
    index = None if level == "tensor" else ()
    everything = g.paths(x, top, index=index)
    assert len(everything) == 32
    for k in range(0, 34, 3):
        assert [(p.nodes, p.slots) for p in g.top_paths(x, top, k, index=index)] == \
            [(p.nodes, p.slots) for p in everything[:k]]


def test_the_tensor_search_gives_up_at_max_steps_with_what_to_do(searches):
    g, x, top = doubling(8, "tensor")
    assert len(g.top_paths(x, top, 3)) == 3
    needed = searches[-1].built
    assert len(dp.paths.top_paths(g, x, top, 3, max_steps=needed)) == 3
    with pytest.raises(dp.GraphError, match=rf"top_paths gave up after building {needed - 1} partial paths from "
                                            rf"'c7' back to 'x' \(max_steps={needed - 1}\) without proving which 3 are "
                                            rf"largest.*pass a larger max_steps= to dagprop.paths.top_paths"):
        dp.paths.top_paths(g, x, top, 3, max_steps=needed - 1)
    with pytest.raises(dp.GraphError, match="max_steps must be a positive int or None"):
        dp.paths.top_paths(g, x, top, 3, max_steps=0)


def test_nan_contributions_rank_first_and_do_not_break_the_order():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    y = g.op("mul", x, x, name="y")
    L = g.op("sum", g.op("add", y, x), name="L")
    g.forward()
    g.backward(L, seed=np.nan)
    for index, count in ((None, 3), ((0,), 2)):  # an element edge sums the two slots of x * x
        best = g.top_paths(x, L, 3, index=index)
        assert [p.nodes for p in best] == [p.nodes for p in g.paths(x, L, index=index)] and len(best) == count


def test_top_paths_of_the_mlp(mlp):
    g, n = mlp
    everything = g.paths("W1", "L", index=(2, 0))
    best = g.top_paths("W1", "L", 2, index=(2, 0))
    assert [abs(p.contribution) for p in best] == pytest.approx([abs(p.contribution) for p in everything[:2]])
    assert g.top_paths("W1", "L", 0, index=(2, 0)) == []


# -- the table ------------------------------------------------------------------------------------


def test_path_table_rows_and_text(mlp):
    g, n = mlp
    found = g.paths("W1", "L", index=(2, 0))
    table = dp.path_table(found)
    assert len(table) == 4
    assert [row.path for row in table] == found
    assert table[-1].running_sum == pytest.approx(n["W1"].grad[2, 0])
    assert table[1].running_sum == pytest.approx(found[0].contribution + found[1].contribution)
    text = str(table)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "path", "factors", "contribution", "running", "sum"]
    assert len(lines) == 7 and "W1[2,0] -> a1[2] -> h1[2]" in lines[2]
    assert len({len(line) for line in lines[1:2]}) == 1
    assert f"{n['W1'].grad[2, 0]:.4g}" in lines[-2]
    assert "forward mode" in lines[-1] and "reverse mode" in lines[-1]
    html = table._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") == 6


def test_element_paths_sum_to_the_gradient_and_to_the_forward_mode_tangent(mlp):
    g, n = mlp
    found = g.paths("W1", "L", index=(2, 0))
    total = sum(p.contribution for p in found)
    direction = np.zeros(n["W1"].value.shape)
    direction[2, 0] = 1.0
    g.jvp({"W1": direction})
    assert total == pytest.approx(float(n["W1"].grad[2, 0]), rel=1e-12)
    assert total == pytest.approx(float(g["L"].tangent), rel=1e-12)
    # the same product read forwards: each path's factors multiply to its contribution
    for path in found:
        assert float(np.prod(path.factors)) == pytest.approx(path.contribution, rel=1e-12)


def test_path_table_of_tensor_paths_and_empty():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    y = g.op("mul", x, x, name="y")
    g.forward()
    g.backward(y, seed=[1.0, 1.0])
    text = str(dp.path_table(g.paths(x, y)))
    assert "x -[a]-> y" in text and "x -[b]-> y" in text and "[2., 4.]" in text.replace("[2, 4]", "[2., 4.]")
    assert "(no paths)" in str(dp.path_table([]))
    with pytest.raises(TypeError, match="Path objects"):
        dp.path_table([1, 2])


def test_path_table_html_escapes_hostile_names():
    g = dp.Graph()
    x = g.param('<script>alert("x")</script>', [1.0, 2.0])
    y = g.op("mul", x, 2.0, name="a&b<i>")
    g.forward()
    g.backward(y, seed=[1.0, 1.0])
    html = dp.path_table(g.paths(x, y, index=((0,), (0,))))._repr_html_()
    assert "<script>" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "a&amp;b&lt;i&gt;" in html


# -- bad input ------------------------------------------------------------------------------------


@pytest.fixture
def small():
    g = dp.Graph()
    x = g.param("x", [1.0, 2.0])
    w = g.param("w", [[1.0, 2.0], [3.0, 4.0]])
    other = g.param("other", 5.0)
    z = g.op("matmul", w, x, name="z")
    loss = g.op("sum", g.op("mul", z, z), name="loss")
    g.op("mul", other, 2.0, name="unused")
    return g, x, w, other, z, loss


def test_no_path_gives_empty_answers(small):
    g, x, w, other, z, loss = small
    g.forward()
    g.backward(loss)
    assert g.paths(other, loss) == [] and g.count_paths(other, loss) == 0 and g.top_paths(other, loss, 3) == []
    assert g.paths(other, loss, index=()) == [] and g.count_paths(other, loss, ()) == 0
    assert g.top_paths(other, loss, 3, index=()) == []
    assert g.paths(loss, x) == []  # backwards: no path from the loss to an input
    assert g.paths(z, "unused") == []


def test_src_equal_to_dst_is_one_empty_path(small):
    g, x, w, other, z, loss = small
    g.forward()
    g.backward(loss)
    (only,) = g.paths(loss, loss)
    assert only.nodes == ("loss",) and only.edges == () and float(only.contribution) == 1.0 and only


def test_index_out_of_range_and_malformed(small):
    g, x, w, other, z, loss = small
    g.forward()
    g.backward(loss)
    with pytest.raises(dp.GraphError, match=r"out of range for 'w' of shape \(2, 2\): axis 0 has 2"):
        g.paths(w, loss, index=(2, 0))
    with pytest.raises(dp.GraphError, match=r"has 1 entries but 'w' has shape \(2, 2\)"):
        g.count_paths(w, loss, 1)
    with pytest.raises(dp.GraphError, match="tuple of ints"):
        g.top_paths(w, loss, 2, index=(0.5, 0))
    with pytest.raises(dp.GraphError, match="dst index"):
        g.paths(x, z, index=((0,), (5,)))
    assert g.paths(w, loss, index=(-1, -1))[0].nodes[0] == "w[1,1]"


def test_non_scalar_dst_needs_an_index(small):
    g, x, w, other, z, loss = small
    g.forward()
    g.backward(loss)
    with pytest.raises(dp.GraphError, match=r"dst 'z' has shape \(2,\).*index=\(src_index, dst_index\)"):
        g.paths(x, z, index=(0,))
    assert [p.nodes for p in g.paths(x, z, index=((0,), (1,)))] == [("x[0]", "z[1]")]
    assert g.paths(x, z, index=(0, (1,)))[0].nodes == ("x[0]", "z[1]")


def test_paths_before_backward_is_a_clear_error(small):
    g, x, w, other, z, loss = small
    with pytest.raises(dp.GraphError, match="run g.forward"):
        g.paths(x, loss, index=(0,))
    assert g.count_paths(x, loss) == 2  # the two slots of z * z; the structure alone needs no run
    g.forward()
    for call in (lambda: g.paths(x, loss), lambda: g.top_paths(x, loss, 1), lambda: g.paths(x, loss, index=(0,))):
        with pytest.raises(dp.BackwardError, match=r"no gradient has reached 'loss'.*g.backward\(loss\)"):
            call()
    assert g.count_paths(x, loss, (0,)) == 2  # via z[0] and z[1]: needs values, not gradients


def test_bad_limit_and_k(small):
    g, x, w, other, z, loss = small
    g.forward()
    g.backward(loss)
    with pytest.raises(dp.GraphError, match="limit must be"):
        g.paths(x, loss, limit=-1)
    with pytest.raises(dp.GraphError, match="k must be"):
        g.top_paths(x, loss, -2)
    with pytest.raises(dp.GraphError, match="more than limit=0"):
        g.paths(x, loss, limit=0)
    with pytest.raises(KeyError, match="no node named 'nope'"):
        g.paths("nope", loss)
