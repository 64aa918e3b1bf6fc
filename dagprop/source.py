"""Write a graph's forward and backward passes out as plain Python, one step per op.

The result reads like the hand-written backprop functions of a course: ``z = W @ x`` in
the forward pass, ``d_W = d_z @ x.T`` in the backward pass, broadcasting undone by an
explicit ``.sum(axis=..., keepdims=True)`` where it happened, and where a node receives
gradient over several paths the code adds the contributions explicitly. An op writes
itself through its :class:`~dagprop.op.SourceForm`; an op without one (or a case its form
leaves out) is a call to the op's own rule, ``ops['name'].vjp(...)``. The code is
ordinary Python that runs on its own, so it can be read, stepped through in a debugger,
or changed by hand.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import keyword
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from . import scheduler
from .errors import DagpropError, GraphError
from .op import ATTRIBUTE_TYPES_TEXT

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .op import Op

__all__ = ["codegen", "SourceCall"]

Shape = tuple[int, ...]
RuleWriter = Callable[["Node", str], str]  # (node, "forward" or "vjp") -> the expression calling that rule

# names the generated code uses itself: no node may take them
_RESERVED = {"ops", "v", "seed", "grads", "np", "float", "slice", "Ellipsis"}


def codegen(graph: Graph, loss: Node | str | None = None) -> str:
    """Python source of ``forward(ops, v)`` and, given a loss, ``backward(ops, v, seed=1.0)``.

    ``v`` maps node names to numpy arrays (the leaves' values, to begin with). ``forward``
    fills in every op node's value; ``backward`` returns ``{name: gradient}`` for every
    node between the loss and the params (and inputs with ``requires_grad=True``). Ops
    with a :class:`~dagprop.op.SourceForm` (every built-in op but ``cross_entropy`` and
    ``attention``) are written as NumPy expressions, specialised to the shapes of the
    graph's latest run; the others call ``ops[name].forward`` and ``ops[name].vjp`` on
    ``ops``, a registry such as ``graph.registry`` (unused when no line calls an op).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> w = g.param("w", 3.0)
    >>> loss = g.op("mul", w, w, name="loss")
    >>> source = dp.codegen(g, loss)
    >>> print(source.split("def backward")[1])
    (ops, v, seed=1.0):
        w = v['w']
        d_loss = np.asarray(seed, dtype=float)
        # loss = mul(w, w); w already has gradient from another path: add
        d_w = d_loss * w
        d_w_2 = d_loss * w
        d_w = d_w + d_w_2
        return {'w': d_w, 'loss': d_loss}
    <BLANKLINE>
    >>> namespace = {}
    >>> exec(source, namespace)
    >>> values = namespace["forward"](g.registry, {"w": w.value})
    >>> float(namespace["backward"](g.registry, values)["w"])
    6.0
    """
    names = _Names(graph)
    nodes = graph.nodes
    order = [nodes[i] for i in graph.plan.order]
    leaves = [n for n in order if n.op is None]
    ops = [n for n in order if n.op is not None]
    lines = [
        "# Forward and backward passes of a dagprop graph, written out by dagprop.codegen for the shapes",
        "# of its latest run. v: node name -> value; ops: a registry such as graph.registry, for the",
        "# lines that call an op's own rule.",
        "import numpy as np",
        "",
        "",
        "def forward(ops, v):",
    ]
    if leaves:
        lines.append(f"    {_unpack(names, leaves)}")
    for node in ops:
        lines += _forward_lines(node, names)
    lines.append("    v.update({" + ", ".join(f"{n.name!r}: {names.value(n)}" for n in ops) + "})")
    lines.append("    return v")
    if loss is not None:
        lines += ["", ""] + _backward(graph, graph.node(loss), names)
    return "\n".join(lines) + "\n"


def _registry_rule(node: Node, role: str) -> str:
    """How a line calls the op's own rule: through the registry the generated functions are given."""
    return f"ops[{node.op!r}].{role}"


def _forward_lines(node: Node, names: _Names, rule: RuleWriter = _registry_rule, sourced: bool = True
                   ) -> list[str]:
    call = _source_call(node, names) if sourced else None
    form = node.op_def.source if node.op_def is not None else None
    written = form.forward(call) if call is not None and form is not None and form.forward is not None else None
    if written is None:
        args = ", ".join(names.value(i) for i in node.inputs)
        return [f"    {names.value(node)} = {rule(node, 'forward')}({args}{_attrs(node)})"]
    return _assign(names.value(node), written)


def _backward(graph: Graph, loss: Node, names: _Names) -> list[str]:
    nodes = graph.nodes
    backward = graph.plan.backward_plan(loss.index, None)
    seed = "seed" if loss.shape is None else \
        "np.asarray(seed, dtype=float)" if loss.shape == () else f"np.full({loss.shape!r}, seed, dtype=float)"
    body = [f"    {names.grad(loss)} = {seed}"]
    received: set[int] = {loss.index}
    carried = _carried_slots(graph, loss)
    for step, needs in zip(backward.steps, backward.needs):
        node = step.node
        if step.index not in received:  # every slot that fed it passed no gradient (a step, an index)
            continue
        if carried is not None:
            needs = tuple(need and (step.index, slot) in carried for slot, need in enumerate(needs))
        if not any(needs):
            continue
        targets, sums, extras = [], [], set()
        for slot, source in enumerate(node.inputs):
            if not needs[slot]:
                targets.append("_")
            elif source.index in received:
                extra = names.extra_grad(source)
                targets.append(extra)
                extras.add(extra)
                sums.append(f"    {names.grad(source)} = {names.grad(source)} + {extra}")
            else:
                targets.append(names.grad(source))
                received.add(source.index)
        summed = sorted({node.inputs[s].name for s, t in enumerate(targets) if t in extras})
        tail = f"; {', '.join(summed)} already has gradient from another path: add" if summed else ""
        body.append(f"    # {_printable(_describe(node) + tail)}")
        body += _vjp_lines(node, step.op, names, tuple(targets), needs)
        body += sums
    result = ", ".join(f"{nodes[i].name!r}: {names.grad(nodes[i])}" for i in sorted(received))
    body.append("    return {" + result + "}")
    read = _identifiers(body)
    used = {loss.index} | {j for step in backward.steps for j in (step.index, *step.inputs)}
    unpacked = [nodes[i] for i in sorted(used) if names.value(nodes[i]) in read]
    return ["def backward(ops, v, seed=1.0):"] + ([f"    {_unpack(names, unpacked)}"] if unpacked else []) + body


def _carried_slots(graph: Graph, loss: Node) -> set[tuple[int, int]] | None:
    """The edge slots that carry gradient from ``loss`` at the graph's current values, found by
    running the engine's backward pass once; None when it cannot run (no values yet).

    A rule may send no gradient along a slot (``None``: the condition of ``where``, the input
    of ``step``); the code then leaves that slot out, as the engine does.
    """
    values = graph.run.values
    if values[loss.index] is None:
        return None
    try:
        run = scheduler.run_backward(graph.plan, values, loss.index, np.ones(values[loss.index].shape))
    except DagpropError:
        return None
    return set(run.edge_grads)


def _vjp_lines(node: Node, op: Op, names: _Names, targets: tuple[str, ...], needs: tuple[bool, ...],
               rule: RuleWriter = _registry_rule, sourced: bool = True, reuse: bool = False) -> list[str]:
    grad = names.grad(node)
    call = _source_call(node, names, grad, targets, needs) if sourced else None
    form = op.source
    entries = None
    if call is not None and form is not None:
        if form.vjp is not None:
            entries = form.vjp(call)
        elif form.derivative is not None:
            derivative = form.derivative(call)
            entries = None if derivative is None else (f"{grad} * {_factor(derivative)}",)
    if entries is not None and len(entries) != len(node.inputs):
        raise GraphError(f"the source form of op {op.name!r} (plugin {op.plugin!r}) wrote "
                         f"{len(entries)} gradients for node {node.name!r}, which has {len(node.inputs)} inputs")
    if entries is None or any(entry is None for entry, need in zip(entries, needs) if need):
        args = ", ".join(names.value(i) for i in node.inputs)
        needs_kw = f", needs={needs!r}" if op.vjp_takes_needs else ""
        return [f"    {', '.join(targets)}{',' if len(targets) == 1 else ''} = {rule(node, 'vjp')}("
                f"{grad}, {args}, out={names.value(node)}{needs_kw}{_attrs(node)})"]
    lines: list[str] = []
    # with reuse, an expression another slot has computed already (x * x's) is not computed again
    written: dict[str, str] = {}
    for entry, target, need in zip(entries, targets, needs):
        if need:
            lines += _assign(target, written.get(entry, entry) if isinstance(entry, str) else entry)
            if reuse and isinstance(entry, str):
                written.setdefault(entry, target)
    return lines


def _assign(target: str, written: str | Sequence[str]) -> list[str]:
    """Lines giving ``target`` its value: ``target = expression``, or statements that assign it themselves."""
    if isinstance(written, str):
        return [f"    {target} = {written}"]
    return [f"    {line}" for line in written]


def _source_call(node: Node, names: _Names, grad: str = "", targets: tuple[str, ...] = (),
                 needs: tuple[bool, ...] = ()) -> SourceCall | None:
    """What the node's source form is given, or None when it has none or a shape is unknown."""
    if node.op_def is None or node.op_def.source is None:
        return None
    if node.shape is None or any(i.shape is None for i in node.inputs):
        return None
    return SourceCall(node, tuple(names.value(i) for i in node.inputs), names.value(node), grad=grad,
                      targets=targets, needs=needs)


def _identifiers(lines: list[str]) -> set[str]:
    """The names the lines read or write (they are written by us, so they parse)."""
    tree = ast.parse("\n".join(line[4:] for line in lines))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


# Lines of written functions are read by regular expressions; only the lines an operation may
# repeat in are parsed.
_OPERAND = r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?"
_OPERATION = re.compile(rf"(?<![\w.])(?:{_OPERAND}) (?:\*\*|//|[-+*/@%]) (?:{_OPERAND})(?![\w.(\[])")
_NAMES = r"[A-Za-z_]\w*(?:, *[A-Za-z_]\w*)*,?"
_ASSIGNMENT = re.compile(rf"^ +({_NAMES}) = (.*)$", re.MULTILINE)  # the names a line assigns, and what
_TARGETS = re.compile(rf" *{_NAMES}")
_CHAINED = re.compile(rf"^ +{_NAMES} = {_NAMES} = ", re.MULTILINE)
_OTHER_BINDING = re.compile(r"^ *(?:for|while|with|del|import|from|global|nonlocal|try|except|class|def|async)\b|:=",
                            re.MULTILINE)
_AUGMENTED = tuple(f" {op}= " for op in ("+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "^", "<<", ">>"))
# where an expression is evaluated only on some paths, so computing it up front could do more work
_CONDITIONAL = (ast.IfExp, ast.BoolOp, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _computed_once(body: list[str], fresh: Callable[[str], str]) -> list[str]:
    """The lines ``body`` of a function with each operation on two names that they write more than
    once (``z - y``, in a loss and again in its gradient) computed once, into a fresh name: the
    line of its first use comes back with that assignment before it (joined by a newline), so
    each line stays at its index.

    The same operation on the same arrays gives the same bits, so only time changes. Only
    one-line statements are changed, and only for names that keep one value from before the
    first use on. Lines that change an array in place (``a[i] += b``, ``out=``) are left as
    they are, since a shared result could be changed for its other uses too.

    Examples
    --------
    >>> body = ["    r = 0.5 * np.vdot(z - y, z - y)", "    d_z = d_r * (z - y)", "    e = d_r * (y - z)"]
    >>> print("\\n".join(_computed_once(body, lambda wanted: wanted)))
        z_sub_y = z - y
        r = 0.5 * np.vdot(z_sub_y, z_sub_y)
        d_z = d_r * z_sub_y
        e = d_r * (y - z)
    """
    text = "\n".join(body)
    if not _repeated(text) or not _binds_by_assignment(text) or "out=" in text \
            or any(assigns and not _TARGETS.fullmatch(head)
                   for head, assigns, _ in (line.partition(" = ") for line in body)):
        return body
    lines = list(enumerate(body))  # (index in body, or -1 for a line computing a shared operation; line)
    while True:  # one round per depth: (a - b) * c written twice is shared once a - b is
        shared = _repeated_operations([line for _, line in lines])
        if not shared:
            break
        before: dict[int, list[tuple[int, str]]] = {}
        for written, uses in shared.items():
            name = fresh(_operation_name(written))
            before.setdefault(min(uses), []).append((-1, f"    {name} = {written}"))
            for k, statement in uses.items():
                lines[k] = (lines[k][0], "    " + ast.unparse(_Reading(written, name).visit(statement)))
        lines = [line for k, old in enumerate(lines) for line in (*before.get(k, ()), old)]
    computed, pending = list(body), []
    for k, line in lines:
        pending.append(line)
        if k >= 0:
            computed[k], pending = "\n".join(pending), []
    return computed


def _repeated(text: str) -> dict[str, list[int]]:
    """Each operation on two names or numbers ``text`` seems to write more than once (a line such
    as ``a * b ** 2`` may not compute ``a * b``): its source -> where each is."""
    found: dict[str, list[int]] = {}
    for match in _OPERATION.finditer(text):
        found.setdefault(match.group(), []).append(match.start())
    return {written: starts for written, starts in found.items() if len(starts) > 1}


def _binds_by_assignment(text: str) -> bool:
    """Whether the lines ``text`` bind names only as ``a = ...`` or ``a, b, = ...`` (not ``a += ...``,
    ``a = b = ...``, loops, ``:=``)."""
    return not (any(augmented in text for augmented in _AUGMENTED) or _CHAINED.search(text)
                or _OTHER_BINDING.search(text))


def _repeated_operations(body: list[str]) -> dict[str, dict[int, ast.stmt]]:
    """Each operation on two names (or a name and a number) that one-line statements of ``body``
    evaluate more than once, and whose names hold one value from before its first use on (a
    leaf's, a node's): its source -> {index of a line using it: the line parsed}."""
    text = "\n".join(body)
    repeated = _repeated(text)
    if not repeated:
        return {}
    ends = list(itertools.accumulate(len(line) + 1 for line in body))
    stores: dict[str, list[int]] = {}
    for match in _ASSIGNMENT.finditer(text):
        for name in match.group(1).split(","):
            stores.setdefault(name.strip(), []).append(bisect.bisect_right(ends, match.start()))
    parsed: dict[int, ast.stmt | None] = {}
    shared: dict[str, dict[int, ast.stmt]] = {}
    for written, starts in repeated.items():
        wanted = _key(ast.parse(written, mode="eval").body)
        uses: dict[int, ast.stmt] = {}
        count = 0
        for k in sorted({bisect.bisect_right(ends, start) for start in starts}):
            if k not in parsed:
                parsed[k] = _parsed(body[k])
            statement = parsed[k]
            here = sum(_key(o) == wanted for o in _unconditional_operations(statement))
            if here and statement is not None:
                uses[k], count = statement, count + here
        if count > 1 and all(len(stores.get(name, ())) <= 1 and stores.get(name, [-1])[0] < min(uses)
                             for name in re.findall(r"(?<![\w.])[A-Za-z_]\w*", written)):
            shared[written] = uses
    return shared


def _parsed(line: str) -> ast.stmt | None:
    """A line of a written function as a statement; None unless it is a whole one at the top level."""
    if not line.startswith("    ") or line[4:5].isspace() or line.endswith(":"):
        return None
    try:
        return ast.parse(line[4:]).body[0]
    except (SyntaxError, IndexError):  # part of a statement written over several lines, or a comment
        return None


def _unconditional_operations(statement: ast.AST | None) -> list[ast.BinOp]:
    """The operations a statement always evaluates whose operands are names or numbers, one a name."""
    stack: list[ast.AST] = [] if statement is None else [statement]
    found: list[ast.BinOp] = []
    while stack:
        n = stack.pop()
        if isinstance(n, _CONDITIONAL):
            continue
        if isinstance(n, ast.BinOp) and _key(n) is not None and any(isinstance(o, ast.Name) for o in (n.left, n.right)):
            found.append(n)
        stack.extend(ast.iter_child_nodes(n))
    return found


def _key(operation: ast.AST) -> tuple | None:
    """What tells an operation on two names or numbers from another; None for anything else."""
    if not isinstance(operation, ast.BinOp):
        return None
    operands = tuple(o.id if isinstance(o, ast.Name) else (type(o.value), repr(o.value)) if isinstance(o, ast.Constant)
                     else None for o in (operation.left, operation.right))
    return None if None in operands else (type(operation.op), operands)


def _operation_name(written: str) -> str:
    """``a_sub_b`` for ``a - b``."""
    operation = ast.parse(written, mode="eval").body
    assert isinstance(operation, ast.BinOp)
    left, right = (o.id if isinstance(o, ast.Name) else "c" for o in (operation.left, operation.right))
    return f"{left}_{type(operation.op).__name__.lower()}_{right}"


class _Reading(ast.NodeTransformer):
    """Puts a read of ``name`` in place of each operation ``written`` a statement always evaluates."""

    def __init__(self, written: str, name: str) -> None:
        self.wanted = _key(ast.parse(written, mode="eval").body)
        self.name = name

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, _CONDITIONAL):
            return node
        if _key(node) == self.wanted:
            return ast.Name(self.name, ast.Load())
        return self.generic_visit(node)


def _same_objects(body: list[str]) -> dict[str, int]:
    """For each name the lines ``body`` of a function assign, a number it shares with the names that
    hold the same object after them: ``a = b`` makes them one object until either is assigned again.
    Empty when the lines bind names in other ways too.

    Examples
    --------
    >>> held = _same_objects(["    a = x + 1", "    b = a", "    c = b", "    b = c * 2"])
    >>> held["a"] == held["c"] != held["b"]
    True
    """
    text = "\n".join(body)
    if not _binds_by_assignment(text):
        return {}
    held: dict[str, int] = {}
    objects = itertools.count()
    for match in _ASSIGNMENT.finditer(text):
        names, value = match.group(1), match.group(2)
        if names.isidentifier() and value.isidentifier():
            held[names] = held.setdefault(value, next(objects))
        else:
            held.update((name.strip(), next(objects)) for name in names.split(",") if name.strip())
    return held


class SourceCall:
    """One node as a :class:`~dagprop.op.SourceForm`'s rules see it: identifiers to write, attributes, shapes.

    Parameters
    ----------
    node : Node
        The op node being written; its shapes must be known.
    inputs : tuple of str
        The identifiers holding the input values, slot by slot (``x * x``: ``('x', 'x')``).
    out : str
        The identifier of the output value.
    grad : str
        The identifier of the output's gradient; empty for a forward rule.
    targets : tuple of str
        Per input, the identifier its gradient goes to (``_`` where none is needed);
        empty for a forward rule.
    needs : tuple of bool
        Per input, whether it needs a gradient; empty for a forward rule.

    Attributes
    ----------
    inputs, out, grad, targets, needs :
        As given.
    attrs : dict
        The node's attributes as given (an absent one has the op's default).
    shapes : tuple of tuple
        The inputs' shapes.
    out_shape : tuple
        The output's shape.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> z = g.param("z", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]) + g.param("b", [[1.0], [2.0]])
    >>> call = SourceCall(z, ("z", "b"), "a", grad="d_a", targets=("d_z", "d_b"), needs=(True, True))
    >>> call.shapes, call.out_shape
    (((2, 3), (2, 1)), (2, 3))
    >>> call.sum_to("d_a", 1)
    'd_a.sum(axis=1, keepdims=True)'
    """

    __slots__ = ("inputs", "out", "grad", "targets", "needs", "attrs", "shapes", "out_shape", "_node")

    def __init__(self, node: Node, inputs: tuple[str, ...], out: str, *, grad: str = "",
                 targets: tuple[str, ...] = (), needs: tuple[bool, ...] = ()) -> None:
        self.inputs, self.out, self.grad, self.targets, self.needs = inputs, out, grad, targets, needs
        self.attrs: dict[str, Any] = dict(node.attrs)
        self.shapes: tuple[Shape, ...] = tuple(_known(i) for i in node.inputs)
        self.out_shape: Shape = _known(node)
        self._node = node

    def literal(self, value: Any) -> str:
        """``value`` (an attribute, or a number made from one) written as Python source.

        Examples
        --------
        >>> import dagprop as dp
        >>> y = dp.Graph().param("x", [1.0]).sum(axis=0)
        >>> SourceCall(y, ("x",), "y").literal((slice(1, None), float("inf")))
        "(slice(1, None, None), float('inf'))"
        """
        return _literal(self._node, "attribute", value)

    def operand(self, expression: str) -> str:
        """``expression`` in parentheses, unless it is one operand already, so a method or an operator can follow.

        Examples
        --------
        >>> import dagprop as dp
        >>> y = dp.Graph().param("x", [1.0]).sum()
        >>> call = SourceCall(y, ("x",), "y")
        >>> call.operand("d_y * b"), call.operand("np.exp(x)"), call.operand("x.T")
        ('(d_y * b)', 'np.exp(x)', 'x.T')
        """
        return expression if _is_operand(expression) else f"({expression})"

    def sum_to(self, expression: str, slot: int, shape: Shape | None = None) -> str:
        """``expression``, of ``shape`` (default: the output's), summed down to input ``slot``'s shape.

        Where the forward pass broadcast the input, each of its elements fed several output
        elements and its gradient is the sum of theirs: the axes broadcasting added are
        summed away and the stretched ones summed with ``keepdims=True``. Where nothing was
        broadcast, ``expression`` comes back as it is.

        Examples
        --------
        >>> import dagprop as dp
        >>> g = dp.Graph()
        >>> y = g.param("x", [[1.0, 2.0]]) * g.param("s", 2.0)
        >>> call = SourceCall(y, ("x", "s"), "y", grad="d_y")
        >>> call.sum_to("d_y * s", 0), call.sum_to("d_y * x", 1)
        ('d_y * s', '(d_y * x).sum()')
        """
        source = self.out_shape if shape is None else tuple(shape)
        target = self.shapes[slot]
        if source == target:
            return expression
        text = self.operand(expression)
        lead = len(source) - len(target)
        if lead:
            text += ".sum()" if not target else f".sum(axis={_axes(range(lead))})"
        stretched = [i for i, n in enumerate(target) if n == 1 and source[lead + i] != 1]
        if stretched:
            text += f".sum(axis={_axes(stretched)}, keepdims=True)"
        return text


def _known(node: Node) -> Shape:
    if node.shape is None:
        raise GraphError(f"node {node.name!r} has no known shape: give the graph's leaves values first")
    return node.shape


def _axes(axes: Sequence[int]) -> str:
    """An ``axis=`` argument: one int, or a tuple of them."""
    axes = tuple(axes)
    return str(axes[0]) if len(axes) == 1 else repr(axes)


_OPERANDS = (ast.Name, ast.Call, ast.Attribute, ast.Subscript, ast.List)


def _is_operand(expression: str) -> bool:
    return isinstance(ast.parse(expression, mode="eval").body, _OPERANDS)


def _factor(expression: str) -> str:
    """``expression`` ready to follow ``g *``: a power needs no parentheses there. A product or quotient
    keeps them: ``g * (a * b)`` is what the op's rule computes, and ``g * a * b`` rounds differently."""
    body = ast.parse(expression, mode="eval").body
    if isinstance(body, ast.BinOp) and isinstance(body.op, ast.Pow):
        return expression
    return expression if _is_operand(expression) else f"({expression})"


class _Names:
    """Python identifiers for node values (``h1``) and gradients (``d_h1``), unique and safe."""

    def __init__(self, graph: Graph, reserved: frozenset[str] = frozenset()) -> None:
        self._used = _RESERVED | reserved
        self._value = {n.index: self._claim(n.name) for n in graph}
        self._grad: dict[int, str] = {}
        self._extra: dict[int, int] = {}

    def fresh(self, wanted: str) -> str:
        """An identifier like ``wanted`` that no node and no earlier identifier has."""
        return self._claim(wanted)

    def _claim(self, wanted: str) -> str:
        # ASCII only: Python folds Unicode names (NFKC), so "fi" and "\ufb01" would be one variable
        base = re.sub(r"[^0-9A-Za-z_]", "_", wanted) or "node"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = "n_" + base
        name, k = base, 2
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def value(self, node: Node) -> str:
        return self._value[node.index]

    def grad(self, node: Node) -> str:
        if node.index not in self._grad:
            self._grad[node.index] = self._claim("d_" + self._value[node.index])
        return self._grad[node.index]

    def extra_grad(self, node: Node) -> str:
        """A fresh name for a second (third, ...) contribution to a node's gradient."""
        self._extra[node.index] = self._extra.get(node.index, 1) + 1
        return self._claim(f"{self.grad(node)}_{self._extra[node.index]}")


def _unpack(names: _Names, nodes: list[Node]) -> str:
    return f"{', '.join(names.value(n) for n in nodes)} = {', '.join(f'v[{n.name!r}]' for n in nodes)}"


def _attrs(node: Node) -> str:
    return "".join(f", {key}={_literal(node, key, value)}" for key, value in node.attrs.items())


def _literal(node: Node, key: str, value: Any) -> str:
    if value is None or isinstance(value, (bool, int, str)) or value is Ellipsis:
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_literal(node, key, v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else \
            (f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(node, key, k)}: {_literal(node, key, v)}" for k, v in value.items()) + "}"
    if isinstance(value, slice):
        return f"slice({_literal(node, key, value.start)}, {_literal(node, key, value.stop)}, " \
               f"{_literal(node, key, value.step)})"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _literal(node, key, value.item())
    if hasattr(value, "tolist"):  # numpy index array
        return _literal(node, key, value.tolist())
    raise GraphError(f"codegen cannot write attribute {key}={value!r} of node {node.name!r} as Python source; op "
                     f"attributes must be {ATTRIBUTE_TYPES_TEXT}")


def _describe(node: Node) -> str:
    return f"{node.name} = {node.op}({', '.join(i.name for i in node.inputs)})"


def _printable(text: str) -> str:
    """Text safe inside a one-line comment: no newline or other control character can end it."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
