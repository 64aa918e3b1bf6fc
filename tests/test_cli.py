"""The `dagprop` command: every subcommand, its output files and its failure exits; the demo's numbers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import dagprop as dp

from helpers import ci, needs_dot
from dagprop import demo
from dagprop.cli import COMMANDS, build_parser, find_loss, main



def dagprop_command(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m dagprop ARGS`` in a fresh process, as a user would run `dagprop`."""
    return subprocess.run([sys.executable, "-m", "dagprop", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def saved_graph(tmp_path):
    g = dp.Graph()
    e = g.param("e", [[1.0, 2.0, 0.5]])
    alpha = g.op("softmax", e, name="alpha")
    g.op("l2_loss", alpha, g.input("y", [[0.0, 1.0, 0.0]]), name="L")
    return dp.save(g, tmp_path / "graph.json", loss="L")


@pytest.fixture
def python_source(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent("""
        import dagprop as dp
        graph = dp.Graph()
        w = graph.param("w", [[0.5, -1.0], [2.0, 0.25]])
        h = graph.op("sigmoid", graph.op("matmul", w, graph.input("x", [[1.0], [2.0]])), name="h")
        loss = graph.op("sum", h, name="L")
    """))
    return path


# -- the command ------------------------------------------------------------------------------------


class TestCommand:
    def test_help(self):
        result = dagprop_command("--help")
        assert result.returncode == 0
        for name in ("ops", "render", "check-op", "demo"):
            assert name in result.stdout

    @pytest.mark.parametrize("name", ["ops", "render", "check-op", "demo"])
    def test_subcommand_help(self, name):
        result = dagprop_command(name, "--help")
        assert result.returncode == 0 and "--debug" in result.stdout

    def test_no_command_prints_usage(self, capsys):
        assert main([]) == 2
        assert "usage: dagprop" in capsys.readouterr().err

    def test_usage_error_exits_2(self):
        result = dagprop_command("render", "graph.json")
        assert result.returncode == 2 and "-o/--output" in result.stderr

    def test_version(self):
        result = dagprop_command("--version")
        assert result.returncode == 0 and result.stdout.startswith("dagprop ")

    def test_console_script_is_installed(self):
        # beside the interpreter running the tests: .venv/bin/dagprop after scripts/setup.sh
        script = Path(sys.executable).with_name("dagprop")
        if not script.exists() and not ci():
            pytest.skip("the package is not installed with its console script")
        assert subprocess.run([str(script), "--help"], capture_output=True, timeout=120).returncode == 0

    def test_commands_are_self_contained_functions(self):
        names = set(build_parser()._subparsers._group_actions[0].choices)
        assert {"ops", "render", "check-op", "demo"} <= names  # others add their own
        assert all(callable(add) for add in COMMANDS)

    def test_a_new_command_is_one_function(self, capsys, monkeypatch):
        def hello_command(subparsers):
            parser = subparsers.add_parser("hello")
            parser.set_defaults(run=lambda args: print("hello") or 0)

        monkeypatch.setattr("dagprop.cli.COMMANDS", [*COMMANDS, hello_command])
        assert main(["hello"]) == 0 and capsys.readouterr().out == "hello\n"


class TestOps:
    def test_lists_every_op(self, capsys):
        assert main(["ops"]) == 0
        out = capsys.readouterr().out
        lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
        for name in dp.Graph().registry.names():
            assert name in lines
        softmax = lines["softmax"].split()
        assert softmax[1] == "dagprop_plugins.activations" and softmax[3:5] == ["yes", "yes"]
        assert lines["add"].split()[1:5] == ["dagprop_plugins.elementwise", "a,", "b", "-"]
        assert f"{len(dp.Graph().registry)} ops" in out


class TestRender:
    @needs_dot
    def test_from_json(self, saved_graph, tmp_path):
        out = tmp_path / "out.svg"
        result = dagprop_command("render", str(saved_graph), "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote {out}") and "loss L =" in result.stdout
        root = ET.parse(out).getroot()
        shown = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert "alpha" in shown and "grad" in shown

    @needs_dot
    def test_from_python_with_options(self, python_source, tmp_path, capsys):
        out = tmp_path / "out.png"
        assert main(["render", str(python_source), "-o", str(out), "--title", "model", "--highlight", "w,h",
                     "--precision", "3", "--rankdir", "TB"]) == 0
        assert out.read_bytes().startswith(b"\x89PNG")
        assert "loss L = " in capsys.readouterr().out

    def test_expand_and_dot_format(self, saved_graph, tmp_path):
        out = tmp_path / "circuit.txt"
        assert main(["render", str(saved_graph), "-o", str(out), "--format", "dot", "--expand", "softmax"]) == 0
        text = out.read_text()
        assert "subgraph cluster_0" in text and "<B>exp_1</B>" in text
        assert main(["render", str(saved_graph), "-o", str(tmp_path / "all.dot"), "--expand", "all"]) == 0
        assert "subgraph cluster_0" in (tmp_path / "all.dot").read_text()

    def test_element_level(self, python_source, tmp_path):
        out = tmp_path / "elements.dot"
        assert main(["render", str(python_source), "-o", str(out), "--level", "element"]) == 0
        assert "<B>w[1,0]</B>" in out.read_text()

    def test_no_grad(self, python_source, tmp_path, capsys):
        out = tmp_path / "values.dot"
        assert main(["render", str(python_source), "-o", str(out), "--no-grad"]) == 0
        text = out.read_text()
        assert ">value<" in text and ">grad<" not in text
        assert "loss" not in capsys.readouterr().out

    def test_json_gradients_are_recomputed_not_doubled(self, saved_graph, tmp_path):
        out = tmp_path / "g.dot"
        assert main(["render", str(saved_graph), "-o", str(out)]) == 0
        once = out.read_text()
        assert main(["render", str(saved_graph), "-o", str(out)]) == 0
        assert out.read_text() == once
        g = dp.load(saved_graph)
        g.forward()
        g.backward("L")
        assert dp.to_dot(g) == once

    def test_loss_by_name(self, tmp_path):
        g = dp.Graph()
        w = g.param("w", [1.0, 2.0])
        g.op("sum", w, name="A")
        g.op("sum", w * w, name="B")
        path = dp.save(g, tmp_path / "two.json")
        assert main(["render", str(path), "-o", str(tmp_path / "b.dot"), "--loss", "B"]) == 0
        assert "[ 2  4 ]" in (tmp_path / "b.dot").read_text()  # dB/dw = 2w

    def test_ambiguous_loss(self, tmp_path):
        g = dp.Graph()
        w = g.param("w", [1.0, 2.0])
        g.op("sum", w, name="A")
        g.op("sum", w * w, name="B")
        path = dp.save(g, tmp_path / "two.json")
        one_line_error(dagprop_command("render", str(path), "-o", str(tmp_path / "x.dot")),
                       "cannot tell which node is the loss (outputs: A, B); pass --loss NAME")

    def test_unknown_loss(self, saved_graph, tmp_path):
        one_line_error(dagprop_command("render", str(saved_graph), "-o", str(tmp_path / "x.dot"), "--loss", "Lx"),
                       "no node named 'Lx'")

    def test_missing_source(self, tmp_path):
        one_line_error(dagprop_command("render", str(tmp_path / "none.json"), "-o", "x.svg"), "does not exist")

    def test_wrong_kind_of_source(self, tmp_path):
        path = tmp_path / "graph.txt"
        path.write_text("hello")
        one_line_error(dagprop_command("render", str(path), "-o", "x.svg"), "SOURCE must be a saved graph")

    def test_python_without_graph(self, tmp_path):
        path = tmp_path / "empty.py"
        path.write_text("graph = 3\n")
        one_line_error(dagprop_command("render", str(path), "-o", "x.svg"), "must define `graph`, a dagprop.Graph",
                       "a int")

    def test_python_that_raises(self, tmp_path):
        path = tmp_path / "broken.py"
        path.write_text("import dagprop as dp\ngraph = dp.Graph()\nraise ValueError('bad model')\n")
        one_line_error(dagprop_command("render", str(path), "-o", "x.svg"), "ValueError: bad model")

    def test_malformed_json(self, tmp_path):
        path = tmp_path / "bad.json"
        path.write_text("{")
        one_line_error(dagprop_command("render", str(path), "-o", "x.svg"), "is not valid JSON")

    def test_unknown_op_in_file(self, saved_graph, tmp_path):
        text = saved_graph.read_text().replace('"softmax"', '"softmax_v2"')
        saved_graph.write_text(text)
        one_line_error(dagprop_command("render", str(saved_graph), "-o", "x.svg"),
                       "uses op 'softmax_v2', which no installed plugin provides")

    def test_bad_output_suffix(self, saved_graph, tmp_path):
        one_line_error(dagprop_command("render", str(saved_graph), "-o", str(tmp_path / "x.bmpx")),
                       "cannot tell the format")

    def test_debug_shows_the_traceback(self, tmp_path):
        result = dagprop_command("--debug", "render", str(tmp_path / "none.json"), "-o", "x.svg")
        assert result.returncode == 1 and "Traceback" in result.stderr and "CommandError" in result.stderr
        result = dagprop_command("render", str(tmp_path / "none.json"), "-o", "x.svg", "--debug")
        assert "Traceback" in result.stderr

    def test_missing_dot(self, saved_graph, tmp_path):
        env = dict(os.environ, PATH=str(tmp_path))
        result = dagprop_command("render", str(saved_graph), "-o", str(tmp_path / "x.svg"), env=env)
        one_line_error(result, "Graphviz's dot program is not installed", "apt-get install graphviz",
                       "brew install graphviz", "conda install graphviz")
        result = dagprop_command("render", str(saved_graph), "-o", str(tmp_path / "x.dot"), env=env)
        assert result.returncode == 0 and (tmp_path / "x.dot").exists()


class TestFindLoss:
    def test_single_scalar_output(self):
        g = dp.Graph()
        g.op("sum", g.param("w", [1.0]), name="L")
        assert find_loss(g).name == "L"

    def test_none_when_ambiguous_or_absent(self):
        g = dp.Graph()
        g.op("mul", g.param("w", [1.0, 2.0]), 2.0, name="y")
        assert find_loss(g) is None


class TestCheckOp:
    def test_passes(self, capsys):
        assert main(["check-op", "softmax"]) == 0
        out = capsys.readouterr().out
        assert "checking softmax (plugin dagprop_plugins.activations)" in out
        assert "check_op('softmax') passed" in out and "vjp vs decomposition" in out

    @pytest.mark.parametrize("name", dp.Graph().registry.names())
    def test_sensible_shapes_for_every_registered_op(self, name, capsys):
        assert main(["check-op", name]) == 0, capsys.readouterr().err

    def test_shapes_and_attributes(self, capsys):
        assert main(["check-op", "sum", "--shapes", "3,4", "--attr", "axis=1", "--attr", "keepdims=True"]) == 0
        assert "inputs (3, 4), axis=1, keepdims=True" in capsys.readouterr().out

    def test_scalar_shape(self, capsys):
        assert main(["check-op", "exp", "--shapes", "scalar"]) == 0

    def test_unknown_op(self):
        one_line_error(dagprop_command("check-op", "softmx"), "no registered plugin provides an op named 'softmx'",
                       "did you mean 'softmax'")

    @pytest.mark.parametrize("args, message", [(["--shapes", "3,a"], "not a list of integers"),
                                               (["--attr", "axis"], "must look like KEY=VALUE"),
                                               (["--shapes", "3,4", "5,6"], "op 'exp' takes 1 input (x); got 2 shapes")])
    def test_bad_arguments(self, args, message):
        one_line_error(dagprop_command("check-op", "exp", *args), message)

    def test_wrong_op_fails(self, capsys):
        class Wrong:
            @dp.hookimpl
            def dagprop_ops(self):
                # the vjp forgets the factor 3 of d(3x)/dx
                return [dp.Op("triple_wrong", forward=lambda x: 3 * x, vjp=lambda g, x, *, out: (g,))]

        plugin = Wrong()
        dp.register_plugin(plugin)
        try:
            assert main(["check-op", "triple_wrong"]) == 1
        finally:
            dp.unregister_plugin(plugin)
        err = capsys.readouterr().err
        assert "dagprop check-op: error:" in err and "vjp disagrees with finite differences" in err
        assert len(err.strip().splitlines()) == 1


# -- the demo -----------------------------------------------------------------------------------------


def demo_by_hand() -> dict[str, np.ndarray]:
    """The demo's attention step in plain numpy, derived independently of the engine."""
    X = demo.TOKENS
    q = demo.Q_WEIGHTS @ X[:, :1]
    k = demo.K_WEIGHTS @ X
    v = demo.V_WEIGHTS @ X[:3] + demo.V_BIAS
    e = demo.SCORE_SCALE * (q.T @ k)
    alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    z = v @ alpha.T
    loss = 0.5 * np.sum((z - demo.TARGET) ** 2)
    dz = z - demo.TARGET
    dv = dz @ alpha
    dalpha = (v.T @ dz).T
    de = alpha * (dalpha - (dalpha * alpha).sum())
    draw = demo.SCORE_SCALE * de  # through e = scale * (q^T k)
    dq = k @ draw.T
    dk = q @ draw
    return {"e": e, "alpha": alpha, "z": z, "L": loss, "V": dv @ X[:3].T, "b": dv.sum(axis=1, keepdims=True),
            "Q": dq @ X[:, :1].T, "K": dk @ X.T}


class TestDemo:
    def test_numbers_match_an_independent_computation(self):
        g, loss = demo.build_attention()
        g.forward()
        g.backward(loss)
        expected = demo_by_hand()
        for name in ("e", "alpha", "z", "L"):
            np.testing.assert_allclose(g[name].value, expected[name], rtol=1e-12)
        for name in ("V", "b", "Q", "K"):
            np.testing.assert_allclose(g[name].grad, expected[name], rtol=1e-9, atol=1e-14)

    def test_gradients_agree_with_finite_differences(self):
        g, loss = demo.build_attention()
        g.forward()
        # the loss is ~185 while some gradients are ~1e-4: differences need an absolute tolerance
        dp.gradcheck(g, loss, eps=1e-5, atol=1e-7)

    def test_notes_data(self):
        # the Query section's input is the first token of the Keys section's input
        np.testing.assert_array_equal(demo.TOKENS[:, 0], [0.5, 0.5, 0.3, 1.0])
        assert demo.Q_WEIGHTS.shape == demo.K_WEIGHTS.shape == (3, 4)

    @needs_dot
    def test_command_writes_everything(self, tmp_path):
        out = tmp_path / "demo"
        result = dagprop_command("demo", "-o", str(out))
        assert result.returncode == 0, result.stderr
        names = sorted(p.name for p in out.iterdir())
        assert names == ["attention.json", "attention.png", "attention.svg", "attention_softmax_circuit.png",
                         "attention_softmax_circuit.svg"]
        for name in names:
            assert name in result.stdout
        expected = demo_by_hand()
        assert f"{float(expected['L']):.6g}" in result.stdout
        assert "dL/dQ" in result.stdout and "dL/dK" in result.stdout and "dL/dV" in result.stdout
        assert (out / "attention.png").read_bytes().startswith(b"\x89PNG")
        circuit = ET.parse(out / "attention_softmax_circuit.svg").getroot()
        shown = ["".join(t.itertext()) for t in circuit.iter("{http://www.w3.org/2000/svg}text")]
        assert "exp_1" in shown and "via sum_1" in shown and "via alpha" in shown
        loaded = dp.load(out / "attention.json")
        np.testing.assert_allclose(loaded["Q"].grad, expected["Q"], rtol=1e-9, atol=1e-14)

    def test_default_directory(self, tmp_path):
        env = dict(os.environ, PATH=str(tmp_path))  # no dot: the JSON is still written first
        result = dagprop_command("demo", env=env, cwd=tmp_path)
        one_line_error(result, "apt-get install graphviz")
        assert (tmp_path / "dagprop-demo" / "attention.json").exists()

    def test_dot_format_needs_no_graphviz(self, tmp_path):
        written = demo.run(tmp_path, formats=("dot",), echo=lambda line: None)
        assert [p.name for p in written] == ["attention.json", "attention.dot", "attention_softmax_circuit.dot"]


def test_a_reader_closing_the_pipe_early_is_not_an_error(tmp_path):
    # like `dagprop demo | head -n 1`, made deterministic: the reader is gone before anything is written
    process = subprocess.Popen([sys.executable, "-m", "dagprop", "demo", "-o", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "error" not in stderr


class TestCode:
    def test_prints_source_that_runs_and_agrees_with_the_engine(self, python_source):
        result = dagprop_command("code", str(python_source))
        assert result.returncode == 0, result.stderr
        assert "def forward(ops, v):" in result.stdout and "def backward(ops, v, seed=1.0):" in result.stdout
        namespace: dict = {}
        exec(result.stdout, namespace)
        g = dp.Graph()
        w = g.param("w", [[0.5, -1.0], [2.0, 0.25]])
        x = g.input("x", [[1.0], [2.0]])
        h = g.op("sigmoid", g.op("matmul", w, x), name="h")
        L = g.op("sum", h, name="L")
        values = namespace["forward"](g.registry, {"w": w.value, "x": x.value})
        grads = namespace["backward"](g.registry, values)
        s = 1 / (1 + np.exp(-(w.value @ x.value)))
        np.testing.assert_allclose(grads["w"], (s * (1 - s)) @ x.value.T)  # closed form of d sum(sigmoid(Wx)) / dW

    def test_forward_only_and_the_loss_it_cannot_guess(self, tmp_path):
        path = tmp_path / "two.py"
        path.write_text("import dagprop as dp\ngraph = dp.Graph()\nw = graph.param('w', [1.0, 2.0])\n"
                        "graph.op('sum', w, name='a'); graph.op('mean', w, name='b')\n")
        one_line_error(dagprop_command("code", str(path)), "cannot tell which node is the loss", "--forward-only")
        result = dagprop_command("code", str(path), "--forward-only")
        assert result.returncode == 0 and "def backward" not in result.stdout
        result = dagprop_command("code", str(path), "--loss", "b")
        assert result.returncode == 0 and "d_w = np.broadcast_to(d_b, w.shape) / 2" in result.stdout


# -- untrusted sources ------------------------------------------------------------------------------


class TestSources:
    @pytest.mark.parametrize("name", ["render", "animate", "code"])
    def test_help_says_a_python_source_runs_and_a_json_one_never_does(self, name, capsys):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "a Python file (.py)" in text and "which is RUN as a script with your permissions" in text
        assert "a saved graph (.json), which is only parsed, never executed" in text
        assert "Careful: a .py SOURCE is executed" in text and "a .json SOURCE is never executed" in text
        assert "--max-elements N" in text and "default 1,000,000" in text

    def test_a_small_file_asking_for_a_huge_node_is_refused_and_the_flag_raises_the_limit(self, tmp_path, capsys):
        g = dp.Graph()
        g.op("sum", g.op("broadcast_to", g.param("x", 1.0), shape=(3, 3), name="big"), name="L")
        path = dp.save(g, tmp_path / "g.json", loss="L")
        path.write_text(path.read_text().replace('{"$tuple": [3, 3]}', '{"$tuple": [16000, 16000]}'))
        assert "16000" in path.read_text() and path.stat().st_size < 3000
        for command in (["render", str(path), "-o", str(tmp_path / "g.dot")], ["code", str(path)]):
            assert main(command) == 1
            error = capsys.readouterr().err
            assert "node 'big' brings the graph's nodes to 256,000,001 elements (broadcast_to of its inputs has " \
                "shape (16000, 16000), 256,000,000 elements), more than max_elements=1,000,000" in error
            assert "--max-elements" in error
        assert main(["code", str(path), "--max-elements", "300_000_000", "--forward-only"]) == 0
        assert "broadcast_to" in capsys.readouterr().out
        assert main(["render", str(path), "-o", str(tmp_path / "g.dot"), "--max-elements", "7"]) == 1
        assert "more than max_elements=7" in capsys.readouterr().err

    def test_bad_max_elements_is_a_usage_error(self, saved_graph):
        result = dagprop_command("code", str(saved_graph), "--max-elements", "0")
        assert result.returncode == 2 and "'0' is not positive" in result.stderr

    def test_a_fifo_source_is_refused(self, tmp_path):
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        for name in ("pipe.json", "pipe.py"):
            os.mkfifo(tmp_path / name)
            result = dagprop_command("code", str(tmp_path / name))  # would block forever if it opened the FIFO
            one_line_error(result, "not a regular file")


@needs_dot
def test_animate_takes_max_nodes(saved_graph, tmp_path):
    result = dagprop_command("animate", str(saved_graph), "-o", str(tmp_path / "run.html"), "--max-nodes", "2")
    assert result.returncode == 0 and (tmp_path / "run.html").exists()
    assert "LargeGraphWarning" in result.stderr and "more than max_nodes=2" in result.stderr
    result = dagprop_command("animate", str(saved_graph), "-o", str(tmp_path / "run.html"))
    assert result.returncode == 0 and "LargeGraphWarning" not in result.stderr


def test_animate_with_expand_takes_the_loss_the_file_defines(tmp_path):
    """The documented form: a file defining `graph` and `loss`, played with softmax opened (issue 11, item 4)."""
    path = tmp_path / "attention.py"
    path.write_text(textwrap.dedent("""
        import dagprop as dp
        graph = dp.Graph()
        e = graph.param("e", [[2.0, 1.0]])
        loss = graph.op("sum", e.softmax() * graph.const([[1.0, -2.0]]))
    """))
    out = tmp_path / "run.html"
    result = dagprop_command("animate", str(path), "-o", str(out), "--expand", "softmax")
    assert result.returncode == 0, result.stderr
    assert "softmax_1.exp_1" in out.read_text() or "exp_1" in out.read_text()


CUBE_PLUGIN = """
import dagprop as dp


def cube_forward(x):
    return x ** 3


def cube_derivative(x, *, out):
    return 3 * x ** 2


@dp.hookimpl
def dagprop_ops():
    return [dp.Op.elementwise("cube_cli", cube_forward, cube_derivative,
                              example=lambda rng: (((3, 2),), {}))]


class CubePlugin:
    dagprop_ops = staticmethod(dagprop_ops)
"""


class TestPluginOption:
    """--plugin FILE.py and --plugin MODULE:ATTR for check-op, render, animate and code (issue 11, item 15)."""

    @pytest.fixture
    def plugin_file(self, tmp_path):
        path = tmp_path / "cube_plugin.py"
        path.write_text(CUBE_PLUGIN)
        return path

    @pytest.fixture
    def model(self, tmp_path):
        path = tmp_path / "model.py"
        path.write_text("import dagprop as dp\ngraph = dp.Graph()\n"
                        "loss = graph.op('sum', graph.op('cube_cli', graph.param('w', [1.0, -2.0])))\n")
        return path

    def test_check_op_checks_an_op_of_a_file_plugin(self, plugin_file):
        assert dagprop_command("check-op", "cube_cli").returncode == 1  # not installed
        result = dagprop_command("check-op", "cube_cli", "--plugin", str(plugin_file))
        assert result.returncode == 0, result.stderr
        assert "cube_cli" in result.stdout

    def test_render_animate_and_code_use_a_module_plugin(self, plugin_file, model, tmp_path):
        env = {**os.environ, "PYTHONPATH": f"{plugin_file.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        spec = "cube_plugin:CubePlugin"
        rendered = dagprop_command("render", str(model), "-o", str(tmp_path / "m.dot"), "--plugin", spec, env=env)
        assert rendered.returncode == 0, rendered.stderr
        assert "cube_cli" in (tmp_path / "m.dot").read_text()
        played = dagprop_command("animate", str(model), "-o", str(tmp_path / "m.html"), "--plugin", spec, env=env)
        assert played.returncode == 0, played.stderr
        code = dagprop_command("code", str(model), "--plugin", str(plugin_file))
        assert code.returncode == 0 and "def backward" in code.stdout, code.stderr

    def test_bad_plugin_specs_are_one_line_errors(self, tmp_path):
        one_line_error(dagprop_command("check-op", "exp", "--plugin", "no_such_module:x"),
                       "--plugin no_such_module:x: no module named 'no_such_module'")
        one_line_error(dagprop_command("check-op", "exp", "--plugin", "json:"),
                       "--plugin takes FILE.py, MODULE or MODULE:ATTR, got 'json:'")
        one_line_error(dagprop_command("check-op", "exp", "--plugin", "json:dumps"),
                       "plugin 'dumps' implements no dagprop hook")
        one_line_error(dagprop_command("check-op", "exp", "--plugin", str(tmp_path / "missing.py")),
                       "no such file")

    def test_main_in_process_leaves_no_plugin_registered(self, plugin_file, capsys):
        assert main(["check-op", "cube_cli", "--plugin", str(plugin_file)]) == 0
        assert "cube_cli" not in dp.Graph().registry


# -- ONNX models as SOURCE (issue 12) -------------------------------------------------------------


def write_onnx_model(path: Path) -> Path:
    """x (batch, 3) -> Gemm -> Tanh -> Gemm -> Softmax = p, and ReduceSum of the Tanh = total (a scalar)."""
    import onnx
    from onnx import TensorProto, helper as oh, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("W1", (4, 3)), ("b1", (4,)), ("W2", (4, 2)))]
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h"], transB=1), oh.make_node("Tanh", ["h"], ["t"]),
             oh.make_node("Gemm", ["t", "W2"], ["z"]), oh.make_node("Softmax", ["z"], ["p"]),
             oh.make_node("ReduceSum", ["t"], ["total"], keepdims=0)]
    graph = oh.make_graph(nodes, "cli", [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
                          [oh.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 2]),
                           oh.make_tensor_value_info("total", TensorProto.FLOAT, [])], initializer=inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


@pytest.fixture
def onnx_model(tmp_path):
    return write_onnx_model(tmp_path / "model.onnx")


class TestOnnxSource:
    def test_render_adds_the_sum_of_the_outputs_as_loss_and_says_so(self, onnx_model, tmp_path, capsys):
        out = tmp_path / "model.dot"
        assert main(["render", str(onnx_model), "-o", str(out)]) == 0
        captured = capsys.readouterr()
        assert "loss loss = " in captured.out
        assert "no values for its inputs" in captured.err and "x (1, 3)" in captured.err and "--seed 0" in captured.err
        dot = out.read_text()
        assert "model.onnx, loss: sum of outputs p, total" in dot
        assert "W1" in dot and "softmax" in dot

    def test_render_with_a_named_loss_adds_none(self, onnx_model, tmp_path, capsys):
        out = tmp_path / "model.dot"
        assert main(["render", str(onnx_model), "-o", str(out), "--loss", "total"]) == 0
        assert "loss total = " in capsys.readouterr().out
        assert "sum of outputs" not in out.read_text()

    def test_the_seed_sets_the_example_inputs(self, onnx_model, tmp_path, capsys):
        losses = []
        for seed in ("0", "0", "1"):
            assert main(["render", str(onnx_model), "-o", str(tmp_path / "m.dot"), "--seed", seed]) == 0
            losses.append(capsys.readouterr().out.split("loss loss = ")[1])
        assert losses[0] == losses[1] != losses[2]

    def test_render_values_only(self, onnx_model, tmp_path, capsys):
        out = tmp_path / "model.dot"
        assert main(["render", str(onnx_model), "-o", str(out), "--no-grad"]) == 0
        assert "sum of outputs" not in out.read_text() and "loss" not in capsys.readouterr().out

    @needs_dot
    def test_animate(self, onnx_model, tmp_path, capsys):
        out = tmp_path / "run.html"
        assert main(["animate", str(onnx_model), "-o", str(out)]) == 0
        assert "through loss" in capsys.readouterr().out
        assert "sum of outputs p, total" in out.read_text()

    def test_code(self, onnx_model, capsys):
        assert main(["code", str(onnx_model)]) == 0
        captured = capsys.readouterr()
        assert "def backward" in captured.out and "W1" in captured.out
        assert "loss: sum of outputs p, total" in captured.err
        assert main(["code", str(onnx_model), "--loss", "total"]) == 0
        assert "sum of outputs" not in capsys.readouterr().err

    def test_load_source(self, onnx_model, capsys):
        from dagprop.cli import load_source

        graph, loss = load_source(onnx_model)
        assert loss.name == "loss" and loss.op == "add" and {n.name for n in graph.params} == {"W1", "b1", "W2"}
        assert graph["x"].value.shape == (1, 3)  # the symbolic batch axis is 1

    def test_help_says_what_an_onnx_source_gets(self):
        for command in ("render", "animate", "code"):
            result = dagprop_command(command, "--help")
            assert result.returncode == 0
            text = " ".join(result.stdout.split())
            assert "ONNX model (.onnx)" in text and "seeded random normal values" in text, command
            assert "sum of its outputs" in text and "--seed" in text, command

    def test_malformed_files_are_one_line_errors(self, tmp_path):
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"\x08\x07garbage that is not a model")
        one_line_error(dagprop_command("render", str(bad), "-o", str(tmp_path / "bad.dot")),
                       "dagprop render: error:", "bad.onnx")
        one_line_error(dagprop_command("code", str(tmp_path / "missing.onnx")), "missing.onnx' does not exist")

    def test_an_unknown_loss_name(self, onnx_model, tmp_path, capsys):
        assert main(["render", str(onnx_model), "-o", str(tmp_path / "m.dot"), "--loss", "nope"]) == 1
        assert "no node named 'nope'" in capsys.readouterr().err
