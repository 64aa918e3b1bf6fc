"""Random DAGs of elementwise ops, for wide_dag, render and paths."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

import dagprop as dp


@dataclass(frozen=True)
class RandomDag:
    """A random DAG of elementwise ops: node i < inputs is an input, node inputs + k is ``ops[k]``.

    Each op is (name, a, b) with b = -1 for tanh. Values stay bounded: add, sub and mul take
    operands in [-1, 1] (inputs, tanh and mul outputs), and add/sub outputs feed only tanh.
    Operands come half from the oldest unconsumed node (so nearly every node reaches the
    output) and half from the recent ones (so many nodes are shared and paths multiply).
    The last ops add up whatever was left unconsumed; the output is the last node.
    """

    inputs: int
    ops: tuple[tuple[str, int, int], ...]

    @classmethod
    def generate(cls, n_ops: int, *, inputs: int = 4, seed: int = 0, window: int = 64) -> RandomDag:
        rng = np.random.default_rng(seed)
        bounded = list(range(inputs))  # nodes with values in [-1, 1]
        waiting_bounded: deque[int] = deque(range(inputs))  # maybe unconsumed, oldest first
        waiting_wide: deque[int] = deque()  # maybe unconsumed add/sub outputs, which only tanh may take
        unconsumed = set(range(inputs))
        unconsumed_wide: set[int] = set()
        ops: list[tuple[str, int, int]] = []

        def oldest(queue: deque[int]) -> int | None:
            while queue and queue[0] not in unconsumed:
                queue.popleft()
            return queue[0] if queue else None

        def recent_bounded() -> int:
            return bounded[-1 - int(rng.integers(0, min(window, len(bounded))))]

        def pick_bounded() -> int:
            first = oldest(waiting_bounded) if rng.random() < 0.5 else None
            return first if first is not None else recent_bounded()

        # the leftovers cost one tanh per wide node and one add per node but the first
        while len(ops) + len(unconsumed_wide) + len(unconsumed) - 1 < n_ops:
            index = inputs + len(ops)
            wide = oldest(waiting_wide)
            if wide is not None and rng.random() < 0.5:
                op = ("tanh", wide, -1)
            else:
                name = ("add", "sub", "mul", "tanh")[int(rng.integers(0, 4))]
                op = (name, pick_bounded(), recent_bounded() if name != "tanh" else -1)
            ops.append(op)
            for operand in op[1:]:
                unconsumed.discard(operand)
                unconsumed_wide.discard(operand)
            unconsumed.add(index)
            if op[0] in ("add", "sub"):
                waiting_wide.append(index)
                unconsumed_wide.add(index)
            else:
                bounded.append(index)
                waiting_bounded.append(index)
        leftovers = []
        for node in sorted(unconsumed):
            if node in unconsumed_wide:
                ops.append(("tanh", node, -1))
                node = inputs + len(ops) - 1
            leftovers.append(node)
        total = leftovers[0]
        for node in leftovers[1:]:
            ops.append(("add", total, node))
            total = inputs + len(ops) - 1
        return cls(inputs, tuple(ops))

    @property
    def output(self) -> int:
        return self.inputs + len(self.ops) - 1

    def count_paths(self) -> int:
        """Paths from any input to the output (each argument slot its own path), exact."""
        counts = [1] * self.inputs
        for name, a, b in self.ops:
            counts.append(counts[a] + (counts[b] if b >= 0 else 0))
        return counts[-1]

    def shared_nodes(self) -> int:
        uses = [0] * (self.inputs + len(self.ops))
        for _, a, b in self.ops:
            uses[a] += 1
            if b >= 0:
                uses[b] += 1
        return sum(1 for u in uses if u > 1)

    def build_dagprop(self, values: list[np.ndarray]) -> tuple[dp.Graph, list[dp.Node], dp.Node]:
        """The DAG as a dagprop graph; the loss sums the output's elements."""
        g = dp.Graph()
        nodes = [g.param(f"x{i}", v) for i, v in enumerate(values)]
        for name, a, b in self.ops:
            if name == "tanh":
                nodes.append(nodes[a].tanh())
            elif name == "add":
                nodes.append(nodes[a] + nodes[b])
            elif name == "sub":
                nodes.append(nodes[a] - nodes[b])
            else:
                nodes.append(nodes[a] * nodes[b])
        loss = nodes[-1].sum() if np.ndim(values[0]) else nodes[-1]
        return g, nodes[: self.inputs], loss


def describe_count(n: int) -> str:
    return f"{n:,}" if n < 10**6 else f"about 10^{len(str(n)) - 1}"
