"""Forward mode against reverse mode: the same Jacobian a column or a row at a time.

A function from n inputs to m outputs, here y = tanh(W2 tanh(W1 x)) with x of size n
and y of size m, has an m x n Jacobian. Forward mode pushes one tangent from the
inputs to the outputs per pass (``g.jvp``) and gets one column: n passes. Reverse mode
pulls one gradient from the outputs back to the inputs per pass (``g.backward`` with a
one-hot seed) and gets one row: m passes. A pass of either kind costs a small multiple
of the forward pass, so forward mode wins when n < m and reverse mode when n > m: a
loss (m = 1) wants reverse mode, which is why training uses backprop.

This example

1. builds both Jacobians pass by pass on a small network, checks them against each
   other and against ``g.jacobian(y, x, mode="auto")``, which picks the cheaper mode
   and logs its choice;
2. counts and times the passes as n and m vary, and shows where forward mode starts
   to beat reverse mode;
3. follows one element path of a small network both ways: its local derivatives
   multiplied from the input end (the tangent it carries forward) and from the output
   end (the gradient it carries back) give the same product, and the paths' products
   add up to both the jvp and the gradient: one entry of the Jacobian. Drawn with the
   gradient each edge carried back (path.png) and the tangent it pushed forward
   (path_forward.png).

Run ``python examples/forward_vs_reverse.py [-o OUTDIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

import dagprop as dp

NAME = "forward_vs_reverse"
HIDDEN = 32
BASE = 64  # the size held fixed while the other one varies
SIZES = (1, 4, 16, 64, 256)
QUICK_BASE = 8
QUICK_SIZES = (1, 8, 32)
REPEATS = 5

# the small network whose paths are followed: 2 inputs, 3 hidden units, 2 outputs
SMALL_X = [0.5, -1.0]
SMALL_W1 = [[0.8, -0.5], [0.3, 0.9], [-0.6, 0.4]]
SMALL_W2 = [[0.7, -0.2, 0.5], [0.4, 0.9, -0.8]]
SOURCE, TARGET = (0,), (1,)  # the Jacobian entry dy[1]/dx[0]


def network(x, W1, W2) -> dp.Graph:
    """y = tanh(W2 tanh(W1 x)); the weights are constants, x is what is differentiated."""
    g = dp.Graph()
    a1 = g.op("matmul", g.input("W1", W1), g.input("x", x, requires_grad=True), name="a1")
    a2 = g.op("matmul", g.input("W2", W2), g.op("tanh", a1, name="h"), name="a2")
    g.op("tanh", a2, name="y")
    g.forward()
    return g


def random_network(n: int, m: int, seed: int = 0) -> dp.Graph:
    rng = np.random.default_rng(seed)
    return network(rng.normal(size=n), rng.normal(size=(HIDDEN, n)) / np.sqrt(n),
                   rng.normal(size=(m, HIDDEN)) / np.sqrt(HIDDEN))


def forward_jacobian(g: dp.Graph) -> tuple[np.ndarray, int]:
    """dy/dx a column at a time: one jvp per input element. Returns the Jacobian and the passes."""
    n, m = g["x"].value.size, g["y"].value.size
    columns = np.zeros((m, n))
    for k in range(n):
        g.jvp({"x": np.eye(n)[k]})
        columns[:, k] = g["y"].tangent
    return columns, n


def reverse_jacobian(g: dp.Graph) -> tuple[np.ndarray, int]:
    """dy/dx a row at a time: one backward pass per output element, seeded with a one-hot gradient."""
    n, m = g["x"].value.size, g["y"].value.size
    rows = np.zeros((m, n))
    for i in range(m):
        g.zero_grad()
        g.backward("y", seed=np.eye(m)[i])
        rows[i] = g["x"].grad
    return rows, m


def fastest(build, g: dp.Graph) -> float:
    """The fastest of a few runs, in seconds: the one least disturbed by the rest of the machine."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        build(g)
        times.append(time.perf_counter() - start)
    return min(times)


class _Choices(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def auto_choice(g: dp.Graph) -> tuple[np.ndarray, str]:
    """g.jacobian(y, x) with mode="auto", and what it logged about its choice."""
    logger = logging.getLogger("dagprop")
    handler, level = _Choices(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        jacobian = g.jacobian("y", "x")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return jacobian, "; ".join(handler.messages)


def both_ways() -> dict:
    print("== 1. one Jacobian, two ways (n = 3 inputs, m = 5 outputs)")
    g = random_network(3, 5, seed=1)
    by_columns, forward_passes = forward_jacobian(g)
    by_rows, reverse_passes = reverse_jacobian(g)
    auto, message = auto_choice(g)
    print(f"forward mode: {forward_passes} jvps, one column each; reverse mode: {reverse_passes} backward passes, "
          f"one row each")
    print("dy/dx (5 x 3):\n    " + np.array2string(by_columns, precision=4).replace("\n", "\n    "))
    print(f"largest difference between the two: {np.abs(by_columns - by_rows).max():.2g}")
    print(f"g.jacobian(y, x) with mode='auto' logs: {message}")
    print(f"and agrees: {np.allclose(auto, by_columns, rtol=1e-12, atol=1e-14)}")
    return {"forward": by_columns, "reverse": by_rows, "auto": auto, "auto_log": message,
            "passes": (forward_passes, reverse_passes),
            "values": {name: g[name].value.copy() for name in ("x", "W1", "W2")}}


def measure(n: int, m: int) -> dict:
    g = random_network(n, m)
    by_columns, forward_passes = forward_jacobian(g)
    by_rows, reverse_passes = reverse_jacobian(g)
    return {"n": n, "m": m, "forward_passes": forward_passes, "reverse_passes": reverse_passes,
            "forward_time": fastest(forward_jacobian, g), "reverse_time": fastest(reverse_jacobian, g),
            "agree": bool(np.allclose(by_columns, by_rows, rtol=1e-10, atol=1e-12))}


def print_table(rows: list[dict]) -> None:
    print(f"{'n':>4} {'m':>4}  {'jvps':>5} {'forward':>10}  {'backwards':>9} {'reverse':>10}  faster")
    for row in rows:
        winner = "forward" if row["forward_time"] < row["reverse_time"] else "reverse"
        print(f"{row['n']:4d} {row['m']:4d}  {row['forward_passes']:5d} {row['forward_time'] * 1e3:7.2f} ms  "
              f"{row['reverse_passes']:9d} {row['reverse_time'] * 1e3:7.2f} ms  {winner}")


def crossover(sizes: tuple[int, ...], base: int) -> dict:
    print(f"\n== 2. passes and time as n and m vary (hidden width {HIDDEN}; fastest of {REPEATS} runs)")
    print(f"n inputs vary, m = {base} outputs:")
    vary_n = [measure(n, base) for n in sizes]
    print_table(vary_n)
    print(f"m outputs vary, n = {base} inputs:")
    vary_m = [measure(base, m) for m in sizes]
    print_table(vary_m)
    rows = vary_n + vary_m
    below = [r for r in rows if r["n"] < r["m"]]
    above = [r for r in rows if r["n"] > r["m"]]
    forward_wins = sum(r["forward_time"] < r["reverse_time"] for r in below)
    reverse_wins = sum(r["reverse_time"] < r["forward_time"] for r in above)
    per_jvp = sum(r["forward_time"] for r in rows) / sum(r["forward_passes"] for r in rows)
    per_backward = sum(r["reverse_time"] for r in rows) / sum(r["reverse_passes"] for r in rows)
    print(f"forward mode was faster in {forward_wins} of the {len(below)} rows with n < m, reverse mode in "
          f"{reverse_wins} of the {len(above)} rows with n > m.\nA jvp took {per_jvp * 1e6:.0f} us on average, "
          f"a backward pass {per_backward * 1e6:.0f} us: the same order, so the number of passes, n against m,\n"
          f"decides, except near n = m, where the cheaper kind of pass wins.")
    return {"vary_n": vary_n, "vary_m": vary_m, "per_jvp": per_jvp, "per_backward": per_backward}


def running_products(factors: tuple[float, ...]) -> tuple[list[float], list[float]]:
    """The products of the first k factors (read forward) and of the last k (read backward), k = 0 .. len."""
    forward, backward = [1.0], [1.0]
    for factor in factors:
        forward.append(forward[-1] * factor)
    for factor in reversed(factors):
        backward.append(backward[-1] * factor)
    return forward, backward


def one_path(outdir: Path) -> dict:
    print("\n== 3. one element path, read forward and backward")
    g = network(SMALL_X, SMALL_W1, SMALL_W2)
    m = g["y"].value.size
    g.backward("y", seed=np.eye(m)[TARGET])  # the gradient of y[1] alone: 1 at y[1], 0 at y[0]
    gradient = float(g["x"].grad[SOURCE])
    paths = g.paths("x", "y", index=(SOURCE, TARGET))
    print(f"dy[1]/dx[0] in y = tanh(W2 tanh(W1 x)) with 2 inputs, 3 hidden units, 2 outputs: "
          f"{g.count_paths('x', 'y', index=(SOURCE, TARGET))} element paths")
    print(dp.path_table(paths))
    chosen = paths[0]
    factors = tuple(float(f) for f in chosen.factors)
    forward, backward = running_products(factors)
    print(f"the largest, {' -> '.join(chosen.nodes)}, its local derivatives: "
          f"{', '.join(f'{f:.4f}' for f in factors)}")
    print("read forward, a tangent of 1 at x[0] multiplied by each factor in turn (what jvp carries along it):")
    print("    " + "  ".join(f"{name} {value:+.4f}" for name, value in zip(chosen.nodes, forward)))
    print("read backward, a gradient of 1 at y[1] multiplied from the other end (what backward carries along it):")
    print("    " + "  ".join(f"{name} {value:+.4f}" for name, value in zip(reversed(chosen.nodes), backward)))
    print(f"both end at the same product, {forward[-1]:.6f} = {backward[-1]:.6f}: the path's contribution "
          f"{float(chosen.contribution):.6f}")

    g.jvp({"x": np.eye(g["x"].value.size)[SOURCE]})
    tangent = float(g["y"].tangent[TARGET])
    total = sum(float(p.contribution) for p in paths)
    print(f"sum over the {len(paths)} paths {total:.6f}; jvp with tangent e0: y.tangent[1] = {tangent:.6f}; "
          f"backward with seed e1: x.grad[0] = {gradient:.6f}")

    # the element graph cut down to the elements on these paths, as in examples/mlp_paths.py
    on_paths = {name for p in paths for name in p.nodes}
    focus = g.element_graph()
    focus.remove_nodes_from([n for n in list(focus) if n not in on_paths])
    diagram = dp.render(focus, outdir / "path.png", show=("value", "grad", "tangent"), highlight=[chosen],
                        title=f"dy[1]/dx[0] = {gradient:.4f}: tangent 1 at x[0] (blue) arrives at y[1], "
                              f"gradient 1 at y[1] (red) at x[0]")
    (outdir / "path.dot").write_text(diagram.source, encoding="utf-8")  # for scripts/gallery.py
    dp.render(focus, outdir / "path_forward.png", show=("value", "tangent"), highlight=[chosen],
              title=f"forward mode: along path 1 the tangent 1 at x[0] is multiplied by each local derivative; "
                    f"{len(paths)} paths meet at a2[1]")
    pictures = ["path.png", "path_forward.png"]
    return {"paths": [(p.nodes, tuple(float(f) for f in p.factors), float(p.contribution)) for p in paths],
            "chosen": chosen.nodes, "forward_products": forward, "backward_products": backward,
            "path_sum": total, "tangent": tangent, "gradient": gradient, "pictures": pictures}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_SIZES} against {QUICK_BASE} only (seconds, for tests)")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    sizes, base = (QUICK_SIZES, QUICK_BASE) if args.quick else (SIZES, BASE)
    results = {"small": both_ways()}
    results.update(crossover(sizes, base))
    results["path"] = one_path(args.outdir)
    print(f"\ndiagrams written to {args.outdir}/: {', '.join(results['path']['pictures'])}")
    return results


if __name__ == "__main__":
    main()
