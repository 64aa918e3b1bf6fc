"""Straight-line Python for a plan: the forward and backward passes written out op by op.

The scheduler's interpreter walks a plan step by step, checking everything; once a plan
has run cleanly, the same work is compiled here into plain Python that calls each op's
forward and vjp directly, which removes the interpreter's per-op overhead. The generated
source is what runs, and :func:`codegen` shows it: the hand-written backprop functions of
a textbook, produced automatically.

Generated code never raises a dagprop error itself: when a result fails a check it
raises :class:`Fallback`, and the scheduler re-runs the pass through the interpreter,
which reports the problem precisely.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .scheduler import OpStep, Plan

__all__ = ["codegen", "Fallback", "compile_forward", "compile_backward"]

# Ops per generated function: keeps CPython's compiler fast on 100,000-node graphs.
CHUNK = 400


class Fallback(Exception):
    """Raised by generated code when a result is malformed: the interpreter takes over."""


def _conform(result: Any, like: np.ndarray) -> np.ndarray:
    array = np.asarray(result, dtype=np.float64)
    if array.shape != like.shape:
        raise Fallback
    return array


class _Writer:
    """Source text and the namespace its names refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"ndarray": np.ndarray, "asarray": np.asarray,
                                          "conform": _conform, "Fallback": Fallback}

    def function(self, name: str, op: Any) -> str:
        """A namespace name for an op's forward or vjp: ``matmul_forward``, ``matmul_vjp``."""
        self.namespace[name] = op
        return name

    def attrs(self, step: OpStep) -> str:
        """The op attributes as keyword arguments: literals where safe, else a namespace name."""
        if not step.attrs:
            return ""
        if all(_is_literal(v) for v in step.attrs.values()):
            return ", " + ", ".join(f"{k}={v!r}" for k, v in step.attrs.items())
        name = f"attrs_{step.index}"
        self.namespace[name] = step.attrs
        return f", **{name}"

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple):
        return all(_is_literal(v) for v in value)
    return False


def _comment(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _describe(node: Node) -> str:
    return _comment(f"{node.name} = {node.op}({', '.join(i.name for i in node.inputs)})")


def _chunks(steps: tuple, size: int = CHUNK) -> list[tuple]:
    return [steps[k:k + size] for k in range(0, len(steps), size)] or [()]


def forward_source(steps: tuple[OpStep, ...], scalar_steps: frozenset[int] = frozenset()) -> _Writer:
    """Source of ``forward(v)``: fills ``v[i]``, the value of node ``i``, for every step."""
    w = _Writer()
    parts = _chunks(steps)
    for k, part in enumerate(parts):
        w.lines.append(f"def forward_{k}(v):")
        for step in part:
            call = f"{w.function(step.op.name + '_forward', step.op.forward)}(" \
                   f"{', '.join(f'v[{j}]' for j in step.inputs)}{w.attrs(step)})"
            if step.index in scalar_steps:  # this op returned a numpy scalar: keep values arrays
                call = f"asarray({call})"
            w.lines.append(f"    v[{step.index}] = {call}  # {_describe(step.node)}")
        w.lines.append("    return v\n")
    w.lines.append("def forward(v):")
    w.lines.extend(f"    forward_{k}(v)" for k in range(len(parts)))
    w.lines.append("    return v")
    return w


def backward_source(steps: tuple[OpStep, ...], needs: tuple[tuple[bool, ...], ...]) -> _Writer:
    """Source of ``backward(v, d, edges)``: ``d[i]`` collects dloss/d(node i), ``edges`` each edge's share."""
    w = _Writer()
    pairs = list(zip(steps, needs))
    parts = _chunks(tuple(pairs))
    for k, part in enumerate(parts):
        w.lines.append(f"def backward_{k}(v, d, edges):")
        for step, need in part:
            extra = f", needs={need!r}" if step.op.vjp_takes_needs else ""
            vjp = w.function(step.op.name + "_vjp", step.op.vjp)
            args = ", ".join(f"v[{j}]" for j in step.inputs)
            w.lines += [
                f"    # {_describe(step.node)}",
                f"    g = d[{step.index}]",
                "    if g is not None:",
                f"        r = {vjp}(g, {args}, out=v[{step.index}]{extra}{w.attrs(step)})",
                f"        if len(r) != {len(step.inputs)}: raise Fallback",
            ]
            for slot, source in enumerate(step.inputs):
                if not need[slot]:
                    continue
                w.lines += [
                    f"        c = r[{slot}]",
                    "        if c is not None:",
                    f"            if c.__class__ is not ndarray or c.shape != v[{source}].shape: "
                    f"c = conform(c, v[{source}])",
                    f"            edges[{step.index}, {slot}] = c",
                    f"            d[{source}] = c if d[{source}] is None else d[{source}] + c",
                ]
        w.lines.append("    return d\n")
    w.lines.append("def backward(v, d, edges):")
    w.lines.extend(f"    backward_{k}(v, d, edges)" for k in range(len(parts)))
    w.lines.append("    return d")
    return w


def _compile(writer: _Writer, entry: str, label: str) -> Callable:
    namespace = dict(writer.namespace)
    exec(compile(writer.source(), f"<dagprop {label}>", "exec"), namespace)  # our own generated text
    return namespace[entry]


def compile_forward(steps: tuple[OpStep, ...], scalar_steps: frozenset[int]) -> Callable[[list], list]:
    """A function running ``steps`` on a value list, compiled from :func:`forward_source`."""
    return _compile(forward_source(steps, scalar_steps), "forward", "forward")


def compile_backward(steps: tuple[OpStep, ...], needs: tuple[tuple[bool, ...], ...]) -> Callable:
    """A function running a backward plan, compiled from :func:`backward_source`."""
    return _compile(backward_source(steps, needs), "backward", "backward")


def codegen(graph: Graph, loss: Node | str | None = None) -> str:
    """The Python source dagprop runs for this graph's forward pass and, given a loss, its backward pass.

    ``v[i]`` holds the value of node ``i`` and ``d[i]`` its gradient; ``edges[i, slot]``
    records what flowed back along argument ``slot`` of node ``i``. Each line is
    commented with the node it computes.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> w = g.param("w", 2.0)
    >>> loss = g.op("mul", w, w, name="loss")
    >>> print(dp.codegen(g, loss).splitlines()[2])
        v[1] = mul_forward(v[0], v[0])  # loss = mul(w, w)
    """
    plan = graph._current_plan()
    forward = plan.forward_plan(None)
    header = [f"# dagprop: generated passes for a graph of {len(graph)} nodes",
              "# " + ", ".join(_comment(f"v[{n.index}] {n.name}") for n in graph.nodes if n.op is None)]
    text = "\n".join(header) + "\n" + forward_source(forward.steps, forward.scalar_steps).source()
    if loss is not None:
        backward = plan.backward_plan(graph._resolve(loss).index, None)
        text += "\n\n" + backward_source(backward.steps, backward.needs).source()
    return text
