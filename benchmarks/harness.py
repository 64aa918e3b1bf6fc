"""The harness: settings, the optional peers, what a workload hands over, and how it is timed.

Each system's gradients are checked against the reference's (the NumPy floor) before it is
timed; samples are taken round-robin across the systems after a warm-up, and the medians
and their ratios fill the rows.
"""

from __future__ import annotations

import gc
import importlib.metadata
import math
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from threads import SINGLE_THREADED

INSTALL_PEERS = "pip install -e '.[bench]'"

# The order systems appear in the table: dagprop, its floor, then the peers.
SYSTEMS = ("dagprop", "compiled", "numpy", "jax", "torch", "autograd", "micrograd", "dask")
PEERS = ("jax", "torch", "autograd", "micrograd")
SYSTEM_LABELS = {"compiled": "dagprop compiled", "numpy": "numpy (by hand)", "jax": "jax.jit", "torch": "torch eager"}


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
        if not selected(system, ctx.systems):
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
            row.note = f"fails: {type(exc).__name__}: {shorten(str(exc))}"
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


def selected(system: str, wanted: tuple[str, ...]) -> bool:
    return system.split()[0] in wanted


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"
