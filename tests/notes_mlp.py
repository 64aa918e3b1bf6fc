"""The 4-4-2 network of the course notes (seeds/003): sigmoid hidden layer, softmax output,
squared-error loss, with the notes' W1, W2, x and y (biases zero, as in their worked example).

Both as a dagprop graph and as plain numpy, so tests can check the engine against
something that does not use it.
"""

from __future__ import annotations

import numpy as np

import dagprop as dp

W1 = np.array([[0.1, 0.3, 0.8, -0.4],
               [-0.3, -0.2, 0.5, 0.5],
               [-0.3, 0.0, 0.5, 0.4],
               [0.2, 0.5, -0.9, 0.7]])
W2 = np.array([[0.5, 0.8, 0.2, 0.4],
               [0.5, 0.2, 0.3, -0.5]])
X = np.array([2.0, 5.0, 3.0, 3.0])
Y = np.array([1.0, 0.0])


def build() -> tuple[dp.Graph, dict[str, dp.Node]]:
    """The network as a graph, forward and backward already run."""
    g = dp.Graph()
    w1, w2 = g.param("W1", W1), g.param("W2", W2)
    x, y = g.input("x", X), g.input("y", Y)
    a1 = g.op("matmul", w1, x, name="a1")
    h1 = g.op("sigmoid", a1, name="h1")
    a2 = g.op("matmul", w2, h1, name="a2")
    yhat = g.op("softmax", a2, name="yhat")
    loss = g.op("squared_error", yhat, y, name="L")
    g.forward()
    g.backward(loss)
    return g, {"W1": w1, "W2": w2, "x": x, "y": y, "a1": a1, "h1": h1, "a2": a2, "yhat": yhat, "L": loss}


def loss_numpy(w1: np.ndarray = W1, w2: np.ndarray = W2, x: np.ndarray = X, y: np.ndarray = Y) -> float:
    """The same loss in plain numpy, for finite differences independent of the engine."""
    h1 = 1.0 / (1.0 + np.exp(-(w1 @ x)))
    a2 = w2 @ h1
    yhat = np.exp(a2 - a2.max()) / np.exp(a2 - a2.max()).sum()
    return float(np.sum((y - yhat) ** 2))
