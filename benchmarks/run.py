"""dagprop's benchmarks against its peers: HIPS autograd, PyTorch (CPU, eager), JAX, micrograd,
and hand-written NumPy as the floor.

Usage::

    python benchmarks/run.py                  # everything; writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick          # smaller sizes and fewer repeats, under a minute
    python benchmarks/run.py --only seed_v,deep_chain --json out.json
    python benchmarks/run.py --only mlp_small --systems dagprop,numpy,torch
    python benchmarks/run.py --profile seed_v --quick   # where dagprop's time goes (cProfile)

Every workload is run by every system that can express it, written the way that system's
users write it, in the same process and the same run. Each system's gradients are checked
against the hand-written NumPy floor before anything is timed, so a wrong computation is
never timed. Times are medians over several samples taken round-robin across the systems
after a warm-up; ratios (to dagprop and to the NumPy floor) come from the same run, because
the machine is shared and noisy and only the ratios mean much. BLAS runs single-threaded for
the table; a full run also repeats mlp_large with the default thread count.

See benchmarks/README.md for what each workload measures and how to read the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

# run as a script from any directory: the modules it uses sit beside it
sys.path.insert(0, str(Path(__file__).resolve().parent))

# first: it sets the BLAS thread variables, which numpy, torch and jax read when imported
from threads import SINGLE_THREADED  # noqa: E402

from environment import environment, load_average, run_default_threads, thread_summary  # noqa: E402
from harness import SYSTEM_LABELS, SYSTEMS, Context, Peers, Row, Settings, settle_heap  # noqa: E402
from profiling import profile  # noqa: E402
from report import (README_PATH, RESULTS_PATH, evaluate_targets, format_value, reference_lines,  # noqa: E402
                    refresh_readme, target_lines, text_table, write_results)
from workloads import WORKLOADS, run_workloads  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer samples: under a minute")
    parser.add_argument("--tiny", action="store_true",
                        help="smallest sizes, one sample: for the test suite (the numbers mean nothing)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"run these workloads only: {', '.join(WORKLOADS)}")
    parser.add_argument("--systems", metavar="NAME[,NAME]",
                        help=f"run these systems only (default all): {', '.join(SYSTEMS)}")
    parser.add_argument("--json", metavar="OUT", help="also write every row, the targets and the settings as JSON")
    parser.add_argument("--results", metavar="PATH",
                        help="write the markdown results here (default: benchmarks/RESULTS.md, full runs only)")
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--profile", metavar="NAME[,NAME]",
                        help="instead of the table, cProfile dagprop on these workloads and print the top functions")
    parser.add_argument("--default-threads", action="store_true",
                        help="keep the machine's default BLAS/torch threads (the table uses one thread)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    args.workloads = _names(args.only or args.profile, WORKLOADS, "workload", parser) if (args.only or args.profile) \
        else list(WORKLOADS)
    args.system_names = tuple(_names(args.systems, SYSTEMS, "system", parser)) if args.systems else SYSTEMS
    if args.quick and args.tiny:
        parser.error("choose --quick or --tiny, not both")
    return args


def _names(text: str, known: Iterable[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    say = (lambda *a, **k: None) if args.quiet else print
    settle_heap()
    with tempfile.TemporaryDirectory(prefix="dagprop-bench-") as tmp:
        ctx = Context(Settings.for_mode(mode), args.system_names, Peers(), Path(tmp))
        if args.profile:
            profile(args.workloads, ctx)
            return 0
        started = time.perf_counter()
        say(f"dagprop benchmarks, {mode} mode, {'one BLAS thread' if SINGLE_THREADED else 'default threads'}; "
            f"workloads: {', '.join(args.workloads)}")

        def echo(row: Row) -> None:
            value = format_value(row)
            ratio = f"  x numpy {row.ratio_numpy:.2f}" if row.ratio_numpy else ""
            say(f"  {row.workload:<15} {row.case[:30]:<30} {SYSTEM_LABELS.get(row.system, row.system):<20} "
                f"{value:<14}{ratio}", flush=True)

        durations: dict[str, float] = {}
        load_before = load_average()
        rows = run_workloads(args.workloads, ctx, echo, durations)
        default_run = None
        if mode == "full" and SINGLE_THREADED and "mlp_large" in args.workloads:
            say("  repeating mlp_large with the default thread settings...", flush=True)
            default_run = run_default_threads(["mlp_large"], ctx.tmp)
            if default_run is not None:
                rows += [Row(**r) for r in default_run["rows"]]
        targets = evaluate_targets(rows)
        env = environment(ctx.peers, argv)
        env["seconds"] = round(time.perf_counter() - started, 1)
        env["workload_seconds"] = durations
        env["load_average"] = {"before": load_before, "after": load_average()}
        say("")
        say(text_table(rows))
        say("")
        say(f"threads: {thread_summary(env, default_run)}")
        if env["missing_peers"]:
            say("peers not run: " + "; ".join(f"{k}: {why}" for k, why in env["missing_peers"].items()))
        say("")
        say("targets:")
        for line in target_lines(targets):
            say("  " + line)
        references = reference_lines(rows)
        if references:
            say("")
            say("peers as multiples of the NumPy floor, against the issue's measurements:")
            for line in references:
                say("  " + line)
        say(f"\ntook {env['seconds']} s ({', '.join(f'{k} {v} s' for k, v in durations.items())}); "
            f"load average {env['load_average']['before']} before, {env['load_average']['after']} after "
            f"on {os.cpu_count()} cores")
        if args.json:
            payload = {"meta": {**env, "mode": mode, "workloads": args.workloads},
                       "rows": [asdict(r) for r in rows], "targets": [asdict(t) for t in targets]}
            Path(args.json).write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        results = Path(args.results) if args.results else None
        if results is None and mode == "full" and not args.only and not args.systems:
            results = RESULTS_PATH
        if results is not None and not args.no_results:
            write_results(results, rows, targets, env, default_run)
            say(f"wrote {results}")
            if results == RESULTS_PATH and refresh_readme(rows, env):
                say(f"updated the key ratios in {README_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
