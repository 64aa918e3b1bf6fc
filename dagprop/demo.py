"""The demo behind ``dagprop demo``: one attention step built from the notes' numbers, drawn.

The attention note works out Values, Query and Keys one at a time; here they are
put together the way its figures connect them. Three tokens (the columns of the
Keys section's input, whose first column is also the Query section's input) are
projected three ways: the first token through Q into the query q, every token
through K into the keys k, and every token through V (plus a bias b, as in the
Values section) into the values v. Then::

    e     = (q^T k) / 10        scores, one per token            (1x3)
    alpha = softmax(e)         attention weights                (1x3)
    z     = v alpha^T          the weighted sum of the values   (3x1)
    L     = 1/2 |z - y|^2      with the Values section's target y

Q and K carry their bias as a last column, with a row of ones appended to the
tokens, exactly as the Query and Keys sections do; V keeps a separate bias so its
gradient shows the sum over columns.

The raw scores q^T k of these numbers lie tens apart (27.6, 14.3, 36.4), which would
saturate softmax (weights 1e-4, 2e-10, 0.9999) and let almost no gradient through to
Q and K. Dividing them by a constant, as attention's 1/sqrt(d) does, keeps the
weights moderate so the picture shows gradient flowing along every branch.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Callable

import numpy as np

from .graph import Graph, Node

__all__ = ["build_attention", "run", "TOKENS", "Q_WEIGHTS", "K_WEIGHTS", "V_WEIGHTS", "TARGET", "SCORE_SCALE"]

# From the Keys section: three tokens as columns, with the row of ones that carries the bias.
TOKENS = np.array([[0.5, 0.2, 0.4],
                   [0.5, 0.2, 0.6],
                   [0.3, 0.25, 0.7],
                   [1.0, 1.0, 1.0]])
# From the Query section: Q with its bias column (initialised to zero).
Q_WEIGHTS = np.array([[1.0, 5.0, 0.2, 0.0],
                      [1.0, 2.0, 0.4, 0.0],
                      [4.0, 5.0, 1.0, 0.0]])
# From the Keys section: K with its bias column (initialised to zero).
K_WEIGHTS = np.array([[1.0, -3.0, 6.0, 0.0],
                      [2.0, 0.0, 1.0, 0.0],
                      [4.0, 5.0, 1.0, 0.0]])
# From the Values section: V, its bias (zero) and the target y.
V_WEIGHTS = np.array([[-1.0, 6.0, 7.0],
                      [2.0, 2.0, 2.0],
                      [5.0, 5.0, 5.0]])
V_BIAS = np.zeros((3, 1))
# Keeps softmax out of saturation on these numbers (see the module docstring).
SCORE_SCALE = 0.1
TARGET = np.array([[-1.0], [20.0], [5.0]])


def build_attention() -> tuple[Graph, Node]:
    """The demo's graph (not yet run) and its loss node.

    Returns
    -------
    graph : Graph
    loss : Node
        ``L = 1/2 |z - y|^2``.

    Examples
    --------
    >>> g, L = build_attention()
    >>> g.forward(); g.backward(L)
    >>> g["e"].value.round(4)
    array([[2.7594, 1.4259, 3.6438]])
    >>> float(g["alpha"].value.sum())
    1.0
    """
    g = Graph()
    X = g.input("X", TOKENS)
    Q = g.param("Q", Q_WEIGHTS)
    K = g.param("K", K_WEIGHTS)
    V = g.param("V", V_WEIGHTS)
    b = g.param("b", V_BIAS)
    x1 = g.op("getitem", X, index=(slice(None), slice(0, 1)), name="x1")
    features = g.op("getitem", X, index=(slice(0, 3), slice(None)), name="X_features")
    q = g.op("matmul", Q, x1, name="q")
    k = g.op("matmul", K, X, name="k")
    v = g.op("add", g.op("matmul", V, features, name="VX"), b, name="v")
    raw = g.op("matmul", g.op("transpose", q, name="q_T"), k, name="qk")
    e = g.op("mul", raw, g.const(SCORE_SCALE, name="scale"), name="e")
    alpha = g.op("softmax", e, name="alpha")
    z = g.op("matmul", v, g.op("transpose", alpha, name="alpha_T"), name="z")
    loss = g.op("l2_loss", z, g.input("y", TARGET), name="L")
    return g, loss


def _line(label: str, array: np.ndarray | None) -> str:
    """``label = array``, with the rows of a matrix lined up under each other."""
    label = label.ljust(26)
    text = np.array2string(np.asarray(array), precision=4, separator="  ", max_line_width=100,
                           floatmode="maxprec", suppress_small=True, prefix=" " * (len(label) + 5))
    return f"  {label} = {text}"


def run(output: str | FilePath = "dagprop-demo", *, formats: tuple[str, ...] = ("svg", "png"),
        echo: Callable[[str], None] = print) -> list[FilePath]:
    """Build the attention example, run it, and write its diagrams and the saved graph to ``output``.

    Writes ``attention.json`` (the graph with its values and gradients), then for
    each format ``attention.<fmt>`` (softmax as one box) and
    ``attention_softmax_circuit.<fmt>`` (softmax opened into its circuit: max,
    subtract, exp, sum, 1/x and a product). Prints the key numbers, the gradient e
    receives through the max (zero up to rounding), and what it wrote.

    Parameters
    ----------
    output : str or pathlib.Path
        Directory to write to (created if missing).
    formats : tuple of str
        Picture formats, written with Graphviz's dot ("dot" writes DOT text and
        needs no Graphviz).
    echo : callable
        Where the report goes.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = run(tmp, formats=("dot",), echo=lambda line: None)
    ...     sorted(p.name for p in written)
    ['attention.dot', 'attention.json', 'attention_softmax_circuit.dot']
    """
    from .expand import expanded
    from .io import save
    from .drawing import render

    g, loss = build_attention()
    g.forward()
    g.backward(loss)
    circuit = expanded(g, ["softmax"])
    boundary = max(float(np.max(np.abs(circuit[n.name].grad - n.grad))) for n in g if n.grad is not None)
    max_node = next(name for name in circuit.expansions["alpha"].nodes if circuit[name].op == "max")
    through_max = circuit.edge_grad("e", max_node)

    out = FilePath(output)
    out.mkdir(parents=True, exist_ok=True)
    written = [save(g, out / "attention.json", loss=loss)]
    pictures = [
        ("attention", (), "Attention from the notes: softmax as one box"),
        ("attention_softmax_circuit", ("softmax",),
         "The same graph with softmax opened into its circuit: max, subtract, exp, sum, 1/x, product"),
    ]
    descriptions = {"attention.json": "the graph with its values and gradients (dagprop.load reads it)"}
    for stem, expand, title in pictures:
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            render(g, path, expand=expand, title=title, rankdir="TB")
            written.append(path)
            descriptions[path.name] = ("softmax as one box" if not expand
                                       else "softmax opened: the branches meeting at exp (and at e) add up")

    run = g.run
    echo("dagprop demo: one attention step with the Q, K, V numbers of the notes")
    echo(_line("scores  e = (q^T k)/10   ", run.value("e")))
    echo(_line("weights alpha = softmax(e)", run.value("alpha")))
    echo(_line("output  z = v alpha^T    ", np.asarray(run.value("z")).T) + "  (transposed)")
    echo(f"  {'loss    L = 1/2|z - y|^2':<26} = {float(np.asarray(run.value(loss))):.6g}")
    echo(_line("dL/de                     ", run.grad("e")))
    for name in ("Q", "K", "V", "b"):
        echo(_line(f"dL/d{name:<22}", run.grad(name)))
    echo(f"  softmax as its circuit gives the same gradients: largest difference {boundary:.2g}")
    rounded = "  ".join(f"{x:.2g}" for x in np.asarray(through_max, dtype=float).ravel())
    echo(f"  {'dL/de through the max node':<26} = [[{rounded}]]  (zero up to rounding: softmax does not")
    echo(f"  {'':<26}   change when every score moves by the same amount)")
    echo(f"wrote to {out}/:")
    for path in written:
        echo(f"  {path.name:<32} {descriptions[path.name]}")
    return written
