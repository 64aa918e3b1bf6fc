"""Issue 10's engine edges: each test fails on the behaviour the issue found and pins the promise.

Items 5, 6, 7, 12, 13, 14, 15, 16, 18, 19; the op, path, player and file items are tested
beside their modules (tests/ops, test_paths, test_player, test_io, test_cli)."""

from __future__ import annotations

import io
import textwrap
import threading
import tokenize

import numpy as np
import pytest

import dagprop as dp
from dagprop import registry as registry_module


def plugin_with(*ops: dp.Op) -> object:
    class Plugin:
        @dp.hookimpl
        def dagprop_ops(self):
            return list(ops)

    return Plugin()


def _identity(x):
    return x


def _pass_back(g, x, *, out):
    return (g,)


def _same(shape):
    return shape


# -- 5: backward(check_finite=True) ---------------------------------------------------------


def test_backward_check_finite_names_the_first_non_finite_gradient_and_commits_nothing():
    g = dp.Graph()
    x = g.param("x", [0.0, 4.0])
    root = g.op("pow", x, exponent=0.5, name="root")  # d sqrt(x)/dx = inf at 0
    L = g.op("sum", root * 2.0, name="L")
    g.forward()
    g.backward(L)
    before = g.run
    with pytest.raises(dp.NonFiniteError, match=r"gradient of 'x' \(param\) holds Inf.*from 'root' \(pow, argument 0\)"):
        g.backward(L, check_finite=True)
    assert g.run is before  # nothing committed
    np.testing.assert_array_equal(x.grad, [np.inf, 0.5])  # the first backward's gradient, unchanged


def test_backward_check_finite_passes_finite_gradients_through():
    g = dp.Graph()
    w = g.param("w", [1.0, -2.0])
    L = (w * w).sum()
    g.forward()
    g.backward(L, check_finite=True)
    np.testing.assert_array_equal(w.grad, [2.0, -4.0])  # d(w.w)/dw = 2w, written out


# -- 6 and 7: what ops return is checked on every run ------------------------------------------


def test_a_forward_that_changes_shape_on_a_later_run_is_caught_not_committed():
    calls = {"n": 0}

    def fickle(x):
        calls["n"] += 1
        return x if calls["n"] < 3 else x[:1]  # right twice, then wrong

    g = dp.Graph(plugins=[plugin_with(dp.Op("fickle", forward=fickle, vjp=_pass_back, shape=_same))])
    y = g.op("fickle", g.param("x", [1.0, 2.0]), name="y")
    g.forward()  # checked run
    g.forward()  # fast path
    values = g.run.values
    with pytest.raises(dp.OpError, match=r"forward of op 'fickle' at node 'y'.*returned shape \(1,\)"):
        g.forward()
    assert g.run.values is values and y.value.shape == (2,)


@pytest.mark.parametrize("result, kind", [
    (np.array([1 + 2j, 3j]), "complex128"), (np.array([1, 2]), "int64"), (np.array(["a", "b"]), "<U1"),
    (np.array([object(), object()]), "object"), (np.array([True, False]), "bool"),
])
def test_forward_results_must_be_real_floating_arrays(result, kind):
    def forward(x):
        return result

    g = dp.Graph(plugins=[plugin_with(dp.Op("odd", forward=forward, vjp=_pass_back))])
    g.op("odd", g.param("x", [1.0, 2.0]), name="y")
    with pytest.raises(dp.OpError, match=rf"forward of op 'odd' at node 'y'.*dtype {kind}.*real floating-point"):
        g.forward()


@pytest.mark.parametrize("first_runs", [1, 2])  # the interpreter, and the fast path after it
def test_a_complex_vjp_never_makes_gradients_complex(first_runs):
    calls = {"n": 0}

    def complex_vjp(g, x, *, out):
        calls["n"] += 1
        return (g * (1 + 1j) if calls["n"] >= first_runs else g,)

    g = dp.Graph(plugins=[plugin_with(dp.Op("twist", forward=_identity, vjp=complex_vjp, shape=_same))])
    x = g.param("x", [1.0, 2.0])
    L = g.op("sum", g.op("twist", x, name="t"), name="L")
    g.forward()
    if first_runs == 2:
        g.backward(L)
        g.zero_grad()
    with pytest.raises(dp.OpError, match=r"vjp of op 'twist' at node 't'.*dtype complex128"):
        g.backward(L)
    assert x.grad is None


def test_a_vjp_returning_text_is_an_op_error():
    def text_vjp(g, x, *, out):
        return ("not a gradient",)

    g = dp.Graph(plugins=[plugin_with(dp.Op("chatty", forward=_identity, vjp=text_vjp))])
    L = g.op("sum", g.op("chatty", g.param("x", [1.0]), name="c"))
    g.forward()
    with pytest.raises(dp.OpError, match=r"vjp of op 'chatty' at node 'c'"):
        g.backward(L)


@pytest.mark.parametrize("rule, message", [
    (lambda shape: None, r"shape rule of op 'shaped'.* returned None.*tuple of non-negative ints"),
    (lambda shape: (-1,), r"returned \(-1,\)"),
    (lambda shape: {}["missing"], r"shape rule of op 'shaped'.* raised KeyError"),
])
def test_shape_rules_that_misbehave_are_op_errors(rule, message):
    g = dp.Graph(plugins=[plugin_with(dp.Op("shaped", forward=_identity, vjp=_pass_back, shape=rule))])
    with pytest.raises(dp.OpError, match=message):
        g.op("shaped", g.param("x", [1.0]))


# -- 12: a failed op call changes nothing -------------------------------------------------------


def test_a_failed_op_call_leaves_no_orphan_constants():
    g = dp.Graph()
    W = g.param("W", np.ones((2, 3)))
    with pytest.raises(dp.ShapeError, match=r"W \(2, 3\), a new const \(5, 5\)"):
        g.op("matmul", W, np.ones((5, 5)))
    assert [n.name for n in g] == ["W"] and g.nx.number_of_nodes() == 1
    with pytest.raises(dp.GraphError, match="argument 1 of op 'add' is not a real numeric array"):
        g.op("add", W, "text")
    assert len(g) == 1


# -- 13: lookups fail with dagprop errors ----------------------------------------------------------


def test_lookup_failures_are_dagprop_errors_and_key_errors():
    g = dp.Graph()
    x = g.input("x", 1.0)
    L = g.op("mul", g.param("w", 2.0), x, name="L")
    g.forward()
    for call in (lambda: g.forward(feeds={"nope": 1}), lambda: g.backward("nope"),
                 lambda: g.forward(outputs=["nope"]), lambda: g.jacobian(L, "nope"), lambda: g["nope"]):
        with pytest.raises(dp.NodeLookupError, match="no node named 'nope'") as info:
            call()
        assert isinstance(info.value, KeyError) and isinstance(info.value, dp.DagpropError)
    with pytest.raises(dp.BackwardError, match="mode must be one of 'vjp', 'jacobian', got 'x'"):
        g.backward(L, mode="x")
    with pytest.raises(dp.NodeLookupError, match="expected a Node or a node name"):
        g.node(3)


# -- 14: no stale values after a partial forward ---------------------------------------------------


def test_a_partial_forward_never_leaves_stale_values_for_backward():
    g = dp.Graph()
    x = g.input("x", 1.0)
    w = g.param("w", 3.0)
    h = g.op("mul", w, x, name="h")
    L = g.op("mul", h, h, name="L")  # L = (w x)^2
    g.forward()
    assert float(L.value) == 9.0
    g.forward(feeds={"x": 10.0}, outputs=["h"])
    assert float(h.value) == 30.0 and L.value is None  # L was not recomputed, so it is not shown stale
    with pytest.raises(dp.BackwardError, match="node 'L' has no value: run forward"):
        g.backward(L)
    g.forward()
    g.backward(L)
    assert float(L.value) == 900.0 and float(w.grad) == 2 * 30.0 * 10.0  # dL/dw = 2 (w x) x


# -- 15: step validates, then updates every param or none -------------------------------------------


def test_step_refuses_an_array_learning_rate_and_changes_nothing():
    g = dp.Graph()
    b = g.param("b", np.zeros((3, 1)))
    L = (b * b).sum() + b.sum()
    g.forward()
    g.backward(L)
    for lr in (np.ones((3, 3)), "0.1", None, float("nan"), True):
        with pytest.raises(dp.GraphError, match="lr must be a finite real number"):
            g.step(lr=lr)
        assert b.value.shape == (3, 1) and not b.value.any()
    g.step(lr=np.float64(0.5))
    np.testing.assert_array_equal(b.value, np.full((3, 1), -0.5))  # b - 0.5 * (2b + 1) at b = 0


def test_step_updates_all_params_or_none():
    g = dp.Graph()
    a = g.param("a", [1.0, 2.0])
    b = g.param("b", [3.0])
    L = (a * a).sum() + (b * b).sum()
    g.forward()
    g.backward(L)
    wrong = g.run.without_grads()  # a record whose gradient for b has the wrong shape
    g.run.grads[b.index] = np.ones((2, 2))
    with pytest.raises(dp.GraphError, match=r"step would change the shape of param 'b' from \(1,\) to \(2, 2\)"):
        g.step(lr=0.1)
    np.testing.assert_array_equal(a.value, [1.0, 2.0])  # a was not updated either
    assert wrong.graph is g


# -- 16: generated source has one ASCII identifier per node ---------------------------------------


def test_codegen_keeps_unicode_names_apart():
    g = dp.Graph()
    fi, ligature = g.param("fi", 2.0), g.param("\ufb01", 3.0)  # NFKC folds the ligature to "fi"
    squared = g.param("x\u00b2", 1.0)
    L = g.op("add", g.op("mul", fi, ligature), squared, name="L")
    g.forward()
    g.backward(L)
    source = dp.codegen(g, L)
    names = {token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.NAME}
    assert all(name.isascii() for name in names)  # the real names live on in comments and dict keys
    assert "'\ufb01'" in source and "'x\u00b2'" in source
    namespace: dict = {}
    exec(compile(source, "generated", "exec"), namespace)
    values = namespace["forward"](g.registry, {n.name: n.value for n in g if n.op is None})
    assert float(values["L"]) == 2.0 * 3.0 + 1.0
    grads = namespace["backward"](g.registry, values)
    assert float(grads["fi"]) == 3.0 and float(grads["\ufb01"]) == 2.0 and float(grads["x\u00b2"]) == 1.0


# -- 18: registering plugins ------------------------------------------------------------------------


def _defined_again():
    """An object of a class defined anew on each call, as a re-run notebook cell does."""

    class Doubler:
        @dp.hookimpl
        def dagprop_ops(self):
            return [dp.Op("doubled", forward=_doubled, vjp=_doubled_vjp)]

    return Doubler()


def _doubled(x):
    return 2 * x


def _doubled_vjp(g, x, *, out):
    return (2 * g,)


def test_registering_a_class_defined_again_replaces_it_with_one_warning(monkeypatch):
    monkeypatch.setattr(registry_module, "_extra_plugins", [])
    monkeypatch.setattr(registry_module, "_default", None)
    first, second = _defined_again(), _defined_again()
    dp.register_plugin(first)
    with pytest.warns(UserWarning, match="replacing the plugin registered earlier as"):
        dp.register_plugin(second)
    assert registry_module._extra_plugins == [second]
    g = dp.Graph()
    y = g.ops.doubled(g.param("x", 1.5))
    g.forward()
    assert float(y.value) == 3.0


def test_two_plugins_of_one_name_in_one_graph_are_one_clear_line():
    with pytest.raises(dp.PluginError) as info:
        dp.Graph(plugins=[_defined_again(), _defined_again()])
    message = str(info.value)
    assert "two different plugins are both named" in message and "\n" not in message and len(message) < 300


def test_a_broken_entry_point_is_named_with_its_distribution(tmp_path, monkeypatch):
    (tmp_path / "broken_dagprop_plugin.py").write_text("raise ImportError('missing dependency: fancylib')\n")
    dist = tmp_path / "broken_dagprop_plugin-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dagprop-plugin\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text("[dagprop]\nbroken = broken_dagprop_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry_module, "_default", None)
    with pytest.raises(dp.PluginError, match=textwrap.dedent(
            r"entry point 'broken' = 'broken_dagprop_plugin' of distribution 'broken-dagprop-plugin' failed to "
            r"load: ImportError: missing dependency: fancylib")):
        dp.Graph()
    monkeypatch.setattr(registry_module, "_default", None)


# -- 19: one graph, several threads ------------------------------------------------------------------


def test_backward_from_several_threads_loses_no_accumulation():
    g = dp.Graph()
    w = g.param("w", np.ones(64))
    L = (w * w).sum()
    g.forward()
    per_thread, threads = 250, 4

    def work():
        for _ in range(per_thread):
            g.backward(L)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    np.testing.assert_array_equal(w.grad, np.full(64, 2.0 * per_thread * threads))
    assert len(g.run.seeds) == per_thread * threads


def test_building_while_another_thread_runs_is_safe():
    g = dp.Graph()
    h = g.param("x", np.ones(8))
    for _ in range(2000):
        h = h * 1.0001
    L = h.sum()
    errors: list = []
    done = threading.Event()

    def run():
        try:
            while not done.is_set():
                g.forward()  # each one plans the graph anew, as it keeps changing
                g.backward(L)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escapes
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    for k in range(3000):
        g.op("add", g.param(f"p{k}", 1.0), 1.0)
    done.set()
    worker.join()
    assert not errors
    runs = len(g.run.seeds)  # every backward accumulated: d(sum of 1.0001^2000 x)/dx, once per run
    np.testing.assert_allclose(g["x"].grad, np.full(8, runs * 1.0001 ** 2000))
