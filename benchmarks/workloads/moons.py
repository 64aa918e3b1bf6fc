"""4. moons: micrograd's demo."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Subject

from .shared import as_float, dagprop_grads, jax_step, param_names, torch_grads, torch_tensors


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

    def dagprop_graph() -> tuple[dp.Graph, dict[str, dp.Node], dp.Node]:
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
        return g, p, data_loss + MOONS_ALPHA * reg_loss

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
        "dagprop": dagprop_subject, "compiled": compiled_subject, "numpy": numpy_subject, "jax": jax_subject,
        "torch": torch_subject,
        "autograd": autograd_subject, "micrograd": micrograd_subject,
    }, note="forward + backward")
