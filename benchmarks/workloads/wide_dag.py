"""6. wide_dag: a random DAG with many shared nodes, time per node."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from harness import Case, Context, Subject

from .random_dag import RandomDag, describe_count


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
