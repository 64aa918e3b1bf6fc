"""11. higher_order: forward mode and Hessian-vector products on mlp_small's network.

Two cases, each against its own first-order baseline: a jvp (tangents pushed from W1)
against the forward pass it extends, and an hvp with respect to W1 against one
forward + backward. The NumPy floor of the jvp is the tangent pass written by hand.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Subject

from .shared import mlp_data, param_names


def _network(d: dict[str, np.ndarray]) -> tuple[dp.Graph, dict[str, dp.Node], dp.Node, dp.Node]:
    g = dp.Graph()
    X, Y = g.input("X", d["X"]), g.input("Y", d["Y"])
    p = {k: g.param(k, d[k]) for k in param_names(d)}
    h = (X @ p["W1"] + p["b1"]).tanh()
    out = h @ p["W2"] + p["b2"]
    return g, p, out, g.ops.squared_error(out, Y)


def workload_higher_order(ctx: Context) -> Iterator[Case]:
    """64 -> 128 -> 10 with tanh, batch 32, squared error (mlp_small's network)."""
    d = mlp_data((64, 128, 10), 32, seed=2, one_hot=False)
    direction = np.random.default_rng(7).normal(size=d["W1"].shape)

    def forward_subject() -> Subject:
        g, p, out, loss = _network(d)
        return Subject(g.forward)

    def jvp_subject() -> Subject:
        g, p, out, loss = _network(d)
        g.forward()

        def step() -> None:
            g.jvp({p["W1"]: direction})

        return Subject(step, lambda: {"output tangent": np.array(out.tangent)})

    def numpy_jvp_subject() -> Subject:
        s: dict[str, np.ndarray] = {}
        X, W1, b1, W2, b2 = (d[k] for k in ("X", "W1", "b1", "W2", "b2"))
        h = np.tanh(X @ W1 + b1)

        def step() -> None:
            s["output tangent"] = ((X @ direction) * (1.0 - h * h)) @ W2

        return Subject(step, lambda: dict(s))

    def torch_jvp_subject() -> Subject:
        torch = ctx.peers.get("torch")
        t = {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}
        v = torch.tensor(direction, dtype=torch.float64)
        s: dict[str, Any] = {}

        def output(W1: Any) -> Any:
            return torch.tanh(t["X"] @ W1 + t["b1"]) @ t["W2"] + t["b2"]

        def step() -> None:
            s["out"] = torch.func.jvp(output, (t["W1"],), (v,))[1]

        return Subject(step, lambda: {"output tangent": s["out"].numpy().copy()})

    yield Case("higher_order", "jvp from W1", {
        "dagprop forward": forward_subject, "dagprop jvp": jvp_subject, "numpy": numpy_jvp_subject,
        "torch jvp": torch_jvp_subject,
    }, baseline="dagprop forward", note="tangents pushed from W1 (values already computed), against one forward")

    def forward_backward_subject() -> Subject:
        g, p, out, loss = _network(d)

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step)

    def hvp_subject() -> Subject:
        g, p, out, loss = _network(d)
        g.forward()
        s: dict[str, np.ndarray] = {}

        def step() -> None:
            s["hvp"] = g.hvp(loss, p["W1"], direction)

        return Subject(step, lambda: dict(s))

    def torch_hvp_subject() -> Subject:
        torch = ctx.peers.get("torch")
        t = {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}
        v = torch.tensor(direction, dtype=torch.float64)
        s: dict[str, Any] = {}

        def loss(W1: Any) -> Any:
            residual = torch.tanh(t["X"] @ W1 + t["b1"]) @ t["W2"] + t["b2"] - t["Y"]
            return (residual * residual).sum()

        def step() -> None:
            s["hvp"] = torch.func.jvp(torch.func.grad(loss), (t["W1"],), (v,))[1]

        return Subject(step, lambda: {"hvp": s["hvp"].numpy().copy()})

    yield Case("higher_order", "hvp with respect to W1", {
        "dagprop forward+backward": forward_backward_subject, "dagprop hvp": hvp_subject,
        "torch hvp": torch_hvp_subject,
    }, reference="torch hvp", baseline="dagprop forward+backward",
        note="forward-over-reverse, against one forward + backward")
