"""The scheduler: an ordered plan worked out once per graph version, and the forward and
backward loops that run it over plain lists of arrays.

The loops are pure: they read a list of values and return new values or gradients,
so the graph can commit a run only once it has succeeded.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import operator
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from . import fastpath, rules
from .backend import all_finite, is_numpy, lift, namespace, ufunc_in
from .errors import BackwardError, GraphError, NonFiniteError
from .run import Run, accumulate

_ndarray = np.ndarray
_float64 = np.dtype(np.float64)
_INDEX, _INPUTS = operator.attrgetter("index"), operator.attrgetter("inputs")

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .op import Op

__all__ = ["Plan", "run_forward", "run_backward", "run_jvp", "MODES"]

MODES = ("vjp", "jacobian")  # how backward pulls a gradient through an op

OnStep = Callable[..., None]


class OpStep:
    """One op node as the loops see it: what to call, on which slots of the value list.

    A plan makes one per op node: a class with slots is built and read faster than a
    frozen dataclass (issue 15). Nothing changes one once made.
    """

    __slots__ = ("index", "node", "op", "inputs", "attrs")

    def __init__(self, index: int, node: Node, op: Op, inputs: tuple[int, ...], attrs: dict[str, Any]) -> None:
        self.index = index
        self.node = node
        self.op = op
        self.inputs = inputs
        self.attrs = attrs


class ForwardPlan:
    """The op steps one forward pass runs, and its fast form once a checked run has validated it."""

    def __init__(self, steps: tuple[OpStep, ...], keep: set[int] | None, leaves: tuple[int, ...],
                 skipped: tuple[int, ...]):
        self.steps = steps
        self.keep = keep  # the op values a pass with retain=False keeps (None: those no op reads)
        self.leaves = leaves  # the leaf values the steps read
        self.skipped = skipped  # the op nodes these outputs do not need: their old values would be stale
        self.scalar_steps: frozenset[int] = frozenset()  # steps whose op returned a numpy scalar
        self.outputs: tuple[tuple[tuple[int, ...], np.dtype], ...] = ()  # per step, its checked (shape, dtype)
        self._validated: list | None = None  # leaf shapes of the last fully checked run
        self._fast: Callable[[list], list] | None = None

    @functools.cached_property
    def release(self) -> tuple[tuple[int, ...], ...]:
        """``release[k]``: the op values no step after step ``k`` reads, freed there when ``retain=False``
        (worked out when first needed: most passes retain every value)."""
        computed = {step.index for step in self.steps}  # a step's op inputs are computed in the same pass
        # without outputs asked for, the pass runs every op node, so those no step reads are the outputs
        keep = self.keep if self.keep is not None else computed - set(itertools.chain.from_iterable(
            map(_INPUTS, self.steps)))
        last_use: dict[int, int] = {}
        for k, step in enumerate(self.steps):
            for source in step.inputs:
                last_use[source] = k
        release: list[list[int]] = [[] for _ in self.steps]
        for source, k in last_use.items():
            if source in computed and source not in keep:
                release[k].append(source)
        return tuple(tuple(r) for r in release)

    def leaf_shapes(self, values: list) -> list:
        # a missing leaf, or one of another library than NumPy, drops out of the list, so the run
        # matches no checked NumPy run and goes through the interpreter (which names a missing value)
        return [values[i].shape for i in self.leaves if values[i].__class__ is _ndarray]

    def validated(self, values: list, scalar_steps: set[int],
                  outputs: tuple[tuple[tuple[int, ...], np.dtype], ...], *, numpy: bool = True) -> None:
        """Record a fully checked run: later runs with the same leaf shapes need only check that
        each op's output has the shape and dtype it had here. A run with arrays of another
        library than NumPy leaves the fast path off: it is NumPy's alone."""
        if not numpy:
            self._validated = None
            return
        frozen = frozenset(scalar_steps)
        if frozen != self.scalar_steps or outputs != self.outputs:
            self.scalar_steps, self.outputs, self._fast = frozen, outputs, None
        shapes = self.leaf_shapes(values)
        self._validated = shapes if len(shapes) == len(self.leaves) else None  # retain=False may free leaves

    def fast_for(self, values: list) -> Callable[[list], list] | None:
        """The fast pass, if these values have the leaf shapes of the last checked run."""
        if self._validated is None or self.leaf_shapes(values) != self._validated:
            return None
        if self._fast is None:
            with gc_paused():
                self._fast = fastpath.forward_runner(self.steps, self.scalar_steps, self.outputs)
        return self._fast


class BackwardPlan:
    """The op steps one backward pass runs, in reverse topological order, and its fast form."""

    def __init__(self, steps: tuple[OpStep, ...], needs: tuple[tuple[bool, ...], ...]):
        self.steps = steps
        self.needs = needs  # per step, which input slots need a gradient
        self._fast: Callable | None = None

    @property
    def fast(self) -> Callable[[list, list, dict], None]:
        if self._fast is None:
            with gc_paused():
                self._fast = fastpath.backward_runner(self.steps, self.needs)
        return self._fast


class Plan:
    """Everything static about running one version of a graph: its topological order, its op
    steps, and the forward and backward plans worked out so far.

    ``nodes`` is the graph's node list and ``version`` the graph's version number when
    the plan was made (a graph rebuilds its plan when its version moves on).
    """

    def __init__(self, graph: Graph, nodes: list[Node], version: int) -> None:
        self.graph = graph
        self.version = version
        self.nodes = nodes
        with gc_paused():
            self.order = topological_order(nodes)
            self.steps: dict[int, OpStep] = {}
            for index in self.order:
                node = nodes[index]
                op_def = node.op_def
                if op_def is not None:
                    self.steps[index] = OpStep(index, node, op_def, tuple(map(_INDEX, node.inputs)), node.attrs)
        self._forward: dict[Any, ForwardPlan] = {}
        self._backward: dict[Any, BackwardPlan] = {}

    @functools.cached_property
    def consumed(self) -> set[int]:
        """The indices of the nodes some op node reads."""
        return set(itertools.chain.from_iterable(map(_INPUTS, self.steps.values())))

    def ancestors(self, targets: tuple[int, ...]) -> set[int]:
        """Indices of the targets and every node they depend on."""
        seen = set(targets)
        stack = list(targets)
        steps = self.steps
        while stack:
            step = steps.get(stack.pop())
            if step is not None:  # a leaf has no inputs
                for source in step.inputs:
                    if source not in seen:
                        seen.add(source)
                        stack.append(source)
        return seen

    def forward_plan(self, outputs: tuple[int, ...] | None) -> ForwardPlan:
        key = None if outputs is None else tuple(sorted(set(outputs)))
        plan = self._forward.get(key)
        if plan is None:
            with gc_paused():
                plan = self._forward[key] = self._new_forward_plan(key)
        return plan

    def _new_forward_plan(self, key: tuple[int, ...] | None) -> ForwardPlan:
        wanted = None if key is None else self.ancestors(key)
        steps = tuple(filter(None, map(self.steps.get, self.order if wanted is None else
                                       [i for i in self.order if i in wanted])))
        keep = None if key is None else set(key)
        leaves = tuple(sorted(set(itertools.chain.from_iterable(map(_INPUTS, steps))) - self.steps.keys()))
        skipped = () if wanted is None else tuple(i for i in self.steps if i not in wanted)
        return ForwardPlan(steps, keep, leaves, skipped)

    def backward_plan(self, loss: int, sources: frozenset[int] | None) -> BackwardPlan:
        """The op steps that carry gradient from ``loss`` back to ``sources`` (default: what requires grad)."""
        key = (loss, sources)
        plan = self._backward.get(key)
        if plan is None:
            with gc_paused():
                plan = self._backward[key] = self._new_backward_plan(loss, sources)
        return plan

    def _new_backward_plan(self, loss: int, sources: frozenset[int] | None) -> BackwardPlan:
        nodes, op_steps = self.nodes, self.steps
        carries = [False] * len(nodes)  # whether gradient can reach node i from a source
        for i in self.order:
            step = op_steps.get(i)
            if step is not None:
                carry = sources is not None and i in sources
                for j in step.inputs:  # a plain loop: for one or two inputs, cheaper than any(map(...))
                    carry = carry or carries[j]
                carries[i] = carry
            else:
                carries[i] = nodes[i].requires_grad if sources is None else i in sources
        # Against the order, from the loss: a node is upstream once a consumer that is has been seen,
        # and every consumer comes after it in the order.
        upstream = [False] * len(nodes)
        upstream[loss] = True
        steps, needs = [], []
        shared: dict[tuple[bool, ...], tuple[bool, ...]] = {}  # a few distinct patterns: one tuple each
        for i in reversed(self.order):
            step = op_steps.get(i) if upstream[i] else None
            if step is None:
                continue
            for j in step.inputs:
                upstream[j] = True
            if carries[i]:
                steps.append(step)
                need = tuple([carries[j] for j in step.inputs])
                needs.append(shared.setdefault(need, need))
        return BackwardPlan(tuple(steps), tuple(needs))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while something big is built: a plan or its
    fast path, many nodes at once (:meth:`Graph.add_table`), a graph's file or the graph read from one.

    Building one allocates several objects per node, and on a graph of 10^5 nodes the
    collections this triggers walk the whole graph again and again: three quarters of the
    first run's time (issue 15). Nothing built here is garbage, so nothing is lost by waiting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def topological_order(nodes: list[Node]) -> list[int]:
    """The indices of ``nodes`` (a graph's, in index order) in the order networkx's ``topological_sort``
    gives the graph's mirror as it was built: Kahn's algorithm, generation after generation, each
    node's children in the order they were added. (A rename moves a node in the mirror, not here:
    the order, and so the order in which gradients are summed, never depends on names.)

    Worked out on the nodes' inputs, lists of ints, rather than on the mirror's dicts of names: a
    plan of 10^5 nodes is made in a third of the time. A node's inputs exist before it, so there is
    no cycle to look for.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); a = g.param("a", 1.0); b = a * a; c = g.param("c", 2.0); d = b + c
    >>> [g.nodes[i].name for i in topological_order(g.nodes)]
    ['a', 'c', 'mul_1', 'add_1']
    """
    children: list[list[int]] = [[] for _ in nodes]
    waiting = [0] * len(nodes)  # per node, its argument slots whose source is not placed yet
    for node in nodes:
        inputs = node.inputs
        if inputs:
            index = node.index
            waiting[index] = len(inputs)
            for source in inputs:  # one entry per slot: x * x lists its consumer twice, side by side
                children[source.index].append(index)
    order = [index for index, count in enumerate(waiting) if not count]
    for index in order:  # grows while it is read: a node is placed once its last slot is
        for child in children[index]:
            left = waiting[child] - 1
            waiting[child] = left
            if not left:
                order.append(child)
    return order


def run_forward(plan: Plan, values: list, outputs: tuple[int, ...] | None = None, *, retain: bool = True,
                check_finite: bool = False, on_step: OnStep | None = None) -> list:
    """Fill ``values`` (a list indexed like the graph's nodes) by running every needed op in order.

    Runs the fast pass when a checked run with the same leaf shapes came before and
    nothing asks for per-step work; otherwise interprets the plan step by step.
    """
    forward = plan.forward_plan(outputs)
    if retain and not check_finite and on_step is None:
        fast = forward.fast_for(values)
        if fast is not None:
            try:
                return fast(values)
            except Exception:
                pass  # the interpreter below re-runs every step and reports the problem exactly
    with gc_paused():  # a (shape, dtype) per step: 10^5 tuples, none garbage
        return _checked_forward(forward, plan.nodes, values, retain, check_finite, on_step)


def _checked_forward(forward: ForwardPlan, nodes: list[Node], values: list, retain: bool, check_finite: bool,
                     on_step: OnStep | None) -> list:
    """The interpreter: every step run and checked, and the run recorded for the fast pass."""
    lift(values, forward.leaves)
    scalar_steps = set()
    signatures = []
    numpy = True
    # as_built[i]: whether node i's value has the node's static shape; an op whose inputs all
    # do, and whose output does too, ran on what its shape rule was asked about when it was built
    as_built = [False] * len(nodes)
    for i in forward.leaves:
        as_built[i] = values[i] is not None and values[i].shape == nodes[i].static_shape
    for k, step in enumerate(forward.steps):
        index, node, op = step.index, step.node, step.op
        args = []
        numpy_args = inputs_built = True
        for j in step.inputs:  # a plain loop: for one or two inputs, cheaper than map and its object
            value = values[j]
            if value is None:
                raise GraphError(rules.missing_value_message(node, [values[i] for i in step.inputs]))
            if value.__class__ is not _ndarray:
                numpy_args = False
            inputs_built = inputs_built and as_built[j]
            args.append(value)
        compute = op.forward
        if compute.__class__ is np.ufunc and not (numpy_args or is_numpy(*args)):
            compute = ufunc_in(namespace(*args), compute)  # a ufunc would turn them into NumPy arrays
        attrs = step.attrs
        try:
            out = compute(*args, **attrs) if attrs else compute(*args)
        except Exception as exc:
            raise rules.forward_failure(node, args, exc) from exc
        if type(out) is not np.ndarray:
            out = rules.as_result_array(node, "forward", out)
            if type(out) is np.ndarray:
                scalar_steps.add(index)
            else:
                numpy = False
        dtype, shape = out.dtype, out.shape
        if dtype is not _float64:
            rules.check_real(node, "forward", out, args)
        if op.shape is not None:
            built = as_built[index] = shape == node.static_shape
            if not (built and inputs_built):
                rules.check_forward_shape(node, args, out)
        if check_finite and not all_finite(out):
            raise NonFiniteError(rules.non_finite_message(node, args, out))
        values[index] = out
        signatures.append((shape, dtype))
        if on_step is not None:
            on_step("forward", node, out)
        if not retain:
            for j in forward.release[k]:
                values[j] = None
    forward.validated(values, scalar_steps, tuple(signatures), numpy=numpy)
    return values


def run_backward(plan: Plan, values: list, loss: int, seed: np.ndarray, *, sources: frozenset[int] | None = None,
                 mode: str = "vjp", edges: frozenset[tuple[int, int]] | None = None,
                 on_step: OnStep | None = None) -> Run:
    """Propagate ``seed`` from ``loss`` back through the plan.

    Returns a fresh :class:`Run` over ``values`` holding the gradient of every node it
    reached and the gradient carried by every edge slot ``(consumer index, argument
    slot)``. With ``edges``, only those edge slots carry gradient (the backward pass
    restricted to a path).
    """
    if mode not in MODES:
        raise BackwardError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    pull = rules.pull_vjp if mode == "vjp" else rules.pull_jacobian
    backward = plan.backward_plan(loss, sources)
    loss_node = plan.nodes[loss]
    if sources is None and not backward.steps and not loss_node.requires_grad:
        raise BackwardError(
            f"{loss_node.name!r} does not depend on any param or input with requires_grad=True: "
            f"there is nothing to differentiate"
        )
    run = Run(plan.graph, plan.nodes, values, seeds=((loss_node, seed),), plan=plan)
    run.grads[loss] = seed
    if mode == "vjp" and edges is None and on_step is None and type(seed) is np.ndarray:
        try:
            backward.fast(values, run.grads, run.edge_grads)
        except Exception:
            # the interpreter below re-runs the pass and reports the problem exactly
            run = Run(plan.graph, plan.nodes, values, seeds=((loss_node, seed),), plan=plan)
            run.grads[loss] = seed
        else:
            return run
    grads = run.grads
    for step, needs in zip(backward.steps, backward.needs):
        g = grads[step.index]
        if g is None:
            continue
        if edges is not None:
            needs = tuple(need and (step.index, slot) in edges for slot, need in enumerate(needs))
        args = [values[j] for j in step.inputs]
        out = values[step.index]
        if out is None or any(a is None for a in args):
            raise BackwardError(rules.freed_message(step.node))
        results = pull(step.node, g, args, out, needs)
        for slot, contribution in enumerate(results):
            if contribution is None or not needs[slot]:
                continue
            total = run.send(step.index, slot, contribution)
            if on_step is not None:
                on_step("backward", step.node, slot, contribution, total)
    return run


def run_jvp(plan: Plan, run: Run, seeds: dict[int, np.ndarray], *, on_step: OnStep | None = None) -> Run:
    """Push the tangents ``seeds`` (leaf index -> tangent) forward through the plan: forward mode.

    Returns a copy of ``run`` holding every node's tangent (None where none reached) and
    what each edge slot ``(consumer index, argument slot)`` contributed to its consumer's.
    """
    values = run.values
    tangents: list = [None] * len(values)
    for index, tangent in seeds.items():
        tangents[index] = tangent
    edge_tangents: dict[tuple[int, int], np.ndarray] = {}
    for step in plan.forward_plan(None).steps:
        incoming = [tangents[j] for j in step.inputs]
        if all(t is None for t in incoming):
            continue
        args = [values[j] for j in step.inputs]
        out = values[step.index]
        if out is None or any(a is None for a in args):
            raise GraphError(rules.missing_value_message(step.node, args) if out is not None
                             else f"op node {step.node.name!r} has no value: run forward() before jvp()")
        total = None
        for slot, contribution in enumerate(rules.push_jvp(step.node, incoming, args, out)):
            if contribution is None:
                continue
            edge_tangents[(step.index, slot)] = contribution
            total = accumulate(total, contribution)
            if on_step is not None:
                on_step("tangent", step.node, slot, contribution, total)
        tangents[step.index] = total
    return run.replaced(tangents=tangents, edge_tangents=edge_tangents)
