"""Property-based tests: random DAGs with shared nodes, backward against central differences."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

import dagprop as dp

from helpers import central_difference

# each op: how the engine builds it and how numpy evaluates it, written independently
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply}
UNARY = {"tanh": np.tanh, "neg": np.negative, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}


@st.composite
def recipes(draw):
    """A random DAG as a list of steps over earlier nodes; the same node is often used twice."""
    n_leaves = draw(st.integers(1, 3))
    steps = []
    for k in range(draw(st.integers(1, 12))):
        available = n_leaves + k
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(sorted(BINARY))), draw(st.integers(0, available - 1)),
                          draw(st.integers(0, available - 1))))
        else:
            steps.append((draw(st.sampled_from(sorted(UNARY))), draw(st.integers(0, available - 1))))
    values = draw(st.lists(st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3), min_size=n_leaves,
                           max_size=n_leaves))
    return np.array(values), steps


def evaluate(leaves: np.ndarray, steps) -> float:
    nodes = list(leaves)
    for op, *args in steps:
        fn = BINARY.get(op) or UNARY[op]
        nodes.append(fn(*[nodes[a] for a in args]))
    return float(np.sum(nodes[-1]))


@settings(max_examples=60, deadline=None)
@given(recipes())
def test_backward_matches_central_differences_on_random_dags(recipe):
    leaf_values, steps = recipe
    g = dp.Graph()
    nodes = [g.param(f"p{i}", v) for i, v in enumerate(leaf_values)]
    for op, *args in steps:
        nodes.append(g.op(op, *[nodes[a] for a in args]))
    g.forward()
    if not nodes[-1].requires_grad:
        return
    g.backward(nodes[-1], seed=np.ones(3))
    numeric = central_difference(lambda flat: evaluate(flat.reshape(leaf_values.shape), steps), leaf_values)
    for i, leaf in enumerate(nodes[: len(leaf_values)]):
        analytic = leaf.grad if leaf.grad is not None else np.zeros(3)
        np.testing.assert_allclose(analytic, numeric[i], rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(recipes())
def test_every_node_gradient_is_the_sum_of_its_outgoing_edge_gradients(recipe):
    leaf_values, steps = recipe
    g = dp.Graph()
    nodes = [g.param(f"p{i}", v) for i, v in enumerate(leaf_values)]
    for op, *args in steps:
        nodes.append(g.op(op, *[nodes[a] for a in args]))
    g.forward()
    g.backward(nodes[-1], seed=np.ones(3))
    for node in nodes[:-1]:
        flows = [g.edge_grad(node, consumer) for consumer in {c for c in nodes if node in c.inputs}]
        flows = [f for f in flows if f is not None]
        if node.grad is None:
            assert not flows
        else:
            np.testing.assert_allclose(sum(flows), node.grad, rtol=1e-12, atol=1e-12)
