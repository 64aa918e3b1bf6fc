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

from types import ModuleType
from typing import Any

import numpy as np

from .errors import GraphError

__all__ = ["namespace", "is_numpy"]

_ndarray = np.ndarray


def is_numpy(*arrays: Any) -> bool:
    """Whether every array given is a NumPy array, scalar, number or None (NumPy's own namespace).

    >>> import numpy as np
    >>> is_numpy(np.ones(2), 1.0, None), is_numpy([1.0])
    (True, False)
    """
    return all(a is None or isinstance(a, (_ndarray, np.generic, float, int)) for a in arrays)


def namespace(*arrays: Any) -> ModuleType:
    """The array namespace the arrays given belong to; NumPy for NumPy arrays, numbers and None.

    Other arrays go through ``array_api_compat.array_namespace`` (``pip install
    'dagprop[array-api]'``), or their own ``__array_namespace__`` when it is not installed.
    Arrays of two different libraries are refused, naming both.

    >>> import numpy as np
    >>> namespace(np.float64(2.0)).__name__
    'numpy'
    """
    if is_numpy(*arrays):
        return np
    others = [a for a in arrays if a is not None and not isinstance(a, (_ndarray, np.generic, float, int))]
    try:
        import array_api_compat
    except ImportError:
        spaces = {getattr(a, "__array_namespace__", lambda: None)() for a in others}
        if len(spaces) == 1 and None not in spaces:
            return spaces.pop()
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in others}))
        raise GraphError(f"arrays of type {kinds} need array_api_compat: pip install 'dagprop[array-api]'") from None
    try:
        return array_api_compat.array_namespace(*others)
    except TypeError as error:
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in others}))
        raise GraphError(f"arrays from different libraries cannot meet in one op ({kinds}): {error}") from None
