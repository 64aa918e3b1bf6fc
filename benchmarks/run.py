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

import os
import sys

# BLAS libraries read their thread count once, when they are loaded: these must be set
# before numpy, torch or jax is imported, so they come before every other import.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")
ORIGINAL_THREAD_ENV = {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "XLA_FLAGS")}
SINGLE_THREADED = "--default-threads" not in sys.argv[1:]
if SINGLE_THREADED:
    for _name in THREAD_VARIABLES:
        os.environ[_name] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from collections import deque  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterable, Iterator  # noqa: E402

import numpy as np  # noqa: E402

import dagprop as dp  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_PATH = HERE / "RESULTS.md"
INSTALL_PEERS = "pip install -e '.[bench]'"

# The order systems appear in the table: dagprop, its floor, then the peers.
SYSTEMS = ("dagprop", "numpy", "jax", "torch", "autograd", "micrograd")
PEERS = ("jax", "torch", "autograd", "micrograd")
SYSTEM_LABELS = {"numpy": "numpy (by hand)", "jax": "jax.jit", "torch": "torch eager"}


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How hard to measure: samples per system, the least duration of one sample, time budgets."""

    mode: str  # "full", "quick" or "tiny"
    samples: int  # timed samples per system (after the warm-up), fewer for very slow systems
    min_sample_seconds: float  # each sample repeats the step until it lasts at least this long
    budget_seconds: float  # the most one system may spend on one case's timed samples
    slow_call_seconds: float  # a first call slower than this is the system's only sample
    warmup_seconds: float  # calls before the timing starts last at least this long (the first call included)

    @classmethod
    def for_mode(cls, mode: str) -> Settings:
        if mode == "full":
            return cls(mode, samples=9, min_sample_seconds=0.05, budget_seconds=20.0, slow_call_seconds=30.0,
                       warmup_seconds=0.3)
        if mode == "quick":
            return cls(mode, samples=5, min_sample_seconds=0.01, budget_seconds=1.0, slow_call_seconds=1.5,
                       warmup_seconds=0.05)
        return cls(mode, samples=1, min_sample_seconds=0.0, budget_seconds=0.5, slow_call_seconds=2.0,
                   warmup_seconds=0.0)

    def pick(self, full: Any, quick: Any, tiny: Any) -> Any:
        """The size to use in this mode."""
        return {"full": full, "quick": quick, "tiny": tiny}[self.mode]


@dataclass
class Context:
    settings: Settings
    systems: tuple[str, ...]
    peers: Peers
    tmp: Path


# -- peers ------------------------------------------------------------------------------------


class Peers:
    """The optional peer libraries, imported on first use. A missing one is a note, never a failure."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}
        self.versions: dict[str, str] = {}
        self.missing: dict[str, str] = {}

    def get(self, name: str) -> Any:
        """The peer's namespace, or None (the reason is in ``self.missing[name]``)."""
        if name in self._loaded or name in self.missing:
            return self._loaded.get(name)
        try:
            loaded = getattr(self, f"_load_{name}")()
        except Exception as exc:  # an import can fail with OSError, RuntimeError...: all mean "not usable"
            self.missing[name] = (f"not installed ({INSTALL_PEERS})" if isinstance(exc, ImportError)
                                  else f"cannot be imported: {type(exc).__name__}: {exc}")
            return None
        self._loaded[name] = loaded
        settle_heap()
        return loaded

    def _load_torch(self) -> Any:
        import torch

        if SINGLE_THREADED:
            torch.set_num_threads(1)
        self.versions["torch"] = torch.__version__
        return torch

    def _load_jax(self) -> Any:
        import jax

        jax.config.update("jax_enable_x64", True)  # every system computes in float64, as dagprop does
        import jax.numpy as jnp

        self.versions["jax"] = jax.__version__
        return types.SimpleNamespace(jax=jax, jnp=jnp)

    def _load_autograd(self) -> Any:
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp

        self.versions["autograd"] = importlib.metadata.version("autograd")
        return types.SimpleNamespace(grad=autograd.grad, np=anp, logsumexp=logsumexp)

    def _load_micrograd(self) -> Any:
        from micrograd import nn
        from micrograd.engine import Value

        self.versions["micrograd"] = importlib.metadata.version("micrograd")
        return types.SimpleNamespace(Value=Value, nn=nn)


def settle_heap() -> None:
    """Move every object alive now (modules, the peers' import-time state) out of the collector's sight.

    Without this, every full collection walks whatever libraries happen to be imported,
    so one system's time would depend on which peers were loaded before it, and each
    gc.collect() between samples would cost a tenth of a second with torch and jax loaded.
    Objects a system creates while it runs are collected as usual.
    """
    gc.collect()
    gc.freeze()


def micrograd_tanh(v: Any) -> Any:
    """tanh as a micrograd Value, in micrograd's own style (its PyPI release has no tanh)."""
    t = math.tanh(v.data)
    out = type(v)(t, (v,), "tanh")

    def _backward() -> None:
        v.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out


# -- what a workload hands the harness --------------------------------------------------------


@dataclass
class Subject:
    """One system's version of one case: a step to time and the gradients its last step computed."""

    step: Callable[[], Any]
    gradients: Callable[[], dict[str, np.ndarray]] | None = None
    note: str = ""
    # a note computed after the warm-up (e.g. what a renderer warned about)
    late_note: Callable[[], str] | None = None


Factory = Callable[[], Subject]


@dataclass
class Case:
    """One size of one workload: a factory per system, or the reason a system does not run it."""

    workload: str
    name: str
    factories: dict[str, Factory | str]
    per: str = "step"  # the unit a time is reported for: "step", or "node" with divisor nodes
    divisor: int = 1
    reference: str | None = "numpy"  # whose gradients the others must match, and the floor
    baseline: str = "dagprop"  # the system the "x dagprop" column divides by
    note: str = ""


@dataclass
class Row:
    """One line of the table."""

    workload: str
    case: str
    system: str
    status: str  # "ok", "skipped", "failed" or "wrong"
    metric: str = "time"  # "time" (seconds per unit) or "memory" (bytes)
    value: float | None = None  # median seconds per unit, or bytes
    per: str = "step"
    samples: list[float] = field(default_factory=list)
    calls_per_sample: int = 0
    spread: float | None = None
    build_seconds: float | None = None
    first_call_seconds: float | None = None
    ratio_dagprop: float | None = None
    ratio_numpy: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- the harness -----------------------------------------------------------------------------


@dataclass
class _Running:
    system: str
    subject: Subject
    build_seconds: float
    first_call_seconds: float
    calls: int = 1
    wanted_samples: int = 1
    samples: list[float] = field(default_factory=list)
    gc_seconds: float = 0.0
    cold_only: bool = False
    sized_seconds: float = 0.0


def run_case(case: Case, ctx: Context) -> list[Row]:
    """Build, check and time every system of one case; rows in the table's system order."""
    rows: list[Row] = []
    running: list[_Running] = []
    reference_grads: dict[str, np.ndarray] | None = None
    order = sorted(case.factories, key=lambda s: (s != case.reference, _system_rank(s)))
    for system in order:
        factory = case.factories[system]
        if not _selected(system, ctx.systems):
            continue
        row = Row(case.workload, case.name, system, "skipped", per=case.per)
        peer = _peer_of(system)
        if peer is not None and ctx.peers.get(peer) is None:  # a missing peer says so before any other reason
            row.note = ctx.peers.missing[peer]
            rows.append(row)
            continue
        if isinstance(factory, str):
            row.note = factory
            rows.append(row)
            continue
        gc.collect()
        try:
            started = time.perf_counter()
            subject = factory()
            built = time.perf_counter() - started
            started = time.perf_counter()
            subject.step()
            first = time.perf_counter() - started
            grads = subject.gradients() if subject.gradients is not None else None
        except Exception as exc:  # a system that cannot run the case is a finding, not a crash
            row.status = "failed"
            row.note = f"fails: {type(exc).__name__}: {_shorten(str(exc))}"
            rows.append(row)
            continue
        if system == case.reference:
            reference_grads = grads
        elif grads is not None:
            if reference_grads is None:
                row.note = "gradients unchecked (no reference this run); "
            else:
                mismatch = compare_gradients(grads, reference_grads)
                if mismatch:
                    row.status = "wrong"
                    row.note = f"not timed: gradients differ from the NumPy floor's: {mismatch}"
                    rows.append(row)
                    continue
        row.status = "ok"
        rows.append(row)
        running.append(_Running(system, subject, built, first))
    _time_round_robin(running, ctx.settings)
    by_system = {r.system: r for r in running}
    for row in rows:
        if row.status == "ok":
            _fill_row(row, by_system[row.system], case, ctx.settings)
    set_ratios(rows, case.baseline, case.reference)
    return rows


def _fill_row(row: Row, r: _Running, case: Case, settings: Settings) -> None:
    """A timed system's row: the median per unit, the spread, and the notes worth reading."""
    per_call = [s / r.calls / case.divisor for s in r.samples]
    row.value = float(np.median(per_call))
    row.samples = per_call
    row.calls_per_sample = r.calls
    row.spread = spread(per_call)
    row.extra["fastest"] = min(per_call)
    row.build_seconds = r.build_seconds
    row.first_call_seconds = r.first_call_seconds
    notes = [row.note.rstrip("; ")] if row.note else []
    notes.extend(one_time_costs(r, row.value * case.divisor))
    if r.subject.note:
        notes.append(r.subject.note)
    if r.subject.late_note is not None:
        notes.append(r.subject.late_note())
    if r.cold_only:
        notes.append("one cold call only (slow)")
    elif len(r.samples) < settings.samples:
        notes.append(f"{len(r.samples)} of {settings.samples} samples (slow)")
    timed = sum(r.samples)
    row.extra["gc_share"] = r.gc_seconds / timed if timed else 0.0
    if row.extra["gc_share"] >= 0.05:
        notes.append(f"garbage collector {100 * row.extra['gc_share']:.0f}% of the time")
    row.note = "; ".join(n for n in notes if n)


def one_time_costs(r: _Running, per_call: float) -> list[str]:
    """Building the graph, and a first call much slower than the rest (planning, jit), when they matter."""
    notes = []
    if r.system.startswith("dagprop") and r.build_seconds > max(0.01, per_call):
        notes.append(f"graph built in {format_seconds(r.build_seconds)}")
    if not r.cold_only and r.first_call_seconds > 3 * per_call and r.first_call_seconds > 0.001:
        notes.append(f"first call {format_seconds(r.first_call_seconds)}")
    return notes


class GcClock:
    """Seconds spent in Python's cyclic garbage collector, summed through ``gc.callbacks``.

    A framework whose live graph is made of many Python objects pays for them in every
    full collection; the notes say so when that is a noticeable share of a system's time.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.total += time.perf_counter() - self._started
            self._started = None

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


# A step this fast gets one untimed call before each sample: after the other systems have run,
# the first call finds its caches cold and its worker threads asleep (jax.jit pays 1 to 2 ms),
# which is not what a training loop of back-to-back steps sees.
REWARM_BELOW_SECONDS = 0.1


def _time_round_robin(running: list[_Running], settings: Settings) -> None:
    """Take each system's samples in turns, so a slow spell on the machine hits all of them alike."""
    with GcClock() as clock:
        for r in running:
            if r.first_call_seconds > settings.slow_call_seconds:
                # too slow for more: the warm-up call is the only sample (the table says so)
                r.samples.append(r.first_call_seconds)
                r.wanted_samples = 1
                r.cold_only = True
                continue
            # a jit or a cache may take more than one call to settle: warm up for a while
            spent = latest = r.first_call_seconds
            while spent < settings.warmup_seconds:
                started = time.perf_counter()
                r.subject.step()
                latest = time.perf_counter() - started
                spent += latest
            # then size the samples, doubling the calls until a batch lasts a fifth of a sample: a
            # single call can be slowed by anything, and jax's first calls after a pause by milliseconds
            gc.collect()  # another system's warm-up garbage must not be collected on this one's time
            if latest < REWARM_BELOW_SECONDS:
                r.subject.step()
            batch = 1
            while True:
                in_gc = clock.total
                started = time.perf_counter()
                for _ in range(batch):
                    r.subject.step()
                elapsed = time.perf_counter() - started
                if elapsed >= settings.min_sample_seconds / 5 and (batch > 1 or elapsed >= REWARM_BELOW_SECONDS / 5):
                    break
                batch *= 2
            one = r.sized_seconds = max(elapsed / batch, 1e-9)
            r.calls = math.ceil(settings.min_sample_seconds / one) if settings.min_sample_seconds else 1
            if r.calls == 1 and batch == 1:  # a sample of one call: this one counts
                r.samples.append(one)
                r.gc_seconds += clock.total - in_gc
            fits = int(settings.budget_seconds // (one * r.calls))
            r.wanted_samples = max(1, min(settings.samples, fits))
        for turn in range(max((r.wanted_samples for r in running), default=0)):
            for r in running:
                if len(r.samples) >= r.wanted_samples:
                    continue
                gc.collect()
                step, calls = r.subject.step, r.calls
                if r.sized_seconds < REWARM_BELOW_SECONDS:
                    step()  # untimed: the first call after other systems ran pays for cold caches
                in_gc = clock.total
                started = time.perf_counter()
                for _ in range(calls):
                    step()
                r.samples.append(time.perf_counter() - started)
                r.gc_seconds += clock.total - in_gc


def set_ratios(rows: list[Row], baseline: str, reference: str | None) -> None:
    values = {r.system: r.value for r in rows if r.status == "ok" and r.value}
    for row in rows:
        if row.status != "ok" or not row.value:
            continue
        if baseline in values:
            row.ratio_dagprop = row.value / values[baseline]
        if reference is not None and reference in values:
            row.ratio_numpy = row.value / values[reference]


def compare_gradients(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> str:
    """An empty string when every gradient matches the reference, else what differs and by how much."""
    problems = []
    for name, expected in want.items():
        if name not in got:
            problems.append(f"no gradient for {name}")
            continue
        actual = np.asarray(got[name], dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            problems.append(f"{name} has shape {actual.shape}, expected {expected.shape}")
            continue
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        if not np.allclose(actual, expected, rtol=1e-6, atol=1e-9 * scale):
            problems.append(f"{name} off by up to {float(np.abs(actual - expected).max()):.3g}")
    return "; ".join(problems)


def spread(samples: list[float]) -> float | None:
    """How noisy the samples were: interquartile range over median (range over median below 4 samples)."""
    if len(samples) < 2:
        return None
    median = float(np.median(samples))
    if len(samples) >= 4:
        q1, q3 = np.percentile(samples, [25, 75])
        return float(q3 - q1) / median
    return (max(samples) - min(samples)) / median


def _peer_of(system: str) -> str | None:
    head = system.split()[0]
    return head if head in PEERS else None


def _system_rank(system: str) -> int:
    head = system.split()[0]
    return SYSTEMS.index(head) if head in SYSTEMS else len(SYSTEMS)


def _selected(system: str, wanted: tuple[str, ...]) -> bool:
    return system.split()[0] in wanted


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- shared data -------------------------------------------------------------------------------


def as_float(x: Any) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def torch_tensors(torch: Any, arrays: dict[str, np.ndarray], grad: Iterable[str] = ()) -> dict[str, Any]:
    """float64 torch tensors (copies), with requires_grad on the named ones."""
    wanted = set(grad)
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in wanted) for k, v in arrays.items()}


def torch_grads(tensors: dict[str, Any], names: Iterable[str]) -> dict[str, np.ndarray]:
    return {k: tensors[k].grad.detach().numpy().copy() for k in names}


def dagprop_grads(nodes: dict[str, dp.Node]) -> dict[str, np.ndarray]:
    return {k: np.array(n.grad) for k, n in nodes.items()}


def jax_step(peer: Any, fn: Callable, *args: Any) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step calling the jitted ``fn`` and waiting for its result (JAX runs asynchronously)."""
    state: dict[str, Any] = {}

    def step() -> None:
        out = fn(*args)
        peer.jax.block_until_ready(out)
        state["out"] = out

    return step, state


# -- 1. seed_v: the Values example of the attention note ----------------------------------------


SEED_V_LR = 0.002


def seed_v_data() -> dict[str, np.ndarray]:
    """The V example of 001_9b8a65702dd0fdcc.txt: V 3x3, x 3x2, alpha 1x2, y 3x1, a zero bias."""
    return {"V": as_float([[-1, 6, 7], [2, 2, 2], [5, 5, 5]]), "b": np.zeros((3, 1)),
            "x": as_float([[1, 3], [4, 0.3], [2, 2]]), "alpha": as_float([[5, -2]]),
            "y": as_float([[-1], [20], [5]])}


def workload_seed_v(ctx: Context) -> Iterator[Case]:
    d = seed_v_data()

    def dagprop_subject() -> Subject:
        g = dp.Graph()
        x, alpha, y = g.input("x", d["x"]), g.input("alpha", d["alpha"]), g.input("y", d["y"])
        params = {"V": g.param("V", d["V"]), "b": g.param("b", d["b"])}
        v = params["V"] @ x + params["b"]
        z = v @ alpha.T
        loss = g.ops.l2_loss(z, y)

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)
            g.step(lr=SEED_V_LR)

        return Subject(step, lambda: dagprop_grads(params))

    def numpy_subject() -> Subject:
        s = {"V": d["V"].copy(), "b": d["b"].copy()}
        x, alpha, y = d["x"], d["alpha"], d["y"]

        def step() -> None:
            v = s["V"] @ x + s["b"]
            z = v @ alpha.T
            residual = z - y
            s["loss"] = 0.5 * np.sum(residual * residual)
            grad_v = residual @ alpha
            s["gV"] = grad_v @ x.T
            s["gb"] = grad_v.sum(axis=1, keepdims=True)
            s["V"] = s["V"] - SEED_V_LR * s["gV"]
            s["b"] = s["b"] - SEED_V_LR * s["gb"]

        return Subject(step, lambda: {"V": s["gV"], "b": s["gb"]})

    def jax_subject() -> Subject:
        peer = ctx.peers.get("jax")
        jax, jnp = peer.jax, peer.jnp

        def loss(params, x, alpha, y):
            V, b = params
            z = (V @ x + b) @ alpha.T
            return 0.5 * jnp.sum((z - y) ** 2)

        @jax.jit
        def train_step(params, x, alpha, y):
            grads = jax.grad(loss)(params, x, alpha, y)
            return tuple(p - SEED_V_LR * g for p, g in zip(params, grads)), grads

        s = {"params": (jnp.asarray(d["V"]), jnp.asarray(d["b"]))}
        x, alpha, y = (jnp.asarray(d[k]) for k in ("x", "alpha", "y"))

        def step() -> None:
            params, grads = train_step(s["params"], x, alpha, y)
            jax.block_until_ready(params)
            s["params"], s["grads"] = params, grads

        return Subject(step, lambda: {"V": np.asarray(s["grads"][0]), "b": np.asarray(s["grads"][1])})

    def torch_subject() -> Subject:
        torch = ctx.peers.get("torch")
        t = torch_tensors(torch, d, grad=("V", "b"))
        V, b, x, alpha, y = (t[k] for k in ("V", "b", "x", "alpha", "y"))
        grads: dict[str, np.ndarray] = {}

        def step() -> None:
            # the update of PyTorch's "Learning PyTorch with Examples"; torch.optim.SGD costs more
            z = (V @ x + b) @ alpha.T
            loss = 0.5 * ((z - y) ** 2).sum()
            loss.backward()
            with torch.no_grad():
                V.sub_(SEED_V_LR * V.grad)
                b.sub_(SEED_V_LR * b.grad)
            grads["V"], grads["b"] = V.grad, b.grad
            V.grad = None
            b.grad = None

        return Subject(step, lambda: {k: v.numpy().copy() for k, v in grads.items()})

    def autograd_subject() -> Subject:
        peer = ctx.peers.get("autograd")
        anp = peer.np

        def loss(params, x, alpha, y):
            V, b = params
            z = anp.dot(anp.dot(V, x) + b, alpha.T)
            return 0.5 * anp.sum((z - y) ** 2)

        loss_grad = peer.grad(loss)
        s = {"params": [d["V"].copy(), d["b"].copy()]}

        def step() -> None:
            grads = loss_grad(s["params"], d["x"], d["alpha"], d["y"])
            s["params"] = [p - SEED_V_LR * g for p, g in zip(s["params"], grads)]
            s["grads"] = grads

        return Subject(step, lambda: {"V": s["grads"][0], "b": s["grads"][1]})

    def micrograd_subject() -> Subject:
        Value = ctx.peers.get("micrograd").Value
        V = [[Value(float(w)) for w in row] for row in d["V"]]
        b = [Value(0.0) for _ in range(3)]
        params = [p for row in V for p in row] + b
        x, alpha, y = d["x"].tolist(), d["alpha"][0].tolist(), d["y"][:, 0].tolist()

        def step() -> None:
            v = [[sum((V[i][k] * x[k][j] for k in range(3)), b[i]) for j in range(2)] for i in range(3)]
            z = [v[i][0] * alpha[0] + v[i][1] * alpha[1] for i in range(3)]
            loss = sum(0.5 * (z[i] - y[i]) ** 2 for i in range(3))
            for p in params:
                p.grad = 0
            loss.backward()
            for p in params:
                p.data -= SEED_V_LR * p.grad

        def gradients() -> dict[str, np.ndarray]:
            return {"V": as_float([[p.grad for p in row] for row in V]), "b": as_float([[p.grad] for p in b])}

        return Subject(step, gradients)

    yield Case("seed_v", "V 3x3, x 3x2", {
        "dagprop": dagprop_subject, "numpy": numpy_subject, "jax": jax_subject, "torch": torch_subject,
        "autograd": autograd_subject, "micrograd": micrograd_subject,
    }, note="forward + backward + SGD step")


# -- 2. mlp_small and 3. mlp_large --------------------------------------------------------------


def mlp_data(sizes: tuple[int, ...], batch: int, seed: int, *, one_hot: bool) -> dict[str, np.ndarray]:
    """Inputs, targets and weights (scaled by 1/sqrt(fan-in)) of an MLP on row vectors."""
    rng = np.random.default_rng(seed)
    data = {"X": rng.normal(size=(batch, sizes[0]))}
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        data[f"W{layer}"] = rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
        data[f"b{layer}"] = rng.normal(size=n_out) * 0.1
    if one_hot:
        data["Y"] = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)]
    else:
        data["Y"] = rng.normal(size=(batch, sizes[-1]))
    return data


def param_names(data: dict[str, np.ndarray]) -> list[str]:
    return [k for k in data if k[0] in "Wb"]


def workload_mlp_small(ctx: Context) -> Iterator[Case]:
    """64 -> 128 -> 10 with tanh, batch 32, squared error: forward + backward."""
    d = mlp_data((64, 128, 10), 32, seed=2, one_hot=False)
    names = param_names(d)

    def dagprop_subject() -> Subject:
        g = dp.Graph()
        X, Y = g.input("X", d["X"]), g.input("Y", d["Y"])
        p = {k: g.param(k, d[k]) for k in names}
        h = (X @ p["W1"] + p["b1"]).tanh()
        loss = g.ops.squared_error(h @ p["W2"] + p["b2"], Y)

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step, lambda: dagprop_grads(p))

    def numpy_subject() -> Subject:
        s: dict[str, np.ndarray] = {}
        X, Y, W1, b1, W2, b2 = (d[k] for k in ("X", "Y", "W1", "b1", "W2", "b2"))

        def step() -> None:
            h = np.tanh(X @ W1 + b1)
            residual = h @ W2 + b2 - Y
            s["loss"] = np.sum(residual * residual)
            grad_out = 2.0 * residual
            s["W2"], s["b2"] = h.T @ grad_out, grad_out.sum(axis=0)
            grad_a = (grad_out @ W2.T) * (1.0 - h * h)
            s["W1"], s["b1"] = X.T @ grad_a, grad_a.sum(axis=0)

        return Subject(step, lambda: {k: s[k] for k in names})

    def jax_subject() -> Subject:
        peer = ctx.peers.get("jax")
        jax, jnp = peer.jax, peer.jnp

        def loss(p, X, Y):
            h = jnp.tanh(X @ p["W1"] + p["b1"])
            return jnp.sum((h @ p["W2"] + p["b2"] - Y) ** 2)

        grad = jax.jit(jax.grad(loss))
        params = {k: jnp.asarray(d[k]) for k in names}
        step, state = jax_step(peer, grad, params, jnp.asarray(d["X"]), jnp.asarray(d["Y"]))
        return Subject(step, lambda: {k: np.asarray(v) for k, v in state["out"].items()})

    def torch_subject() -> Subject:
        torch = ctx.peers.get("torch")
        t = torch_tensors(torch, d, grad=names)
        X, Y, W1, b1, W2, b2 = (t[k] for k in ("X", "Y", "W1", "b1", "W2", "b2"))

        def step() -> None:
            for k in names:
                t[k].grad = None
            h = torch.tanh(X @ W1 + b1)
            loss = ((h @ W2 + b2 - Y) ** 2).sum()
            loss.backward()

        return Subject(step, lambda: torch_grads(t, names))

    def autograd_subject() -> Subject:
        peer = ctx.peers.get("autograd")
        anp = peer.np

        def loss(p, X, Y):
            h = anp.tanh(anp.dot(X, p["W1"]) + p["b1"])
            return anp.sum((anp.dot(h, p["W2"]) + p["b2"] - Y) ** 2)

        loss_grad = peer.grad(loss)
        params = {k: d[k] for k in names}
        s: dict[str, Any] = {}

        def step() -> None:
            s["grads"] = loss_grad(params, d["X"], d["Y"])

        return Subject(step, lambda: dict(s["grads"]))

    def micrograd_subject() -> Subject:
        Value = ctx.peers.get("micrograd").Value
        W1 = [[Value(float(w)) for w in row] for row in d["W1"]]
        b1 = [Value(float(b)) for b in d["b1"]]
        W2 = [[Value(float(w)) for w in row] for row in d["W2"]]
        b2 = [Value(float(b)) for b in d["b2"]]
        params = [p for row in W1 for p in row] + b1 + [p for row in W2 for p in row] + b2
        X, Y = d["X"].tolist(), d["Y"].tolist()

        def step() -> None:
            loss = 0
            for xs, ys in zip(X, Y):
                h = [micrograd_tanh(sum((W1[i][j] * xi for i, xi in enumerate(xs)), b1[j])) for j in range(128)]
                out = [sum((W2[j][k] * hj for j, hj in enumerate(h)), b2[k]) for k in range(10)]
                loss = loss + sum((ok - yk) ** 2 for ok, yk in zip(out, ys))
            for p in params:
                p.grad = 0
            loss.backward()

        def gradients() -> dict[str, np.ndarray]:
            return {"W1": as_float([[p.grad for p in row] for row in W1]), "b1": as_float([p.grad for p in b1]),
                    "W2": as_float([[p.grad for p in row] for row in W2]), "b2": as_float([p.grad for p in b2])}

        return Subject(step, gradients, note="scalar Values, tanh in micrograd's style")

    micrograd: Factory | str = micrograd_subject
    if ctx.settings.mode != "full":
        micrograd = "not run in --quick: about 0.6 million scalar Values per step (seconds)"
    yield Case("mlp_small", "64-128-10 tanh, batch 32", {
        "dagprop": dagprop_subject, "numpy": numpy_subject, "jax": jax_subject, "torch": torch_subject,
        "autograd": autograd_subject, "micrograd": micrograd,
    }, note="forward + backward")


def workload_mlp_large(ctx: Context) -> Iterator[Case]:
    """784 -> 1024 -> 1024 -> 10 with ReLU, softmax cross-entropy: forward + backward, BLAS-bound."""
    sizes = ctx.settings.pick((784, 1024, 1024, 10), (784, 1024, 1024, 10), (64, 32, 32, 10))
    batch = ctx.settings.pick(256, 256, 16)
    d = mlp_data(sizes, batch, seed=3, one_hot=True)
    names = param_names(d)
    labels = d["Y"].argmax(axis=1)

    def dagprop_subject() -> Subject:
        g = dp.Graph()
        X, Y = g.input("X", d["X"]), g.input("Y", d["Y"])
        p = {k: g.param(k, d[k]) for k in names}
        h1 = (X @ p["W1"] + p["b1"]).relu()
        h2 = (h1 @ p["W2"] + p["b2"]).relu()
        loss = g.ops.cross_entropy(h2 @ p["W3"] + p["b3"], Y)

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step, lambda: dagprop_grads(p))

    def numpy_subject() -> Subject:
        s: dict[str, np.ndarray] = {}
        X, Y = d["X"], d["Y"]
        W1, b1, W2, b2, W3, b3 = (d[k] for k in names)

        def step() -> None:
            a1 = X @ W1 + b1
            h1 = np.maximum(a1, 0.0)
            a2 = h1 @ W2 + b2
            h2 = np.maximum(a2, 0.0)
            logits = h2 @ W3 + b3
            shifted = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            total = e.sum(axis=1, keepdims=True)
            s["loss"] = -np.sum(Y * (shifted - np.log(total))) / len(X)
            grad_logits = (e / total - Y) / len(X)
            s["W3"], s["b3"] = h2.T @ grad_logits, grad_logits.sum(axis=0)
            grad_a2 = (grad_logits @ W3.T) * (a2 > 0)
            s["W2"], s["b2"] = h1.T @ grad_a2, grad_a2.sum(axis=0)
            grad_a1 = (grad_a2 @ W2.T) * (a1 > 0)
            s["W1"], s["b1"] = X.T @ grad_a1, grad_a1.sum(axis=0)

        return Subject(step, lambda: {k: s[k] for k in names})

    def jax_subject() -> Subject:
        peer = ctx.peers.get("jax")
        jax, jnp = peer.jax, peer.jnp

        def loss(p, X, Y):
            h1 = jax.nn.relu(X @ p["W1"] + p["b1"])
            h2 = jax.nn.relu(h1 @ p["W2"] + p["b2"])
            return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(h2 @ p["W3"] + p["b3"]), axis=1))

        grad = jax.jit(jax.grad(loss))
        params = {k: jnp.asarray(d[k]) for k in names}
        step, state = jax_step(peer, grad, params, jnp.asarray(d["X"]), jnp.asarray(d["Y"]))
        return Subject(step, lambda: {k: np.asarray(v) for k, v in state["out"].items()})

    def torch_subject() -> Subject:
        torch = ctx.peers.get("torch")
        t = torch_tensors(torch, {k: d[k] for k in ["X", *names]}, grad=names)
        target = torch.tensor(labels)
        cross_entropy = torch.nn.functional.cross_entropy

        def step() -> None:
            for k in names:
                t[k].grad = None
            h1 = torch.relu(t["X"] @ t["W1"] + t["b1"])
            h2 = torch.relu(h1 @ t["W2"] + t["b2"])
            loss = cross_entropy(h2 @ t["W3"] + t["b3"], target)
            loss.backward()

        return Subject(step, lambda: torch_grads(t, names))

    def autograd_subject() -> Subject:
        peer = ctx.peers.get("autograd")
        anp = peer.np

        def loss(p, X, Y):
            h1 = anp.maximum(anp.dot(X, p["W1"]) + p["b1"], 0.0)
            h2 = anp.maximum(anp.dot(h1, p["W2"]) + p["b2"], 0.0)
            logits = anp.dot(h2, p["W3"]) + p["b3"]
            log_probs = logits - peer.logsumexp(logits, axis=1, keepdims=True)
            return -anp.sum(Y * log_probs) / X.shape[0]

        loss_grad = peer.grad(loss)
        params = {k: d[k] for k in names}
        s: dict[str, Any] = {}

        def step() -> None:
            s["grads"] = loss_grad(params, d["X"], d["Y"])

        return Subject(step, lambda: dict(s["grads"]))

    name = f"{'-'.join(map(str, sizes))}, batch {batch}" + ("" if SINGLE_THREADED else ", default threads")
    yield Case("mlp_large", name, {
        "dagprop": dagprop_subject, "numpy": numpy_subject, "jax": jax_subject, "torch": torch_subject,
        "autograd": autograd_subject,
        "micrograd": "not run: about 10^9 scalar Values per step",
    }, note="forward + backward")


# -- 4. moons: micrograd's demo -----------------------------------------------------------------


MOONS_ALPHA = 1e-4


def make_moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, labels -1 and 1 (the data of micrograd's demo, without sklearn)."""
    n_out, n_in = n // 2, n - n // 2
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], axis=1)
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5],
                     axis=1)
    X = np.concatenate([outer, inner]) + rng.normal(scale=noise, size=(n, 2))
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)]) * 2 - 1
    return X, y


def workload_moons(ctx: Context) -> Iterator[Case]:
    """MLP 2 -> 16 -> 16 -> 1 (ReLU) on 100 points, hinge loss + L2: one forward + backward."""
    rng = np.random.default_rng(1337)
    n = ctx.settings.pick(100, 100, 20)
    X, y = make_moons(n, 0.1, rng)
    sizes = (2, 16, 16, 1)
    d: dict[str, np.ndarray] = {"X": X, "Y": y[:, None]}
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        d[f"W{layer}"] = rng.uniform(-1, 1, size=(n_in, n_out))  # micrograd's initialisation
        d[f"b{layer}"] = np.zeros(n_out)
    names = param_names(d)

    def dagprop_subject() -> Subject:
        g = dp.Graph()
        X_, Y_ = g.input("X", d["X"]), g.input("Y", d["Y"])
        p = {k: g.param(k, d[k]) for k in names}
        h1 = (X_ @ p["W1"] + p["b1"]).relu()
        h2 = (h1 @ p["W2"] + p["b2"]).relu()
        scores = h2 @ p["W3"] + p["b3"]
        data_loss = (1 - Y_ * scores).relu().mean()
        reg_loss = (p["W1"] * p["W1"]).sum()
        for k in names[1:]:
            reg_loss = reg_loss + (p[k] * p[k]).sum()
        loss = data_loss + MOONS_ALPHA * reg_loss

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step, lambda: dagprop_grads(p))

    def numpy_subject() -> Subject:
        s: dict[str, np.ndarray] = {}
        X_, Y_ = d["X"], d["Y"]
        W1, b1, W2, b2, W3, b3 = (d[k] for k in names)

        def step() -> None:
            a1 = X_ @ W1 + b1
            h1 = np.maximum(a1, 0.0)
            a2 = h1 @ W2 + b2
            h2 = np.maximum(a2, 0.0)
            scores = h2 @ W3 + b3
            margins = 1.0 - Y_ * scores
            s["loss"] = np.maximum(margins, 0.0).mean() + MOONS_ALPHA * sum(np.sum(d[k] ** 2) for k in names)
            grad_scores = -Y_ * (margins > 0) / len(X_)
            s["W3"], s["b3"] = h2.T @ grad_scores, grad_scores.sum(axis=0)
            grad_a2 = (grad_scores @ W3.T) * (a2 > 0)
            s["W2"], s["b2"] = h1.T @ grad_a2, grad_a2.sum(axis=0)
            grad_a1 = (grad_a2 @ W2.T) * (a1 > 0)
            s["W1"], s["b1"] = X_.T @ grad_a1, grad_a1.sum(axis=0)
            for k in names:
                s[k] = s[k] + 2 * MOONS_ALPHA * d[k]

        return Subject(step, lambda: {k: s[k] for k in names})

    def jax_subject() -> Subject:
        peer = ctx.peers.get("jax")
        jax, jnp = peer.jax, peer.jnp

        def loss(p, X_, Y_):
            h1 = jax.nn.relu(X_ @ p["W1"] + p["b1"])
            h2 = jax.nn.relu(h1 @ p["W2"] + p["b2"])
            scores = h2 @ p["W3"] + p["b3"]
            return jnp.mean(jax.nn.relu(1 - Y_ * scores)) + MOONS_ALPHA * sum(jnp.sum(w * w) for w in p.values())

        grad = jax.jit(jax.grad(loss))
        params = {k: jnp.asarray(d[k]) for k in names}
        step, state = jax_step(peer, grad, params, jnp.asarray(d["X"]), jnp.asarray(d["Y"]))
        return Subject(step, lambda: {k: np.asarray(v) for k, v in state["out"].items()})

    def torch_subject() -> Subject:
        torch = ctx.peers.get("torch")
        t = torch_tensors(torch, d, grad=names)

        def step() -> None:
            for k in names:
                t[k].grad = None
            h1 = torch.relu(t["X"] @ t["W1"] + t["b1"])
            h2 = torch.relu(h1 @ t["W2"] + t["b2"])
            scores = h2 @ t["W3"] + t["b3"]
            data_loss = torch.relu(1 - t["Y"] * scores).mean()
            reg_loss = sum((t[k] * t[k]).sum() for k in names)
            loss = data_loss + MOONS_ALPHA * reg_loss
            loss.backward()

        return Subject(step, lambda: torch_grads(t, names))

    def autograd_subject() -> Subject:
        peer = ctx.peers.get("autograd")
        anp = peer.np

        def loss(p, X_, Y_):
            h1 = anp.maximum(anp.dot(X_, p["W1"]) + p["b1"], 0.0)
            h2 = anp.maximum(anp.dot(h1, p["W2"]) + p["b2"], 0.0)
            scores = anp.dot(h2, p["W3"]) + p["b3"]
            data_loss = anp.mean(anp.maximum(1 - Y_ * scores, 0.0))
            return data_loss + MOONS_ALPHA * sum(anp.sum(w * w) for w in p.values())

        loss_grad = peer.grad(loss)
        params = {k: d[k] for k in names}
        s: dict[str, Any] = {}

        def step() -> None:
            s["grads"] = loss_grad(params, d["X"], d["Y"])

        return Subject(step, lambda: dict(s["grads"]))

    def micrograd_subject() -> Subject:
        mg = ctx.peers.get("micrograd")
        Value = mg.Value
        model = mg.nn.MLP(2, [16, 16, 1])
        for layer, layer_of_neurons in enumerate(model.layers, start=1):  # the same weights as the others
            for j, neuron in enumerate(layer_of_neurons.neurons):
                for i, w in enumerate(neuron.w):
                    w.data = float(d[f"W{layer}"][i, j])
                neuron.b.data = float(d[f"b{layer}"][j])
        Xs, ys = d["X"].tolist(), y.tolist()

        def step() -> None:
            # micrograd's demo: loss() then zero_grad() and backward()
            inputs = [list(map(Value, xrow)) for xrow in Xs]
            scores = list(map(model, inputs))
            losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]
            data_loss = sum(losses) * (1.0 / len(losses))
            reg_loss = MOONS_ALPHA * sum((p * p for p in model.parameters()))
            total_loss = data_loss + reg_loss
            model.zero_grad()
            total_loss.backward()

        def gradients() -> dict[str, np.ndarray]:
            grads = {}
            for layer, layer_of_neurons in enumerate(model.layers, start=1):
                neurons = layer_of_neurons.neurons
                grads[f"W{layer}"] = as_float([[n.w[i].grad for n in neurons] for i in range(len(neurons[0].w))])
                grads[f"b{layer}"] = as_float([n.b.grad for n in neurons])
            return grads

        return Subject(step, gradients, note="micrograd.nn.MLP with scalar Values, as in its demo")

    yield Case("moons", f"2-16-16-1 relu, {n} points", {
        "dagprop": dagprop_subject, "numpy": numpy_subject, "jax": jax_subject, "torch": torch_subject,
        "autograd": autograd_subject, "micrograd": micrograd_subject,
    }, note="forward + backward")


# -- 5. deep_chain ---------------------------------------------------------------------------------


def workload_deep_chain(ctx: Context) -> Iterator[Case]:
    """y = tanh(tanh(...tanh(x))) on an 8-vector at several depths: forward + backward, time per node."""
    depths = ctx.settings.pick((1_000, 10_000, 100_000), (1_000, 10_000), (100, 300))
    x0 = np.random.default_rng(5).uniform(-1, 1, size=8)
    for depth in depths:
        yield Case("deep_chain", f"depth {depth:,}", deep_chain_factories(ctx, depth, x0), per="node",
                   divisor=depth, note="forward + backward, loss = sum(y)")


def deep_chain_factories(ctx: Context, depth: int, x0: np.ndarray) -> dict[str, Factory | str]:
    def dagprop_subject() -> Subject:
        g = dp.Graph()
        x = g.param("x", x0)
        y = x
        for _ in range(depth):
            y = y.tanh()
        loss = y.sum()

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step, lambda: {"x": np.array(x.grad)})

    def numpy_subject() -> Subject:
        s: dict[str, Any] = {}

        def step() -> None:
            outputs = []
            y = x0
            for _ in range(depth):
                y = np.tanh(y)
                outputs.append(y)
            grad = np.ones_like(y)
            for y in reversed(outputs):
                grad = grad * (1.0 - y * y)
            s["x"] = grad

        return Subject(step, lambda: {"x": s["x"]})

    def torch_subject() -> Subject:
        torch = ctx.peers.get("torch")
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)

        def step() -> None:
            x.grad = None
            y = x
            for _ in range(depth):
                y = torch.tanh(y)
            y.sum().backward()

        return Subject(step, lambda: {"x": x.grad.numpy().copy()})

    def autograd_subject() -> Subject:
        peer = ctx.peers.get("autograd")
        anp = peer.np

        def chain(x):
            for _ in range(depth):
                x = anp.tanh(x)
            return anp.sum(x)

        chain_grad = peer.grad(chain)
        s: dict[str, Any] = {}

        def step() -> None:
            s["x"] = chain_grad(x0)

        return Subject(step, lambda: {"x": s["x"]})

    def micrograd_subject() -> Subject:
        # micrograd has scalars only: the same chain on one element, so its row shows
        # whether it can run the depth at all rather than a comparable time
        Value = ctx.peers.get("micrograd").Value
        x = Value(float(x0[0]))

        def step() -> None:
            y = x
            for _ in range(depth):
                y = micrograd_tanh(y)
            x.grad = 0
            y.backward()

        return Subject(step, note="one scalar, not 8 elements; tanh in micrograd's style")

    return {"dagprop": dagprop_subject, "numpy": numpy_subject, "torch": torch_subject,
            "autograd": autograd_subject, "micrograd": micrograd_subject,
            "jax": "not run: jax.jit of this Python loop unrolls every tanh into one XLA program; "
                   "JAX users would write lax.scan, a different program"}


# -- 6. wide_dag -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomDag:
    """A random DAG of elementwise ops: node i < inputs is an input, node inputs + k is ``ops[k]``.

    Each op is (name, a, b) with b = -1 for tanh. Values stay bounded: add, sub and mul take
    operands in [-1, 1] (inputs, tanh and mul outputs), and add/sub outputs feed only tanh.
    Operands come half from the oldest unconsumed node (so nearly every node reaches the
    output) and half from the recent ones (so many nodes are shared and paths multiply).
    The last ops add up whatever was left unconsumed; the output is the last node.
    """

    inputs: int
    ops: tuple[tuple[str, int, int], ...]

    @classmethod
    def generate(cls, n_ops: int, *, inputs: int = 4, seed: int = 0, window: int = 64) -> RandomDag:
        rng = np.random.default_rng(seed)
        bounded = list(range(inputs))  # nodes with values in [-1, 1]
        waiting_bounded: deque[int] = deque(range(inputs))  # maybe unconsumed, oldest first
        waiting_wide: deque[int] = deque()  # maybe unconsumed add/sub outputs, which only tanh may take
        unconsumed = set(range(inputs))
        unconsumed_wide: set[int] = set()
        ops: list[tuple[str, int, int]] = []

        def oldest(queue: deque[int]) -> int | None:
            while queue and queue[0] not in unconsumed:
                queue.popleft()
            return queue[0] if queue else None

        def recent_bounded() -> int:
            return bounded[-1 - int(rng.integers(0, min(window, len(bounded))))]

        def pick_bounded() -> int:
            first = oldest(waiting_bounded) if rng.random() < 0.5 else None
            return first if first is not None else recent_bounded()

        # the leftovers cost one tanh per wide node and one add per node but the first
        while len(ops) + len(unconsumed_wide) + len(unconsumed) - 1 < n_ops:
            index = inputs + len(ops)
            wide = oldest(waiting_wide)
            if wide is not None and rng.random() < 0.5:
                op = ("tanh", wide, -1)
            else:
                name = ("add", "sub", "mul", "tanh")[int(rng.integers(0, 4))]
                op = (name, pick_bounded(), recent_bounded() if name != "tanh" else -1)
            ops.append(op)
            for operand in op[1:]:
                unconsumed.discard(operand)
                unconsumed_wide.discard(operand)
            unconsumed.add(index)
            if op[0] in ("add", "sub"):
                waiting_wide.append(index)
                unconsumed_wide.add(index)
            else:
                bounded.append(index)
                waiting_bounded.append(index)
        leftovers = []
        for node in sorted(unconsumed):
            if node in unconsumed_wide:
                ops.append(("tanh", node, -1))
                node = inputs + len(ops) - 1
            leftovers.append(node)
        total = leftovers[0]
        for node in leftovers[1:]:
            ops.append(("add", total, node))
            total = inputs + len(ops) - 1
        return cls(inputs, tuple(ops))

    @property
    def output(self) -> int:
        return self.inputs + len(self.ops) - 1

    def count_paths(self) -> int:
        """Paths from any input to the output (each argument slot its own path), exact."""
        counts = [1] * self.inputs
        for name, a, b in self.ops:
            counts.append(counts[a] + (counts[b] if b >= 0 else 0))
        return counts[-1]

    def shared_nodes(self) -> int:
        uses = [0] * (self.inputs + len(self.ops))
        for _, a, b in self.ops:
            uses[a] += 1
            if b >= 0:
                uses[b] += 1
        return sum(1 for u in uses if u > 1)

    def build_dagprop(self, values: list[np.ndarray]) -> tuple[dp.Graph, list[dp.Node], dp.Node]:
        """The DAG as a dagprop graph; the loss sums the output's elements."""
        g = dp.Graph()
        nodes = [g.param(f"x{i}", v) for i, v in enumerate(values)]
        for name, a, b in self.ops:
            if name == "tanh":
                nodes.append(nodes[a].tanh())
            elif name == "add":
                nodes.append(nodes[a] + nodes[b])
            elif name == "sub":
                nodes.append(nodes[a] - nodes[b])
            else:
                nodes.append(nodes[a] * nodes[b])
        loss = nodes[-1].sum() if np.ndim(values[0]) else nodes[-1]
        return g, nodes[: self.inputs], loss


def describe_count(n: int) -> str:
    return f"{n:,}" if n < 10**6 else f"about 10^{len(str(n)) - 1}"


def workload_wide_dag(ctx: Context) -> Iterator[Case]:
    """A random DAG of elementwise ops on 8-element vectors with many shared nodes: per node."""
    n_ops = ctx.settings.pick(10_000, 10_000, 300)
    dag = RandomDag.generate(n_ops, seed=6)
    rng = np.random.default_rng(6)
    values = [rng.uniform(-1, 1, size=8) for _ in range(dag.inputs)]
    names = [f"x{i}" for i in range(dag.inputs)]
    ops = dag.ops

    def dagprop_subject() -> Subject:
        g, inputs, loss = dag.build_dagprop(values)

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step, lambda: {n: np.array(x.grad) for n, x in zip(names, inputs)})

    def numpy_subject() -> Subject:
        s: dict[str, Any] = {}
        inputs = dag.inputs

        def step() -> None:
            v = list(values)
            for name, a, b in ops:
                if name == "tanh":
                    v.append(np.tanh(v[a]))
                elif name == "add":
                    v.append(v[a] + v[b])
                elif name == "sub":
                    v.append(v[a] - v[b])
                else:
                    v.append(v[a] * v[b])
            s["loss"] = v[-1].sum()
            grads: list[Any] = [None] * len(v)
            grads[-1] = np.ones_like(v[-1])
            for k in range(len(ops) - 1, -1, -1):
                g = grads[inputs + k]
                if g is None:
                    continue
                name, a, b = ops[k]
                if name == "tanh":
                    out = v[inputs + k]
                    pairs = ((a, g * (1.0 - out * out)),)
                elif name == "add":
                    pairs = ((a, g), (b, g))
                elif name == "sub":
                    pairs = ((a, g), (b, -g))
                else:
                    pairs = ((a, g * v[b]), (b, g * v[a]))
                for j, contribution in pairs:
                    grads[j] = contribution if grads[j] is None else grads[j] + contribution
            s["grads"] = grads[:inputs]

        return Subject(step, lambda: dict(zip(names, s["grads"])))

    def torch_subject() -> Subject:
        torch = ctx.peers.get("torch")
        leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]

        def step() -> None:
            for leaf in leaves:
                leaf.grad = None
            v = list(leaves)
            for name, a, b in ops:
                if name == "tanh":
                    v.append(torch.tanh(v[a]))
                elif name == "add":
                    v.append(v[a] + v[b])
                elif name == "sub":
                    v.append(v[a] - v[b])
                else:
                    v.append(v[a] * v[b])
            v[-1].sum().backward()

        return Subject(step, lambda: {n: leaf.grad.numpy().copy() for n, leaf in zip(names, leaves)})

    def autograd_subject() -> Subject:
        peer = ctx.peers.get("autograd")
        anp = peer.np

        def dag_output(leaves):
            v = list(leaves)
            for name, a, b in ops:
                if name == "tanh":
                    v.append(anp.tanh(v[a]))
                elif name == "add":
                    v.append(v[a] + v[b])
                elif name == "sub":
                    v.append(v[a] - v[b])
                else:
                    v.append(v[a] * v[b])
            return anp.sum(v[-1])

        dag_grad = peer.grad(dag_output)
        s: dict[str, Any] = {}

        def step() -> None:
            s["grads"] = dag_grad(list(values))

        return Subject(step, lambda: dict(zip(names, s["grads"])))

    yield Case("wide_dag", f"{len(ops):,} ops on 8-vectors", {
        "dagprop": dagprop_subject, "numpy": numpy_subject, "torch": torch_subject, "autograd": autograd_subject,
        "jax": "not run: jax.jit would unroll the 10,000 ops into one XLA program (compile time dominates)",
        "micrograd": "not run: micrograd has scalars only",
    }, per="node", divisor=len(ops) + 1,
        note=f"{dag.shared_nodes():,} shared nodes, {describe_count(dag.count_paths())} input-output paths")


# -- 7. jacobian_route ---------------------------------------------------------------------------------


JACOBIAN_MEMORY_CAP = 3 * 2**30  # bytes; above this the explicit-Jacobian route is not attempted


def workload_jacobian_route(ctx: Context) -> Iterator[Case]:
    """The 3-layer ReLU network of 004_611d4e7e260de33e.txt, backward via Jacobians and via vjps."""
    widths = ctx.settings.pick((16, 64, 256, 512, 1024), (16, 64, 256), (4, 8))
    for width in widths:
        yield jacobian_route_case(width)


def jacobian_route_case(width: int) -> Case:
    rng = np.random.default_rng(width)
    d = {"x": rng.normal(size=(1, width)), "y": rng.normal(size=(1, width))}
    for layer in (1, 2, 3):
        d[f"W{layer}"] = rng.normal(size=(width, width)) / np.sqrt(width)
        d[f"b{layer}"] = rng.normal(size=width) * 0.1
    names = [k for k in d if k[0] in "Wb"]

    def dagprop_subject(mode: str) -> Factory:
        def build() -> Subject:
            g = dp.Graph()
            h = g.input("x", d["x"])
            p = {k: g.param(k, d[k]) for k in names}
            a1 = g.ops.linear(h, p["W1"], p["b1"])
            a2 = g.ops.linear(a1.relu(), p["W2"], p["b2"])
            f = g.ops.linear(a2.relu(), p["W3"], p["b3"])
            loss = g.ops.l2_loss(f, g.input("y", d["y"]))

            def step() -> None:
                g.zero_grad()
                g.forward()
                g.backward(loss, mode=mode)

            return Subject(step, lambda: dagprop_grads(p))

        return build

    def numpy_subject() -> Subject:
        s: dict[str, np.ndarray] = {}
        x, y = d["x"], d["y"]
        W1, b1, W2, b2, W3, b3 = (d[k] for k in names)

        def step() -> None:
            a1 = x @ W1 + b1
            h1 = np.maximum(a1, 0.0)
            a2 = h1 @ W2 + b2
            h2 = np.maximum(a2, 0.0)
            f = h2 @ W3 + b3
            s["loss"] = 0.5 * np.sum((f - y) ** 2)
            grad_f = f - y
            s["W3"], s["b3"] = h2.T @ grad_f, grad_f.sum(axis=0)
            grad_a2 = (grad_f @ W3.T) * (a2 > 0)
            s["W2"], s["b2"] = h1.T @ grad_a2, grad_a2.sum(axis=0)
            grad_a1 = (grad_a2 @ W2.T) * (a1 > 0)
            s["W1"], s["b1"] = x.T @ grad_a1, grad_a1.sum(axis=0)

        return Subject(step, lambda: {k: s[k] for k in names})

    # dA/dW of one linear layer holds width * width^2 numbers, and building it from the vjp
    # keeps the columns and their stack at once
    jacobian_bytes = 2 * width ** 3 * 8
    jacobian: Factory | str = dagprop_subject("jacobian")
    if jacobian_bytes > JACOBIAN_MEMORY_CAP:
        jacobian = (f"not run: the explicit dA/dW of one layer has {width}^3 = {width ** 3:.2g} entries "
                    f"(about {jacobian_bytes / 2**30:.0f} GiB to build), over the {JACOBIAN_MEMORY_CAP / 2**30:.0f} GiB cap")
    return Case("jacobian_route", f"width {width}", {
        "dagprop vjp": dagprop_subject("vjp"), "dagprop jacobian": jacobian, "numpy": numpy_subject,
    }, baseline="dagprop vjp", note="forward + backward, batch 1")


# -- 8. render ---------------------------------------------------------------------------------------


def workload_render(ctx: Context) -> Iterator[Case]:
    """Annotated diagrams of 50-, 200- and 1,000-node graphs: DOT text, and SVG through Graphviz."""
    sizes = ctx.settings.pick((50, 200, 1_000), (50, 200, 1_000), (20,))
    available = importlib.util.find_spec("dagprop.render") is not None and hasattr(dp, "to_dot")
    for size in sizes:
        if not available:
            reason = "not run: dagprop.render (dp.to_dot, dp.render) is not in this checkout yet"
            yield Case("render", f"{size:,} nodes", {"dagprop DOT": reason, "dagprop SVG": reason}, reference=None)
            continue
        yield render_case(ctx, size)


def annotated_graph(n_nodes: int, seed: int, shape: tuple[int, ...] = (3,)) -> tuple[dp.Graph, dp.Node]:
    """A random DAG of about ``n_nodes`` nodes with values and gradients filled in."""
    dag = RandomDag.generate(max(4, n_nodes - 5), seed=seed)  # 4 inputs and the sum besides the ops
    rng = np.random.default_rng(seed)
    g, _, loss = dag.build_dagprop([rng.uniform(-1, 1, size=shape) for _ in range(dag.inputs)])
    g.forward()
    g.backward(loss)
    return g, loss


def render_case(ctx: Context, size: int) -> Case:
    def dot_subject() -> Subject:
        g, _ = annotated_graph(size, seed=size)
        caught: list[str] = []
        text: list[str] = [""]

        def step() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                text[0] = dp.to_dot(g)
            caught[:] = sorted({_shorten(str(w.message), 100) for w in seen})

        def late() -> str:
            return f"{len(text[0]):,} chars of DOT" + (f"; warned: {'; '.join(caught)}" if caught else "")

        return Subject(step, note=f"{len(g)} nodes", late_note=late)

    def svg_subject() -> Subject:
        g, _ = annotated_graph(size, seed=size)
        path = ctx.tmp / f"render_{size}.svg"
        caught: list[str] = []

        def step() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                dp.render(g, path)
            caught[:] = sorted({_shorten(str(w.message), 100) for w in seen})

        def late() -> str:
            kib = path.stat().st_size / 1024 if path.exists() else 0
            return f"{kib:,.0f} KiB SVG" + (f"; warned: {'; '.join(caught)}" if caught else "")

        return Subject(step, note=f"{len(g)} nodes", late_note=late)

    svg: Factory | str = svg_subject
    if size > 300 and ctx.settings.mode == "quick":
        svg = "not run in --quick (the full run measures it)"
    return Case("render", f"{size:,} nodes", {"dagprop DOT": dot_subject, "dagprop SVG": svg}, per="call",
                reference=None, baseline="dagprop DOT", note="values and gradients annotated")


# -- 9. paths -----------------------------------------------------------------------------------------


def workload_paths(ctx: Context) -> Iterator[Case]:
    """count_paths, top_paths and element_graph on graphs with very many paths or elements."""
    if importlib.util.find_spec("dagprop.paths") is None:
        reason = "not run: dagprop.paths is not in this checkout yet"
        for name in ("count_paths ladder", "top_paths k=10", "element_graph 4-4-2", "element_graph mlp_small"):
            yield Case("paths", name, {"dagprop": reason}, reference=None)
        return
    stages = ctx.settings.pick(60, 60, 10)
    yield single_call_case("paths", f"count_paths, ladder of 2^{stages} paths", lambda: ladder_subject(stages))
    top_nodes = ctx.settings.pick(5_000, 5_000, 200)
    yield single_call_case("paths", f"top_paths k=10, {top_nodes:,} nodes", lambda: top_paths_subject(top_nodes))
    yield single_call_case("paths", "element_graph, 4-4-2 MLP", element_graph_442_subject)
    batch = ctx.settings.pick(32, 32, 2)
    name = f"element_graph, mlp_small (batch {batch})"
    if ctx.settings.mode == "quick":
        yield Case("paths", name, {"dagprop": "not run in --quick: seconds (the full run measures it)"},
                   reference=None)
    else:
        yield single_call_case("paths", name, lambda: element_graph_mlp_small_subject(batch))


def single_call_case(workload: str, name: str, factory: Factory) -> Case:
    return Case(workload, name, {"dagprop": factory}, per="call", reference=None)


def ladder_subject(stages: int) -> Subject:
    """x_{k+1} = tanh(x_k) + sigmoid(x_k): two paths per stage, 2**stages from x_0 to the end."""
    g = dp.Graph()
    x0 = x = g.param("x0", 0.3)
    for _ in range(stages):
        x = x.tanh() + x.sigmoid()
    g.forward()
    g.backward(x)
    result: dict[str, int] = {}

    def step() -> None:
        result["count"] = g.count_paths(x0, x)

    def late() -> str:
        count = result["count"]
        verdict = "correct" if count == 2 ** stages else f"WRONG, want 2^{stages} = {2 ** stages}"
        return f"{len(g)} nodes; returned {count} ({verdict})"

    return Subject(step, late_note=late)


def top_paths_subject(n_nodes: int) -> Subject:
    dag = RandomDag.generate(n_nodes - 4, seed=9)
    rng = np.random.default_rng(9)
    g, inputs, loss = dag.build_dagprop([rng.uniform(-1, 1, size=()) for _ in range(dag.inputs)])
    g.forward()
    g.backward(loss)
    result: dict[str, Any] = {}

    def step() -> None:
        result["paths"] = g.top_paths(inputs[0], loss, 10)

    def late() -> str:
        largest = max(abs(float(p.contribution)) for p in result["paths"])
        return (f"{len(g):,} scalar nodes, {describe_count(dag.count_paths())} paths in all; "
                f"largest path carries {largest:.3g} of the gradient {float(inputs[0].grad):.3g}")

    return Subject(step, late_note=late)


def element_graph_subject(g: dp.Graph) -> Subject:
    result: dict[str, Any] = {}

    def step() -> None:
        result["graph"] = g.element_graph()

    def late() -> str:
        eg = result["graph"]
        return f"{eg.number_of_nodes():,} element nodes, {eg.number_of_edges():,} edges"

    return Subject(step, late_note=late)


def element_graph_442_subject() -> Subject:
    """The 4-4-2 network of 003_285517187f335468.txt: sigmoid hidden layer, softmax output, squared error."""
    g = dp.Graph()
    x = g.input("x", [[2], [5], [3], [3]])
    W1 = g.param("W1", [[0.1, 0.3, 0.8, -0.4], [-0.3, -0.2, 0.5, 0.5], [-0.3, 0, 0.5, 0.4], [0.2, 0.5, -0.9, 0.7]])
    W2 = g.param("W2", [[0.5, 0.8, 0.2, 0.4], [0.5, 0.2, 0.3, -0.5]])
    b1, b2 = g.param("b1", 0.5), g.param("b2", 0.3)
    y_hat = (W2 @ (W1 @ x + b1).sigmoid() + b2).softmax(axis=0)
    loss = g.ops.squared_error(y_hat, g.input("y", [[1], [0]]))
    g.forward()
    g.backward(loss)
    return element_graph_subject(g)


def element_graph_mlp_small_subject(batch: int) -> Subject:
    d = mlp_data((64, 128, 10), batch, seed=2, one_hot=False)
    g = dp.Graph()
    p = {k: g.param(k, d[k]) for k in param_names(d)}
    h = (g.input("X", d["X"]) @ p["W1"] + p["b1"]).tanh()
    loss = g.ops.squared_error(h @ p["W2"] + p["b2"], g.input("Y", d["Y"]))
    g.forward()
    g.backward(loss)
    return element_graph_subject(g)


# -- 10. memory --------------------------------------------------------------------------------------


def workload_memory(ctx: Context) -> Iterator[Row]:
    """Peak traced memory of forward(retain=True) against forward(retain=False), per depth."""
    depths = ctx.settings.pick((10, 100), (10, 100), (3, 10))
    width, batch = ctx.settings.pick((256, 64), (256, 64), (16, 8))
    layer_bytes = width * batch * 8
    if not _selected("dagprop", ctx.systems):
        return
    for depth in depths:
        case = f"{depth}-layer MLP, {batch}x{width}"
        peaks = {}
        for retain in (True, False):
            row = Row("memory", case, f"dagprop retain={retain}", "ok", metric="memory", per="forward")
            try:
                measured = [peak_forward_bytes(depth, width, batch, retain) for _ in range(3)]
            except Exception as exc:
                row.status, row.note = "failed", f"fails: {type(exc).__name__}: {_shorten(str(exc))}"
                yield row
                continue
            row.value = float(np.median(measured))
            row.samples = measured
            row.spread = spread(measured)
            layers = row.value / layer_bytes
            peaks[retain] = row.value
            row.extra = {"layer_bytes": layer_bytes, "layers": layers, "depth": depth}
            row.note = f"= {layers:.1f} layers' activations (one layer: {batch}x{width} float64 = {layer_bytes / 1024:.0f} KiB)"
            yield row


def peak_forward_bytes(depth: int, width: int, batch: int, retain: bool) -> int:
    """Peak bytes allocated during one forward pass of a fresh depth-layer tanh MLP (tracemalloc)."""
    rng = np.random.default_rng(depth)
    g = dp.Graph()
    h = g.input("X", rng.normal(size=(batch, width)))
    for layer in range(depth):
        W = g.param(f"W{layer}", rng.normal(size=(width, width)) / np.sqrt(width))
        b = g.param(f"b{layer}", np.zeros(width))
        h = (h @ W + b).tanh()
    g.forward(retain=False)  # plans the run outside the measurement, and keeps only the output
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        g.forward(retain=retain)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# -- the workloads, in the issue's order -----------------------------------------------------------------


WORKLOADS: dict[str, Callable[[Context], Iterator[Case | Row]]] = {
    "seed_v": workload_seed_v,
    "mlp_small": workload_mlp_small,
    "mlp_large": workload_mlp_large,
    "moons": workload_moons,
    "deep_chain": workload_deep_chain,
    "wide_dag": workload_wide_dag,
    "jacobian_route": workload_jacobian_route,
    "render": workload_render,
    "paths": workload_paths,
    "memory": workload_memory,
}


def run_workloads(names: list[str], ctx: Context, echo: Callable[[Row], None],
                  durations: dict[str, float]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        started = time.perf_counter()
        for item in WORKLOADS[name](ctx):
            produced = [item] if isinstance(item, Row) else run_case(item, ctx)
            if isinstance(item, Case) and item.note:
                for row in produced:
                    row.extra.setdefault("case_note", item.note)
            for row in produced:
                echo(row)
            rows.extend(produced)
            gc.collect()
        durations[name] = round(time.perf_counter() - started, 1)
    return rows


# -- targets ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured in this run


def find(rows: list[Row], workload: str, system: str = "dagprop", case: str | None = None) -> list[Row]:
    return [r for r in rows if r.workload == workload and r.system == system and (case is None or case in r.case)]


def evaluate_targets(rows: list[Row]) -> list[Target]:
    targets: list[Target] = []
    for workload in ("seed_v", "mlp_small", "moons", "deep_chain", "wide_dag"):
        targets.append(ratio_target(rows, workload, 2.0))
    targets.append(ratio_target(rows, "mlp_large", 1.05))
    targets.append(deep_chain_flat_target(rows))
    targets.append(jacobian_target(rows))
    targets.extend(render_targets(rows))
    targets.extend(paths_targets(rows))
    targets.append(memory_target(rows))
    return targets


def ratio_target(rows: list[Row], workload: str, limit: float) -> Target:
    wanted = f"dagprop at most {limit:g}x the NumPy floor"
    found = [r for r in find(rows, workload) if "default threads" not in r.case]
    if not found:
        return Target(workload, wanted, "not run", None)
    bad = [r for r in found if r.status != "ok" or r.ratio_numpy is None]
    if bad:
        return Target(workload, wanted, "; ".join(f"{r.case}: {r.status} {r.note}" for r in bad), False)
    parts = [f"{r.ratio_numpy:.3g}x" + (f" ({r.case})" if len(found) > 1 else "") for r in found]
    return Target(workload, wanted, ", ".join(parts), all(r.ratio_numpy <= limit for r in found))


def deep_chain_flat_target(rows: list[Row]) -> Target:
    wanted = "time per node flat from 1,000 to 100,000 nodes (max/min within 1.5x), no failure"
    found = find(rows, "deep_chain")
    if not found:
        return Target("deep_chain depth", wanted, "not run", None)
    failed = [r for r in found if r.status != "ok"]
    if failed:
        return Target("deep_chain depth", wanted, "; ".join(f"{r.case} {r.status}: {r.note}" for r in failed), False)
    per_node = [r.value for r in found]
    ratio = max(per_node) / min(per_node)
    depths = ", ".join(f"{r.case.split()[-1]}: {format_seconds(r.value)}" for r in found)
    complete = len(found) >= 3
    measured = f"max/min {ratio:.2f} ({depths})" + ("" if complete else "; 100,000 not run in this mode")
    return Target("deep_chain depth", wanted, measured, ratio <= 1.5 if complete else None)


def jacobian_target(rows: list[Row]) -> Target:
    wanted = "both routes give the same gradients; the table shows the D^2 against D growth"
    found = find(rows, "jacobian_route", "dagprop jacobian") + find(rows, "jacobian_route", "dagprop vjp")
    if not found:
        return Target("jacobian_route", wanted, "not run", None)
    bad = [r for r in found if r.status in ("wrong", "failed")]
    ran = [r for r in found if r.status == "ok"]
    times = {system: {width_of(r.case): r.value for r in find(rows, "jacobian_route", system) if r.status == "ok"}
             for system in ("dagprop vjp", "dagprop jacobian")}
    both = sorted(set(times["dagprop vjp"]) & set(times["dagprop jacobian"]))
    slopes = []
    if len(both) >= 2:
        low, high = both[-2], both[-1]
        for system, route in times.items():
            slopes.append(f"{system.split()[1]} ~ D^{growth_exponent([(low, route[low]), (high, route[high])]):.1f}")
        slopes[-1] += f" from width {low} to {high}"
    measured = (f"{len(ran)} runs agree with the NumPy floor (so with each other); " + ", ".join(slopes)
                if not bad else "; ".join(f"{r.case} {r.system}: {r.status} {r.note}" for r in bad))
    return Target("jacobian_route", wanted, measured, not bad)


def width_of(case: str) -> int:
    return int(case.split()[-1])


def growth_exponent(points: list[tuple[int, float]]) -> float:
    (w1, t1), (w2, t2) = points[0], points[-1]
    return math.log(t2 / t1) / math.log(w2 / w1)


def render_targets(rows: list[Row]) -> list[Target]:
    svg200 = find(rows, "render", "dagprop SVG", "200 nodes")
    svg1000 = find(rows, "render", "dagprop SVG", "1,000 nodes")
    out = []
    wanted = "200 nodes to SVG under 2 s (first call)"
    if not svg200 or svg200[0].status == "skipped":
        out.append(Target("render 200", wanted, svg200[0].note if svg200 else "not run", None))
    elif svg200[0].status != "ok":
        out.append(Target("render 200", wanted, svg200[0].note, False))
    else:
        r = svg200[0]
        out.append(Target("render 200", wanted, f"first call {format_seconds(r.first_call_seconds)}, median "
                          f"{format_seconds(r.value)}", r.first_call_seconds < 2.0))
    wanted = "1,000 nodes falls back to the collapsed view without a hang"
    if not svg1000 or svg1000[0].status == "skipped":
        out.append(Target("render 1,000", wanted, svg1000[0].note if svg1000 else "not run", None))
    elif svg1000[0].status != "ok":
        out.append(Target("render 1,000", wanted, svg1000[0].note, False))
    else:
        r = svg1000[0]
        collapsed = "warned" in r.note
        out.append(Target("render 1,000", wanted, f"first call {format_seconds(r.first_call_seconds)}; "
                          + ("a fallback warning was given" if collapsed else "no fallback warning seen"),
                          collapsed and r.first_call_seconds < 30.0))
    return out


def paths_targets(rows: list[Row]) -> list[Target]:
    out = []
    for label, case, limit in (("count_paths 2^60", "count_paths", 0.1), ("element_graph mlp_small", "mlp_small", 1.0)):
        found = find(rows, "paths", "dagprop", case)
        wanted = f"under {limit:g} s (first call)"
        if not found or found[0].status == "skipped":
            out.append(Target(label, wanted, found[0].note if found else "not run", None))
            continue
        r = found[0]
        if r.status != "ok":
            out.append(Target(label, wanted, r.note, False))
            continue
        correct = "WRONG" not in r.note
        out.append(Target(label, wanted, f"first call {format_seconds(r.first_call_seconds)}, median "
                          f"{format_seconds(r.value)}" + ("" if correct else "; count WRONG"),
                          correct and r.first_call_seconds < limit))
    return out


def memory_target(rows: list[Row]) -> Target:
    wanted = "retain=False peak within 3 layers' activations at every depth"
    found = [r for r in rows if r.workload == "memory" and r.system == "dagprop retain=False"]
    if not found:
        return Target("memory", wanted, "not run", None)
    if any(r.status != "ok" for r in found):
        return Target("memory", wanted, "; ".join(r.note for r in found if r.status != "ok"), False)
    layers = [(r.extra["depth"], r.extra["layers"]) for r in found]
    measured = ", ".join(f"{depth} layers: {n:.1f}" for depth, n in layers)
    return Target("memory", wanted, measured, all(n <= 3.0 for _, n in layers))


# Peers' multiples of the NumPy floor that the issue measured on this machine: a check on the instrument.
ISSUE_REFERENCE = {
    ("seed_v", "torch"): 11, ("seed_v", "autograd"): 20, ("seed_v", "jax"): 1.6,
    ("mlp_small", "torch"): 3.0, ("mlp_small", "autograd"): 6.4, ("mlp_large", "autograd"): 1.13,
    ("moons", "micrograd"): 7400, ("moons", "autograd"): 14, ("moons", "torch"): 5.5,
    ("deep_chain", "autograd"): 4.4, ("deep_chain", "torch"): 3.1,
    ("wide_dag", "autograd"): 12, ("wide_dag", "torch"): 5,
}


def reference_lines(rows: list[Row]) -> list[str]:
    lines = []
    for (workload, system), issue in ISSUE_REFERENCE.items():
        found = [r for r in find(rows, workload, system) if r.status == "ok" and r.ratio_numpy
                 and "default threads" not in r.case]
        if found:
            now = ", ".join(f"{r.ratio_numpy:.3g}x" for r in found)
            lines.append(f"{workload} {SYSTEM_LABELS.get(system, system)}: issue {issue:g}x, this run {now}")
    return lines


# -- output ----------------------------------------------------------------------------------------------


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def format_value(row: Row) -> str:
    if row.value is None:
        return {"skipped": "skipped", "failed": "FAILED", "wrong": "WRONG"}.get(row.status, row.status)
    if row.metric == "memory":
        return f"{row.value / 2**20:.2f} MiB"
    return f"{format_seconds(row.value)}/{row.per}"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2f}" if ratio < 100 else f"{ratio:,.0f}"


def table_cells(row: Row) -> list[str]:
    label = SYSTEM_LABELS.get(row.system, row.system)
    return [row.workload, row.case, label, format_value(row), format_ratio(row.ratio_dagprop),
            format_ratio(row.ratio_numpy), "" if row.spread is None else f"{100 * row.spread:.0f}%", row.note]


HEADER = ["workload", "case", "system", "median", "x dagprop", "x numpy", "spread", "notes"]


def deduplicated(rows: list[Row]) -> list[Row]:
    """The rows to print: a skip repeated for every case of a workload is shown once, as 'all'."""
    seen: dict[tuple[str, str, str], Row] = {}
    out = []
    for row in rows:
        if row.status == "skipped":
            key = (row.workload, row.system, row.note)
            if key in seen:
                seen[key].case = "all"
                continue
            seen[key] = row = Row(**{**asdict(row)})
        out.append(row)
    return out


def text_table(rows: list[Row]) -> str:
    cells = [HEADER] + [table_cells(r) for r in deduplicated(rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER) - 1)]
    lines = []
    previous = None
    for k, c in enumerate(cells):
        if k > 1 and c[0] != previous:
            lines.append("")
        previous = c[0]
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)) + "  " + c[-1])
        if k == 0:
            lines.append("-" * (sum(widths) + 2 * len(widths) + 5))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in deduplicated(rows):
        lines.append("| " + " | ".join(cell(c) for c in table_cells(r)) + " |")
    return "\n".join(lines)


SUMMARY_WORKLOADS = ("seed_v", "mlp_small", "mlp_large", "moons", "deep_chain", "wide_dag")
SUMMARY_SYSTEMS = ("dagprop", "jax", "torch", "autograd", "micrograd")


def summary_table(rows: list[Row]) -> str:
    """Every system's multiple of the NumPy floor, one line per case: the key ratios, in markdown."""
    header = ["workload", *(SYSTEM_LABELS.get(s, s) for s in SUMMARY_SYSTEMS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cases: dict[tuple[str, str], dict[str, Row]] = {}
    for row in rows:
        if row.workload in SUMMARY_WORKLOADS and "default threads" not in row.case:
            cases.setdefault((row.workload, row.case), {})[row.system] = row
    for (workload, case), by_system in cases.items():
        cells = []
        for system in SUMMARY_SYSTEMS:
            row = by_system.get(system)
            if row is None or row.status == "skipped":
                cells.append("-")
            elif row.status == "failed":
                cells.append("fails (" + row.note.removeprefix("fails: ").split(":")[0] + ")")
            elif row.status != "ok":
                cells.append(row.status)
            else:
                cells.append(f"{format_ratio(row.ratio_numpy)}x" if row.ratio_numpy else "?")
        label = f"{workload} ({case})" if workload == "deep_chain" else workload
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


README_PATH = HERE / "README.md"
KEY_RATIOS_START, KEY_RATIOS_END = "<!-- key ratios: written by run.py -->", "<!-- end of key ratios -->"


def refresh_readme(rows: list[Row], env: dict[str, Any]) -> bool:
    """Put the latest key ratios between the README's markers; False if it has none."""
    if not README_PATH.exists():
        return False
    text = README_PATH.read_text(encoding="utf-8")
    if KEY_RATIOS_START not in text or KEY_RATIOS_END not in text:
        return False
    head, rest = text.split(KEY_RATIOS_START, 1)
    _, tail = rest.split(KEY_RATIOS_END, 1)
    block = (f"{KEY_RATIOS_START}\nRun of {env['date']} (load average {env['load_average']['before']} on "
             f"{env['machine']['cores']} cores):\n\n{summary_table(rows)}\n{KEY_RATIOS_END}")
    README_PATH.write_text(head + block + tail, encoding="utf-8")
    return True


def target_lines(targets: list[Target]) -> list[str]:
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    return [f"{verdict[t.met]:<12} {t.name}: {t.wanted} -- {t.measured}" for t in targets]


# -- the environment -------------------------------------------------------------------------------------


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


def _load_average() -> float | None:
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
                + (f", torch.set_num_threads(1)" if "torch_threads" in t else "") + ", XLA without Eigen threads")
    else:
        text = "default threads"
    text += f"; this machine has {t['cpu_count']} cores"
    if default_run is not None:
        threads = default_run["meta"]["threads"]
        torch_default = threads.get("torch_threads")
        text += (f"; by default OpenBLAS uses {t['cpu_count']} threads (no *_NUM_THREADS set)"
                 + (f" and torch {torch_default}" if torch_default else ""))
    return text


def write_results(path: Path, rows: list[Row], targets: list[Target], env: dict[str, Any],
                  default_run: dict[str, Any] | None) -> None:
    v = env["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("torch", "jax", "autograd", "micrograd") if k in v)
    missing = "; ".join(f"{k}: {why}" for k, why in env["missing_peers"].items())
    lines = [
        "# dagprop benchmark results",
        "",
        "Written by `benchmarks/run.py`; do not edit by hand. How to read it: benchmarks/README.md.",
        "",
        f"- date: {env['date']}",
        f"- command: `{env['command']}`",
        f"- checkout: {env['checkout']}",
        f"- machine: {env['machine']['cpu']}, {env['machine']['cores']} cores, {env['machine']['platform']}",
        f"- versions: Python {v['python']}, dagprop {v['dagprop']}, numpy {v['numpy']} ({v.get('blas', '?')}), "
        f"networkx {v['networkx']}" + (f"; peers: {peers}" if peers else ""),
        f"- threads: {thread_summary(env, default_run)}",
        f"- load: 1-minute load average {env['load_average']['before']} before the run and "
        f"{env['load_average']['after']} after, on {env['machine']['cores']} cores (the machine is shared:"
        f" read the ratios and the spread column, not single times)",
        "- every system computes in float64; times are medians of samples taken round-robin after a warm-up;"
        " 'x numpy' is the ratio to the hand-written NumPy floor in the same run",
    ]
    if missing:
        lines.append(f"- peers not run: {missing}")
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    lines += ["", "## Targets", "", *[f"- {verdict[t.met]}: {t.name}: {t.wanted}. Measured: {t.measured}"
                                      for t in targets], "",
              "## Peers against the multiples the issue measured", "",
              *[f"- {line}" for line in reference_lines(rows)], "",
              "## Multiples of the NumPy floor", "", summary_table(rows), "",
              "## Table", "", markdown_table(rows), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def run_default_threads(argv_only: list[str], tmp: Path) -> dict[str, Any] | None:
    """Repeat some workloads in a child process with the machine's default thread settings."""
    out = tmp / "default_threads.json"
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARIABLES, "XLA_FLAGS")}
    env.update({k: v for k, v in ORIGINAL_THREAD_ENV.items() if v is not None})
    command = [sys.executable, str(Path(__file__).resolve()), "--default-threads", "--no-results",
               "--only", ",".join(argv_only), "--json", str(out), "--quiet"]
    try:
        subprocess.run(command, env=env, check=True, timeout=900)
        return json.loads(out.read_text())
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        print(f"the default-threads run failed: {exc}", file=sys.stderr)
        return None


# -- profiling -------------------------------------------------------------------------------------------


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
    if path.endswith("benchmarks/run.py"):
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


# -- main -------------------------------------------------------------------------------------------------


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
        load_before = _load_average()
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
        env["load_average"] = {"before": load_before, "after": _load_average()}
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
