"""Backward through explicit Jacobians against backward through vjps, and memory in inference.

The lecture notes on backprop (004 in the seeds) write a 3-layer ReLU network with
row vectors, linear(h, W, b) = hW + b:

    a1 = linear(x, W1, b1), h1 = relu(a1), a2 = linear(h1, W2, b2), h2 = relu(a2),
    f = linear(h2, W3, b3), L = 0.5 sum((f - y)^2)

and compare two ways to run the chain rule. With explicit Jacobians each op builds
d outputs / d inputs, a D x D matrix for a relu of width D that is zero off its
diagonal, and the gradient is contracted with it: O(D^2). With a backward function
(a vjp) the relu just masks the incoming gradient: O(D). dagprop does both:
``g.backward(L, mode="jacobian")`` and ``g.backward(L)`` (mode="vjp").

This example

1. checks on a small network that both modes give the same gradients, and shows
   the relu's and the linear layer's Jacobians;
2. times both modes and measures their peak memory with tracemalloc as the width D
   grows from 16 to 1024: first for the gradient with respect to the input x (the
   weights held fixed), where a Jacobian is D x D against a vjp's D numbers; then for
   the weights' gradients, where the Jacobian of hW with respect to W is D x D^2;
3. runs inference with ``forward(retain=False)``, which frees each intermediate as
   soon as nothing needs it, and compares its memory with ``forward()``.

Run ``python examples/jacobian_vs_vjp.py [-o OUTDIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "jacobian_vs_vjp"
WIDTHS = (16, 32, 64, 128, 256, 512, 1024)
QUICK_WIDTHS = (16, 32, 64)
# explicit Jacobians for the weights need about 2 D^3 numbers at once; stop before they pass this
WEIGHT_JACOBIAN_BUDGET = 512 * 2**20
INFERENCE_BATCH = 256


def network(width: int, *, train_weights: bool, batch: int = 1, seed: int = 0) -> dp.Graph:
    """The notes' 3-layer ReLU network on row vectors, with random weights scaled by 1/sqrt(width)."""
    rng = np.random.default_rng(seed)
    g = dp.Graph()
    weight = g.param if train_weights else g.input
    h = g.input("x", rng.normal(size=(batch, width)), requires_grad=not train_weights)
    for layer in (1, 2, 3):
        W = weight(f"W{layer}", rng.normal(size=(width, width)) / np.sqrt(width))
        b = weight(f"b{layer}", rng.normal(size=width) * 0.1)
        name = "f" if layer == 3 else f"a{layer}"
        h = g.ops.linear(h, W, b, name=name)
        if layer < 3:
            h = g.op("relu", h, name=f"h{layer}")
    g.ops.l2_loss(h, g.input("y", rng.normal(size=(batch, width))), name="L")
    return g


def same_gradients(outdir: Path) -> dict:
    print("== 1. the same gradients both ways (D = 4)")
    g = network(4, train_weights=True, seed=3)  # a seed where both relus have units on and off
    g.forward()
    g.backward("L")
    by_vjp = {p.name: p.grad.copy() for p in g.params}
    dp.render(g, outdir / "network.png", rankdir="TB", precision=3,
              title="the notes' 3-layer ReLU network, D = 4 (row vectors)")
    g.zero_grad()
    g.backward("L", mode="jacobian")
    by_jacobian = {p.name: p.grad.copy() for p in g.params}
    worst = max(float(np.abs(by_vjp[n] - by_jacobian[n]).max()) for n in by_vjp)
    print(f"largest difference between the two modes over W1..W3, b1..b3: {worst:.2g}")
    report = dp.gradcheck(g, "L")
    print(f"largest difference from finite differences: {max(report.max_abs_error.values()):.2g}")

    relu = g.jacobian("h1", "a1").reshape(4, 4)
    print("the relu's Jacobian dh1/da1 (4 x 4): the Heaviside step of a1 on the diagonal, zeros elsewhere")
    print("    " + np.array2string(relu, precision=0).replace("\n", "\n    "))
    print(f"    a1 = {np.round(g['a1'].value.ravel(), 3)}")
    dense = g.jacobian("a2", "h1").reshape(4, 4)
    print(f"the linear layer's Jacobian da2/dh1 is W2 transposed (da_j/dh_i = W_ij): "
          f"{np.allclose(dense, g['W2'].value.T)}")
    weights = g.jacobian("a2", "W2")
    print(f"its Jacobian with respect to W2 has shape {weights.shape}: {weights.size} numbers, "
          f"{np.count_nonzero(weights)} of them nonzero (da_j/dW_ik = h_i when k = j)")
    return {"max_mode_difference": worst, "grads": by_vjp, "by_jacobian": by_jacobian, "relu_jacobian": relu,
            "values": {n.name: n.value.copy() for n in g if n.kind in ("param", "input")}}


def measure(g: dp.Graph, mode: str, repeats: int) -> tuple[float, int]:
    """The fastest of ``repeats`` backward passes in seconds, and the peak bytes one of them allocates.

    Timed without tracemalloc, which slows every allocation down; the fastest run is
    the one least disturbed by whatever else the machine is doing.
    """
    times = []
    for _ in range(repeats):
        g.zero_grad()
        start = time.perf_counter()
        g.backward("L", mode=mode)
        times.append(time.perf_counter() - start)
    g.zero_grad()
    tracemalloc.start()
    g.backward("L", mode=mode)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(times), peak


def sweep(widths: tuple[int, ...], train_weights: bool) -> list[dict]:
    rows = []
    for width in widths:
        g = network(width, train_weights=train_weights)
        g.forward()
        row = {"D": width}
        row["vjp_time"], row["vjp_peak"] = measure(g, "vjp", 5)
        projected = 2 * 8 * width**3
        if train_weights and projected > WEIGHT_JACOBIAN_BUDGET:
            row["jacobian_time"] = row["jacobian_peak"] = None
            row["skipped"] = projected
        else:
            row["jacobian_time"], row["jacobian_peak"] = measure(g, "jacobian", 3 if width <= 128 else 1)
        rows.append(row)
    return rows


def megabytes(n: int | None) -> str:
    return "skipped" if n is None else f"{n / 2**20:.3f} MB" if n < 2**20 else f"{n / 2**20:.1f} MB"


def milliseconds(t: float | None) -> str:
    return "skipped" if t is None else f"{t * 1e3:.2f} ms"


def print_table(rows: list[dict]) -> None:
    header = (f"{'D':>5}  {'vjp time':>10}  {'jacobian time':>13}  {'vjp memory':>11}  {'x2':>4}  "
              f"{'jacobian memory':>15}  {'x2':>4}")
    print(header)
    print("-" * len(header))
    previous = None
    for row in rows:
        def growth(key: str) -> str:
            if previous is None or row[key] is None or previous[key] is None:
                return ""
            return f"{row[key] / previous[key]:.1f}"
        print(f"{row['D']:5d}  {milliseconds(row['vjp_time']):>10}  {milliseconds(row['jacobian_time']):>13}  "
              f"{megabytes(row['vjp_peak']):>11}  {growth('vjp_peak'):>4}  "
              f"{megabytes(row['jacobian_peak']):>15}  {growth('jacobian_peak'):>4}")
        previous = row
    skipped = [r for r in rows if r.get("skipped")]
    if skipped:
        print(f"(skipped: the weight Jacobians would need about {megabytes(skipped[0]['skipped'])} at "
              f"D = {skipped[0]['D']}, growing 8x per doubling)")


def scaling(widths: tuple[int, ...]) -> dict:
    print("\n== 2a. dL/dx with the weights held fixed: Jacobians of D x D against vjps of D numbers")
    print("peak memory allocated by one backward pass (tracemalloc); x2: growth when D doubles")
    to_input = sweep(widths, train_weights=False)
    print_table(to_input)
    print("Doubling D multiplies the Jacobians' memory by 4 (D^2) and the vjps' by 2 (D). In time, the\n"
          "linear layers dominate: their vjp is one vector-matrix product, O(D^2), while their Jacobian\n"
          "(linear has no explicit Jacobian rule) is built from one vjp per output, O(D^3).")

    print("\n== 2b. dL/dW for every weight: the Jacobian of hW with respect to W has D^3 numbers")
    to_weights = sweep(tuple(w for w in widths if w <= 1024), train_weights=True)
    print_table(to_weights)
    print("A vjp returns dL/dW itself (D^2 numbers), so its memory grows 4x per doubling; the explicit\n"
          "Jacobian route first builds d a / d W, D x D^2, and grows 8x.")
    return {"to_input": to_input, "to_weights": to_weights}


def held_bytes(g: dp.Graph) -> int:
    """Bytes of op-node values the graph still holds."""
    return sum(n.value.nbytes for n in g if n.kind == "op" and n.value is not None)


def inference(width: int) -> dict:
    print(f"\n== 3. inference on a batch of {INFERENCE_BATCH} rows, D = {width}")
    results = {}
    for retain in (True, False):
        g = network(width, train_weights=True, batch=INFERENCE_BATCH)
        tracemalloc.start()
        g.forward(retain=retain)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results[retain] = {"peak": peak, "held": held_bytes(g), "loss": float(g["L"].value)}
        kept = [n.name for n in g if n.kind == "op" and n.value is not None]
        print(f"forward(retain={retain!s:5}): peak {megabytes(peak):>9}, still held {megabytes(held_bytes(g)):>9} "
              f"({', '.join(kept)})")
        if not retain:
            try:
                g.backward("L")
            except dp.BackwardError as exc:
                print(f"backward after retain=False refuses: {exc}")
    same = results[True]["loss"] == results[False]["loss"]
    print(f"same loss both ways: {same}; backward needs every intermediate, inference only the last ones")
    return {"retain": results[True], "free": results[False], "same_loss": same}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagram (default: examples/out/{NAME})")
    parser.add_argument("--quick", action="store_true", help=f"widths {QUICK_WIDTHS} only (seconds, for tests)")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    widths = QUICK_WIDTHS if args.quick else WIDTHS
    results = {"small": same_gradients(args.outdir)}
    results.update(scaling(widths))
    results["inference"] = inference(widths[-1])
    print(f"\ndiagram written to {args.outdir}/network.png")
    return results


if __name__ == "__main__":
    main()
