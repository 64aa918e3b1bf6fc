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
                          "requires_grad": true, "value": ARRAY, "grad": ARRAY or null,
                          "scope": ["layer1", "attention"]}, ...],
               "edges": [{"source": "x", "target": "y", "key": 0, "slot": 0, "grad": ARRAY or null}, ...]}}

An ARRAY is ``{"dtype": "float64", "shape": [2, 3], "data": [...]}`` with the
entries in C order; NaN and infinities are written as the strings "nan", "inf"
and "-inf", so the file stays strict JSON. ``seeds`` lists what each backward pass
started from (the run record's seeds); version 1 files, which have none, load
with no seeds. ``scope`` is the node's :attr:`~dagprop.Node.scope`, outermost first; it is
written only for nodes built in a scope, and a node without it (every node of a file
written before scopes existed) loads outside every scope, so the version stays 2.

Files are untrusted input, so reading is bounded before anything is allocated:
only a regular file is opened (never a FIFO or a device); a file larger than
:data:`MAX_FILE_BYTES_PER_ELEMENT` bytes per allowed element (plus 1 MiB) is refused
unread; and every array in the file, and the graph's nodes together (their saved
values, and the shapes op nodes infer from their inputs, checked before any forward
pass), may hold at most ``max_elements`` numbers (default :data:`MAX_ELEMENTS`).
Whatever is wrong with a file, loading raises a :class:`~dagprop.LoadError` (or
another :class:`~dagprop.DagpropError`) naming the file and the node or field.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path as FilePath
from typing import Any, Iterable

import networkx as nx
import numpy as np

from .encoding import (FILE_SLACK, MAX_ELEMENTS, MAX_FILE_BYTES_PER_ELEMENT, RESERVED_ATTRS, check_max_elements,
                       decode_array, decode_attr, encode_array, encode_attr, limit_hint, short)
from .errors import CycleError, DagpropError, LoadError, UnknownOpError
from .graph import Graph

__all__ = ["save", "load", "read", "to_data", "from_data", "encode_attr", "decode_attr", "encode_array",
           "decode_array", "FORMAT", "VERSION", "MAX_ELEMENTS", "MAX_FILE_BYTES_PER_ELEMENT"]

FORMAT = "dagprop-graph"
VERSION = 2
KINDS = ("input", "param", "const", "op")
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
            **({"scope": list(node.scope)} if node.scope else {}),
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


def load(path: str | FilePath, *, plugins: Iterable[Any] | None = None,
         max_elements: int | None = MAX_ELEMENTS) -> Graph:
    """Read a graph written by :func:`save`, with its values, gradients and edge gradients.

    Never executes code from the file, and treats it as untrusted: only a regular
    file is opened, and sizes are checked before anything is allocated (see the
    module docstring). :func:`read` also returns the loss name recorded by
    ``save(..., loss=)``.

    Parameters
    ----------
    path : str or pathlib.Path
    plugins : iterable, optional
        Extra plugins providing ops the file uses (as for :class:`Graph`).
    max_elements : int or None
        The most numbers any one array of the file, and the graph's nodes together,
        may hold (default :data:`MAX_ELEMENTS`, a million); the file may have at most
        :data:`MAX_FILE_BYTES_PER_ELEMENT` bytes per element plus 1 MiB. The nodes
        count with their saved values or, for op nodes, the shapes their ops infer,
        so a small file cannot ask for a huge forward pass. None: no limit.

    Returns
    -------
    Graph

    Raises
    ------
    LoadError
        The file is not a regular file, cannot be read, is too large, is not JSON or
        not a dagprop graph, or a field is missing, malformed or beyond the limits;
        the message names the file and the node, edge or field.
    UnknownOpError
        The file uses an op that no installed plugin provides.
    CycleError
        The file's edges form a cycle.

    Examples
    --------
    >>> import os, tempfile
    >>> import dagprop as dp
    >>> dp.load("no/such/file.json")
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: cannot read 'no/such/file.json': No such file or directory
    >>> g = dp.Graph(); _ = g.op("sum", g.param("w", [[1.0, 2.0], [3.0, 4.0]]), name="L")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = dp.save(g, os.path.join(tmp, "g.json"))
    ...     dp.load(path, max_elements=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: ...g.json: node 'L' brings the graph's nodes to 5 elements (sum of its inputs has shape (), 1 elements), more than max_elements=4; ...
    """
    return read(path, plugins=plugins, max_elements=max_elements)[0]


def read(path: str | FilePath, *, plugins: Iterable[Any] | None = None,
         max_elements: int | None = MAX_ELEMENTS) -> tuple[Graph, str | None]:
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
    max_elements = check_max_elements(max_elements)
    text = _read_text(str(path), max_elements)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
                        ) from None
    except RecursionError:
        raise LoadError(f"{str(path)!r} nests JSON arrays or objects too deeply to be a saved dagprop graph"
                        ) from None
    except ValueError as exc:  # an integer too long to convert, say
        raise LoadError(f"{str(path)!r} is not a readable JSON file: {exc}") from None
    try:
        graph = from_data(data, plugins=plugins, max_elements=max_elements)
    except DagpropError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return graph, data.get("loss")


def _read_text(name: str, max_elements: int | None) -> str:
    """The file's text, read only if it is a regular file no larger than the limit allows."""
    try:
        info = os.stat(name)  # follows symbolic links: what is checked is what would be read
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot read {name!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(f"cannot read {name!r}: it is {_file_kind(info.st_mode)}, not a regular file, so not a "
                        f"saved dagprop graph")
    most = None if max_elements is None else MAX_FILE_BYTES_PER_ELEMENT * max_elements + FILE_SLACK
    if most is not None and info.st_size > most:
        raise LoadError(f"{name!r} has {info.st_size:,} bytes, more than a graph within max_elements="
                        f"{max_elements:,} can take ({most:,} bytes); pass a larger max_elements= to dagprop.load "
                        f"(--max-elements on the command line) if you trust the file")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it must not wait
        descriptor = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise LoadError(f"cannot read {name!r}: {exc.strerror or exc}") from None
    with os.fdopen(descriptor, "rb") as file:
        opened = os.fstat(file.fileno())
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise LoadError(f"cannot read {name!r}: it changed while being opened")
        try:
            raw = file.read() if most is None else file.read(most + 1)
        except OSError as exc:
            raise LoadError(f"cannot read {name!r}: {exc.strerror or exc}") from None
    if most is not None and len(raw) > most:
        raise LoadError(f"{name!r} grew past {most:,} bytes while being read")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LoadError(f"{name!r} is not a text file (not UTF-8), so not a saved dagprop graph") from None


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((text for test, text in kinds if test(mode)), "not a regular file")


class _Budget:
    """How many elements the graph's nodes may still take."""

    def __init__(self, max_elements: int | None) -> None:
        self.max_elements = max_elements
        self.used = 0

    def take(self, where: str, shape: tuple[int, ...] | None, what: str) -> None:
        if shape is None:
            return  # an op without a shape rule, or an input fed later: counted when known
        size = math.prod(shape)
        self.used += size
        if self.max_elements is not None and self.used > self.max_elements:
            raise LoadError(f"{where} brings the graph's nodes to {self.used:,} elements ({what} {tuple(shape)}, "
                            f"{size:,} elements), more than {limit_hint(self.max_elements)}")


def from_data(data: Any, *, plugins: Iterable[Any] | None = None, max_elements: int | None = MAX_ELEMENTS) -> Graph:
    """The graph that :func:`to_data` described; checks every field and size (see :func:`load`).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); y = g.op("mul", g.param("x", 2.0), 3.0, name="y")
    >>> h = from_data(to_data(g))
    >>> [(n.name, n.kind, n.op) for n in h]
    [('x', 'param', None), ('const_1', 'const', None), ('y', 'op', 'mul')]
    """
    max_elements = check_max_elements(max_elements)
    if not isinstance(data, dict):
        raise LoadError(f"not a dagprop graph: the file holds a JSON {type(data).__name__}, not an object")
    if data.get("format") != FORMAT:
        raise LoadError(f"not a dagprop graph: 'format' is {short(data.get('format'))}, expected {FORMAT!r}")
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
            raise LoadError(f"{where}: expected an object, got {short(record)}")
        name = _field(record, "id", str, where)
        where = f"node {short(name)}"
        if name in records:
            raise LoadError(f"{where} appears twice; node names must be unique")
        kind = _field(record, "kind", str, where)
        if kind not in KINDS:
            raise LoadError(f"{where}: unknown kind {short(kind)} (expected one of {', '.join(KINDS)})")
        records[name] = record

    inputs: dict[str, dict[int, str]] = {name: {} for name in records}
    edge_grads: dict[tuple[str, int], Any] = {}
    for position, edge in enumerate(edges):
        where = f"edge #{position}"
        if not isinstance(edge, dict):
            raise LoadError(f"{where}: expected an object, got {short(edge)}")
        source = _field(edge, "source", str, where)
        target = _field(edge, "target", str, where)
        where = f"edge {short(source)} -> {short(target)}"
        slot = _field(edge, "slot", int, where)
        for end in (source, target):
            if end not in records:
                raise LoadError(f"{where}: there is no node {short(end)}")
        if slot in inputs[target]:
            raise LoadError(f"{where}: node {short(target)} has two inputs in argument slot {slot}")
        inputs[target][slot] = source
        if edge.get("grad") is not None:
            edge_grads[(target, slot)] = _read_only(decode_array(edge["grad"], f"the gradient of {where}",
                                                                 max_elements=max_elements))

    order = _topological(records, inputs)
    budget = _Budget(max_elements)
    for name in order:
        try:
            _add_node(graph, name, records[name], inputs[name], budget)
        except DagpropError:
            raise
        except (TypeError, ValueError, OverflowError, KeyError, IndexError, RecursionError, MemoryError) as exc:
            # an op's own checks met a value no file written by save() holds
            raise LoadError(f"node {short(name)} cannot be rebuilt from the file: {type(exc).__name__}: "
                            f"{short(str(exc))}") from None
    for (target, slot), grad in edge_grads.items():
        consumer = graph[target]
        source = consumer.inputs[slot]
        if source.shape is not None and grad.shape != source.shape:
            raise LoadError(f"the gradient of edge {short(source.name)} -> {short(target)} has shape {grad.shape}, "
                            f"but {short(source.name)} has shape {source.shape}")
        graph.run.edge_grads[(consumer.index, slot)] = grad
    graph.run.seeds = tuple(_seeds(graph, data.get("seeds", []), max_elements))
    loss = data.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in graph):
        raise LoadError(f"'loss' names {short(loss)}, which is not a node of the graph")
    return graph


def _seeds(graph: Graph, entries: Any, max_elements: int | None) -> list[tuple[Any, np.ndarray]]:
    if not isinstance(entries, list):
        raise LoadError(f"field 'seeds' must be a JSON array, got {short(entries)}")
    seeds = []
    for position, entry in enumerate(entries):
        where = f"seed #{position}"
        if not isinstance(entry, dict):
            raise LoadError(f"{where}: expected an object, got {short(entry)}")
        name = _field(entry, "node", str, where)
        if name not in graph:
            raise LoadError(f"{where} names {short(name)}, which is not a node of the graph")
        node = graph[name]
        seed = _read_only(decode_array(_field(entry, "seed", dict, where), f"the seed at {short(name)}",
                                       max_elements=max_elements))
        if node.shape is not None and seed.shape != node.shape:
            raise LoadError(f"the seed at {short(name)} has shape {seed.shape}, but the node has shape {node.shape}")
        seeds.append((node, seed))
    return seeds


def _field(record: dict, key: str, kind: type, where: str) -> Any:
    if key not in record:
        raise LoadError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LoadError(f"{where}: field {key!r} must be a JSON {_JSON_NAMES[kind]}, got {short(value)}")
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


def _add_node(graph: Graph, name: str, record: dict, slots: dict[int, str], budget: _Budget) -> None:
    where = f"node {short(name)}"
    scope = _scope_field(record, where)
    if scope:
        with graph.scope("/".join(scope)):
            _add_scoped_node(graph, name, record, slots, budget, where)
    else:
        _add_scoped_node(graph, name, record, slots, budget, where)


def _scope_field(record: dict, where: str) -> list[str]:
    scope = record.get("scope", [])
    if not isinstance(scope, list) or not all(isinstance(part, str) and part and "/" not in part for part in scope):
        raise LoadError(f"{where}: field 'scope' must be a list of scope names (non-empty strings without '/'), "
                        f"got {short(scope)}")
    return scope


def _add_scoped_node(graph: Graph, name: str, record: dict, slots: dict[int, str], budget: _Budget,
                     where: str) -> None:
    kind = record["kind"]
    value = _array_field(record, "value", f"the value of {where}", budget.max_elements)
    grad = _array_field(record, "grad", f"the gradient of {where}", budget.max_elements)
    if sorted(slots) != list(range(len(slots))):
        raise LoadError(f"{where}: its inputs fill argument slots {sorted(slots)}; expected 0 to {len(slots) - 1}")
    if kind == "op":
        op_name = _field(record, "op", str, where)
        if op_name not in graph.registry:
            raise UnknownOpError(f"{where} uses op {short(op_name)}, which no installed plugin provides; install a "
                                 f"plugin that provides it (or pass it with plugins=), then load again "
                                 f"(dagprop ops lists the ops available now)")
        attrs = _field(record, "attrs", dict, where) if "attrs" in record else {}
        for key in RESERVED_ATTRS:
            if key in attrs:
                raise LoadError(f"{where}: attribute {key!r} is a parameter of Graph.op itself, so no op takes it "
                                f"as an attribute")
        decoded = {key: decode_attr(v, f"attribute {short(key)} of {where}", max_elements=budget.max_elements)
                   for key, v in attrs.items()}
        args = [graph[slots[k]] for k in range(len(slots))]
        node = graph.op(op_name, *args, name=name, **decoded)
        budget.take(where, node.shape, f"{op_name} of its inputs has shape")
        if value is not None:
            if node.shape is not None and value.shape != node.shape:
                raise LoadError(f"{where}: its saved value has shape {value.shape}, but {op_name} of its inputs "
                                f"has shape {node.shape}")
            if node.shape is None:
                budget.take(where, value.shape, "its saved value has shape")
            graph.run.values[node.index] = value
    else:
        if slots:
            raise LoadError(f"{where} is a {kind} but has inputs ({', '.join(map(short, slots.values()))})")
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
                raise LoadError(f"{where}: field 'requires_grad' must be true or false, got {short(requires_grad)}")
            node = graph.input(name, value, requires_grad=requires_grad)
        budget.take(where, node.shape, "its saved value has shape")
    if grad is not None:
        if node.shape is not None and grad.shape != node.shape:
            raise LoadError(f"{where}: its saved gradient has shape {grad.shape}, but the node has shape {node.shape}")
        graph.run.grads[node.index] = _read_only(grad)


def _array_field(record: dict, key: str, where: str, max_elements: int | None) -> np.ndarray | None:
    data = record.get(key)
    return None if data is None else decode_array(data, where, max_elements=max_elements)


def _read_only(array: np.ndarray) -> np.ndarray:
    # the engine shares gradient arrays between nodes and edges and never writes to them
    array.flags.writeable = False
    return array
