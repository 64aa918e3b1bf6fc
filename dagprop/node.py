"""The node handle users hold: a name, an op and its inputs, and the numbers of the latest run."""

from __future__ import annotations

import difflib
import functools
import operator
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph
    from .op import Op

__all__ = ["Node"]


class Node:
    """A handle on one node of a :class:`Graph`.

    Arithmetic on nodes builds new op nodes (``V @ x + b``); any registered op is
    also a method (``z.sigmoid()``, ``x.sum(axis=0)``). Values and gradients are
    read from the graph's :class:`~dagprop.Run`, so a handle always shows the latest run.

    Attributes
    ----------
    graph : Graph
        The graph the node belongs to.
    name : str
        Unique within the graph.
    kind : {"input", "param", "const", "op"}
    index : int
        Position in the graph, in the order nodes were added (a topological order);
        the run record's lists are indexed by it.
    op_def : Op or None
        The op an op node applies; None for a leaf.
    attrs : dict
        The op's attributes (``axis=0``, ``exponent=3.0``...).
    inputs : tuple of Node
        The op's arguments, slot by slot (``x * x`` has x in slots 0 and 1).
    requires_grad : bool
        Whether backward computes this node's gradient.
    scope : tuple of str
        The scopes the node was built in, outermost first: ``("layer1", "attention")``
        for a node built inside ``with g.scope("layer1"):`` and ``with g.scope("attention"):``;
        ``()`` outside every scope. See :meth:`Graph.scope`.
    static_shape : tuple of int or None
        The shape known when the node was built: a leaf's value's, or what the op's shape
        rule gave for its inputs' shapes (None if unknown). A feed may change the shape the
        node has now; :attr:`shape` tells. A plain attribute, not a property: the scheduler
        reads it for every step of a checked pass.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", [1.0, 2.0])
    >>> y = (x * x).sum()
    >>> y.op, y.kind, x.kind
    ('sum', 'op', 'param')
    >>> g.forward(); g.backward(y)
    >>> x.grad
    array([2., 4.])
    >>> with g.scope("layer1"):
    ...     h = (x * 2.0).tanh()
    >>> h.scope, h.inputs[0].scope, x.scope
    (('layer1',), ('layer1',), ())
    >>> u = g.input("u"); W = g.param("W", [[1.0, 2.0]])
    >>> (W.T @ W).static_shape, (W @ u).static_shape
    ((2, 2), None)
    """

    __slots__ = ("graph", "name", "kind", "index", "op_def", "attrs", "inputs", "requires_grad", "scope",
                 "static_shape")
    __array_ufunc__ = None  # make numpy defer to our reflected operators (array * node)

    def __init__(self, graph: Graph, name: str, kind: str, index: int, op_def: Op | None,
                 attrs: dict[str, Any], inputs: tuple[Node, ...], requires_grad: bool,
                 static_shape: tuple[int, ...] | None, scope: tuple[str, ...] = ()) -> None:
        self.graph = graph
        self.name = name
        self.kind = kind
        self.index = index
        self.op_def = op_def
        self.attrs = attrs
        self.inputs = inputs
        self.requires_grad = requires_grad
        self.scope = scope
        self.static_shape = static_shape

    @property
    def op(self) -> str | None:
        """The op's name, or None for a leaf (input, param, const).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 1.0)
        >>> x.op, x.exp().op
        (None, 'exp')
        """
        return None if self.op_def is None else self.op_def.name

    @property
    def value(self) -> np.ndarray | None:
        """The value from the last forward pass (leaves: the value given or fed).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); y = g.param("x", 2.0) * 3
        >>> y.value is None
        True
        >>> g.forward(); y.value
        array(6.)
        """
        return self.graph.run.value(self)

    @property
    def grad(self) -> np.ndarray | None:
        """dL/d(this node) from the last backward pass(es), shaped like the value; None if none flowed.

        Read-only: one array often serves several nodes (add passes its gradient to both
        inputs), so copy it before changing it in place.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); y = (x * x).sum()
        >>> g.forward(); g.backward(y); x.grad
        array([2., 4.])
        >>> x.grad.flags.writeable
        False
        """
        return self.graph.run.grad(self)

    @property
    def grad_node(self) -> Node | None:
        """The node computing this node's gradient, after ``backward(create_graph=True)``; else None.

        ``zero_grad()`` forgets it (the node stays in the graph): keep a reference to
        differentiate it again after clearing the gradients.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 2.0); y = x * x * x
        >>> g.forward(); g.backward(y, create_graph=True)
        >>> float(x.grad), float(x.grad_node.value), x.grad_node.scope
        (12.0, 12.0, ('backward',))
        """
        return self.graph.run.grad_node(self)

    @property
    def tangent(self) -> np.ndarray | None:
        """The directional derivative from the last :meth:`Graph.jvp` (read-only); None where none reached.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 2.0); y = x * x * x
        >>> g.jvp({x: 0.5}); float(y.tangent)
        6.0
        """
        return self.graph.run.tangent(self)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The value's shape; before the first forward, the shape inferred from the inputs (None if unknown).

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); W = g.param("W", [[1.0, 2.0, 3.0]]); x = g.input("x")
        >>> (W.T @ W).shape, (W @ x).shape
        ((3, 3), None)
        """
        run, index = self.graph.run, self.index
        # read in place unless an executor holds the value elsewhere (run.value would fetch it):
        # building a node asks for its inputs' shapes, and graphs of 10^5 nodes are built
        value = run.here("values")[index] if run.handle("values", index) is None else run.value(self)
        return value.shape if value is not None else self.static_shape

    @property
    def ndim(self) -> int | None:
        """The number of axes (None while the shape is unknown).

        Examples
        --------
        >>> import dagprop as dp
        >>> dp.Graph().param("W", [[1.0, 2.0]]).ndim
        2
        """
        shape = self.shape
        return None if shape is None else len(shape)

    @property
    def T(self) -> Node:
        """The transpose (op ``transpose``): reverses the axes.

        Examples
        --------
        >>> import dagprop as dp
        >>> W = dp.Graph().param("W", [[1.0, 2.0, 3.0]])
        >>> W.T.op, W.T.shape
        ('transpose', (3, 1))
        """
        return self.graph.op("transpose", self)

    def __reduce__(self) -> tuple:
        # a node travels as its graph and its name: unpickled, it is the node of the unpickled graph
        return operator.getitem, (self.graph, self.name)

    def __getattr__(self, name: str) -> Any:
        graph = self.graph
        registry = graph.registry
        if name in registry.ops:  # first: this is how every x.tanh() finds its op
            return functools.partial(graph.op, name, self)
        if name.startswith("_"):  # never an op's name
            raise AttributeError(name)
        close = difflib.get_close_matches(name, registry.names(), n=3)
        hint = f"; registered ops with close names: {', '.join(close)}" if close else ""
        raise AttributeError(f"Node has no attribute or op named {name!r}{hint}")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.graph.registry.names()))

    def __repr__(self) -> str:
        what = self.op if self.op is not None else self.kind
        return f"<Node {self.name!r} {what} shape={self.shape}>"

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("a Node is not iterable; index it explicitly (n[0]) to build getitem nodes")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        # without this, numpy would wrap a node in an object array and np.where(node > 0, ...) would
        # silently test the node's truth instead of building nodes
        raise TypeError(f"node {self.name!r} is a graph node, not an array: NumPy functions cannot take it; "
                        f"use its value (node.value), or build nodes with operators and op methods")

    def __add__(self, other: Any) -> Node:
        return self.graph.op("add", self, other)

    def __radd__(self, other: Any) -> Node:
        return self.graph.op("add", other, self)

    def __sub__(self, other: Any) -> Node:
        return self.graph.op("sub", self, other)

    def __rsub__(self, other: Any) -> Node:
        return self.graph.op("sub", other, self)

    def __mul__(self, other: Any) -> Node:
        return self.graph.op("mul", self, other)

    def __rmul__(self, other: Any) -> Node:
        return self.graph.op("mul", other, self)

    def __truediv__(self, other: Any) -> Node:
        return self.graph.op("div", self, other)

    def __rtruediv__(self, other: Any) -> Node:
        return self.graph.op("div", other, self)

    def __matmul__(self, other: Any) -> Node:
        return self.graph.op("matmul", self, other)

    def __rmatmul__(self, other: Any) -> Node:
        return self.graph.op("matmul", other, self)

    def __pow__(self, exponent: Any) -> Node:
        if isinstance(exponent, (int, float, np.integer, np.floating)):
            return self.graph.op("pow", self, exponent=float(exponent))
        return self.graph.op("pow", self, exponent)

    def __rpow__(self, base: Any) -> Node:
        return self.graph.op("pow", base, self)

    def __neg__(self) -> Node:
        return self.graph.op("neg", self)

    def __getitem__(self, index: Any) -> Node:
        return self.graph.op("getitem", self, index=index)

    # Comparisons build a node of 1s and 0s (op ``step``), as in PyTorch, so that a derivative
    # written for arrays (relu's ``x > 0``) also builds its own graph for create_graph=True.
    def __gt__(self, other: Any) -> Node:
        return self.graph.op("step", self if _is_zero(other) else self - other)

    def __lt__(self, other: Any) -> Node:
        return self.graph.op("step", -self if _is_zero(other) else other - self)


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and value == 0
