"""Helpers the workloads share: data, tensors and gradients in each system's form."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

import dagprop as dp


def as_float(x: Any) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def torch_tensors(torch: Any, arrays: dict[str, np.ndarray], grad: Iterable[str] = ()) -> dict[str, Any]:
    """float64 torch tensors (copies), with requires_grad on the named ones."""
    wanted = set(grad)
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in wanted) for k, v in arrays.items()}


def torch_grads(tensors: dict[str, Any], names: Iterable[str]) -> dict[str, np.ndarray]:
    return {k: tensors[k].grad.detach().numpy().copy() for k in names}


def dagprop_grads(nodes: dict[str, dp.Node]) -> dict[str, np.ndarray]:
    return {k: np.array(n.grad) for k, n in nodes.items()}


def jax_step(peer: Any, fn: Callable, *args: Any) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step calling the jitted ``fn`` and waiting for its result (JAX runs asynchronously)."""
    state: dict[str, Any] = {}

    def step() -> None:
        out = fn(*args)
        peer.jax.block_until_ready(out)
        state["out"] = out

    return step, state


def micrograd_tanh(v: Any) -> Any:
    """tanh as a micrograd Value, in micrograd's own style (its PyPI release has no tanh)."""
    t = math.tanh(v.data)
    out = type(v)(t, (v,), "tanh")

    def _backward() -> None:
        v.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out


def mlp_data(sizes: tuple[int, ...], batch: int, seed: int, *, one_hot: bool) -> dict[str, np.ndarray]:
    """Inputs, targets and weights (scaled by 1/sqrt(fan-in)) of an MLP on row vectors."""
    rng = np.random.default_rng(seed)
    data = {"X": rng.normal(size=(batch, sizes[0]))}
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        data[f"W{layer}"] = rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
        data[f"b{layer}"] = rng.normal(size=n_out) * 0.1
    if one_hot:
        data["Y"] = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)]
    else:
        data["Y"] = rng.normal(size=(batch, sizes[-1]))
    return data


def param_names(data: dict[str, np.ndarray]) -> list[str]:
    return [k for k in data if k[0] in "Wb"]
