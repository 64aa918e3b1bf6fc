"""ONNX models as dagprop graphs: :func:`from_onnx`, and what an ONNX converter is.

A model is read with the ``onnx`` package (``pip install dagprop[onnx]``), checked with
``onnx.checker``, its local functions inlined and its shapes inferred. Then each ONNX
node becomes one or a few dagprop nodes:

- every float initializer the nodes use becomes a param of the same name (the file
  does not say which are trainable, so all are but running statistics, which become
  consts, see ``constant_inputs`` below); integer and boolean initializers
  (shapes, axes, indices) are values known at conversion time and become consts only
  where a node uses them as data;
- every graph input that is not an initializer becomes an input of the same name,
  with the value given in ``inputs=`` or none (feed it with ``forward(feeds=...)``;
  :func:`example_inputs` makes seeded random ones);
- the node computing each graph output is named exactly as the output, and the
  nodes an ONNX node needs on the way are named after its output (``y:transpose``);
- a node whose ONNX name is a path such as ``/encoder/fc1/Gemm`` (as torch exports
  them) goes into the scope ``encoder/fc1``, which diagrams draw as a box.

Values computed only from constants (a shape computation, a Constant) are folded
at conversion time and never become nodes.

Converters
----------
Each ONNX op type is turned into dagprop nodes by a *converter*, a function that a
plugin returns from the ``dagprop_onnx_converters`` hook as ``{op type: converter}``
(an op of another domain than the default one is keyed ``"domain:OpType"``). The
built-in converters, :mod:`dagprop_plugins.onnx_converters`, are registered through
that same hook. A converter is::

    def convert(ctx, *inputs, **attributes) -> Node | numpy.ndarray | tuple

``ctx``
    A :class:`Context`: the graph, the model's opset, the ONNX node's name and
    output names, and the helpers below.
``inputs``
    The ONNX node's inputs in order, each a :class:`dagprop.Node`; a numpy array
    for a value known at conversion time (an integer initializer, a Constant's
    output, a value computed from those only); or None for an optional input left
    out (trailing ones are dropped, so give them defaults).
``attributes``
    The node's attributes by their ONNX names (``transA=1``) as Python values:
    int, float, str, lists of those, numpy arrays for tensors. Declare each as a
    keyword with the ONNX default; an attribute the converter does not take is an
    error naming it.
returns
    The node computing the node's first output, or a tuple with one per output
    (None for an output it does not compute), or numpy arrays where the value is
    known now. Build the node computing output k with ``ctx.output(op, *args,
    output=k, **attrs)``, which names it after the ONNX output, and any other node
    with ``ctx.op(op, *args, **attrs)``; both return an array instead of a node when
    every argument is an array. ``ctx.static(x)`` is a value the op needs now (a
    shape, axes), ``ctx.shape(x)`` and ``ctx.rank(x)`` what is known of a shape.

A converter signals what it cannot convert by raising (ValueError with a sentence
is best); :func:`from_onnx` adds which ONNX node and op it was. A converter may carry
an attribute ``constant_inputs``, the input positions that hold fixed statistics
rather than weights (BatchNormalization's running mean and variance, ``(3, 4)``): an
initializer used only there becomes a const, as torch keeps such tensors as buffers.

>>> import numpy as np
>>> import dagprop as dp
>>> def convert_softplus(ctx, x):           # log(1 + exp(x)); ONNX Softplus has no attributes
...     return ctx.output("log", ctx.op("add", ctx.op("exp", x), 1.0))
>>> class Softplus:
...     @dp.hookimpl
...     def dagprop_onnx_converters(self):
...         return {"Softplus": convert_softplus}
>>> import onnx.helper as oh
>>> node = oh.make_node("Softplus", ["x"], ["y"])
>>> model = oh.make_model(oh.make_graph([node], "softplus", [oh.make_tensor_value_info("x", 1, [2])],
...                                    [oh.make_tensor_value_info("y", 1, [2])]))
>>> g = dp.from_onnx(model, inputs={"x": [0.0, 1.0]}, plugins=[Softplus()])
>>> g.forward(); g["y"].value.round(4)
array([0.6931, 1.3133])
"""

from __future__ import annotations

import inspect
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from .onnx_context import Context
from .onnx_model import (DEFAULT_DOMAINS, declared_shapes, default_opset, example_inputs, import_onnx, is_float_type,
                         read_model, tiny_model_bytes)
from .table import converter_table
from ..errors import DagpropError, LoadError, UnsupportedOpsError
from ..graph import Graph, Node

if TYPE_CHECKING:
    import onnx

    from ..registry import Registry

__all__ = ["from_onnx", "read_model", "example_inputs", "converters", "Context", "tiny_model_bytes"]

Converter = Callable[..., Any]


# -- converters ------------------------------------------------------------------------------------


def _op_key(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}:{node.op_type}"


def converters(registry: Registry | None = None) -> dict[str, Converter]:
    """``{ONNX op type: converter}`` from every plugin implementing ``dagprop_onnx_converters``.

    Parameters
    ----------
    registry : Registry, optional
        Whose plugins to ask (default: the one ``dagprop.Graph()`` uses).

    Raises
    ------
    PluginError
        When a plugin's hook fails or returns something other than ``{str: callable}``,
        or two plugins convert the same op type (naming both).

    Examples
    --------
    >>> table = converters()
    >>> table["Gemm"].__module__
    'dagprop_plugins.onnx_converters'
    """
    return converter_table(registry, "dagprop_onnx_converters", "ONNX op types such as 'Gemm'")


def _unsupported_message(counts: Counter[str]) -> str:
    listed = ", ".join(f"{op} ({n})" for op, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    noun = "op type" if len(counts) == 1 else "op types"
    return (f"the ONNX model uses {len(counts)} {noun} dagprop has no converter for: {listed}. Add one through "
            f"the dagprop_onnx_converters hook: a plugin with @dp.hookimpl def dagprop_onnx_converters(): return "
            f"{{'{sorted(counts)[0]}': convert}} (see dagprop.importers.onnx for what convert receives), passed "
            f"as from_onnx(..., plugins=[plugin]) or registered with dp.register_plugin(plugin)")


# -- the conversion ------------------------------------------------------------------------------


class _Importer:
    """One conversion: the graph being built and what each ONNX tensor name stands for."""

    def __init__(self, model: onnx.ModelProto, graph: Graph, table: Mapping[str, Converter]) -> None:
        self.model = model
        self.graph = graph
        self.table = table
        self.opset = default_opset(model)
        self.values: dict[str, Any] = {}           # ONNX tensor name -> Node or numpy array
        self.tensor_of: dict[str, str] = {}         # dagprop node name -> the ONNX tensor it computes
        self.static_names: dict[int, str] = {}      # id(array) -> its ONNX tensor name, to name consts
        self.consts: dict[int, Node] = {}
        self.shapes = declared_shapes(model)
        self.reserved = {name for node in model.graph.node for name in (*node.input, *node.output)}
        self.reserved |= {v.name for v in (*model.graph.input, *model.graph.output, *model.graph.initializer)}

    def fresh_name(self, stem: str) -> str:
        name, k = stem, 1
        while name in self.graph or name in self.reserved:
            k += 1
            name = f"{stem}_{k}"
        return name

    def declared_shape(self, node: Node) -> tuple[int | None, ...] | None:
        tensor = self.tensor_of.get(node.name)
        return None if tensor is None else self.shapes.get(tensor)

    def const(self, array: np.ndarray) -> Node:
        known = self.consts.get(id(array))
        if known is not None:
            return known
        tensor = self.static_names.get(id(array))
        name = None if tensor is None else tensor if tensor not in self.graph else self.fresh_name(tensor)
        node = self.graph.const(array.astype(np.float64), name=name)
        if tensor is not None:
            self.consts[id(array)] = node
            self.tensor_of[node.name] = tensor
        return node

    def set_value(self, tensor: str, value: Any) -> None:
        self.values[tensor] = value
        if isinstance(value, np.ndarray):
            self.static_names.setdefault(id(value), tensor)
        elif isinstance(value, Node):
            self.tensor_of.setdefault(value.name, tensor)

    # -- leaves --

    def add_leaves(self, given: Mapping[str, Any], requires_grad: bool) -> None:
        onnx = import_onnx()
        graph = self.model.graph
        initializers = {init.name: init for init in graph.initializer}
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        declared = [info for info in graph.input if info.name not in initializers]
        names = [info.name for info in declared]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise LoadError(f"inputs= names {', '.join(map(repr, unknown))}, which the model does not take as "
                            f"inputs; its inputs are: {', '.join(names) or 'none'}")
        for info in declared:
            value = None
            if info.name in given:
                value = np.asarray(given[info.name], dtype=np.float64)
                expected = self.shapes.get(info.name)
                if expected is not None and (len(expected) != value.ndim or any(
                        d is not None and d != n for d, n in zip(expected, value.shape))):
                    shown = tuple("?" if d is None else d for d in expected)
                    raise LoadError(f"input {info.name!r} is declared with shape {shown} in the model, but "
                                    f"inputs= gives it shape {value.shape}")
            self.set_value(info.name, self.graph.input(info.name, value, requires_grad=requires_grad))
        fixed = self.fixed_initializers(set(initializers))
        for name, init in initializers.items():
            if name not in used:
                continue
            array = onnx.numpy_helper.to_array(init)
            if not is_float_type(init.data_type):
                self.set_value(name, np.array(array))
            elif name in fixed:
                self.set_value(name, self.graph.const(array.astype(np.float64), name=name))
            else:
                self.set_value(name, self.graph.param(name, array.astype(np.float64)))

    def fixed_initializers(self, initializers: set[str]) -> set[str]:
        """The initializers used only where converters take fixed statistics (``constant_inputs``), not weights."""
        fixed: set[str] = set()
        elsewhere: set[str] = set()
        for node in self.model.graph.node:
            slots = getattr(self.table[_op_key(node)], "constant_inputs", ())
            for k, name in enumerate(node.input):
                if name in initializers:
                    (fixed if k in slots else elsewhere).add(name)
        elsewhere |= {o.name for o in self.model.graph.output}
        return fixed - elsewhere

    # -- nodes --

    def convert(self, node: onnx.NodeProto) -> None:
        onnx = import_onnx()
        key = _op_key(node)
        convert = self.table[key]
        outputs = ", ".join(o for o in node.output if o)
        where = f"ONNX node {node.name!r} ({key}, outputs {outputs})" if node.name else \
            f"ONNX {key} node (outputs {outputs})"
        inputs = [self.values[name] if name else None for name in node.input]
        while inputs and inputs[-1] is None:
            inputs.pop()
        attributes = {a.name: _attribute(onnx, a) for a in node.attribute}
        context = Context(self, node)
        try:
            inspect.signature(convert).bind(context, *inputs, **attributes)
        except TypeError as exc:
            raise LoadError(f"{where}: its converter {_converter_name(convert)} cannot take {len(inputs)} inputs "
                            f"and attributes {sorted(attributes) or 'none'}: {exc}") from None
        scope = _scope_of(node.name)
        try:
            if scope:
                with self.graph.scope(scope):
                    result = convert(context, *inputs, **attributes)
            else:
                result = convert(context, *inputs, **attributes)
        except Exception as exc:
            raise LoadError(f"cannot convert {where}: {_one_line(exc)}") from exc
        results = result if isinstance(result, tuple) else (result,)
        for k, name in enumerate(node.output):
            if not name:
                continue
            value = results[k] if k < len(results) else None
            if value is None:
                if self.needed(name):
                    raise LoadError(f"cannot convert {where}: the model uses its output {k}, {name!r}, which its "
                                    f"converter {_converter_name(convert)} does not compute")
                continue
            if not isinstance(value, (Node, np.ndarray)):
                value = np.asarray(value)
            self.set_value(name, value)

    def needed(self, tensor: str) -> bool:
        graph = self.model.graph
        return any(tensor in node.input for node in graph.node) or any(o.name == tensor for o in graph.output)

    def name_outputs(self) -> None:
        """Make the node of each graph output carry its name (an alias or a known value gets a node of its own)."""
        for info in self.model.graph.output:
            value = self.values[info.name]
            if isinstance(value, Node) and value.name == info.name:
                continue
            if isinstance(value, np.ndarray):
                node = self.const(value) if info.name not in self.graph else self.graph[info.name]
            elif value.shape is not None:
                node = self.graph.op("reshape", value, shape=tuple(value.shape), name=info.name)
            else:
                node = self.graph.op("getitem", value, index=Ellipsis, name=info.name)
            self.set_value(info.name, node)


def _attribute(onnx: Any, attribute: Any) -> Any:
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list):
        return [v.decode("utf-8") if isinstance(v, bytes) else
                onnx.numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v for v in value]
    return value


def _scope_of(node_name: str) -> str:
    """``/encoder/fc1/Gemm`` (a torch export's node name) -> ``encoder/fc1``; other names -> no scope."""
    if not node_name.startswith("/"):
        return ""
    parts = [p for p in node_name.split("/")[1:-1] if p]
    return "/".join(parts)


def _converter_name(convert: Converter) -> str:
    return f"{getattr(convert, '__module__', '?')}.{getattr(convert, '__qualname__', repr(convert))}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (DagpropError, ValueError)) else f"{type(exc).__name__}: {text}"


def from_onnx(model: Any, *, inputs: Mapping[str, Any] | None = None, inputs_require_grad: bool = False,
              plugins: Iterable[Any] | None = None, check: bool = True) -> Graph:
    """An ONNX model as a dagprop graph of the same computation, ready to run forward and backward.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        A ``.onnx`` file, its bytes, or a model (left unchanged).
    inputs : dict, optional
        ``{graph input name: array}``: values for the model's inputs, checked against
        the shapes the file declares. Inputs left out have no value: feed them with
        ``forward(feeds=...)``, or pass ``inputs=example_inputs(model)``.
    inputs_require_grad : bool
        Give the inputs gradients too (``requires_grad=True``), as for a saliency map;
        by default only params get them.
    plugins : iterable, optional
        Extra plugins for the graph: their ops, and their ``dagprop_onnx_converters``
        for op types dagprop does not convert (or does differently: two converters of
        one op type are an error).
    check : bool
        Run ``onnx.checker`` first (default True).

    Returns
    -------
    Graph
        Float initializers are params (running statistics of BatchNormalization
        consts) and graph inputs are inputs, named as in the file; the node computing each graph output is named as that output. Values
        are float64 whatever the file's precision.

    Raises
    ------
    LoadError
        The file is missing, not an ONNX model, fails the checker, or a node cannot be
        converted (the message names the node, its op type and why).
    UnsupportedOpsError
        Some op types have no converter: all of them are listed with their counts,
        with how to add a converter through the ``dagprop_onnx_converters`` hook.

    See Also
    --------
    example_inputs : seeded random values for the inputs, of their declared shapes.
    dagprop.from_torch : a PyTorch module, without a file in between.

    Notes
    -----
    Supported op types (``dagprop_plugins.onnx_converters``): Gemm, MatMul, Add, Sub,
    Mul, Div, Pow, Sqrt, Erf, Exp, Log, Neg, Reciprocal, Relu, Sigmoid, Tanh, Gelu,
    Softmax, LogSoftmax, Conv, MaxPool, AveragePool, GlobalAveragePool,
    BatchNormalization, LayerNormalization, Reshape, Flatten, Transpose, Concat,
    Gather, Unsqueeze, Squeeze, ReduceMean, ReduceSum, Constant, Identity, Dropout,
    Shape and Cast, with the attributes and opset differences described there.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.from_onnx(tiny_model_bytes(), inputs={"x": [[-1.0, 2.0]]}, inputs_require_grad=True)
    >>> [(n.name, n.kind, n.op) for n in g]
    [('x', 'input', None), ('y', 'op', 'relu')]
    >>> L = g["y"].sum()
    >>> g.forward(); g.backward(L)
    >>> g["y"].value, g["x"].grad
    (array([[0., 2.]]), array([[0., 1.]]))
    """
    proto = read_model(model, check=check)
    graph = Graph(plugins=plugins)
    table = converters(graph.registry)
    missing = Counter(_op_key(node) for node in proto.graph.node if _op_key(node) not in table)
    if missing:
        raise UnsupportedOpsError(_unsupported_message(missing), ops=dict(missing))
    importer = _Importer(proto, graph, table)
    importer.add_leaves(inputs or {}, inputs_require_grad)
    for node in proto.graph.node:
        importer.convert(node)
    importer.name_outputs()
    return graph
