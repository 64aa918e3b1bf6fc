"""Attention's values V: z = v alpha^T, then v = Vx + b as a trainable layer.

Follows the "Values, V" section of the attention note (001 in the seeds):

1. v (3x2, two value vectors side by side) is a parameter and z = v alpha^T with
   fixed attention weights alpha: each column of dL/dv is dL/dz scaled by its alpha,
   dL/dv = (z - y) alpha;
2. v = Vx + b is the output of a layer with V (3x3) and b (3x1) trainable: ten plain
   gradient steps with eta = 0.002 on the note's data, printing the loss at every
   step and the final V, b and z. The bias is shared by both columns of x, so its
   gradient is the sum of the columns of dL/dv.

Run ``python examples/attention_values.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "attention_values"

# the note's data for the V loop
V0 = [[-1.0, 6.0, 7.0], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]]
B0 = [[0.0], [0.0], [0.0]]
ALPHA = [[5.0, -2.0]]
X = [[1.0, 3.0], [4.0, 0.3], [2.0, 2.0]]
Y = [[-1.0], [20.0], [5.0]]
LEARNING_RATE = 0.002
STEPS = 10


def show(label: str, array) -> None:
    """Print an array under its label, four decimals; a column vector as a transposed row."""
    array = np.asarray(array, dtype=float) + 0.0  # + 0.0 turns -0.0 into 0.0
    if array.ndim == 2 and array.shape[1] == 1:
        print(f"{label} = {np.array2string(array.ravel(), precision=4, suppress_small=True)}^T")
        return
    text = np.array2string(array, precision=4, suppress_small=True)
    if "\n" in text:
        print(f"{label}:\n    " + text.replace("\n", "\n    "))
    else:
        print(f"{label} = {text}")


def values_as_parameters(outdir: Path) -> dict:
    """Part 1: v itself is trained; the gradient reaching each column is scaled by its alpha."""
    g = dp.Graph()
    v = g.param("v", np.asarray(V0) @ np.asarray(X) + np.asarray(B0))  # the layer's first output, as a start
    alpha = g.input("alpha", ALPHA)
    z = g.op("matmul", v, g.op("transpose", alpha, name="alpha_T"), name="z")
    L = g.ops.l2_loss(z, g.input("y", Y), name="L")
    g.forward()
    g.backward(L)
    print("== 1. z = v alpha^T with v a parameter")
    show("v", v.value)
    show("alpha", alpha.value)
    show("z", z.value)
    print(f"L = {float(L.value):.4f}")
    show("dL/dz = z - y", z.grad)
    show("dL/dv = (z - y) alpha", v.grad)
    print(f"each column of dL/dv is dL/dz times its alpha: {np.allclose(v.grad, z.grad @ alpha.value)}")
    dp.render(g, outdir / "values_v.png", title="z = v alpha^T: the gradient reaching v is scaled by alpha")
    return {"z": z.value.copy(), "L": float(L.value), "dv": v.grad.copy()}


def values_layer(outdir: Path) -> dict:
    """Part 2: v = Vx + b, trained for the note's ten steps."""
    g = dp.Graph()
    x = g.input("x", X)
    V = g.param("V", V0)
    b = g.param("b", B0)
    alpha = g.input("alpha", ALPHA)
    v = g.op("add", g.op("matmul", V, x, name="Vx"), b, name="v")
    z = g.op("matmul", v, g.op("transpose", alpha, name="alpha_T"), name="z")
    L = g.ops.l2_loss(z, g.input("y", Y), name="L")

    print(f"\n== 2. v = Vx + b as a layer: {STEPS} steps of plain gradient descent, eta = {LEARNING_RATE}")
    losses = []
    for step in range(1, STEPS + 1):
        g.zero_grad()
        g.forward()
        g.backward(L)
        if step == 1:
            show("dL/dv at step 1", v.grad)
            show("dL/dV = (z - y) alpha x^T at step 1", V.grad)
            show("dL/db = sum of the columns of dL/dv at step 1", b.grad)
            diagram = dp.render(g, outdir / "values_layer.png",
                                title="v = Vx + b, z = v alpha^T: first step of the note's V loop")
            (outdir / "values_layer.dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py
        losses.append(float(L.value))
        print(f"step {step:2d}  loss {losses[-1]:.6g}")
        g.step(lr=LEARNING_RATE)
    g.forward()
    show("V after training", V.value)
    show("b after training", b.value)
    show("z after training", z.value)
    show("y (the target)", Y)
    print(f"loss after training = {float(L.value):.3g}")
    return {"losses": losses, "V": V.value.copy(), "b": b.value.copy(), "z": z.value.copy(),
            "final_loss": float(L.value)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = {"parameters": values_as_parameters(args.outdir), "layer": values_layer(args.outdir)}
    print(f"\ndiagrams written to {args.outdir}/: values_v.png, values_layer.png")
    return results


if __name__ == "__main__":
    main()
