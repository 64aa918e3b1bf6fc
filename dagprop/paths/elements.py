"""The element graph: every single element (neuron) of every node, with edges weighted by
the ops' local partial derivatives at the run's values."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import networkx as nx
import numpy as np

from .. import rules
from ..errors import GraphError
from ..run import accumulate

if TYPE_CHECKING:
    from ..node import Node
    from ..run import Run

__all__ = ["element_graph", "element_name", "split_element_name", "MAX_SIZE"]

#: The default ``max_size`` of :func:`element_graph`: at most this many elements plus
#: edges, and this many entries in any one op node's local Jacobians.
MAX_SIZE = 1_000_000

_INDEX = re.compile(r"\[(\d+(?:,\d+)*)?\]$")


def element_name(name: str, index: tuple[int, ...]) -> str:
    """The name of one element of a node: ``W1[2,0]``; a 0-d node keeps its plain name.

    Names never collide: a 0-d node whose own name ends with ``]`` (so it could be
    read as an element of another node, like ``"W[0]"``) is written with an
    explicit empty index, ``"W[0][]"``. :func:`split_element_name` reads any
    element name back into its node name and index.

    Examples
    --------
    >>> element_name("W1", (2, 0)), element_name("x", (3,)), element_name("L", ())
    ('W1[2,0]', 'x[3]', 'L')
    >>> element_name("W", (0,)), element_name("W[0]", ()), element_name("W[0]", (1,))
    ('W[0]', 'W[0][]', 'W[0][1]')
    """
    if index:
        return f"{name}[{','.join(str(int(i)) for i in index)}]"
    return f"{name}[]" if name.endswith("]") else name


def split_element_name(name: str) -> tuple[str, tuple[int, ...]]:
    """The node name and index that :func:`element_name` made ``name`` from.

    Examples
    --------
    >>> split_element_name("W1[2,0]"), split_element_name("L"), split_element_name("W[0][]")
    (('W1', (2, 0)), ('L', ()), ('W[0]', ()))
    """
    match = _INDEX.search(name)
    if match is None or match.start() == 0:
        return name, ()
    digits = match.group(1)
    return name[:match.start()], tuple(int(i) for i in digits.split(",")) if digits else ()


def element_graph(run: Run, nodes: Iterable[Node] | None = None, *, max_size: int | None = MAX_SIZE) -> nx.DiGraph:
    """The graph of single elements (neurons), edges weighted by local partial derivatives.

    Every element of every node is a node of the element graph, keyed by its element
    name (:func:`element_name`): ``W1[2,0]``, and a 0-d node's plain name. The names
    are readable and never collide, even for node names that look like element
    names (a 0-d node named ``"W[0]"`` is ``"W[0][]"``, apart from element 0 of
    ``W``); the element's identity is also kept as attributes: ``tensor`` (the node's
    name) and ``index``, besides ``value``, ``grad`` (None where no gradient flowed),
    ``kind`` and ``op``. An edge from an input element to an output element of an op
    carries ``weight``, the partial derivative of the output element with respect to
    the input element at the current values, summed over the argument slots that
    input fills. It comes from the op's own explicit jacobian or, for an op without
    one, from its vjp applied to one-hot seeds: no op needs code of its own here.
    Zero derivatives make no edge. Nodes are added in a topological order. The
    element graph keeps the run it was made from as ``element_graph.graph["run"]``.

    Parameters
    ----------
    run : Run
        A record whose forward pass has run, usually ``graph.run``.
    nodes : iterable of Node, optional
        Only these nodes' elements, and the edges between them (default: every node).
        A caller that needs the part between two nodes pays only for that part.
    max_size : int or None
        Refuse, before building it, a local Jacobian of more than this many entries
        (output elements times input elements), or an element graph of more than this
        many elements and edges together (default :data:`MAX_SIZE`, a million; None:
        no limit). Each element and edge costs a few hundred bytes.

    Returns
    -------
    networkx.DiGraph

    Raises
    ------
    GraphError
        When a node has no value (run ``forward()`` first, with ``retain=True``), or
        the element graph or a local Jacobian would exceed ``max_size``.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", [1.0, 2.0])
    >>> y = g.op("mul", x, 3.0, name="y")
    >>> g.forward()
    >>> eg = element_graph(g.run)
    >>> sorted(eg.edges(data="weight"))
    [('const_1', 'y[0]', 1.0), ('const_1', 'y[1]', 2.0), ('x[0]', 'y[0]', 3.0), ('x[1]', 'y[1]', 3.0)]
    >>> eg.nodes["x[1]"]["value"], eg.nodes["x[1]"]["tensor"], eg.nodes["x[1]"]["index"]
    (2.0, 'x', (1,))
    >>> element_graph(g.run, max_size=5)
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: the local Jacobian of op node 'y' (mul, output (2,), inputs 'x' (2,), 'const_1' ()) would have 6 entries, more than max_size=5; pass a larger max_size= to dagprop.paths.element_graph (dp.render draws the element graph it returns) or to paths, count_paths and top_paths, if there is memory for it

    See Also
    --------
    paths, count_paths, top_paths
    """
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise GraphError(f"max_size must be a positive int or None (no limit), got {max_size!r}")
    values, grads = run.values, run.grads
    chosen = sorted(run.nodes if nodes is None else nodes, key=lambda n: n.index)
    wanted = {n.index for n in chosen}
    for node in chosen:
        if values[node.index] is None:
            raise GraphError(
                f"node {node.name!r} has no value, so its elements are unknown: run g.forward() first "
                f"(with retain=True, which keeps intermediate values)"
            )
    size = _Size(max_size)
    size.add_elements(chosen, values)
    element_graph = nx.DiGraph(run=run)
    names: dict[int, list[str]] = {}
    for node in chosen:
        value = np.asarray(values[node.index])
        grad = grads[node.index]
        grad = None if grad is None else np.broadcast_to(np.asarray(grad), value.shape)
        indices = list(np.ndindex(value.shape))
        names[node.index] = [element_name(node.name, index) for index in indices]
        grads_of = [None] * value.size if grad is None else grad.ravel().tolist()
        element_graph.add_nodes_from(
            (name, {"value": v, "grad": d, "tensor": node.name, "index": index, "kind": node.kind, "op": node.op})
            for name, v, d, index in zip(names[node.index], value.ravel().tolist(), grads_of, indices))
    for node in chosen:
        if node.op_def is None:
            continue
        needs = tuple(source.index in wanted for source in node.inputs)
        if not any(needs):
            continue
        args = [values[source.index] for source in node.inputs]
        out = values[node.index]
        size.check_jacobian(node, args, out, needs)
        jacobians = rules.local_jacobians(node, args, out, needs)
        summed: dict[int, np.ndarray] = {}
        for source, jacobian in zip(node.inputs, jacobians):
            if jacobian is None or source.index not in wanted:
                continue
            flat = np.asarray(jacobian, dtype=np.float64).reshape(out.size, -1)
            summed[source.index] = accumulate(summed.get(source.index), flat)
        out_names = names[node.index]
        for source_index, flat in summed.items():
            in_names = names[source_index]
            rows, columns = np.nonzero(flat)
            size.add_edges(len(rows))
            op = node.op
            element_graph.add_edges_from(
                (in_names[i], out_names[o], {"weight": w, "op": op})
                for o, i, w in zip(rows.tolist(), columns.tolist(), flat[rows, columns].tolist()))
    return element_graph


class _Size:
    """The size of an element graph being built, against ``max_size``."""

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.elements = 0
        self.edges = 0

    def hint(self) -> str:
        return (f"more than max_size={self.max_size:,}; pass a larger max_size= to dagprop.paths.element_graph "
                f"(dp.render draws the element graph it returns) or to paths, count_paths and top_paths, if there "
                f"is memory for it")

    def add_elements(self, nodes: list[Node], values: list) -> None:
        sizes = [(int(np.size(values[n.index])), n) for n in nodes]
        self.elements = sum(size for size, _ in sizes)
        if self.max_size is not None and self.elements > self.max_size:
            largest = ", ".join(f"{n.name!r} {np.shape(values[n.index])}" for _, n in sorted(
                sizes, key=lambda pair: (-pair[0], pair[1].index))[:3])
            raise GraphError(f"the element graph would have {self.elements:,} elements (largest nodes: {largest}), "
                             f"{self.hint()}")

    def check_jacobian(self, node: Node, args: list, out: np.ndarray, needs: tuple[bool, ...]) -> None:
        entries = out.size * sum(np.size(a) for a, need in zip(args, needs) if need)
        if self.max_size is not None and entries > self.max_size:
            shapes = ", ".join(f"{s.name!r} {np.shape(a)}" for s, a, need in zip(node.inputs, args, needs) if need)
            raise GraphError(f"the local Jacobian of op node {node.name!r} ({node.op}, output {out.shape}, inputs "
                             f"{shapes}) would have {entries:,} entries, {self.hint()}")

    def add_edges(self, count: int) -> None:
        self.edges += count
        if self.max_size is not None and self.elements + self.edges > self.max_size:
            raise GraphError(f"the element graph would have {self.elements:,} elements and at least {self.edges:,} "
                             f"edges, {self.hint()}")
