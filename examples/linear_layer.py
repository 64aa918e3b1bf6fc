"""A linear layer z = Wx + b with the L2 loss, as in the attention note's recap.

Three versions of the same layer, each run forward and backward by dagprop:

1. a column-vector input x (3 features, 4 outputs): dL/dz = z - y,
   dL/dW = (z - y) x^T and dL/db = z - y, then one update step;
2. a matrix input of three columns (three samples side by side): the bias is added
   to every column, so dL/db is the sum of the columns of dL/dz;
3. the bias absorbed into W as an extra column and a row of ones appended to x:
   the same gradients as part 2, now as one matrix.

Run ``python examples/linear_layer.py [-o OUTDIR]``; it prints the numbers and
writes one annotated diagram per part.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "linear_layer"
LEARNING_RATE = 0.1

# part 1: four outputs from three inputs, as in the note's first figure
VECTOR = {
    "W": [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [-1.0, 1.0, 1.0], [0.0, -0.5, 2.0]],
    "b": [[0.5], [-0.5], [1.0], [0.0]],
    "x": [[1.0], [2.0], [-1.0]],
    "y": [[1.0], [2.0], [0.0], [-1.0]],
}
# parts 2 and 3: two outputs from two inputs, three samples as columns, as in the note's second figure
MATRIX = {
    "W": [[1.0, -1.0], [0.5, 2.0]],
    "b": [[0.5], [-1.0]],
    "x": [[1.0, 2.0, 0.0], [3.0, -1.0, 1.0]],
    "y": [[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]],
}


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


def linear_graph(data: dict) -> dp.Graph:
    """z = W @ x + b and L = 0.5 * ||z - y||^2, run forward and backward."""
    g = dp.Graph()
    x = g.input("x", data["x"])
    W = g.param("W", data["W"])
    b = g.param("b", data["b"])
    y = g.input("y", data["y"])
    z = g.op("add", g.op("matmul", W, x, name="Wx"), b, name="z")
    L = g.ops.l2_loss(z, y, name="L")
    g.forward()
    g.backward(L)
    return g


def column_vector(outdir: Path) -> dict:
    g = linear_graph(VECTOR)
    W, b, x, y, z, L = (g[n] for n in ("W", "b", "x", "y", "z", "L"))
    print("== 1. column-vector input: z = Wx + b, L = 0.5 ||z - y||^2")
    show("z", z.value)
    print(f"L = {float(L.value):.4f}")
    show("dL/dz = z - y", z.grad)
    show("dL/dW = (z - y) x^T", W.grad)
    show("dL/db = z - y", b.grad)
    print(f"dL/dW equals the outer product (z - y) x^T: {np.allclose(W.grad, (z.value - y.value) @ x.value.T)}")
    dp.render(g, outdir / "linear_vector.png", title="z = Wx + b with a column-vector input")
    result = {"z": z.value.copy(), "L": float(L.value), "dW": W.grad.copy(), "db": b.grad.copy()}

    # the note's update step W <- W - eta (z - y) x^T, b <- b - eta (z - y) is one plain SGD step
    g.step(lr=LEARNING_RATE)
    g.forward()
    show(f"W after one step with eta = {LEARNING_RATE}", W.value)
    show(f"b after one step with eta = {LEARNING_RATE}", b.value)
    print(f"L after one step = {float(L.value):.4f}")
    result.update(W_after=W.value.copy(), b_after=b.value.copy(), L_after=float(L.value))
    return result


def matrix_input(outdir: Path) -> dict:
    g = linear_graph(MATRIX)
    W, b, x, z, L = (g[n] for n in ("W", "b", "x", "z", "L"))
    print("\n== 2. a matrix input of three columns: b is added to every column")
    show("z", z.value)
    print(f"L = {float(L.value):.4f}")
    show("dL/dz = z - y", z.grad)
    show("dL/dW = (z - y) x^T", W.grad)
    show("dL/db", b.grad)
    sumcols = z.grad.sum(axis=1, keepdims=True)
    show("sum of the columns of dL/dz", sumcols)
    print(f"dL/db is the sum of the columns of dL/dz: {np.allclose(b.grad, sumcols)}")
    # each column alone is the column-vector case; the matrix product adds their three updates
    for column in range(3):
        show(f"dL/dW from column {column + 1} alone", np.outer(z.grad[:, column], x.value[:, column]))
    diagram = dp.render(g, outdir / "linear_matrix.png",
                        title="three input columns: the edge from b carries the column sum")
    (outdir / "linear_matrix.dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py
    return {"z": z.value.copy(), "L": float(L.value), "dW": W.grad.copy(), "db": b.grad.copy()}


def bias_absorbed(outdir: Path, matrix: dict) -> dict:
    g = dp.Graph()
    x = np.asarray(MATRIX["x"])
    x1 = g.input("x1", np.vstack([x, np.ones((1, x.shape[1]))]))
    Wb = g.param("Wb", np.hstack([MATRIX["W"], MATRIX["b"]]))
    z = g.op("matmul", Wb, x1, name="z")
    L = g.ops.l2_loss(z, g.input("y", MATRIX["y"]), name="L")
    g.forward()
    g.backward(L)
    print("\n== 3. the bias absorbed: [W | b] times x with a row of ones appended")
    show("[W | b]", Wb.value)
    show("x with a row of ones", x1.value)
    show("dL/d[W | b]", Wb.grad)
    print(f"L = {float(L.value):.4f} (part 2: {matrix['L']:.4f})")
    print(f"its first columns equal dL/dW of part 2: {np.allclose(Wb.grad[:, :-1], matrix['dW'])}; "
          f"its last column equals dL/db: {np.allclose(Wb.grad[:, -1:], matrix['db'])}")
    dp.render(g, outdir / "linear_absorbed.png", title="the bias absorbed into W, a row of ones appended to x")
    return {"L": float(L.value), "dWb": Wb.grad.copy()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    results = {"vector": column_vector(args.outdir)}
    results["matrix"] = matrix_input(args.outdir)
    results["absorbed"] = bias_absorbed(args.outdir, results["matrix"])
    print(f"\ndiagrams written to {args.outdir}/: linear_vector.png, linear_matrix.png, linear_absorbed.png")
    return results


if __name__ == "__main__":
    main()
