"""Attention's keys: e = q^T (Kx), with K trained by gradient descent.

Follows the "Keys, K" section of the attention note (001 in the seeds): three
inputs, the columns of x (each with a 1 appended for the bias absorbed into K),
become three keys k = Kx; a fixed query q scores them, e = q^T k. With
L = 0.5 ||e - y||^2:

    dL/de = e - y,   dL/dk = q (e - y),   dL/dK = dL/dk x^T.

The last column of dL/dK is the bias gradient: dL/dk times the row of ones, that is
the sum of the columns of dL/dk, since one bias is shared by all three inputs.
The note's loop runs 300 steps with eta = 0.01 on its data; dagprop runs the same.

Run ``python examples/attention_keys.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "attention_keys"

# the note's data: the last column of K is the bias (starting at 0), the last row of x is ones
K0 = [[1.0, -3.0, 6.0, 0.0], [2.0, 0.0, 1.0, 0.0], [4.0, 5.0, 1.0, 0.0]]
QUERY = [[1.0], [5.0], [0.2]]
X = [[0.5, 0.2, 0.4], [0.5, 0.2, 0.6], [0.3, 0.25, 0.7], [1.0, 1.0, 1.0]]
Y = [[-3.14, -6.3, 2.21]]
LEARNING_RATE = 0.01
STEPS = 300
PRINTED_STEPS = {1, 2, 3, 4, 5} | set(range(25, STEPS + 1, 25))


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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    g = dp.Graph()
    K = g.param("K", K0)
    x = g.input("x", X)
    q = g.input("q", QUERY)
    k = g.op("matmul", K, x, name="k")
    e = g.op("matmul", g.op("transpose", q, name="q_T"), k, name="e")
    L = g.ops.l2_loss(e, g.input("y", Y), name="L")

    print(f"== dagprop: {STEPS} steps of gradient descent on K, eta = {LEARNING_RATE}")
    losses = []
    for step in range(1, STEPS + 1):
        g.zero_grad()
        g.forward()
        g.backward(L)
        if step == 1:
            show("k = Kx (one key per column)", k.value)
            show("e = q^T k", e.value)
            show("dL/de = e - y", e.grad)
            show("dL/dk = q (e - y)", k.grad)
            show("dL/dK = dL/dk x^T (last column: the bias)", K.grad)
            show("sum of the columns of dL/dk", k.grad.sum(axis=1, keepdims=True))
            report = dp.gradcheck(g, L)
            print(f"finite differences agree with dL/dK: max difference {report.max_abs_error['K']:.2g}")
            first_grad = K.grad.copy()
            dp.render(g, args.outdir / "keys.png", title="e = q^T (Kx): first step of the note's K loop")
        losses.append(float(L.value))
        if step in PRINTED_STEPS:
            print(f"step {step:3d}  loss {losses[-1]:.6g}")
        g.step(lr=LEARNING_RATE)
    g.forward()
    show("K after training", K.value)
    show("e after training", e.value)
    show("y (the target)", Y)
    print(f"loss after training = {float(L.value):.4g}")
    print("The note's update for K is the chain rule's: dL/dk x^T for the weights and the column\n"
          "sums of dL/dk for the bias, so its loop and dagprop's are the same computation.")
    print(f"\ndiagram written to {args.outdir}/keys.png")
    return {"losses": losses, "K": K.value.copy(), "e": e.value.copy(), "final_loss": float(L.value),
            "first_grad": first_grad, "gradcheck_error": report.max_abs_error["K"]}


if __name__ == "__main__":
    main()
