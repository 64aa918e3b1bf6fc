"""Saving and loading graphs as JSON: a columnar node table and one block of numbers.

A file holds the structure, each op node's attributes, and every value, gradient,
edge gradient and seed, so a round trip gives back the same numbers bit for bit.

Loading never executes code: the file is parsed with :mod:`json`, op attributes
are rebuilt from a small tagged encoding of plain data, numbers are decoded from
base64 into arrays of a checked dtype and size, and ops are looked up by name in the
registry of installed plugins.

The layout (format version 4), one column or list per line::

    {"format": "dagprop-graph", "version": 4, "loss": "L" or null,
     "nodes": {"name": ["x", "const_1", "y"], "kind": ["param", "const", "op"], "op": [null, null, "mul"],
               "inputs": [[], [], [0, 1]], "attrs": [{}, {}, {}], "requires_grad": [true, false, true],
               "scope": ["", "", "layer1"], "value": [0, 1, 2], "grad": [3, null, 4]},
     "edge_grads": {"node": [2, 2], "slot": [0, 1], "grad": [5, 3]},
     "seeds": {"node": [2], "seed": [4]},
     "arrays": {"dtype": ["float64", "float64"], "shape": [[], [2, 3]], "count": [2, 4]},
     "data": {"float64": "AAAAAAAA4D8AAAAAAAAIQA..."}}

``nodes`` has one entry per node in each list, in the graph's order (inputs first);
a node's ``inputs`` are the positions of its arguments, slot by slot. ``scope`` is the
node's :attr:`~dagprop.Node.scope` joined with "/" ("" outside every scope). ``value``,
``grad``, ``edge_grads`` (the gradient that flowed along argument ``slot`` of ``node``)
and ``seeds`` (what each backward pass started from) hold array ids, numbered from 0.
``arrays`` describes them as runs: ``count[r]`` arrays of dtype ``dtype[r]`` and shape
``shape[r]``, so array ``k`` belongs to the run whose counts add up past ``k``. Each
dtype's arrays follow one another, in id order and C order, in ``data[dtype]``: the
base64 text of the numbers' little-endian bytes, exact (NaN and infinities included) and
decoded in bulk, where numbers written as decimal text cost a microsecond each to write
and to read (issue 15); everything else in the file stays plain JSON. Every value has an
array of its own; gradients and seeds may share one, as the engine shares them (the
gradient along a node's only argument is that argument's gradient), and share it again
once loaded. Op attributes use :func:`~dagprop.encoding.encode_attr`.

Files of version 3 (an ``arrays`` table with one entry per array, its ``dtype``, ``shape``
and ``offset`` into its dtype's list of numbers, each dtype's numbers a JSON list with
NaN and infinities as the strings "nan", "inf" and "-inf") and of versions 1 and 2
(networkx's node-link form, one object per node and edge, each array as ``{"dtype",
"shape", "data"}``) still load; version 1 has no seeds.

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

import itertools
import json
import math
import operator
import os
import stat
from pathlib import Path as FilePath
from typing import Any, Iterable, TypeVar

import networkx as nx
import numpy as np

from .encoding import (FILE_SLACK, MAX_ELEMENTS, MAX_FILE_BYTES_PER_ELEMENT, RESERVED_ATTRS, ArrayBlock,
                       ArrayBlockWriter, check_max_elements, decode_array, decode_attr, encode_array, encode_attr,
                       limit_hint, positions, short)
from .errors import CycleError, DagpropError, LoadError
from .graph import Graph, Node
from .node_table import KINDS, NodeTable, repeated
from .scheduler import gc_paused

__all__ = ["save", "load", "read", "to_data", "from_data", "encode_attr", "decode_attr", "encode_array",
           "decode_array", "FORMAT", "VERSION", "MAX_ELEMENTS", "MAX_FILE_BYTES_PER_ELEMENT"]

FORMAT = "dagprop-graph"
VERSION = 4

# -- graphs ---------------------------------------------------------------------------------------


def to_data(graph: Graph, loss: Any = None) -> dict[str, Any]:
    """``graph`` as JSON-ready data (see the module docstring for the layout).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> y = g.op("mul", g.param("x", 2.0), 3.0, name="y")
    >>> data = to_data(g, loss=y)
    >>> data["nodes"]["name"], data["nodes"]["inputs"], data["loss"]
    (['x', 'const_1', 'y'], [[], [], [0, 1]], 'y')
    >>> data["nodes"]["value"], data["arrays"], data["data"]
    ([0, 1, None], {'dtype': ['float64'], 'shape': [[]], 'count': [2]}, {'float64': 'AAAAAAAAAEAAAAAAAAAIQA=='})
    """
    loss_name = None if loss is None else graph.node(loss).name
    run = graph.run
    nodes = list(graph)
    block = ArrayBlockWriter()
    # column by column, each in one pass of C-level calls where it can be: a graph may have 10^5 nodes
    names = list(map(_NAME, nodes))
    op_defs = list(map(_OP_DEF, nodes))
    attrs = [{key: encode_attr(value, f"attribute {key!r} of node {name!r}") for key, value in node_attrs.items()}
             if node_attrs else {} for name, node_attrs in zip(names, map(_ATTRS, nodes))]
    joined: dict[tuple[str, ...], str] = {}
    scopes = [joined.get(scope) or joined.setdefault(scope, "/".join(scope)) for scope in map(_SCOPE, nodes)]
    value_ids = block.add(run.values, lambda k: f"the value of node {names[k]!r}")
    # gradients and seeds: an array the engine shares between nodes, edges and seeds is written once
    grad_ids = block.add(run.grads, lambda k: f"the gradient of node {names[k]!r}", shared=True)
    edges = sorted(run.edge_grads.items(), key=_edge_slot)
    edge_ids = block.add([grad for _, grad in edges],
                         lambda k: f"the gradient of edge slot {edges[k][0][1]} of node {names[edges[k][0][0]]!r}",
                         shared=True)
    seed_ids = block.add([seed for _, seed in run.seeds], lambda k: f"the seed at {run.seeds[k][0].name!r}",
                         shared=True)
    return {"format": FORMAT, "version": VERSION, "loss": loss_name,
            "nodes": {"name": names, "kind": list(map(_KIND, nodes)),
                      "op": [None if op_def is None else op_def.name for op_def in op_defs],
                      "inputs": [list(map(_INDEX, node_inputs)) for node_inputs in map(_INPUTS, nodes)],
                      "attrs": attrs, "requires_grad": list(map(bool, map(_REQUIRES_GRAD, nodes))), "scope": scopes,
                      "value": value_ids, "grad": grad_ids},
            "edge_grads": {"node": [key[0] for key, _ in edges], "slot": [key[1] for key, _ in edges],
                           "grad": edge_ids},
            "seeds": {"node": [node.index for node, _ in run.seeds], "seed": seed_ids},
            **block.data()}


_NAME, _KIND, _OP_DEF, _INPUTS, _INDEX, _ATTRS, _SCOPE, _REQUIRES_GRAD = map(operator.attrgetter, (
    "name", "kind", "op_def", "inputs", "index", "attrs", "scope", "requires_grad"))


def _edge_slot(item: tuple) -> Any:
    return item[0]


def _dumps(data: dict[str, Any]) -> str:
    """``data`` as strict JSON with each top-level field, and each list of a table, on a line of its own.

    A line per column keeps the file easy to read and diff, while each line is written
    by json's C encoder (``indent=`` would switch to its pure-Python one, ten times slower).
    """
    lines = []
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, (list, dict, str)) for v in value.values()):
            inner = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in value.items())
            lines.append(f" {json.dumps(key)}: {{\n{inner}\n }}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


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
    with gc_paused():  # the columns hold 10^5 lists and dicts, none garbage: no collection need walk them
        text = _dumps(to_data(graph, loss))
    path = FilePath(path)
    path.write_text(text, encoding="utf-8")
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
    with gc_paused():  # parsing and building make 10^5 lists, dicts and nodes, none garbage
        return _parsed(text, path, plugins, max_elements)


def _parsed(text: str, path: str | FilePath, plugins: Iterable[Any] | None, max_elements: int | None
            ) -> tuple[Graph, str | None]:
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


class _Table:
    """What a file says, whatever its version: one list per field, indexed by the node's place in the file.

    ``inputs`` hold places; ``scopes`` are "/"-joined; ``attrs`` are still encoded;
    arrays are decoded (and checked against ``max_elements``) but not yet checked
    against the nodes' shapes, which only building the graph tells.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.kinds: list[str] = []
        self.ops: list[Any] = []
        self.inputs: list[list[int]] = []
        self.attrs: list[dict] = []
        self.requires_grad: list[Any] = []
        self.scopes: list[str] = []
        self.values: list[np.ndarray | None] = []
        self.grads: list[np.ndarray | None] = []
        self.edge_grads: list[tuple[int, int, np.ndarray]] = []  # (place of the consumer, slot, gradient)
        self.seeds: list[tuple[int, np.ndarray]] = []


def from_data(data: Any, *, plugins: Iterable[Any] | None = None, max_elements: int | None = MAX_ELEMENTS) -> Graph:
    """The graph that :func:`to_data` described; checks every field and size (see :func:`load`).

    Reads every format version (1 to 4).

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
    table = _columns(data, max_elements, version) if version >= 3 else _records(data, max_elements)
    graph = Graph(plugins=plugins)
    _build(graph, table, max_elements)
    loss = data.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in graph):
        raise LoadError(f"'loss' names {short(loss)}, which is not a node of the graph")
    return graph


# -- version 3: a columnar node table and an array block -------------------------------------------


def _columns(data: dict, max_elements: int | None, version: int) -> _Table:
    """The table of a version 3 or 4 file, every column checked in bulk (the slow, precise search only
    on failure)."""
    nodes = _field(data, "nodes", dict, "the file")
    names = _field(nodes, "name", list, "'nodes'")
    count = len(names)
    table = _Table()
    for key in ("kind", "op", "inputs", "attrs", "requires_grad", "scope", "value", "grad"):
        column = _field(nodes, key, list, "'nodes'")
        if len(column) != count:
            raise LoadError(f"'nodes': field {key!r} has {len(column)} entries, but there are {count} names; "
                            f"each field has one entry per node")
    table.names, table.kinds, table.ops, table.inputs, table.attrs = (
        names, nodes["kind"], nodes["op"], nodes["inputs"], nodes["attrs"])
    table.requires_grad, table.scopes = nodes["requires_grad"], nodes["scope"]

    def node(place: int) -> str:
        name = names[place]
        return f"node {short(name)}" if isinstance(name, str) else f"node #{place}"

    def check(column: list, allowed: set[type], key: str, expected: str) -> None:
        if not set(map(type, column)) <= allowed:
            place = next(p for p, x in enumerate(column) if type(x) not in allowed)
            raise LoadError(f"{node(place)}: field {key!r} must be {expected}, got {short(column[place])}")

    check(names, {str}, "name", "a string")
    twice = repeated(names)
    if twice is not None:
        raise LoadError(f"node {short(twice)} appears twice; node names must be unique")
    if "" in names:
        raise LoadError(f"node #{names.index('')}: field 'name' must not be empty")
    check(table.kinds, {str}, "kind", "a string")
    if not set(table.kinds) <= set(KINDS):
        place = next(p for p, kind in enumerate(table.kinds) if kind not in KINDS)
        raise LoadError(f"{node(place)}: unknown kind {short(table.kinds[place])} (expected one of {', '.join(KINDS)})")
    check(table.ops, {str, type(None)}, "op", "a string (or null for a leaf)")
    if table.ops.count(None) > count - table.kinds.count("op"):  # an op node among the nulls
        place = next(p for p, (kind, op) in enumerate(zip(table.kinds, table.ops)) if kind == "op" and op is None)
        raise LoadError(f"{node(place)}: missing field 'op' (an op node needs the name of its op)")
    check(table.inputs, {list}, "inputs", "a list of node positions")
    check(table.attrs, {dict}, "attrs", "a JSON object")
    check(table.requires_grad, {bool}, "requires_grad", "true or false")
    check(table.scopes, {str}, "scope", "a string")
    for key in ("value", "grad"):
        check(nodes[key], {int, type(None)}, key, "an array id or null")
    if not positions(list(itertools.chain.from_iterable(table.inputs)), count):
        place, source = next((place, source) for place, sources in enumerate(table.inputs) for source in sources
                             if not positions([source], count))
        raise LoadError(f"{node(place)}: input {short(source)} is not the position of a node (0 to {count - 1})")

    def owner(k: int) -> str:
        """What refers to array ``k``: searched only to word an error message."""
        for key, what in (("value", "the value of"), ("grad", "the gradient of")):
            if k in nodes[key]:
                return f"{what} {node(nodes[key].index(k))}"
        return "not a node's value or gradient"

    block = ArrayBlock(_field(data, "arrays", dict, "the file"), _field(data, "data", dict, "the file"),
                       max_elements, owner, version=version)
    table.values = block.get(nodes["value"], lambda place: f"the value of {node(place)}")
    # gradients are read-only, as the engine hands them out: it shares them between nodes and edges
    table.grads = block.get(nodes["grad"], lambda place: f"the gradient of {node(place)}", read_only=True)
    edges = _field(data, "edge_grads", dict, "the file")
    consumers, slots, ids = (_field(edges, key, list, "'edge_grads'") for key in ("node", "slot", "grad"))
    if not len(consumers) == len(slots) == len(ids):
        raise LoadError(f"'edge_grads': fields 'node', 'slot' and 'grad' have {len(consumers)}, {len(slots)} and "
                        f"{len(ids)} entries; they must have one each per edge gradient")
    if not positions(consumers, count):
        position = next(p for p, place in enumerate(consumers) if not positions([place], count))
        raise LoadError(f"edge gradient #{position}: {short(consumers[position])} is not the position of a node")
    arities = list(map(len, map(table.inputs.__getitem__, consumers)))
    if not positions(slots, max(arities, default=0)) or not all(map(operator.lt, slots, arities)):
        position = next(p for p, (slot, arity) in enumerate(zip(slots, arities)) if not positions([slot], arity))
        raise LoadError(f"edge gradient #{position}: {node(consumers[position])} has no argument slot "
                        f"{short(slots[position])} (it has {arities[position]} inputs)")
    grads = block.get(ids, lambda p: f"the gradient of slot {slots[p]} of {node(consumers[p])}", read_only=True)
    table.edge_grads = list(zip(consumers, slots, grads))  # type: ignore[arg-type]
    if len(set(zip(consumers, slots))) != len(consumers):
        raise LoadError("'edge_grads' lists an argument slot twice")
    seeds = _field(data, "seeds", dict, "the file")
    places, ids = _field(seeds, "node", list, "'seeds'"), _field(seeds, "seed", list, "'seeds'")
    if len(places) != len(ids):
        raise LoadError(f"'seeds': fields 'node' and 'seed' have {len(places)} and {len(ids)} entries")
    if not positions(places, count):
        position = next(p for p, place in enumerate(places) if not positions([place], count))
        raise LoadError(f"seed #{position}: {short(places[position])} is not the position of a node")
    table.seeds = list(zip(places, block.get(ids, "seed #{}".format, read_only=True)))  # type: ignore[arg-type]
    return table


# -- versions 1 and 2: networkx's node-link form, an object per node and edge ----------------------


def _records(data: dict, max_elements: int | None) -> _Table:
    structure = _field(data, "graph", dict, "the file")
    nodes = _field(structure, "nodes", list, "'graph'")
    edges = _field(structure, "edges", list, "'graph'")
    table = _Table()
    places: dict[str, int] = {}
    for position, record in enumerate(nodes):
        where = f"node #{position}"
        if not isinstance(record, dict):
            raise LoadError(f"{where}: expected an object, got {short(record)}")
        name = _field(record, "id", str, where)
        where = f"node {short(name)}"
        if name in places:
            raise LoadError(f"{where} appears twice; node names must be unique")
        kind = _field(record, "kind", str, where)
        if kind not in KINDS:
            raise LoadError(f"{where}: unknown kind {short(kind)} (expected one of {', '.join(KINDS)})")
        places[name] = position
        table.names.append(name)
        table.kinds.append(kind)
        table.ops.append(_field(record, "op", str, where) if kind == "op" else None)
        table.attrs.append(_field(record, "attrs", dict, where) if kind == "op" and "attrs" in record else {})
        table.requires_grad.append(record.get("requires_grad", False))
        table.scopes.append("/".join(_scope_field(record, where)))
        table.values.append(_array_field(record, "value", f"the value of {where}", max_elements))
        table.grads.append(_read_only(_array_field(record, "grad", f"the gradient of {where}", max_elements)))

    inputs: list[dict[int, int]] = [{} for _ in nodes]
    for position, edge in enumerate(edges):
        where = f"edge #{position}"
        if not isinstance(edge, dict):
            raise LoadError(f"{where}: expected an object, got {short(edge)}")
        source = _field(edge, "source", str, where)
        target = _field(edge, "target", str, where)
        where = f"edge {short(source)} -> {short(target)}"
        slot = _field(edge, "slot", int, where)
        for end in (source, target):
            if end not in places:
                raise LoadError(f"{where}: there is no node {short(end)}")
        slots = inputs[places[target]]
        if slot in slots:
            raise LoadError(f"{where}: node {short(target)} has two inputs in argument slot {slot}")
        slots[slot] = places[source]
        if edge.get("grad") is not None:
            table.edge_grads.append((places[target], slot, _read_only(decode_array(
                edge["grad"], f"the gradient of {where}", max_elements=max_elements))))
    for name, slots in zip(table.names, inputs):
        if sorted(slots) != list(range(len(slots))):
            raise LoadError(f"node {short(name)}: its inputs fill argument slots {sorted(slots)}; expected 0 to "
                            f"{len(slots) - 1}")
        table.inputs.append([slots[k] for k in range(len(slots))])

    entries = data.get("seeds", [])
    if not isinstance(entries, list):
        raise LoadError(f"field 'seeds' must be a JSON array, got {short(entries)}")
    for position, entry in enumerate(entries):
        where = f"seed #{position}"
        if not isinstance(entry, dict):
            raise LoadError(f"{where}: expected an object, got {short(entry)}")
        name = _field(entry, "node", str, where)
        if name not in places:
            raise LoadError(f"{where} names {short(name)}, which is not a node of the graph")
        table.seeds.append((places[name], _read_only(decode_array(
            _field(entry, "seed", dict, where), f"the seed at {short(name)}", max_elements=max_elements))))
    return table


def _scope_field(record: dict, where: str) -> list[str]:
    scope = record.get("scope", [])
    if not isinstance(scope, list) or not all(isinstance(part, str) and part and "/" not in part for part in scope):
        raise LoadError(f"{where}: field 'scope' must be a list of scope names (non-empty strings without '/'), "
                        f"got {short(scope)}")
    return scope


def _array_field(record: dict, key: str, where: str, max_elements: int | None) -> np.ndarray | None:
    data = record.get(key)
    return None if data is None else decode_array(data, where, max_elements=max_elements)


def _field(record: dict, key: str, kind: type, where: str) -> Any:
    if key not in record:
        raise LoadError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LoadError(f"{where}: field {key!r} must be a JSON {_JSON_NAMES[kind]}, got {short(value)}")
    return value


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "integer"}


# -- building the graph, whatever the version --------------------------------------------------------


def _order(table: _Table) -> list[int] | range:
    """Places with every input before its consumers, in file order where free; CycleError naming a cycle.

    A file that :func:`save` wrote is in order already, which one pass confirms.
    """
    inputs = table.inputs
    counts = np.fromiter(map(len, inputs), dtype=np.intp, count=len(inputs))
    sources = np.fromiter(itertools.chain.from_iterable(inputs), dtype=np.intp, count=int(counts.sum()))
    if (sources < np.repeat(np.arange(len(inputs)), counts)).all():  # checked in bulk: 10^5 nodes
        return range(len(inputs))
    structure = nx.DiGraph()
    structure.add_nodes_from(range(len(inputs)))
    structure.add_edges_from((source, place) for place, sources in enumerate(inputs) for source in sources)
    try:
        return list(nx.lexicographical_topological_sort(structure))
    except nx.NetworkXUnfeasible:
        cycle = [table.names[edge[0]] for edge in nx.find_cycle(structure)]
        raise CycleError(f"the graph in the file has a cycle: {' -> '.join(cycle + cycle[:1])}") from None


def _reordered(table: _Table, order: list[int]) -> _Table:
    """The table with its nodes in ``order`` (inputs before consumers), every place renumbered."""
    new_place = {place: k for k, place in enumerate(order)}
    out = _Table()
    for column in ("names", "kinds", "ops", "attrs", "requires_grad", "scopes", "values", "grads"):
        setattr(out, column, [getattr(table, column)[place] for place in order])
    out.inputs = [[new_place[source] for source in table.inputs[place]] for place in order]
    out.edge_grads = [(new_place[place], slot, grad) for place, slot, grad in table.edge_grads]
    out.seeds = [(new_place[place], seed) for place, seed in table.seeds]
    return out


def _build(graph: Graph, table: _Table, max_elements: int | None) -> None:
    """Add the table's nodes to ``graph`` with :meth:`Graph.add_table`, then its numbers to ``graph.run``.

    ``add_table`` checks the nodes as ``Graph.op``, ``param``, ``const`` and ``input`` check
    nodes built by hand (ops known, arity, attributes, shapes, names), all at once.
    """
    order = _order(table)
    if not isinstance(order, range):
        table = _reordered(table, order)
    kinds = table.kinds
    for place in [place for place, kind in enumerate(kinds) if kind != "op"]:
        sources, value, kind = table.inputs[place], table.values[place], kinds[place]
        if sources:
            raise LoadError(f"node {short(table.names[place])} is a {kind} but has inputs "
                            f"({', '.join(short(table.names[s]) for s in sources)})")
        if value is None and kind != "input":
            raise LoadError(f"node {short(table.names[place])}: a {kind} needs a value (field 'value' is missing "
                            f"or null)")
    bad_flag = next((place for place, (kind, flag) in enumerate(zip(kinds, table.requires_grad))
                     if kind == "input" and type(flag) is not bool), None) if "input" in kinds else None
    if bad_flag is not None:
        raise LoadError(f"node {short(table.names[bad_flag])}: field 'requires_grad' must be true or false, got "
                        f"{short(table.requires_grad[bad_flag])}")
    leaves = [value if kind != "op" else None for kind, value in zip(kinds, table.values)]
    try:
        nodes = graph.add_table(NodeTable(
            names=table.names, kinds=kinds, ops=table.ops, inputs=table.inputs,
            attrs=[_attributes(attrs, f"node {short(name)}", max_elements) if attrs and kind == "op" else {}
                   for name, kind, attrs in zip(table.names, kinds, table.attrs)],
            values=leaves, requires_grad=table.requires_grad, scopes=_scopes(table)))
    except (TypeError, ValueError, OverflowError, KeyError, IndexError, RecursionError, MemoryError) as exc:
        if isinstance(exc, DagpropError):
            raise
        # an op's own checks met a value no file written by save() holds
        raise LoadError(f"the graph cannot be rebuilt from the file: {type(exc).__name__}: {short(str(exc))}"
                        ) from None
    _check_budget(nodes, table.values, max_elements)
    run = graph.run
    first = nodes[0].index if nodes else 0
    # a node's shape: its saved value's, else its static one (an input fed later: None)
    saved = [None if value is None else value.shape for value in table.values]
    shapes = list(map(_STATIC_SHAPE, nodes))
    if saved != shapes:
        for place, (node, shape) in enumerate(zip(nodes, saved)):
            if shape is not None and node.op_def is not None and shape != shapes[place]:
                if shapes[place] is not None:
                    raise LoadError(f"node {short(node.name)}: its saved value has shape {shape}, but {node.op} of "
                                    f"its inputs has shape {shapes[place]}")
                shapes[place] = shape
    values = run.values  # the leaves' are add_table's arrays: the op nodes' saved values join them
    values[first:] = [value if kind == "op" and value is not None else held
                      for kind, value, held in zip(kinds, table.values, values[first:])]
    grad_shapes = [None if grad is None else grad.shape for grad in table.grads]
    if grad_shapes != shapes:
        for node, grad_shape, shape in zip(nodes, grad_shapes, shapes):
            if grad_shape is not None and shape is not None and grad_shape != shape:
                raise LoadError(f"node {short(node.name)}: its saved gradient has shape {grad_shape}, but the node has "
                                f"shape {shape}")
    run.grads[first:] = table.grads
    inputs, edge_grads = table.inputs, run.edge_grads
    for place, slot, grad in table.edge_grads:
        shape = shapes[inputs[place][slot]]
        if shape is not None and grad.shape != shape:
            consumer = nodes[place]
            source = consumer.inputs[slot]
            raise LoadError(f"the gradient of edge {short(source.name)} -> {short(consumer.name)} has shape "
                            f"{grad.shape}, but {short(source.name)} has shape {shape}")
        edge_grads[(first + place, slot)] = grad
    for place, seed in table.seeds:
        if shapes[place] is not None and seed.shape != shapes[place]:
            raise LoadError(f"the seed at {short(nodes[place].name)} has shape {seed.shape}, but the node has shape "
                            f"{shapes[place]}")
    run.seeds = tuple((nodes[place], seed) for place, seed in table.seeds)


_STATIC_SHAPE = operator.attrgetter("static_shape")


def _scopes(table: _Table) -> list[tuple[str, ...]]:
    """Each node's scope as a tuple, from its "/"-joined names; each distinct scope split once."""
    split: dict[str, tuple[str, ...]] = {}
    for place, scope in enumerate(table.scopes):
        if scope not in split:
            parts = tuple(scope.split("/")) if scope else ()
            if not all(parts):
                raise LoadError(f"node {short(table.names[place])}: scope {short(scope)} must be scope names (not "
                                f"empty) joined by '/'")
            split[scope] = parts
    return list(map(split.__getitem__, table.scopes))


def _check_budget(nodes: list[Node], values: list[np.ndarray | None], max_elements: int | None) -> None:
    """LoadError naming the first node that brings the graph's nodes past ``max_elements``: each counts
    with the shape its op infers or, when that is unknown, its saved value's (an input fed later: nothing)."""
    if max_elements is None:
        return
    shapes = [node.static_shape if node.static_shape is not None or value is None else value.shape
              for node, value in zip(nodes, values)]
    sizes = [0 if shape is None else math.prod(shape) for shape in shapes]
    if sum(sizes) <= max_elements:
        return
    place, used = next((place, used) for place, used in enumerate(itertools.accumulate(sizes)) if used > max_elements)
    node = nodes[place]
    what = f"{node.op} of its inputs has shape" if node.op_def is not None and node.static_shape is not None \
        else "its saved value has shape"
    raise LoadError(f"node {short(node.name)} brings the graph's nodes to {used:,} elements ({what} "
                    f"{shapes[place]}, {sizes[place]:,} elements), more than {limit_hint(max_elements)}")


def _attributes(attrs: dict, where: str, max_elements: int | None) -> dict[str, Any]:
    for key in RESERVED_ATTRS:
        if key in attrs:
            raise LoadError(f"{where}: attribute {key!r} is a parameter of Graph.op itself, so no op takes it as an "
                            f"attribute")
    return {key: decode_attr(value, f"attribute {short(key)} of {where}", max_elements=max_elements)
            for key, value in attrs.items()}


_Array = TypeVar("_Array", bound="np.ndarray | None")


def _read_only(array: _Array) -> _Array:
    # the engine shares gradient arrays between nodes and edges and never writes to them
    if array is not None:
        array.flags.writeable = False
    return array
