"""3. mlp_large: a BLAS-bound ReLU MLP with softmax cross-entropy."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Subject

from threads import SINGLE_THREADED

from .shared import dagprop_grads, jax_step, mlp_data, param_names, torch_grads, torch_tensors


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
