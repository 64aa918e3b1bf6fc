"""What a torch converter gets: :class:`Builder`, and :func:`op_name`, the name a converter is
registered under. See :mod:`dagprop.importers.torch` for the whole contract; both are
importable from there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import Graph, Node

if TYPE_CHECKING:
    from torch.fx import Node as TorchNode

__all__ = ["Builder", "op_name", "traced_shapes"]


def op_name(target: Any) -> str:
    """The name a converter is registered under for a call's target: the op without its overload.

    Examples
    --------
    >>> import torch
    >>> op_name(torch.ops.aten.add.Tensor), op_name(torch.ops.aten.linear.default)
    ('aten.add', 'aten.linear')
    """
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return f"{target.namespace}.{packet.__name__}"
    module = (getattr(target, "__module__", None) or "").lstrip("_")
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    return f"{module}.{name}" if module else str(name)


class Builder:
    """What a converter gets: the graph to build in, what is known of the call, and helpers.

    Attributes
    ----------
    graph : Graph
        The graph being built; nodes built in it by any means (``b.op``, node
        arithmetic, ``g.op``) belong to the call.
    op_name : str
        The op's name as converters are keyed, ``"aten.linear"``.
    overload : str
        The overload called, ``"default"``, ``"Tensor"``, ``"Scalar"``, ``"int"``...
    node_name : str
        The traced program's name for the call (``"linear_1"``).
    module : str
        The path of the module that made the call (``"attn.q"``; ``""`` for the root).
    out_shape : tuple
        The shape of the call's result, or a tuple of shapes for an op with several
        results (None for a result that is not a tensor).
    out_dtype : torch.dtype or None
        The dtype of the (first) result.
    dtypes : tuple
        Per positional argument, the ``torch.dtype`` of the tensor it stands for
        (None for an argument that is not a tensor).
    torch_node : torch.fx.Node
        The call in the exported program, for anything else.

    Examples
    --------
    >>> import torch
    >>> import dagprop as dp
    >>> seen = []
    >>> def convert_sinh(b, x):
    ...     seen.append((b.op_name, b.overload, b.node_name, b.module, b.out_shape))
    ...     return (b.op("exp", x) - b.op("exp", -x)) * 0.5
    >>> class Sinh:
    ...     @dp.hookimpl
    ...     def dagprop_torch_converters(self):
    ...         return {"aten.sinh": convert_sinh}
    >>> class Wave(torch.nn.Module):
    ...     def forward(self, x):
    ...         return torch.sinh(x)
    >>> g = dp.from_torch(Wave(), torch.zeros(2, 3), plugins=[Sinh()])
    >>> seen
    [('aten.sinh', 'default', 'sinh', '', (2, 3))]
    >>> [(n.name, n.op) for n in g if n.kind == "op"]
    [('sinh:exp', 'exp'), ('sinh:neg', 'neg'), ('sinh:exp_2', 'exp'), ('sinh:sub', 'sub'), ('output', 'mul')]
    """

    def __init__(self, graph: Graph, fx_node: TorchNode, module: str, dtypes: tuple[Any, ...]) -> None:
        value = fx_node.meta.get("val")
        self.graph = graph
        self.op_name = op_name(fx_node.target)
        self.overload = str(getattr(fx_node.target, "__name__", "")).rpartition(".")[2] or "default"
        self.node_name = fx_node.name
        self.module = module
        self.out_shape = traced_shapes(value)
        self.out_dtype = getattr(value[0] if isinstance(value, (tuple, list)) and value else value, "dtype", None)
        self.dtypes = dtypes
        self.torch_node = fx_node

    def __repr__(self) -> str:
        return f"<dagprop torch builder: {self.op_name}.{self.overload} call {self.node_name!r}>"

    def op(self, op_name: str, *args: Any, **attrs: Any) -> Node:
        """A node applying the dagprop op ``op_name`` (numbers and arrays among ``args`` become consts)."""
        return self.graph.op(op_name, *args, **attrs)

    def const(self, value: Any) -> Node:
        """A const node holding ``value`` as float64."""
        return self.graph.const(np.asarray(value, dtype=np.float64))

    def static(self, value: Any, what: str = "this argument") -> np.ndarray:
        """The array ``value`` holds now; NotImplementedError when the model computes it from its inputs.

        A const node (a buffer, a tensor the model makes from constants) gives its value.
        """
        if isinstance(value, Node):
            if value.kind == "const":
                return np.asarray(value.value)
            raise NotImplementedError(f"{what} must be known when the model is converted, but it is computed "
                                      f"from the model's inputs or parameters ({value.name})")
        return np.asarray(value, dtype=np.float64)


def traced_shapes(value: Any) -> Any:
    """The shape of a traced value as a tuple (a tuple of them for several values; None for what
    is not a tensor)."""
    if isinstance(value, (tuple, list)):
        return tuple(traced_shapes(v) for v in value)
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)
