"""Array backends: which array namespace a computation runs in.

dagprop computes in the namespace of the arrays it is given (the Python array API
standard): NumPy arrays in NumPy itself, other arrays (array-api-strict, dask.array,
CuPy) through ``array_api_compat``, an optional extra. Plain lists and numbers still
become float64 NumPy arrays, so NumPy stays the default and costs nothing extra.

>>> import numpy as np
>>> namespace(np.ones(2), None, 3.0) is np
True
"""

from __future__ import annotations

import math
import sys
from types import ModuleType
from typing import Any, Sequence, cast

import numpy as np

from .errors import GraphError, OpError

__all__ = ["namespace", "is_numpy", "is_foreign", "device_of", "constant", "lift", "ufunc_in", "gather", "is_lazy",
           "is_real_floating", "all_finite", "to_numpy", "add_at", "einsum"]

_ndarray = np.ndarray
_NUMPY_KINDS = (_ndarray, np.generic, float, int)


def is_numpy(*arrays: Any) -> bool:
    """Whether every array given is a NumPy array, scalar, number or None (NumPy's own namespace).

    >>> import numpy as np
    >>> is_numpy(np.ones(2), 1.0, None), is_numpy([1.0])
    (True, False)
    """
    return all(a is None or isinstance(a, _NUMPY_KINDS) for a in arrays)


def namespace(*arrays: Any) -> ModuleType:
    """The array namespace the arrays given belong to; NumPy for NumPy arrays, numbers and None.

    Other arrays go through ``array_api_compat.array_namespace`` (``pip install
    'dagprop[array-api]'``), or their own ``__array_namespace__`` when it is not installed.
    Arrays of two different libraries are refused, naming both.

    >>> import numpy as np
    >>> namespace(np.float64(2.0)).__name__
    'numpy'
    """
    for a in arrays:  # a loop rather than is_numpy's all(): this runs once per rule call
        if a.__class__ is not _ndarray and a is not None and not isinstance(a, _NUMPY_KINDS):
            return _foreign_namespace(arrays)
    return np


def _foreign_namespace(arrays: tuple) -> ModuleType:
    others = [a for a in arrays if a is not None and not isinstance(a, _NUMPY_KINDS)]
    try:
        import array_api_compat
    except ImportError:
        spaces = {getattr(a, "__array_namespace__", lambda: None)() for a in others}
        if len(spaces) == 1 and None not in spaces:
            return cast(ModuleType, spaces.pop())
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in others}))
        raise GraphError(f"arrays of type {kinds} need array_api_compat: pip install 'dagprop[array-api]'") from None
    try:
        return array_api_compat.array_namespace(*others)
    except TypeError as error:
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in others}))
        raise GraphError(f"arrays from different libraries cannot meet in one op ({kinds}): {error}") from None


def device_of(x: Any) -> Any:
    """The device ``x`` lives on, for new arrays next to it (dask arrays have no ``.device``).

    >>> import numpy as np
    >>> device_of(np.ones(2))
    'cpu'
    """
    try:
        from array_api_compat import device
    except ImportError:
        return x.device
    return device(x)


def constant(xp: ModuleType, array: np.ndarray, like: Any) -> Any:
    """A NumPy ``array`` of constants (a mask, a divisor, a const node's value) in namespace
    ``xp``, on the device of ``like``; NumPy's own arrays stay as they are.

    >>> import numpy as np
    >>> a = np.ones(2)
    >>> constant(np, a, a) is a
    True
    """
    if xp is np:
        return array
    return xp.asarray(array, device=device_of(like))


def lift(values: list, indices: Sequence[int]) -> None:
    """Move the NumPy arrays among ``values[i]`` (``i`` in ``indices``) into the namespace and
    onto the device of the other arrays there, in place: a graph's consts are NumPy arrays,
    and an op on array-api-strict or dask inputs must see them as its own kind.

    >>> import numpy as np
    >>> values = [np.ones(2), np.zeros(2)]
    >>> lift(values, [0, 1]); values[0] is not None   # all NumPy: nothing moves
    True
    """
    foreign = [values[i] for i in indices if values[i] is not None and not isinstance(values[i], _NUMPY_KINDS)]
    if not foreign:
        return
    xp = namespace(*foreign)
    for i in indices:
        if isinstance(values[i], _NUMPY_KINDS):
            values[i] = constant(xp, np.asarray(values[i]), foreign[0])


def is_foreign(value: Any) -> bool:
    """Whether ``value`` is an array of another library than NumPy (it keeps its type through a run).

    >>> import numpy as np
    >>> is_foreign(np.ones(2)), is_foreign([1.0])
    (False, False)
    """
    return not isinstance(value, (_ndarray, np.generic)) and (hasattr(value, "__array_namespace__") or is_lazy(value))


def is_real_floating(array: Any) -> bool:
    """Whether an array (of any namespace) holds real floating-point numbers.

    >>> import numpy as np
    >>> is_real_floating(np.ones(2)), is_real_floating(np.arange(2))
    (True, False)
    """
    kind = getattr(array.dtype, "kind", None)  # NumPy and dask dtypes say it directly
    if kind is not None:
        return kind == "f"
    return bool(namespace(array).isdtype(array.dtype, "real floating"))


def all_finite(array: Any) -> bool:
    """Whether no element is NaN or Inf; True for a lazy array, which is not computed to find out.

    >>> import numpy as np
    >>> all_finite(np.array([1.0, np.inf])), all_finite(np.ones(2))
    (False, True)
    """
    if isinstance(array, _ndarray):
        return bool(np.isfinite(array).all())
    if is_lazy(array):  # checking would compute the whole array, which a lazy run exists to avoid
        return True
    xp = namespace(array)
    return bool(xp.all(xp.isfinite(array)))


def is_lazy(x: Any) -> bool:
    """Whether ``x`` is a dask array: its numbers exist only once something computes them.

    >>> import numpy as np
    >>> is_lazy(np.ones(2))
    False
    """
    dask_array = sys.modules.get("dask.array")  # never imports dask: no dask array exists without it
    return dask_array is not None and isinstance(x, dask_array.Array)


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array, computing a dask array: for drawing, printing and saving, never for the passes.

    >>> import numpy as np
    >>> a = np.ones(2)
    >>> to_numpy(a) is a, to_numpy(3.0)
    (True, array(3.))
    """
    if isinstance(x, _ndarray):
        return x
    if is_lazy(x):
        x = x.compute()
    if is_numpy(x):
        return np.asarray(x)
    try:
        return np.from_dlpack(x)  # no copy for arrays in host memory
    except (TypeError, BufferError, RuntimeError, AttributeError):
        return np.asarray(x)


def add_at(xp: ModuleType, target: Any, indices: Any, values: Any) -> Any:
    """``target`` with ``values`` added at ``target[indices]``, repeated indices adding up (``np.add.at``).

    NumPy adds in place and returns ``target``. Other namespaces cannot write through
    advanced indices, so the sum is built from gathers, one per level of repetition,
    adding in index order as ``np.add.at`` does; ``indices`` must then be NumPy
    indices (ints, slices, NumPy integer or boolean arrays).

    >>> import numpy as np
    >>> add_at(np, np.zeros(3), np.array([0, 2, 0]), 1.0)
    array([2., 0., 1.])
    """
    if xp is np:
        np.add.at(target, indices, values)
        return target
    size = math.prod(target.shape)
    selected = np.arange(size).reshape(target.shape)[_numpy_indices(indices)]
    positions = selected.reshape(-1)
    flat_values = xp.reshape(xp.broadcast_to(xp.asarray(values, dtype=target.dtype), selected.shape), (-1,))
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    starts = np.flatnonzero(np.r_[True, sorted_positions[1:] != sorted_positions[:-1]])
    repeat = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    padded = xp.concat([flat_values, xp.zeros((1,), dtype=flat_values.dtype)])
    for level in range(int(repeat.max(initial=-1)) + 1):
        chosen = repeat == level
        gather = np.full(size, len(order))  # the padding zero wherever this level adds nothing
        gather[sorted_positions[chosen]] = order[chosen]
        target = target + xp.reshape(xp.take(padded, xp.asarray(gather)), target.shape)
    return target


def gather(xp: ModuleType, x: Any, index: Any) -> Any:
    """``x[index]`` for any NumPy index (ints, slices, None, ``...``, lists, NumPy integer or boolean arrays).

    The standard indexes with one integer array at most and no lists, so another library's
    array is indexed by slices as it is, and otherwise by ``take`` at the flat positions the
    index picks (worked out in NumPy, from ``x``'s shape alone): ``add_at``'s counterpart.

    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> gather(xps, xps.asarray([[1.0, 2.0], [3.0, 4.0]]), ([1, 0, 1], 0))
    Array([3., 1., 3.], dtype=array_api_strict.float64)
    """
    if xp is np:
        return x[index]
    parts = index if isinstance(index, tuple) else (index,)
    if all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) and not isinstance(p, (bool, np.bool_))
           for p in parts):
        basic = tuple(int(p) if isinstance(p, np.integer) else p for p in parts)
        return x[basic if any(p is Ellipsis for p in basic) else basic + (Ellipsis,)]
    positions = np.arange(math.prod(x.shape)).reshape(x.shape)[_numpy_indices(index)]
    flat = xp.take(xp.reshape(x, (-1,)), xp.asarray(positions.reshape(-1)), axis=0)
    return xp.reshape(flat, positions.shape)


def _numpy_indices(indices: Any) -> Any:
    if isinstance(indices, tuple):
        return tuple(_numpy_indices(i) for i in indices)
    if indices is None or isinstance(indices, (int, slice, type(Ellipsis), _ndarray, list)):
        return indices
    return to_numpy(indices)


_STANDARD_NAMES = {"absolute": "abs", "power": "pow"}  # ufuncs the standard names otherwise


def ufunc_in(xp: ModuleType, ufunc: np.ufunc) -> Any:
    """The function of namespace ``xp`` that does what the NumPy ufunc does (an op's forward may be a ufunc).

    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> ufunc_in(np, np.absolute) is np.absolute, ufunc_in(xps, np.absolute) is xps.abs
    (True, True)
    """
    if xp is np:
        return ufunc
    name = _STANDARD_NAMES.get(ufunc.__name__, ufunc.__name__)
    function = getattr(xp, name, None)
    if function is None:
        raise OpError(f"the NumPy ufunc {ufunc.__name__} has no function {name!r} in the array namespace "
                      f"{xp.__name__}; give the op a forward written with the array API standard")
    return function


def einsum(xp: ModuleType, subscripts: str, *operands: Any) -> Any:
    """``xp.einsum(subscripts, *operands)`` where the namespace has one (NumPy, dask), else OpError.

    >>> import numpy as np
    >>> einsum(np, "ij,j->i", np.eye(2), np.array([1.0, 2.0]))
    array([1., 2.])
    """
    function = getattr(xp, "einsum", None)
    if function is None:
        raise OpError(f"einsum {subscripts!r} is not in the array namespace {xp.__name__} (it is no part of the "
                      f"array API standard); use NumPy or dask arrays for this op")
    return function(subscripts, *operands)
