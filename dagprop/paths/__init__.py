"""Gradients split into their paths: the element graph (:mod:`.elements`), the path algorithms
shared by both levels (:mod:`.search`), and the queries users call (:mod:`.queries`)."""

from __future__ import annotations

from .elements import element_graph, element_name, split_element_name
from .queries import Path, count_paths, paths, top_paths

__all__ = ["Path", "paths", "count_paths", "top_paths", "element_graph", "element_name", "split_element_name"]
