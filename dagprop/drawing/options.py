"""What a diagram is asked for: its options, checked once, and the nodes, edges and paths
to highlight, each path in its own colour."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import networkx as nx
import numpy as np

from ..errors import RenderError
from ..graph import Graph, Node
from .style import PALETTE

if TYPE_CHECKING:
    from ..run import Run

LEVELS = ("tensor", "element")
EDGE_LABELS = ("auto", "grad", "tangent", "value", "weight", None)
SHOWABLE = ("value", "grad", "tangent")
RANKDIRS = ("LR", "RL", "TB", "BT")
# an element name as a user may type it ("W1[2, 0]", "x[-1]"), or a 0-d node's escaped name ("W[0][]")
ELEMENT = re.compile(r"^(?P<tensor>.+)\[(?P<index>(?:-?\d+(?:,\s*-?\d+)*)?)\]$")


# -- options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The drawing options of :func:`dagprop.to_dot`, checked by :func:`options`."""

    show: tuple[str, ...]
    edge_labels: str | None
    precision: int
    rankdir: str
    title: str | None
    max_matrix: tuple[int, int]
    max_nodes: int | None
    legend: bool
    # the slice to draw of arrays of 3 or more axes: for every one whose extra axes it indexes (a tuple),
    # or for the named nodes (node name -> tuple); None: none
    slices: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None
    depth: int | None = None  # scopes at this depth (1: the outermost) drawn as one box each

    def slice_for(self, name: str, ndim: int) -> tuple[int, ...] | None:
        """The index of the slice drawn of node ``name``'s arrays (``ndim`` axes), or None.

        A tuple given for every array applies to those it leaves a matrix of (``ndim`` is its
        length plus 2); one given for a node applies to it whatever its ``ndim``.

        Examples
        --------
        >>> def slice_for(slices, name, ndim):
        ...     return options((), "auto", 4, "LR", None, (6, 6), None, True, "tensor", slices=slices).slice_for(name, ndim)
        >>> slice_for((0, 0), "conv1", 4), slice_for((0, 0), "x", 3), slice_for({"x": [1]}, "x", 3)
        ((0, 0), None, (1,))
        """
        if self.slices is None:
            return None
        if isinstance(self.slices, tuple):
            return self.slices if ndim == len(self.slices) + 2 else None
        return self.slices.get(name)

    @property
    def flows(self) -> tuple[str, ...]:
        """The derivatives the diagram depicts, of "grad" (flowing back) and "tangent" (pushed forward).

        A node none of them reached is drawn grey, and an edge carrying one gets a track
        in its colour. Gradients are depicted unless only tangents were asked for, as
        diagrams did before forward mode.

        Examples
        --------
        >>> def flows(show, edge_labels="auto"):
        ...     return options(show, edge_labels, 4, "LR", None, (6, 6), None, True, "tensor").flows
        >>> flows(("value", "grad")), flows(("value", "tangent")), flows(("value", "grad", "tangent"))
        (('grad',), ('tangent',), ('grad', 'tangent'))
        >>> flows(("value",)), flows(("value", "tangent"), edge_labels="grad")
        (('grad',), ('grad', 'tangent'))
        """
        tangent = "tangent" in self.show or self.edge_labels == "tangent"
        grad = "grad" in self.show or self.edge_labels == "grad" or not tangent
        return ("grad",) * grad + ("tangent",) * tangent


def default_edge_labels(show: tuple[str, ...]) -> str:
    """What ``edge_labels="auto"`` labels edges with: the tangent each carried forward when ``show``
    has tangents but no gradients, else the gradient each carried back.

    Examples
    --------
    >>> default_edge_labels(("value", "tangent")), default_edge_labels(("value", "grad", "tangent"))
    ('tangent', 'grad')
    """
    return "tangent" if "tangent" in show and "grad" not in show else "grad"


def present_flows(flows: tuple[str, ...], any_grad: bool, any_tangent: bool) -> tuple[str, ...]:
    """The derivatives of ``flows`` (see :attr:`Options.flows`) the run drawn holds any of.

    Examples
    --------
    >>> present_flows(("grad", "tangent"), False, True), present_flows(("grad",), False, True)
    (('tangent',), ())
    """
    held = {"grad": any_grad, "tangent": any_tangent}
    return tuple(flow for flow in flows if held[flow])


def unreached(kind: str, present: tuple[str, ...], numbers: Mapping[str, Any]) -> bool:
    """Whether a node of ``kind`` is drawn grey: none of the derivatives ``present`` (gradient,
    tangent) reached it, ``numbers`` giving its own (None: none); with none present, whether it
    is an input or constant, which no derivative is asked of.

    Examples
    --------
    >>> unreached("op", ("grad",), {"grad": None}), unreached("op", ("grad", "tangent"), {"grad": None, "tangent": 1.0})
    (True, False)
    >>> unreached("input", (), {}), unreached("param", (), {})
    (True, False)
    """
    if not present:
        return kind in ("input", "const")
    return all(numbers.get(flow) is None for flow in present)


def options(show: Iterable[str], edge_labels: str | None, precision: int, rankdir: str, title: str | None,
            max_matrix: tuple[int, int], max_nodes: int | None, legend: bool, level: str, *,
            slices: Any = None, depth: int | None = None) -> Options:
    """The options checked, with a RenderError naming the first one that is not understood."""
    if isinstance(show, str):
        show = (show,)
    show = tuple(show or ())
    for item in show:
        if item not in SHOWABLE:
            raise RenderError(f"show= takes some of {SHOWABLE}, got {item!r}")
    if edge_labels not in EDGE_LABELS:
        raise RenderError(f"edge_labels= must be one of {EDGE_LABELS}, got {edge_labels!r}")
    if edge_labels == "auto":
        edge_labels = default_edge_labels(show)
    if level not in LEVELS:
        raise RenderError(f"level= must be 'tensor' or 'element', got {level!r}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"rankdir= must be one of {RANKDIRS}, got {rankdir!r}")
    if isinstance(precision, bool) or not isinstance(precision, int) or not 1 <= precision <= 17:
        raise RenderError(f"precision= must be an int from 1 to 17, got {precision!r}")
    try:
        rows, cols = (int(n) for n in max_matrix)
    except (TypeError, ValueError):
        raise RenderError(f"max_matrix= must be (rows, columns), got {max_matrix!r}") from None
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise RenderError(f"max_nodes= must be a positive int or None, got {max_nodes!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise RenderError(f"depth= must be a positive int (1: one box per outermost scope) or None, got {depth!r}")
    if level == "element" and (slices is not None or depth is not None):
        raise RenderError(f"{'slices=' if slices is not None else 'depth='} belongs to the tensor level: an element "
                          f"graph draws single numbers (drop it, or draw level='tensor')")
    return Options(show, edge_labels, precision, rankdir, title, (max(rows, 1), max(cols, 1)), max_nodes, legend,
                   checked_slices(slices), depth)


def checked_slices(slices: Any) -> tuple[int, ...] | dict[str, tuple[int, ...]] | None:
    """``slices=`` as :class:`Options` keeps it: None, a tuple of ints, or node names -> tuples of ints.

    Examples
    --------
    >>> checked_slices([0, 1]), checked_slices({"conv1": (0, 0)}), checked_slices(None)
    ((0, 1), {'conv1': (0, 0)}, None)
    >>> checked_slices((0.5,))
    Traceback (most recent call last):
    ...
    dagprop.errors.RenderError: slices= takes a tuple of ints, such as (0, 0) for example 0, channel 0, or node names mapped to such tuples; got (0.5,)
    """
    if slices is None:
        return None

    def index(item: Any) -> tuple[int, ...] | None:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            return (int(item),)
        if isinstance(item, (tuple, list)) and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                                                    for k in item):
            return tuple(int(k) for k in item)
        return None

    if isinstance(slices, Mapping):
        checked = {name: index(item) for name, item in slices.items()}
        if all(isinstance(name, str) for name in checked) and None not in checked.values():
            return checked  # type: ignore[return-value]
    else:
        checked_index = index(slices)
        if checked_index is not None and checked_index:
            return checked_index
    raise RenderError(f"slices= takes a tuple of ints, such as (0, 0) for example 0, channel 0, or node names "
                      f"mapped to such tuples; got {slices!r}")


# -- highlighting --------------------------------------------------------------------------


@dataclass
class Highlight:
    """Drawn names -> colour, and drawn edges -> slot (None: every slot) -> colours."""

    nodes: dict[str, str] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[int | None, list[str]]] = field(default_factory=dict)

    def add_edge(self, source: str, target: str, slot: int | None, colour: str) -> None:
        colours = self.edges.setdefault((source, target), {}).setdefault(slot, [])
        if colour not in colours:
            colours.append(colour)

    def edge_colours(self, source: str, target: str, slot: int | None) -> list[str]:
        """The colours of argument ``slot`` of the edge (None: of any slot, as element edges sum slots)."""
        slots = self.edges.get((source, target), {})
        if slot is None:
            return list(dict.fromkeys(c for colours in slots.values() for c in colours))
        return slots.get(slot, []) + [c for c in slots.get(None, []) if c not in slots.get(slot, [])]


def is_path(item: Any) -> bool:
    return hasattr(item, "nodes") and not isinstance(item, (str, tuple, list, nx.Graph, Graph))


def highlights(highlight: Any, resolve: Callable[[str, bool], list[str]]) -> Highlight:
    """Sort ``highlight`` into node and edge colours.

    ``resolve(name, is_node)`` maps a name to the drawn names; ``is_node`` is true when
    the item was a :class:`~dagprop.Node`, so the name certainly means a node, never an
    element whose name looks the same.
    """
    if highlight is None:
        return Highlight()
    if isinstance(highlight, (str, Node)) or is_path(highlight) or is_edge(highlight):
        items = [highlight]
    else:
        items = list(highlight)
    result = Highlight()
    next_colour = iter(PALETTE * (len(items) // len(PALETTE) + 1))
    plain_colour = None

    def drawn(item: Any) -> list[str]:
        return resolve(name_of(item), isinstance(item, Node))

    for item in items:
        if is_path(item):
            colour = next(next_colour)
            for node in item.nodes:
                for name in drawn(node):
                    result.nodes.setdefault(name, colour)
            edges = getattr(item, "edges", None)
            if edges is None:
                edges = [(a, b, None) for a, b in zip(item.nodes[:-1], item.nodes[1:])]
            for source, target, slot in edges:
                for s in drawn(source):
                    for t in drawn(target):
                        result.add_edge(s, t, slot, colour)
            continue
        if plain_colour is None:
            plain_colour = next(next_colour)
        if is_edge(item):
            slot = item[2] if len(item) == 3 else None
            for s in drawn(item[0]):
                for t in drawn(item[1]):
                    result.add_edge(s, t, slot, plain_colour)
        else:
            for name in drawn(item):
                result.nodes.setdefault(name, plain_colour)
    return result


def is_edge(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) in (2, 3) and all(isinstance(x, (str, Node)) for x in item[:2])


def name_of(item: Any) -> str:
    if isinstance(item, Node):
        return item.name
    if isinstance(item, str):
        return item
    raise RenderError(f"highlight= takes node names, nodes, (source, consumer[, slot]) edges or paths; "
                      f"got {item!r}")
