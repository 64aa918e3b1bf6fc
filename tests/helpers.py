"""Test helpers that are independent of the engine (plain numpy)."""

from __future__ import annotations

import numpy as np


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
