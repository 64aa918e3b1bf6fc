"""1. seed_v: the Values example of the attention note."""

from __future__ import annotations

from typing import Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Subject

from .shared import as_float, dagprop_grads, torch_tensors


SEED_V_LR = 0.002


def seed_v_data() -> dict[str, np.ndarray]:
    """The V example of 001_9b8a65702dd0fdcc.txt: V 3x3, x 3x2, alpha 1x2, y 3x1, a zero bias."""
    return {"V": as_float([[-1, 6, 7], [2, 2, 2], [5, 5, 5]]), "b": np.zeros((3, 1)),
            "x": as_float([[1, 3], [4, 0.3], [2, 2]]), "alpha": as_float([[5, -2]]),
            "y": as_float([[-1], [20], [5]])}


def workload_seed_v(ctx: Context) -> Iterator[Case]:
    d = seed_v_data()

    def dagprop_graph() -> tuple[dp.Graph, dict[str, dp.Node], dp.Node]:
        g = dp.Graph()
        x, alpha, y = g.input("x", d["x"]), g.input("alpha", d["alpha"]), g.input("y", d["y"])
        params = {"V": g.param("V", d["V"]), "b": g.param("b", d["b"])}
        v = params["V"] @ x + params["b"]
        z = v @ alpha.T
        return g, params, g.ops.l2_loss(z, y)

    def dagprop_subject() -> Subject:
        g, params, loss = dagprop_graph()

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)
            g.step(lr=SEED_V_LR)

        return Subject(step, lambda: dagprop_grads(params))

    def compiled_subject() -> Subject:
        g, params, loss = dagprop_graph()
        return Subject(g.compile(loss, lr=SEED_V_LR), lambda: dagprop_grads(params))

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
        "dagprop": dagprop_subject, "compiled": compiled_subject, "numpy": numpy_subject, "jax": jax_subject, "torch": torch_subject,
        "autograd": autograd_subject, "micrograd": micrograd_subject,
    }, note="forward + backward + SGD step")
