"""A sweep over a Dask cluster: many small training runs at once, each graph sent back pickled.

Each run trains the same small network, a tanh layer and a linear read-out fitting
y = sin(x), from its own initial weights and learning rate. ``client.map(train_one,
configs)`` runs them on the workers of a ``dask.distributed.LocalCluster`` (two
processes here; a real cluster's address works the same), and each returns its
trained graph pickled: unpickled here, it is a graph like any other, whose values,
gradients and edge gradients can be read, drawn or trained further.

Then one graph is run on the cluster itself, ``g.forward(executor="dask")`` and
``g.backward(loss, executor="dask")``: the plan becomes a Dask task graph, the loss
and the weights' gradients come back, and the rest stays on the workers until read.
The numbers are the in-process ones, bit for bit.

Run ``python examples/dask_sweep.py [-o OUTDIR] [--quick]``. Needs Dask
(``pip install 'dagprop[dask]'``).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "dask_sweep"
HIDDEN = 8
SAMPLES = 32


def build(seed: int) -> tuple[dp.Graph, dp.Node]:
    """The network, its weights drawn from ``seed``: (graph, loss)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-2.0, 2.0, SAMPLES).reshape(1, -1)
    g = dp.Graph()
    inputs = g.input("x", x)
    W1 = g.param("W1", rng.standard_normal((HIDDEN, 1)))
    b1 = g.param("b1", np.zeros((HIDDEN, 1)))
    W2 = g.param("W2", rng.standard_normal((1, HIDDEN)) / np.sqrt(HIDDEN))
    prediction = W2 @ (W1 @ inputs + b1).tanh()
    loss = g.op("l2_loss", prediction, g.input("y", np.sin(x)), name="loss")
    return g, loss


def train_one(config: dict) -> bytes:
    """One run of the sweep, on a worker: the trained graph and its loss node, pickled."""
    g, loss = build(config["seed"])
    for _ in range(config["steps"]):
        g.zero_grad()
        g.forward()
        g.backward(loss)
        g.step(config["lr"])
    g.zero_grad()
    g.forward()
    g.backward(loss)
    return pickle.dumps((g, loss))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME)
    parser.add_argument("--quick", action="store_true", help="4 runs of 20 steps instead of 8 of 200")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    from distributed import Client, LocalCluster

    steps = 20 if args.quick else 200
    configs = [{"seed": seed, "lr": lr, "steps": steps}
               for seed in range(2 if args.quick else 4) for lr in (0.002, 0.01)]
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        print(f"== a sweep of {len(configs)} training runs on {len(client.nthreads())} worker processes")
        trained = [pickle.loads(data) for data in client.gather(client.map(train_one, configs))]
        losses = [float(loss.value) for _, loss in trained]
        for config, value in zip(configs, losses):
            print(f"seed {config['seed']}, lr {config['lr']:<6g}: loss {value:.4g} after {steps} steps")
        best = int(np.argmin(losses))
        g, loss = trained[best]
        dp.render(g, args.outdir / "best_run.svg", title=f"the best run: seed {configs[best]['seed']}, "
                                                            f"lr {configs[best]['lr']:g}")

        print("== one graph run on the cluster: the plan as a Dask task graph")
        here, loss_here = build(0)
        there, loss_there = build(0)
        here.forward(); here.backward(loss_here)
        there.forward(executor="dask"); there.backward(loss_there, executor="dask")
        held = repr(there.run)
        print(f"after backward: {held}")
        same = all(np.array_equal(there.run.grads[n.index], here.run.grads[n.index]) for n in there.params)
        print(f"the weights' gradients are the in-process ones, bit for bit: {same}")
        edge = float(np.abs(there.edge_grad("W1", "matmul_1") - here.edge_grad("W1", "matmul_1")).max())
        print(f"an edge gradient, fetched when read, differs from the in-process one by {edge:g}")
    return {"configs": configs, "losses": losses, "best": best, "held": held, "same_gradients": same,
            "edge_difference": edge, "pictures": ["best_run.svg"]}


if __name__ == "__main__":
    main()
