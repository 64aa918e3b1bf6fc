"""What an ONNX converter gets: :class:`Context`. See :mod:`dagprop.importers.onnx` for the whole
contract; the class is importable from there too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import Node

if TYPE_CHECKING:
    import onnx

    from .onnx import _Importer

__all__ = ["Context"]


class Context:
    """What a converter gets: the graph, the ONNX node, and helpers to build its dagprop nodes.

    Attributes
    ----------
    graph : Graph
        The graph being built.
    opset : int
        The model's version of the default ONNX domain (attributes moved to inputs
        and defaults changed between versions).
    op_type : str
        The ONNX op type, such as ``"Gemm"``.
    node_name : str
        The ONNX node's name (may be empty).
    outputs : tuple of str
        The names of the ONNX node's outputs ("" for an optional output left out).
    name : str
        The name the node computing the first output gets: that output's name.

    Examples
    --------
    >>> import dagprop as dp
    >>> from dagprop.importers.onnx import tiny_model_bytes
    >>> g = dp.from_onnx(tiny_model_bytes(), inputs={"x": [[-1.0, 2.0]]})
    >>> g["y"].op, g["y"].inputs[0].name
    ('relu', 'x')
    """

    def __init__(self, importer: _Importer, node: onnx.NodeProto) -> None:
        self._importer = importer
        self.graph = importer.graph
        self.opset = importer.opset
        self.op_type = node.op_type
        self.node_name = node.name
        self.outputs = tuple(node.output)
        self.name = next((o for o in node.output if o), node.name or node.op_type)

    def __repr__(self) -> str:
        return f"<dagprop ONNX context: {self.op_type} node {self.node_name!r} -> {', '.join(self.outputs)}>"

    def is_static(self, *values: Any) -> bool:
        """Whether every one of ``values`` is known now (a numpy array, or None)."""
        return all(v is None or isinstance(v, np.ndarray) for v in values)

    def op(self, op_name: str, *args: Any, **attrs: Any) -> Any:
        """A node applying dagprop op ``op_name`` on the way to the output, named ``<output>:<op>``.

        Numbers and arrays among ``args`` become consts (named after their ONNX
        tensor where they have one); when every argument is an array, the op is
        computed now and its array returned instead of a node.
        """
        return self._build(op_name, args, attrs, None)

    def output(self, op_name: str, *args: Any, output: int = 0, **attrs: Any) -> Any:
        """The node computing the ONNX node's output number ``output``, named exactly as that output."""
        if not 0 <= output < len(self.outputs) or not self.outputs[output]:
            raise ValueError(f"the {self.op_type} node has no output number {output} (outputs: {self.outputs})")
        return self._build(op_name, args, attrs, self.outputs[output])

    def _build(self, op_name: str, args: tuple, attrs: dict, name: str | None) -> Any:
        registry = self.graph.registry
        if all(isinstance(a, (np.ndarray, int, float)) for a in args):
            op_def = registry[op_name]
            return np.asarray(op_def.forward(*(np.asarray(a) for a in args), **attrs))
        nodes = [self.node(a) if isinstance(a, np.ndarray) else a for a in args]
        name = name if name is not None else self._importer.fresh_name(f"{self.name}:{op_name}")
        return self.graph.op(op_name, *nodes, name=name, **attrs)

    def node(self, value: Any) -> Node:
        """``value`` as a node: a node as it is, an array as a const (named after its ONNX tensor if it has one)."""
        if isinstance(value, Node):
            return value
        return self._importer.const(np.asarray(value))

    def static(self, value: Any, what: str = "this input") -> np.ndarray:
        """The array ``value`` holds now: an array as it is, the value of a const or param leaf.

        Raises ValueError when ``value`` is computed by the graph (from its inputs),
        since then it is not known until the graph runs.
        """
        if isinstance(value, np.ndarray):
            return value
        if isinstance(value, (int, float, list, tuple)):
            return np.asarray(value)
        if isinstance(value, Node) and value.kind in ("const", "param") and value.value is not None:
            return np.asarray(value.value)
        source = value.name if isinstance(value, Node) else repr(value)
        raise ValueError(f"{what} must be known when the model is converted (an initializer or a Constant), "
                         f"but it is {source!r}, computed from the graph's inputs")

    def shape(self, value: Any, what: str = "the input") -> tuple[int, ...]:
        """The shape of ``value``: from its value or dagprop's shape rules, else from the file's shape inference.

        Raises ValueError when neither knows every size (a symbolic batch size in a
        model whose inputs have no values yet).
        """
        if isinstance(value, np.ndarray):
            return value.shape
        if isinstance(value, Node):
            if value.shape is not None:
                return tuple(value.shape)
            declared = self._importer.declared_shape(value)
            if declared is not None and all(d is not None for d in declared):
                return tuple(int(d) for d in declared)  # type: ignore[arg-type]
        name = value.name if isinstance(value, Node) else repr(value)
        raise ValueError(f"{self.op_type} needs the shape of {what} ({name}), which is not known: give the "
                         f"model's inputs values (from_onnx(..., inputs={{...}}), or example_inputs) or use a "
                         f"file whose shapes are static")

    def rank(self, value: Any, what: str = "the input") -> int:
        """The number of axes of ``value`` (known more often than its sizes)."""
        if isinstance(value, Node) and value.shape is None:
            declared = self._importer.declared_shape(value)
            if declared is not None:
                return len(declared)
        return len(self.shape(value, what))
