"""Test helpers several test modules share: independent references (plain numpy), and small
ways of building and checking one op."""

from __future__ import annotations

import numpy as np


# what check_op compares beyond the vjp (forward mode and the backward pass as nodes), by name
SECOND_ORDER_CHECKS = {"jvp vs finite differences", "<u, Jv> vs <J^T u, v>", "vjp_graph vs vjp",
                       "second derivatives vs finite differences"}


def run_op(name: str, *arrays, **attrs):
    """A graph applying op ``name`` to params holding ``arrays``, run forward: (graph, params, output)."""
    import dagprop as dp

    g = dp.Graph()
    leaves = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    out = g.op(name, *leaves, **attrs)
    g.forward()
    return g, leaves, out


def example_loss(name: str):
    """A graph applying op ``name`` to params filled from its example (seeded), projected to a scalar
    loss named ``L`` by a random constant: (graph, loss)."""
    import dagprop as dp

    rng = np.random.default_rng(7)
    g = dp.Graph()
    args, attrs = g.registry[name].example(rng)
    inputs = [g.param(f"x{k}", rng.standard_normal(a) if isinstance(a, tuple) else a) for k, a in enumerate(args)]
    out = g.op(name, *inputs, name="out", **attrs)
    projection = g.const(rng.standard_normal(out.shape), name="projection")
    return g, g.op("sum", out * projection, name="L")


def assert_close(actual, expected, rtol: float = 1e-10) -> None:
    """Agreement to ``rtol`` relative to the largest element, so that entries near 0 do not count as misses."""
    expected = np.asarray(expected)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def central_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x for a scalar function f of an array, by central differences in float64.

    Independent of the engine: used to check its gradients.
    """
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for k in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.flat[k] += eps
        minus.flat[k] -= eps
        grad.flat[k] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def ci() -> bool:
    """True in CI, where a missing tool is a failure rather than a reason to skip."""
    import os

    return bool(os.environ.get("CI"))


def _needs_dot():
    import shutil

    import pytest

    return pytest.mark.skipif(shutil.which("dot") is None and not ci(),
                              reason="Graphviz's dot is not installed (scripts/setup.sh installs it)")


needs_dot = _needs_dot()
