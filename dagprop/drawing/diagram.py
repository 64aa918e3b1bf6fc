"""Annotated diagrams: a graph in, DOT text out; Graphviz only turns the text into a picture.

:func:`to_dot` is pure: it reads a graph (or an element graph) and the :class:`~dagprop.Run`
whose numbers to draw, and returns DOT text that is the same byte for byte for the
same input. :mod:`dagprop.drawing.dot` is the only code that runs the ``dot`` binary,
with a time limit; :mod:`dagprop.drawing.labels` writes numbers and matrices as label
text. :func:`render` builds the text and has it drawn.

What a tensor-level diagram shows:

* each node: its name, op (or kind) and shape, its value and its gradient (red),
  small arrays in full as matrices, larger ones summarised; params, inputs,
  constants and ops each have their own look; leaves without a gradient are grey;
  composite ops that can be opened have a double border;
* each edge: the gradient that flowed back along it (red), or the forward value;
* a node that feeds several consumers: each contribution and their sum;
* with ``expand=``, each opened composite inside a cluster named after its node;
* in SVG, a tooltip on every node and edge with the full arrays.

All escaping goes through :mod:`dagprop.drawing.quoting`; node identifiers are generated
(``n0``, ``n1``...), so no user string ever becomes DOT syntax.
"""

from __future__ import annotations

import warnings
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol

import graphviz
import networkx as nx

from ..errors import LargeGraphWarning, RenderError
from ..graph import Graph
from ..run import Run
from . import quoting
from .dot import pipe, write
from .element import ElementDrawing, ElementNumbers
from .options import Options, options as checked_options
from .overview import OverviewDrawing
from .style import CAPTION, RED, dot_attrs
from .tensor import TensorDrawing

if TYPE_CHECKING:
    from ..expand import Expansion

__all__ = ["to_dot", "digraph", "render", "mimebundle", "folded_dot"]


class Drawing(Protocol):
    """What every kind of diagram provides: whether it shows gradients, and its DOT statements."""

    @property
    def any_grad(self) -> bool: ...

    def body(self) -> list[str]: ...


def digraph(graph: Graph | nx.DiGraph, *, show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "grad",
            precision: int = 4, rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (),
            title: str | None = None, level: str = "tensor", max_matrix: tuple[int, int] = (6, 6),
            max_nodes: int | None = 300, run: Run | None = None, legend: bool = True) -> graphviz.Digraph:
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

    options = checked_options(show, edge_labels, precision, rankdir, title, max_matrix, max_nodes, legend, level)
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
        if level == "element":
            element_graph = element_graph_of(run or drawn.run)
            drawing = _element_drawing(element_graph, run, options, highlight, {n.name: n.kind for n in drawn},
                                       getattr(drawn, "expansions", None))
        else:
            drawing = _tensor_drawing(graph, drawn, run, options, highlight)
    elif isinstance(graph, nx.DiGraph) and not isinstance(graph, nx.MultiDiGraph):
        level = "element"
        drawing = _element_drawing(graph, run, options, highlight, {}, None)
    else:
        raise RenderError(f"can draw a dagprop.Graph or an element graph (networkx.DiGraph), got "
                          f"{type(graph).__name__}")
    return _digraph(options, drawing, level)


def _element_drawing(element_graph: nx.DiGraph, run: Run | None, options: Options, highlight: Any,
                     kinds: Mapping[str, str], expansions: Mapping[str, Expansion] | None) -> ElementDrawing:
    drawing = ElementDrawing(element_graph, ElementNumbers(element_graph, run), options, highlight, kinds,
                             expansions)
    count = element_graph.number_of_nodes()
    if options.max_nodes is not None and count > options.max_nodes:
        warnings.warn(f"the element graph has {count} nodes, more than max_nodes={options.max_nodes}: drawing "
                      f"names only, without numbers; pass max_nodes=None to draw everything", LargeGraphWarning,
                      stacklevel=4)
        drawing.compact = True
    return drawing


def _tensor_drawing(source: Graph, drawn: Graph, run: Run | None, options: Options, highlight: Any) -> Drawing:
    """The tensor-level drawing of ``drawn`` (``source`` or its opened copy), folded when too large."""
    count = len(drawn)
    if options.max_nodes is None or count <= options.max_nodes:
        return TensorDrawing(drawn, run or drawn.run, options, highlight)
    drawing, view = _folded(source, run or source.run, options, highlight, fold_highlighted=False)
    warnings.warn(f"the graph has {count} nodes, more than max_nodes={options.max_nodes}: drawing {view}; "
                  f"pass max_nodes=None to draw everything", LargeGraphWarning, stacklevel=4)
    return drawing


def _folded(graph: Graph, run: Run, options: Options, highlight: Any, fold_highlighted: bool) -> tuple[Drawing, str]:
    """The collapsed view of ``graph`` (composites folded), or an overview when even that is too large;
    and what it is, in words."""
    tensor = TensorDrawing(graph, run, options, highlight)
    tensor.collapse(fold_highlighted)
    if options.max_nodes is None or len(graph) - len(tensor.hidden) <= options.max_nodes:
        return tensor, "a collapsed view (composites folded, chains of single-input ops summarised, arrays summarised)"
    overview = OverviewDrawing(graph, tensor.run, tensor.highlight)
    return overview, (f"an overview: one box per band of depth ({len(overview.bands)} boxes), counting nodes, ops "
                      f"and gradients")


def folded_dot(graph: Graph, *, run: Run | None = None, highlight: Any = (), max_nodes: int = 300, precision: int = 4,
               rankdir: str = "LR", legend: bool = True) -> tuple[str, str]:
    """The view :func:`to_dot` draws of a graph above ``max_nodes``, folded the same way whatever is highlighted.

    Chains of single-input ops are summarised as one node (a highlighted node inside
    one highlights that node), or, when the graph stays above ``max_nodes``, bands of
    depth are counted. Pictures of different runs of one graph so share one layout:
    the player draws each frame of a large graph this way.

    Parameters
    ----------
    graph, run, highlight, max_nodes, precision, rankdir, legend
        As in :func:`to_dot`.

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
    options = checked_options(("value", "grad"), "grad", precision, rankdir, None, (6, 6), max_nodes, legend,
                              "tensor")
    drawing, view = _folded(graph, run or graph.run, options, highlight, fold_highlighted=True)
    return _digraph(options, drawing, "tensor").source, view


def _digraph(options: Options, drawing: Drawing, level: str) -> graphviz.Digraph:
    lines = _preamble(options, drawing.any_grad, level) + drawing.body()
    return graphviz.Digraph(name="dagprop", body=[f"\t{line}\n" for line in lines])


def _preamble(options: Options, has_grads: bool, level: str) -> list[str]:
    graph_attrs = [("rankdir", options.rankdir), ("fontname", quoting.quote("Helvetica")), ("nodesep", "0.35"),
                   ("ranksep", "0.55"), ("bgcolor", quoting.quote("white")), ("pad", "0.2")]
    if level == "element":
        # a second crossing minimisation across clusters would undo the index order of each tensor
        graph_attrs.append(("remincross", "false"))
    label_lines = []
    if options.title is not None:
        label_lines.append(f'<FONT POINT-SIZE="16"><B>{quoting.html(options.title)}</B></FONT>')
    if options.legend and has_grads and "grad" in options.show:
        label_lines.append(f'<FONT POINT-SIZE="10" COLOR="{CAPTION}">black: forward values; </FONT>'
                           f'<FONT POINT-SIZE="10" COLOR="{RED}">red: gradients \u2202L/\u2202\u00b7, on nodes and '
                           f'on the edges they flowed back along</FONT>')
    if label_lines:
        graph_attrs += [("labelloc", "t"), ("labeljust", "l"), ("label", "<" + "<BR/>".join(label_lines) + ">")]
    return [f"graph [{dot_attrs(graph_attrs)}]",
            f"node [fontname={quoting.quote('Helvetica')} fontsize=11 margin={quoting.quote('0.1,0.05')}]",
            f"edge [fontname={quoting.quote('Helvetica')} fontsize=9 arrowsize=0.7 color={quoting.quote('#555555')}]"]


def to_dot(graph: Graph | nx.DiGraph, *, show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "grad",
           precision: int = 4, rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (),
           title: str | None = None, level: str = "tensor", max_matrix: tuple[int, int] = (6, 6),
           max_nodes: int | None = 300, run: Run | None = None, legend: bool = True) -> str:
    """The annotated diagram of ``graph`` as DOT text. Pure: needs no Graphviz binary.

    The same graph and arguments give the same text, byte for byte.

    Parameters
    ----------
    graph : Graph or networkx.DiGraph
        A dagprop graph, or an element graph such as :meth:`Graph.element_graph` returns
        (then ``level`` is "element").
    show : iterable of {"value", "grad"}
        What each node shows besides its name, op and shape.
    edge_labels : {"grad", "value", "weight", None}
        "grad": the gradient that flowed back along each edge (red); at the element
        level also the local derivative. "value": the forward value carried. "weight":
        the local derivative only (element level). None: no labels.
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
        A heading drawn above the diagram.
    level : {"tensor", "element"}
        "element" draws :meth:`Graph.element_graph`: one node per element, edges
        labelled with local derivatives.
    max_matrix : (int, int)
        Arrays with at most this many rows and columns are drawn in full; larger
        ones (and arrays of three or more dimensions) are summarised.
    max_nodes : int or None
        Above this many nodes a warning is given and a collapsed view drawn.
    run : Run, optional
        The numbers to draw: a record of the graph drawn (default: ``graph.run``, the
        latest passes; for an element graph, the run it was made from). The player
        passes partial records to draw what is known at each step.
    legend : bool
        Say under the title what black and red mean, when gradients are shown.

    Returns
    -------
    str

    Raises
    ------
    RenderError
        For an option that is not understood, or a highlighted name not in the graph.

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
    """
    return digraph(graph, show=show, edge_labels=edge_labels, precision=precision, rankdir=rankdir, expand=expand,
                   highlight=highlight, title=title, level=level, max_matrix=max_matrix, max_nodes=max_nodes,
                   run=run, legend=legend).source


def render(graph: Graph | nx.DiGraph, path: str | FilePath | None = None, *, format: str | None = None,
           show: Iterable[str] = ("value", "grad"), edge_labels: str | None = "grad", precision: int = 4,
           rankdir: str = "LR", expand: Iterable[str] | bool = (), highlight: Any = (), title: str | None = None,
           level: str = "tensor", max_matrix: tuple[int, int] = (6, 6), max_nodes: int | None = 300,
           run: Run | None = None, legend: bool = True, timeout: float = 60.0) -> graphviz.Digraph:
    """Draw ``graph``; with ``path``, also write the picture there.

    Parameters
    ----------
    graph, show, edge_labels, precision, rankdir, expand, highlight, title, level, max_matrix, max_nodes, run, legend
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
    """
    diagram = digraph(graph, show=show, edge_labels=edge_labels, precision=precision, rankdir=rankdir,
                      expand=expand, highlight=highlight, title=title, level=level, max_matrix=max_matrix,
                      max_nodes=max_nodes, run=run, legend=legend)
    if path is not None:
        write(diagram.source, path, format=format, timeout=timeout)
    return diagram


def mimebundle(graph: Graph, **options: Any) -> dict[str, str]:
    """What Jupyter displays for a graph: its annotated diagram as SVG.

    Falls back to text saying why when Graphviz's dot is missing or fails.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); _ = g.param("x", 1.0) * 2.0
    >>> sorted(mimebundle(g))
    ['image/svg+xml', 'text/plain']
    """
    text = repr(graph)
    try:
        svg = pipe(to_dot(graph, **options), "svg").decode("utf-8")
    except RenderError as exc:
        return {"text/plain": f"{text}\n(no diagram: {exc})"}
    return {"image/svg+xml": svg, "text/plain": text}
