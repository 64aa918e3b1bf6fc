"""Plain JSON data for what a saved graph holds besides its structure: op attributes, in a
small tagged encoding, and arrays, with every declared size checked against a limit before
anything is allocated. Decoding builds plain data only and never runs code.

Arrays come two ways: one at a time (:func:`encode_array`, for attributes and files of
format versions 1 and 2), or many together as an array block (:class:`ArrayBlockWriter`,
:class:`ArrayBlock`, format version 3): a table of each array's dtype, shape and offset,
and one flat list of numbers per dtype holding the arrays one after another, so a file
of a hundred thousand small arrays is a few long lists that :mod:`json` and NumPy read
in bulk rather than a hundred thousand small objects.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import reprlib
from typing import Any, Callable, Iterable

import numpy as np

from .errors import GraphError, LoadError
from .op import ATTRIBUTE_TYPES_TEXT

__all__ = ["encode_attr", "decode_attr", "encode_array", "decode_array", "ArrayBlockWriter", "ArrayBlock",
           "MAX_ELEMENTS", "MAX_FILE_BYTES_PER_ELEMENT", "positions"]

#: The default ``max_elements`` of :func:`load`: numbers in any one array of a file, and in
#: the graph's nodes together (8 MB as float64; a saved graph also holds their gradients).
MAX_ELEMENTS = 1_000_000
#: A file may have at most this many bytes per allowed element (plus 1 MiB), so that a
#: file too large for ``max_elements`` is refused before it is read.
MAX_FILE_BYTES_PER_ELEMENT = 64
FILE_SLACK = 1 << 20
_MAX_NDIM = 32  # NumPy 1 allows 32 axes, NumPy 2 64: a file must load under both
_MAX_ATTR_DEPTH = 32  # index and axis attributes nest a few levels; deeper is not an attribute
_NUMBER_KINDS = "fiub"  # float, signed and unsigned int, bool
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
# attribute names Graph.op takes as its own parameters, so no op can have them
RESERVED_ATTRS = ("op_name", "name")


def check_max_elements(max_elements: Any) -> int | None:
    if max_elements is not None and (isinstance(max_elements, bool) or not isinstance(max_elements, int)
                                     or max_elements < 1):
        raise LoadError(f"max_elements must be a positive int or None (no limit), got {max_elements!r}")
    return max_elements


def limit_hint(max_elements: int | None) -> str:
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
            raise LoadError(f"{where}: {short(data)} is not an encoded attribute (expected a single '$tag' key)")
        (tag, content), = data.items()
        if tag not in self.tags:
            raise LoadError(f"{where}: unknown tag {short(tag)} (known: {', '.join(sorted(self.tags))})")
        try:
            return self.tags[tag](content, depth + 1)
        except LoadError:
            raise
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise LoadError(f"{where}: malformed {tag} ({exc})") from None

    def tag_float(self, content: Any, depth: int) -> float:
        if not isinstance(content, str) or content not in _SPECIAL_FLOATS:
            raise LoadError(f"{self.where}: $float must be 'nan', 'inf' or '-inf', got {short(content)}")
        return _SPECIAL_FLOATS[content]

    def tag_ellipsis(self, content: Any, depth: int) -> Any:
        return Ellipsis

    def tag_slice(self, content: Any, depth: int) -> slice:
        if not isinstance(content, list) or len(content) != 3:
            raise LoadError(f"{self.where}: $slice must be [start, stop, step], got {short(content)}")
        return slice(*(self.decode(v, depth) for v in content))

    def tag_tuple(self, content: Any, depth: int) -> tuple:
        if not isinstance(content, list):
            raise LoadError(f"{self.where}: $tuple must hold a list, got {short(content)}")
        return tuple(self.decode(v, depth) for v in content)

    def tag_dict(self, content: Any, depth: int) -> dict:
        if not isinstance(content, list) or not all(isinstance(p, list) and len(p) == 2 for p in content):
            raise LoadError(f"{self.where}: $dict must hold [key, value] pairs, got {short(content)}")
        return {self.hashable_key(self.decode(k, depth)): self.decode(v, depth) for k, v in content}

    def hashable_key(self, key: Any) -> Any:
        try:
            hash(key)
        except TypeError:
            raise LoadError(f"{self.where}: a dict key must be hashable, got {short(key)}") from None
        return key

    def tag_scalar(self, content: Any, depth: int) -> np.generic:
        dtype = _number_dtype(content["dtype"], self.where)
        value = self.decode(content["value"], depth)
        if not isinstance(value, (int, float)):  # bool is an int
            raise LoadError(f"{self.where}: $scalar needs a number, got {short(value)}")
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
        raise LoadError(f"{where}: dtype must be a string such as 'float64', got {short(name)}")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        raise LoadError(f"{where}: unknown dtype {short(name)}") from None
    if dtype.kind not in _NUMBER_KINDS:
        raise LoadError(f"{where}: dtype {short(name)} is not a number type")
    return dtype


def _convert(numbers: list, dtype: np.dtype, where: str) -> np.ndarray:
    """``numbers`` as a flat array of ``dtype``; a LoadError naming the first entry that does not fit."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        for position, x in enumerate(numbers):
            if isinstance(x, float) and not math.isfinite(x):
                raise LoadError(f"{where}: entry {position} is {_float_text(x)}, which dtype {dtype.name} cannot hold")
            if not info.min <= x <= info.max:
                raise LoadError(f"{where}: entry {position} ({short(x)}) is out of range for dtype {dtype.name} "
                                f"({info.min} to {info.max})")
    try:
        return np.array(numbers, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        for position, x in enumerate(numbers):
            try:
                np.array([x], dtype=dtype)
            except (OverflowError, ValueError, TypeError):
                raise LoadError(f"{where}: entry {position} ({short(x)}) does not fit dtype {dtype.name}") from None
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
        raise LoadError(f"{where}: expected an array object with dtype, shape and data, got {short(data)}")
    for key in ("dtype", "shape", "data"):
        if key not in data:
            raise LoadError(f"{where}: missing field {key!r}")
    dtype = _number_dtype(data["dtype"], where)
    shape = checked_shape(data["shape"], where, max_elements)
    entries = data["data"]
    if not isinstance(entries, list):
        raise LoadError(f"{where}: data must be a list of numbers, got {short(entries)}")
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
            raise LoadError(f"{where}: {short(entry)} is not a number")
    return _convert(numbers, dtype, where).reshape(shape)


def checked_shape(shape: Any, where: str, max_elements: int | None) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape):
        raise LoadError(f"{where}: shape must be a list of non-negative integers, got {short(shape)}")
    if len(shape) > _MAX_NDIM:
        raise LoadError(f"{where}: shape has {len(shape)} axes, more than the {_MAX_NDIM} an array may have")
    size = math.prod(shape)
    if max_elements is not None and size > max_elements:
        raise LoadError(f"{where}: shape {shape} has {size:,} elements, more than {limit_hint(max_elements)}")
    # an empty array may still name a huge axis, which NumPy refuses
    longest = max(shape, default=0)
    limit = max_elements if max_elements is not None else np.iinfo(np.intp).max // 8
    if longest > limit or size > limit:
        within = limit_hint(max_elements) if max_elements is not None else f"NumPy allows ({limit:,})"
        raise LoadError(f"{where}: shape {short(shape)} has an axis of {longest:,} elements, more than {within}")
    return shape



# -- array blocks: many arrays as one table and one list of numbers per dtype -------------------


class ArrayBlockWriter:
    """Collects arrays for a block; :meth:`add` gives each an id, :meth:`data` the block as JSON data.

    The table describes the arrays as runs of one dtype and shape (a chain's values and
    gradients make one run), and each dtype's numbers are written as the base64 text of
    their little-endian bytes: exact, and read and written in bulk, where decimal text
    costs a microsecond per number each way (issue 15).

    Examples
    --------
    >>> block = ArrayBlockWriter()
    >>> block.add([np.array([1.5, float("nan")]), None, np.array([2.0, 0.0]), np.arange(2)], "array #{}".format)
    [0, None, 1, 2]
    >>> block.data()
    {'arrays': {'dtype': ['float64', 'int64'], 'shape': [[2], [2]], 'count': [2, 1]}, 'data': {'float64': 'AAAAAAAA+D8AAAAAAAD4fwAAAAAAAABAAAAAAAAAAAA=', 'int64': 'AAAAAAAAAAABAAAAAAAAAA=='}}
    """

    def __init__(self) -> None:
        self.keys: list[tuple[str, tuple[int, ...]]] = []  # per array, in id order: (dtype name, shape)
        self.arrays: dict[str, list[np.ndarray]] = {}  # dtype name -> its arrays, in id order
        self.names: dict[type, str] = {}  # dtype.name is slow to compute, and a block has few dtypes
        self.shared: dict[int, int] = {}  # id() of an array added with shared=True -> its array id

    def add(self, arrays: Iterable[Any], where: Callable[[int], str], *, shared: bool = False
            ) -> list[int | None]:
        """Put each of ``arrays`` in the block; their ids, None for an entry that is None.

        With ``shared=True`` (gradients and seeds, which the engine shares between nodes and
        edges and never writes to), an array already added that way keeps its id, so the
        file holds it once and loading shares it again. ``where(position)`` names an array in errors.
        """
        ids: list[int | None] = []
        names, keys, columns, known = self.names, self.keys, self.arrays, self.shared
        for position, array in enumerate(arrays):
            if array is None:
                ids.append(None)
                continue
            if shared:
                k = known.get(id(array))
                if k is not None:
                    ids.append(k)
                    continue
                known[id(array)] = len(keys)  # the array stays in self.arrays: its id() is not reused
            if array.__class__ is not np.ndarray:
                array = np.asarray(array)
            name = names.get(array.dtype.__class__)  # NumPy 2 has a class per dtype; classes hash faster
            if name is None:
                name = self._new_dtype(array.dtype, where(position))
            ids.append(len(keys))
            keys.append((name, array.shape))
            columns[name].append(array)
        return ids

    def _new_dtype(self, dtype: np.dtype, where: str) -> str:
        if dtype.kind not in _NUMBER_KINDS:
            raise GraphError(f"{where} has dtype {dtype}, which cannot be saved (numbers only)")
        name = self.names[dtype.__class__] = dtype.name
        self.arrays.setdefault(name, [])  # int64 may come as two classes (long and longlong)
        return name

    def data(self) -> dict[str, Any]:
        """``{"arrays": {"dtype", "shape", "count"}, "data": {dtype: base64 text}}``."""
        runs = [(key, len(list(group))) for key, group in itertools.groupby(self.keys)]
        columns = {}
        for name, arrays in self.arrays.items():
            flat = np.concatenate(arrays, axis=None) if arrays else np.zeros(0)  # each array flattened, in C order
            little = flat.astype(np.dtype(name).newbyteorder("<"), copy=False)
            columns[name] = base64.b64encode(little.tobytes()).decode("ascii")
        return {"arrays": {"dtype": [name for (name, _), _ in runs], "shape": [list(shape) for (_, shape), _ in runs],
                           "count": [count for _, count in runs]},
                "data": columns}


class ArrayBlock:
    """The arrays of a block that :class:`ArrayBlockWriter` wrote, checked before anything is allocated.

    The table gives runs of arrays of one dtype and shape (format version 4: fields
    ``dtype``, ``shape`` and ``count``, one entry per run) or each array's dtype, shape and
    offset (version 3: one entry per array, each offset where the previous array of its
    dtype ended). Every shape is checked against ``max_elements`` (and 32 axes), and each
    dtype's numbers must be exactly those the table declares, all fitting the dtype: base64
    text (version 4) or a list of numbers (version 3). Only then are they turned into
    arrays, one per dtype. :meth:`get` hands out arrays as views. ``owner(k)``, if given,
    says what array ``k`` is, for error messages.

    Raises
    ------
    LoadError
        Naming the array (``array #k``), the run or the dtype's numbers and what is wrong.

    Examples
    --------
    >>> block = ArrayBlock({"dtype": ["float64", "float64"], "shape": [[2], []], "count": [1, 1]},
    ...                    {"float64": "AAAAAAAA+D8AAAAAAADw/wAAAAAAAAhA"})
    >>> block.get([0, None, 1], "array #{}".format)
    [array([ 1.5, -inf]), None, array(3.)]
    >>> ArrayBlock({"dtype": ["float64"], "shape": [[3]], "count": [1]}, {"float64": "AAAAAAAA+D8="})
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: 'data': the float64 text holds 12 characters of base64, but the arrays table needs 3 numbers there as base64 text (32 characters): a truncated or edited file
    >>> ArrayBlock({"dtype": ["float64"], "shape": [[2]], "offset": [0]}, {"float64": [1.5, "nan"]}, version=3
    ...            ).get([0], "array #{}".format)
    [array([1.5, nan])]
    """

    def __init__(self, table: Any, data: Any, max_elements: int | None = MAX_ELEMENTS,
                 owner: Callable[[int], str] | None = None, *, version: int = 4) -> None:
        if not isinstance(table, dict):
            raise LoadError(f"field 'arrays' must be a JSON object, got {short(table)}")
        if not isinstance(data, dict):
            raise LoadError(f"field 'data' must be a JSON object, got {short(data)}")
        fields = ("dtype", "shape", "offset" if version == 3 else "count")
        columns = []
        for field in fields:
            if not isinstance(table.get(field), list):
                raise LoadError(f"'arrays': field {field!r} must be a JSON array, got {short(table.get(field))}")
            columns.append(table[field])
        if len(set(map(len, columns))) != 1:
            raise LoadError(f"'arrays': fields {', '.join(map(repr, fields[:2]))} and {fields[2]!r} have "
                            f"{', '.join(str(len(c)) for c in columns[:2])} and {len(columns[2])} entries; they must "
                            f"have one each per {'array' if version == 3 else 'run of arrays'}")
        self.max_elements = max_elements
        self.owner = owner
        dtypes, shapes, third = columns
        if not (set(map(type, dtypes)) <= {str} and set(map(type, shapes)) <= {list}
                and set(map(type, itertools.chain.from_iterable(shapes))) <= {int}):
            for k, (name, shape) in enumerate(zip(dtypes, shapes)):
                self._check(k, name, shape, version)  # raises at the first entry that is not what it should be
        self.runs = (self._listed_runs if version == 3 else self._counted_runs)(dtypes, shapes, third)
        counts = [count for _, _, _, count, _ in self.runs]
        self.count = sum(counts)
        self.firsts = np.cumsum([0, *counts[:-1]])  # the id of each run's first array
        self.used = np.zeros(self.count, dtype=np.int8)  # 0: not yet, 1: taken (writable), 2: shared (read-only)
        # read-only? -> every array by id, each run's cut from its column when first asked for
        self.views: dict[bool, list[np.ndarray | None]] = {}
        self.cut: set[tuple[bool, int]] = set()  # (read-only?, run) cut so far
        totals: dict[str, int] = {}
        for name, _, size, count, start in self.runs:
            totals[name] = start + size * count
        read = _listed_column if version == 3 else _base64_column
        self.columns: dict[str, np.ndarray] = {name: read(data.get(name), np.dtype(name), total, f"'data': the {name}")
                                               for name, total in totals.items()}

    def _counted_runs(self, dtypes: list[str], shapes: list[list[int]], counts: list[Any]
                      ) -> list[tuple[str, tuple[int, ...], int, int, int]]:
        """The runs of a version 4 table, each ``count`` checked a positive integer (see :meth:`_runs`)."""
        if not set(map(type, counts)) <= {int} or min(counts, default=1) < 1:
            run = next(r for r, count in enumerate(counts) if type(count) is not int or count < 1)
            raise LoadError(f"'arrays': run #{run}: count {short(counts[run])} must be a positive integer")
        return self._runs(dtypes, shapes, counts, 4)

    def _listed_runs(self, dtypes: list[str], shapes: list[list[int]], offsets: list[Any]
                     ) -> list[tuple[str, tuple[int, ...], int, int, int]]:
        """The runs of a version 3 table, one entry per array: consecutive arrays of one dtype and shape
        make a run (see :meth:`_runs`); each offset must be where the previous array of its dtype ended."""
        grouped = [(key, len(list(group))) for key, group in itertools.groupby(zip(dtypes, shapes))]
        runs = self._runs([name for (name, _), _ in grouped], [shape for (_, shape), _ in grouped],
                          [count for _, count in grouped], 3)
        odd_offsets = not set(map(type, offsets)) <= {int}
        first = 0
        for name, _, size, count, start in runs:
            expected = list(range(start, start + size * count, size)) if size else [start] * count
            given = offsets[first:first + count]
            if given != expected or (odd_offsets and not set(map(type, given)) <= {int}):
                k = first + next(j for j, (offset, end) in enumerate(zip(given, expected))
                                 if type(offset) is not int or offset != end)
                raise LoadError(f"{self._array(k)}: offset {short(offsets[k])} should be {expected[k - first]}, "
                                f"where the previous {name} array ends (each dtype's arrays follow one another in its "
                                f"list)")
            first += count
        return runs

    def _runs(self, dtypes: list[str], shapes: list[list[int]], counts: list[int], version: int
              ) -> list[tuple[str, tuple[int, ...], int, int, int]]:
        """Runs of ``counts[r]`` arrays of dtype ``dtypes[r]`` and shape ``shapes[r]``, each shape checked
        once, as ``(dtype, shape, size, count, start)``: ``start`` where the run's first array begins in
        its dtype's numbers (each dtype's arrays follow one another)."""
        checked: dict[tuple, tuple[tuple[int, ...], int]] = {}
        ends: dict[str, int] = {}
        runs = []
        first = 0
        for run, (name, shape, count) in enumerate(zip(dtypes, shapes, counts)):
            key = (name, tuple(shape))
            if key not in checked:
                checked[key] = self._check(first, name, shape, version, run)
            shape_tuple, size = checked[key]
            start = ends.get(name, 0)
            runs.append((name, shape_tuple, size, count, start))
            ends[name] = start + size * count
            first += count
        return runs

    def _array(self, k: int) -> str:
        return f"array #{k}" if self.owner is None else f"array #{k} ({self.owner(k)})"

    def _check(self, k: int, name: Any, shape: Any, version: int, run: int | None = None
               ) -> tuple[tuple[int, ...], int]:
        """The shape as a tuple and its size, for array ``k`` (the first of ``run``, in version 4)."""
        where = self._array(k) if version == 3 else f"'arrays': run #{k if run is None else run}"
        dtype = _number_dtype(name, where)
        if dtype.name != name:
            raise LoadError(f"{where}: dtype {short(name)} should be written {dtype.name!r}")
        shape = tuple(checked_shape(shape, where, self.max_elements))
        return shape, math.prod(shape)

    def get(self, ids: list[Any], where: Callable[[int], str], *, read_only: bool = False
            ) -> list[np.ndarray | None]:
        """The arrays ``ids`` name, as views into their dtype's numbers (None for None).

        ``read_only=True`` is for gradients and seeds: read-only views, which may share an
        array with other gradients (the engine shares them). Otherwise each array is taken by
        one entry alone. ``where(position)`` says what refers to the array at ``position`` of
        ``ids``, for error messages.
        """
        present = [k for k in ids if k is not None]
        if not positions(present, self.count):
            position = next(p for p, k in enumerate(ids) if k is not None and not positions([k], self.count))
            raise LoadError(f"{where(position)}: {short(ids[position])} is not an array id (the arrays table has "
                            f"{self.count} arrays, numbered from 0)")
        states = self.used[present]
        if (states == 1).any() if read_only else (states.any() or len(set(present)) != len(present)):
            seen: set[int] = set()
            position = next(p for p, k in enumerate(ids) if k is not None and (
                self.used[k] == 1 or (not read_only and (self.used[k] or k in seen or seen.add(k)))))  # type: ignore[func-returns-value]
            raise LoadError(f"{where(position)}: array #{ids[position]} is used twice; each value has an array of "
                            f"its own (gradients and seeds may share theirs, as the engine shares them)")
        self.used[present] = 2 if read_only else 1
        arrays = self.views.get(read_only)
        if arrays is None:
            arrays = self.views[read_only] = [None] * self.count
        if present:  # the runs holding these arrays, found in bulk: values and gradients are runs apart
            for run in np.unique(np.searchsorted(self.firsts, present, side="right") - 1).tolist():
                if (read_only, run) not in self.cut:
                    self._cut(arrays, run, read_only)
        return [None if k is None else arrays[k] for k in ids]

    def _cut(self, arrays: list[np.ndarray | None], run: int, read_only: bool) -> None:
        """Put each array of ``run`` in ``arrays``, at its id, as a view into its dtype's numbers."""
        name, shape, size, count, start = self.runs[run]
        column = self.columns[name]
        if read_only:  # views of a read-only view are read-only: no flag to set per array
            column = _read_only_view(column)
        block = column[start:start + size * count].reshape((count, *shape))
        first = int(self.firsts[run])
        # iterating gives each array as a view; a 0-d one would come out a numpy scalar: block[j, ...] keeps it an array
        arrays[first:first + count] = block if shape else map(block.__getitem__,
                                                              zip(range(count), itertools.repeat(Ellipsis)))
        self.cut.add((read_only, run))


def positions(column: list, count: int) -> bool:
    """Whether every entry of ``column`` is an int from 0 to ``count - 1`` (a node's or an array's
    place in a file's table), checked in C.

    Examples
    --------
    >>> positions([0, 2, 1], 3), positions([0, 3], 3), positions([0, 1.0], 3), positions([], 0)
    (True, False, False, True)
    """
    return not column or (set(map(type, column)) <= {int} and min(column) >= 0 and max(column) < count)


def _read_only_view(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _base64_column(text: Any, dtype: np.dtype, total: int, where: str) -> np.ndarray:
    """A dtype's numbers from the base64 text of their little-endian bytes, checked before decoding."""
    size = total * dtype.itemsize
    length = 4 * -(-size // 3)
    _expect(text, str, length, f"{where} text", "characters of base64",
            f"{total:,} numbers there as base64 text ({length:,} characters)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LoadError(f"{where} numbers are not base64 text (only A-Z, a-z, 0-9, '+', '/' and '=' padding)"
                        ) from None
    if len(raw) != size:  # padding in the middle, say
        raise LoadError(f"{where} numbers decode to {len(raw)} bytes, but {total} {dtype.name} numbers take {size}")
    if dtype.kind == "b":
        bad = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) > 1)
        if bad.size:
            raise LoadError(f"{where} numbers: entry {bad[0]} is byte {raw[bad[0]]}, not a bool (0 or 1)")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)  # native, and an array of its own


def _listed_column(numbers: Any, dtype: np.dtype, total: int, where: str) -> np.ndarray:
    """A dtype's numbers from a list of them (format version 3), every entry checked in bulk."""
    where = f"{where} list"
    _expect(numbers, list, total, where, "numbers", f"{total:,} numbers there")
    return _column(numbers, dtype, where)


def _expect(column: Any, kind: type[str] | type[list], length: int, where: str, unit: str, needed: str) -> None:
    """LoadError unless a dtype's numbers, as the file holds them, are a ``kind`` of ``length``
    ``unit``: what the arrays table ``needed``."""
    if not isinstance(column, kind):
        raise LoadError(f"{where} is {'missing' if column is None else short(column)}; the arrays table needs "
                        f"{needed}")
    if len(column) != length:
        raise LoadError(f"{where} holds {len(column):,} {unit}, but the arrays table needs {needed}: a truncated or "
                        f"edited file")


def _column(numbers: list, dtype: np.dtype, where: str) -> np.ndarray:
    """A block's list of numbers as a flat array of ``dtype``, every entry checked in bulk."""
    kinds = set(map(type, numbers))
    if dtype.kind == "f":
        if str in kinds:  # non-finite numbers, written as strings: the rare case, checked one by one
            numbers = list(numbers)
            for position, entry in enumerate(numbers):
                if type(entry) is str:
                    if entry not in _SPECIAL_FLOATS:
                        raise LoadError(f"{where}: entry {position} ({short(entry)}) is not a number")
                    numbers[position] = _SPECIAL_FLOATS[entry]
            kinds.discard(str)
        allowed = {float, int, bool}
    elif dtype.kind == "b":
        allowed = {bool}
    else:
        allowed = {int, bool}
    if not kinds <= allowed:
        position, entry = next((p, x) for p, x in enumerate(numbers) if type(x) not in allowed)
        what = "is not a number" if type(entry) not in (float, int) else f"does not fit dtype {dtype.name}"
        raise LoadError(f"{where}: entry {position} ({short(entry)}) {what}")
    if dtype.kind in "iu" and numbers:
        info = np.iinfo(dtype)
        if min(numbers) < info.min or max(numbers) > info.max:
            position, entry = next((p, x) for p, x in enumerate(numbers) if not info.min <= x <= info.max)
            raise LoadError(f"{where}: entry {position} ({short(entry)}) is out of range for dtype {dtype.name} "
                            f"({info.min} to {info.max})")
        return np.array(numbers, dtype=dtype)
    return _convert(numbers, dtype, where)  # a float beyond the dtype's range (10**400) is found there

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 6, 4


def short(x: Any) -> str:
    # reprlib stops at a few levels and items, so a hostile value never makes a long message or deep recursion
    text = _SHORT.repr(x)
    return text if len(text) <= 60 else text[:57] + "..."
