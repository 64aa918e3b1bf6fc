"""The player: one self-contained HTML file that plays the steps of :func:`dagprop.simulate`
as diagrams drawn by :mod:`dagprop.drawing`.

Each frame is an SVG of the diagram with what is known at that point (values
computed so far, gradients received so far, running sums where a node has received
several contributions) and the current node or edge highlighted. Consecutive frames
differ in a few nodes and edges, so the page stores each distinct piece of SVG (a
node, an edge, a cluster) once, and each frame as the list of its pieces, put
together when the frame is shown: the file grows with the run, not with the run
times the graph. The player needs no network: no external scripts, styles or fonts.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Iterable, Mapping, overload

import numpy as np

from . import rules
from .drawing import quoting, to_dot
from .drawing.diagram import folded_dot
from .drawing.dot import pipe
from .drawing.labels import format_number
from .drawing.style import PALETTE
from .errors import GraphError, LargeGraphWarning, RenderError
from .paths import element_graph
from .run import Run
from .simulation import Step, simulate

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["Frame", "frames", "animate", "Animation"]

LEVELS = ("tensor", "element")
MAX_NODES = 100
# "fit" never shrinks the numbers' text below this many CSS pixels
READABLE_PX = 9.0
# bounds for the inline player's height in a notebook, and what its controls take
MIN_INLINE_PX, MAX_INLINE_PX, HEADER_PX = 360, 720, 200


@dataclass
class Frame:
    """One picture of a run: what is known, what just happened, and what to highlight.

    Attributes
    ----------
    phase : {"start", "forward", "backward", "done"}
    caption : str
        One line saying what this step did (plain text).
    detail : str
        A second line: the running sum when a node has received two or more
        contributions, else empty.
    run : Run
        What is known after this step: the values computed, the gradients received
        (running sums where several contributions arrived) and the edge gradients sent.
    highlight : list
        Node names and ``(source, consumer[, slot])`` edges to draw highlighted.
    current : str
        The node or edge of this step, as text (``"a1"``, ``"yhat->a2[0]"``).
    step : Step or None
        The simulated step this frame shows.
    """

    phase: str
    caption: str
    detail: str
    run: Run
    highlight: list = field(default_factory=list)
    current: str = ""
    step: Step | None = None


def frames(graph: Graph, loss: Node | str, level: str = "tensor", *, feeds: Mapping[str, Any] | None = None,
           seed: Any = None, precision: int = 4) -> list[Frame]:
    """The frames of an animated run, in the scheduler's order, without drawing them.

    A first frame with the leaves' values, one frame per forward step, a frame
    where the backward pass starts from the seed at the loss, one frame per
    backward step (one per edge slot), and a last frame with everything.

    Parameters
    ----------
    graph, loss, feeds, seed
        As in :func:`dagprop.simulate`.
    level : {"tensor", "element"}
        Draw op nodes, or single elements (see :func:`dagprop.paths.element_graph`).
    precision : int
        Significant digits in captions.

    Returns
    -------
    list of Frame

    Examples
    --------
    >>> import dagprop as dp
    >>> from dagprop.player import frames
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> L = g.op("add", g.op("mul", x, x, name="y"), x, name="L")
    >>> for f in frames(g, L):
    ...     print(f.phase, f.current, "|", f.caption, "|", f.detail)
    start  | Start: the leaves are known: x = 3 |
    forward y | Forward: y = mul(x, x) = 9 |
    forward L | Forward: L = add(y, x) = 12 |
    backward L | Backward starts at L with dL/dL = 1 |
    backward L->y[0] | Backward: L sends 1 back to y (input a of add) | y.grad = 1
    backward L->x[1] | Backward: L sends 1 back to x (input b of add) | x.grad = 1
    backward y->x[0] | Backward: y sends 3 back to x (input a of mul) | x.grad = 1 + 3 = 4, a running sum of 2 contributions
    backward y->x[1] | Backward: y sends 3 back to x (input b of mul) | x.grad = 1 + 3 + 3 = 7, a running sum of 3 contributions
    done  | Done: every gradient is known |
    """
    return _build(graph, loss, level, feeds, seed, precision)[0]


def _build(graph: Graph, loss: Node | str, level: str, feeds: Mapping[str, Any] | None, seed: Any,
           precision: int) -> tuple[list[Frame], Run, set[int]]:
    """The frames, the finished run, and the indices of the nodes the loss depends on."""
    if level not in LEVELS:
        raise GraphError(f"level must be 'tensor' or 'element', got {level!r}")
    loss_node = graph.node(loss)
    simulation = simulate(graph, loss_node, feeds=feeds, seed=seed)
    wanted = graph.plan.ancestors((loss_node.index,))
    leaves = [n for n in graph if n.op_def is None and simulation.run.value(n) is not None and n.index in wanted]
    steps = list(simulation)
    finished = simulation.run
    ((_, start),) = finished.seeds
    short = functools.partial(_brief, precision=precision)

    known = finished.without_grads()
    known.values = [None] * len(known.values)
    for node in leaves:
        known.values[node.index] = finished.values[node.index]
    result = [Frame("start", "Start: the leaves are known: " + ", ".join(f"{n.name} = {short(finished.value(n))}"
                                                                        for n in leaves),
                    "", known.copy(), [n.name for n in leaves], "")]
    received: dict[str, list[np.ndarray]] = {}
    backward_started = False
    for step in steps:
        if step.kind == "forward":
            node = graph[step.node]
            known.values[node.index] = step.value
            inputs = ", ".join(i.name for i in node.inputs)
            edges = [(i.name, node.name, slot) for slot, i in enumerate(node.inputs)]
            result.append(Frame("forward", f"Forward: {node.name} = {node.op}({inputs}) = {short(step.value)}", "",
                                known.copy(), [node.name, *edges], node.name, step))
            continue
        if not backward_started:
            backward_started = True
            known.grads[loss_node.index] = start
            result.append(Frame("backward", f"Backward starts at {loss_node.name} with "
                                            f"d{loss_node.name}/d{loss_node.name} = {short(start)}", "",
                                known.copy(), [loss_node.name], loss_node.name))
        assert step.edge is not None and step.contribution is not None  # as every backward step has
        source, consumer, slot = step.edge
        consumer_node = graph[consumer]
        received.setdefault(source, []).append(step.contribution)
        total = known.send(consumer_node.index, slot, step.contribution)
        parts = received[source]
        if len(parts) >= 2:
            detail = (f"{source}.grad = " + " + ".join(short(p) for p in parts) + f" = {short(total)}, "
                      f"a running sum of {len(parts)} contributions")
        else:
            detail = f"{source}.grad = {short(total)}"
        slot_name = rules.slot_name(consumer_node, slot)
        result.append(Frame("backward", f"Backward: {consumer} sends {short(step.contribution)} back to {source} "
                                        f"(input {slot_name} of {consumer_node.op})", detail, known.copy(),
                            [source, (source, consumer, slot)], f"{consumer}->{source}[{slot}]", step))
    result.append(Frame("done", "Done: every gradient is known" if backward_started else "Done", "",
                        known.copy(), [], ""))
    return result, finished, set(wanted)


def _nested_text(array: np.ndarray, precision: int) -> str:
    if array.ndim == 0:
        return format_number(array, precision)
    return "[" + ", ".join(_nested_text(row, precision) for row in array) + "]"


def _brief(x: Any, precision: int) -> str:
    array = np.asarray(x)
    if array.ndim == 0:
        return format_number(array, precision)
    if array.size <= 6:
        return _nested_text(array, precision)
    return f"<{'x'.join(map(str, array.shape))} array, norm {format_number(np.linalg.norm(array), precision)}>"


@dataclass(frozen=True)
class Animation:
    """A run played step by step, as one self-contained HTML page: what :func:`animate` returns
    without a path.

    In Jupyter it plays inline, inside an ``<iframe>`` whose ``srcdoc`` is the page, so
    its script, ids and keys stay apart from the notebook's and from other cells.

    Attributes
    ----------
    html : str
        The page (no network needed: no external scripts, styles or fonts).
    title : str
        The page's heading.
    frames : int
        How many steps the page plays.
    height : int
        Pixels the inline player takes in a notebook (the frame can be resized).

    Examples
    --------
    >>> a = Animation("<!DOCTYPE html><p>x & y</p>", "run", 1)
    >>> a
    <Animation 'run': 1 frame, 27 characters of HTML>
    >>> a._repr_html_()[:66]
    '<iframe srcdoc="&lt;!DOCTYPE html&gt;&lt;p&gt;x &amp; y&lt;/p&gt;"'
    """

    html: str
    title: str
    frames: int
    height: int = 600

    def save(self, path: str | FilePath) -> FilePath:
        """Write the page to ``path`` (parent folders are created) and return the path."""
        target = FilePath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.html, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        # srcdoc holds the whole page as an attribute value: only & < > " ' need escaping, and newlines must
        # stay newlines (quoting.html_page shows them as symbols, which would break the script)
        return (f'<iframe srcdoc="{html_escape(self.html, quote=True)}" title="{quoting.html_page(self.title)}" '
                f'sandbox="allow-scripts" style="width: 100%; height: {self.height}px; border: 1px solid #ddd; '
                f'resize: vertical"></iframe>')

    def __repr__(self) -> str:
        return (f"<Animation {self.title!r}: {self.frames} frame{'' if self.frames == 1 else 's'}, "
                f"{len(self.html)} characters of HTML>")


@overload
def animate(graph: Graph, loss: Node | str, path: None = None, level: str = "tensor", *,
            feeds: Mapping[str, Any] | None = None, seed: Any = None, title: str | None = None,
            interval: float = 1.0, precision: int = 4, rankdir: str = "LR", timeout: float = 60.0,
            max_nodes: int | None = MAX_NODES,
            expand: Iterable[str] | bool = ()) -> Animation: ...


@overload
def animate(graph: Graph, loss: Node | str, path: str | FilePath, level: str = "tensor", *,
            feeds: Mapping[str, Any] | None = None, seed: Any = None, title: str | None = None,
            interval: float = 1.0, precision: int = 4, rankdir: str = "LR", timeout: float = 60.0,
            max_nodes: int | None = MAX_NODES,
            expand: Iterable[str] | bool = ()) -> FilePath: ...


def animate(graph: Graph, loss: Node | str, path: str | FilePath | None = None, level: str = "tensor", *,
            feeds: Mapping[str, Any] | None = None, seed: Any = None, title: str | None = None,
            interval: float = 1.0, precision: int = 4, rankdir: str = "LR", timeout: float = 60.0,
            max_nodes: int | None = MAX_NODES,
            expand: Iterable[str] | bool = ()) -> FilePath | Animation:
    """Play the forward and backward run step by step, in one self-contained HTML page: written
    to ``path``, or, without a path, returned as an :class:`Animation` that plays inline in Jupyter.

    The page works offline: every frame is an SVG diagram, and the player
    (play/pause, step back and forward, a slider, the arrow keys, space, Home and
    End, f for fit) is a short inline script. It opens fitted to the window, but never
    smaller than keeps the numbers readable (9 px): a larger diagram scrolls, and each
    step scrolls its node or edge into the middle; "fit" off shows the natural size.
    Each frame shows what is known so far, with the current node or edge
    highlighted; when a node receives its second and later contributions, the
    diagram and the caption show the running sum. The graph's own values and
    gradients are left unchanged (see :func:`dagprop.simulate`).

    Every frame is drawn by Graphviz, and a run has about two frames per node, so a
    large graph is guarded like :func:`dagprop.render`: above ``max_nodes`` drawn
    nodes a :class:`~dagprop.errors.LargeGraphWarning` is given and a smaller view
    is played (at the element level, the tensor level; at the tensor level, chains
    of single-input ops summarised, or bands of depth counted). The file stores
    each distinct piece of each frame's picture once, so it grows with the number
    of steps, not with steps times nodes: a 300-node chain makes a file of a few
    hundred kilobytes.

    Parameters
    ----------
    graph : Graph
    loss : Node or str
        The node to differentiate.
    path : str or pathlib.Path, optional
        Where to write the HTML file. Without it, nothing is written and the page is
        returned as an :class:`Animation`.
    level : {"tensor", "element"}
        Draw op nodes, or single elements (neurons) with their local derivatives.
    feeds, seed
        As in :func:`dagprop.simulate`.
    title : str, optional
        The page's heading (default: "dagprop: forward and backward through <loss>").
    interval : float
        Seconds per frame when playing.
    precision : int
        Significant digits of the numbers drawn.
    rankdir : {"LR", "RL", "TB", "BT"}
        Direction of the forward flow in the diagrams.
    timeout : float
        Seconds Graphviz may take per frame.
    max_nodes : int or None
        Above this many nodes (elements at the element level) play a smaller view,
        with a warning (default 100). None plays everything, however slow.
    expand : iterable of str or bool
        Composite ops to play opened into their circuit, as in :func:`dagprop.render`
        (True: all of them); ``loss`` may be a node of ``graph``.

    Returns
    -------
    pathlib.Path or Animation
        With ``path``, the file written. Without, the page as an :class:`Animation`:
        a notebook cell that ends with it plays the run inline (an ``<iframe>`` holding
        the page), and ``.save(path)`` writes the file.

    Raises
    ------
    RenderError
        When Graphviz's dot is missing or fails.

    Warns
    -----
    LargeGraphWarning
        When more than ``max_nodes`` nodes would be drawn.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x = g.param("x", 3.0)
    >>> L = g.op("add", g.op("mul", x, x, name="y"), x, name="L")
    >>> out = dp.animate(g, L, pathlib.Path(tempfile.mkdtemp()) / "run.html")
    >>> html = out.read_text()
    >>> html.count('class="frame"'), "<script src" in html
    (9, False)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = dp.animate(g, L, out, max_nodes=2)  # 3 nodes: played as an overview
    >>> str(caught[0].message)[:60]
    'the graph has 3 nodes, more than max_nodes=2: playing an ove'

    Without a path, for a notebook: the last line of a cell plays it there.

    >>> player = dp.animate(g, L)
    >>> player  # doctest: +ELLIPSIS
    <Animation 'dagprop: forward and backward through L': 9 frames, ... characters of HTML>
    >>> player._repr_html_().startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;')
    True
    >>> player.save(out) == out and out.read_text() == player.html
    True
    """
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise RenderError(f"max_nodes= must be a positive int or None, got {max_nodes!r}")
    opened = expand if isinstance(expand, bool) else tuple(expand)
    if opened:
        graph = graph.expanded(None if opened is True else opened)  # it takes the original's nodes
    every, finished, wanted = _build(graph, loss, level, feeds, seed, precision)
    loss_name = graph.node(loss).name
    if level == "element":
        elements = sum(int(np.size(finished.values[i])) for i in wanted)
        if max_nodes is not None and elements > max_nodes:
            warnings.warn(f"the element graph has {elements} elements, more than max_nodes={max_nodes}: playing the "
                          f"tensor level instead; pass max_nodes=None to play every element (Graphviz draws them "
                          f"all in every frame)", LargeGraphWarning, stacklevel=2)
            level = "tensor"
    if level == "element":
        view = element_graph(finished, [n for n in graph if n.index in wanted])
        sources = [to_dot(view, run=frame.run, highlight=_as_nodes(graph, frame.highlight), level=level,
                          precision=precision, rankdir=rankdir, legend=False, max_nodes=None) for frame in every]
    elif max_nodes is not None and len(graph) > max_nodes:
        sources, folded = [], ""
        for frame in every:
            source, folded = folded_dot(graph, run=frame.run, highlight=frame.highlight, max_nodes=max_nodes,
                                        precision=precision, rankdir=rankdir, legend=False)
            sources.append(source)
        warnings.warn(f"the graph has {len(graph)} nodes, more than max_nodes={max_nodes}: playing {folded}; pass "
                      f"max_nodes=None to play everything (Graphviz draws every node in every frame)",
                      LargeGraphWarning, stacklevel=2)
    else:
        sources = [to_dot(graph, run=frame.run, highlight=frame.highlight, level=level, precision=precision,
                          rankdir=rankdir, legend=False, max_nodes=None) for frame in every]
    # Lay out once, with the last frame's labels (it knows the most, so they are the
    # largest), and draw every frame at those positions: nothing moves between steps.
    layout = json.loads(pipe(sources[-1], "json", timeout=timeout))

    def draw(source: str) -> str:
        return pipe(_pinned(source, layout), "svg", timeout=timeout).decode("utf-8")

    with ThreadPoolExecutor(max_workers=4) as pool:
        pictures = list(pool.map(draw, dict.fromkeys(sources)))  # each distinct picture once
    drawn = dict(zip(dict.fromkeys(sources), pictures))
    heading = title if title is not None else f"dagprop: forward and backward through {loss_name}"
    last = drawn[sources[-1]]
    page = _page(heading, level, every, [drawn[source] for source in sources], interval, _typical_text_size(last))
    animation = Animation(page, heading, len(every), _inline_height(layout))
    return animation if path is None else animation.save(path)


def _as_nodes(graph: Graph, highlight: list) -> list:
    """Node names as nodes (edges as pairs of nodes): at the element level a name could also be an element's."""
    return [(graph[item[0]], graph[item[1]], *item[2:]) if isinstance(item, tuple) else graph[item]
            for item in highlight]


# -- one layout for every frame ------------------------------------------------------------

_NODE_STATEMENT = re.compile(r"^(\t+)([A-Za-z_]\w*) \[", re.M)
_EDGE_STATEMENT = re.compile(r"^(\t+)([A-Za-z_]\w*) -> ([A-Za-z_]\w*) \[", re.M)
_CLUSTER_STATEMENT = re.compile(r"(subgraph (cluster_\w+) \{\s*graph \[)")


def _pinned(source: str, layout: Mapping[str, Any]) -> str:
    """``source`` with the positions of ``layout`` (Graphviz's JSON output for a diagram of the
    same graph) written in, drawn by the ``nop2`` engine, which keeps positions as given.

    Node sizes become minimums, so a label never gets clipped. Anything the layout
    does not know (it should know everything) is left to Graphviz, so the worst
    case is an unpinned frame, never a failure.
    """
    count = int(layout.get("_subgraph_cnt", 0))
    objects = layout.get("objects", [])
    subgraphs, nodes = objects[:count], objects[count:]
    by_id = {node["_gvid"]: node for node in nodes}
    node_attrs = {node["name"]: f'pos="{node["pos"]}" width={node["width"]} height={node["height"]} '
                  for node in nodes if "pos" in node}
    edge_attrs: dict[tuple[str, str], list[str]] = {}
    for edge in sorted(layout.get("edges", []), key=lambda e: e["_gvid"]):
        key = (by_id[edge["tail"]]["name"], by_id[edge["head"]]["name"])
        extra = (f'pos="{edge["pos"]}" ' if "pos" in edge else "") + (f'lp="{edge["lp"]}" ' if "lp" in edge else "")
        edge_attrs.setdefault(key, []).append(extra)
    clusters = {sub["name"]: sub for sub in subgraphs}
    seen: dict[tuple[str, str], int] = {}
    pinned_all = True

    def pin_edge(match: re.Match) -> str:
        nonlocal pinned_all
        key = (match.group(2), match.group(3))
        k = seen.get(key, 0)
        seen[key] = k + 1
        known = edge_attrs.get(key, [])
        if k >= len(known):
            pinned_all = False
            return match.group(0)
        return match.group(0) + known[k]

    def pin_node(match: re.Match) -> str:
        return match.group(0) + node_attrs.get(match.group(2), "")

    def pin_cluster(match: re.Match) -> str:
        nonlocal pinned_all
        cluster = clusters.get(match.group(2))
        if cluster is None or "bb" not in cluster:
            pinned_all = False
            return match.group(0)
        return match.group(0) + f'bb="{cluster["bb"]}" ' + (f'lp="{cluster["lp"]}" ' if "lp" in cluster else "")

    result = _EDGE_STATEMENT.sub(pin_edge, source)
    result = _NODE_STATEMENT.sub(pin_node, result)
    result = _CLUSTER_STATEMENT.sub(pin_cluster, result)
    if not pinned_all or "bb" not in layout:
        return source
    return result.replace("{\n", f'{{\n\tgraph [layout=nop2 bb="{layout["bb"]}"]\n', 1)


# -- the page -----------------------------------------------------------------------------

_SVG_PREAMBLE = re.compile(r"^.*?(?=<svg\b)", re.S)
_SVG_COMMENT = re.compile(r"<!--.*?-->", re.S)
# where each node, edge and cluster of Graphviz's SVG starts: the pieces frames share
_SVG_PIECE = re.compile(r'(?=<g id="(?:node|edge|clust)\d+" class=")')
_FONT_SIZE = re.compile(r'<text\b[^>]*\bfont-size="([\d.]+)"')


def _pieces(svg: str) -> list[str]:
    """Graphviz's SVG made fit to sit inside HTML (no XML preamble or comments), cut into the
    pieces of text (the header, then one per node, edge and cluster) it is the concatenation of."""
    svg = _SVG_COMMENT.sub("", _SVG_PREAMBLE.sub("", svg, count=1)).strip()
    return [piece for piece in _SVG_PIECE.split(svg) if piece]


def _script_json(data: Any) -> str:
    """``data`` as JSON that can sit inside a <script> element: no '<', '>' or '&' appear literally."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _typical_text_size(svg: str) -> float:
    """The font size (in the SVG's units, points) most of a Graphviz picture's text is written in: the numbers'.

    >>> _typical_text_size('<text font-size="8.00">a</text><text font-size="10.00">1</text>'
    ...                    '<text font-size="10.00">2</text>')
    10.0
    """
    sizes = Counter(float(size) for size in _FONT_SIZE.findall(svg))
    return sizes.most_common(1)[0][0] if sizes else 14.0  # Graphviz's default


def _inline_height(layout: Mapping[str, Any]) -> int:
    """Pixels for the player inside a notebook: the controls and the diagram at natural size, within bounds."""
    *_, height = (float(x) for x in str(layout.get("bb", "0,0,0,400")).split(","))
    return int(min(MAX_INLINE_PX, max(MIN_INLINE_PX, HEADER_PX + height * 4 / 3)))


_STYLE = """
:root { --ink: #1a1a1a; --muted: #6b6b6b; --accent: #ff7f0e; --red: #d62728; }
* { box-sizing: border-box; }
html { height: 100%; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--ink); background: #fafafa; height: 100%; display: flex; flex-direction: column; }
header { flex: none; background: #fff; border-bottom: 1px solid #ddd; padding: 10px 18px 8px; }
h1 { font-size: 17px; margin: 0 0 6px; }
#controls { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
#controls button { font: inherit; min-width: 2.6em; padding: 3px 9px; border: 1px solid #bbb;
                   border-radius: 5px; background: #fff; cursor: pointer; }
#controls button:hover { border-color: var(--accent); }
#controls button:focus-visible, #slider:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
#slider { flex: 1 1 240px; accent-color: var(--accent); }
#counter { font-variant-numeric: tabular-nums; color: var(--muted); min-width: 7em; text-align: right; }
.caption { margin: 8px 0 0; font-weight: 600; }
.detail { margin: 2px 0 0; color: var(--red); font-variant-numeric: tabular-nums; min-height: 1.45em; }
.phase { display: inline-block; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
         padding: 0 6px; margin-right: 6px; border-radius: 4px; color: #fff; background: var(--muted); }
.phase.forward { background: #2b62b8; } .phase.backward { background: var(--red); }
main { flex: 1 1 auto; min-height: 0; display: flex; flex-direction: column; padding: 12px 18px 18px; }
section.frame { flex: 1 1 auto; min-height: 0; display: flex; flex-direction: column; }
section.frame[hidden] { display: none; }
.diagram { flex: 1 1 auto; min-height: 160px; overflow: auto; }
.diagram svg { display: block; margin: 0 auto; background: #fff; }
.help { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var frames = Array.prototype.slice.call(document.querySelectorAll("section.frame"));
  var slider = document.getElementById("slider");
  var counter = document.getElementById("counter");
  var play = document.getElementById("play");
  var caption = document.getElementById("caption");
  var detail = document.getElementById("detail");
  var interval = Number(document.body.getAttribute("data-interval")) || 1000;
  var accent = document.body.getAttribute("data-highlight");
  var fit = document.getElementById("fit");
  var pictures = JSON.parse(document.getElementById("pictures").textContent);
  var minScale = Number(document.body.getAttribute("data-min-scale")) || 0;
  var current = 0, timer = null;

  function draw(i) {
    return pictures.frames[i].map(function (k) { return pictures.pieces[k]; }).join("");
  }
  function show(i) {
    i = Math.max(0, Math.min(frames.length - 1, i));
    if (i !== current) { frames[current].querySelector(".diagram").innerHTML = ""; }
    frames[current].hidden = true;
    frames[i].querySelector(".diagram").innerHTML = draw(i);
    frames[i].hidden = false;
    current = i;
    slider.value = String(i);
    counter.textContent = "step " + (i + 1) + " / " + frames.length;
    caption.innerHTML = frames[i].querySelector(".caption-source").innerHTML;
    detail.textContent = frames[i].getAttribute("data-detail");
    document.body.setAttribute("data-frame", String(i));
    arrange();
  }
  // Natural size, or with "fit" as small as the window asks but never below minScale (the
  // numbers stay readable): a larger diagram scrolls, with the current step in the middle.
  function arrange() {
    var view = frames[current].querySelector(".diagram");
    var svg = view.querySelector("svg");
    var box = svg && svg.viewBox.baseVal;
    if (!box || !box.width || !box.height) { return; }
    var natural = parseFloat(svg.getAttribute("width")) * 4 / 3 / box.width;  // Graphviz gives points
    var scale = natural;
    if (document.body.classList.contains("fit")) {
      var room = Math.min(view.clientWidth / box.width, view.clientHeight / box.height);
      scale = Math.min(natural, Math.max(minScale, room));
    }
    svg.style.width = box.width * scale + "px";
    svg.style.height = box.height * scale + "px";
    centre(view, frames[current]);
  }
  function around(elements) {
    if (!elements.length) { return null; }
    var r = elements[0].getBoundingClientRect();
    var box = {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    elements.forEach(function (el) {
      var b = el.getBoundingClientRect();
      box.left = Math.min(box.left, b.left); box.top = Math.min(box.top, b.top);
      box.right = Math.max(box.right, b.right); box.bottom = Math.max(box.bottom, b.bottom);
    });
    return box;
  }
  // Scrolls only the diagram's own box (scrollIntoView would scroll a notebook holding the player too):
  // the whole highlight in the middle when it fits, else its nodes, else its first node.
  function centre(view, frame) {
    var marked = [];
    frame.querySelectorAll('[stroke="' + accent + '"]').forEach(function (el) {
      var owner = el.closest("g.node, g.edge");
      if (owner && marked.indexOf(owner) < 0) { marked.push(owner); }
    });
    var nodes = marked.filter(function (g) { return g.classList.contains("node"); });
    var choices = [marked, nodes, nodes.slice(0, 1), marked.slice(0, 1)].map(around).filter(Boolean);
    if (!choices.length) { return; }
    var pick = choices[choices.length - 1];
    for (var k = 0; k < choices.length; k++) {
      var c = choices[k];
      if (c.right - c.left <= view.clientWidth && c.bottom - c.top <= view.clientHeight) { pick = c; break; }
    }
    var room = view.getBoundingClientRect();
    view.scrollLeft += (pick.left + pick.right) / 2 - (room.left + view.clientLeft + view.clientWidth / 2);
    view.scrollTop += (pick.top + pick.bottom) / 2 - (room.top + view.clientTop + view.clientHeight / 2);
  }
  function toggleFit() {
    var on = document.body.classList.toggle("fit");
    fit.setAttribute("aria-pressed", on ? "true" : "false");
    arrange();
  }
  function stop() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    play.textContent = "\\u25B6 play";
    play.setAttribute("aria-pressed", "false");
  }
  function start() {
    if (current === frames.length - 1) { show(0); }
    timer = setInterval(function () {
      if (current >= frames.length - 1) { stop(); } else { show(current + 1); }
    }, interval);
    play.textContent = "\\u275A\\u275A pause";
    play.setAttribute("aria-pressed", "true");
  }
  function toggle() { if (timer === null) { start(); } else { stop(); } }

  document.getElementById("first").addEventListener("click", function () { stop(); show(0); });
  document.getElementById("prev").addEventListener("click", function () { stop(); show(current - 1); });
  document.getElementById("next").addEventListener("click", function () { stop(); show(current + 1); });
  document.getElementById("last").addEventListener("click", function () { stop(); show(frames.length - 1); });
  play.addEventListener("click", toggle);
  fit.addEventListener("click", toggleFit);
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var key = event.key;
    if (key === "ArrowRight" || key === "ArrowDown") { stop(); show(current + 1); }
    else if (key === "ArrowLeft" || key === "ArrowUp") { stop(); show(current - 1); }
    else if (key === "Home") { stop(); show(0); }
    else if (key === "End") { stop(); show(frames.length - 1); }
    else if (key === " " || key === "k") { toggle(); }
    else if (key === "f") { toggleFit(); }
    else { return; }
    event.preventDefault();
  });
  window.addEventListener("resize", arrange);
  show(0);
})();
"""


def _page(heading: str, level: str, every: list[Frame], pictures: list[str], interval: float,
          text_size: float) -> str:
    esc = quoting.html_page
    pieces: dict[str, int] = {}  # each distinct piece of text, numbered in order of first use
    drawn = [[pieces.setdefault(piece, len(pieces)) for piece in _pieces(svg)] for svg in pictures]
    sections = []
    for k, frame in enumerate(every):
        phase = f'<span class="phase {esc(frame.phase)}">{esc(frame.phase)}</span>'
        sections.append(
            f'<section class="frame" id="frame-{k}" data-phase="{esc(frame.phase)}" data-current="{esc(frame.current)}"'
            f' data-detail="{esc(frame.detail)}"{"" if k == 0 else " hidden"}>'
            f'<template class="caption-source">{phase}{esc(frame.caption)}</template>'
            f'<div class="diagram">{"".join(_pieces(pictures[0])) if k == 0 else ""}</div></section>'
        )
    data = _script_json({"pieces": list(pieces), "frames": drawn})
    count = len(every)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(heading)}</title>
<style>{_STYLE}</style>
</head>
<body class="fit" data-interval="{int(round(interval * 1000))}" data-level="{esc(level)}" data-frame="0"
 data-highlight="{esc(PALETTE[0])}" data-min-scale="{READABLE_PX / text_size:.4f}">
<header>
<h1>{esc(heading)}</h1>
<div id="controls" role="toolbar" aria-label="player">
<button id="first" type="button" title="First step (Home)" aria-label="first step">|\u25c0</button>
<button id="prev" type="button" title="Step back (\u2190)" aria-label="step back">\u25c0</button>
<button id="play" type="button" title="Play / pause (space)" aria-pressed="false">\u25b6 play</button>
<button id="next" type="button" title="Step forward (\u2192)" aria-label="step forward">\u25b6</button>
<button id="last" type="button" title="Last step (End)" aria-label="last step">\u25b6|</button>
<input id="slider" type="range" min="0" max="{count - 1}" value="0" step="1" aria-label="step">
<span id="counter">step 1 / {count}</span>
<button id="fit" type="button" title="Fit the diagram to the window, as far as its numbers stay readable, or show it at natural size (f)"
 aria-pressed="true">fit</button>
</div>
<p class="caption" id="caption"></p>
<p class="detail" id="detail"></p>
<p class="help">\u2190 \u2192 step, space play/pause, Home/End first/last, f fit to the window or natural size. Black: forward values; red: gradients;
highlighted: the current step.</p>
</header>
<main>
{chr(10).join(sections)}
</main>
<script type="application/json" id="pictures">{data}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
