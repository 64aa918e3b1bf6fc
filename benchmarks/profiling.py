"""--profile: cProfile dagprop's step on the named workloads and print where the time goes."""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path

from environment import REPO
from harness import Case, Context, format_seconds
from workloads import WORKLOADS


def profile(names: list[str], ctx: Context, seconds: float = 3.0, top: int = 18) -> None:
    """cProfile dagprop's step on each case of the named workloads; print where the time goes.

    For each case: the share of the time spent in the engine (dagprop/), in the ops' rules
    (plugins/), in NumPy's Python layer and in C functions (ufuncs, builtins), then the
    functions with the most time of their own.
    """
    for name in names:
        for case in WORKLOADS[name](ctx):
            if not isinstance(case, Case):
                continue
            system = case.baseline if case.baseline in case.factories else "dagprop"
            factory = case.factories.get(system)
            if not callable(factory):
                print(f"\n{name} / {case.name}: no dagprop subject ({factory})")
                continue
            subject = factory()
            first = cProfile.Profile()
            started = time.perf_counter()
            first.enable()
            subject.step()  # the first call plans the run: profiled apart from the steady steps
            first.disable()
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            subject.step()
            one = time.perf_counter() - started
            calls = max(1, int(seconds / max(one, 1e-9)))
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            for _ in range(calls):
                subject.step()
            profiler.disable()
            elapsed = time.perf_counter() - started
            stats = pstats.Stats(profiler)
            per = f", {format_seconds(one / case.divisor)} per node" if case.divisor > 1 else ""
            print(f"\n=== {name} / {case.name} / {system}: {calls} steps; {format_seconds(one)} per step "
                  f"unprofiled{per}, {format_seconds(elapsed / calls)} profiled")
            print(profile_summary(stats, calls, top))
            print(f"  first call: {format_seconds(first_seconds)} (profiled), top functions by own time:")
            print(profile_summary(pstats.Stats(first), 1, 6, layers=False))


def profile_summary(stats: pstats.Stats, steps: int, top: int, *, layers: bool = True) -> str:
    entries = stats.stats  # (file, line, function) -> (primitive calls, calls, own time, cumulative, callers)
    total = sum(own for _, _, own, _, _ in entries.values()) or 1e-12
    groups: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in entries.items():
        groups[_profile_group(filename)] = groups.get(_profile_group(filename), 0.0) + own
    lines = ["  own time by layer: " + ", ".join(f"{k} {100 * v / total:.0f}%"
                                                 for k, v in sorted(groups.items(), key=lambda kv: -kv[1])),
             "  (cProfile sees Python functions and builtins only: a ufunc or an operator such as @ or + on"
             " arrays counts in the Python function that calls it)"] if layers else []
    lines.append(f"  {'own %':>6} {'per step':>10} {'calls/step':>10}  function")
    ranked = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, function), (_, calls, own, _, _) in ranked:
        where = function if filename == "~" else f"{_short_path(filename)}:{line}({function})"
        lines.append(f"  {100 * own / total:5.1f}% {format_seconds(own / steps):>10} {calls / steps:10.1f}  {where}")
    return "\n".join(lines)


def _profile_group(filename: str) -> str:
    path = filename.replace("\\", "/")
    if filename == "~":
        return "C functions (ufuncs, builtins)"
    if "/dagprop/" in path:
        return "dagprop engine"
    if "/plugins/" in path or "dagprop_plugins" in path:
        return "op rules (plugins/)"
    if "/numpy/" in path:
        return "numpy Python layer"
    if path.startswith(str(REPO / "benchmarks").replace("\\", "/") + "/"):
        return "benchmark step"
    return "other Python (networkx, stdlib)"


def _short_path(filename: str) -> str:
    """A file named from the repository or site-packages, else by its own name (the standard library)."""
    path = filename.replace("\\", "/")
    root = str(REPO).replace("\\", "/") + "/"
    if path.startswith(root):
        return path[len(root):]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    return Path(path).name
