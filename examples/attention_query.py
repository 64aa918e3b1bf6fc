"""Attention's query: e = (Qx)^T k, with Q trained by gradient descent.

Follows the "Query, Q" section of the attention note (001 in the seeds): a query
q = Qx (the bias absorbed into Q as its last column, a 1 appended to x) is scored
against three keys, the columns of k, giving e = q^T k. With L = 0.5 ||e - y||^2:

    dL/de = e - y,   dL/dq = k (e - y)^T,   dL/dQ = dL/dq x^T.

The note's loop runs 100 steps with eta = 0.02 on its data; dagprop runs the same
loop with its own gradients, checked against finite differences.

The note's code differs from the chain rule in one place, and this example shows
where: for the weight block of Q it multiplies dL/dq and x elementwise instead of
taking their outer product, so every row of Q gets the same update. Its loop still
brings the loss down, but not the same way; both runs are printed side by side.

Run ``python examples/attention_query.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "attention_query"

# the note's data: the last column of Q is the bias (starting at 0), the last entry of x is 1
Q0 = [[1.0, 5.0, 0.2, 0.0], [1.0, 2.0, 0.4, 0.0], [4.0, 5.0, 1.0, 0.0]]
KEYS = [[1.0, -3.0, 6.0], [2.0, 0.0, 1.0], [4.0, 5.0, 1.0]]  # the keys k1, k2, k3 are the columns
X = [[0.5], [0.5], [0.3], [1.0]]
Y = [[-3.14, -6.3, 2.21]]
LEARNING_RATE = 0.02
STEPS = 100
PRINTED_STEPS = {1, 2, 3, 4, 5} | set(range(10, STEPS + 1, 10))


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


def build() -> dp.Graph:
    g = dp.Graph()
    Q = g.param("Q", Q0)
    x = g.input("x", X)
    k = g.input("k", KEYS)
    q = g.op("matmul", Q, x, name="q")
    e = g.op("matmul", g.op("transpose", q, name="q_T"), k, name="e")
    g.ops.l2_loss(e, g.input("y", Y), name="L")
    return g


def train_with_dagprop(outdir: Path) -> dict:
    g = build()
    Q, q, e, L = g["Q"], g["q"], g["e"], g["L"]
    print(f"== dagprop: {STEPS} steps of gradient descent on Q, eta = {LEARNING_RATE}")
    losses = []
    for step in range(1, STEPS + 1):
        g.zero_grad()
        g.forward()
        g.backward(L)
        if step == 1:
            show("q = Qx", q.value)
            show("e = q^T k", e.value)
            show("dL/de = e - y", e.grad)
            show("dL/dq = k (e - y)^T", q.grad)
            show("dL/dQ = dL/dq x^T (last column: the bias)", Q.grad)
            report = dp.gradcheck(g, L)
            print(f"finite differences agree with dL/dQ: max difference {report.max_abs_error['Q']:.2g}")
            first_grad = Q.grad.copy()
            dp.render(g, outdir / "query.png", title="e = (Qx)^T k: first step of the note's Q loop")
        losses.append(float(L.value))
        if step in PRINTED_STEPS:
            print(f"step {step:3d}  loss {losses[-1]:.6g}")
        g.step(lr=LEARNING_RATE)
    g.forward()
    show("Q after training", Q.value)
    show("e after training", e.value)
    show("y (the target)", Y)
    print(f"loss after training = {float(L.value):.4g}")
    return {"losses": losses, "Q": Q.value.copy(), "e": e.value.copy(), "final_loss": float(L.value),
            "first_grad": first_grad, "gradcheck_error": report.max_abs_error["Q"]}


def note_update(Q: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss at Q and the change the note's code makes to Q (before scaling by -eta).

    Written from the note's description of its loop: the gradient of the query, a
    row, is multiplied elementwise by x without its trailing 1 and the result
    broadcast down every row of the weight block; the bias column gets dL/dq.
    """
    x = np.asarray(X).ravel()
    k = np.asarray(KEYS)
    e = (Q @ x) @ k
    dq = k @ (e - np.asarray(Y).ravel())
    change = np.empty_like(Q)
    change[:, :-1] = (dq * x[:-1])[None, :]
    change[:, -1] = dq
    return 0.5 * float(np.sum((e - np.asarray(Y).ravel()) ** 2)), change


def train_like_the_note(dagprop_run: dict) -> dict:
    print("\n== the note's update rule, for comparison")
    Q = np.array(Q0)
    _, change = note_update(Q)
    show("the note's step-1 change to Q (before -eta)", change)
    show("dagprop's dL/dQ at step 1", dagprop_run["first_grad"])
    agree = np.isclose(change, dagprop_run["first_grad"])
    print("they agree only where marked 1 (the diagonal of the weight block and the bias column):")
    print("    " + np.array2string(agree.astype(int)).replace("\n", "\n    "))
    print("The chain rule gives dL/dQ[i, j] = dL/dq[i] * x[j], an outer product. The note's code\n"
          "multiplies the row dL/dq by the row x elementwise, giving one row dL/dq[j] * x[j], and\n"
          "broadcasts it down all three rows of Q: element (i, j) moves by dL/dq[j] * x[j] instead\n"
          "of dL/dq[i] * x[j]. Only i = j matches; the bias column, dL/dq[i] * 1, is right.")
    losses = []
    for _ in range(STEPS):
        loss, change = note_update(Q)
        losses.append(loss)
        Q = Q - LEARNING_RATE * change
    final_loss, _ = note_update(Q)
    e = (Q @ np.asarray(X).ravel()) @ np.asarray(KEYS)
    print(f"{'step':>4}  {'dagprop (chain rule)':>20}  {'note rule':>12}")
    for step in sorted(PRINTED_STEPS):
        print(f"{step:4d}  {dagprop_run['losses'][step - 1]:20.6g}  {losses[step - 1]:12.6g}")
    print(f"loss after {STEPS} steps: dagprop {dagprop_run['final_loss']:.4g}, note rule {final_loss:.4g}")
    show("Q after the note rule", Q)
    show("e after the note rule", e)
    ratio = final_loss / dagprop_run["final_loss"]
    print(f"Both runs bring e close to y: on this data the note's rule still lowers the loss, but it\n"
          f"is not the gradient, and after {STEPS} steps its loss is {ratio:.0f} times dagprop's.")
    return {"losses": losses, "Q": Q, "final_loss": final_loss}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = {"dagprop": train_with_dagprop(args.outdir)}
    results["note_rule"] = train_like_the_note(results["dagprop"])
    print(f"\ndiagram written to {args.outdir}/query.png")
    return results


if __name__ == "__main__":
    main()
