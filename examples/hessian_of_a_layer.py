"""The Hessian of a small layer's loss, and the backward pass it is taken through, drawn as nodes.

The layer is z = tanh(W x + b) with the L2 loss L = 0.5 sum((z - y)^2), W 2 x 3, and
the second derivatives are taken with respect to its input x. By hand, with
s = 1 - z^2 (tanh's derivative) and r = z - y:

    dL/dx   = W^T (r s)
    d2L/dx2 = W^T diag(s^2 - 2 r z s) W

(the first term from s times s, the second from r times the derivative of s,
-2 z s). dagprop gets second derivatives by building the backward pass out of
ordinary graph nodes (``backward(create_graph=True)``, in the scope "backward") and
differentiating those nodes again:

* ``g.hessian(L, x)``: reverse over reverse, one backward pass through the backward
  nodes per element of x;
* ``g.hvp(L, x, v)``: forward over reverse, one forward-mode pass through them, the
  Hessian times v without the Hessian;
* by hand, on the drawn graph: ``x.grad_node`` is the node computing dL/dx, and
  ``g.backward(x.grad_node, seed=e_i)`` gives row i of the Hessian.

All three are checked against the closed form, against central differences of the
gradients, and against ``torch.autograd.functional.hessian`` when torch is
installed (it is optional). The pictures show the layer with its backward pass,
every node of the scope "backward" one step of the chain rule, and then the
gradients a second backward pass sends through those nodes.

Run ``python examples/hessian_of_a_layer.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "hessian_of_a_layer"
W = [[0.8, -0.5, 0.3], [0.2, 0.9, -0.7]]
B = [0.1, -0.2]
X = [0.5, -1.0, 0.8]
Y = [0.5, -0.3]
V = [1.0, -2.0, 0.5]  # the direction of the Hessian-vector product
STEP = 1e-5  # of the central differences of the gradient


def layer() -> dp.Graph:
    """L = 0.5 sum((tanh(W x + b) - y)^2), with x the only thing differentiated."""
    g = dp.Graph()
    x = g.input("x", X, requires_grad=True)
    a = g.op("add", g.op("matmul", g.input("W", W), x, name="Wx"), g.input("b", B), name="a")
    g.op("l2_loss", g.op("tanh", a, name="z"), g.input("y", Y), name="L")
    g.forward()
    return g


def gradient_at(g: dp.Graph, x: np.ndarray) -> np.ndarray:
    g.forward(feeds={"x": x})
    g.zero_grad()
    g.backward("L")
    return g["x"].grad.copy()


def central_differences(g: dp.Graph) -> np.ndarray:
    """Column k: how dL/dx changes when x[k] moves, from two backward passes around X."""
    x = np.array(X)
    columns = []
    for k in range(x.size):
        step = np.eye(x.size)[k] * STEP
        columns.append((gradient_at(g, x + step) - gradient_at(g, x - step)) / (2 * STEP))
    gradient_at(g, x)  # leave the graph at X
    return np.stack(columns, axis=1)


def closed_form() -> tuple[np.ndarray, np.ndarray]:
    """dL/dx and d2L/dx2 from the formulas above."""
    weights = np.array(W)
    z = np.tanh(weights @ np.array(X) + np.array(B))
    s, r = 1 - z**2, z - np.array(Y)
    return weights.T @ (r * s), weights.T @ np.diag(s**2 - 2 * r * z * s) @ weights


def torch_hessian() -> np.ndarray | None:
    """The same Hessian from torch.autograd.functional.hessian; None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    weights, bias, target = (torch.tensor(m, dtype=torch.float64) for m in (W, B, Y))

    def loss(x):
        return 0.5 * ((torch.tanh(weights @ x + bias) - target) ** 2).sum()

    return torch.autograd.functional.hessian(loss, torch.tensor(X, dtype=torch.float64)).numpy()


def show(name: str, matrix: np.ndarray) -> None:
    print(f"{name}:\n    " + np.array2string(matrix, precision=6, suppress_small=True).replace("\n", "\n    "))


def second_derivatives() -> dict:
    print("== 1. the Hessian of L = 0.5 sum((tanh(W x + b) - y)^2) with respect to x (3 x 3)")
    g = layer()
    grad, expected = closed_form()
    hessian = g.hessian("L", "x")
    show("g.hessian(L, x), reverse over reverse", hessian)
    show("closed form W^T diag(s^2 - 2 r z s) W", expected)
    numeric = central_differences(g)
    print(f"largest difference from the closed form {np.abs(hessian - expected).max():.2g}, "
          f"from central differences of dagprop's gradients {np.abs(hessian - numeric).max():.2g}; "
          f"symmetric: {np.allclose(hessian, hessian.T, rtol=0, atol=1e-15)}")
    by_torch = torch_hessian()
    if by_torch is None:
        print("torch is not installed, so the check against torch.autograd.functional.hessian is skipped "
              "(pip install torch to run it)")
    else:
        print(f"torch.autograd.functional.hessian: largest difference {np.abs(hessian - by_torch).max():.2g}")

    hvp = g.hvp("L", "x", V)
    print(f"g.hvp(L, x, v) with v = {V}, forward over reverse: {np.array2string(hvp, precision=6)}; "
          f"the Hessian times v: {np.array2string(expected @ np.array(V), precision=6)}")
    return {"gradient": gradient_at(g, np.array(X)), "closed_gradient": grad, "hessian": hessian, "hvp": hvp,
            "central": numeric, "torch": by_torch}


def drawn(outdir: Path) -> dict:
    print("\n== 2. the backward pass as nodes, and differentiated again")
    g = layer()
    g.backward("L", create_graph=True)
    x = g["x"]
    backward = [n for n in g if n.scope == ("backward",)]
    print(f"backward(create_graph=True) added {len(backward)} nodes in the scope 'backward': "
          f"{', '.join(f'{n.name} ({n.op or n.kind})' for n in backward)}")
    grad_node = x.grad_node
    print(f"x.grad_node is {grad_node.name!r}, a {grad_node.op} node: its value "
          f"{np.array2string(grad_node.value, precision=6)} is x.grad, W^T (r s)")
    title = (f"L = \u00bd\u2016tanh(Wx + b) \u2212 y\u2016\u00b2 with its backward pass as nodes (scope backward): "
             f"the node {grad_node.name} (highlighted) is x's gradient")
    diagram = dp.render(g, outdir / "layer_backward.png", rankdir="TB", highlight=[x, grad_node], title=title)
    (outdir / "layer_backward.dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py

    rows = []
    for i in range(x.value.size):
        g.zero_grad()
        g.backward(grad_node, seed=np.eye(x.value.size)[i])
        rows.append(x.grad.copy())
    by_hand = np.stack(rows)
    show(f"backward from {grad_node.name} seeded with e_i, row by row", by_hand)

    # seeded with v instead, the same pass gives the Hessian times v (the Hessian is symmetric)
    g.zero_grad()
    g.backward(grad_node, seed=V)
    reverse_hvp = x.grad.copy()
    print(f"seeded with v: x.grad = {np.array2string(reverse_hvp, precision=6)}, the Hessian times v again")
    dp.render(g, outdir / "layer_second_order.png", rankdir="TB", highlight=[x, grad_node],
              title=f"the backward pass differentiated again: backward from {grad_node.name} = dL/dx, seeded "
                    f"with v = ({', '.join(f'{c:g}' for c in V)}), leaves H v in x.grad")
    return {"backward_nodes": [n.name for n in backward], "grad_node": grad_node.name,
            "grad_node_value": np.array(grad_node.value), "by_hand": by_hand, "reverse_hvp": reverse_hvp,
            "pictures": ["layer_backward.png", "layer_second_order.png"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = second_derivatives()
    results.update(drawn(args.outdir))
    print(f"\ndiagrams written to {args.outdir}/: {', '.join(results['pictures'])}")
    return results


if __name__ == "__main__":
    main()
