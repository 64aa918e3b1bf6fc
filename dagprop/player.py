"""The player: one self-contained HTML file that plays the steps of :func:`dagprop.simulate`
as diagrams drawn by :mod:`dagprop.drawing`.

Each frame is an SVG of the diagram with what is known at that point (values
computed so far, gradients received so far, or in forward mode the tangents pushed so
far, running sums where a node has received several contributions) and the current
node or edge highlighted. Consecutive frames
differ in a few nodes and edges, so the page stores each distinct piece of SVG (a
node, an edge, a cluster) once, and each frame as the list of its pieces, put
together when the frame is shown: the file grows with the run, not with the run
times the graph. The player needs no network: no external scripts, styles or fonts.
"""

from __future__ import annotations

import functools
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, overload

import numpy as np

from . import rules
from .drawing import quoting, to_dot
from .drawing.diagram import folded_dot
from .drawing.dot import pipe
from .drawing.labels import format_number
from .drawing.page import inline_height, pinned, typical_text_size
from .drawing.page import page as render_page
from .errors import GraphError, LargeGraphWarning, RenderError
from .paths import element_graph
from .run import Run
from .simulation import Step, simulate

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["Frame", "frames", "animate", "Animation"]

LEVELS = ("tensor", "element")
MAX_NODES = 100


@dataclass
class Frame:
    """One picture of a run: what is known, what just happened, and what to highlight.

    Attributes
    ----------
    phase : {"start", "forward", "backward", "tangent", "done"}
        "tangent": forward mode pushing a tangent along an edge.
    caption : str
        One line saying what this step did (plain text).
    detail : str
        A second line: the gradient or tangent of the node this step added to (with
        the running sum when it has received two or more contributions), else empty.
    run : Run
        What is known after this step: the values computed, the gradients received
        (running sums where several contributions arrived) and the edge gradients sent;
        in forward mode, the tangents and edge tangents pushed so far.
    highlight : list
        Node names and ``(source, consumer[, slot])`` edges to draw highlighted.
    current : str
        The node or edge of this step, as text (``"a1"``, ``"yhat->a2[0]"``); an edge
        is written in the direction its step goes (a tangent step's ``"a1->h1[0]"``).
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
           seed: Any = None, precision: int = 4, mode: str = "vjp",
           tangents: Mapping[Node | str, Any] | None = None) -> list[Frame]:
    """The frames of an animated run, in the scheduler's order, without drawing them.

    A first frame with the leaves' values, one frame per forward step, a frame
    where the backward pass starts from the seed at the loss, one frame per
    backward step (one per edge slot), and a last frame with everything. In
    forward mode (``mode="forward"``), after the forward steps: a frame where the
    tangents start at their leaves, one frame per tangent step (one per edge slot),
    and a last frame.

    Parameters
    ----------
    graph, loss, feeds, seed, mode, tangents
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

    Forward mode, pushing dx = 1 (``L = x*x + x``, so ``L.tangent = 2x + 1``):

    >>> for f in frames(g, L, mode="forward", tangents={x: 1.0})[3:]:
    ...     print(f.phase, f.current, "|", f.caption, "|", f.detail)
    tangent x | Forward mode starts at the leaves: x.tangent = 1 |
    tangent x->y[0] | Tangent: x pushes 3 forward into y (input a of mul) | y.tangent = 3
    tangent x->y[1] | Tangent: x pushes 3 forward into y (input b of mul) | y.tangent = 3 + 3 = 6, a running sum of 2 contributions
    tangent y->L[0] | Tangent: y pushes 6 forward into L (input a of add) | L.tangent = 6
    tangent x->L[1] | Tangent: x pushes 1 forward into L (input b of add) | L.tangent = 6 + 1 = 7, a running sum of 2 contributions
    done  | Done: every tangent is known | L.tangent = 7
    """
    return _build(graph, loss, level, feeds, seed, precision, mode, tangents)[0]


def _build(graph: Graph, loss: Node | str, level: str, feeds: Mapping[str, Any] | None, seed: Any,
           precision: int, mode: str = "vjp", tangents: Mapping[Node | str, Any] | None = None
           ) -> tuple[list[Frame], Run, set[int]]:
    """The frames, the finished run, and the indices of the nodes the run computes (the loss's
    ancestors; every node in forward mode)."""
    if level not in LEVELS:
        raise GraphError(f"level must be 'tensor' or 'element', got {level!r}")
    loss_node = graph.node(loss)
    simulation = simulate(graph, loss_node, feeds=feeds, seed=seed, mode=mode, tangents=tangents)
    forward_mode = mode == "forward"
    wanted = {n.index for n in graph} if forward_mode else graph.plan.ancestors((loss_node.index,))
    leaves = [n for n in graph if n.op_def is None and simulation.run.value(n) is not None and n.index in wanted]
    steps = list(simulation)
    finished = simulation.run
    short = functools.partial(_brief, precision=precision)

    known = finished.without_grads().replaced(tangents=None, edge_tangents=None)
    known.values = [None] * len(known.values)
    for node in leaves:
        known.values[node.index] = finished.values[node.index]
    result = [Frame("start", "Start: the leaves are known: " + ", ".join(f"{n.name} = {short(finished.value(n))}"
                                                                        for n in leaves),
                    "", known.copy(), [n.name for n in leaves], "")]
    received: dict[str, list[np.ndarray]] = {}  # gradients received by each node (tangents, in forward mode)
    started = False

    def start() -> Frame:
        """The frame where the derivatives start: the seed at the loss, or the tangents at their leaves."""
        if forward_mode:
            seeded = [n for n in graph if n.op_def is None and finished.tangent(n) is not None]
            pushed: list = [None] * len(known.values)
            for node in seeded:
                pushed[node.index] = finished.tangent(node)
            known.tangents = pushed
            named = ", ".join(f"{n.name}.tangent = {short(finished.tangent(n))}" for n in seeded) or "none given"
            return Frame("tangent", f"Forward mode starts at the leaves: {named}", "", known.copy(),
                         [n.name for n in seeded], seeded[0].name if seeded else "")
        ((_, seed_value),) = finished.seeds
        known.grads[loss_node.index] = seed_value
        return Frame("backward", f"Backward starts at {loss_node.name} with "
                                 f"d{loss_node.name}/d{loss_node.name} = {short(seed_value)}", "",
                     known.copy(), [loss_node.name], loss_node.name)

    for step in steps:
        if step.kind == "forward":
            node = graph[step.node]
            known.values[node.index] = step.value
            inputs = ", ".join(i.name for i in node.inputs)
            edges = [(i.name, node.name, slot) for slot, i in enumerate(node.inputs)]
            result.append(Frame("forward", f"Forward: {node.name} = {node.op}({inputs}) = {short(step.value)}", "",
                                known.copy(), [node.name, *edges], node.name, step))
            continue
        if not started:
            started = True
            result.append(start())
        assert step.edge is not None and step.contribution is not None  # as every backward and tangent step has
        source, consumer, slot = step.edge
        if step.kind == "tangent":
            result.append(_tangent_frame(graph, step, (source, consumer, slot), known, received, short))
            continue
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
    if forward_mode and not started:  # tangents given to leaves that feed nothing
        result.append(start())
    if forward_mode:
        reached = finished.tangent(loss_node)
        result.append(Frame("done", "Done: every tangent is known", "" if reached is None else
                            f"{loss_node.name}.tangent = {short(reached)}", known.copy(), [], ""))
    else:
        result.append(Frame("done", "Done: every gradient is known" if started else "Done", "",
                            known.copy(), [], ""))
    return result, finished, set(wanted)


def _tangent_frame(graph: Graph, step: Step, edge: tuple[str, str, int], known: Run,
                   received: dict[str, list[np.ndarray]], short: Callable[[Any], str]) -> Frame:
    """The frame of a tangent step along ``edge``, recording in ``known`` what it pushed: forward
    mode's mirror of a backward frame, the running sum kept at the consumer."""
    source, consumer, slot = edge
    contribution, tangent, tangents = step.contribution, step.tangent, known.tangents
    assert contribution is not None and tangent is not None and tangents is not None  # once forward mode started
    consumer_node = graph[consumer]
    known.edge_tangents[(consumer_node.index, slot)] = contribution
    tangents[consumer_node.index] = tangent
    parts = received.setdefault(consumer, [])
    parts.append(contribution)
    if len(parts) >= 2:
        detail = (f"{consumer}.tangent = " + " + ".join(short(p) for p in parts) + f" = {short(tangent)}, "
                  f"a running sum of {len(parts)} contributions")
    else:
        detail = f"{consumer}.tangent = {short(tangent)}"
    slot_name = rules.slot_name(consumer_node, slot)
    return Frame("tangent", f"Tangent: {source} pushes {short(contribution)} forward into {consumer} "
                            f"(input {slot_name} of {consumer_node.op})", detail, known.copy(),
                 [consumer, (source, consumer, slot)], f"{source}->{consumer}[{slot}]", step)


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
        return (f'<iframe srcdoc="{quoting.srcdoc(self.html)}" title="{quoting.html_page(self.title)}" '
                f'sandbox="allow-scripts" style="width: 100%; height: {self.height}px; border: 1px solid #ddd; '
                f'resize: vertical"></iframe>')

    def __repr__(self) -> str:
        return (f"<Animation {self.title!r}: {self.frames} frame{'' if self.frames == 1 else 's'}, "
                f"{len(self.html)} characters of HTML>")


@overload
def animate(graph: Graph, loss: Node | str, path: None = None, level: str = "tensor", *,
            feeds: Mapping[str, Any] | None = None, seed: Any = None, title: str | None = None,
            interval: float = 1.0, precision: int = 4, rankdir: str = "LR", timeout: float = 60.0,
            max_nodes: int | None = MAX_NODES, expand: Iterable[str] | bool = (), mode: str = "vjp",
            tangents: Mapping[Node | str, Any] | None = None) -> Animation: ...


@overload
def animate(graph: Graph, loss: Node | str, path: str | FilePath, level: str = "tensor", *,
            feeds: Mapping[str, Any] | None = None, seed: Any = None, title: str | None = None,
            interval: float = 1.0, precision: int = 4, rankdir: str = "LR", timeout: float = 60.0,
            max_nodes: int | None = MAX_NODES, expand: Iterable[str] | bool = (), mode: str = "vjp",
            tangents: Mapping[Node | str, Any] | None = None) -> FilePath: ...


def animate(graph: Graph, loss: Node | str, path: str | FilePath | None = None, level: str = "tensor", *,
            feeds: Mapping[str, Any] | None = None, seed: Any = None, title: str | None = None,
            interval: float = 1.0, precision: int = 4, rankdir: str = "LR", timeout: float = 60.0,
            max_nodes: int | None = MAX_NODES, expand: Iterable[str] | bool = (), mode: str = "vjp",
            tangents: Mapping[Node | str, Any] | None = None) -> FilePath | Animation:
    """Play the forward and backward run step by step, in one self-contained HTML page: written
    to ``path``, or, without a path, returned as an :class:`Animation` that plays inline in Jupyter.

    With ``mode="forward"`` and ``tangents``, play forward mode instead: the forward
    steps, then the tangents pushed forward edge by edge from their leaves, drawn in
    blue on the nodes and edges as they arrive (see :func:`dagprop.simulate`).

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
    feeds, seed, mode, tangents
        As in :func:`dagprop.simulate`.
    title : str, optional
        The page's heading (default: "dagprop: forward and backward through <loss>", or
        "dagprop: forward mode through <loss>").
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

    Forward mode: the tangent of every node along dx = 1, pushed edge by edge.

    >>> forward = dp.animate(g, L, mode="forward", tangents={x: 1.0})
    >>> forward  # doctest: +ELLIPSIS
    <Animation 'dagprop: forward mode through L': 9 frames, ... characters of HTML>
    >>> 'data-phase="tangent"' in forward.html
    True
    """
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise RenderError(f"max_nodes= must be a positive int or None, got {max_nodes!r}")
    opened = expand if isinstance(expand, bool) else tuple(expand)
    if opened:
        graph = graph.expanded(None if opened is True else opened)  # it takes the original's nodes
    every, finished, wanted = _build(graph, loss, level, feeds, seed, precision, mode, tangents)
    loss_name = graph.node(loss).name
    show = ("value", "tangent") if mode == "forward" else ("value", "grad")
    if level == "element":
        elements = sum(int(np.size(finished.values[i])) for i in wanted)
        if max_nodes is not None and elements > max_nodes:
            warnings.warn(f"the element graph has {elements} elements, more than max_nodes={max_nodes}: playing the "
                          f"tensor level instead; pass max_nodes=None to play every element (Graphviz draws them "
                          f"all in every frame)", LargeGraphWarning, stacklevel=2)
            level = "tensor"
    if level == "element":
        view = element_graph(finished, [n for n in graph if n.index in wanted])
        sources = [to_dot(view, run=frame.run, highlight=_as_nodes(graph, frame.highlight), level=level, show=show,
                          precision=precision, rankdir=rankdir, legend=False, max_nodes=None) for frame in every]
    elif max_nodes is not None and len(graph) > max_nodes:
        sources, folded = [], ""
        for frame in every:
            source, folded = folded_dot(graph, run=frame.run, highlight=frame.highlight, max_nodes=max_nodes,
                                        precision=precision, rankdir=rankdir, legend=False, show=show)
            sources.append(source)
        warnings.warn(f"the graph has {len(graph)} nodes, more than max_nodes={max_nodes}: playing {folded}; pass "
                      f"max_nodes=None to play everything (Graphviz draws every node in every frame)",
                      LargeGraphWarning, stacklevel=2)
    else:
        sources = [to_dot(graph, run=frame.run, highlight=frame.highlight, level=level, show=show,
                          precision=precision, rankdir=rankdir, legend=False, max_nodes=None) for frame in every]
    # Lay out once, with the last frame's labels (it knows the most, so they are the
    # largest), and draw every frame at those positions: nothing moves between steps.
    layout = json.loads(pipe(sources[-1], "json", timeout=timeout))

    def draw(source: str) -> str:
        return pipe(pinned(source, layout), "svg", timeout=timeout).decode("utf-8")

    with ThreadPoolExecutor(max_workers=4) as pool:
        pictures = list(pool.map(draw, dict.fromkeys(sources)))  # each distinct picture once
    drawn = dict(zip(dict.fromkeys(sources), pictures))
    heading = title if title is not None else (f"dagprop: forward mode through {loss_name}" if mode == "forward" else
                                               f"dagprop: forward and backward through {loss_name}")
    last = drawn[sources[-1]]
    page = render_page(heading, level, every, [drawn[source] for source in sources], interval, typical_text_size(last),
                       mode)
    animation = Animation(page, heading, len(every), inline_height(layout))
    return animation if path is None else animation.save(path)


def _as_nodes(graph: Graph, highlight: list) -> list:
    """Node names as nodes (edges as pairs of nodes): at the element level a name could also be an element's."""
    return [(graph[item[0]], graph[item[1]], *item[2:]) if isinstance(item, tuple) else graph[item]
            for item in highlight]
