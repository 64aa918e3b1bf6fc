"""The ``dagprop`` command: list ops, draw a graph, check an op, run the demo.

Each subcommand is one function in :data:`COMMANDS` that adds its parser to the
subparsers and sets ``run``, the function that does the work and returns the
exit status. To add one (``animate``, ``code``...), write such a function and
append it to ``COMMANDS``::

    def animate_command(subparsers):
        parser = subparsers.add_parser("animate", help="...", description="...")
        parser.add_argument("source")
        parser.set_defaults(run=_run_animate)

A user error raises any exception (preferably a :class:`dagprop.DagpropError`);
``main`` turns it into one line on stderr and exit status 1, or shows the
traceback with ``--debug``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import runpy
import sys
from pathlib import Path as FilePath
from typing import Any, Callable, Sequence

import numpy as np

from .errors import CommandError, DagpropError
from .graph import Graph, Node
from .registry import register_plugin, unregister_plugin
from .io import MAX_ELEMENTS
from .player import MAX_NODES as MAX_PLAYED_NODES

__all__ = ["main", "build_parser", "COMMANDS", "load_source", "add_source", "find_loss", "require_loss"]


# -- shared helpers -------------------------------------------------------------------------------


def load_source(source: str | FilePath, *, max_elements: int | None = MAX_ELEMENTS
                ) -> tuple[Graph, Node | str | None]:
    """The graph (and loss, if it says) from a saved ``.json`` graph, an ``.onnx`` model or a Python file.

    A Python file is run as a script, with the user's permissions (it is the user's
    own code: only pass one you trust), and must define ``graph``, a
    :class:`dagprop.Graph`; it may define ``loss``, a node or a node name. A JSON
    file is only parsed, never run, and is bounded by ``max_elements`` as in
    :func:`dagprop.load`. An ONNX model is only parsed (:func:`dagprop.from_onnx`);
    its inputs get seeded random values of their declared shapes (a note on stderr
    says so) and its loss is the sum of its outputs, a node named ``loss``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.py")
    ...     _ = open(path, "w").write("import dagprop as dp\\ngraph = dp.Graph()\\nloss = graph.param('w', 2.0)\\n")
    ...     graph, loss = load_source(path)
    >>> loss.name
    'w'
    """
    graph, loss, _ = _read_source(source, max_elements=max_elements)
    return graph, loss


def _read_source(source: str | FilePath, *, max_elements: int | None = MAX_ELEMENTS, loss: str | None = None,
                 default_loss: bool = True, seed: int = 0) -> tuple[Graph, Node | str | None, str | None]:
    """:func:`load_source`, and a note saying what loss an ONNX model was given (for the diagram's title)."""
    from .io import read

    path = FilePath(source)
    if not path.exists():
        raise CommandError(f"{str(path)!r} does not exist")
    if path.suffix.lower() == ".json":
        return (*read(path, max_elements=max_elements), None)
    if path.suffix.lower() == ".onnx":
        return _read_onnx(path, loss=loss, default_loss=default_loss, seed=seed)
    if path.suffix.lower() != ".py":
        raise CommandError(f"cannot read {str(path)!r}: SOURCE must be a saved graph (.json), an ONNX model (.onnx) "
                           f"or a Python file (.py) that defines `graph`")
    if not path.is_file():
        raise CommandError(f"cannot run {str(path)!r}: it is not a regular file")
    namespace = runpy.run_path(str(path), run_name="__dagprop_source__")
    graph = namespace.get("graph")
    if not isinstance(graph, Graph):
        found = "nothing" if graph is None else f"a {type(graph).__name__}"
        raise CommandError(f"{str(path)!r} must define `graph`, a dagprop.Graph; it defines {found} under that name")
    file_loss = namespace.get("loss")
    if file_loss is not None and not isinstance(file_loss, (Node, str)):
        raise CommandError(f"{str(path)!r}: `loss` must be a node or a node name, got a {type(file_loss).__name__}")
    return graph, file_loss, None


def _read_onnx(path: FilePath, *, loss: str | None, default_loss: bool, seed: int
               ) -> tuple[Graph, Node | str | None, str | None]:
    """An ONNX model with seeded random inputs and, unless ``loss`` names a node, the sum of its outputs as loss."""
    from .importers.onnx import example_inputs, from_onnx, read_model

    model = read_model(path)
    values = example_inputs(model, seed=seed)
    if values:
        shapes = ", ".join(f"{name} {value.shape}" for name, value in values.items())
        print(f"dagprop: note: {path.name} has no values for its inputs, so they are seeded random examples "
              f"(--seed {seed}; normal values, valid indices for integer inputs, size 1 for symbolic axes): "
              f"{shapes}", file=sys.stderr)
    graph = from_onnx(model, inputs=values)
    if loss is not None or not default_loss:
        return graph, loss, None
    outputs = [graph[info.name] for info in model.graph.output]
    name = next(n for n in ("loss", *(f"loss_{k}" for k in range(2, len(graph) + 3))) if n not in graph)
    sums = [graph.op("sum", out, name=name if len(outputs) == 1 else None) for out in outputs]
    total = sums[0]
    for k, term in enumerate(sums[1:], start=2):
        total = graph.op("add", total, term, name=name if k == len(sums) else None)
    listed = ", ".join(out.name for out in outputs)
    return graph, total, f"{path.name}, loss: sum of output{'s' if len(outputs) > 1 else ''} {listed}"


# What SOURCE is, said once for every command that takes one, next to what running it means.
SOURCE_HELP = ("a saved graph (.json), which is only parsed, never executed; an ONNX model (.onnx), only parsed, "
               "whose inputs are filled with seeded random normal values of their declared shapes (valid indices for "
               "integer inputs; a note on stderr lists them; see --seed) and whose loss, without --loss, is the sum of its outputs; or a Python file "
               "(.py) that defines `graph` (and optionally `loss`), which is RUN as a script with your permissions: "
               "pass only a .py you trust")
SOURCE_NOTE = ("Careful: a .py SOURCE is executed (it is meant to be your own code that builds the graph), so never "
               "pass one you do not trust; a .json SOURCE is never executed, only parsed and checked, and files "
               "larger than --max-elements allows are refused; a .onnx SOURCE is parsed and checked with the onnx "
               "package (pip install 'dagprop[onnx]'), never executed.")


def add_source(parser: argparse.ArgumentParser) -> None:
    """Add the SOURCE argument and ``--max-elements`` to a command that reads a graph.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_source(parser)
    >>> args = parser.parse_args(["g.json", "--max-elements", "5000000"])
    >>> args.source, args.max_elements
    ('g.json', 5000000)
    """
    parser.epilog = SOURCE_NOTE if not parser.epilog else f"{parser.epilog} {SOURCE_NOTE}"
    parser.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    parser.add_argument("--max-elements", type=_positive_int, default=MAX_ELEMENTS, metavar="N",
                        help=f"for a .json SOURCE: refuse a file any of whose arrays, or whose nodes together, hold "
                             f"more than N numbers (default {MAX_ELEMENTS:,}); raise it for a large file you trust")
    parser.add_argument("--seed", type=int, default=0,
                        help="for a .onnx SOURCE: the seed of the random example values its inputs get (default 0)")


def _positive_int(text: str) -> int:
    try:
        number = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive")
    return number


def find_loss(graph: Graph, given: Node | str | None = None) -> Node | None:
    """The node to differentiate: ``given`` if any, else the only single-element node that nothing consumes.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); L = g.op("sum", g.param("w", [1.0, 2.0]), name="L")
    >>> find_loss(g).name
    'L'
    """
    if given is not None:
        try:
            return graph.node(given)
        except KeyError as exc:
            raise CommandError(str(exc.args[0]) + " (the loss)") from None
    scalar = [n for n in _outputs(graph) if n.shape is not None and int(np.prod(n.shape)) == 1]
    return scalar[0] if len(scalar) == 1 else None


def require_loss(graph: Graph, given: Node | str | None, alternative: str = "") -> Node:
    """:func:`find_loss`, or a CommandError listing the graph's outputs and what to pass instead."""
    loss = find_loss(graph, given)
    if loss is None:
        outputs = [n.name for n in _outputs(graph)]
        raise CommandError(f"cannot tell which node is the loss (outputs: {', '.join(outputs) or 'none'}); "
                           f"pass --loss NAME{alternative}")
    return loss


def _outputs(graph: Graph) -> list[Node]:
    """The op nodes nothing consumes, in the order they were added."""
    consumed = {source.name for node in graph for source in node.inputs}
    return [n for n in graph if n.name not in consumed and n.op_def is not None]


def _expand_option(text: str | None) -> Any:
    """``--expand``: 'all' opens every composite op; otherwise a comma-separated list of op names."""
    return True if text and text.strip().lower() == "all" else _split(text)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, DagpropError) else f"{type(exc).__name__}: {text}"


def _add_debug(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback when something goes wrong")


def _subparser(subparsers: Any, name: str, help: str, description: str, *,
               plugins: bool = False) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=description)
    _add_debug(parser, argparse.SUPPRESS)  # SUPPRESS: do not undo a --debug given before the command
    if plugins:
        parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py|MODULE[:ATTR]",
                            help="use the ops of a plugin that is not installed: a Python file (run, as your own "
                                 "code), an importable module, or an attribute of one (a class is instantiated); "
                                 "may be given several times")
    return parser


def load_plugin(spec: str) -> Any:
    """The plugin ``--plugin`` names: the module a ``FILE.py`` defines (the file is run), an
    importable ``MODULE``, or the attribute ``ATTR`` of one (``MODULE:ATTR``; a class is instantiated).

    Examples
    --------
    >>> load_plugin("dagprop_plugins.elementwise").__name__
    'dagprop_plugins.elementwise'
    >>> type(load_plugin("collections:OrderedDict")).__name__
    'OrderedDict'
    >>> load_plugin("no_such_module:plugin")
    Traceback (most recent call last):
    ...
    dagprop.errors.CommandError: --plugin no_such_module:plugin: no module named 'no_such_module'
    """
    if spec.endswith(".py"):
        path = FilePath(spec)
        if not path.is_file():
            raise CommandError(f"--plugin {spec}: no such file")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        if loader_spec is None or loader_spec.loader is None:
            raise CommandError(f"--plugin {spec}: cannot load it as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        return module
    module_name, colon, attribute = spec.partition(":")
    if not module_name or (colon and not attribute):
        raise CommandError(f"--plugin takes FILE.py, MODULE or MODULE:ATTR, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CommandError(f"--plugin {spec}: no module named {exc.name!r}") from None
    if not colon:
        return module
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise CommandError(f"--plugin {spec}: module {module_name!r} has no attribute {attribute!r}") from None
    return found() if isinstance(found, type) else found


# -- dagprop ops ------------------------------------------------------------------------------------


def ops_command(subparsers: Any) -> None:
    """Add ``dagprop ops`` (list every registered op) to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> subparsers = argparse.ArgumentParser().add_subparsers()
    >>> ops_command(subparsers)
    >>> sorted(subparsers.choices)
    ['ops']
    """
    parser = _subparser(subparsers, "ops", "list every registered op",
                        "List every op the installed plugins provide: its plugin, inputs, whether it has an "
                        "explicit jacobian, a jvp (forward mode), a vjp_graph (create_graph=True) and a "
                        "decomposition, and what it computes.")
    parser.set_defaults(run=_run_ops)


def _run_ops(args: argparse.Namespace) -> int:
    graph = Graph()
    rows: list[tuple[str, ...]] = [("op", "plugin", "inputs", "jacobian", "jvp", "vjp_graph", "decompose", "computes")]
    for op in graph.registry:
        inputs = f"{op.inputs[0]}..." if op.variadic else ", ".join(op.inputs)
        rows.append((op.name, op.plugin, inputs, *("yes" if rule else "-" for rule in (
            op.jacobian, op.jvp, op.vjp_graph, op.decompose)), op.doc))
    columns = len(rows[0]) - 1
    widths = [max(len(row[k]) for row in rows) for k in range(columns)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:columns], widths)) + "  " + row[columns])
    print(f"\n{len(rows) - 1} ops")
    return 0


# -- dagprop render ---------------------------------------------------------------------------------


def render_command(subparsers: Any) -> None:
    """Add ``dagprop render`` (draw a saved graph or a Python file's graph) to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> subparsers = argparse.ArgumentParser().add_subparsers()
    >>> render_command(subparsers)
    >>> sorted(subparsers.choices)
    ['render']
    """
    parser = _subparser(subparsers, "render", "draw a graph with its values and gradients",
                        "Run a graph forward and backward and draw it: values on nodes, gradients in red on "
                        "nodes and on the edges they flowed back along.", plugins=True)
    add_source(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the file to write; its suffix sets the format (.svg .png .pdf .dot)")
    parser.add_argument("--format", help="output format, overriding the suffix (svg, png, pdf, dot, ...)")
    parser.add_argument("--loss", metavar="NAME",
                        help="the node to differentiate (default: the file's loss, or the only scalar output; for a "
                             ".onnx SOURCE, a node `loss` summing every output is added)")
    parser.add_argument("--no-grad", action="store_true", help="run forward only and draw values")
    parser.add_argument("--expand", metavar="OPS",
                        help="composite ops to draw as their circuit, comma-separated, or 'all'")
    parser.add_argument("--level", choices=("tensor", "element"), default="tensor",
                        help="draw op nodes (tensor, default) or single elements (element)")
    parser.add_argument("--highlight", metavar="NAMES", help="nodes to draw in bold colour, comma-separated")
    parser.add_argument("--title", help="a heading for the diagram")
    parser.add_argument("--precision", type=int, default=4, help="significant digits (default 4)")
    parser.add_argument("--rankdir", choices=("LR", "RL", "TB", "BT"), default="LR",
                        help="direction of the forward flow (default LR)")
    parser.add_argument("--max-nodes", type=int, default=300,
                        help="above this many nodes draw a collapsed view (default 300)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds Graphviz may take (default 60)")
    parser.set_defaults(run=_run_render)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _run_render(args: argparse.Namespace) -> int:
    from .drawing import render

    graph, file_loss, loss_note = _read_source(args.source, max_elements=args.max_elements, loss=args.loss,
                                               default_loss=not args.no_grad, seed=args.seed)
    loss = find_loss(graph, args.loss or file_loss)
    graph.zero_grad()
    graph.forward()
    if not args.no_grad:
        graph.backward(require_loss(graph, loss, ", or --no-grad to draw values only"))
    expand = _expand_option(args.expand)
    render(graph, args.output, format=args.format, expand=expand, level=args.level,
           highlight=_split(args.highlight), title=args.title or loss_note, precision=args.precision,
           rankdir=args.rankdir, max_nodes=args.max_nodes, timeout=args.timeout,
           show=("value",) if args.no_grad else ("value", "grad"), edge_labels=None if args.no_grad else "grad")
    summary = f"{len(graph)} nodes"
    if loss is not None and not args.no_grad:
        summary += f", loss {loss.name} = {float(np.asarray(loss.value).reshape(())):.6g}"
    print(f"wrote {args.output} ({summary})")
    return 0


# -- dagprop check-op -------------------------------------------------------------------------------


def check_op_command(subparsers: Any) -> None:
    """Add ``dagprop check-op`` (check a registered op's rules) to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> subparsers = argparse.ArgumentParser().add_subparsers()
    >>> check_op_command(subparsers)
    >>> sorted(subparsers.choices)
    ['check-op']
    """
    parser = _subparser(subparsers, "check-op", "check an op's gradients against finite differences",
                        "Check a registered op: its vjp and jvp against central differences and against each "
                        "other, its explicit jacobian against its vjp, its vjp_graph's values and second "
                        "derivatives, and a composite op against autodiff through its decomposition. "
                        "Uses the op's example inputs unless --shapes is given.", plugins=True)
    parser.add_argument("name", metavar="NAME", help="the op to check (see `dagprop ops`)")
    parser.add_argument("--shapes", nargs="+", metavar="SHAPE",
                        help="one shape per input, such as 3,4 (use 'scalar' for a 0-d input)")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                        help="an op attribute, VALUE a Python literal (axis=0, keepdims=True); repeatable")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.set_defaults(run=_run_check_op)


def _parse_shape(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("scalar", "()", ""):
        return ()
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise CommandError(f"shape {text!r} is not a list of integers such as 3,4") from None
    if any(n < 0 for n in shape):
        raise CommandError(f"shape {text!r} has a negative size")
    return shape


def _parse_attr(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise CommandError(f"--attr {text!r} must look like KEY=VALUE, for instance axis=0")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word is taken as a string
    return key.strip(), value


def _run_check_op(args: argparse.Namespace) -> int:
    from .testing import check_op

    op = Graph().registry[args.name]
    attrs: dict[str, Any] = {}
    if args.shapes:
        inputs: Sequence[Any] = [_parse_shape(s) for s in args.shapes]
    elif op.example is not None:
        inputs, attrs = op.example(np.random.default_rng(args.seed))
        attrs = dict(attrs)
    else:
        least = op.arity[0]
        inputs = [(3, 4)] * least
    attrs.update(_parse_attr(a) for a in args.attr)
    least, most = op.arity
    if len(inputs) < least or (most is not None and len(inputs) > most):
        expected = str(least) if least == most else f"{least} to {most if most is not None else 'any number'}"
        raise CommandError(f"op {op.name!r} takes {expected} input{'s' if most != 1 else ''} "
                           f"({', '.join(op.inputs)}); got {len(inputs)} shapes")
    described = ", ".join(str(tuple(x)) if isinstance(x, tuple) else f"array {np.shape(x)}" for x in inputs)
    extra = "".join(f", {k}={v!r}" for k, v in attrs.items())
    print(f"checking {op.name} (plugin {op.plugin}) on inputs {described}{extra}")
    result = check_op(args.name, *inputs, seed=args.seed, attrs=attrs)
    print(result)
    return 0


# -- dagprop demo -----------------------------------------------------------------------------------


def demo_command(subparsers: Any) -> None:
    """Add ``dagprop demo`` (draw the attention example from the notes) to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> subparsers = argparse.ArgumentParser().add_subparsers()
    >>> demo_command(subparsers)
    >>> sorted(subparsers.choices)
    ['demo']
    """
    parser = _subparser(subparsers, "demo", "draw the attention example from the notes",
                        "Build the attention example from the notes (Q, K and V projections, softmax, an L2 "
                        "loss), run it forward and backward, and write its diagrams (softmax as a box and as "
                        "its circuit) and the saved graph to DIR.")
    parser.add_argument("-o", "--output", default="dagprop-demo", metavar="DIR",
                        help="directory to write to (default ./dagprop-demo)")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(args.output)
    return 0


# -- dagprop animate --------------------------------------------------------------------------------


def animate_command(subparsers: Any) -> None:
    parser = _subparser(subparsers, "animate", "play a forward and backward run step by step in a browser",
                        "Simulate a graph's forward and backward run and write one self-contained HTML file "
                        "(works offline) that plays it step by step: play/pause, step back and forward, a "
                        "slider and the arrow keys; each frame highlights the current node or edge and shows "
                        "running sums where gradients add up.", plugins=True)
    add_source(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="the HTML file to write")
    parser.add_argument("--loss", metavar="NAME",
                        help="the node to differentiate (default: the file's loss, or the only scalar output; for a "
                             ".onnx SOURCE, a node `loss` summing every output is added)")
    parser.add_argument("--level", choices=("tensor", "element"), default="tensor",
                        help="draw op nodes (tensor, default) or single elements (element)")
    parser.add_argument("--expand", metavar="OPS",
                        help="composite ops to play as their circuit, comma-separated, or 'all'")
    parser.add_argument("--title", help="the page's heading")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds per frame when playing (default 1)")
    parser.add_argument("--precision", type=int, default=4, help="significant digits (default 4)")
    parser.add_argument("--rankdir", choices=("LR", "RL", "TB", "BT"), default="LR",
                        help="direction of the forward flow (default LR)")
    parser.add_argument("--max-nodes", type=_positive_int, default=MAX_PLAYED_NODES, metavar="N",
                        help=f"above this many nodes (elements with --level element) play a smaller view: the tensor "
                             f"level, chains summarised, or bands of depth (default {MAX_PLAYED_NODES})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds Graphviz may take per frame (default 60)")
    parser.set_defaults(run=_run_animate)


def _run_animate(args: argparse.Namespace) -> int:
    from .player import animate

    graph, file_loss, loss_note = _read_source(args.source, max_elements=args.max_elements, loss=args.loss,
                                               seed=args.seed)
    loss = require_loss(graph, args.loss or file_loss)
    expand = _expand_option(args.expand) if args.expand else ()
    written = animate(graph, loss, args.output, level=args.level, title=args.title or loss_note, interval=args.interval,
                      precision=args.precision, rankdir=args.rankdir, timeout=args.timeout, max_nodes=args.max_nodes,
                      expand=expand)
    print(f"wrote {written} (a step-by-step run through {loss.name}; open it in a browser)")
    return 0


# -- dagprop code -----------------------------------------------------------------------------------


def code_command(subparsers: Any) -> None:
    parser = _subparser(subparsers, "code", "print the Python source of a graph's forward and backward passes",
                        "Write a graph's forward pass and, for its loss, its backward pass out as plain Python, one "
                        "line per op: the hand-written backprop functions of a textbook, produced from the graph. "
                        "The source runs on its own against the same ops (see dagprop.codegen).", plugins=True)
    add_source(parser)
    parser.add_argument("--loss", metavar="NAME",
                        help="the node to differentiate (default: the file's loss, or the only scalar output; for a "
                             ".onnx SOURCE, a node `loss` summing every output is added)")
    parser.add_argument("--forward-only", action="store_true", help="write the forward pass only")
    parser.set_defaults(run=_run_code)


def _run_code(args: argparse.Namespace) -> int:
    from .source import codegen

    graph, file_loss, loss_note = _read_source(args.source, max_elements=args.max_elements, loss=args.loss,
                                               default_loss=not args.forward_only, seed=args.seed)
    loss = None if args.forward_only else require_loss(graph, args.loss or file_loss, ", or --forward-only")
    if loss_note:
        print(f"dagprop: note: {loss_note}", file=sys.stderr)
    print(codegen(graph, loss), end="")
    return 0


# -- the command ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [ops_command, render_command, check_op_command, demo_command,
                                          animate_command, code_command]


def build_parser() -> argparse.ArgumentParser:
    """The ``dagprop`` argument parser with every subcommand in :data:`COMMANDS`.

    Examples
    --------
    >>> args = build_parser().parse_args(["render", "g.json", "-o", "g.svg", "--expand", "softmax"])
    >>> args.source, args.output, args.expand, args.debug
    ('g.json', 'g.svg', 'softmax', False)
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="dagprop", description="See backpropagation: draw compute graphs with "
                                     "their values and the gradient on every edge.")
    parser.add_argument("--version", action="version", version=f"dagprop {__version__}")
    _add_debug(parser, False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dagprop`` command; return its exit status.

    Examples
    --------
    >>> main(["check-op", "no_such_op"])  # the error goes to stderr as one line
    1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    registered: list[Any] = []
    try:
        for spec in getattr(args, "plugin", ()):
            registered.append(load_plugin(spec))
            register_plugin(registered[-1])
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("dagprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``dagprop demo | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.debug:
            raise
        print(f"dagprop {args.command}: error: {_one_line(exc)}  (--debug shows the traceback)", file=sys.stderr)
        return 1
    finally:
        for plugin in registered:  # main may run again in the same process (tests, notebooks)
            unregister_plugin(plugin)
