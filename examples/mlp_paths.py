"""The 4-4-2 network of the backpropagation course notes, and every path behind two weight gradients.

The notes (003 in the seeds) take x = [2 5 3 3], y = [1 0], a sigmoid hidden layer,
a softmax output and the squared error L = sum((y - yhat)^2), and work out by hand

* dL/dw212 (W2[0,1], from h12 to a21) along one path: -0.065;
* dL/dw131 (W1[2,0], from x1 to a13) along two paths: 0.001595.

dagprop computes both gradients, lists every element-level path with its factors
and contribution, checks the sums against finite differences, and puts the three
numbers side by side. They disagree with the notes by a factor of two, and the
paths show why: the notes follow each softmax output only from its own input
(dyhat1/da21) and leave out the cross terms (dyhat2/da21 = -yhat1 yhat2), which the
softmax's shared denominator creates. With two classes those left-out paths carry
exactly as much as the kept ones.

Run ``python examples/mlp_paths.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp
from dagprop.drawing.style import PALETTE, PALETTE_NAMES

NAME = "mlp_paths"

# the notes' network; its printed forward values are those of zero biases, so there are none here
W1 = [[0.1, 0.3, 0.8, -0.4], [-0.3, -0.2, 0.5, 0.5], [-0.3, 0.0, 0.5, 0.4], [0.2, 0.5, -0.9, 0.7]]
W2 = [[0.5, 0.8, 0.2, 0.4], [0.5, 0.2, 0.3, -0.5]]
X = [2.0, 5.0, 3.0, 3.0]
Y = [1.0, 0.0]
LEARNING_RATE = 1.0  # the notes' update step uses eta = 1

# what the notes print (rounded by hand)
NOTE_FORWARD = {"a1": [2.9, 1.4, 2.1, 2.3], "h1": [0.95, 0.80, 0.89, 0.91], "a2": [1.66, 0.45],
                "yhat": [0.77, 0.23], "L": 0.1058}
NOTE_GRADIENT = {"w212": -0.065, "w131": 0.001595}
NOTE_UPDATED = {"w212": 0.865, "w131": -0.301595}
# the paths the notes add up: the elements each one follows, the notes' rounded factors and their product
NOTE_PATHS = {
    "w212": [(("W2[0,1]", "a2[0]", "yhat[0]", "L"), (0.8, 0.1771, -0.46), -0.065)],
    "w131": [(("W1[2,0]", "a1[2]", "h1[2]", "a2[0]", "yhat[0]", "L"), (2.0, 0.0979, 0.2, 0.1771, -0.46), -0.003190),
             (("W1[2,0]", "a1[2]", "h1[2]", "a2[1]", "yhat[1]", "L"), (2.0, 0.0979, 0.3, 0.1771, 0.46), 0.004785)],
}
WEIGHTS = {"w212": ("W2", (0, 1)), "w131": ("W1", (2, 0))}


def build() -> dp.Graph:
    g = dp.Graph()
    x = g.input("x", X)
    first = g.param("W1", W1)
    second = g.param("W2", W2)
    a1 = g.op("matmul", first, x, name="a1")
    h1 = g.op("sigmoid", a1, name="h1")
    a2 = g.op("matmul", second, h1, name="a2")
    yhat = g.op("softmax", a2, name="yhat")
    g.ops.squared_error(yhat, g.input("y", Y), name="L")
    g.forward()
    g.backward(g["L"])
    return g


def show_forward(g: dp.Graph) -> dict:
    print("== forward values: dagprop (exact) and the notes (rounded)")
    values = {}
    for name in ("a1", "h1", "a2", "yhat", "L"):
        values[name] = g[name].value.copy()
        if values[name].ndim:
            ours = np.array2string(values[name], precision=4, floatmode="fixed")
        else:
            ours = f"{float(values[name]):.4f}"
        print(f"{name:5s} {ours:34s} notes: {NOTE_FORWARD[name]}")
    print("(The notes write the loss as (1 - 0.77)^2 + (1 - 0.23)^2 but compute (1 - 0.77)^2 + (0 - 0.23)^2;\n"
          " one slide gives b = [0.5 0.3], but its forward values are those of zero biases, used here.)")
    return values


def explain_weight(g: dp.Graph, weight: str, numeric: dict, outdir: Path) -> dict:
    tensor, index = WEIGHTS[weight]
    element = f"{tensor}[{index[0]},{index[1]}]"
    engine = float(g[tensor].grad[index])
    finite = float(numeric[tensor][index])
    paths = g.paths(tensor, "L", index=index)
    printed = {nodes: contribution for nodes, _, contribution in NOTE_PATHS[weight]}
    print(f"\n== dL/d{weight} = dL/d{element}: {len(paths)} element paths")
    print(dp.path_table(paths))
    for number, path in enumerate(paths, start=1):
        if path.nodes in printed:
            print(f"path {number}: one of the notes' paths (the notes print {printed[path.nodes]:+.6f})")
        else:
            print(f"path {number}: left out by the notes")
    used = [p for p in paths if p.nodes in printed]
    left_out = [p for p in paths if p.nodes not in printed]
    kept = sum(float(p.contribution) for p in used)
    rounded = sum(float(np.prod(factors)) for _, factors, _ in NOTE_PATHS[weight])
    print(f"{'':34s}{'dL/d' + weight:>12s}")
    for label, number in (("dagprop (all paths)", engine), ("finite differences", finite),
                          ("the notes (by hand)", NOTE_GRADIENT[weight]),
                          ("the notes' paths, exact factors", kept),
                          ("the notes' paths, rounded factors", rounded)):
        print(f"{label:34s}{number:12.6f}")
    start = float(g[tensor].value[index])
    print(f"update with eta = 1: {weight} = {start} - dL/d{weight} = {start - LEARNING_RATE * engine:.6f} "
          f"(the notes: {NOTE_UPDATED[weight]})")

    # the notes' paths first, so they get the first colours of the highlight palette
    colours = [PALETTE_NAMES[colour] for colour in PALETTE]
    legend = (f"{' and '.join(colours[:len(used)])}: the notes' path{'s' if len(used) > 1 else ''}; "
              f"{' and '.join(colours[len(used):len(paths)])}: left out by the notes")
    dp.render(g, outdir / f"paths_{weight}_full.png", level="element", highlight=used + left_out, edge_labels=None,
              title=f"every neuron of the network; the {len(paths)} paths from {element} ({weight}) to L")
    # the same paths with nothing else: the element graph cut down to the elements they pass
    on_paths = {name for p in paths for name in p.nodes}
    focus = g.element_graph()
    # removed from a copy rather than taken as a subgraph view, whose order would follow a set's (hash) order
    focus.remove_nodes_from([n for n in list(focus) if n not in on_paths])
    diagram = dp.render(focus, outdir / f"paths_{weight}.png", highlight=used + left_out,
                        title=f"dL/d{weight} = sum of {len(paths)} paths from {element}. {legend}")
    (outdir / f"paths_{weight}.dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py
    return {"engine": engine, "finite": finite, "note": NOTE_GRADIENT[weight], "note_paths_exact": kept,
            "paths": [(p.nodes, tuple(float(f) for f in p.factors), float(p.contribution)) for p in paths]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    g = build()
    results = {"forward": show_forward(g)}
    numeric = dp.gradcheck(g, "L").numeric  # raises if the engine's gradients disagree with finite differences
    for weight in WEIGHTS:
        results[weight] = explain_weight(g, weight, numeric, args.outdir)

    yhat = g["yhat"].value
    dL_dyhat = g["yhat"].grad
    print("\n== why the notes' figures are half of dagprop's")
    print("(the notes' a21, a22 are a2[0], a2[1] here, their yhat1, yhat2 are yhat[0], yhat[1])")
    print(f"dL/dyhat = -2 (y - yhat) = {np.round(dL_dyhat, 4)}: the same size with opposite signs, since y\n"
          f"and yhat both sum to 1.")
    diagonal, cross = yhat[0] * (1 - yhat[0]), -yhat[0] * yhat[1]
    print(f"softmax: dyhat1/da21 = yhat1 (1 - yhat1) = {diagonal:.4f} and dyhat2/da21 = -yhat1 yhat2 = "
          f"{cross:.4f}:\nthe same size with opposite signs too.")
    print(f"So the path a21 -> yhat2 -> L ({cross:.4f} * {dL_dyhat[1]:.4f}) carries as much as the path\n"
          f"a21 -> yhat1 -> L ({diagonal:.4f} * {dL_dyhat[0]:.4f}). The notes follow each a2i only into its\n"
          "own yhati and leave out the cross paths that the softmax's shared denominator creates, so\n"
          "they get half of dL/da2, and half of every weight gradient below it. What is left of the\n"
          "gap, in the third or fourth digit, is rounding: the notes use yhat = 0.77 and h13 = 0.89,\n"
          "so 0.1771 for 0.1769 and 0.0979 for 0.0972.")
    results["dL_da2"] = g["a2"].grad.copy()
    print(f"dL/da2 = {np.round(g['a2'].grad, 4)}; the notes' dL/da2 would be dL/dyhat * yhat (1 - yhat) = "
          f"{np.round(dL_dyhat * yhat * (1 - yhat), 4)}")

    dp.render(g, args.outdir / "mlp.png", rankdir="TB", title="the notes' 4-4-2 network: values and gradients")
    print(f"\ndiagrams written to {args.outdir}/: mlp.png, paths_w212.png, paths_w131.png "
          f"(the paths alone) and paths_w212_full.png, paths_w131_full.png (in the whole network)")
    return results


if __name__ == "__main__":
    main()
