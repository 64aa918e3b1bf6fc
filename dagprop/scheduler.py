"""The scheduler: an ordered plan worked out once per graph version, and the forward and
backward loops that run it over plain lists of arrays.

The loops are pure: they read a list of values and return new values or gradients,
so the graph can commit a run only once it has succeeded.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import networkx as nx
import numpy as np

from . import fastpath, rules
from .backend import all_finite, is_numpy, lift, namespace, ufunc_in
from .errors import BackwardError, CycleError, GraphError, NonFiniteError
from .run import Run, accumulate

_ndarray = np.ndarray

if TYPE_CHECKING:
    from .graph import Graph, Node
    from .op import Op

__all__ = ["Plan", "run_forward", "run_backward", "run_jvp", "MODES"]

MODES = ("vjp", "jacobian")  # how backward pulls a gradient through an op

OnStep = Callable[..., None]


@dataclass(frozen=True)
class OpStep:
    """One op node as the loops see it: what to call, on which slots of the value list."""

    index: int
    node: Node
    op: Op
    inputs: tuple[int, ...]
    attrs: dict[str, Any]


class ForwardPlan:
    """The op steps one forward pass runs, and its fast form once a checked run has validated it."""

    def __init__(self, steps: tuple[OpStep, ...], release: tuple[tuple[int, ...], ...], leaves: tuple[int, ...],
                 skipped: tuple[int, ...]):
        self.steps = steps
        self.release = release  # release[k]: values no step after step k reads (freed when retain=False)
        self.leaves = leaves  # the leaf values the steps read
        self.skipped = skipped  # the op nodes these outputs do not need: their old values would be stale
        self.scalar_steps: frozenset[int] = frozenset()  # steps whose op returned a numpy scalar
        self.outputs: tuple[tuple[tuple[int, ...], np.dtype], ...] = ()  # per step, its checked (shape, dtype)
        self._validated: list | None = None  # leaf shapes of the last fully checked run
        self._fast: Callable[[list], list] | None = None

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
            self.order = topological_order(graph)
            self.steps: dict[int, OpStep] = {
                n.index: OpStep(n.index, n, n.op_def, tuple([i.index for i in n.inputs]), n.attrs)
                for n in self.nodes if n.op_def is not None
            }
        self.consumed = {i.index for n in self.nodes for i in n.inputs}
        self._forward: dict[Any, ForwardPlan] = {}
        self._backward: dict[Any, BackwardPlan] = {}

    def ancestors(self, targets: tuple[int, ...]) -> set[int]:
        """Indices of the targets and every node they depend on."""
        seen = set(targets)
        stack = list(targets)
        while stack:
            for source in self.nodes[stack.pop()].inputs:
                if source.index not in seen:
                    seen.add(source.index)
                    stack.append(source.index)
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
        steps = tuple(self.steps[i] for i in self.order if i in self.steps and (wanted is None or i in wanted))
        keep = set(key) if key is not None else {i for i in self.steps if i not in self.consumed}
        last_use: dict[int, int] = {}
        for k, step in enumerate(steps):
            for source in step.inputs:
                last_use[source] = k
        release: list[list[int]] = [[] for _ in steps]
        for source, k in last_use.items():
            if source in self.steps and source not in keep:
                release[k].append(source)
        leaves = tuple(sorted({j for step in steps for j in step.inputs if j not in self.steps}))
        run_here = {step.index for step in steps}
        skipped = tuple(i for i in self.steps if i not in run_here)
        return ForwardPlan(steps, tuple(tuple(r) for r in release), leaves, skipped)

    def backward_plan(self, loss: int, sources: frozenset[int] | None) -> BackwardPlan:
        """The op steps that carry gradient from ``loss`` back to ``sources`` (default: what requires grad)."""
        key = (loss, sources)
        plan = self._backward.get(key)
        if plan is None:
            with gc_paused():
                plan = self._backward[key] = self._new_backward_plan(loss, sources)
        return plan

    def _new_backward_plan(self, loss: int, sources: frozenset[int] | None) -> BackwardPlan:
        upstream = self.ancestors((loss,))
        carries = [False] * len(self.nodes)
        for i in self.order:
            node = self.nodes[i]
            if sources is None:
                carries[i] = node.requires_grad if node.op_def is None else any([carries[s.index] for s in node.inputs])
            else:
                carries[i] = i in sources or any([carries[s.index] for s in node.inputs])
        steps = tuple(self.steps[i] for i in reversed(self.order)
                      if i in upstream and i in self.steps and carries[i])
        needs = tuple(tuple([carries[j] for j in step.inputs]) for step in steps)
        return BackwardPlan(steps, needs)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a plan or its fast path is built.

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


def topological_order(graph: Graph) -> list[int]:
    """Node indices in a topological order of ``graph.nx``; CycleError naming a cycle if there is none.

    The order is networkx's ``topological_sort``'s (see :meth:`dagprop.mirror.Mirror.topological_names`).
    """
    try:
        names = graph.nx.topological_names()
    except nx.NetworkXUnfeasible:
        cycle = [edge[0] for edge in nx.find_cycle(graph.nx)]
        raise CycleError(f"the graph has a cycle: {' -> '.join(cycle + cycle[:1])}") from None
    return [graph[name].index for name in names]


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
    lift(values, forward.leaves)
    scalar_steps = set()
    signatures = []
    numpy = True
    for k, step in enumerate(forward.steps):
        args = [values[j] for j in step.inputs]
        if any(a is None for a in args):
            raise GraphError(rules.missing_value_message(step.node, args))
        compute = step.op.forward
        if compute.__class__ is np.ufunc and not is_numpy(*args):  # a ufunc would turn them into NumPy arrays
            compute = ufunc_in(namespace(*args), compute)
        try:
            out = compute(*args, **step.attrs)
        except Exception as exc:
            raise rules.forward_failure(step.node, args, exc) from exc
        if type(out) is not np.ndarray:
            out = rules.as_result_array(step.node, "forward", out)
            if type(out) is np.ndarray:
                scalar_steps.add(step.index)
            else:
                numpy = False
        rules.check_real(step.node, "forward", out, args)
        if step.op.shape is not None and not _as_built(step.node, args, out):
            rules.check_forward_shape(step.node, args, out)
        if check_finite and not all_finite(out):
            raise NonFiniteError(rules.non_finite_message(step.node, args, out))
        values[step.index] = out
        signatures.append((out.shape, out.dtype))
        if on_step is not None:
            on_step("forward", step.node, out)
        if not retain:
            for j in forward.release[k]:
                values[j] = None
    forward.validated(values, scalar_steps, tuple(signatures), numpy=numpy)
    return values


def _as_built(node: Node, args: list, out: np.ndarray) -> bool:
    """Whether an op ran on the input shapes its static shape was inferred from, and gave that
    shape: its shape rule would only repeat what it said when the graph was built."""
    static = node.static_shape
    return static is not None and out.shape == static and all(
        [a.shape == source.static_shape for a, source in zip(args, node.inputs)])


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
