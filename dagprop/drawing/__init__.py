"""Drawing graphs: annotated diagrams as DOT text (:mod:`.diagram`), at the tensor level
(:mod:`.tensor`), the element level (:mod:`.element`) or as an overview (:mod:`.overview`),
scopes and opened composites drawn as clusters (:mod:`.clusters`), with their options and
highlights (:mod:`.options`) and look (:mod:`.style`); numbers and matrices as label text
(:mod:`.labels`), all escaping (:mod:`.quoting`), running Graphviz (:mod:`.dot`), path tables
(:mod:`.table`), and the player's page (:mod:`.page`)."""

from __future__ import annotations

from .diagram import digraph, mimebundle, render, to_dot
from .table import PathRow, PathTable, path_table

__all__ = ["to_dot", "digraph", "render", "mimebundle", "path_table", "PathTable", "PathRow"]
