"""Numbers and arrays as label text: short numbers, aligned matrices, summaries, exact tooltips."""

from __future__ import annotations

import functools
import math
from typing import Any, Iterable

import numpy as np

from . import quoting

__all__ = ["format_number", "shown_number", "noise_scale", "matrix_html", "column_widths", "summary_text",
           "full_text", "sliced", "slice_text"]

MONO = "DejaVu Sans Mono,Courier New,Courier,monospace"
NOISE = 1e-12  # a number this small next to the largest of its array is rounding noise


def format_number(x: Any, precision: int = 4) -> str:
    """A number with ``precision`` significant digits, as short as possible.

    Examples
    --------
    >>> format_number(3.14159265), format_number(-0.0), format_number(2.0), format_number(1e-7, 3)
    ('3.142', '0', '2', '1e-07')
    >>> format_number(float("nan")), format_number(float("-inf"))
    ('nan', '-inf')
    """
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.{precision}g}"


def noise_scale(array: Any) -> float:
    """The scale against which a number of ``array`` is judged rounding noise: its largest finite |entry|.

    The tensor view judges each number against the array it is drawn in, the element
    view each element against the array of its tensor, so both show the same numbers as 0.

    Examples
    --------
    >>> noise_scale([[1.5, -3.0], [float("inf"), float("nan")]]), noise_scale([]), noise_scale(-2.0)
    (3.0, 0.0, 2.0)
    """
    magnitudes = np.abs(np.asarray(array, dtype=float))
    finite = magnitudes[np.isfinite(magnitudes)]
    return float(finite.max()) if finite.size else 0.0


def shown_number(x: Any, scale: float, precision: int = 4) -> str:
    """``x`` as a label shows it: 0 when it is rounding noise, at most 1e-12 of ``scale``
    (see :func:`noise_scale`), else :func:`format_number`.

    The one rule of every diagram: the tensor view and the element view of a network
    show the same gradient as 0 or as the same number.

    Examples
    --------
    >>> shown_number(-1.372e-18, 0.146), shown_number(-1.372e-18, 1e-17), shown_number(0.25, 0.25, 2)
    ('0', '-1.372e-18', '0.25')
    >>> shown_number(float("nan"), 1.0), shown_number(5e-13, 0.0)
    ('nan', '5e-13')
    """
    x = float(x)
    return format_number(0.0 if abs(x) <= NOISE * scale else x, precision)


def full_text(array: Any) -> str:
    """The whole array for a tooltip, every number exact (numpy's summary past 1000 entries)."""
    array = np.asarray(array)
    if array.ndim == 0:
        return exact(array.item())
    if array.size > 1000:
        return np.array2string(array, precision=8, threshold=1000, max_line_width=100, separator=", ")
    return nested(array.tolist(), array.ndim)


def exact(x: Any) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def nested(items: Any, depth: int) -> str:
    if depth == 1:
        return "[" + ", ".join(exact(x) for x in items) + "]"
    separator = ",\n" if depth == 2 else ",\n\n"
    return "[" + separator.join(nested(item, depth - 1) for item in items) + "]"


def summary_text(array: np.ndarray, precision: int) -> list[str]:
    """An array too large to draw as numbers: its smallest, mean and largest entries, then its norm
    (the square root of the sum of squares), over its finite entries.

    Examples
    --------
    >>> summary_text(np.arange(6.0).reshape(1, 2, 3), 4)
    ['min 0  mean 2.5  max 5', 'norm 7.416']
    >>> summary_text(np.array([[1.0, -1.0 + 1e-17], [np.pi, -np.pi]]), 4)[0]
    'min -3.142  mean 0  max 3.142'
    >>> summary_text(np.array([1.0, np.inf]), 4), summary_text(np.zeros((0, 2)), 4)
    (['min 1  mean 1  max 1', 'norm 1', '1 not finite'], ['empty (0, 2)'])
    """
    if array.size == 0:
        return [f"empty {array.shape}"]
    finite = array[np.isfinite(array)]
    f = functools.partial(format_number, precision=precision)
    if finite.size == 0:
        return [f"{array.shape}, no finite entries"]
    # the mean of a gradient that sums to zero comes out as rounding noise: shown as 0, as in matrices
    mean = shown_number(finite.mean(), noise_scale(finite), precision)
    lines = [f"min {f(finite.min())}  mean {mean}  max {f(finite.max())}",
             f"norm {f(np.linalg.norm(finite))}"]
    if finite.size < array.size:
        lines.append(f"{array.size - finite.size} not finite")
    return lines


def sliced(array: Any, index: tuple[int, ...] | None) -> np.ndarray | None:
    """``array[index]`` (the leading axes indexed), or None when ``index`` is None or does not fit its shape.

    Examples
    --------
    >>> sliced(np.arange(24).reshape(2, 3, 4), (1, -1)).tolist()
    [20, 21, 22, 23]
    >>> sliced(np.zeros((2, 3)), (2,)) is None, sliced(np.zeros((2, 3)), (0, 0, 0)) is None
    (True, True)
    """
    if index is None:
        return None
    array = np.asarray(array)
    if len(index) > array.ndim or any(not -n <= k < n for k, n in zip(index, array.shape)):
        return None
    return array[tuple(index)]


def slice_text(index: tuple[int, ...], ndim: int) -> str:
    """How a slice is captioned: the index, then ``:`` for each axis kept.

    Examples
    --------
    >>> slice_text((0, 2), 4), slice_text((1,), 1)
    ('[0, 2, :, :]', '[1]')
    """
    return "[" + ", ".join([str(k) for k in index] + [":"] * (ndim - len(index))) + "]"


def shown_grid(array: np.ndarray, max_matrix: tuple[int, int]) -> np.ndarray | None:
    """``array`` as a 2-D grid of numbers if it is small enough to draw in full, else None."""
    if array.ndim > 2 or array.size == 0:
        return None
    grid = array.reshape(1, -1) if array.ndim < 2 else array
    if grid.shape[0] > max_matrix[0] or grid.shape[1] > max_matrix[1]:
        return None
    return grid


def column_widths(arrays: Iterable[Any], precision: int, max_matrix: tuple[int, int]) -> list[int] | None:
    """Widths that line up the columns of several same-shaped arrays (a value and its gradient)."""
    widths: list[int] | None = None
    for array in arrays:
        if array is None:
            continue
        grid = shown_grid(np.asarray(array), max_matrix)
        if grid is None or np.asarray(array).ndim == 0:
            return None
        cells = [[len(text) for text in row] for row in cell_texts(grid, precision)]
        columns = [max(column) for column in zip(*cells)]
        if widths is None:
            widths = columns
        elif len(widths) != len(columns):
            return None
        else:
            widths = [max(a, b) for a, b in zip(widths, columns)]
    return widths


def cell_texts(grid: np.ndarray, precision: int) -> list[list[str]]:
    """The numbers of a matrix as text; rounding noise (at most 1e-12 of the largest entry) shows as 0.

    >>> cell_texts(np.array([[1.5, -6.7e-16], [2.0, 3.0]]), 4)
    [['1.5', '0'], ['2', '3']]
    >>> cell_texts(np.array([[np.inf, 0.5]]), 4)  # an infinite entry does not make the others noise
    [['inf', '0.5']]
    """
    scale = noise_scale(grid)
    return [[shown_number(x, scale, precision) for x in row] for row in grid]


def matrix_html(array: Any, colour: str, precision: int, max_matrix: tuple[int, int], size: int = 10,
                widths: list[int] | None = None, brief: bool = False, crop: bool = False) -> str:
    """An array as HTML-like label text: a bracketed matrix in a monospaced font if it is small
    enough (columns right-aligned, to ``widths`` when given), otherwise a summary (its norm
    only, when ``brief``: edge labels stay one line). With ``crop``, a vector or matrix too
    large is drawn as its top-left corner, ``…`` and ``⋮`` marking what is left out.

    Examples
    --------
    >>> print(matrix_html(np.arange(12.0).reshape(3, 4), "#000", 4, (2, 2), crop=True)
    ...       .replace('<BR ALIGN="LEFT"/>', "|"))
    <FONT FACE="DejaVu Sans Mono,Courier New,Courier,monospace" COLOR="#000" POINT-SIZE="10">[ 0  1 … ]|[ 4  5 … ]|  ⋮|</FONT>
    >>> matrix_html(np.ones((2, 3, 8, 8)), "#000", 4, (6, 6), brief=True)
    '<FONT COLOR="#000" POINT-SIZE="10">norm 19.6</FONT>'
    """
    array = np.asarray(array)
    if array.ndim == 0 or (array.size == 1 and array.ndim > 2):
        return (f'<FONT COLOR="{colour}" POINT-SIZE="{size}">'
                f"{quoting.html(format_number(array.reshape(()), precision))}</FONT>")
    grid = shown_grid(array, max_matrix)
    cropped_rows = cropped_columns = False
    if grid is None and crop and array.ndim <= 2 and array.size:
        whole = array.reshape(1, -1) if array.ndim < 2 else array
        grid = whole[:max_matrix[0], :max_matrix[1]]
        cropped_rows, cropped_columns = whole.shape[0] > grid.shape[0], whole.shape[1] > grid.shape[1]
        scale = noise_scale(whole)
    if grid is None:
        lines = [quoting.html(line) for line in summary_text(array, precision)]
        if brief and len(lines) > 1:
            lines = lines[1:2]
        # several lines end with a break each, so that the last is left-aligned like the others
        body = "".join(line + '<BR ALIGN="LEFT"/>' for line in lines) if len(lines) > 1 else lines[0]
        return f'<FONT COLOR="{colour}" POINT-SIZE="{size}">{body}</FONT>'

    if cropped_rows or cropped_columns:
        texts = [[shown_number(x, scale, precision) for x in row] for row in grid]
    else:
        texts = cell_texts(grid, precision)
    if widths is None or len(widths) != grid.shape[1]:
        widths = [max(len(t) for t in column) for column in zip(*texts)]
    ellipsis = " \u2026" if cropped_columns else ""
    lines = ["[ " + "  ".join(t.rjust(w) for t, w in zip(row, widths)) + ellipsis + " ]" for row in texts]
    if cropped_rows:
        lines.append("  \u22ee")
    body = "".join(quoting.html(line) + '<BR ALIGN="LEFT"/>' for line in lines)
    return f'<FONT FACE="{MONO}" COLOR="{colour}" POINT-SIZE="{size}">{body}</FONT>'
