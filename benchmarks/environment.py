"""The environment of a run: versions, threads, the machine and the checkout; the default-threads rerun."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import dagprop as dp
from harness import Peers
from threads import ORIGINAL_THREAD_ENV, SINGLE_THREADED, THREAD_VARIABLES

RUN_SCRIPT = Path(__file__).resolve().with_name("run.py")
REPO = RUN_SCRIPT.parents[1]


def environment(peers: Peers, argv: list[str]) -> dict[str, Any]:
    """Versions, thread settings, the machine and the checkout, for RESULTS.md and the JSON."""
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "dagprop": getattr(dp, "__version__", "?"), "networkx": _version("networkx")}
    versions.update(peers.versions)
    threads: dict[str, Any] = {
        "single_threaded": SINGLE_THREADED,
        "env": {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "XLA_FLAGS")},
        "cpu_count": os.cpu_count(),
        "default_env": ORIGINAL_THREAD_ENV,
    }
    if "torch" in peers.versions:
        threads["torch_threads"] = peers.get("torch").get_num_threads()
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        versions["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/run.py " + " ".join(argv),
        "machine": {"platform": platform.platform(), "cpu": _cpu_model(), "cores": os.cpu_count()},
        "checkout": _git_revision(),
        "versions": versions,
        "threads": threads,
        "missing_peers": dict(peers.missing),
    }


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def load_average() -> float | None:
    """The 1-minute load average: how much else was running (the machine is shared)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head}{' with uncommitted changes' if dirty else ''}" if head else "?"


def thread_summary(env: dict[str, Any], default_run: dict[str, Any] | None) -> str:
    t = env["threads"]
    if t["single_threaded"]:
        text = ("single-threaded: " + ", ".join(f"{k}=1" for k in THREAD_VARIABLES[:3])
                + (", torch.set_num_threads(1)" if "torch_threads" in t else "") + ", XLA without Eigen threads")
    else:
        text = "default threads"
    text += f"; this machine has {t['cpu_count']} cores"
    if default_run is not None:
        threads = default_run["meta"]["threads"]
        torch_default = threads.get("torch_threads")
        text += (f"; by default OpenBLAS uses {t['cpu_count']} threads (no *_NUM_THREADS set)"
                 + (f" and torch {torch_default}" if torch_default else ""))
    return text


def run_default_threads(argv_only: list[str], tmp: Path) -> dict[str, Any] | None:
    """Repeat some workloads in a child process with the machine's default thread settings."""
    out = tmp / "default_threads.json"
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARIABLES, "XLA_FLAGS")}
    env.update({k: v for k, v in ORIGINAL_THREAD_ENV.items() if v is not None})
    command = [sys.executable, str(RUN_SCRIPT), "--default-threads", "--no-results",
               "--only", ",".join(argv_only), "--json", str(out), "--quiet"]
    try:
        subprocess.run(command, env=env, check=True, timeout=900)
        return json.loads(out.read_text())
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        print(f"the default-threads run failed: {exc}", file=sys.stderr)
        return None
