"""ONNX models as :func:`dagprop.from_onnx` reads them: :func:`read_model` (read, checked, local
functions inlined, shapes inferred), what a model declares (its opset, the shapes of its
tensors), :func:`example_inputs` for its inputs, and :func:`tiny_model_bytes` for examples.
All three are importable from :mod:`dagprop.importers.onnx`; the ``onnx`` package itself is
imported only when a model is read."""

from __future__ import annotations

import os
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import DagpropError, LoadError

if TYPE_CHECKING:
    import onnx

__all__ = ["DEFAULT_DOMAINS", "declared_shapes", "default_opset", "example_inputs", "import_onnx", "is_float_type",
           "read_model", "tiny_model_bytes"]

DEFAULT_DOMAINS = ("", "ai.onnx")
MAX_ERROR_LINES = 6  # onnx.checker's messages run on; the first lines say what is wrong


def import_onnx() -> Any:
    """The onnx module, or a DagpropError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise DagpropError("reading ONNX models needs the onnx package: pip install 'dagprop[onnx]' "
                           "(or pip install onnx)") from None
    return onnx


def read_model(model: Any, *, check: bool = True) -> onnx.ModelProto:
    """An ONNX model read, checked, with local functions inlined and shapes inferred.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        A ``.onnx`` file (external data next to it is loaded), its bytes, or a model
        (not modified: a checked copy is returned).
    check : bool
        Run ``onnx.checker.check_model`` (default True).

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    LoadError
        When the file is missing, is not an ONNX model, or fails the checker; the
        message names the file and what is wrong.

    Examples
    --------
    >>> m = read_model(tiny_model_bytes())
    >>> [n.op_type for n in m.graph.node]
    ['Relu']
    >>> read_model(b"not a model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: cannot read ONNX model (11 bytes): ...
    """
    onnx = import_onnx()
    where, proto = _describe(model), None
    try:
        if isinstance(model, onnx.ModelProto):
            proto = onnx.ModelProto()
            proto.CopyFrom(model)
        elif isinstance(model, (bytes, bytearray, memoryview)):
            proto = onnx.load_model_from_string(bytes(model))
        elif isinstance(model, (str, os.PathLike)):
            path = FilePath(model)
            if not path.is_file():
                raise LoadError(f"cannot read ONNX model {where}: "
                                f"{'it is not a regular file' if path.exists() else 'no such file'}")
            proto = onnx.load_model(str(path))
        else:
            raise LoadError(f"from_onnx takes a path, the bytes of a model or an onnx.ModelProto, "
                            f"got a {type(model).__name__}")
    except LoadError:
        raise
    except Exception as exc:  # protobuf's DecodeError and the like: whatever parsing raises, the file is bad
        raise LoadError(f"cannot read ONNX model {where}: it is not a valid ONNX protobuf "
                        f"({type(exc).__name__}: {_short(exc)})") from exc
    if not proto.HasField("graph") or not proto.opset_import:
        raise LoadError(f"cannot read ONNX model {where}: it has no "
                        f"{'graph' if not proto.HasField('graph') else 'opset_import'}, so it is not an ONNX model")
    if check:
        try:
            onnx.checker.check_model(proto)
        except (onnx.checker.ValidationError, ValueError) as exc:
            raise LoadError(f"ONNX model {where} fails onnx.checker: {_short(exc)}") from exc
    if proto.functions:
        proto = onnx.inliner.inline_local_functions(proto)
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # shapes only help; a model whose shapes cannot be inferred may still convert
        pass
    return proto


def _describe(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return repr(str(model))
    if isinstance(model, (bytes, bytearray, memoryview)):
        return f"({len(model)} bytes)"
    return "(a ModelProto)"


def _short(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(lines[:MAX_ERROR_LINES])
    return text or type(exc).__name__


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain the model imports (1 if it imports none)."""
    versions = [entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS]
    return versions[0] if versions else 1


def is_float_type(elem_type: int) -> bool:
    """Whether an ONNX element type is a floating-point one."""
    onnx = import_onnx()
    return elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                         onnx.TensorProto.BFLOAT16)


def declared_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """What the file says of each tensor's shape: a size, or None for a symbolic or unknown one."""
    shapes = {}
    graph = model.graph
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if info.type.HasField("tensor_type") and tensor.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def example_inputs(model: Any, *, seed: int = 0, given: Mapping[str, Any] | None = None,
                   unknown_size: int = 1) -> dict[str, np.ndarray]:
    """Seeded random values for the model's inputs, of their declared shapes.

    Float inputs get standard normal values; integer inputs (token ids, indices)
    random integers that are valid indices for every Gather they feed (else 0 or 1);
    boolean inputs 0 or 1. Symbolic or unknown sizes (a batch axis) are
    ``unknown_size``.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed gives the same values.
    given : dict, optional
        Inputs that have values already: left out of the result.
    unknown_size : int
        The size given to axes the file does not fix (default 1).

    Returns
    -------
    dict
        ``{input name: float64 array}`` for every graph input not in ``given``.

    Examples
    --------
    >>> values = example_inputs(tiny_model_bytes(), seed=0)
    >>> {name: value.shape for name, value in values.items()}
    {'x': (1, 2)}
    """
    onnx = import_onnx()
    proto = model if isinstance(model, onnx.ModelProto) else read_model(model)
    rng = np.random.default_rng(seed)
    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    shapes = declared_shapes(proto)
    values = {}
    for info in graph.input:
        if info.name in initializers or info.name in (given or {}):
            continue
        dims = tuple(unknown_size if d is None else d for d in shapes.get(info.name, ()))
        elem_type = info.type.tensor_type.elem_type
        if is_float_type(elem_type):
            values[info.name] = rng.standard_normal(dims)
        else:
            high = 2 if elem_type == onnx.TensorProto.BOOL else _index_bound(proto, info.name, shapes)
            values[info.name] = rng.integers(0, high, size=dims).astype(np.float64)
    return values


def _index_bound(model: onnx.ModelProto, name: str, shapes: Mapping[str, tuple[int | None, ...]]) -> int:
    """The largest n such that 0..n-1 index every Gather that ``name`` feeds as indices (2 if none says)."""
    bounds = []
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            data = shapes.get(node.input[0])
            if data and -len(data) <= axis < len(data) and data[axis]:
                bounds.append(int(data[axis]))  # type: ignore[arg-type]
    return min(bounds) if bounds else 2


def tiny_model_bytes() -> bytes:
    """The bytes of a one-node ONNX model, ``y = relu(x)`` with ``x`` of shape (1, 2), for examples and tests.

    Examples
    --------
    >>> import onnx
    >>> onnx.load_model_from_string(tiny_model_bytes()).graph.node[0].op_type
    'Relu'
    """
    onnx = import_onnx()
    helper = onnx.helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "tiny",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="dagprop")
    model.ir_version = 8  # readable by older onnx and onnxruntime releases too
    return model.SerializeToString()
