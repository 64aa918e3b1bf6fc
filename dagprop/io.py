"""Saving and loading graphs as JSON, in networkx's node-link form.

A file holds the structure, each op node's attributes, and every value, gradient
and edge gradient, so a round trip gives back the same numbers bit for bit
(floats are written with ``repr``, which Python reads back exactly).

Loading never executes code: the file is parsed with :mod:`json`, op attributes
are rebuilt from a small tagged encoding of plain data, and ops are looked up by
name in the registry of installed plugins.

The layout::

    {"format": "dagprop-graph", "version": 2, "loss": "L" or null,
     "seeds": [{"node": "L", "seed": ARRAY}, ...],
     "graph": {"directed": true, "multigraph": true, "graph": {},
               "nodes": [{"id": "x", "kind": "param", "op": null, "attrs": {},
                          "requires_grad": true, "value": ARRAY, "grad": ARRAY or null}, ...],
               "edges": [{"source": "x", "target": "y", "key": 0, "slot": 0, "grad": ARRAY or null}, ...]}}

An ARRAY is ``{"dtype": "float64", "shape": [2, 3], "data": [...]}`` with the
entries in C order; NaN and infinities are written as the strings "nan", "inf"
and "-inf", so the file stays strict JSON. ``seeds`` lists what each backward pass
started from (the run record's seeds); version 1 files, which have none, load
with no seeds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path as FilePath
from typing import Any, Iterable

import networkx as nx
import numpy as np

from .errors import CycleError, DagpropError, GraphError, LoadError, UnknownOpError
from .graph import Graph
from .op import ATTRIBUTE_TYPES_TEXT

__all__ = ["save", "load", "read", "to_data", "from_data", "encode_attr", "decode_attr", "encode_array",
           "decode_array", "FORMAT", "VERSION"]

FORMAT = "dagprop-graph"
VERSION = 2
KINDS = ("input", "param", "const", "op")
_NUMBER_KINDS = "fiub"  # float, signed and unsigned int, bool
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# -- op attributes: a small tagged encoding ----------------------------------------------------


def encode_attr(value: Any, where: str = "attribute") -> Any:
    """An op attribute as JSON data: plain numbers, strings, lists, or ``{"$tag": ...}`` for the rest.

    Handles what index and axis attributes are made of: None, bool, int, float
    (including NaN and infinities), str, list, tuple, dict, slice, Ellipsis,
    numpy scalars and numpy arrays.

    Raises
    ------
    GraphError
        For a value of any other type (a function, an object), naming ``where``.

    Examples
    --------
    >>> encode_attr((slice(None, 2), Ellipsis, None))
    {'$tuple': [{'$slice': [None, 2, None]}, {'$ellipsis': True}, None]}
    >>> encode_attr([0, 2])
    [0, 2]
    >>> encode_attr(float("inf"))
    {'$float': 'inf'}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": _float_text(value)}
    if value is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(value, slice):
        return {"$slice": [encode_attr(value.start, where), encode_attr(value.stop, where),
                           encode_attr(value.step, where)]}
    if isinstance(value, tuple):
        return {"$tuple": [encode_attr(v, where) for v in value]}
    if isinstance(value, list):
        return [encode_attr(v, where) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[encode_attr(k, where), encode_attr(v, where)] for k, v in value.items()]}
    if isinstance(value, np.generic) and value.dtype.kind in _NUMBER_KINDS:
        return {"$scalar": {"dtype": value.dtype.str, "value": encode_attr(value.item(), where)}}
    if isinstance(value, np.ndarray):
        return {"$ndarray": encode_array(value, where)}
    raise GraphError(f"{where} is a {type(value).__name__} ({value!r}), which cannot be saved; op attributes "
                     f"must be {ATTRIBUTE_TYPES_TEXT}")


def decode_attr(data: Any, where: str = "attribute") -> Any:
    """The op attribute that :func:`encode_attr` encoded. Builds plain data only, never runs code.

    Raises
    ------
    LoadError
        For a tag or a structure :func:`encode_attr` never writes.

    Examples
    --------
    >>> decode_attr({"$tuple": [{"$slice": [None, 2, None]}, {"$ellipsis": True}, None]})
    (slice(None, 2, None), Ellipsis, None)
    >>> decode_attr({"$exec": "print('hi')"})
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: attribute: unknown tag '$exec' (known: $dict, $ellipsis, $float, $ndarray, $scalar, $slice, $tuple)
    """
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        return [decode_attr(v, where) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise LoadError(f"{where}: {data!r} is not an encoded attribute (expected a single '$tag' key)")
    (tag, content), = data.items()
    if tag not in _DECODERS:
        raise LoadError(f"{where}: unknown tag {tag!r} (known: {', '.join(sorted(_DECODERS))})")
    try:
        return _DECODERS[tag](content, where)
    except LoadError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise LoadError(f"{where}: malformed {tag} ({exc})") from None


def _decode_float(content: Any, where: str) -> float:
    if content not in _SPECIAL_FLOATS:
        raise LoadError(f"{where}: $float must be 'nan', 'inf' or '-inf', got {content!r}")
    return _SPECIAL_FLOATS[content]


def _decode_slice(content: Any, where: str) -> slice:
    if not isinstance(content, list) or len(content) != 3:
        raise LoadError(f"{where}: $slice must be [start, stop, step], got {content!r}")
    return slice(*(decode_attr(v, where) for v in content))


def _decode_tuple(content: Any, where: str) -> tuple:
    if not isinstance(content, list):
        raise LoadError(f"{where}: $tuple must hold a list, got {content!r}")
    return tuple(decode_attr(v, where) for v in content)


def _decode_dict(content: Any, where: str) -> dict:
    if not isinstance(content, list) or not all(isinstance(p, list) and len(p) == 2 for p in content):
        raise LoadError(f"{where}: $dict must hold [key, value] pairs, got {content!r}")
    return {_hashable(decode_attr(k, where), where): decode_attr(v, where) for k, v in content}


def _hashable(key: Any, where: str) -> Any:
    try:
        hash(key)
    except TypeError:
        raise LoadError(f"{where}: a dict key must be hashable, got {key!r}") from None
    return key


def _decode_scalar(content: Any, where: str) -> np.generic:
    dtype = _number_dtype(content["dtype"], where)
    return dtype.type(decode_attr(content["value"], where))


_DECODERS = {
    "$float": _decode_float,
    "$ellipsis": lambda content, where: Ellipsis,
    "$slice": _decode_slice,
    "$tuple": _decode_tuple,
    "$dict": _decode_dict,
    "$scalar": _decode_scalar,
    "$ndarray": lambda content, where: decode_array(content, where),
}


# -- arrays -------------------------------------------------------------------------------------


def _float_text(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def encode_array(array: Any, where: str = "array") -> dict[str, Any]:
    """An array as ``{"dtype", "shape", "data"}`` with exact numbers (non-finite ones as strings).

    Examples
    --------
    >>> encode_array(np.array([[1.5, float("nan")]]))
    {'dtype': 'float64', 'shape': [1, 2], 'data': [1.5, 'nan']}
    """
    array = np.asarray(array)
    if array.dtype.kind not in _NUMBER_KINDS:
        raise GraphError(f"{where} has dtype {array.dtype}, which cannot be saved (numbers only)")
    data = [x if not isinstance(x, float) or math.isfinite(x) else _float_text(x) for x in array.ravel().tolist()]
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": data}


def _number_dtype(name: Any, where: str) -> np.dtype:
    if not isinstance(name, str):
        raise LoadError(f"{where}: dtype must be a string such as 'float64', got {name!r}")
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise LoadError(f"{where}: unknown dtype {name!r}") from None
    if dtype.kind not in _NUMBER_KINDS:
        raise LoadError(f"{where}: dtype {name!r} is not a number type")
    return dtype


def decode_array(data: Any, where: str = "array") -> np.ndarray:
    """The array that :func:`encode_array` encoded, checked field by field.

    Examples
    --------
    >>> decode_array({"dtype": "float64", "shape": [2], "data": [1.5, "-inf"]})
    array([ 1.5, -inf])
    >>> decode_array({"dtype": "float64", "shape": [3], "data": [1.5]})
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: array: shape [3] needs 3 entries, the file has 1
    """
    if not isinstance(data, dict):
        raise LoadError(f"{where}: expected an array object with dtype, shape and data, got {_short(data)}")
    for key in ("dtype", "shape", "data"):
        if key not in data:
            raise LoadError(f"{where}: missing field {key!r}")
    dtype = _number_dtype(data["dtype"], where)
    shape = data["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape):
        raise LoadError(f"{where}: shape must be a list of non-negative integers, got {_short(shape)}")
    entries = data["data"]
    if not isinstance(entries, list):
        raise LoadError(f"{where}: data must be a list of numbers, got {_short(entries)}")
    size = math.prod(shape)
    if len(entries) != size:
        raise LoadError(f"{where}: shape {shape} needs {size} entries, the file has {len(entries)}")
    numbers = []
    for entry in entries:
        if isinstance(entry, str) and entry in _SPECIAL_FLOATS:
            numbers.append(_SPECIAL_FLOATS[entry])
        elif isinstance(entry, (int, float)):
            numbers.append(entry)
        else:
            raise LoadError(f"{where}: {entry!r} is not a number")
    return np.array(numbers, dtype=dtype).reshape(shape)


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


# -- graphs ---------------------------------------------------------------------------------------


def to_data(graph: Graph, loss: Any = None) -> dict[str, Any]:
    """``graph`` as JSON-ready data (see the module docstring for the layout).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> y = g.op("mul", g.param("x", 2.0), 3.0, name="y")
    >>> data = to_data(g, loss=y)
    >>> [n["id"] for n in data["graph"]["nodes"]], data["loss"]
    (['x', 'const_1', 'y'], 'y')
    """
    loss_name = None if loss is None else graph.node(loss).name
    run = graph.run
    structure = nx.MultiDiGraph()
    for node in graph:
        where = f"node {node.name!r}"
        structure.add_node(
            node.name, kind=node.kind, op=node.op,
            attrs={key: encode_attr(value, f"attribute {key!r} of {where}") for key, value in node.attrs.items()},
            requires_grad=bool(node.requires_grad),
            value=None if node.value is None else encode_array(node.value, f"the value of {where}"),
            grad=None if node.grad is None else encode_array(node.grad, f"the gradient of {where}"),
        )
    for node in graph:
        for slot, source in enumerate(node.inputs):
            grad = run.slot_grad(node, slot)
            structure.add_edge(source.name, node.name, slot=slot,
                               grad=None if grad is None else encode_array(grad, f"edge {source.name}->{node.name}"))
    seeds = [{"node": node.name, "seed": encode_array(np.asarray(seed), f"the seed at {node.name!r}")}
             for node, seed in run.seeds]
    return {"format": FORMAT, "version": VERSION, "loss": loss_name, "seeds": seeds,
            "graph": nx.node_link_data(structure, edges="edges")}


def save(graph: Graph, path: str | FilePath, *, loss: Any = None) -> FilePath:
    """Write ``graph`` to a JSON file: structure, op attributes, values, gradients and edge gradients.

    Parameters
    ----------
    graph : Graph
    path : str or pathlib.Path
    loss : Node or str, optional
        Recorded in the file, so ``dagprop render`` knows what to differentiate.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    GraphError
        When an op attribute is of a type that cannot be saved.

    Examples
    --------
    >>> import os, tempfile
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", [1.0, 2.0])
    >>> L = (x * x).sum()
    >>> g.forward(); g.backward(L)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = dp.save(g, os.path.join(tmp, "g.json"), loss=L)
    ...     h = dp.load(path)
    >>> h["x"].grad
    array([2., 4.])
    """
    text = json.dumps(to_data(graph, loss), indent=1, allow_nan=False)
    path = FilePath(path)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load(path: str | FilePath, *, plugins: Iterable[Any] | None = None) -> Graph:
    """Read a graph written by :func:`save`, with its values, gradients and edge gradients.

    Never executes code from the file. :func:`read` also returns the loss name
    recorded by ``save(..., loss=)``.

    Parameters
    ----------
    path : str or pathlib.Path
    plugins : iterable, optional
        Extra plugins providing ops the file uses (as for :class:`Graph`).

    Returns
    -------
    Graph

    Raises
    ------
    LoadError
        The file cannot be read, is not JSON or not a dagprop graph, or a field is
        missing or malformed; the message names the node or edge.
    UnknownOpError
        The file uses an op that no installed plugin provides.
    CycleError
        The file's edges form a cycle.

    Examples
    --------
    >>> import dagprop as dp
    >>> dp.load("no/such/file.json")
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: cannot read 'no/such/file.json': No such file or directory
    """
    return read(path, plugins=plugins)[0]


def read(path: str | FilePath, *, plugins: Iterable[Any] | None = None) -> tuple[Graph, str | None]:
    """Like :func:`load`, but also return the name of the loss recorded in the file (or None).

    Examples
    --------
    >>> import os, tempfile
    >>> import dagprop as dp
    >>> g = dp.Graph(); L = g.op("sum", g.param("x", [1.0, 2.0]), name="L")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     graph, loss = read(dp.save(g, os.path.join(tmp, "g.json"), loss="L"))
    >>> loss
    'L'
    """
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LoadError(f"{str(path)!r} is not a text file (not UTF-8), so not a saved dagprop graph") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
                        ) from None
    try:
        graph = from_data(data, plugins=plugins)
    except DagpropError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return graph, data.get("loss")


def from_data(data: Any, *, plugins: Iterable[Any] | None = None) -> Graph:
    """The graph that :func:`to_data` described; checks every field (see :func:`load`).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); y = g.op("mul", g.param("x", 2.0), 3.0, name="y")
    >>> h = from_data(to_data(g))
    >>> [(n.name, n.kind, n.op) for n in h]
    [('x', 'param', None), ('const_1', 'const', None), ('y', 'op', 'mul')]
    """
    if not isinstance(data, dict):
        raise LoadError(f"not a dagprop graph: the file holds a JSON {type(data).__name__}, not an object")
    if data.get("format") != FORMAT:
        raise LoadError(f"not a dagprop graph: 'format' is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise LoadError("missing field 'version' (an integer)")
    if version > VERSION:
        raise LoadError(f"the file has format version {version}, newer than this dagprop reads ({VERSION}); "
                        f"upgrade dagprop")
    structure = _field(data, "graph", dict, "the file")
    nodes = _field(structure, "nodes", list, "'graph'")
    edges = _field(structure, "edges", list, "'graph'")
    graph = Graph(plugins=plugins)

    records: dict[str, dict] = {}
    for position, record in enumerate(nodes):
        where = f"node #{position}"
        if not isinstance(record, dict):
            raise LoadError(f"{where}: expected an object, got {_short(record)}")
        name = _field(record, "id", str, where)
        where = f"node {name!r}"
        if name in records:
            raise LoadError(f"{where} appears twice; node names must be unique")
        kind = _field(record, "kind", str, where)
        if kind not in KINDS:
            raise LoadError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        records[name] = record

    inputs: dict[str, dict[int, str]] = {name: {} for name in records}
    edge_grads: dict[tuple[str, int], Any] = {}
    for position, edge in enumerate(edges):
        where = f"edge #{position}"
        if not isinstance(edge, dict):
            raise LoadError(f"{where}: expected an object, got {_short(edge)}")
        source = _field(edge, "source", str, where)
        target = _field(edge, "target", str, where)
        where = f"edge {source!r} -> {target!r}"
        slot = _field(edge, "slot", int, where)
        for end in (source, target):
            if end not in records:
                raise LoadError(f"{where}: there is no node {end!r}")
        if slot in inputs[target]:
            raise LoadError(f"{where}: node {target!r} has two inputs in argument slot {slot}")
        inputs[target][slot] = source
        if edge.get("grad") is not None:
            edge_grads[(target, slot)] = _read_only(decode_array(edge["grad"], f"the gradient of {where}"))

    order = _topological(records, inputs)
    for name in order:
        _add_node(graph, name, records[name], inputs[name])
    for (target, slot), grad in edge_grads.items():
        consumer = graph[target]
        source = consumer.inputs[slot]
        if source.shape is not None and grad.shape != source.shape:
            raise LoadError(f"the gradient of edge {source.name!r} -> {target!r} has shape {grad.shape}, but "
                            f"{source.name!r} has shape {source.shape}")
        graph.run.edge_grads[(consumer.index, slot)] = grad
    graph.run.seeds = tuple(_seeds(graph, data.get("seeds", [])))
    loss = data.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in graph):
        raise LoadError(f"'loss' names {_short(loss)}, which is not a node of the graph")
    return graph


def _seeds(graph: Graph, entries: Any) -> list[tuple[Any, np.ndarray]]:
    if not isinstance(entries, list):
        raise LoadError(f"field 'seeds' must be a JSON array, got {_short(entries)}")
    seeds = []
    for position, entry in enumerate(entries):
        where = f"seed #{position}"
        if not isinstance(entry, dict):
            raise LoadError(f"{where}: expected an object, got {_short(entry)}")
        name = _field(entry, "node", str, where)
        if name not in graph:
            raise LoadError(f"{where} names {_short(name)}, which is not a node of the graph")
        node = graph[name]
        seed = _read_only(decode_array(_field(entry, "seed", dict, where), f"the seed at {name!r}"))
        if node.shape is not None and seed.shape != node.shape:
            raise LoadError(f"the seed at {name!r} has shape {seed.shape}, but the node has shape {node.shape}")
        seeds.append((node, seed))
    return seeds


def _field(record: dict, key: str, kind: type, where: str) -> Any:
    if key not in record:
        raise LoadError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LoadError(f"{where}: field {key!r} must be a JSON {_JSON_NAMES[kind]}, got {_short(value)}")
    return value


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "integer"}


def _topological(records: dict[str, dict], inputs: dict[str, dict[int, str]]) -> list[str]:
    """Node names with every input before its consumers, in file order where free; CycleError naming a cycle."""
    structure = nx.DiGraph()
    structure.add_nodes_from(records)
    for target, slots in inputs.items():
        for source in slots.values():
            structure.add_edge(source, target)
    position = {name: k for k, name in enumerate(records)}
    try:
        return list(nx.lexicographical_topological_sort(structure, key=position.__getitem__))
    except nx.NetworkXUnfeasible:
        cycle = [edge[0] for edge in nx.find_cycle(structure)]
        raise CycleError(f"the graph in the file has a cycle: {' -> '.join(cycle + cycle[:1])}") from None


def _add_node(graph: Graph, name: str, record: dict, slots: dict[int, str]) -> None:
    where = f"node {name!r}"
    kind = record["kind"]
    value = None if record.get("value") is None else decode_array(record["value"], f"the value of {where}")
    grad = None if record.get("grad") is None else decode_array(record["grad"], f"the gradient of {where}")
    if sorted(slots) != list(range(len(slots))):
        raise LoadError(f"{where}: its inputs fill argument slots {sorted(slots)}; expected 0 to {len(slots) - 1}")
    if kind == "op":
        op_name = _field(record, "op", str, where)
        if op_name not in graph.registry:
            raise UnknownOpError(f"{where} uses op {op_name!r}, which no installed plugin provides; install a "
                                 f"plugin that provides {op_name!r} (or pass it with plugins=), then load again "
                                 f"(dagprop ops lists the ops available now)")
        attrs = _field(record, "attrs", dict, where) if "attrs" in record else {}
        decoded = {key: decode_attr(v, f"attribute {key!r} of {where}") for key, v in attrs.items()}
        args = [graph[slots[k]] for k in range(len(slots))]
        node = graph.op(op_name, *args, name=name, **decoded)
        if value is not None:
            if node.shape is not None and value.shape != node.shape:
                raise LoadError(f"{where}: its saved value has shape {value.shape}, but {op_name} of its inputs "
                                f"has shape {node.shape}")
            graph.run.values[node.index] = value
    else:
        if slots:
            raise LoadError(f"{where} is a {kind} but has inputs ({', '.join(slots.values())})")
        if kind == "param":
            if value is None:
                raise LoadError(f"{where}: a param needs a value (field 'value' is missing or null)")
            node = graph.param(name, value)
        elif kind == "const":
            if value is None:
                raise LoadError(f"{where}: a const needs a value (field 'value' is missing or null)")
            node = graph.const(value, name=name)
        else:
            requires_grad = record.get("requires_grad", False)
            if not isinstance(requires_grad, bool):
                raise LoadError(f"{where}: field 'requires_grad' must be true or false, got {_short(requires_grad)}")
            node = graph.input(name, value, requires_grad=requires_grad)
    if grad is not None:
        if node.shape is not None and grad.shape != node.shape:
            raise LoadError(f"{where}: its saved gradient has shape {grad.shape}, but the node has shape {node.shape}")
        graph.run.grads[node.index] = _read_only(grad)


def _read_only(array: np.ndarray) -> np.ndarray:
    # the engine shares gradient arrays between nodes and edges and never writes to them
    array.flags.writeable = False
    return array
