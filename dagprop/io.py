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
import reprlib
import stat
from pathlib import Path as FilePath
from typing import Any, Callable, Iterable

import networkx as nx
import numpy as np

from .errors import CycleError, DagpropError, GraphError, LoadError, UnknownOpError
from .graph import Graph
from .op import ATTRIBUTE_TYPES_TEXT

__all__ = ["save", "load", "read", "to_data", "from_data", "encode_attr", "decode_attr", "encode_array",
           "decode_array", "FORMAT", "VERSION", "MAX_ELEMENTS", "MAX_FILE_BYTES_PER_ELEMENT"]

FORMAT = "dagprop-graph"
VERSION = 2
KINDS = ("input", "param", "const", "op")
#: The default ``max_elements`` of :func:`load`: numbers in any one array of a file, and in
#: the graph's nodes together (8 MB as float64; a saved graph also holds their gradients).
MAX_ELEMENTS = 1_000_000
#: A file may have at most this many bytes per allowed element (plus 1 MiB), so that a
#: file too large for ``max_elements`` is refused before it is read.
MAX_FILE_BYTES_PER_ELEMENT = 64
_FILE_SLACK = 1 << 20
_MAX_NDIM = 32  # NumPy 1 allows 32 axes, NumPy 2 64: a file must load under both
_MAX_ATTR_DEPTH = 32  # index and axis attributes nest a few levels; deeper is not an attribute
_NUMBER_KINDS = "fiub"  # float, signed and unsigned int, bool
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
# attribute names Graph.op takes as its own parameters, so no op can have them
_RESERVED_ATTRS = ("op_name", "name")


def _check_max_elements(max_elements: Any) -> int | None:
    if max_elements is not None and (isinstance(max_elements, bool) or not isinstance(max_elements, int)
                                     or max_elements < 1):
        raise LoadError(f"max_elements must be a positive int or None (no limit), got {max_elements!r}")
    return max_elements


def _limit_hint(max_elements: int | None) -> str:
    return (f"max_elements={max_elements:,}; pass a larger max_elements= to dagprop.load "
            f"(--max-elements on the command line) if you trust the file")


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


def decode_attr(data: Any, where: str = "attribute", *, max_elements: int | None = MAX_ELEMENTS) -> Any:
    """The op attribute that :func:`encode_attr` encoded. Builds plain data only, never runs code.

    Parameters
    ----------
    data : JSON data
    where : str
        What is being decoded, for error messages.
    max_elements : int or None
        The most elements an array inside the attribute may have (None: no limit).

    Raises
    ------
    LoadError
        For a tag or a structure :func:`encode_attr` never writes, a number that
        does not fit its type, or nesting deeper than 32 levels.

    Examples
    --------
    >>> decode_attr({"$tuple": [{"$slice": [None, 2, None]}, {"$ellipsis": True}, None]})
    (slice(None, 2, None), Ellipsis, None)
    >>> decode_attr({"$exec": "print('hi')"})
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: attribute: unknown tag '$exec' (known: $dict, $ellipsis, $float, $ndarray, $scalar, $slice, $tuple)
    """
    return _Decoder(where, max_elements).decode(data, 0)


class _Decoder:
    """Decodes one attribute, counting how deep it nests (recursion must not reach Python's limit)."""

    def __init__(self, where: str, max_elements: int | None) -> None:
        self.where = where
        self.max_elements = max_elements
        self.tags: dict[str, Callable[[Any, int], Any]] = {
            "$float": self.tag_float, "$ellipsis": self.tag_ellipsis, "$slice": self.tag_slice,
            "$tuple": self.tag_tuple, "$dict": self.tag_dict, "$scalar": self.tag_scalar,
            "$ndarray": self.tag_ndarray}

    def decode(self, data: Any, depth: int) -> Any:
        where = self.where
        if depth > _MAX_ATTR_DEPTH:
            raise LoadError(f"{where}: nested deeper than {_MAX_ATTR_DEPTH} levels, which no op attribute is")
        if data is None or isinstance(data, (bool, str, int, float)):
            return data
        if isinstance(data, list):
            return [self.decode(v, depth + 1) for v in data]
        if not isinstance(data, dict) or len(data) != 1:
            raise LoadError(f"{where}: {_short(data)} is not an encoded attribute (expected a single '$tag' key)")
        (tag, content), = data.items()
        if tag not in self.tags:
            raise LoadError(f"{where}: unknown tag {_short(tag)} (known: {', '.join(sorted(self.tags))})")
        try:
            return self.tags[tag](content, depth + 1)
        except LoadError:
            raise
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise LoadError(f"{where}: malformed {tag} ({exc})") from None

    def tag_float(self, content: Any, depth: int) -> float:
        if not isinstance(content, str) or content not in _SPECIAL_FLOATS:
            raise LoadError(f"{self.where}: $float must be 'nan', 'inf' or '-inf', got {_short(content)}")
        return _SPECIAL_FLOATS[content]

    def tag_ellipsis(self, content: Any, depth: int) -> Any:
        return Ellipsis

    def tag_slice(self, content: Any, depth: int) -> slice:
        if not isinstance(content, list) or len(content) != 3:
            raise LoadError(f"{self.where}: $slice must be [start, stop, step], got {_short(content)}")
        return slice(*(self.decode(v, depth) for v in content))

    def tag_tuple(self, content: Any, depth: int) -> tuple:
        if not isinstance(content, list):
            raise LoadError(f"{self.where}: $tuple must hold a list, got {_short(content)}")
        return tuple(self.decode(v, depth) for v in content)

    def tag_dict(self, content: Any, depth: int) -> dict:
        if not isinstance(content, list) or not all(isinstance(p, list) and len(p) == 2 for p in content):
            raise LoadError(f"{self.where}: $dict must hold [key, value] pairs, got {_short(content)}")
        return {self.hashable_key(self.decode(k, depth)): self.decode(v, depth) for k, v in content}

    def hashable_key(self, key: Any) -> Any:
        try:
            hash(key)
        except TypeError:
            raise LoadError(f"{self.where}: a dict key must be hashable, got {_short(key)}") from None
        return key

    def tag_scalar(self, content: Any, depth: int) -> np.generic:
        dtype = _number_dtype(content["dtype"], self.where)
        value = self.decode(content["value"], depth)
        if not isinstance(value, (int, float)):  # bool is an int
            raise LoadError(f"{self.where}: $scalar needs a number, got {_short(value)}")
        scalar: np.generic = _convert([value], dtype, self.where)[0]
        return scalar

    def tag_ndarray(self, content: Any, depth: int) -> np.ndarray:
        return decode_array(content, self.where, max_elements=self.max_elements)


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
        raise LoadError(f"{where}: dtype must be a string such as 'float64', got {_short(name)}")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        raise LoadError(f"{where}: unknown dtype {_short(name)}") from None
    if dtype.kind not in _NUMBER_KINDS:
        raise LoadError(f"{where}: dtype {_short(name)} is not a number type")
    return dtype


def _convert(numbers: list, dtype: np.dtype, where: str) -> np.ndarray:
    """``numbers`` as a flat array of ``dtype``; a LoadError naming the first entry that does not fit."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        for position, x in enumerate(numbers):
            if isinstance(x, float) and not math.isfinite(x):
                raise LoadError(f"{where}: entry {position} is {_float_text(x)}, which dtype {dtype.name} cannot hold")
            if not info.min <= x <= info.max:
                raise LoadError(f"{where}: entry {position} ({_short(x)}) is out of range for dtype {dtype.name} "
                                f"({info.min} to {info.max})")
    try:
        return np.array(numbers, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        for position, x in enumerate(numbers):
            try:
                np.array([x], dtype=dtype)
            except (OverflowError, ValueError, TypeError):
                raise LoadError(f"{where}: entry {position} ({_short(x)}) does not fit dtype {dtype.name}") from None
        raise  # every entry fits alone: not the file's fault


def decode_array(data: Any, where: str = "array", *, max_elements: int | None = MAX_ELEMENTS) -> np.ndarray:
    """The array that :func:`encode_array` encoded, checked field by field before anything is allocated.

    Parameters
    ----------
    data, where
        As in :func:`decode_attr`.
    max_elements : int or None
        The most elements (and the longest axis) the array may have; None: no limit.

    Raises
    ------
    LoadError
        For a missing or malformed field, an entry that does not fit the dtype, or
        a shape beyond the limits (at most 32 axes, ``max_elements`` elements).

    Examples
    --------
    >>> decode_array({"dtype": "float64", "shape": [2], "data": [1.5, "-inf"]})
    array([ 1.5, -inf])
    >>> decode_array({"dtype": "float64", "shape": [3], "data": [1.5]})
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: array: shape [3] needs 3 entries, the file has 1
    >>> decode_array({"dtype": "float64", "shape": [1000, 1000], "data": []}, max_elements=1000)
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: array: shape [1000, 1000] has 1,000,000 elements, more than max_elements=1,000; pass a larger max_elements= to dagprop.load (--max-elements on the command line) if you trust the file
    """
    if not isinstance(data, dict):
        raise LoadError(f"{where}: expected an array object with dtype, shape and data, got {_short(data)}")
    for key in ("dtype", "shape", "data"):
        if key not in data:
            raise LoadError(f"{where}: missing field {key!r}")
    dtype = _number_dtype(data["dtype"], where)
    shape = _checked_shape(data["shape"], where, max_elements)
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
            raise LoadError(f"{where}: {_short(entry)} is not a number")
    return _convert(numbers, dtype, where).reshape(shape)


def _checked_shape(shape: Any, where: str, max_elements: int | None) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape):
        raise LoadError(f"{where}: shape must be a list of non-negative integers, got {_short(shape)}")
    if len(shape) > _MAX_NDIM:
        raise LoadError(f"{where}: shape has {len(shape)} axes, more than the {_MAX_NDIM} an array may have")
    size = math.prod(shape)
    if max_elements is not None and size > max_elements:
        raise LoadError(f"{where}: shape {shape} has {size:,} elements, more than {_limit_hint(max_elements)}")
    # an empty array may still name a huge axis, which NumPy refuses
    longest = max(shape, default=0)
    limit = max_elements if max_elements is not None else np.iinfo(np.intp).max // 8
    if longest > limit or size > limit:
        within = _limit_hint(max_elements) if max_elements is not None else f"NumPy allows ({limit:,})"
        raise LoadError(f"{where}: shape {_short(shape)} has an axis of {longest:,} elements, more than {within}")
    return shape


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 6, 4


def _short(x: Any) -> str:
    # reprlib stops at a few levels and items, so a hostile value never makes a long message or deep recursion
    text = _SHORT.repr(x)
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
    max_elements = _check_max_elements(max_elements)
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
    most = None if max_elements is None else MAX_FILE_BYTES_PER_ELEMENT * max_elements + _FILE_SLACK
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
                            f"{size:,} elements), more than {_limit_hint(self.max_elements)}")


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
    max_elements = _check_max_elements(max_elements)
    if not isinstance(data, dict):
        raise LoadError(f"not a dagprop graph: the file holds a JSON {type(data).__name__}, not an object")
    if data.get("format") != FORMAT:
        raise LoadError(f"not a dagprop graph: 'format' is {_short(data.get('format'))}, expected {FORMAT!r}")
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
        where = f"node {_short(name)}"
        if name in records:
            raise LoadError(f"{where} appears twice; node names must be unique")
        kind = _field(record, "kind", str, where)
        if kind not in KINDS:
            raise LoadError(f"{where}: unknown kind {_short(kind)} (expected one of {', '.join(KINDS)})")
        records[name] = record

    inputs: dict[str, dict[int, str]] = {name: {} for name in records}
    edge_grads: dict[tuple[str, int], Any] = {}
    for position, edge in enumerate(edges):
        where = f"edge #{position}"
        if not isinstance(edge, dict):
            raise LoadError(f"{where}: expected an object, got {_short(edge)}")
        source = _field(edge, "source", str, where)
        target = _field(edge, "target", str, where)
        where = f"edge {_short(source)} -> {_short(target)}"
        slot = _field(edge, "slot", int, where)
        for end in (source, target):
            if end not in records:
                raise LoadError(f"{where}: there is no node {_short(end)}")
        if slot in inputs[target]:
            raise LoadError(f"{where}: node {_short(target)} has two inputs in argument slot {slot}")
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
            raise LoadError(f"node {_short(name)} cannot be rebuilt from the file: {type(exc).__name__}: "
                            f"{_short(str(exc))}") from None
    for (target, slot), grad in edge_grads.items():
        consumer = graph[target]
        source = consumer.inputs[slot]
        if source.shape is not None and grad.shape != source.shape:
            raise LoadError(f"the gradient of edge {_short(source.name)} -> {_short(target)} has shape {grad.shape}, "
                            f"but {_short(source.name)} has shape {source.shape}")
        graph.run.edge_grads[(consumer.index, slot)] = grad
    graph.run.seeds = tuple(_seeds(graph, data.get("seeds", []), max_elements))
    loss = data.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in graph):
        raise LoadError(f"'loss' names {_short(loss)}, which is not a node of the graph")
    return graph


def _seeds(graph: Graph, entries: Any, max_elements: int | None) -> list[tuple[Any, np.ndarray]]:
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
        seed = _read_only(decode_array(_field(entry, "seed", dict, where), f"the seed at {_short(name)}",
                                       max_elements=max_elements))
        if node.shape is not None and seed.shape != node.shape:
            raise LoadError(f"the seed at {_short(name)} has shape {seed.shape}, but the node has shape {node.shape}")
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


def _add_node(graph: Graph, name: str, record: dict, slots: dict[int, str], budget: _Budget) -> None:
    where = f"node {_short(name)}"
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
                        f"got {_short(scope)}")
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
            raise UnknownOpError(f"{where} uses op {_short(op_name)}, which no installed plugin provides; install a "
                                 f"plugin that provides it (or pass it with plugins=), then load again "
                                 f"(dagprop ops lists the ops available now)")
        attrs = _field(record, "attrs", dict, where) if "attrs" in record else {}
        for key in _RESERVED_ATTRS:
            if key in attrs:
                raise LoadError(f"{where}: attribute {key!r} is a parameter of Graph.op itself, so no op takes it "
                                f"as an attribute")
        decoded = {key: decode_attr(v, f"attribute {_short(key)} of {where}", max_elements=budget.max_elements)
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
            raise LoadError(f"{where} is a {kind} but has inputs ({', '.join(map(_short, slots.values()))})")
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
