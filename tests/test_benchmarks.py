"""Smoke tests of benchmarks/run.py: it runs, prints its table and targets, and writes
well-formed JSON and markdown.

No timing is asserted (the machine is shared and noisy); only the structure of what the
script reports, and that every system it timed computed the same gradients as the
hand-written NumPy floor. Peers that are not installed (CI installs no bench extras) must
appear as skipped rows with a note.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "run.py"
STATUSES = {"ok", "skipped", "failed", "wrong"}
ROW_KEYS = {"workload", "case", "system", "status", "metric", "value", "per", "samples", "ratio_dagprop",
            "ratio_numpy", "spread", "note"}


def run_script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    result = run_script("--tiny", "--only", "seed_v,deep_chain,memory", "--json", str(out / "run.json"),
                        "--results", str(out / "RESULTS.md"))
    assert result.returncode == 0, result.stderr
    return {"stdout": result.stdout, "stderr": result.stderr, "json": json.loads((out / "run.json").read_text()),
            "markdown": (out / "RESULTS.md").read_text()}


class TestTinyRun:
    def test_prints_the_table_header_and_a_row_per_system(self, tiny_run):
        stdout = tiny_run["stdout"]
        for column in ("workload", "system", "median", "x dagprop", "x numpy", "notes"):
            assert column in stdout
        table = [line for line in stdout.splitlines() if line.startswith("seed_v")]
        for system in ("dagprop", "numpy (by hand)", "torch eager", "autograd", "micrograd", "jax.jit"):
            assert any(system in line for line in table), f"no seed_v row for {system}"

    def test_prints_a_verdict_per_target_of_the_workloads_run(self, tiny_run):
        lines = tiny_run["stdout"].splitlines()
        start = lines.index("targets:")
        section = lines[start + 1:lines.index("", start)]
        targets = tiny_run["json"]["targets"]
        assert len(section) == len(targets)
        for line, target in zip(section, targets):
            assert target["name"] in line
            assert line.split()[0] == {True: "met", False: "MISSED", None: "not"}[target["met"]]
        verdicts = {t["name"]: t["met"] for t in targets}
        for name in ("seed_v", "deep_chain", "memory"):
            assert verdicts[name] is not None, name
        assert verdicts["mlp_large"] is None  # not run: said so, neither met nor missed

    def test_json_rows_are_well_formed(self, tiny_run):
        rows = tiny_run["json"]["rows"]
        assert rows
        for row in rows:
            assert ROW_KEYS <= set(row), set(ROW_KEYS) - set(row)
            assert row["status"] in STATUSES
            if row["status"] == "ok":
                assert row["value"] > 0
            else:
                assert row["value"] is None and row["note"], row

    def test_no_system_computed_different_gradients(self, tiny_run):
        wrong = [(r["workload"], r["system"], r["note"]) for r in tiny_run["json"]["rows"] if r["status"] == "wrong"]
        assert not wrong

    def test_dagprop_and_the_floor_run_every_time_workload(self, tiny_run):
        rows = tiny_run["json"]["rows"]
        for workload in ("seed_v", "deep_chain"):
            for system in ("dagprop", "numpy"):
                found = [r for r in rows if r["workload"] == workload and r["system"] == system]
                assert found and all(r["status"] == "ok" for r in found), (workload, system)

    def test_ratios_are_relative_to_dagprop_and_the_floor_of_the_same_case(self, tiny_run):
        rows = [r for r in tiny_run["json"]["rows"] if r["metric"] == "time" and r["status"] == "ok"]
        for row in rows:
            if row["system"] == "dagprop":
                assert row["ratio_dagprop"] == pytest.approx(1.0)
            if row["system"] == "numpy":
                assert row["ratio_numpy"] == pytest.approx(1.0)
            peers = {r["system"]: r["value"] for r in rows if (r["workload"], r["case"]) == (row["workload"], row["case"])}
            assert row["ratio_numpy"] == pytest.approx(row["value"] / peers["numpy"])

    def test_deep_chain_reports_time_per_node(self, tiny_run):
        rows = [r for r in tiny_run["json"]["rows"] if r["workload"] == "deep_chain" and r["status"] == "ok"]
        assert rows and all(r["per"] == "node" for r in rows)

    def test_missing_or_failing_peers_are_rows_with_a_note(self, tiny_run):
        rows = tiny_run["json"]["rows"]
        missing = tiny_run["json"]["meta"]["missing_peers"]
        for peer, reason in missing.items():
            peer_rows = [r for r in rows if r["system"] == peer]
            assert peer_rows and all(r["status"] == "skipped" and r["note"] == reason for r in peer_rows)
        for row in rows:
            if row["status"] == "failed":
                assert row["note"].startswith("fails:")

    def test_memory_rows_compare_retaining_and_freeing(self, tiny_run):
        rows = {(r["case"], r["system"]): r for r in tiny_run["json"]["rows"] if r["workload"] == "memory"}
        cases = {case for case, _ in rows}
        assert cases
        for case in cases:
            kept, freed = rows[case, "dagprop retain=True"], rows[case, "dagprop retain=False"]
            assert kept["metric"] == freed["metric"] == "memory"
            assert kept["value"] > freed["value"] > 0

    def test_records_versions_threads_and_date(self, tiny_run):
        meta = tiny_run["json"]["meta"]
        assert {"date", "versions", "threads", "machine", "load_average"} <= set(meta)
        assert meta["threads"]["single_threaded"] is True
        assert meta["threads"]["env"]["OPENBLAS_NUM_THREADS"] == "1"
        assert meta["versions"]["numpy"] and meta["versions"]["dagprop"]
        for target in tiny_run["json"]["targets"]:
            assert {"name", "wanted", "measured", "met"} <= set(target)

    def test_markdown_holds_the_settings_targets_and_table(self, tiny_run):
        markdown = tiny_run["markdown"]
        for text in ("# dagprop benchmark results", "- date:", "- versions:", "- threads:", "## Targets",
                     "## Multiples of the NumPy floor", "## Table", "| workload | case | system |"):
            assert text in markdown
        assert "| seed_v |" in markdown


def test_an_unknown_workload_is_a_usage_error():
    result = run_script("--only", "no_such_workload", timeout=120)
    assert result.returncode == 2
    assert "unknown workload no_such_workload" in result.stderr


def test_systems_can_be_limited_and_results_are_not_written_by_partial_runs(tmp_path):
    out = tmp_path / "run.json"
    before = (REPO / "benchmarks" / "RESULTS.md").stat().st_mtime if (REPO / "benchmarks" / "RESULTS.md").exists() \
        else None
    result = run_script("--tiny", "--only", "wide_dag", "--systems", "dagprop,numpy", "--json", str(out))
    assert result.returncode == 0, result.stderr
    systems = {r["system"] for r in json.loads(out.read_text())["rows"]}
    assert systems == {"dagprop", "numpy"}
    after = (REPO / "benchmarks" / "RESULTS.md").stat().st_mtime if (REPO / "benchmarks" / "RESULTS.md").exists() \
        else None
    assert before == after


def test_the_dask_section_reports_equality_speedups_and_out_of_core_memory(tmp_path):
    out = tmp_path / "run.json"
    result = run_script("--tiny", "--only", "dask", "--json", str(out), "--no-results")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert not [r for r in rows if r["status"] in ("failed", "wrong")], [r["note"] for r in rows]
    equality = {r["system"]: r for r in rows if r["case"].startswith("equality")}
    assert set(equality) == {"dask threaded", "dask distributed"}
    assert all(r["value"] == 3 for r in equality.values())  # the tiny run's 3 graphs, every one bit for bit
    for case in ("overhead", "wide", "sweep"):
        systems = {r["system"] for r in rows if r["case"].startswith(case)}
        assert "dagprop" in systems and systems & {"dask threaded", "dask distributed"}, case
    (memory,) = [r for r in rows if r["case"].startswith("out of core")]
    assert memory["metric"] == "memory" and 0 < memory["value"] < 0.8e9
    names = {t["name"] for t in report["targets"]}
    assert {"dask equality, threaded", "dask wide graph, threaded", "dask sweep, 2 workers"} <= names
