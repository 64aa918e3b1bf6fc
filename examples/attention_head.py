"""A single-head self-attention block trained on a small retrieval task.

Each sequence has four tokens. A token is four numbers: a constant 1, a marker
(1 on exactly one token of the sequence, 0 elsewhere) and a two-number payload.
The task: at every position, output the payload of the marked token. One attention
head can do it by having every query look for the marker among the keys:

    Q = X Wq,  K = X Wk,  V = X Wv,  head = softmax(Q K^T / sqrt(d)) V,  out = head Wo,
    L = mean((out - Y)^2)

dagprop trains Wq, Wk, Wv and Wo with plain gradient descent on 32 sequences (a
progress bar shows the loss), checks the result on 200 new sequences, saves the
loss curve as a picture, and draws the trained head on one sequence with the
attention op opened into its circuit, so the attention weights can be read off.

Run ``python examples/attention_head.py [-o OUTDIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import graphviz
import numpy as np

import dagprop as dp

try:
    from tqdm import tqdm
except ImportError:  # tqdm is optional: without it a plain line of text shows the progress
    tqdm = None

NAME = "attention_head"
TOKENS = 4
FEATURES = 4  # constant 1, marker, two payload numbers
HEAD = 2  # the width d of queries, keys and values
TRAIN_SEQUENCES = 32
TEST_SEQUENCES = 200
STEPS = 300
QUICK_STEPS = 30
LEARNING_RATE = 0.3
SEED = 0


def sequences(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences X (count, TOKENS, FEATURES) and their targets Y (count, TOKENS, 2)."""
    X = np.zeros((count, TOKENS, FEATURES))
    X[:, :, 0] = 1.0
    marked = rng.integers(0, TOKENS, size=count)
    X[np.arange(count), marked, 1] = 1.0
    X[:, :, 2:] = rng.normal(size=(count, TOKENS, 2))
    payload = X[np.arange(count), marked, 2:]
    return X, np.repeat(payload[:, None, :], TOKENS, axis=1)


def initial_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"Wq": rng.normal(size=(FEATURES, HEAD)) * 0.5, "Wk": rng.normal(size=(FEATURES, HEAD)) * 0.5,
            "Wv": rng.normal(size=(FEATURES, HEAD)) * 0.5, "Wo": rng.normal(size=(HEAD, 2)) * 0.5}


def build(X: np.ndarray, Y: np.ndarray, weights: dict[str, np.ndarray]) -> dp.Graph:
    g = dp.Graph()
    x = g.input("X", X)
    W = {name: g.param(name, value) for name, value in weights.items()}
    Q = g.op("matmul", x, W["Wq"], name="Q")
    K = g.op("matmul", x, W["Wk"], name="K")
    V = g.op("matmul", x, W["Wv"], name="V")
    head = g.ops.attention(Q, K, V, name="head")
    out = g.op("matmul", head, W["Wo"], name="out")
    error = g.op("sub", out, g.input("Y", Y), name="error")
    g.op("mean", error ** 2, name="L")
    return g


class Progress:
    """A progress bar: tqdm's when it is installed, otherwise one line of text rewritten in place."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar = tqdm(total=total, desc="training", unit="step") if tqdm is not None else None
        self.interactive = sys.stdout.isatty()

    def update(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}")
            return
        width = 30
        filled = width * step // self.total
        line = f"training [{'#' * filled}{'.' * (width - filled)}] {step}/{self.total}  loss {loss:.4g}"
        if self.interactive:
            print("\r" + line, end="" if step < self.total else "\n", flush=True)
        elif step == self.total or step % max(1, self.total // 10) == 0:
            print(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(g: dp.Graph, steps: int) -> list[float]:
    losses = []
    progress = Progress(steps)
    for step in range(1, steps + 1):
        g.zero_grad()
        g.forward()
        g.backward("L")
        losses.append(float(g["L"].value))
        g.step(lr=LEARNING_RATE)
        progress.update(step, losses[-1])
    progress.close()
    return losses


def draw_loss_curve(losses: list[float], stem: Path) -> list[Path]:
    """The loss against the step, log scale, drawn with Graphviz (pinned points joined by lines)."""
    width, height, left, bottom = 420.0, 220.0, 60.0, 40.0
    low = math.floor(math.log10(min(losses)))
    high = math.ceil(math.log10(max(losses)))
    high = high if high > low else low + 1

    def x_of(step: float) -> float:
        return left + width * (step - 1) / max(1, len(losses) - 1)

    def y_of(loss: float) -> float:
        return bottom + height * (math.log10(loss) - low) / (high - low)

    chart = graphviz.Graph("loss", engine="neato")
    chart.attr(bgcolor="white", pad="0.2", outputorder="edgesfirst")
    chart.attr("node", shape="point", width="0.02", color="#1f5fa8", label="")
    chart.attr("edge", color="#1f5fa8", penwidth="1.6")

    def pin(name: str, x: float, y: float, **attrs: str) -> None:
        chart.node(name, pos=f"{x:.1f},{y:.1f}!", **attrs)

    def text(name: str, x: float, y: float, label: str, size: str = "10") -> None:
        pin(name, x, y, shape="plaintext", label=label, fontsize=size, fontname="Helvetica", color="black",
            width="0", height="0")

    # axes, with a tick and a label at each power of ten and at a few steps
    pin("origin", left, bottom, color="black")
    pin("x_end", left + width, bottom, color="black")
    pin("y_end", left, bottom + height, color="black")
    chart.edge("origin", "x_end", color="black", penwidth="1")
    chart.edge("origin", "y_end", color="black", penwidth="1")
    for power in range(low, high + 1):
        text(f"ytick{power - low}", left - 24, y_of(10.0**power), f"1e{power}")
    for k, step in enumerate(sorted({1, len(losses) // 2, len(losses)})):
        text(f"xtick{k}", x_of(step), bottom - 14, str(step))
    text("xlabel", left + width / 2, bottom - 30, "step", "11")
    text("title", left + width / 2, bottom + height + 18, "training loss (mean squared error, log scale)", "12")

    stride = max(1, len(losses) // 200)  # at most about 200 points: plenty for a smooth line
    shown = list(range(0, len(losses), stride))
    if shown[-1] != len(losses) - 1:
        shown.append(len(losses) - 1)
    for i in shown:
        pin(f"p{i}", x_of(i + 1), y_of(losses[i]))
    for a, b in zip(shown, shown[1:]):
        chart.edge(f"p{a}", f"p{b}")

    stem.with_suffix(".dot").write_text(chart.source, encoding="utf-8")  # for scripts/gallery.py
    written = []
    for fmt in ("svg", "png"):
        target = stem.with_suffix(f".{fmt}")
        chart.render(outfile=target, format=fmt, neato_no_op=True, cleanup=True)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the pictures (default: examples/out/{NAME})")
    parser.add_argument("--quick", action="store_true", help=f"train for {QUICK_STEPS} steps instead of {STEPS}")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    steps = QUICK_STEPS if args.quick else STEPS

    rng = np.random.default_rng(SEED)
    X, Y = sequences(rng, TRAIN_SEQUENCES)
    start = initial_weights(rng)
    g = build(X, Y, start)
    report = dp.gradcheck(g, "L")
    print(f"gradients at the start agree with finite differences: largest difference "
          f"{max(report.max_abs_error.values()):.2g}")

    print(f"{steps} steps of gradient descent, eta = {LEARNING_RATE}, on {TRAIN_SEQUENCES} sequences")
    losses = train(g, steps)
    g.forward()
    trained = {p.name: p.value.copy() for p in g.params}
    print(f"loss: {losses[0]:.4f} at the start, {float(g['L'].value):.4g} after training")

    X_test, Y_test = sequences(rng, TEST_SEQUENCES)
    g.forward(feeds={"X": X_test, "Y": Y_test})
    test_loss = float(g["L"].value)
    print(f"loss on {TEST_SEQUENCES} new sequences: {test_loss:.4g}")

    # one sequence, small enough to print and draw every number
    one = build(X_test[0], Y_test[0], trained)
    one.forward()
    one.backward("L")
    scores = one["Q"].value @ one["K"].value.T / np.sqrt(HEAD)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    print(f"a new sequence, marker on token {int(np.argmax(X_test[0, :, 1]))}:")
    print("    " + np.array2string(X_test[0], precision=2, suppress_small=True).replace("\n", "\n    "))
    print("attention weights (a row per query, a column per key):")
    print("    " + np.array2string(weights, precision=3, suppress_small=True).replace("\n", "\n    "))
    print("output and target:")
    for row_out, row_target in zip(one["out"].value, Y_test[0]):
        print(f"    {np.round(row_out, 3)}  {np.round(row_target, 3)}")

    files = draw_loss_curve(losses, args.outdir / "loss_curve")
    diagram = args.outdir / "attention_head.png"
    # top to bottom and without edge labels (each edge's gradient is its source's, shown on the node),
    # so that a dozen 4x4 and 4x2 matrices stay legible
    drawn = dp.render(one, diagram, expand=["attention"], rankdir="TB", edge_labels=None, precision=3,
                      title="the trained head on one new sequence, attention opened: every query attends to the "
                            "marked token")
    diagram.with_suffix(".dot").write_text(drawn.source, encoding="utf-8")  # for scripts/gallery.py
    files.append(diagram)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return {"X": X, "Y": Y, "start": start, "losses": losses, "trained": trained, "test_loss": test_loss,
            "X_test": X_test, "Y_test": Y_test, "files": files}


if __name__ == "__main__":
    main()
