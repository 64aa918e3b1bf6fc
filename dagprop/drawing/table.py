"""Path tables: each path of a gradient, its factors, its contribution and the running sum,
as aligned text for a terminal and as HTML for Jupyter."""

from __future__ import annotations

import html
from typing import Any, Iterable, NamedTuple

import numpy as np

from ..paths import Path
from .labels import format_number

__all__ = ["PathRow", "PathTable", "path_table"]


# An element path's product of local derivatives is the same read in either direction.
FORWARD_AND_BACKWARD = ("Each product of factors is the path's share both ways: of the gradient reaching its "
                        "source (reverse mode) and of the tangent reaching its end when its source moves by 1 "
                        "(forward mode).")


class PathRow(NamedTuple):
    """One row of a :class:`PathTable`."""

    path: Path
    factors: tuple
    contribution: Any
    running_sum: Any


class PathTable(list):
    """Rows ``(path, factors, contribution, running_sum)`` that print as a table.

    A list of :class:`PathRow`; ``str()`` gives an aligned plain-text table and
    Jupyter shows an HTML table. Made by :func:`path_table`.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 2.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> table = dp.path_table(g.paths(x, y))
    >>> [float(row.running_sum) for row in table]
    [2.0, 4.0]
    >>> table._repr_html_().startswith('<table class="dagprop-paths"')
    True
    """

    def __init__(self, rows: Iterable[PathRow] = (), precision: int = 4) -> None:
        super().__init__(rows)
        self.precision = precision

    def _cells(self) -> list[tuple[str, str, str, str, str]]:
        cells = []
        for number, row in enumerate(self, 1):
            cells.append((str(number), row.path.route, _describe_factors(row.path, self.precision),
                          _format_number(row.contribution, self.precision),
                          _format_number(row.running_sum, self.precision)))
        return cells

    def __str__(self) -> str:
        header = ("#", "path", "factors", "contribution", "running sum")
        rows = [header, *self._cells()]
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        right = {0, 3, 4}
        lines = []
        for row in rows:
            cells = [cell.rjust(width) if c in right else cell.ljust(width)
                     for c, (cell, width) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
        lines.insert(1, "  ".join("-" * w for w in widths))
        if not self:
            lines.append("(no paths)")
        elif self[0].path.level == "element":
            lines.append(FORWARD_AND_BACKWARD)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        cell = "padding:2px 10px;vertical-align:top"
        number_cell = f"{cell};text-align:right;white-space:nowrap"
        header = "".join(f'<th style="{cell};text-align:{"right" if h in ("#", "contribution", "running sum") else "left"}">'
                         f"{h}</th>" for h in ("#", "path", "factors", "contribution", "running sum"))
        body = []
        for cells in self._cells():
            number, route, factors, contribution, running = (html.escape(c) for c in cells)
            body.append(f'<tr><td style="{number_cell}">{number}</td>'
                        f'<td style="{cell};white-space:nowrap"><code>{route}</code></td>'
                        f'<td style="{cell}"><code>{factors}</code></td>'
                        f'<td style="{number_cell}"><code>{contribution}</code></td>'
                        f'<td style="{number_cell}"><code>{running}</code></td></tr>')
        if not body:
            body.append(f'<tr><td colspan="5" style="{cell}">(no paths)</td></tr>')
        elif self[0].path.level == "element":
            body.append(f'<tr><td colspan="5" style="{cell}"><em>{html.escape(FORWARD_AND_BACKWARD)}</em></td></tr>')
        return (f'<table class="dagprop-paths" style="border-collapse:collapse"><thead><tr>{header}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')


def path_table(paths: Iterable[Path], precision: int = 4) -> PathTable:
    """A table of paths: each path, its factors, its contribution and the running sum.

    Parameters
    ----------
    paths : iterable of Path
        From :func:`paths` or :func:`top_paths`, in the order to show.
    precision : int
        Significant digits of the numbers shown (the rows keep full precision).

    Returns
    -------
    PathTable
        A list of :class:`PathRow`; printing it gives an aligned text table, and
        Jupyter shows it as HTML. The last running sum is the total.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("add", g.op("mul", x, x, name="sq"), x, name="y")
    >>> g.forward(); g.backward(y)
    >>> print(dp.path_table(g.paths(x, y, index=())))
    #  path          factors  contribution  running sum
    -  ------------  -------  ------------  -----------
    1  x -> sq -> y  6 * 1               6            6
    2  x -> y        1                   1            7
    Each product of factors is the path's share both ways: of the gradient reaching its source (reverse mode) and of the tangent reaching its end when its source moves by 1 (forward mode).

    See Also
    --------
    paths, top_paths
    """
    rows = []
    running: Any = None
    for path in paths:
        if not all(hasattr(path, a) for a in ("nodes", "contribution", "factors", "level")):
            raise TypeError(f"path_table takes Path objects (from g.paths or g.top_paths), got {type(path).__name__}")
        running = path.contribution if running is None else running + path.contribution
        factors = path.factors if path.level == "element" else ()
        rows.append(PathRow(path, factors, path.contribution, running))
    return PathTable(rows, precision)


def _describe_factors(path: Path, precision: int) -> str:
    if path.level == "element":
        return " * ".join(_format_number(f, precision) for f in path.factors) or "(none)"
    return "tensor Jacobians, see .factors" if len(path.nodes) > 1 else "(none)"


def _format_number(x: Any, precision: int = 4) -> str:
    if isinstance(x, np.ndarray) and x.ndim > 0:
        if x.size > 8:
            return f"shape {x.shape}, norm {np.linalg.norm(x):.{precision}g}"
        return np.array2string(x, precision=precision, separator=", ", floatmode="maxprec",
                               max_line_width=10_000).replace("\n", "")
    return format_number(x, precision)
