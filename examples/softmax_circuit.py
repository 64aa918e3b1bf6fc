"""Softmax of two scores, as a black box and as its circuit, with every gradient path.

Follows the "Softmax" section of the attention note (001 in the seeds). Two scores
e = (e1, e2) go through alpha = softmax(e); the loss L = g1 alpha1 + g2 alpha2 makes
the incoming gradient dL/dalpha = (g1, g2) whatever we choose.

As a black box, softmax has one local derivative per pair:
dalpha1/de1 = alpha1 (1 - alpha1) and dalpha2/de1 = -alpha1 alpha2.

Opened into its circuit, a = exp(e), b = sum(a), r = 1/b, alpha = a * r, the
gradient reaching e1 comes along three element paths:

* top:   e1 -> a1 -> alpha1            (da1/de1 * 1/b        =  alpha1)
* mid:   e1 -> a1 -> b -> r -> alpha1  (da1/de1 * -a1/b^2    = -alpha1^2)
* cross: e1 -> a1 -> b -> r -> alpha2  (da1/de1 * -a2/b^2    = -alpha1 alpha2)

The top and mid branches meet at the exp node and add up to alpha1 (1 - alpha1)
times g1; the cross branch is -alpha1 alpha2 times g2. dagprop lists these paths,
their factors and contributions, and draws them.

Run ``python examples/softmax_circuit.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "softmax_circuit"
SCORES = [2.0, 1.0]  # e1, e2
INCOMING = [1.0, -2.0]  # g1 = dL/dalpha1, g2 = dL/dalpha2


def build() -> dp.Graph:
    g = dp.Graph()
    e = g.param("e", SCORES)
    alpha = g.op("softmax", e, name="alpha")
    incoming = g.input("g", INCOMING)
    weighted = g.op("mul", alpha, incoming, name="weighted")
    g.op("sum", weighted, name="L")
    g.forward()
    g.backward(g["L"])
    return g


def through_alpha(path: dp.Path) -> tuple[str, float]:
    """Which alpha element a path passes and the product of its factors up to there: dalpha_i/de1 along it."""
    for position, name in enumerate(path.nodes):
        if name.startswith("alpha["):
            return name, float(np.prod(path.factors[:position]))
    raise ValueError(f"path {path} does not pass through alpha")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    g = build()
    e, alpha = g["e"], g["alpha"]
    a1, a2 = alpha.value
    g1, g2 = INCOMING
    print("== softmax as a black box")
    print(f"e = {e.value},  alpha = softmax(e) = {np.round(alpha.value, 4)},  dL/dalpha = {INCOMING}")
    jacobian = g.jacobian(alpha, e)
    print("dalpha/de from dagprop:\n    " + np.array2string(jacobian, precision=4).replace("\n", "\n    "))
    print(f"alpha1 (1 - alpha1) = {a1 * (1 - a1):.4f},  -alpha1 alpha2 = {-a1 * a2:.4f},  "
          f"alpha2 (1 - alpha2) = {a2 * (1 - a2):.4f}")
    print("(with two scores 1 - alpha1 = alpha2, so the two have the same size and opposite signs)")
    print(f"dL/de = {np.round(e.grad, 4)}")
    box_paths = g.paths(e, "L", index=(0,))
    print("element paths from e[0] through the black box:")
    print(dp.path_table(box_paths))

    print("\n== softmax opened into its circuit: a = exp(e), b = sum(a), r = 1/b, alpha = a * r")
    circuit = g.expanded(["softmax"])  # already run forward and backward from the same loss
    opened = circuit.expansions["alpha"]
    by_op = {circuit[name].op: name for name in opened.nodes}
    print(f"(dagprop names them a = {by_op['exp']}, b = {by_op['sum']}, r = {by_op['reciprocal']}; "
          f"the product keeps the name alpha)")
    circuit_paths = circuit.paths("e", "L", index=(0,))
    print(f"{len(circuit_paths)} element paths from e[0] to L:")
    print(dp.path_table(circuit_paths))
    # the top branch goes straight from exp to the product; the other two pass through the sum b
    sum_node = by_op["sum"]
    branches = {}
    for path in circuit_paths:
        reached, local = through_alpha(path)
        through_sum = any(name.split("[")[0] == sum_node for name in path.nodes)
        kind = "top" if not through_sum else ("mid" if reached == "alpha[0]" else "cross")
        branches[kind] = {"path": path, "local": local, "contribution": float(path.contribution)}
        print(f"  {kind:5s} reaches {reached}: dalpha/de1 along it = {local:+.4f}, "
              f"contribution {float(path.contribution):+.4f}")
    top, mid, cross = branches["top"], branches["mid"], branches["cross"]
    print(f"top: e^e1 / b = alpha1 = {a1:.4f};  mid: -e^e1 a1 / b^2 = -alpha1^2 = {-a1 * a1:.4f}")
    print(f"top + mid = {top['local'] + mid['local']:.4f} = alpha1 (1 - alpha1) = {a1 * (1 - a1):.4f}; "
          f"times g1 = {g1}: {top['contribution'] + mid['contribution']:+.4f}")
    print(f"cross: -e^e1 a2 / b^2 = {cross['local']:.4f} = -alpha1 alpha2 = {-a1 * a2:.4f}; "
          f"times g2 = {g2}: {cross['contribution']:+.4f}")
    total = sum(p.contribution for p in circuit_paths)
    print(f"sum of the three paths = {total:.4f} = dL/de1 = {e.grad[0]:.4f} "
          f"(black box and circuit agree: {np.isclose(circuit['e'].grad[0], e.grad[0])})")
    others = circuit.paths("e", "L", index=(1,))
    print(f"the same for e2: {len(others)} paths, "
          f"{' + '.join(f'({float(p.contribution):.4f})' for p in others)} = {e.grad[1]:.4f} = dL/de2")

    files = {
        "box": args.outdir / "softmax_box.png",
        "circuit": args.outdir / "softmax_circuit.png",
        "paths": args.outdir / "softmax_paths.png",
    }
    dp.render(g, files["box"], title="softmax as a black box")
    dp.render(g, files["circuit"], expand=["softmax"],
              title="softmax as its circuit: the gradients from the product and the sum add up at exp")
    dp.render(circuit, files["paths"], level="element", highlight=[top["path"], mid["path"], cross["path"]],
              title="the paths from e1: top (orange) and mid (blue) reach alpha1, cross (green) reaches alpha2")
    print("\ndiagrams written: " + ", ".join(str(p) for p in files.values()))
    return {
        "alpha": alpha.value.copy(), "jacobian": jacobian, "grad": e.grad.copy(),
        "box_contributions": sorted(float(p.contribution) for p in box_paths),
        "branches": {k: (v["local"], v["contribution"]) for k, v in branches.items()},
        "circuit_grad": circuit["e"].grad.copy(), "files": files,
    }


if __name__ == "__main__":
    main()
