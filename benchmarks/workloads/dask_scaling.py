"""14. dask: the plan as Dask tasks, threaded and on a 2-worker LocalCluster; sweeps; out-of-core inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

import dagprop as dp
from harness import Context, Row, selected, set_ratios, shorten, spread

from .random_dag import RandomDag

HERE = Path(__file__).resolve().parent
IN_PROCESS, THREADED, DISTRIBUTED = "dagprop", "dask threaded", "dask distributed"
WORKERS = 2


def workload_dask(ctx: Context) -> Iterator[Row]:
    """Per-node overhead, equality, a wide graph and a sweep on one LocalCluster; out-of-core in subprocesses."""
    if not selected("dask", ctx.systems):
        return
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        yield Row("dask", "all", THREADED, "skipped", note=f"dask is not installed ({exc}): pip install 'dagprop[dask]'")
        return
    pick = ctx.settings.pick
    with dask.config.set(scheduler="threads"):
        yield from _overhead(pick(300, 100, 20), {IN_PROCESS: None, THREADED: "dask"})
        yield from _equality(pick(35, 35, 3), THREADED)
        yield from _wide(pick(2000, 800, 60), pick(3, 2, 1), {IN_PROCESS: None, THREADED: "dask"})
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield from _overhead(pick(300, 100, 20), {IN_PROCESS: None, DISTRIBUTED: "dask"})
        yield from _equality(pick(35, 35, 3), DISTRIBUTED)
        yield from _wide(pick(2000, 800, 60), pick(3, 2, 1), {IN_PROCESS: None, DISTRIBUTED: "dask"})
        yield from _sweep(client, pick(32, 32, 4), pick(300, 100, 10))
    for gigabytes in pick((1.5, 8.0), (0.15, 0.6), (0.01,)):
        yield _out_of_core(gigabytes)


# -- what one task costs --------------------------------------------------------------------


def _overhead(depth: int, executors: dict[str, str | None]) -> Iterator[Row]:
    """A chain of ``depth`` scalar tanh nodes: what each executor adds per node, forward + backward."""
    case = f"overhead: {depth}-node scalar chain, forward + backward"
    steps = {}
    for system, executor in executors.items():
        g = dp.Graph()
        y = g.param("x", 0.5)
        for _ in range(depth):
            y = y.tanh()

        def step(g: dp.Graph = g, loss: dp.Node = y, executor: str | None = executor) -> None:
            g.zero_grad()
            g.forward(executor=executor)
            g.backward(loss, executor=executor)
            float(g.nodes[0].grad)

        steps[system] = step
    rows = _timed_together(case, steps, samples=5, per_unit=depth + 1, per="node")
    set_ratios(rows, IN_PROCESS, None)
    yield from rows


# -- the same numbers -----------------------------------------------------------------------


def _equality(count: int, system: str) -> Iterator[Row]:
    """``count`` random DAGs: every value, gradient and edge gradient against the in-process run."""
    row = Row("dask", f"equality: {count} random graphs, values + gradients + edge gradients", system, "ok",
              metric="count", per="graph")
    identical, worst = 0, 0.0
    try:
        for seed in range(count):
            dag = RandomDag.generate(40 + seed % 30, inputs=4, seed=seed)
            rng = np.random.default_rng(seed)
            values = [rng.uniform(-1, 1, size=3) for _ in range(dag.inputs)]
            here, there = (_run_dag(dag, values, executor) for executor in (None, "dask"))
            same = all(np.array_equal(a, b) for a, b in zip(here, there))
            identical += same
            if not same:
                worst = max(worst, max(_relative(a, b) for a, b in zip(here, there)))
    except Exception as exc:
        row.status, row.note = "failed", f"fails: {type(exc).__name__}: {shorten(str(exc))}"
        return
    row.value = identical
    row.extra.update(graphs=count, identical=identical, worst_relative=worst)
    row.note = f"{identical} of {count} bit for bit" + (f"; the others within {worst:.1e} relative" if worst else "")
    yield row


def _run_dag(dag: RandomDag, values: list[np.ndarray], executor: str | None) -> list[np.ndarray]:
    g, _, loss = dag.build_dagprop(values)
    g.forward(executor=executor)
    g.backward(loss, executor=executor)
    out = [np.asarray(n.value) for n in g.nodes] + [np.asarray(n.grad) for n in g.nodes if n.grad is not None]
    return out + [np.asarray(grad) for *_, grad in g.run.edges()]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(a), initial=0.0)), 1e-300)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


# -- a wide graph ---------------------------------------------------------------------------


def _wide(size: int, samples: int, executors: dict[str, str | None]) -> Iterator[Row]:
    """8 branches of ``x @ W_k`` -> tanh -> sum, added up: the branches are independent work."""
    case = f"wide: 8 branches of {size}x{size} matmul -> tanh -> sum, forward + backward"
    rng = np.random.default_rng(14)
    x0 = rng.uniform(-1, 1, size=(size, size)) / np.sqrt(size)
    weights = [rng.uniform(-1, 1, size=(size, size)) for _ in range(8)]
    steps, grads = {}, {}
    for system, executor in executors.items():
        g = dp.Graph()
        x = g.input("x", x0)
        w = [g.param(f"W{k}", weights[k]) for k in range(8)]
        loss = (x @ w[0]).tanh().sum()
        for k in range(1, 8):
            loss = loss + (x @ w[k]).tanh().sum()

        def step(g: dp.Graph = g, loss: dp.Node = loss, w: list = w, executor: str | None = executor) -> None:
            g.zero_grad()
            g.forward(executor=executor)
            g.backward(loss, executor=executor)
            grads[executor] = [np.asarray(p.grad) for p in w]

        steps[system] = step
    rows = _timed_together(case, steps, samples=samples)
    if len(grads) == 2 and rows[-1].status == "ok":
        here, there = grads.values()
        if not all(np.array_equal(a, b) for a, b in zip(here, there)):
            worst = max(_relative(a, b) for a, b in zip(here, there))
            rows[-1].status = "ok" if worst <= 1e-12 else "wrong"
            rows[-1].note = f"gradients within {worst:.1e} relative of the in-process ones"
    set_ratios(rows, IN_PROCESS, None)
    yield from rows


# -- a sweep ------------------------------------------------------------------------------------


def train_one(config: tuple[int, float, int]) -> float:
    """One training run of a small MLP (seed, learning rate, steps): its final loss."""
    seed, lr, steps = config
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(128, 8))
    Y = np.sin(X @ rng.uniform(-1, 1, size=(8, 1)))
    g = dp.Graph()
    x, y = g.input("x", X), g.input("y", Y)
    W1, b1 = g.param("W1", rng.uniform(-1, 1, size=(8, 32)) / 3), g.param("b1", np.zeros(32))
    W2, b2 = g.param("W2", rng.uniform(-1, 1, size=(32, 1)) / 6), g.param("b2", np.zeros(1))
    loss = g.ops.squared_error((x @ W1 + b1).tanh() @ W2 + b2, y)
    train = g.compile(loss, lr=lr)
    for _ in range(steps):
        last = train()
    return last


def _sweep(client: Any, runs: int, steps: int) -> Iterator[Row]:
    """``runs`` independent training runs: one after another here, against ``client.map`` on the workers."""
    case = f"sweep: {runs} training runs of {steps} steps"
    configs = [(seed, 0.0005 * (1 + seed % 4), steps) for seed in range(runs)]
    results: dict[str, list[float]] = {}

    def here() -> None:
        results[IN_PROCESS] = [train_one(c) for c in configs]

    def there() -> None:
        results[DISTRIBUTED] = client.gather(client.map(train_one, configs, pure=False))

    rows = _timed_together(case, {IN_PROCESS: here, DISTRIBUTED: there}, samples=3)
    if len(results) == 2:
        worst = max(abs(a - b) / abs(a) for a, b in zip(results[IN_PROCESS], results[DISTRIBUTED]))
        rows[-1].note = ("final losses equal to this process's, bit for bit" if worst == 0 else
                         f"final losses within {worst:.1e} relative of this process's")
        if worst > 1e-9:
            rows[-1].status = "wrong"
    set_ratios(rows, IN_PROCESS, None)
    yield from rows


# -- out of core ------------------------------------------------------------------------------


def _out_of_core(gigabytes: float) -> Row:
    """tanh(x @ W + b).sum() over a lazily generated dask input of ``gigabytes``, in a fresh process
    (its peak resident memory is the row's value)."""
    case = f"out of core: {gigabytes:g} GB dask input, tanh(x @ W + b).sum(), forward + backward"
    row = Row("dask", case, THREADED, "ok", metric="memory", per="run")
    try:
        done = subprocess.run([sys.executable, "-m", "workloads.out_of_core", str(gigabytes)], cwd=HERE.parent,
                              capture_output=True, text=True, check=True, timeout=3600,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        row.status, row.note = "failed", f"fails: {type(exc).__name__}: {shorten(detail[-400:])}"
        return row
    row.value = found["peak_bytes"]
    row.extra.update(found)
    row.note = (f"{found['seconds']:.1f} s; peak {found['peak_bytes'] / 2**30:.2f} GiB; W's gradient within "
                f"{found['relative_error']:.1e} of a chunk-by-chunk NumPy reference")
    if found["relative_error"] > 1e-9:
        row.status = "wrong"
    return row


# -- timing -----------------------------------------------------------------------------------


def _timed_together(case: str, actions: dict[str, Callable[[], object]], *, samples: int, per_unit: int = 1,
                    per: str = "step") -> list[Row]:
    """A row per system: the median seconds (per unit) of ``samples`` calls after one warm-up call each,
    the systems' samples taken in turns (the machine is shared: a busy minute then slows every system,
    not just the one timed in it). Each row's ``extra["cores_elsewhere"]`` is how many cores other
    processes (and the kernel) kept busy over its samples, where they lasted a second or more in all:
    a speed-up on 2 workers needs both cores."""
    rows = {system: Row("dask", case, system, "ok", per=per) for system in actions}
    times: dict[str, list[float]] = {system: [] for system in actions}
    elsewhere = dict.fromkeys(actions, 0.0)  # CPU seconds other processes used during the system's samples
    for turn in range(samples + 1):
        order = list(actions) if turn % 2 == 0 else list(reversed(actions))
        for system in order:
            if rows[system].status != "ok":
                continue
            try:
                before = _cpu_seconds_elsewhere()
                started = time.perf_counter()
                actions[system]()
                seconds = time.perf_counter() - started
            except Exception as exc:
                rows[system].status, rows[system].note = "failed", f"fails: {type(exc).__name__}: {shorten(str(exc))}"
                continue
            if turn > 0:  # the first turn warms up
                times[system].append(seconds / per_unit)
                elsewhere[system] += max(0.0, _cpu_seconds_elsewhere() - before)
    for system, row in rows.items():
        if row.status == "ok":
            row.value, row.samples, row.spread = float(np.median(times[system])), times[system], spread(times[system])
            timed = sum(times[system]) * per_unit
            if timed >= 1.0:  # the kernel counts CPU time in hundredths of a second
                row.extra["cores_elsewhere"] = round(elsewhere[system] / timed, 2)
    return list(rows.values())


def _cpu_seconds_elsewhere() -> float:
    """The CPU seconds the machine has spent outside this process and its children (the workers) since
    the machine booted, or 0 where the kernel does not say (no /proc)."""
    import psutil  # dask.distributed's own dependency

    try:
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(t) for t in stat.readline().split()[1:9])
    except OSError:
        return 0.0
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    ours = psutil.Process()
    mine = sum(ours.cpu_times()[:2])
    for child in ours.children(recursive=True):
        try:
            mine += sum(child.cpu_times()[:2])
        except psutil.Error:  # a child that ended meanwhile
            pass
    return busy - mine
