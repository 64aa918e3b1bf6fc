"""Softmax of two scores, as a black box and as its circuit, with every gradient path.

Follows the "Softmax" section of the attention note (001 in the seeds). Two scores
e = (e1, e2) go through alpha = softmax(e); the loss L = g1 alpha1 + g2 alpha2 makes
the incoming gradient dL/dalpha = (g1, g2) whatever we choose.

As a black box, softmax has one local derivative per pair:
dalpha1/de1 = alpha1 (1 - alpha1) and dalpha2/de1 = -alpha1 alpha2.

Opened, softmax is the numerically stable circuit: m = max(e), s = e - m,
a = exp(s), b = sum(a), r = 1/b, alpha = a * r. Subtracting the max keeps exp at or
below 1 (exp(e) itself overflows once a score reaches about 710) and changes nothing
else: softmax is shift-invariant, the ratios a_i / b are the same.

Here e1 is the larger score, so m = e1 and nine element paths lead from e1 to L.
Three are the ones a teacher draws:

* top:   e1 -> s1 -> a1 -> alpha1            (a1 * r          =  alpha1)
* mid:   e1 -> s1 -> a1 -> b -> r -> alpha1  (a1 * -1/b^2 * a1 = -alpha1^2)
* cross: e1 -> s1 -> a1 -> b -> r -> alpha2  (a1 * -1/b^2 * a2 = -alpha1 alpha2)

The top and mid branches meet at the exp node and add up to alpha1 (1 - alpha1)
times g1; the cross branch is -alpha1 alpha2 times g2. The other six go through the
max node (e1 -> m, then -1 into both s1 and s2, then on as above) and add up to zero:
alpha does not change when m does, so no gradient reaches m (exactly, in exact
arithmetic; the printed sum of the six is rounding, about 1e-17). dagprop lists both
groups, their factors and contributions, and draws the three teaching paths.

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
SHIFT = 1000.0  # added to both scores to show the circuit does not overflow


def build(scores: list[float] = SCORES) -> dp.Graph:
    g = dp.Graph()
    e = g.param("e", scores)
    alpha = g.op("softmax", e, name="alpha")
    incoming = g.input("g", INCOMING)
    weighted = g.op("mul", alpha, incoming, name="weighted")
    g.op("sum", weighted, name="L")
    g.forward()
    g.backward(g["L"])
    return g


def tensor_of(element: str) -> str:
    """The node an element belongs to: ``"alpha.exp_1[0]"`` -> ``"alpha.exp_1"``."""
    return element.split("[")[0]


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

    print("\n== softmax opened into its circuit: m = max(e), s = e - m, a = exp(s), b = sum(a), r = 1/b, "
          "alpha = a * r")
    circuit = g.expanded(["softmax"])  # already run forward and backward from the same loss
    opened = circuit.expansions["alpha"]
    by_op = {circuit[name].op: name for name in opened.nodes}
    m, s, a, b, r = (circuit[by_op[op]] for op in ("max", "sub", "exp", "sum", "reciprocal"))
    print(f"(dagprop names them m = {m.name}, s = {s.name}, a = {a.name}, b = {b.name}, r = {r.name}; "
          f"the product keeps the name alpha)")
    print(f"e1 is the larger score, so m = e1 = {float(m.value[0]):g} and s = {s.value}: "
          f"a = {np.round(a.value, 4)}, b = {float(b.value[0]):.4f}, r = 1/b = {float(r.value[0]):.4f}")
    print("(a and b are exp(e) and its sum times exp(-m): the ratios a_i / b, the alphas, do not change)")
    circuit_paths = circuit.paths("e", "L", index=(0,))
    via_max = [p for p in circuit_paths if m.name in map(tensor_of, p.nodes)]
    teaching = [p for p in circuit_paths if p not in via_max]
    print(f"{len(circuit_paths)} element paths from e[0] to L: 3 ways from e1 to s (e1 -> s1, e1 -> m -> s1, "
          f"e1 -> m -> s2)\ntimes 3 ways from each s_j to L (a_j -> alpha_j; a_j -> b -> r -> alpha1; "
          f"a_j -> b -> r -> alpha2)")

    print(f"\n-- the {len(teaching)} paths a teacher draws: e1 -> s1 -> a1 -> ...")
    print(dp.path_table(teaching))
    # the top branch goes straight from exp to the product; the other two pass through the sum b
    branches = {}
    for path in teaching:
        reached, local = through_alpha(path)
        through_sum = b.name in map(tensor_of, path.nodes)
        kind = "top" if not through_sum else ("mid" if reached == "alpha[0]" else "cross")
        branches[kind] = {"path": path, "local": local, "contribution": float(path.contribution)}
        print(f"  {kind:5s} reaches {reached}: dalpha/de1 along it = {local:+.4f}, "
              f"contribution {float(path.contribution):+.4f}")
    top, mid, cross = branches["top"], branches["mid"], branches["cross"]
    print(f"top: a1 r = a1 / b = alpha1 = {a1:.4f};  mid: a1 (-1/b^2) a1 = -alpha1^2 = {-a1 * a1:.4f}")
    print(f"top + mid = {top['local'] + mid['local']:.4f} = alpha1 (1 - alpha1) = {a1 * (1 - a1):.4f}; "
          f"times g1 = {g1:g}: {top['contribution'] + mid['contribution']:+.4f}")
    print(f"cross: a1 (-1/b^2) a2 = {cross['local']:.4f} = -alpha1 alpha2 = {-a1 * a2:.4f}; "
          f"times g2 = {g2:g}: {cross['contribution']:+.4f}")
    teaching_sum = sum(float(p.contribution) for p in teaching)
    print(f"sum of the three = {teaching_sum:.4f} = dL/de1 = {e.grad[0]:.4f}")

    print(f"\n-- the {len(via_max)} paths through the max: e1 -> m (dm/de1 = 1), then -1 into s1 and s2")
    print(dp.path_table(via_max))
    max_sum = sum(float(p.contribution) for p in via_max)
    print(f"sum of the {len(via_max)} = {max_sum:.2g}: they cancel. Softmax is shift-invariant: moving every "
          f"score by the same m\nleaves alpha as it is, so no gradient reaches m: "
          f"dL/dm = -(dL/ds1 + dL/ds2) = -({s.grad[0]:.4f} + {s.grad[1]:.4f}) = {float(m.grad[0]):.2g}.\n"
          f"In exact arithmetic the six add up to exactly 0; the {max_sum:.2g} is floating-point rounding "
          f"of the sum taken path by path.\nThe max is there for the forward pass only (see the shifted scores "
          f"below).")
    total = sum(float(p.contribution) for p in circuit_paths)
    print(f"all {len(circuit_paths)} paths: {total:.4f} = dL/de1 "
          f"(black box and circuit agree: {np.isclose(circuit['e'].grad[0], e.grad[0])})")
    others = circuit.paths("e", "L", index=(1,))
    print(f"the same for e2, which is not the max (dm/de2 = 0, so no path through m): {len(others)} paths, "
          f"{' + '.join(f'({float(p.contribution):.4f})' for p in others)} = {e.grad[1]:.4f} = dL/de2")

    shifted_scores = [score + SHIFT for score in SCORES]
    shifted = build(shifted_scores).expanded(["softmax"])
    print(f"\nwith e = {shifted_scores} (exp(e) overflows float64 past e ~ 709.8) the circuit gives "
          f"alpha = {np.round(shifted['alpha'].value, 4)}, dL/de = {np.round(shifted['e'].grad, 4)}: "
          f"s, and everything after it, is unchanged")

    files = {
        "box": args.outdir / "softmax_box.png",
        "circuit": args.outdir / "softmax_circuit.png",
        "paths": args.outdir / "softmax_paths.png",
    }
    dp.render(g, files["box"], title="softmax as a black box")
    dp.render(g, files["circuit"], expand=["softmax"],
              title="softmax as its circuit: the gradients from the product and the sum add up at exp; "
                    "through the max, e gets 0")
    diagram = dp.render(circuit, files["paths"], level="element", highlight=[top["path"], mid["path"], cross["path"]],
                        title="the paths from e1: top (orange) and mid (sky blue) reach alpha1, cross (brown) reaches "
                              "alpha2; the six through max_1 cancel (its gradient is 0)")
    files["paths"].with_suffix(".dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py
    print("\ndiagrams written: " + ", ".join(str(p) for p in files.values()))
    return {
        "alpha": alpha.value.copy(), "jacobian": jacobian, "grad": e.grad.copy(),
        "box_contributions": sorted(float(p.contribution) for p in box_paths),
        "branches": {k: (v["local"], v["contribution"]) for k, v in branches.items()},
        "max_contributions": sorted(float(p.contribution) for p in via_max), "max_sum": max_sum,
        "max_grad": float(m.grad[0]), "sub_grad": s.grad.copy(),
        "path_count": len(circuit_paths), "e2_contributions": sorted(float(p.contribution) for p in others),
        "circuit_grad": circuit["e"].grad.copy(),
        "shifted": {"scores": shifted_scores, "alpha": shifted["alpha"].value.copy(),
                    "grad": shifted["e"].grad.copy()},
        "files": files,
    }


if __name__ == "__main__":
    main()
