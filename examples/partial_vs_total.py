"""Partial and total derivatives: one edge's local derivative against the sum over every path.

The lecture notes on backprop (004 in the seeds) open with two compute graphs around
the same function of two arguments. Here f(x, y) = x y.

* f(x, y(x)) with y(x) = x^2. The partial derivative of f with respect to x (the
  notes' curly d; "partial df/dx" below) asks what f does when only its first
  argument moves: y. The total derivative df/dx asks what f does when x moves and y
  follows it: y + x dy/dx = 3 x^2. In the graph the partial is the local derivative
  of the one edge x -> f, and the total is x's gradient, which sums the two paths
  x -> f and x -> y -> f.
* f(x(t), y(t)) with x(t) = tanh(t) and y(t) = exp(t). The total derivative df/dt is
  the sum of two paths, (partial df/dx)(dx/dt) along t -> x -> f and
  (partial df/dy)(dy/dt) along t -> y -> f. A partial derivative of f with respect
  to t is undefined: f's
  arguments are x and y, and the graph has no edge t -> f whose local derivative it
  could be (not 0, which is what "hold everything else fixed" would suggest).

Both are shown in reverse mode (a node's gradient, the gradient along each edge) and
in forward mode (a node's tangent, the tangent along each edge), next to the closed
forms and to finite differences of plain Python functions. Each graph is drawn twice
with its paths highlighted: with values, gradients and tangents (the total derivative
summed at the start in reverse mode and at the end in forward mode), and with the
tangent each edge pushed forward.

Run ``python examples/partial_vs_total.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import dagprop as dp

NAME = "partial_vs_total"
X0 = 2.0  # where f(x, y(x)) is differentiated
T0 = 0.5  # where f(x(t), y(t)) is
STEP = 1e-6  # of the central differences


def f(x: float, y: float) -> float:
    """The function of two arguments both graphs end in."""
    return x * y


def central(function, at: float) -> float:
    return (function(at + STEP) - function(at - STEP)) / (2 * STEP)


def draw(g: dp.Graph, outdir: Path, stem: str, highlight: list, title: str, forward_title: str) -> list[str]:
    """Two pictures: values, gradients and tangents on the nodes with each edge's gradient (the
    gallery's, next to its DOT text), and values and tangents with each edge's tangent."""
    diagram = dp.render(g, outdir / f"{stem}.png", show=("value", "grad", "tangent"), highlight=highlight,
                        title=title)
    (outdir / f"{stem}.dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py
    dp.render(g, outdir / f"{stem}_forward.png", show=("value", "tangent"), highlight=highlight, title=forward_title)
    return [f"{stem}.png", f"{stem}_forward.png"]


def number(value) -> float:
    return float("nan") if value is None else float(value)


def f_of_x_and_y_of_x(outdir: Path) -> dict:
    print(f"== 1. f(x, y(x)) with f(x, y) = x y and y(x) = x^2, at x = {X0:g}")
    g = dp.Graph()
    x = g.param("x", X0)
    y = g.op("pow", x, exponent=2, name="y")
    out = g.op("mul", x, y, name="f")
    g.forward()
    g.backward(out)
    print(f"values: y = {float(y.value):g}, f = {float(out.value):g}; f's arguments: "
          f"{', '.join(n.name for n in out.inputs)}")

    closed = {"partial_x": X0**2, "partial_y": X0, "dy_dx": 2 * X0, "total_x": 3 * X0**2}
    # finite differences of plain Python: the partial moves f's first argument only, the total moves x everywhere
    partial_fd = central(lambda x_: f(x_, X0**2), X0)
    total_fd = central(lambda x_: f(x_, x_**2), X0)
    reverse = {"partial_x": number(g.edge_grad(x, out)), "partial_y": number(g.edge_grad(y, out)),
               "through_y": number(g.edge_grad(x, y)), "total_x": float(x.grad), "total_y": float(y.grad)}
    print("('partial' marks a partial derivative; every other d/d is a total derivative)")
    print("reverse mode (seed df/df = 1):")
    print(f"  partial df/dx = gradient along the edge x -> f = {reverse['partial_x']:g}   "
          f"closed form y = x^2 = {closed['partial_x']:g}; moving f's first argument only: {partial_fd:.6f}")
    print(f"  gradient along x -> y = (partial df/dy)(dy/dx) = {closed['partial_y']:g} * {closed['dy_dx']:g} "
          f"= {reverse['through_y']:g}")
    print(f"  df/dx = x.grad, the sum over both paths = {reverse['total_x']:g}   closed form partial df/dx + "
          f"(partial df/dy)(dy/dx)\n    = x^2 + x 2x = 3 x^2 = {closed['total_x']:g}; moving x everywhere: "
          f"{total_fd:.6f}")
    print(f"  df/dy = y.grad = {reverse['total_y']:g} = partial df/dy = gradient along y -> f = "
          f"{reverse['partial_y']:g} (closed form x = {closed['partial_y']:g}): y feeds f directly and only f")

    paths = g.paths(x, out)
    print(f"the paths from x to f ({g.count_paths(x, out)}):")
    for path in paths:
        factors = " * ".join(f"{float(factor):g}" for factor in path.factors)
        print(f"  {path.route:12s} local derivatives {factors:8s} -> {float(path.contribution):g}")
    print(f"  sum {sum(float(p.contribution) for p in paths):g} = x.grad")

    g.jvp({x: 1.0})
    forward = {"partial_x": number(g.edge_tangent(x, out)), "through_y": number(g.edge_tangent(y, out)),
               "dy_dx": number(y.tangent), "total_x": number(out.tangent)}
    print("forward mode (tangent dx = 1):")
    print(f"  tangent along x -> f = (partial df/dx) dx = {forward['partial_x']:g}")
    print(f"  tangent of y = dy/dx = {forward['dy_dx']:g}; along y -> f = (partial df/dy)(dy/dx) = "
          f"{forward['through_y']:g}")
    print(f"  f.tangent = df/dx = {forward['total_x']:g}")
    carried = {(s.name, c.name): float(t) for s, c, _, t in g.run.edges(flow="tangent")}
    print(f"  every edge's tangent: {', '.join(f'{s} -> {c}: {t:g}' for (s, c), t in carried.items())}")

    partial_edge = next(p for p in paths if len(p.nodes) == 2)
    through = next(p for p in paths if len(p.nodes) == 3)
    pictures = draw(g, outdir, "partial_total_x", [partial_edge, through],
                    f"f(x, y(x)) = x y, y = x\u00b2: \u2202f/\u2202x = {reverse['partial_x']:g} is the edge "
                    f"x \u2192 f alone; df/dx = {reverse['total_x']:g} sums both paths, at x (red) and at f (blue)",
                    f"forward mode, dx = 1: the tangent along x \u2192 f is \u2202f/\u2202x = "
                    f"{forward['partial_x']:g}; f's tangent df/dx = {forward['total_x']:g} sums both paths")
    return {"reverse": reverse, "forward": forward, "finite": {"partial_x": partial_fd, "total_x": total_fd},
            "paths": {p.nodes: (tuple(float(q) for q in p.factors), float(p.contribution)) for p in paths},
            "pictures": pictures}


def f_of_x_of_t_and_y_of_t(outdir: Path) -> dict:
    print(f"\n== 2. f(x(t), y(t)) with x(t) = tanh(t) and y(t) = exp(t), at t = {T0:g}")
    g = dp.Graph()
    t = g.param("t", T0)
    x = g.op("tanh", t, name="x")
    y = g.op("exp", t, name="y")
    out = g.op("mul", x, y, name="f")
    g.forward()
    g.backward(out)
    tx, ty = math.tanh(T0), math.exp(T0)
    closed = {"dx_dt": 1 - tx**2, "dy_dt": ty, "partial_x": ty, "partial_y": tx}
    closed["total_t"] = closed["partial_x"] * closed["dx_dt"] + closed["partial_y"] * closed["dy_dt"]
    total_fd = central(lambda t_: f(math.tanh(t_), math.exp(t_)), T0)
    print(f"values: x = {float(x.value):.6f}, y = {float(y.value):.6f}, f = {float(out.value):.6f}")

    paths = g.paths(t, out)
    print(f"df/dt = (partial df/dx)(dx/dt) + (partial df/dy)(dy/dt): the {g.count_paths(t, out)} paths from t to f")
    for path in paths:
        middle = path.nodes[1]
        factors = tuple(float(q) for q in path.factors)
        print(f"  {path.route}: d{middle}/dt = {factors[0]:.6f} times partial df/d{middle} = {factors[1]:.6f} "
              f"-> {float(path.contribution):.6f}")
    reverse = {"total_t": float(t.grad), "edge_t_f": g.edge_grad(t, out)}
    print(f"  sum {sum(float(p.contribution) for p in paths):.6f} = t.grad = {reverse['total_t']:.6f}; "
          f"closed form (1 - tanh^2 t) e^t + tanh(t) e^t = {closed['total_t']:.6f}; "
          f"finite differences {total_fd:.6f}")
    arguments = [n.name for n in out.inputs]
    print(f"partial df/dt: f's arguments are {', '.join(arguments)}; t is not one of them "
          f"(edge t -> f: {'none' if reverse['edge_t_f'] is None else reverse['edge_t_f']}), so it is undefined,\n"
          f"  not 0: moving t while holding x and y fixed is not a change of any argument of f.")

    g.jvp({t: 1.0})
    forward = {"total_t": number(out.tangent), "x_f": number(g.edge_tangent(x, out)),
               "y_f": number(g.edge_tangent(y, out)), "edge_t_f": g.edge_tangent(t, out)}
    print(f"forward mode (tangent dt = 1): along x -> f {forward['x_f']:.6f}, along y -> f {forward['y_f']:.6f}, "
          f"f.tangent = df/dt = {forward['total_t']:.6f}")

    pictures = draw(g, outdir, "partial_total_t", paths,
                    f"f(x(t), y(t)) = tanh(t) exp(t): df/dt = {reverse['total_t']:.4f} sums two paths, at t (red) and "
                    f"at f (blue); no edge t \u2192 f, so no \u2202f/\u2202t",
                    f"forward mode, dt = 1: (\u2202f/\u2202x)(dx/dt) = {forward['x_f']:.4f} along t \u2192 x \u2192 f, "
                    f"(\u2202f/\u2202y)(dy/dt) = {forward['y_f']:.4f} along t \u2192 y \u2192 f")
    return {"reverse": reverse, "forward": forward, "finite": {"total_t": total_fd}, "arguments": arguments,
            "paths": {p.nodes: (tuple(float(q) for q in p.factors), float(p.contribution)) for p in paths},
            "pictures": pictures}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = {"x": f_of_x_and_y_of_x(args.outdir), "t": f_of_x_of_t_and_y_of_t(args.outdir)}
    pictures = results["x"]["pictures"] + results["t"]["pictures"]
    print(f"\ndiagrams written to {args.outdir}/: {', '.join(pictures)}")
    return results


if __name__ == "__main__":
    main()
