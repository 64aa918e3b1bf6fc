"""A compiled training step: forward, backward and SGD step of one loss as one straight-line function.

:meth:`Graph.compile <dagprop.Graph.compile>` returns a :class:`CompiledStep`. Its first call
(and the first call after the graph or a leaf's shape changes) runs the plain loop
``forward(feeds); zero_grad(); backward(loss); step(lr)``, which checks every op and
commits the record; the step then writes, for those shapes, one Python function doing
the same arithmetic with nothing in between: each built-in op is written out through
its :class:`~dagprop.op.SourceForm` (the NumPy a person would write, as
:func:`dagprop.codegen` prints it), an op without one is a call to its own forward or
vjp bound to a local name, an operation two forms of one node write (a loss's residual)
is computed once, and the function fills a fresh :class:`~dagprop.Run` the graph
commits, as the plain loop would, bit for bit.

A later call holds the graph's lock, compares the graph's plan with the one the function
was written for, and calls the function on the record's values (a copy with the feeds in
place, if any); the function checks the leaves' shapes with one tuple comparison, reads
the values without changing them and commits a new record last, so a call that fails
leaves the graph as it was.

Writing and compiling source costs 0.1-0.2 ms per op node, once per shape; plans of
more than :data:`SOURCE_LIMIT` op nodes run the fast path's closures
(:mod:`dagprop.fastpath`) instead, which take microseconds per node to build, so that
the first call stays under about half a second (see :class:`CompiledStep`, Notes).
"""

from __future__ import annotations

import itertools
import math
import threading
import types
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import fastpath
from .backend import is_numpy
from .errors import GraphError
from .run import Run, as_array
from .source import _computed_once, _forward_lines, _Names, _same_objects, _vjp_lines

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .scheduler import Plan

__all__ = ["CompiledStep", "SOURCE_LIMIT"]

# Op nodes up to which a plan is compiled to source; above it the step runs the fast path's
# closures. Measured on chains of 200 to 7,500 elementwise ops (see CompiledStep, Notes):
# source costs 0.1-0.2 ms per op node to write and compile and saves 4-6 us per op node
# per call, so it pays back after 10-30 calls at every size; the limit bounds the first
# call (about 0.4 s at 2,000 op nodes), not the speed.
SOURCE_LIMIT = 2000

# Ops whose SourceForm does the same maths as the op's vjp with other rounding (another
# order of operations): the step calls their rules, so the numbers stay the plain loop's.
RULE_CALLED: frozenset[str] = frozenset({
    "batch_norm", "broadcast_to", "conv1d", "gelu", "group_norm", "layer_norm", "log", "log_sigmoid", "rsqrt", "sigmoid",
    "silu", "softplus", "var",
})



def _sourced(node: Node) -> bool:
    """Whether the step writes the node through its source form (else it calls the op's rules)."""
    if node.op in RULE_CALLED:
        return False
    # a vector operand: the form's np.outer and @ sum the products in another order than the rule
    return node.op != "matmul" or all(i.ndim != 1 for i in node.inputs)


_float64 = np.dtype(np.float64)
_ndarray = np.ndarray
_float64_scalar = np.float64
_counter = itertools.count()


def _broadcast_to(array: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``np.broadcast_to``, the same read-only view, without its Python layers for a 0-d array.

    A full reduction's gradient (a sum's or mean's, in every loss) is such an array or a NumPy
    scalar, and ``np.broadcast_to`` costs it 5-6 us, more than the arithmetic around it on
    small graphs.
    """
    buffer: Any = array  # NumPy arrays and scalars export buffers, which NumPy's stubs do not declare
    if array.__class__ is _float64_scalar:  # what 0-d arithmetic returns: its buffer is read-only already
        return _ndarray(shape, _float64, buffer, 0, (0,) * len(shape))
    if array.__class__ is _ndarray and not array.shape:
        return _ndarray(shape, array.dtype, memoryview(buffer).toreadonly(), 0, (0,) * len(shape))
    return np.broadcast_to(array, shape)


# The NumPy the written functions see: NumPy itself but for the faster broadcast_to.
_numpy = types.ModuleType("numpy")
_numpy.__dict__.update(np.__dict__)
_numpy.broadcast_to = _broadcast_to  # type: ignore[attr-defined]


class _Reshaped(Exception):
    """A leaf's shape (or an input's dtype) is not the one the function was written for."""


class CompiledStep:
    """A training step of one graph: ``step(**feeds)`` runs forward, backward and SGD, returns the loss.

    Made by :meth:`Graph.compile <dagprop.Graph.compile>`. Each call leaves the graph as the
    plain loop ``forward(feeds); zero_grad(); backward(loss); step(lr)`` would (without
    ``step`` when ``lr`` is None): the same values, gradients and seed in ``graph.run``,
    bit for bit. Gradients are fresh on every call, never accumulated.

    Parameters
    ----------
    graph : Graph
        The graph to train.
    loss : Node or str
        A node of one element.
    lr : float, optional
        The SGD learning rate; None computes gradients without updating the params.
    keep_edges : bool
        Record the gradient along every edge slot in ``graph.run.edge_grads``, as the plain
        loop does. By default the record's edge gradients are empty (``edge_grad`` returns
        None): keeping them costs a dict entry per edge on every call.
    lock : threading.RLock, optional
        Held during each call (the graph's own lock, which its passes hold; default: one of
        the step's own).
    commit : callable, optional
        ``commit(run)`` makes ``run`` the graph's record; :meth:`Graph.compile` passes the
        graph's own (a step made without one raises GraphError where it would commit).

    Attributes
    ----------
    graph, loss, lr, keep_edges :
        As given (``loss`` as a node).
    source : str
        The Python source of the function for the latest shapes ('' before the first
        call, and for plans run through closures).

    Notes
    -----
    A changed leaf shape (a new batch size) or input dtype writes a function for the new
    shapes, after one checked plain loop; functions already written are kept, by shape.
    A changed graph (new nodes, a rename) is noticed through its plan and everything is
    compiled again. Which edge slots carry gradient is taken from the checked run: a plugin
    rule that sends ``None`` along a slot for some values and an array for others (no
    built-in op does) needs the plain loop. Ops whose source form rounds differently
    from their rule (:data:`RULE_CALLED`, and matmul with a vector operand) are called
    through their rules, so the numbers stay the plain loop's. The written source is
    NumPy's: leaves of another array library (array-api-strict, dask) run the plain loop
    on every call.

    Plans of at most :data:`SOURCE_LIMIT` (2,000) op nodes are compiled to source. On
    chains of 200 to 7,500 elementwise ops, writing and compiling cost 0.1-0.2 ms per op
    node, and each call then ran about twice as fast as the fast path's closures (4-6 us
    less per op node), so the source paid back after 10-30 calls at every size. The
    limit bounds the first call (about 0.4 s at 2,000 op nodes, seconds past 10,000);
    larger plans run the closures, built in microseconds per node.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> x, w = g.input("x"), g.param("w", [1.0, -1.0])
    >>> loss = ((w * x).sum() - 2.0) ** 2
    >>> train = g.compile(loss, lr=0.05)
    >>> train(x=[1.0, 2.0]), train(x=[1.0, 2.0])
    (9.0, 2.2499999999999996)
    >>> w.value.tolist(), w.grad.tolist()
    ([1.45, -0.09999999999999992], [-2.9999999999999996, -5.999999999999999])
    """

    def __init__(self, graph: Graph, loss: Node | str, lr: float | None = None, *, keep_edges: bool = False,
                 lock: threading.RLock | None = None, commit: Callable[[Run], None] | None = None) -> None:
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating))
                               or not math.isfinite(lr)):
            raise GraphError(f"lr must be a finite real number or None, got {lr!r}")
        self.graph = graph
        self.loss = graph.node(loss)
        if self.loss.op_def is None:
            raise GraphError(f"the loss {self.loss.name!r} is a {self.loss.kind}: compile an op node's loss")
        self.lr = lr
        self.keep_edges = bool(keep_edges)
        self.source = ""
        # a step made without the graph's lock still serialises its own calls
        self._lock = threading.RLock() if lock is None else lock
        self._commit = _no_commit if commit is None else commit
        self._plan: Plan | None = None
        self._functions: dict[tuple | None, Callable[[list], float]] = {}
        self._function: Callable[[list], float] = _unwritten
        self._inputs: dict[str, int] = {}

    def __repr__(self) -> str:
        lr = "" if self.lr is None else f", lr={self.lr!r}"
        return f"<dagprop.CompiledStep of {self.loss.name!r}{lr}: {len(self._functions)} compiled shapes>"

    def __call__(self, **feeds: Any) -> float:
        # The path of every call after the first: all else is in _step. The function reads the
        # values it is given and commits a new record last, so any failure (new shapes, an op
        # raising) leaves the graph untouched for _step to try again and report exactly.
        lock = self._lock
        lock.acquire()  # cheaper than `with`, whose __exit__ takes three arguments
        try:
            graph = self.graph
            if graph.plan is self._plan:
                values = self._fed(graph.run.values, feeds) if feeds else graph.run.values
                try:
                    return self._function(values)
                except Exception:
                    pass
            return self._step(feeds)
        finally:
            lock.release()

    def _step(self, feeds: dict[str, Any]) -> float:
        """A call after a change: of the graph (replanned), of shapes (the function written for them),
        or the first (the checked plain loop, which also reports any error)."""
        plan = self.graph.plan
        if plan is not self._plan:
            self._replan(plan)
        values = self._fed(self.graph.run.values, feeds) if feeds else self.graph.run.values
        function = self._functions.get(_signature(plan, values))
        if function is not None and function is not self._function:
            self._function = function
            try:
                return function(values)
            except Exception:
                pass
        return self._compile(feeds)

    def _fed(self, values: list, feeds: dict[str, Any]) -> list:
        """A copy of ``values`` with the feeds in place of their inputs' values, as ``Run.fed`` makes them."""
        values = list(values)
        inputs = self._inputs
        for name, value in feeds.items():
            index = inputs.get(name)
            if index is None:
                raise GraphError(self._unknown_feed(name))
            if value.__class__ is _ndarray and value.dtype is _float64:
                values[index] = value.copy("K")  # as_array's copy (np.array's, in the same memory order)
            else:
                values[index] = as_array(value, f"the value fed to input {name!r}")
        return values

    def _replan(self, plan: Plan) -> None:
        if not any(node is self.loss for node in plan.nodes):
            raise GraphError(f"the loss {self.loss.name!r} is no longer in the graph: compile again")
        self._plan, self._functions, self._function, self.source = plan, {}, _unwritten, ""
        self._inputs = {n.name: n.index for n in plan.nodes if n.kind == "input"}

    def _unknown_feed(self, name: str) -> str:
        known = ", ".join(sorted(self._inputs)) or "none"
        return f"feeds are given by input name; the graph has no input {name!r} (its inputs: {known})"

    def _compile(self, feeds: dict[str, Any]) -> float:
        """Run the checked plain loop, then write the function for the shapes it ran with."""
        graph, plan = self.graph, self._plan
        assert plan is not None
        graph.forward(feeds)
        graph.zero_grad()
        graph.backward(self.loss)
        if self.lr is not None:
            graph.step(self.lr)
        run = graph.run
        if not is_numpy(*(run.values[i] for i in plan.forward_plan(None).leaves)):
            return float(run.values[self.loss.index])  # other arrays run the plain loop: the source is NumPy's
        if len(plan.steps) <= SOURCE_LIMIT:
            function, self.source = _write(plan, run, self.loss, self.lr, self.keep_edges, self._commit)
        else:
            function, self.source = _closures(plan, run, self.loss, self.lr, self.keep_edges, self._commit), ""
        self._functions[_signature(plan, run.values)] = self._function = function
        if not self.keep_edges:
            self._commit(run.replaced(edge_grads={}))
        return float(run.values[self.loss.index])


def _unwritten(values: list) -> float:
    """The function of a step that has written none for the graph as it is."""
    raise _Reshaped


def _no_commit(run: Run) -> None:
    raise GraphError("this CompiledStep was made without a commit: make it with Graph.compile")


def _signature(plan: Plan, values: list) -> tuple | None:
    """What a written function is specialised to: the shape of every leaf it reads, each input's followed
    by its dtype, in one flat tuple (the generated function checks the same tuple, written out)."""
    nodes = plan.nodes
    try:
        return tuple(item for i in plan.forward_plan(None).leaves for item in
                     ((values[i].shape, values[i].dtype) if nodes[i].kind == "input" else (values[i].shape,)))
    except AttributeError:  # a leaf without a value: the plain loop says which
        return None


def _write(plan: Plan, run: Run, loss: Node, lr: float | None, keep_edges: bool,
           commit: Callable[[Run], None]) -> tuple[Callable, str]:
    """The straight-line function for the shapes of ``run``, and its source."""
    graph, nodes = plan.graph, plan.nodes
    namespace: dict[str, Any] = {"np": _numpy, "_asarray": np.asarray, "_Run": Run, "_Reshaped": _Reshaped,
                                 "_commit": commit, "_graph": graph, "_nodes": nodes, "_plan": plan, "_lr": lr}
    names = _Names(graph, frozenset({*namespace, "_seed", "_seeds", "_shapes", "compiled_step", "values"}))

    def rule(node: Node, role: str) -> str:
        assert node.op_def is not None
        name = names.fresh(f"{node.op}_{role}")
        namespace[name] = getattr(node.op_def, role)
        return name

    forward = plan.forward_plan(None)
    backward = plan.backward_plan(loss.index, None)
    leaves = [nodes[i] for i in forward.leaves]
    seed = run.grads[loss.index]
    namespace["_seed"], namespace["_seeds"] = seed, ((loss, seed),)
    namespace["_shapes"] = _signature(plan, run.values)
    lines = ["def compiled_step(v):"]
    if leaves:
        lines.append(f"    {', '.join(names.value(n) for n in leaves)}, = "
                     f"{', '.join(f'v[{n.index}]' for n in leaves)},")
        checked = ", ".join(f"{names.value(n)}.shape, {names.value(n)}.dtype" if n.kind == "input"
                            else f"{names.value(n)}.shape" for n in leaves)
        lines.append(f"    if ({checked},) != _shapes:")
        lines.append("        raise _Reshaped")
    # A 0-d result comes back from NumPy as a scalar, whose arithmetic is several times faster
    # than a 0-d array's and rounds the same; it becomes an array where it is stored, or
    # before a rule (which may expect an array) reads it.
    by_rule = {i.index for step in forward.steps if not _sourced(step.node) for i in (step.node, *step.node.inputs)}
    # the new record's values, by node index; a node no step reads nor computes keeps its value
    stored = {leaf.index: names.value(leaf) for leaf in leaves}
    written_at: dict[int, list[int]] = {}  # node index -> where its forward and vjp lines are
    for step in forward.steps:
        value = names.value(step.node)
        start = len(lines)
        lines += _forward_lines(step.node, names, rule, _sourced(step.node))
        written_at[step.index] = list(range(start, len(lines)))
        if step.node.shape == () and step.index in by_rule:
            lines.append(f"    {value} = _asarray({value})")
        stored[step.index] = f"_asarray({value})" if step.node.shape == () and step.index not in by_rule else value
    lines.append(f"    {names.grad(loss)} = _seed")
    received = {loss.index}
    carried = set(run.edge_grads)
    edges: list[str] = []
    for step, needs in zip(backward.steps, backward.needs):
        node = step.node
        if step.index not in received:
            continue
        needs = tuple(need and (step.index, slot) in carried for slot, need in enumerate(needs))
        if not any(needs):
            continue
        targets, sums = [], []
        for slot, source in enumerate(node.inputs):
            if not needs[slot]:
                targets.append("_")
                continue
            if keep_edges or source.index in received:
                target = names.extra_grad(source)
                edges.append(f"({step.index}, {slot}): {target}")
                if source.index in received:
                    sums.append(f"    {names.grad(source)} = {names.grad(source)} + {target}")
                else:
                    sums.append(f"    {names.grad(source)} = {target}")
            else:
                target = names.grad(source)
            received.add(source.index)
            targets.append(target)
        start = len(lines)
        lines += _vjp_lines(node, step.op, names, tuple(targets), needs, rule, _sourced(node), reuse=True)
        written_at[step.index] += range(start, len(lines))
        lines += sums
    # a node's forward and vjp forms often compute the same thing (a loss's residual): once is enough
    for at in written_at.values():
        for k, line in zip(at, _computed_once([lines[k] for k in at], names.fresh)):
            lines[k] = line
    # The engine hands out gradients as arrays: a 0-d sum comes back from NumPy as a scalar.
    # A gradient passed on unchanged (add's, to both inputs) is one object under several names,
    # made an array once.
    scalars = [names.grad(nodes[i]) for i in sorted(received) if nodes[i].shape == () and i != loss.index]
    held = _same_objects(lines[1:]) if len(scalars) > 1 else {}
    converted = {held.get(names.grad(loss), -1): names.grad(loss)}  # the seed, an array already
    for k, grad in enumerate(scalars):
        first = converted.setdefault(held.get(grad, -2 - k), grad)
        lines.append(f"    {grad} = _asarray({grad})" if first == grad else f"    {grad} = {first}")
    if lr is not None:
        for node in nodes:
            if node.kind == "param" and node.index in received:
                stored[node.index] = f"{names.value(node)} - _lr * {names.grad(node)}"
    grads = (names.grad(nodes[i]) if i in received else "None" for i in range(len(nodes)))
    lines.append(f"    values = [{', '.join(stored.get(i, f'v[{i}]') for i in range(len(nodes)))}]")
    lines.append(f"    grads = [{', '.join(grads)}]")
    edge_dict = ("{" + ", ".join(edges) + "}") if keep_edges else "{}"
    lines.append(f"    _commit(_Run(_graph, _nodes, values, grads, {edge_dict}, _seeds, _plan))")
    lines.append(f"    return float({names.value(loss)})")
    text = "\n".join(lines) + "\n"
    exec(compile(text, f"<dagprop.compile {next(_counter)}>", "exec"), namespace)
    return namespace["compiled_step"], text


def _closures(plan: Plan, run: Run, loss: Node, lr: float | None, keep_edges: bool,
              commit: Callable[[Run], None]) -> Callable:
    """The step for a large plan: the fast path's forward and backward closures, then SGD."""
    forward = plan.forward_plan(None)
    backward = plan.backward_plan(loss.index, None)
    run_forward = fastpath.forward_runner(forward.steps, forward.scalar_steps, forward.outputs)
    run_backward = fastpath.backward_runner(backward.steps, backward.needs)
    shapes = _signature(plan, run.values)
    seed = run.grads[loss.index]
    seeds = ((loss, seed),)
    params = [n.index for n in plan.nodes if n.kind == "param"]
    graph, nodes, index = plan.graph, plan.nodes, loss.index

    def compiled_step(given: list) -> float:
        if _signature(plan, given) != shapes:
            raise _Reshaped
        v = list(given)  # the given list may be the graph's record, which a failure must leave as it was
        run_forward(v)
        grads: list = [None] * len(v)
        grads[index] = seed
        edges: dict = {}
        run_backward(v, grads, edges)
        if lr is not None:
            for i in params:
                if grads[i] is not None:
                    v[i] = v[i] - lr * grads[i]
        commit(Run(graph, nodes, v, grads, edges if keep_edges else {}, seeds, plan))
        return float(v[index])

    return compiled_step
