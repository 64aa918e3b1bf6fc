"""Derivatives beyond one backward pass: forward mode, whole Jacobians, Hessians and
Hessian-vector products. :class:`dagprop.Graph` gets these methods from :class:`Derivatives`."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from . import backward_graph, scheduler
from .errors import BackwardError, GraphError
from .jacobians import graph_jacobian
from .rules import one_hot_seeds
from .run import Run, as_array, as_tangents

if TYPE_CHECKING:
    from .graph import Graph
    from .node import Node

__all__ = ["Derivatives", "JACOBIAN_MODES"]

JACOBIAN_MODES = ("auto", "reverse", "forward")

log = logging.getLogger("dagprop")


class Derivatives:
    """Forward mode, Jacobians and second derivatives, as methods of :class:`dagprop.Graph`."""

    # what Graph provides, declared for the type checker
    _lock: threading.RLock
    _run: Run
    _second_order_copies: dict[tuple[int, int, int], tuple]

    def jvp(self: Graph, tangents: Mapping[Node | str, Any]) -> None:  # type: ignore[misc]
        """Forward mode: push tangents from some leaves through the graph.

        Every node the tangents reach gets ``node.tangent``: the directional derivative
        of its value along the given direction (leaves left out do not move). What each
        edge carried is :meth:`edge_tangent`; a node with several inputs sums them,
        mirroring :meth:`edge_grad`. Runs forward first if values are missing. Each
        node's tangent comes from its op's ``jvp`` rule, or from its explicit Jacobian.

        Parameters
        ----------
        tangents : dict
            Leaf (node or name) -> its tangent, shaped like its value.

        Raises
        ------
        GraphError
            When a key is not a leaf, or a tangent's shape differs from its leaf's.
        OpError
            When an op on the way has neither a jvp rule nor an explicit Jacobian.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> x = g.param("x", 2.0); w = g.param("w", 3.0)
        >>> y = x * w + x
        >>> g.jvp({x: 1.0})  # dy/dx = w + 1
        >>> float(y.tangent), float(g.edge_tangent(x, y))
        (4.0, 1.0)
        """
        with self._lock:
            seeds = as_tangents(self._run, tangents)
            if any(self._run.values[step.index] is None for step in self.plan.forward_plan(None).steps):
                self.forward()
            self._run = scheduler.run_jvp(self.plan, self._run, seeds)

    def edge_tangent(self: Graph, src: Node | str, dst: Node | str) -> np.ndarray | None:  # type: ignore[misc]
        """What src's tangent contributed to dst's along the edge src -> dst, from the last :meth:`jvp`.

        Summed over dst's argument slots; None when no tangent flowed along it.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = x * x
        >>> g.jvp({x: 1.0}); float(g.edge_tangent(x, y))  # 3 along each of the two slots
        6.0
        """
        return self._run.edge_tangent(src, dst)

    def jacobian(self: Graph, output: Node | str, wrt: Node | str,  # type: ignore[misc]
                 mode: str = "auto") -> np.ndarray:
        """The full Jacobian d output / d wrt at the current values, shaped ``output.shape + wrt.shape``.

        Reverse mode builds it a row at a time, one backward pass per element of
        ``output``; forward mode a column at a time, one :meth:`jvp` per element of
        ``wrt``. ``mode="auto"`` picks the one with fewer passes (forward when ``wrt``
        has fewer elements than ``output``) and logs its choice on the ``dagprop``
        logger at INFO level. Needs a forward pass first; leaves gradients and tangents
        untouched.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> x = g.param("x", [1.0, 2.0])
        >>> y = 3 * x
        >>> g.forward(); g.jacobian(y, x)
        array([[3., 0.],
               [0., 3.]])
        >>> g.jacobian(y, x, mode="forward")
        array([[3., 0.],
               [0., 3.]])
        """
        if mode not in JACOBIAN_MODES:
            raise GraphError(f"mode must be one of {', '.join(map(repr, JACOBIAN_MODES))}, got {mode!r}")
        out_node, wrt_node = self.node(output), self.node(wrt)
        with self._lock:
            values = self._run.values
            out, at = values[out_node.index], values[wrt_node.index]
            if out is None or at is None:
                raise BackwardError(f"run forward() before asking for the Jacobian of {out_node.name!r}")
            if mode == "auto":
                mode = "forward" if at.size < out.size else "reverse"
                log.info("jacobian of %r with respect to %r: %s mode, %d passes (%d inputs, %d outputs)",
                         out_node.name, wrt_node.name, mode, min(at.size, out.size), at.size, out.size)
            if mode == "reverse":
                return graph_jacobian(self, out_node, wrt_node)
            if wrt_node.op_def is not None:
                raise GraphError(f"forward mode starts from leaves; {wrt_node.name!r} is an op node: use "
                                 f"mode='reverse'")
            columns = np.zeros(out.shape + (at.size,))
            for k, direction in enumerate(one_hot_seeds(at.shape)):
                run = scheduler.run_jvp(self.plan, self._run, {wrt_node.index: direction})
                tangent = run.tangents[out_node.index] if run.tangents is not None else None
                if tangent is not None:
                    columns[..., k] = tangent
            return columns.reshape(out.shape + at.shape)

    def hvp(self: Graph, loss: Node | str, wrt: Node | str, v: Any) -> np.ndarray:  # type: ignore[misc]
        """The Hessian of ``loss`` with respect to the leaf ``wrt``, times ``v``, without forming the Hessian.

        Forward-over-reverse: the backward pass is built as nodes (as by
        ``backward(create_graph=True)``) in a private copy of the graph, and one
        forward-mode pass pushes ``v`` through it, so the cost is a few forward
        passes whatever the size of ``wrt``. The copy is kept for the next call
        until this graph changes shape; this graph's values, gradients and tangents
        are left as they are.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0])
        >>> L = (x * x * x).sum()  # Hessian diag(6 x)
        >>> g.forward(); g.hvp(L, x, [1.0, 1.0])
        array([ 6., 12.])
        """
        copy, wrt_copy, grad = self._second_order(loss, wrt)
        direction = as_array(v, "v")
        if direction.shape != copy.run.values[wrt_copy.index].shape:
            raise GraphError(f"v has shape {direction.shape}, but {wrt_copy.name!r} has shape "
                             f"{copy.run.values[wrt_copy.index].shape}")
        if grad is None:
            return np.zeros(direction.shape)
        copy.jvp({wrt_copy: direction})
        tangent = grad.tangent
        return np.zeros(direction.shape) if tangent is None else np.array(tangent)

    def hessian(self: Graph, loss: Node | str, wrt: Node | str) -> np.ndarray:  # type: ignore[misc]
        """d²loss / d wrt², shaped ``wrt.shape + wrt.shape``, at the current values.

        Reverse-over-reverse: the backward pass is built as nodes in a private copy of
        the graph, and the Jacobian of the gradient node is taken one backward pass
        per element of ``wrt``. This graph is left as it was.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", [0.5, -1.0])
        >>> L = x.tanh().sum()  # diag(-2 tanh(x) (1 - tanh(x)^2))
        >>> g.forward(); g.hessian(L, x).round(4)
        array([[-0.7269,  0.    ],
               [ 0.    ,  0.6397]])
        """
        copy, wrt_copy, grad = self._second_order(loss, wrt)
        if grad is None:
            shape = copy.run.values[wrt_copy.index].shape
            return np.zeros(shape + shape)
        return graph_jacobian(copy, grad, wrt_copy) + 0.0  # + 0.0 turns the -0.0 of zero products into 0.0

    def _second_order(self: Graph, loss: Node | str, wrt: Node | str  # type: ignore[misc]
                      ) -> tuple[Graph, Node, Node | None]:
        """A private copy of this graph holding the backward pass of ``loss`` to ``wrt`` as nodes, run
        forward at this graph's current values; with the copies of wrt and of wrt's gradient node."""
        from .expand import expanded

        loss_node, wrt_node = self.node(loss), self.node(wrt)
        if wrt_node.op_def is not None:
            raise GraphError(f"second derivatives are taken with respect to a leaf; {wrt_node.name!r} is an op "
                             f"node ({wrt_node.op})")
        with self._lock:
            values = self._run.values
            value = values[loss_node.index]
            if value is None:
                raise BackwardError(f"node {loss_node.name!r} has no value: run forward() first")
            if value.size != 1:
                raise BackwardError(f"second derivatives need a scalar loss; {loss_node.name!r} has shape "
                                    f"{value.shape}")
            key = (self.plan.version, loss_node.index, wrt_node.index)
            if key not in self._second_order_copies:
                copy = expanded(self, False)
                loss_copy, wrt_copy = copy[loss_node.name], copy[wrt_node.name]
                if wrt_node.index not in self.plan.ancestors((loss_node.index,)):
                    raise BackwardError(f"{loss_node.name!r} does not depend on {wrt_node.name!r}")
                # no node when every path passes an op that sends no gradient (a step): then it is 0
                grads, _ = backward_graph.build(loss_copy, np.ones(value.shape), frozenset({wrt_copy.index}))
                self._second_order_copies.clear()  # one at a time: a copy is as big as the graph
                self._second_order_copies[key] = (copy, wrt_copy, grads.get(wrt_copy.index))
            copy, wrt_copy, grad = self._second_order_copies[key]
            for node in self:
                if node.op_def is None:
                    copy.run.values[copy[node.name].index] = values[node.index]
            copy.forward()
            return copy, wrt_copy, grad
