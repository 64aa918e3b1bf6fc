"""7. jacobian_route: backward through explicit Jacobians against vjps."""

from __future__ import annotations

from typing import Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Factory, Subject

from .shared import dagprop_grads


JACOBIAN_MEMORY_CAP = 3 * 2**30  # bytes; above this the explicit-Jacobian route is not attempted


def workload_jacobian_route(ctx: Context) -> Iterator[Case]:
    """The 3-layer ReLU network of 004_611d4e7e260de33e.txt, backward via Jacobians and via vjps."""
    widths = ctx.settings.pick((16, 64, 256, 512, 1024), (16, 64, 256), (4, 8))
    for width in widths:
        yield jacobian_route_case(width)


def jacobian_route_case(width: int) -> Case:
    rng = np.random.default_rng(width)
    d = {"x": rng.normal(size=(1, width)), "y": rng.normal(size=(1, width))}
    for layer in (1, 2, 3):
        d[f"W{layer}"] = rng.normal(size=(width, width)) / np.sqrt(width)
        d[f"b{layer}"] = rng.normal(size=width) * 0.1
    names = [k for k in d if k[0] in "Wb"]

    def dagprop_subject(mode: str) -> Factory:
        def build() -> Subject:
            g = dp.Graph()
            h = g.input("x", d["x"])
            p = {k: g.param(k, d[k]) for k in names}
            a1 = g.ops.linear(h, p["W1"], p["b1"])
            a2 = g.ops.linear(a1.relu(), p["W2"], p["b2"])
            f = g.ops.linear(a2.relu(), p["W3"], p["b3"])
            loss = g.ops.l2_loss(f, g.input("y", d["y"]))

            def step() -> None:
                g.zero_grad()
                g.forward()
                g.backward(loss, mode=mode)

            return Subject(step, lambda: dagprop_grads(p))

        return build

    def numpy_subject() -> Subject:
        s: dict[str, np.ndarray] = {}
        x, y = d["x"], d["y"]
        W1, b1, W2, b2, W3, b3 = (d[k] for k in names)

        def step() -> None:
            a1 = x @ W1 + b1
            h1 = np.maximum(a1, 0.0)
            a2 = h1 @ W2 + b2
            h2 = np.maximum(a2, 0.0)
            f = h2 @ W3 + b3
            s["loss"] = 0.5 * np.sum((f - y) ** 2)
            grad_f = f - y
            s["W3"], s["b3"] = h2.T @ grad_f, grad_f.sum(axis=0)
            grad_a2 = (grad_f @ W3.T) * (a2 > 0)
            s["W2"], s["b2"] = h1.T @ grad_a2, grad_a2.sum(axis=0)
            grad_a1 = (grad_a2 @ W2.T) * (a1 > 0)
            s["W1"], s["b1"] = x.T @ grad_a1, grad_a1.sum(axis=0)

        return Subject(step, lambda: {k: s[k] for k in names})

    # dA/dW of one linear layer holds width * width^2 numbers, and building it from the vjp
    # keeps the columns and their stack at once
    jacobian_bytes = 2 * width ** 3 * 8
    jacobian: Factory | str = dagprop_subject("jacobian")
    if jacobian_bytes > JACOBIAN_MEMORY_CAP:
        jacobian = (f"not run: the explicit dA/dW of one layer has {width}^3 = {width ** 3:.2g} entries "
                    f"(about {jacobian_bytes / 2**30:.0f} GiB to build), over the {JACOBIAN_MEMORY_CAP / 2**30:.0f} GiB cap")
    return Case("jacobian_route", f"width {width}", {
        "dagprop vjp": dagprop_subject("vjp"), "dagprop jacobian": jacobian, "numpy": numpy_subject,
    }, baseline="dagprop vjp", note="forward + backward, batch 1")
