"""simulate(): the scheduler's real order, running sums, the dagprop_on_step hook, a dry run."""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp
from dagprop import scheduler

import notes_mlp


def test_steps_follow_the_scheduler_order_and_end_at_the_engine_gradients():
    g, n = notes_mlp.build()
    steps = list(dp.simulate(g, "L"))
    forward = [s for s in steps if s.kind == "forward"]
    backward = [s for s in steps if s.kind == "backward"]
    assert steps == forward + backward  # every forward step comes first
    assert [s.number for s in steps] == list(range(len(steps)))
    plan = g.plan
    assert [s.node for s in forward] == [step.node.name for step in plan.forward_plan((n["L"].index,)).steps]
    assert [s.node for s in forward] == ["a1", "h1", "a2", "yhat", "L"]
    for s in forward:
        np.testing.assert_array_equal(s.value, n[s.node].value)
    # backward: one step per edge slot that carries gradient, consumers in reverse topological order
    assert [s.edge for s in backward] == [("yhat", "L", 0), ("a2", "yhat", 0), ("W2", "a2", 0), ("h1", "a2", 1),
                                           ("a1", "h1", 0), ("W1", "a1", 0)]
    last = {}
    for s in backward:
        last[s.node] = s
        np.testing.assert_array_equal(s.contribution, g.edge_grad(s.edge[0], s.edge[1]))
    for name, s in last.items():
        np.testing.assert_allclose(s.grad, n[name].grad, rtol=1e-15)


def test_running_sums_when_a_node_receives_several_contributions():
    g = dp.Graph()
    x = g.param("x", 3.0)
    y = g.op("mul", x, x, name="y")
    loss = g.op("add", y, x, name="L")
    backward = [s for s in dp.simulate(g, loss) if s.kind == "backward"]
    into_x = [s for s in backward if s.node == "x"]
    assert [s.arrivals for s in into_x] == [1, 2, 3]
    assert [float(s.contribution) for s in into_x] == [1.0, 3.0, 3.0]  # d(x+y)/dx, then x from each slot of x*x
    assert [float(s.grad) for s in into_x] == [1.0, 4.0, 7.0]
    assert sorted(s.edge[2] for s in into_x if s.edge[1] == "y") == [0, 1]
    assert "sum of 3 so far" in str(into_x[-1])


def test_simulation_is_a_dry_run_and_honours_feeds_and_seed():
    g = dp.Graph()
    x = g.input("x", requires_grad=True)
    y = g.op("mul", x, 2.0, name="y")
    steps = list(dp.simulate(g, y, feeds={"x": [1.0, 5.0]}, seed=[1.0, 10.0]))
    assert x.value is None and y.value is None and x.grad is None  # nothing committed
    assert steps[0].kind == "forward" and steps[0].value.tolist() == [2.0, 10.0]
    (into_x,) = [s for s in steps if s.node == "x"]
    assert into_x.grad.tolist() == [2.0, 20.0]
    with pytest.raises(dp.BackwardError, match="needs a seed"):
        list(dp.simulate(g, y, feeds={"x": [1.0, 5.0]}))


def test_matches_a_direct_scheduler_run_with_jacobian_mode():
    g, n = notes_mlp.build()
    steps = list(dp.simulate(g, "L", mode="jacobian"))
    final = {s.node: s.grad for s in steps if s.kind == "backward"}
    for name in ("W1", "W2", "h1"):
        np.testing.assert_allclose(final[name], n[name].grad, rtol=1e-12, atol=1e-15)


class Recorder:
    """A plugin that logs every step it is shown."""

    def __init__(self):
        self.steps = []

    @dp.hookimpl
    def dagprop_on_step(self, step):
        self.steps.append(step)


def test_the_hook_sees_every_step_as_it_happens():
    recorder = Recorder()
    g = dp.Graph(plugins=[recorder])
    x = g.param("x", [1.0, 2.0])
    loss = g.op("sum", g.op("mul", x, x), name="loss")
    generator = dp.simulate(g, loss)
    first = next(generator)
    # the whole forward pass has run (and been reported) by the time its first step is yielded
    assert first is recorder.steps[0] and len(recorder.steps) == 2
    rest = list(generator)
    assert recorder.steps == [first, *rest]
    assert [s.kind for s in recorder.steps] == ["forward", "forward", "backward", "backward", "backward"]


def test_stopping_after_the_forward_steps_runs_no_backward():
    recorder = Recorder()
    g = dp.Graph(plugins=[recorder])
    x = g.param("x", 2.0)
    loss = g.op("mul", x, x, name="loss")
    for step in dp.simulate(g, loss):
        if step.kind == "forward":
            break
    assert [s.kind for s in recorder.steps] == ["forward"]


def test_the_simulation_record_collects_the_end_state():
    g, n = notes_mlp.build()
    simulation = dp.simulate(g, "L")
    assert simulation.run.grad("W1") is None and not simulation.run.seeds  # no backward step yet
    list(simulation)
    run = simulation.run
    np.testing.assert_array_equal(run.value("yhat"), n["yhat"].value)
    np.testing.assert_allclose(run.grad("W1"), n["W1"].grad)
    assert run.grad("x") is None
    assert [(node.name, float(seed)) for node, seed in run.seeds] == [("L", 1.0)]
    assert g.run.grad("W1") is not None and g.run is not run  # the graph keeps its own record
    assert set(run.edge_grads) == {(n["L"].index, 0), (n["yhat"].index, 0), (n["a2"].index, 0), (n["a2"].index, 1),
                                   (n["h1"].index, 0), (n["a1"].index, 0)}


def test_simulate_uses_the_scheduler_callbacks(monkeypatch):
    calls = []
    real_forward, real_backward = scheduler.run_forward, scheduler.run_backward

    def spy_forward(*args, **kwargs):
        calls.append(("forward", kwargs.get("on_step") is not None))
        return real_forward(*args, **kwargs)

    def spy_backward(*args, **kwargs):
        calls.append(("backward", kwargs.get("on_step") is not None))
        return real_backward(*args, **kwargs)

    monkeypatch.setattr(scheduler, "run_forward", spy_forward)
    monkeypatch.setattr(scheduler, "run_backward", spy_backward)
    g = dp.Graph()
    x = g.param("x", 1.0)
    list(dp.simulate(g, g.op("mul", x, x)))
    assert calls == [("forward", True), ("backward", True)]


# -- the frames the player plays (dagprop.player.frames) -----------------------------------------


def known_values(run):
    return {node.name for node in run.graph if run.values[node.index] is not None}


def known_grads(run):
    return {node.name: run.grads[node.index] for node in run.graph if run.grads[node.index] is not None}


def test_tensor_frames_reveal_one_step_at_a_time_and_end_with_the_engine_state():
    from dagprop.player import frames

    g, n = notes_mlp.build()
    every = frames(g, "L")
    steps = list(dp.simulate(g, "L"))
    assert len(every) == len(steps) + 3
    assert [f.phase for f in every] == ["start"] + ["forward"] * 5 + ["backward"] * 7 + ["done"]
    assert known_values(every[0].run) == {"W1", "W2", "x", "y"} and not known_grads(every[0].run)
    for before, after in zip(every, every[1:6]):  # each forward frame adds exactly its node's value
        assert known_values(after.run) - known_values(before.run) == {after.current}
    assert known_grads(every[6].run) == {"L": 1.0} and every[6].highlight == ["L"]
    final = every[-1].run
    assert set(final.edge_grads) == set(g.run.edge_grads)
    for key, grad in g.run.edge_grads.items():
        np.testing.assert_allclose(final.edge_grads[key], grad)
    for name in ("W1", "W2", "a1", "h1", "a2", "yhat", "L"):
        np.testing.assert_allclose(final.grad(name), n[name].grad)
    assert every[-2].highlight == ["W1", ("W1", "a1", 0)] and every[-2].current == "a1->W1[0]"


def element_numbers(element_graph, run):
    from dagprop.drawing.element import ElementNumbers

    numbers = ElementNumbers(element_graph, run)
    values = {e: numbers.value(e) for e in element_graph if numbers.value(e) is not None}
    grads = {e: numbers.grad(e) for e in element_graph if numbers.grad(e) is not None}
    flows = {(a, b): numbers.flow(a, b) for a, b in element_graph.edges if numbers.flow(a, b) is not None}
    return values, grads, flows


def test_element_frames_match_the_element_graph_of_the_finished_run():
    from dagprop.player import frames

    g, n = notes_mlp.build()
    every = frames(g, "L", level="element")
    eg = g.element_graph()
    # what the finished run shows, against the element graph's own attributes, written out here
    values, grads, flows = element_numbers(eg, every[-1].run)
    assert values == pytest.approx({e: v for e, v in eg.nodes(data="value")}, rel=1e-12)
    assert grads == pytest.approx({e: d for e, d in eg.nodes(data="grad") if d is not None}, rel=1e-12, abs=1e-18)
    expected_flows = {(a, b): w * eg.nodes[b]["grad"] for a, b, w in eg.edges(data="weight")
                      if eg.nodes[a]["grad"] is not None and eg.nodes[b]["grad"] is not None}
    assert set(flows) == set(expected_flows)  # none goes into the inputs x and y
    assert not any(source.startswith(("x[", "y[")) for source, _ in flows)
    for key, flow in flows.items():
        assert flow == pytest.approx(expected_flows[key], rel=1e-12, abs=1e-18)
    assert element_numbers(eg, every[1].run)[0]["a1[2]"] == pytest.approx(2.1)
    assert "a1[2]" not in element_numbers(eg, every[0].run)[0]


def test_element_frames_show_an_edge_flow_once_every_slot_has_sent_its_part():
    from dagprop.player import frames

    g = dp.Graph()
    x = g.param("x", [1.5, -2.0])
    loss = g.op("sum", g.op("mul", x, x, name="y"), name="L")
    every = frames(g, loss, level="element")
    slot_a, slot_b = [f for f in every if f.step is not None and f.step.edge and f.step.edge[1] == "y"]
    g.forward()
    eg = g.element_graph()
    _, grads_a, flows_a = element_numbers(eg, slot_a.run)
    _, grads_b, flows_b = element_numbers(eg, slot_b.run)
    assert ("x[0]", "y[0]") not in flows_a
    assert grads_a["x[0]"] == pytest.approx(1.5)  # the running sum after one slot
    assert flows_b[("x[0]", "y[0]")] == pytest.approx(3.0)  # d(x*x)/dx * 1
    assert grads_b["x[0]"] == pytest.approx(3.0)


def test_frames_reject_an_unknown_level():
    from dagprop.player import frames

    g = dp.Graph()
    x = g.param("x", 1.0)
    with pytest.raises(dp.GraphError, match="level must be 'tensor' or 'element'"):
        frames(g, g.op("mul", x, x), level="neuron")


# -- forward mode: simulate(..., mode="forward", tangents=...) ---------------------------------------


def forward_graph(x: float = 2.0, w: float = 3.0) -> tuple[dp.Graph, dict[str, dp.Node]]:
    """y = x * w + x, L = tanh(y): with dx = 1, mul_1.tangent = w, y.tangent = w + 1,
    L.tangent = (1 - tanh(y)^2) (w + 1)."""
    g = dp.Graph()
    nodes = {"x": g.param("x", x), "w": g.param("w", w)}
    nodes["mul_1"] = g.op("mul", nodes["x"], nodes["w"], name="mul_1")
    nodes["y"] = g.op("add", nodes["mul_1"], nodes["x"], name="y")
    nodes["L"] = g.op("tanh", nodes["y"], name="L")
    return g, nodes


def test_forward_mode_plays_the_forward_steps_then_one_tangent_step_per_edge_slot():
    x, w = 0.5, -0.4
    g, _ = forward_graph(x, w)
    steps = list(dp.simulate(g, "L", mode="forward", tangents={"x": 1.0}))
    assert [s.kind for s in steps] == ["forward"] * 3 + ["tangent"] * 4  # no backward step
    assert [s.number for s in steps] == list(range(7))
    tangent = [s for s in steps if s.kind == "tangent"]
    # consumers in plan order; within a consumer, its slots in order; w does not move, so w -> mul_1 carries nothing
    assert [s.edge for s in tangent] == [("x", "mul_1", 0), ("mul_1", "y", 0), ("x", "y", 1), ("y", "L", 0)]
    assert [s.node for s in tangent] == ["mul_1", "y", "y", "L"]
    y = x * w + x
    dtanh = 1 - np.tanh(y) ** 2
    assert [float(s.contribution) for s in tangent] == pytest.approx([w, w, 1.0, dtanh * (w + 1)], rel=1e-14)
    assert [float(s.tangent) for s in tangent] == pytest.approx([w, w, w + 1, dtanh * (w + 1)], rel=1e-14)
    assert [s.arrivals for s in tangent] == [1, 1, 2, 1]
    assert all(s.grad is None and s.value is None for s in tangent)


def test_a_tangent_step_prints_what_it_carries_and_the_running_sum():
    g, _ = forward_graph(2.0, 3.0)
    printed = [str(s) for s in dp.simulate(g, "L", mode="forward", tangents={"x": 1.0})]
    assert printed[3] == "  3 tangent   x -> mul_1 [slot 0]: carries 3., mul_1.tangent = 3."
    assert printed[5] == "  5 tangent   x -> y [slot 1]: carries 1., y.tangent = 4. (sum of 2 so far)"  # w + 1


def test_forward_mode_ends_with_the_tangents_of_a_jvp_and_leaves_the_graph_alone():
    g, n = forward_graph(0.5, -0.4)
    simulation = dp.simulate(g, "L", mode="forward", tangents={n["x"]: 1.0, "w": 2.0})
    assert simulation.run.tangents is None  # nothing pushed before the steps are taken
    list(simulation)
    run = simulation.run
    assert n["x"].tangent is None and n["L"].value is None  # a dry run
    g.jvp({"x": 1.0, "w": 2.0})
    for name in ("x", "w", "mul_1", "y", "L"):
        np.testing.assert_allclose(run.tangent(name), g.run.tangent(name), rtol=1e-15)
    # with dx = 1 and dw = 2: d(x w + x) = w dx + x dw + dx
    assert float(run.tangent("y")) == pytest.approx(-0.4 + 0.5 * 2.0 + 1.0)
    assert set(run.edge_tangents) == set(g.run.edge_tangents)
    assert not run.has_grads and not run.seeds


def test_forward_mode_honours_feeds_and_array_tangents():
    g = dp.Graph()
    x = g.input("x")
    w = g.param("w", [3.0, -1.0])
    g.op("sum", g.op("mul", x, w, name="m"), name="L")
    steps = list(dp.simulate(g, "L", {"x": [1.0, 2.0]}, mode="forward", tangents={"x": [1.0, 10.0]}))
    final = {s.node: s.tangent for s in steps if s.kind == "tangent"}
    np.testing.assert_array_equal(final["m"], [3.0, -10.0])  # w * dx
    assert float(final["L"]) == -7.0
    assert x.value is None


def test_forward_mode_reaches_every_node_downstream_of_its_leaves():
    g = dp.Graph()
    x = g.param("x", 2.0)
    g.op("mul", x, 3.0, name="other")  # not an ancestor of L, but x moves it too
    g.op("tanh", x, name="L")
    steps = list(dp.simulate(g, "L", mode="forward", tangents={x: 1.0}))
    assert {s.node for s in steps if s.kind == "forward"} == {"other", "L"}
    assert {s.node for s in steps if s.kind == "tangent"} == {"other", "L"}


def test_the_hook_sees_the_tangent_steps():
    recorder = Recorder()
    g = dp.Graph(plugins=[recorder])
    x = g.param("x", [1.0, 2.0])
    g.op("sum", g.op("mul", x, x), name="loss")
    steps = list(dp.simulate(g, "loss", mode="forward", tangents={x: [1.0, 0.0]}))
    assert recorder.steps == steps
    assert [s.kind for s in recorder.steps] == ["forward", "forward", "tangent", "tangent", "tangent"]


def test_simulate_pushes_tangents_through_the_scheduler_callback(monkeypatch):
    calls = []
    real_jvp = scheduler.run_jvp

    def spy_jvp(*args, **kwargs):
        calls.append(kwargs.get("on_step") is not None)
        return real_jvp(*args, **kwargs)

    monkeypatch.setattr(scheduler, "run_jvp", spy_jvp)
    g, _ = forward_graph()
    list(dp.simulate(g, "L", mode="forward", tangents={"x": 1.0}))
    assert calls == [True]


@pytest.mark.parametrize("arguments, error, message", [
    ({"mode": "forward"}, dp.GraphError, r"mode='forward' pushes tangents forward from leaves: pass tangents="),
    ({"tangents": {"x": 1.0}}, dp.BackwardError, r"tangents= are pushed forward by mode='forward'; mode='vjp'"),
    ({"mode": "jacobian", "tangents": {"x": 1.0}}, dp.BackwardError, r"mode='jacobian' runs a backward pass"),
    ({"mode": "reverse"}, dp.BackwardError, r"mode must be one of 'vjp', 'jacobian', 'forward', got 'reverse'"),
    ({"mode": "forward", "tangents": {"x": 1.0}, "seed": 1.0}, dp.GraphError, r"seed= starts a backward pass"),
    ({"mode": "forward", "tangents": {"y": 1.0}}, dp.GraphError, r"'y' is an op node \(add\)"),
    ({"mode": "forward", "tangents": {"x": [1.0, 2.0]}}, dp.GraphError,
     r"the tangent of 'x' has shape \(2,\), but 'x' has shape \(\)"),
    ({"mode": "forward", "tangents": {"nope": 1.0}}, dp.GraphError, r"nope"),
])
def test_mistaken_mode_arguments_are_refused_before_any_step(arguments, error, message):
    recorder = Recorder()
    g = dp.Graph(plugins=[recorder])
    x = g.param("x", 2.0)
    g.op("add", x, x, name="y")
    with pytest.raises(error, match=message):
        dp.simulate(g, "y", **arguments)  # raised by the call, not when the steps are taken
    assert recorder.steps == []


def test_an_unfed_input_cannot_start_a_tangent():
    g = dp.Graph()
    x = g.input("x")
    g.op("tanh", x, name="t")
    with pytest.raises(dp.GraphError, match="input 'x' has no value: give or feed one"):
        dp.simulate(g, "t", mode="forward", tangents={x: 1.0})


def test_forward_mode_frames_push_one_tangent_at_a_time():
    from dagprop.player import frames

    x, w = 0.5, -0.4
    g, _ = forward_graph(x, w)
    every = frames(g, "L", mode="forward", tangents={"x": 1.0})
    assert [f.phase for f in every] == ["start"] + ["forward"] * 3 + ["tangent"] * 5 + ["done"]
    start = every[4]
    assert start.caption == "Forward mode starts at the leaves: x.tangent = 1" and start.highlight == ["x"]
    assert [node.name for node in g if start.run.tangent(node) is not None] == ["x"]
    assert all(f.run.tangents is None for f in every[:4])  # no tangent before forward mode starts
    y_sum = every[7]
    assert y_sum.current == "x->y[1]" and y_sum.highlight == ["y", ("x", "y", 1)]
    assert y_sum.detail == f"y.tangent = {w:g} + 1 = {w + 1:g}, a running sum of 2 contributions"
    assert float(y_sum.run.tangent("y")) == pytest.approx(w + 1) and y_sum.run.tangent("L") is None
    for before, after in zip(every[4:8], every[5:9]):  # each tangent frame adds exactly its edge slot
        assert len(after.run.edge_tangents) == len(before.run.edge_tangents) + 1
    final = every[-1]
    dtanh = 1 - np.tanh(x * w + x) ** 2
    assert float(final.run.tangent("L")) == pytest.approx(dtanh * (w + 1), rel=1e-14)
    assert final.caption == "Done: every tangent is known" and final.detail.startswith("L.tangent = ")
    assert not final.run.has_grads
