"""2. mlp_small: a small tanh MLP, forward + backward."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Factory, Subject

from .shared import as_float, dagprop_grads, jax_step, micrograd_tanh, mlp_data, param_names, torch_grads, torch_tensors


def workload_mlp_small(ctx: Context) -> Iterator[Case]:
    """64 -> 128 -> 10 with tanh, batch 32, squared error: forward + backward."""
    d = mlp_data((64, 128, 10), 32, seed=2, one_hot=False)
    names = param_names(d)

    def dagprop_graph() -> tuple[dp.Graph, dict[str, dp.Node], dp.Node]:
        g = dp.Graph()
        X, Y = g.input("X", d["X"]), g.input("Y", d["Y"])
        p = {k: g.param(k, d[k]) for k in names}
        h = (X @ p["W1"] + p["b1"]).tanh()
        return g, p, g.ops.squared_error(h @ p["W2"] + p["b2"], Y)

    def dagprop_subject() -> Subject:
        g, p, loss = dagprop_graph()

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)

        return Subject(step, lambda: dagprop_grads(p))

    def compiled_subject() -> Subject:
        g, p, loss = dagprop_graph()
        return Subject(g.compile(loss), lambda: dagprop_grads(p))

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
        "dagprop": dagprop_subject, "compiled": compiled_subject, "numpy": numpy_subject, "jax": jax_subject,
        "torch": torch_subject,
        "autograd": autograd_subject, "micrograd": micrograd,
    }, note="forward + backward")
