"""Write a graph's forward and backward passes out as plain Python, one line per op.

The result reads like the hand-written backprop functions of a course: each forward line
calls one op's forward rule, each backward line one op's vjp, and where a node receives
gradient over several paths the code adds the contributions explicitly. It is ordinary
Python that runs on its own against the same ops, so it can be read, stepped through in
a debugger, or changed by hand.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import TYPE_CHECKING, Any

from .errors import GraphError
from .op import ATTRIBUTE_TYPES_TEXT

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["codegen"]

_RESERVED = {"ops", "v", "seed", "grads"}


def codegen(graph: Graph, loss: Node | str | None = None) -> str:
    """Python source of ``forward(ops, v)`` and, given a loss, ``backward(ops, v, seed=1.0)``.

    ``ops`` is a registry such as ``graph.registry`` (``ops["matmul"]`` is the op);
    ``v`` maps node names to numpy arrays (the leaves' values, to begin with). ``forward`` fills in every op node's value;
    ``backward`` returns ``{name: gradient}`` for every node between the loss and the
    params (and inputs with ``requires_grad=True``).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> w = g.param("w", 3.0)
    >>> loss = g.op("mul", w, w, name="loss")
    >>> source = dp.codegen(g, loss)
    >>> print(source.split("def backward")[1])
    (ops, v, seed=1.0):
        w, loss = v['w'], v['loss']
        d_loss = seed
        # loss = mul(w, w); w already has gradient from another path: add
        d_w, d_w_2 = ops['mul'].vjp(d_loss, w, w, out=loss, needs=(True, True))
        d_w = d_w + d_w_2
        return {'w': d_w, 'loss': d_loss}
    <BLANKLINE>
    >>> namespace = {}
    >>> exec(source, namespace)
    >>> values = namespace["forward"](g.registry, {"w": w.value})
    >>> float(namespace["backward"](g.registry, values)["w"])
    6.0
    """
    names = _Names(graph)
    nodes = graph.nodes
    order = [nodes[i] for i in graph.plan.order]
    leaves = [n for n in order if n.op is None]
    ops = [n for n in order if n.op is not None]
    lines = [
        "# Forward and backward passes of a dagprop graph, written out by dagprop.codegen.",
        "# ops: a registry such as graph.registry; v: node name -> value.",
        "",
        "",
        "def forward(ops, v):",
    ]
    if leaves:
        lines.append(f"    {_unpack(names, leaves)}")
    for node in ops:
        args = ", ".join(names.value(i) for i in node.inputs)
        lines.append(f"    {names.value(node)} = ops[{node.op!r}].forward({args}{_attrs(node)})")
    lines.append("    v.update({" + ", ".join(f"{n.name!r}: {names.value(n)}" for n in ops) + "})")
    lines.append("    return v")
    if loss is not None:
        lines += ["", ""] + _backward(graph, graph.node(loss), names)
    return "\n".join(lines) + "\n"


def _backward(graph: Graph, loss: Node, names: _Names) -> list[str]:
    nodes = graph.nodes
    backward = graph.plan.backward_plan(loss.index, None)
    used = {loss.index} | {j for step in backward.steps for j in (step.index, *step.inputs)}
    lines = ["def backward(ops, v, seed=1.0):",
             f"    {_unpack(names, [nodes[i] for i in sorted(used)])}",
             f"    {names.grad(loss)} = seed"]
    received: set[int] = {loss.index}
    for step, needs in zip(backward.steps, backward.needs):
        node = step.node
        targets, sums, extras = [], [], set()
        for slot, source in enumerate(node.inputs):
            if not needs[slot]:
                targets.append("_")
            elif source.index in received:
                extra = names.extra_grad(source)
                targets.append(extra)
                extras.add(extra)
                sums.append(f"    {names.grad(source)} = {names.grad(source)} + {extra}")
            else:
                targets.append(names.grad(source))
                received.add(source.index)
        args = ", ".join(names.value(i) for i in node.inputs)
        needs_kw = f", needs={needs!r}" if step.op.vjp_takes_needs else ""
        summed = sorted({node.inputs[s].name for s, t in enumerate(targets) if t in extras})
        tail = f"; {', '.join(summed)} already has gradient from another path: add" if summed else ""
        lines.append(f"    # {_printable(_describe(node) + tail)}")
        lines.append(f"    {', '.join(targets)}{',' if len(targets) == 1 else ''} = ops[{node.op!r}].vjp("
                     f"{names.grad(node)}, {args}, out={names.value(node)}{needs_kw}{_attrs(node)})")
        lines += sums
    result = ", ".join(f"{nodes[i].name!r}: {names.grad(nodes[i])}" for i in sorted(received))
    lines.append("    return {" + result + "}")
    return lines


class _Names:
    """Python identifiers for node values (``h1``) and gradients (``d_h1``), unique and safe."""

    def __init__(self, graph: Graph) -> None:
        self._used = set(_RESERVED)
        self._value = {n.index: self._claim(n.name) for n in graph}
        self._grad: dict[int, str] = {}
        self._extra: dict[int, int] = {}

    def _claim(self, wanted: str) -> str:
        # ASCII only: Python folds Unicode names (NFKC), so "fi" and "\ufb01" would be one variable
        base = re.sub(r"[^0-9A-Za-z_]", "_", wanted) or "node"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = "n_" + base
        name, k = base, 2
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def value(self, node: Node) -> str:
        return self._value[node.index]

    def grad(self, node: Node) -> str:
        if node.index not in self._grad:
            self._grad[node.index] = self._claim("d_" + self._value[node.index])
        return self._grad[node.index]

    def extra_grad(self, node: Node) -> str:
        """A fresh name for a second (third, ...) contribution to a node's gradient."""
        self._extra[node.index] = self._extra.get(node.index, 1) + 1
        return self._claim(f"{self.grad(node)}_{self._extra[node.index]}")


def _unpack(names: _Names, nodes: list[Node]) -> str:
    return f"{', '.join(names.value(n) for n in nodes)} = {', '.join(f'v[{n.name!r}]' for n in nodes)}"


def _attrs(node: Node) -> str:
    return "".join(f", {key}={_literal(node, key, value)}" for key, value in node.attrs.items())


def _literal(node: Node, key: str, value: Any) -> str:
    if value is None or isinstance(value, (bool, int, str)) or value is Ellipsis:
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_literal(node, key, v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else \
            (f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(node, key, k)}: {_literal(node, key, v)}" for k, v in value.items()) + "}"
    if isinstance(value, slice):
        return f"slice({_literal(node, key, value.start)}, {_literal(node, key, value.stop)}, " \
               f"{_literal(node, key, value.step)})"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _literal(node, key, value.item())
    if hasattr(value, "tolist"):  # numpy index array
        return _literal(node, key, value.tolist())
    raise GraphError(f"codegen cannot write attribute {key}={value!r} of node {node.name!r} as Python source; op "
                     f"attributes must be {ATTRIBUTE_TYPES_TEXT}")


def _describe(node: Node) -> str:
    return f"{node.name} = {node.op}({', '.join(i.name for i in node.inputs)})"


def _printable(text: str) -> str:
    """Text safe inside a one-line comment: no newline or other control character can end it."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
