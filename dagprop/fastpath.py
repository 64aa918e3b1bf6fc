"""The steady-state fast path: a plan turned into one small specialised function per step.

The scheduler's interpreter walks a plan checking everything, which is what a first
run needs. Once a plan has run cleanly, each step is bound into a closure that calls
the op's forward or vjp directly on fixed slots of the value list, so the hot loop is
just ``for run in steps: run(...)``. Building closures costs microseconds per step,
where compiling generated source would cost far more on 100,000-node graphs.

The closures carry no annotations: a ``def``'s annotations are a dict made each time
it runs, once per step of a plan that may have 10^5. For the same reason they take what
they use as default arguments rather than closing over it: a closure holds a cell per
name, four or five objects the garbage collector walks per step (half of what a first run
of a 10^5-node chain left it to walk), where defaults are one tuple, and read as fast.

A closure never raises a dagprop error itself: when a result is malformed it raises
:class:`Fallback` (or whatever the op raised), and the scheduler re-runs the whole pass
through the interpreter, which reports the problem precisely.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from .scheduler import OpStep

__all__ = ["Fallback", "forward_runner", "backward_runner"]

_ndarray = np.ndarray
_float64 = np.dtype(np.float64)


class Fallback(Exception):
    """A fast-path result failed a check: the interpreter takes over."""


def forward_runner(steps: tuple[OpStep, ...], scalar_steps: frozenset[int],
                   outputs: tuple[tuple[tuple[int, ...], np.dtype], ...]) -> Callable[[list], list]:
    """A function filling a value list by running ``steps``: ``run(values) -> values``.

    ``outputs`` holds each step's (shape, dtype) from the checked run; an output that
    differs (a plugin misbehaving on a later run) raises :class:`Fallback`.
    """
    calls = [_forward_step(step, step.index in scalar_steps, expected) for step, expected in zip(steps, outputs)]

    def run(values: list) -> list:
        for call in calls:
            call(values)
        return values

    return run


def _forward_step(step: OpStep, returns_scalar: bool, expected: tuple[tuple[int, ...], np.dtype]
                  ) -> Callable[[list], None]:
    rule, index = _bound(step.op.forward, step.attrs), step.index
    shape, dtype = expected
    if returns_scalar:  # this op gave a numpy scalar on the checked run: keep values arrays
        def forward(*args, rule=rule):
            return np.asarray(rule(*args))
    else:
        forward = rule

    if len(step.inputs) == 1:
        (a,) = step.inputs

        def call_one(v, forward=forward, a=a, index=index, shape=shape, dtype=dtype):
            out = forward(v[a])
            if out.dtype is not dtype or out.shape != shape or out.__class__ is not _ndarray:
                raise Fallback
            v[index] = out

        return call_one

    if len(step.inputs) == 2:
        a, b = step.inputs

        def call_two(v, forward=forward, a=a, b=b, index=index, shape=shape, dtype=dtype):
            out = forward(v[a], v[b])
            if out.dtype is not dtype or out.shape != shape or out.__class__ is not _ndarray:
                raise Fallback
            v[index] = out

        return call_two

    inputs = step.inputs

    def call_many(v, forward=forward, inputs=inputs, index=index, shape=shape, dtype=dtype):
        out = forward(*[v[j] for j in inputs])
        if out.dtype is not dtype or out.shape != shape or out.__class__ is not _ndarray:
            raise Fallback
        v[index] = out

    return call_many


def backward_runner(steps: tuple[OpStep, ...], needs: tuple[tuple[bool, ...], ...]
                    ) -> Callable[[list, list, dict], None]:
    """A function propagating gradients through ``steps``: ``run(values, grads, edges)``.

    ``grads[i]`` holds what node ``i`` has received so far (the loss's seed on entry);
    ``edges[(i, slot)]`` receives what flowed back along argument ``slot`` of node ``i``.
    """
    calls = [_backward_step(step, need) for step, need in zip(steps, needs)]

    def run(values: list, grads: list, edges: dict) -> None:
        for call in calls:
            call(values, grads, edges)

    return run


def _backward_step(step: OpStep, need: tuple[bool, ...]) -> Callable[[list, list, dict], None]:
    keywords = dict(step.attrs, needs=need) if step.op.vjp_takes_needs else step.attrs
    vjp, index, inputs = _bound(step.op.vjp, keywords), step.index, step.inputs
    arity = len(inputs)

    if arity == 1 and need[0]:  # the usual step, made without the general one's table below
        (a,) = inputs
        key = (index, 0)

        def call_one(v, d, edges, vjp=vjp, a=a, index=index, key=key):
            g = d[index]
            if g is None:
                return
            r = vjp(g, v[a], out=v[index])
            if len(r) != 1:
                raise Fallback
            c = r[0]
            if c is None:
                return
            if c.__class__ is not _ndarray or c.shape != v[a].shape or (c.dtype is not _float64
                                                                        and c.dtype.kind != "f"):
                c = _conform(c, v[a])
            edges[key] = c
            previous = d[a]
            d[a] = c if previous is None else previous + c

        return call_one

    # (slot, input index, edge key): keys built once here, not allocated on every run
    receiving = tuple([(slot, j, (index, slot)) for slot, j in enumerate(inputs) if need[slot]])

    # The closures repeat dagprop.run.accumulate's one line on purpose: calling it
    # would add a Python call per edge to the hottest loop of the library.
    if arity == 2:
        a, b = inputs

        def call_two(v, d, edges, vjp=vjp, a=a, b=b, index=index, receiving=receiving):
            g = d[index]
            if g is None:
                return
            r = vjp(g, v[a], v[b], out=v[index])
            if len(r) != 2:
                raise Fallback
            for slot, j, key in receiving:
                c = r[slot]
                if c is None:
                    continue
                if c.__class__ is not _ndarray or c.shape != v[j].shape or (c.dtype is not _float64
                                                                            and c.dtype.kind != "f"):
                    c = _conform(c, v[j])
                edges[key] = c
                previous = d[j]
                d[j] = c if previous is None else previous + c

        return call_two

    def call_many(v, d, edges, vjp=vjp, inputs=inputs, arity=arity, index=index, receiving=receiving):
        g = d[index]
        if g is None:
            return
        r = vjp(g, *[v[j] for j in inputs], out=v[index])
        if len(r) != arity:
            raise Fallback
        for slot, j, key in receiving:
            c = r[slot]
            if c is None:
                continue
            if c.__class__ is not _ndarray or c.shape != v[j].shape or (c.dtype is not _float64
                                                                        and c.dtype.kind != "f"):
                c = _conform(c, v[j])
            edges[key] = c
            previous = d[j]
            d[j] = c if previous is None else previous + c

    return call_many


def _bound(rule: Callable, keywords: dict) -> Callable:
    """The rule with its keyword arguments bound once, so calls need no ``**`` unpacking."""
    return functools.partial(rule, **keywords) if keywords else rule


def _conform(result: object, like: np.ndarray) -> np.ndarray:
    """A numpy scalar or plain number made a float array; an array that is not floating-point,
    or anything of another shape or kind, falls back to the interpreter, which names the problem."""
    array = np.asarray(result)
    if array.shape != like.shape or array.dtype.kind not in "fiub" or (array is result and array.dtype.kind != "f"):
        raise Fallback
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array
