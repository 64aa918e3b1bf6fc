"""5. deep_chain: a long chain of tanh, time per node."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Factory, Subject

from .shared import micrograd_tanh


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
