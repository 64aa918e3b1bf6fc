"""Annotated diagrams: a graph in, DOT text out; Graphviz only turns the text into a picture.

:func:`to_dot` is pure: it reads a graph (or an element graph) and the :class:`~dagprop.Run`
whose numbers to draw, and returns DOT text that is the same byte for byte for the
same input. :mod:`dagprop.drawing.dot` is the only code that runs the ``dot`` binary,
with a time limit; :mod:`dagprop.drawing.labels` writes numbers and matrices as label
text. :func:`render` builds the text and has it drawn.

What a tensor-level diagram shows:

* each node: its name, op (or kind) and shape, its value, its gradient (red) and,
  after forward mode (:meth:`Graph.jvp`), its tangent (blue); small arrays in full as
  matrices, larger ones summarised (min, mean, max, norm), with ``slices=`` one slice
  of them as a small matrix; params, inputs, constants and ops each have their own
  look; leaves without a gradient (or tangent) are grey; composite ops that can be
  opened have a double border; the nodes of a backward pass built as nodes
  (``backward(create_graph=True)``) are red-dashed, each holding a gradient saying whose;
* each edge: the gradient that flowed back along it (red), the tangent pushed
  forward along it (blue), or the forward value;
* a node that feeds several consumers: each gradient contribution and their sum;
  a node with several inputs carrying tangents: each tangent contribution and their sum;
* with ``expand=``, each opened composite inside a cluster named after its node;
* each scope (:meth:`Graph.scope`) as a cluster named after it, nested scopes nested,
  opened composites inside the scope of their node; with ``collapse=``, chosen scopes
  as one box each (name, node count, op mix, the tensors leaving it), with the edges
  crossing into and out of it; with ``depth=``, every scope at that depth so;
* a name shortened inside a cluster only while no other box has the same title;
* in SVG, a tooltip on every node and edge with the full arrays.

All escaping goes through :mod:`dagprop.drawing.quoting`; node identifiers are generated
(``n0``, ``n1``...), so no user string ever becomes DOT syntax.
"""

from __future__ import annotations

import html as html_text
import itertools
import re
import warnings
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Protocol

import graphviz
import networkx as nx
import numpy as np

from ..errors import LargeGraphWarning, RenderError
from ..graph import Graph, Node
from ..run import Run
from . import quoting
from .clusters import drawn_scopes
from .dot import pipe, write
from .element import ElementDrawing, ElementNumbers
from .options import Options, is_edge, is_path, options as checked_options
from .overview import OverviewDrawing
from .labels import format_number
from .style import (BACKWARD_FILL, CAPTION, CLUSTER_COLOUR, COLOUR_NAMES, FAINT, GREY, GREYED_LOOK, INK, PALETTE,
                    PALETTE_NAMES, RED, TANGENT, WEIGHT, dot_attrs, shape_text)
from .tensor import TensorDrawing

if TYPE_CHECKING:
    from ..expand import Expansion

__all__ = ["to_dot", "digraph", "render", "mimebundle", "folded_dot"]


class Drawing(Protocol):
    """What every kind of diagram provides: whether its run holds gradients, which derivatives it
    draws that its run holds (of "grad" and "tangent"), and its DOT statements."""

    @property
    def any_grad(self) -> bool: ...

    @property
    def drawn_flows(self) -> tuple[str, ...]: ...

    def body(self) -> list[str]: ...


def digraph(graph: Graph | nx.DiGraph, *, show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "auto",
            precision: int = 4, rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (),
            title: str | None = None, level: str = "tensor", max_matrix: tuple[int, int] = (6, 6),
            max_nodes: int | None = 300, run: Run | None = None, legend: bool = True,
            collapse: Iterable[str] = (), depth: int | None = None, slices: Any = None) -> graphviz.Digraph:
    """The diagram of ``graph`` as a ``graphviz.Digraph`` (its ``.source`` is :func:`to_dot`'s text).

    Takes the same arguments as :func:`to_dot`. Runs no binary.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> y = g.param("x", 2.0) * 3.0
    >>> d = digraph(g)
    >>> type(d).__name__, d.source == to_dot(g)
    ('Digraph', True)
    """
    from ..expand import expanded
    from ..paths import element_graph as element_graph_of

    options = checked_options(show, edge_labels, precision, rankdir, title, max_matrix, max_nodes, legend, level,
                              slices=slices, depth=depth)
    highlight = list(highlight) if isinstance(highlight, Iterator) else highlight  # read by drawing and legend
    drawing: Drawing
    if isinstance(graph, Graph):
        if run is not None and run.graph is not graph:
            raise RenderError("run= must be a record of the graph drawn (graph.run, or one made from it)")
        opened = expand if isinstance(expand, bool) or expand is None else tuple(expand)
        drawn = graph
        if opened:
            if run is not None:
                raise RenderError("run= and expand= cannot be combined: an opened graph is a copy with a run of its "
                                  "own; draw graph.expanded(...) and pass one of its records instead")
            drawn = expanded(graph, None if opened is True else opened)
        scopes = drawn_scopes(graph, drawn)
        if level == "element":
            _no_collapse(collapse, "the element level")
            element_graph = element_graph_of(run or drawn.run)
            drawing = _element_drawing(element_graph, run, options, highlight, {n.name: n.kind for n in drawn},
                                       getattr(drawn, "expansions", None), scopes)
        else:
            drawing = _tensor_drawing(graph, drawn, run, options, highlight, scopes, collapse)
    elif isinstance(graph, nx.DiGraph) and not isinstance(graph, nx.MultiDiGraph):
        level = "element"
        _no_collapse(collapse, "an element graph")
        drawing = _element_drawing(graph, run, options, highlight, {}, None, None)
    else:
        raise RenderError(f"can draw a dagprop.Graph or an element graph (networkx.DiGraph), got "
                          f"{type(graph).__name__}")
    return _digraph(options, drawing, level, highlight)


def _no_collapse(collapse: Iterable[str], what: str) -> None:
    if collapse:
        raise RenderError(f"collapse= draws scopes as boxes at the tensor level; {what} has no boxes to "
                          f"collapse into (drop collapse=, or draw level='tensor')")


def _element_drawing(element_graph: nx.DiGraph, run: Run | None, options: Options, highlight: Any,
                     kinds: Mapping[str, str], expansions: Mapping[str, Expansion] | None,
                     scopes: Mapping[str, tuple[str, ...]] | None) -> ElementDrawing:
    drawing = ElementDrawing(element_graph, ElementNumbers(element_graph, run), options, highlight, kinds,
                             expansions, scopes)
    count = element_graph.number_of_nodes()
    if options.max_nodes is not None and count > options.max_nodes:
        warnings.warn(f"the element graph has {count} nodes, more than max_nodes={options.max_nodes}: drawing "
                      f"names only, without numbers; pass max_nodes=None to draw everything", LargeGraphWarning,
                      stacklevel=4)
        drawing.compact = True
    return drawing


def _tensor_drawing(source: Graph, drawn: Graph, run: Run | None, options: Options, highlight: Any,
                    scopes: Mapping[str, tuple[str, ...]], collapse: Iterable[str]) -> Drawing:
    """The tensor-level drawing of ``drawn`` (``source`` or its opened copy), folded when too large."""
    tensor = TensorDrawing(drawn, run or drawn.run, options, highlight, scopes, collapse)
    count = tensor.drawn_count
    if options.max_nodes is None or count <= options.max_nodes:
        return tensor
    drawing, view = _folded(source, run or source.run, options, highlight, fold_highlighted=False,
                            collapse=collapse)
    warnings.warn(f"the graph has {count} nodes, more than max_nodes={options.max_nodes}: drawing {view}; "
                  f"pass max_nodes=None to draw everything", LargeGraphWarning, stacklevel=4)
    return drawing


def _folded(graph: Graph, run: Run, options: Options, highlight: Any, fold_highlighted: bool,
            collapse: Iterable[str] = ()) -> tuple[Drawing, str]:
    """The collapsed view of ``graph`` (composites folded), or an overview when even that is too large;
    and what it is, in words."""
    tensor = TensorDrawing(graph, run, options, highlight, collapse=collapse)
    tensor.collapse(fold_highlighted)
    if options.max_nodes is None or tensor.drawn_count <= options.max_nodes:
        return tensor, "a collapsed view (composites folded, chains of single-input ops summarised, arrays summarised)"
    overview = OverviewDrawing(graph, tensor.run, tensor.highlight, options.flows)
    return overview, (f"an overview: one box per band of depth ({len(overview.bands)} boxes), counting nodes, ops "
                      f"and gradients")


def folded_dot(graph: Graph, *, run: Run | None = None, highlight: Any = (), max_nodes: int = 300, precision: int = 4,
               rankdir: str = "LR", legend: bool = True, show: Iterable[str] = ("value", "grad")) -> tuple[str, str]:
    """The view :func:`to_dot` draws of a graph above ``max_nodes``, folded the same way whatever is highlighted.

    Chains of single-input ops are summarised as one node (a highlighted node inside
    one highlights that node), or, when the graph stays above ``max_nodes``, bands of
    depth are counted. Pictures of different runs of one graph so share one layout:
    the player draws each frame of a large graph this way.

    Parameters
    ----------
    graph, run, highlight, max_nodes, precision, rankdir, legend, show
        As in :func:`to_dot`; edges are labelled as ``edge_labels="auto"`` labels them.

    Returns
    -------
    (str, str)
        The DOT text, and what the view is, in words.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); h = g.param("x", 1.0)
    >>> for _ in range(6):
    ...     h = h.tanh()
    >>> dot, view = folded_dot(g, highlight=["tanh_3"], max_nodes=3)
    >>> view.startswith("a collapsed view"), "5 ops summarised" in dot, dot.count("penwidth=3")
    (True, True, 1)
    """
    options = checked_options(show, "auto", precision, rankdir, None, (6, 6), max_nodes, legend, "tensor")
    highlight = list(highlight) if isinstance(highlight, Iterator) else highlight
    drawing, view = _folded(graph, run or graph.run, options, highlight, fold_highlighted=True)
    return _digraph(options, drawing, "tensor", highlight).source, view


def _digraph(options: Options, drawing: Drawing, level: str, highlight: Any) -> graphviz.Digraph:
    body = drawing.body()
    lines = _preamble(options, _legend(options, drawing, body, highlight), level) + body
    return graphviz.Digraph(name="dagprop", body=[f"\t{line}\n" for line in lines])


def _preamble(options: Options, legend: list[str], level: str) -> list[str]:
    graph_attrs = [("rankdir", options.rankdir), ("fontname", quoting.quote("Helvetica")), ("nodesep", "0.35"),
                   ("ranksep", "0.55"), ("bgcolor", quoting.quote("white")), ("pad", "0.2")]
    if level == "element":
        # a second crossing minimisation across clusters would undo the index order of each tensor
        graph_attrs.append(("remincross", "false"))
    label_lines = []
    if options.title is not None:
        label_lines.append(f'<FONT POINT-SIZE="16"><B>{quoting.html_lines(options.title)}</B></FONT>')
    label_lines += legend
    if label_lines:
        graph_attrs += [("labelloc", "t"), ("labeljust", "l"), ("label", "<" + "<BR/>".join(label_lines) + ">")]
    return [f"graph [{dot_attrs(graph_attrs)}]",
            f"node [fontname={quoting.quote('Helvetica')} fontsize=11 margin={quoting.quote('0.1,0.05')}]",
            f"edge [fontname={quoting.quote('Helvetica')} fontsize=9 arrowsize=0.7 color={quoting.quote('#555555')}]"]


# -- the legend: what each encoding the picture uses means, read off its DOT statements

LEGEND_WIDTH = 150  # characters on a legend line
LEGEND_PATHS = len(PALETTE)  # paths described one by one; the palette starts again after them
ARROW = " \u2192 "
_EDGE = re.compile(r"^\s*\w+ -> \w+ \[")
_NODE = re.compile(r"^\s*(?!graph |node |edge )\w+ \[")
_CLUSTER = re.compile(r"^\s*graph \[")
_SLOT = re.compile(f'<FONT COLOR="{re.escape(CAPTION)}" POINT-SIZE="8">(.*?)</FONT>')
_LEAVING = re.compile(f'<FONT COLOR="{re.escape(INK)}" POINT-SIZE="8">(.*?)</FONT>')


def _legend(options: Options, drawing: Drawing, body: list[str], highlight: Any) -> list[str]:
    """The legend's lines (HTML-like label text): the meaning of every encoding the statements
    ``body`` use, and of none they do not; no lines with ``legend=False``.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); y = g.op("mul", g.param("w", 2.0), g.input("x", 3.0), name="y")
    >>> g.forward(); g.backward(y)
    >>> dot = to_dot(g)
    >>> "grey: backprop did not reach it" in dot, "a, b on edges" in dot, "composite" in dot
    (True, True, False)
    >>> "black: forward values" in to_dot(g, legend=False)
    False
    """
    if not options.legend:
        return []
    edges = [line for line in body if _EDGE.match(line)]
    nodes = [line for line in body if _NODE.match(line) and not _EDGE.match(line)]
    clusters = [line for line in body if _CLUSTER.match(line)]
    red_on_nodes = any(f'COLOR="{RED}"' in line for line in nodes)
    red_on_edges = any(f'COLOR="{RED}"' in line for line in edges)
    # an edge shows a tangent in its label or as a blue track beside the black one
    blue_on_nodes = any(f'COLOR="{TANGENT}"' in line for line in nodes)
    blue_on_edges = any(TANGENT in line for line in edges)
    items: list[tuple[str, str]] = []  # (colour, what it means), as plain text
    if blue_on_nodes and blue_on_edges:
        items.append((TANGENT, "blue: tangents d(node)/d(direction), pushed forward along each edge"))
    elif blue_on_nodes:
        items.append((TANGENT, "blue: tangents d(node)/d(direction)"))
    elif blue_on_edges:
        items.append((TANGENT, "blue: the tangent d(node)/d(direction) pushed forward along each edge"))
    run = getattr(drawing, "run", None)
    of, seeded = gradient_of(run.seeds if run is not None else (), options.precision)
    if red_on_nodes and red_on_edges:
        items.append((RED, f"red: gradients {of}{seeded}, on nodes and on the edges they flowed back along"))
    elif red_on_nodes:
        items.append((RED, f"red: gradients {of}{seeded}"))
    elif red_on_edges:
        items.append((RED, f"red: the gradient {of}{seeded} that flowed back along each edge"))
    if any(f"fillcolor={quoting.quote(BACKWARD_FILL)}" in line for line in nodes):
        items.append((RED, "red dashed: the backward pass built as nodes by backward(create_graph=True); their "
                           "values are gradients or parts of them"))
    if any(f'COLOR="{WEIGHT}"' in line for line in edges):
        times = ", times the tail's tangent" if options.edge_labels == "tangent" else ""
        items.append((WEIGHT, f"{COLOUR_NAMES[WEIGHT]} \u00d7k: the local derivative \u2202head/\u2202tail{times}"))
    slots = _names_on(edges, _SLOT)
    if slots:
        items.append((CAPTION, f"{slots} on edges: the consumer's input each edge feeds"))
    leaving = _names_on(edges, _LEAVING)
    if leaving:
        items.append((INK, f"{leaving} on an edge out of a collapsed scope: the tensor it carries out"))
    if (any(f"fillcolor={quoting.quote(GREYED_LOOK[0])}" in line for line in nodes)
            or any(f"color={quoting.quote(FAINT)}" in line for line in edges)):
        flows = getattr(drawing, "drawn_flows", ("grad",))
        items.append((GREY, "grey: " + ("neither gradient nor tangent reached it" if len(flows) == 2 else
                                        "no tangent reached it" if flows == ("tangent",) else
                                        "backprop did not reach it")))
    if any("peripheries=2" in line for line in nodes):
        items.append((INK, "double border: a composite op; expand= opens it"))
    if any(f"color={quoting.quote(CLUSTER_COLOUR)}" in line for line in clusters):
        items.append((CLUSTER_COLOUR, "dashed purple box: a composite op opened into its circuit"))
    marked = getattr(drawing, "highlight", None)
    highlighted = _highlight_items(highlight) if marked is not None and (marked.nodes or marked.edges) else []
    # a value is captioned "value" at the tensor level, and in black at the element level
    values = any('POINT-SIZE="8">value</FONT>' in line or f'<FONT COLOR="{INK}" POINT-SIZE="10">' in line
                 for line in nodes)
    if (items or highlighted) and values:
        items.insert(0, (INK, "black: forward values"))
    return _legend_lines(items) + _legend_lines(highlighted)


SUBSCRIPTS = str.maketrans("0123456789", "\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089")
_WORD = re.compile(r"\w+")
SEED_SHOWN = 6  # a seed with at most this many numbers is written out in the legend


def gradient_of(seeds: Iterable[tuple[Node, Any]], precision: int = 4) -> tuple[str, str]:
    """What the gradients of a run are, for the legend: ``(derivative, what the seeds are)``.

    From :attr:`Run.seeds`: a pass from a node ``N`` seeded with ones gives ∂N/∂·; one
    seeded with ``v`` gives ∂(v·N)/∂· (a vector-Jacobian product); passes added up
    without ``zero_grad`` give the sum of theirs. Names other than one word are put in
    parentheses. With no seeds (a record made by hand), ∂L/∂·.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); y = g.op("mul", x, x, name="y"); L = g.op("sum", y, name="L")
    >>> g.forward(); g.backward(L)
    >>> gradient_of(g.run.seeds)
    ('∂L/∂·', '')
    >>> g.zero_grad(); g.backward(y, seed=[1.0, 0.0])
    >>> gradient_of(g.run.seeds)
    ('∂(v·y)/∂·', ' (seed v = [1, 0])')
    >>> g.backward(y, seed=[0.0, 1.0]); g.backward(L)
    >>> gradient_of(g.run.seeds)
    ('∂(v₁·y)/∂· + ∂(v₂·y)/∂· + ∂L/∂·', ' (seeds v₁ = [1, 0], v₂ = [0, 1])')
    >>> gradient_of([])
    ('∂L/∂·', '')
    """
    seeds = [(node, np.asarray(seed)) for node, seed in seeds]
    if not seeds:
        return "\u2202L/\u2202\u00b7", ""
    vectors = [k for k, (_, seed) in enumerate(seeds) if not np.all(seed == 1)]
    label = {k: "v" if len(vectors) == 1 else f"v{n}".translate(SUBSCRIPTS) for n, k in enumerate(vectors, start=1)}
    counts: dict[str, int] = {}
    for k, (node, seed) in enumerate(seeds):
        if k in label:
            term = f"\u2202({label[k]}\u00b7{node.name})/\u2202\u00b7"
        else:
            name = node.name if _WORD.fullmatch(node.name) else f"({node.name})"
            term = f"\u2202{name}/\u2202\u00b7"
        counts[term] = counts.get(term, 0) + 1
    terms = [term if n == 1 else f"{n}\u00b7{term}" for term, n in counts.items()]
    what = " + ".join(terms[:3]) + (" + \u2026" if len(terms) > 3 else "")
    if not vectors:
        return what, ""
    shown = [f"{label[k]} = {_seed_text(seeds[k][1], precision)}" for k in vectors[:3]]
    more = ", \u2026" if len(vectors) > 3 else ""
    return what, f" ({'seed' if len(vectors) == 1 else 'seeds'} {', '.join(shown)}{more})"


def _seed_text(seed: np.ndarray, precision: int) -> str:
    if seed.size > SEED_SHOWN:
        return f"an array of shape {shape_text(seed.shape)}"
    if seed.ndim == 0:
        return format_number(seed, precision)
    return np.array2string(seed, separator=", ", formatter={"all": lambda x: format_number(x, precision)})


def _names_on(edges: list[str], pattern: re.Pattern) -> str:
    """The first two names ``pattern`` finds in edge statements, "\u2026" after them if there are more."""
    names = list(dict.fromkeys(name for line in edges for name in pattern.findall(line)))
    # the names were escaped for a label: undo it, to escape them again with the rest of the legend
    shown = [html_text.unescape(name).replace("\\\\", "\\") for name in names[:2]] + ["\u2026"] * (len(names) > 2)
    return ", ".join(shown)


def _highlight_items(highlight: Any) -> list[tuple[str, str]]:
    """(colour, what it marks) for ``highlight``, coloured as :func:`~dagprop.drawing.options.highlights`
    colours it: each path its own colour, in order, and one colour, taken when the first of
    them comes, for all the plain nodes and edges. Paths that share their ends are named by
    the nodes between."""
    if highlight is None:
        return []
    single = isinstance(highlight, (str, Node)) or is_path(highlight) or is_edge(highlight)
    colours = itertools.cycle(PALETTE)
    paths: list[tuple[str, list[str]]] = []
    plain: list[tuple[str, str]] = []
    for item in [highlight] if single else list(highlight):
        if is_path(item):
            paths.append((next(colours), [node.name if isinstance(node, Node) else str(node) for node in item.nodes]))
        elif not plain:
            colour = next(colours)
            plain.append((colour, f"bold {PALETTE_NAMES[colour]}: highlighted"))
    ends = {(names[0], names[-1]) for _, names in paths if len(names) > 2}
    shared = len(paths) > 1 and len(ends) == 1 and all(len(names) > 2 for _, names in paths)
    items = [(CAPTION, f"{len(paths)} paths from {paths[0][1][0]} to {paths[0][1][-1]}")] if shared else []
    for number, (colour, names) in enumerate(paths[:LEGEND_PATHS], start=1):
        route = names[1:-1] if shared else names
        if len(route) > 7:
            route = route[:3] + ["\u2026"] + route[-3:]
        items.append((colour, f"{PALETTE_NAMES[colour]}: path {number} {'via ' if shared else ''}"
                              f"{'(' * (not shared)}{ARROW.join(route)}{')' * (not shared)}"))
    if len(paths) > LEGEND_PATHS:
        items.append((CAPTION, f"and {len(paths) - LEGEND_PATHS} more paths, in the same colours again"))
    return plain + items


def _legend_lines(items: list[tuple[str, str]]) -> list[str]:
    """``items`` as lines of coloured words, ``; `` between them, about :data:`LEGEND_WIDTH` characters long."""
    lines: list[list[tuple[str, str]]] = []
    width = 0
    for colour, text in items:
        if not lines or width + 2 + len(text) > LEGEND_WIDTH:
            lines.append([])
            width = -2
        lines[-1].append((colour, text))
        width += 2 + len(text)
    separator = f'<FONT POINT-SIZE="10" COLOR="{CAPTION}">; </FONT>'
    return [separator.join(f'<FONT POINT-SIZE="10" COLOR="{colour}">{quoting.html(text)}</FONT>'
                           for colour, text in line) for line in lines]


def to_dot(graph: Graph | nx.DiGraph, *, show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "auto",
           precision: int = 4, rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (),
           title: str | None = None, level: str = "tensor", max_matrix: tuple[int, int] = (6, 6),
           max_nodes: int | None = 300, run: Run | None = None, legend: bool = True,
           collapse: Iterable[str] = (), depth: int | None = None, slices: Any = None) -> str:
    """The annotated diagram of ``graph`` as DOT text. Pure: needs no Graphviz binary.

    The same graph and arguments give the same text, byte for byte.

    Parameters
    ----------
    graph : Graph or networkx.DiGraph
        A dagprop graph, or an element graph such as :meth:`Graph.element_graph` returns
        (then ``level`` is "element").
    show : iterable of {"value", "grad", "tangent"}
        What each node shows besides its name, op and shape: its value, its gradient
        (red), its tangent from the last :meth:`Graph.jvp` (blue). A node whose inputs
        carried several tangents shows them and their sum.
    edge_labels : {"auto", "grad", "tangent", "value", "weight", None}
        "grad": the gradient that flowed back along each edge (red); at the element
        level also the local derivative. "tangent": the tangent each edge pushed forward
        into its consumer's (blue); at the element level also the local derivative it
        multiplies. "value": the forward value carried. "weight": the local derivative
        only (element level). None: no labels. "auto" (default): "tangent" when
        ``show`` has "tangent" but not "grad", else "grad". Each edge that carried a
        gradient or tangent drawn gets a track of its colour beside the black one.
    precision : int
        Significant digits of the numbers drawn.
    rankdir : {"LR", "RL", "TB", "BT"}
        Direction of the forward flow.
    expand : iterable of str or bool
        Composite ops to draw as their circuit, each in a cluster named after its
        node (True: all of them). See :func:`dagprop.expand.expanded`.
    highlight : node, edge, path or a list of them
        Drawn bold in a distinct colour: node names or nodes, edges as
        ``(source, consumer)`` or ``(source, consumer, slot)``, and path objects
        (anything with ``.nodes``, optionally ``.edges``); each path gets its own
        colour. Element names such as ``"W1[2,0]"`` highlight their tensor at the
        tensor level.
    title : str, optional
        A heading drawn above the diagram; each ``"\\n"`` in it starts a new line.
    level : {"tensor", "element"}
        "element" draws :meth:`Graph.element_graph`: one node per element, edges
        labelled with local derivatives.
    max_matrix : (int, int)
        Arrays with at most this many rows and columns are drawn in full; larger
        ones (and arrays of three or more dimensions) are summarised: their smallest,
        mean and largest entries and their norm (edges: the norm only), the shape
        beside the op.
    max_nodes : int or None
        Above this many nodes a warning is given and a collapsed view drawn.
    run : Run, optional
        The numbers to draw: a record of the graph drawn (default: ``graph.run``, the
        latest passes; for an element graph, the run it was made from). The player
        passes partial records to draw what is known at each step.
    legend : bool
        Say under the title what each colour and mark the picture uses means (values,
        gradients, tangents, local derivatives, input names on edges, grey, composite
        ops, opened circuits, the highlight's colours and paths), and only those it uses.
    collapse : iterable of str
        Scopes (:meth:`Graph.scope`) to draw as one box each, named as ``g.scope`` takes
        them ("layer1", "layer1/attention"; a scope inside a collapsed one goes into its
        box). The box shows the scope's name, how many nodes it holds and their ops; the
        edges that cross into or out of the scope attach to it, and the edges one node
        sends into it are drawn as one, carrying the sum of their gradients. Every other
        scope is drawn as a cluster. Tensor level only.
    depth : int, optional
        Draw every scope at this depth as one box, as ``collapse=`` does: 1, one box per
        outermost scope ("encoder", "head"); 2, one per scope inside those
        ("encoder/layer1"), the outer ones drawn as clusters around them; and so on.
        Each box also shows the tensors leaving it (name, shape, value and gradient,
        summarised when large). Nodes outside every scope are drawn as usual. None
        (default): no box but those ``collapse=`` asks for. Tensor level only.
    slices : tuple of int, or dict of str to tuple of int, optional
        Draw one slice of arrays too large to draw, as a small matrix under their summary
        (its top-left corner, ``…`` and ``⋮`` marking what is left out, when larger than
        ``max_matrix``). A tuple applies to every array it leaves a matrix of: ``(0, 0)``
        draws ``[0, 0, :, :]`` of each 4-D array (example 0, channel 0, for images in
        NCHW layout); a dict applies to the named nodes only, whatever their number of
        axes: ``{"conv1": (0, 0), "tokens": (1,)}``. Value, tangent and gradient alike.
        Tensor level only.
    Returns
    -------
    str

    Raises
    ------
    RenderError
        For an option that is not understood; a highlighted name, collapsed scope or sliced node not
        in the graph; a slice that does not fit its node's shape.

    Warns
    -----
    LargeGraphWarning
        When the graph has more than ``max_nodes`` nodes.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> y = g.op("mul", x, x, name="y")
    >>> g.forward(); g.backward(y)
    >>> dot = to_dot(g)
    >>> dot.splitlines()[0]
    'digraph dagprop {'
    >>> [line.strip()[:11] for line in dot.splitlines() if "->" in line]
    ['n0 -> n1 [l', 'n0 -> n1 [l']

    Forward mode: the tangent of each node along a direction, and what each edge pushed:

    >>> x = g.param("x2", 2.0); w = g.param("w", 3.0); v = g.op("add", x * w, x, name="v")
    >>> g.jvp({x: 1.0})  # dv/dx2 = w + 1
    >>> dot = to_dot(g, show=("value", "tangent"))
    >>> "tangents d(node)/d(direction), pushed forward along each edge" in dot, ">4</FONT>" in dot
    (True, True)

    A scope drawn as one box:

    >>> with g.scope("block"):
    ...     z = (y * 2.0).tanh()
    >>> g.forward(); g.backward(z)
    >>> "scope, collapsed: 3 nodes" in to_dot(g, collapse=["block"])
    True

    A model drawn one box per outermost scope, and a 4-D tensor summarised with one slice drawn:

    >>> import numpy as np
    >>> m = dp.Graph(); images = m.input("images", np.arange(96.0).reshape(2, 3, 4, 4) / 96)
    >>> with m.scope("encoder"):
    ...     with m.scope("layer1"):
    ...         h = (images * m.param("w", np.ones((1, 3, 1, 1)))).tanh()
    >>> with m.scope("head"):
    ...     loss = h.sum()
    >>> m.forward(); m.backward(loss)
    >>> boxes = to_dot(m, depth=1)
    >>> boxes.count("scope, collapsed"), "out: tanh_1  2×3×4×4" in boxes
    (2, True)
    >>> dot = to_dot(m, slices={"images": (0, 0)})
    >>> "min 0  mean 0.4948  max 0.9896" in dot, "[0, 0, :, :]" in dot, "0.125   0.1354   0.1458   0.1562 ]" in dot
    (True, True, True)

    A title on two lines, and the nodes of a backward pass built as nodes, red dashed:

    >>> g2 = dp.Graph(); x = g2.param("x", [1.0, 2.0]); L = (x * x).sum(name="L")
    >>> g2.forward(); g2.backward(L, create_graph=True)
    >>> dot = to_dot(g2, title="x * x, summed:\\nits backward pass")
    >>> "x * x, summed:<BR/>its backward pass" in dot, "red dashed: the backward pass built as nodes" in dot
    (True, True)
    """
    return digraph(graph, show=show, edge_labels=edge_labels, precision=precision, rankdir=rankdir, expand=expand,
                   highlight=highlight, title=title, level=level, max_matrix=max_matrix, max_nodes=max_nodes,
                   run=run, legend=legend, collapse=collapse, depth=depth, slices=slices).source


def render(graph: Graph | nx.DiGraph, path: str | FilePath | None = None, *, format: str | None = None,
           show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "auto", precision: int = 4,
           rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (), title: str | None = None,
           level: str = "tensor", max_matrix: tuple[int, int] = (6, 6), max_nodes: int | None = 300,
           run: Run | None = None, legend: bool = True, collapse: Iterable[str] = (), depth: int | None = None,
           slices: Any = None, timeout: float = 60.0) -> graphviz.Digraph:
    """Draw ``graph``; with ``path``, also write the picture there.

    Parameters
    ----------
    graph, show, edge_labels, precision, rankdir, expand, highlight, title, level, max_matrix, max_nodes, run, \
    legend, collapse, depth, slices
        As in :func:`to_dot`.
    path : str or pathlib.Path, optional
        Where to write. The format comes from the suffix (.svg, .png, .pdf, .dot)
        unless ``format`` is given.
    format : str, optional
        Any Graphviz output format ("svg", "png", "pdf", ...), or "dot" for the text.
    timeout : float
        Seconds Graphviz may take before it is stopped.

    Returns
    -------
    graphviz.Digraph
        Displays itself in Jupyter; ``.source`` is the DOT text.

    Raises
    ------
    RenderError
        When Graphviz's dot is missing (with how to install it), exceeds ``timeout``
        or fails, or for an unknown format.

    Examples
    --------
    >>> import os, tempfile
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> L = (g.param("w", [1.0, -2.0]) ** 2).sum()
    >>> g.forward(); g.backward(L)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = dp.render(g, os.path.join(tmp, "graph.dot"))
    ...     open(os.path.join(tmp, "graph.dot")).read() == d.source
    True

    A model one box per outermost scope, as SVG, and a 4-D input with its slice [1, 0, :, :]:

    >>> import numpy as np
    >>> m = dp.Graph(); x = m.input("x", np.ones((2, 3, 5, 5)))
    >>> with m.scope("encoder"):
    ...     h = (x * m.param("w", 0.5)).tanh()
    >>> loss = h.sum(name="loss"); m.forward(); m.backward(loss)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = dp.render(m, os.path.join(tmp, "model.svg"), depth=1, slices={"x": (1, 0)}, rankdir="TB")
    ...     open(os.path.join(tmp, "model.svg")).read().startswith("<?xml")
    True
    >>> "scope, collapsed: 3 nodes" in d.source, "[1, 0, :, :]" in d.source
    (True, True)
    """
    diagram = digraph(graph, show=show, edge_labels=edge_labels, precision=precision, rankdir=rankdir,
                      expand=expand, highlight=highlight, title=title, level=level, max_matrix=max_matrix,
                      max_nodes=max_nodes, run=run, legend=legend, collapse=collapse, depth=depth, slices=slices)
    if path is not None:
        write(diagram.source, path, format=format, timeout=timeout)
    return diagram


def mimebundle(graph: Graph, **options: Any) -> dict[str, str]:
    """What Jupyter displays for a graph: its annotated diagram as HTML with the SVG inline, as SVG,
    and as text.

    JupyterLab shows ``image/svg+xml`` as an image, which drops the tooltips with
    the full arrays; front ends prefer ``text/html`` when offered, and there the SVG
    is part of the page, so hovering a node or edge shows its tooltip. Falls back to
    text saying why when Graphviz's dot is missing or fails.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); _ = g.param("x", 1.0) * 2.0
    >>> bundle = mimebundle(g)
    >>> sorted(bundle)
    ['image/svg+xml', 'text/html', 'text/plain']
    >>> bundle["text/html"].startswith('<div class="dagprop-diagram" style="overflow: auto"><svg ')
    True
    """
    text = repr(graph)
    try:
        svg = pipe(to_dot(graph, **options), "svg").decode("utf-8")
    except RenderError as exc:
        return {"text/plain": f"{text}\n(no diagram: {exc})"}
    inline = svg[svg.find("<svg"):]  # without the XML declaration and doctype, which HTML does not allow
    return {"text/html": f'<div class="dagprop-diagram" style="overflow: auto">{inline}</div>',
            "image/svg+xml": svg, "text/plain": text}
