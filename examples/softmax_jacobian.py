"""Explicit Jacobians of A = QK and S = softmax(A), and how contracting them gives the backward pass.

A question and answer on the Jacobian of attention scores (002 in the seeds): Q is
3x2, K is 2x3, A = QK is 3x3 and S = softmax(A). How do dA/dQ and dS/dQ look, and
how do they give dL/dQ? The answer: dA_ij/dQ_rs = delta_ir K_sj, a 3x3x3x2 tensor,
and dL/dQ_rs = sum_ij dL/dA_ij dA_ij/dQ_rs.

dagprop builds the full Jacobians with ``g.jacobian(S, Q)`` (shape S.shape + Q.shape),
checks them against closed forms, and shows that contracting dS/dQ with dL/dS gives
exactly the Q.grad of an ordinary (vjp) backward pass. The loss is L = sum(C * S)
for a fixed matrix C (the question's constant), so dL/dS = C.

Two softmaxes are shown: row by row (each query's scores, as attention does), and
over all nine entries at once (as the answer writes it). For the second, the
answer's final formula drops a factor S_ij from its first term; the example shows
the difference numerically.

Run ``python examples/softmax_jacobian.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "softmax_jacobian"
Q0 = [[1.0, 0.5], [-0.5, 1.0], [0.2, -1.0]]
K0 = [[0.5, -1.0, 1.0], [1.0, 0.3, -0.5]]
C = [[1.0, 0.0, -1.0], [2.0, -1.0, 0.5], [0.0, 1.0, -2.0]]


def show(label: str, array, precision: int = 4) -> None:
    text = np.array2string(np.asarray(array, dtype=float) + 0.0, precision=precision, suppress_small=True)
    print(f"{label}:\n    " + text.replace("\n", "\n    "))


def build(over_all_entries: bool) -> dp.Graph:
    g = dp.Graph()
    Q = g.param("Q", Q0)
    K = g.param("K", K0)
    A = g.op("matmul", Q, K, name="A")
    if over_all_entries:
        flat = g.op("softmax", g.op("reshape", A, shape=(9,), name="A_flat"), name="S_flat")
        S = g.op("reshape", flat, shape=(3, 3), name="S")
    else:
        S = g.op("softmax", A, axis=-1, name="S")
    g.op("sum", g.op("mul", S, g.input("C", C), name="C*S"), name="L")
    g.forward()
    g.backward(g["L"])
    return g


def contraction(g: dp.Graph) -> dict:
    """dS/dQ and dS/dK from dagprop, contracted with dL/dS = C, against the vjp backward pass."""
    dS_dQ = g.jacobian("S", "Q")
    dS_dK = g.jacobian("S", "K")
    from_jacobian_Q = np.tensordot(np.asarray(C), dS_dQ, axes=2)
    from_jacobian_K = np.tensordot(np.asarray(C), dS_dK, axes=2)
    show("dL/dQ = sum_ij C_ij dS_ij/dQ (contracting the Jacobian)", from_jacobian_Q)
    show("dL/dQ from backward (vjps)", g["Q"].grad)
    print(f"equal: Q {np.allclose(from_jacobian_Q, g['Q'].grad)}, "
          f"K {np.allclose(from_jacobian_K, g['K'].grad)}")
    # the answer's last step: dL/dQ_rs = sum_j dL/dA_rj K_sj, i.e. dL/dA K^T
    print(f"dL/dQ = dL/dA K^T, the answer's sum over j: {np.allclose(g['A'].grad @ np.asarray(K0).T, g['Q'].grad)}")
    g.zero_grad()
    g.backward("L", mode="jacobian")
    print(f"backward(mode='jacobian') gives the same dL/dQ: {np.allclose(g['Q'].grad, from_jacobian_Q)}")
    return {"dS_dQ": dS_dQ, "dS_dK": dS_dK, "dL_dQ": from_jacobian_Q, "dL_dK": from_jacobian_K}


def rowwise(outdir: Path) -> dict:
    print("== softmax along each row of A (each query's scores)")
    g = build(over_all_entries=False)
    Q, K, S = (np.asarray(g[n].value) for n in ("Q", "K", "S"))
    show("A = QK", g["A"].value)
    show("S = softmax(A) by rows", S)
    print(f"L = sum(C * S) = {float(g['L'].value):.4f}")

    dA_dQ = g.jacobian("A", "Q")
    eye = np.eye(3)
    closed_A = np.einsum("ir,sj->ijrs", eye, K)  # dA_ij/dQ_rs = delta_ir K_sj
    print(f"dA/dQ has shape {dA_dQ.shape} and equals delta_ir K_sj: {np.allclose(dA_dQ, closed_A)}")

    result = contraction(g)
    dS_dQ = result["dS_dQ"]
    # row i of S depends on row i of Q only: dS_ij/dQ_cd = delta_ic S_ij (K_dj - sum_s S_is K_ds)
    mean_key = S @ K.T  # (i, d): sum_s S_is K_ds
    closed_S = np.einsum("ic,ij,idj->ijcd", eye, S, K[None, :, :] - mean_key[:, :, None])
    print(f"dS/dQ has shape {dS_dQ.shape} and equals delta_ic S_ij (K_dj - sum_s S_is K_ds): "
          f"{np.allclose(dS_dQ, closed_S)}")
    others = np.abs(np.delete(dS_dQ[0], 0, axis=1)).max()
    print(f"row 0 of S does not move with rows 1 and 2 of Q: largest |dS_0j/dQ_cd| for c != 0 is {others}")
    show("dS_0j/dQ_0d (a row per j, a column per d)", dS_dQ[0, :, 0, :], 3)
    dp.render(g, outdir / "softmax_rows.png", rankdir="TB", title="A = QK, S = softmax(A) by rows, L = sum(C * S)")
    result.update(S=S, closed_S=closed_S, dA_dQ=dA_dQ)
    return result


def all_entries(outdir: Path) -> dict:
    print("\n== softmax over all nine entries of A at once, as the answer writes it")
    g = build(over_all_entries=True)
    Q, K, S = (np.asarray(g[n].value) for n in ("Q", "K", "S"))
    show("S = softmax over all of A", S)
    print(f"L = sum(C * S) = {float(g['L'].value):.4f}")
    dS_dA = g.jacobian("S", "A")
    s = S.ravel()
    print(f"dS/dA has shape {dS_dA.shape}; as a 9x9 matrix it is diag(s) - s s^T: "
          f"{np.allclose(dS_dA.reshape(9, 9), np.diag(s) - np.outer(s, s))}")
    print("(the question called this 9x9 matrix dL/dA; as the answer's comments say, dL/dA is 3x3 like A)")
    show("dL/dA", g["A"].grad)

    result = contraction(g)
    dS_dQ = result["dS_dQ"]
    eye = np.eye(3)
    coupling = S @ K.T  # (c, d): sum_s S_cs K_ds
    corrected = np.einsum("ij,ic,dj->ijcd", S, eye, K) - np.einsum("ij,cd->ijcd", S, coupling)
    as_printed = np.einsum("ic,dj->ijcd", eye, K) - np.einsum("ij,cd->ijcd", S, coupling)
    print("the answer's final formula, reading its a_ij as S_ij:")
    print("    dS_ij/dQ_cd = delta_ic K_dj - sum_s S_ij S_cs K_ds")
    print("the chain rule through its own dS/dA (delta delta S_ij - S_ij S_rs) gives")
    print("    dS_ij/dQ_cd = delta_ic S_ij K_dj - sum_s S_ij S_cs K_ds")
    print(f"dagprop's dS/dQ equals the second: {np.allclose(dS_dQ, corrected)}; the first differs by up to "
          f"{np.abs(as_printed - dS_dQ).max():.3f}, because it drops the factor S_ij from its first term")
    # max_matrix: show the nine-entry vectors in full rather than summarised
    dp.render(g, outdir / "softmax_all.png", rankdir="TB", max_matrix=(6, 9),
              title="softmax over all nine entries of A, L = sum(C * S)")
    result.update(S=S, corrected=corrected, as_printed=as_printed)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = {"rows": rowwise(args.outdir), "all": all_entries(args.outdir)}
    print(f"\ndiagrams written to {args.outdir}/: softmax_rows.png, softmax_all.png")
    return results


if __name__ == "__main__":
    main()
