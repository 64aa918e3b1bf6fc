"""The path queries as methods of :class:`dagprop.Graph` (``g.paths(...)``), from :class:`PathQueries`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from .elements import MAX_SIZE

if TYPE_CHECKING:
    from ..graph import Graph
    from ..node import Node
    from ..run import Run

__all__ = ["PathQueries"]


class PathQueries:
    """Element graphs and paths, as methods of :class:`dagprop.Graph`."""

    _run: Run  # what Graph provides, declared for the type checker

    def element_graph(self: Graph, *, max_size: int | None = MAX_SIZE) -> nx.DiGraph:  # type: ignore[misc]
        """The graph of single elements (neurons), edges weighted by local partial derivatives.

        Needs a forward pass. See :func:`dagprop.paths.element_graph` for the attributes and
        for ``max_size``, the guard against element graphs too large to build.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); y = g.op("mul", x, x, name="y")
        >>> g.forward()
        >>> sorted(g.element_graph().edges(data="weight"))
        [('x[0]', 'y[0]', 2.0), ('x[1]', 'y[1]', 4.0)]
        """
        from .elements import element_graph

        return element_graph(self._run, max_size=max_size)

    def paths(self: Graph, src: Node | str, dst: Node | str, index: Any = None, *, limit: int = 10_000,  # type: ignore[misc]
              max_size: int | None = MAX_SIZE) -> list:
        """Every path from src to dst with the gradient it carries alone; see :func:`dagprop.paths.paths`.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 3.0); y = g.op("add", x * x, x, name="y")
        >>> g.forward(); g.backward(y)
        >>> [(p.route, float(p.contribution)) for p in g.paths(x, y)]
        [('x -[a]-> mul_1 -> y', 3.0), ('x -[b]-> mul_1 -> y', 3.0), ('x -> y', 1.0)]
        """
        from .queries import paths

        return paths(self, src, dst, index, limit=limit, max_size=max_size)

    def count_paths(self: Graph, src: Node | str, dst: Node | str, index: Any = None, *,  # type: ignore[misc]
                    max_size: int | None = MAX_SIZE) -> int:
        """The exact number of paths from src to dst, without listing them; see :func:`dagprop.paths.count_paths`.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); h = x = g.param("x", 1.0)
        >>> for _ in range(64):
        ...     h = h + h
        >>> g.count_paths(x, h) == 2 ** 64
        True
        """
        from .queries import count_paths

        return count_paths(self, src, dst, index, max_size=max_size)

    def top_paths(self: Graph, src: Node | str, dst: Node | str, k: int, index: Any = None, *,  # type: ignore[misc]
                  max_size: int | None = MAX_SIZE, max_steps: int | None = None) -> list:
        """The k paths from src to dst with the largest contributions; see :func:`dagprop.paths.top_paths`.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph(); x = g.param("x", 1.0); y = g.op("add", 5 * x, 2 * x, name="y")
        >>> g.forward(); g.backward(y)
        >>> [float(p.contribution) for p in g.top_paths(x, y, 1)]
        [5.0]
        """
        from .queries import top_paths

        return top_paths(self, src, dst, k, index, max_size=max_size, max_steps=max_steps)
