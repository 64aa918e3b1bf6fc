"""The element graph: every single element (neuron) of every node, with edges weighted by
the ops' local partial derivatives at the run's values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import networkx as nx
import numpy as np

from .. import rules
from ..errors import GraphError
from ..run import accumulate

if TYPE_CHECKING:
    from ..node import Node
    from ..run import Run

__all__ = ["element_graph", "element_name"]


def element_name(name: str, index: tuple[int, ...]) -> str:
    """The name of one element of a node: ``W1[2,0]``; a 0-d node keeps its plain name.

    Examples
    --------
    >>> element_name("W1", (2, 0)), element_name("x", (3,)), element_name("L", ())
    ('W1[2,0]', 'x[3]', 'L')
    """
    return name if not index else f"{name}[{','.join(str(int(i)) for i in index)}]"


def element_graph(run: Run, nodes: Iterable[Node] | None = None) -> nx.DiGraph:
    """The graph of single elements (neurons), edges weighted by local partial derivatives.

    Every element of every node is a node named like ``W1[2,0]`` (a 0-d node keeps
    its plain name), with attributes ``value``, ``grad`` (None where no gradient
    flowed), ``tensor`` (the node's name), ``index``, ``kind`` and ``op``. An edge
    from an input element to an output element of an op carries ``weight``, the
    partial derivative of the output element with respect to the input element at
    the current values, summed over the argument slots that input fills. It comes
    from the op's own explicit jacobian or, for an op without one, from its vjp
    applied to one-hot seeds: no op needs code of its own here. Zero derivatives
    make no edge. Nodes are added in a topological order. The element graph keeps
    the run it was made from as ``element_graph.graph["run"]``.

    Parameters
    ----------
    run : Run
        A record whose forward pass has run, usually ``graph.run``.
    nodes : iterable of Node, optional
        Only these nodes' elements, and the edges between them (default: every node).
        A caller that needs the part between two nodes pays only for that part.

    Returns
    -------
    networkx.DiGraph

    Raises
    ------
    GraphError
        When a node has no value (run ``forward()`` first, with ``retain=True``).

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
    >>> eg.nodes["x[1]"]["value"]
    2.0

    See Also
    --------
    paths, count_paths, top_paths
    """
    values, grads = run.values, run.grads
    chosen = sorted(run.nodes if nodes is None else nodes, key=lambda n: n.index)
    wanted = {n.index for n in chosen}
    for node in chosen:
        if values[node.index] is None:
            raise GraphError(
                f"node {node.name!r} has no value, so its elements are unknown: run g.forward() first "
                f"(with retain=True, which keeps intermediate values)"
            )
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
            op = node.op
            element_graph.add_edges_from(
                (in_names[i], out_names[o], {"weight": w, "op": op})
                for o, i, w in zip(rows.tolist(), columns.tolist(), flat[rows, columns].tolist()))
    return element_graph
