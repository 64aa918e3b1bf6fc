"""The built-in ``"dask"`` executor: a graph's plan run as a Dask task graph.

``g.forward(executor="dask")`` and ``g.backward(loss, executor="dask")`` turn the plan
into one task per forward step, per vjp, per edge record and per gradient sum, and run
it on Dask's current scheduler: the threaded one by default, a
``dask.distributed.Client``'s cluster when one is active. The numbers are the
in-process scheduler's, bit for bit: each task applies the op's checked rules to the
same arrays, and each node's gradient is summed in the plan's order, one sum task
after another.

On a cluster, only what is asked for at once travels back: after forward the values
no node consumes (the loss), after backward the leaves' gradients. Every other value,
node gradient and edge gradient stays on the workers, held by the run record
(:meth:`dagprop.Run.hold`) until something reads it; a backward after a forward on the
same cluster takes the values from there. Arrays of this process from 1 MiB on (the
leaves' values, mostly) are sent to the workers once and kept there for later passes,
for as long as the array lives here unchanged: an array replaced (a step, a feed) or
changed in place is sent again. They travel straight between this process and the
workers, not through the scheduler, unless the client was made with
``direct_to_workers=False``. Dask is imported only when the executor is made: without
it, asking for ``"dask"`` says ``pip install 'dagprop[dask]'``.

>>> import dagprop as dp
>>> g = dp.Graph(); x = g.param("x", [1.0, 2.0]); L = (x * x).sum()
>>> g.forward(executor="dask"); g.backward(L, executor="dask")
>>> float(L.value), x.grad.tolist()
(5.0, [2.0, 4.0])
"""

from __future__ import annotations

import hashlib
import inspect
import operator
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

import dagprop as dp
from dagprop import rules
from dagprop.backend import all_finite
from dagprop.errors import BackwardError, GraphError, NonFiniteError, PluginError
from dagprop.executors import GraphStructure
from dagprop.run import accumulate

if TYPE_CHECKING:
    from dagprop.run import Run
    from dagprop.scheduler import Plan

__all__ = ["DaskExecutor", "dagprop_executors"]

SCATTERED_BYTES = 1 << 20  # arrays from this size on go to a worker directly, not inside the task graph


@dp.hookimpl
def dagprop_executors() -> dict[str, Callable[[], Any]]:
    """The built-in executors: ``{"dask": DaskExecutor}``."""
    return {"dask": DaskExecutor}


class DaskExecutor:
    """Runs a plan as a Dask task graph on Dask's current scheduler (see the module's docstring)."""

    def __init__(self) -> None:
        try:
            import dask  # noqa: F401  (imported here, not with the plugin: dask is an optional extra)
        except ImportError:
            raise PluginError("the 'dask' executor needs Dask, which is not installed: "
                              "pip install 'dagprop[dask]'") from None

    def forward(self, plan: Plan, run: Run, outputs: tuple[int, ...] | None, *, retain: bool,
                check_finite: bool) -> None:
        forward = plan.forward_plan(outputs)
        values = run.here("values")  # a record for a new pass: its leaves' values are here
        graph = _TaskGraph(plan)
        computed = {step.index for step in forward.steps}
        for step in forward.steps:
            if any(values[j] is None for j in step.inputs if j not in computed):
                raise GraphError(rules.missing_value_message(
                    step.node, [... if j in computed else values[j] for j in step.inputs]))
            graph.tasks[graph.value_key(step.index)] = (
                _forward_step, graph.structure_key, step.index, check_finite,
                *[graph.value_key(j) if j in computed else graph.data(values[j]) for j in step.inputs])
        ends = set(outputs) if outputs is not None else {i for i in computed if i not in plan.consumed}
        kept = sorted(computed if retain else ends & computed)
        for index in computed.difference(kept):
            values[index] = None
        for index, result in graph.compute({index: graph.value_key(index) for index in kept}, back=ends).items():
            _commit(run, "values", index, result)

    def backward(self, plan: Plan, run: Run, loss: int, seed: np.ndarray, *, mode: str) -> Run:
        backward = plan.backward_plan(loss, None)
        loss_node = plan.nodes[loss]
        if not backward.steps and not loss_node.requires_grad:
            raise BackwardError(f"{loss_node.name!r} does not depend on any param or input with requires_grad=True: "
                                f"there is nothing to differentiate")
        graph = _TaskGraph(plan)
        jacobian = mode == "jacobian"
        received = {loss: graph.data(seed)}  # node index -> the key of what it has received so far
        edges = {}
        for step, needs in zip(backward.steps, backward.needs):
            g = received.get(step.index)
            if g is None:
                continue
            vjp = graph.key(rules.op_of(step.node).name + "-vjp", step.index)
            graph.tasks[vjp] = (_vjp_step, graph.structure_key, step.index, needs, jacobian, g,
                                graph.held_value(run, step), *[graph.held_value(run, step, j) for j in step.inputs])
            for slot, source in enumerate(step.inputs):
                if not needs[slot]:
                    continue
                edge = edges[(step.index, slot)] = graph.key("edge-grad", step.index, slot)
                graph.tasks[edge] = (operator.getitem, vjp, slot)
                before = received.get(source)
                if before is None:
                    received[source] = edge
                else:  # summed here, in the plan's order, as the in-process loop sums
                    total = graph.key("grad-sum", step.index, slot)
                    graph.tasks[total] = (_accumulate, before, edge)
                    received[source] = total
        later = run.replaced(grads=None, edge_grads=None, seeds=((loss_node, seed),), plan=plan, tangents=None,
                             edge_tangents=None, grad_nodes=None)
        later.here("grads")[loss] = seed
        wanted: dict[Any, Any] = {("grads", i): key for i, key in received.items() if i != loss}
        wanted.update({("edge_grads", slot): key for slot, key in edges.items()})
        leaves = {("grads", i) for i in received if plan.nodes[i].op_def is None}
        for (field, key), result in graph.compute(wanted, back=leaves).items():
            _commit(later, field, key, result)
        return later


class _TaskGraph:
    """One pass's Dask graph: keys unique to the pass (a cluster keeps keys of earlier passes
    alive while their results are held), the graph's structure as one shared input, and the
    scheduler to run it on.

    A task applying an op is named after it (``dagprop-matmul-<pass>``, ``dagprop-matmul-vjp-<pass>``):
    Dask then learns each op's duration apart from the others' when it places tasks, and its dashboard
    shows which op a task applies. The other tasks' names are two words (``edge-grad``, ``grad-sum``,
    ``local-array``): never an op's name, an identifier, alone or before ``-vjp``."""

    def __init__(self, plan: Plan) -> None:
        import dask.threaded
        from dask.base import get_scheduler

        self.token = uuid.uuid4().hex
        self.structure_key = "dagprop-graph-structure-" + self.token
        self.nodes = plan.nodes
        self.tasks: dict[Any, Any] = {self.structure_key: GraphStructure(plan.graph)}
        self.get = get_scheduler() or dask.threaded.get
        self.client = _client_of(self.get)
        self._data: dict[int, Any] = {}
        self._scattered: dict[Any, Any] = {}  # key -> array of this process, sent to the cluster at compute

    def key(self, name: str, *index: int) -> tuple:
        return (f"dagprop-{name}-{self.token}", *index)

    def value_key(self, index: int) -> tuple:
        return self.key(rules.op_of(self.nodes[index]).name, index)

    def data(self, array: Any) -> Any:
        """The key of an array of this process, given to the graph once however many tasks read it.

        On a cluster a large array is scattered to a worker (or found there from an earlier
        pass, see :class:`_ClusterCopies`) rather than travelling inside the task graph through
        the scheduler: arrays spread over the workers, and the tasks reading them follow (the
        branches of a wide graph run side by side)."""
        key = self._data.get(id(array))
        if key is None:
            key = self._data[id(array)] = self.key("local-array", len(self._data))
            if self.client is not None and getattr(array, "nbytes", 0) >= SCATTERED_BYTES:
                self._scattered[key] = array
            else:
                self.tasks[key] = array
        return key

    def held_value(self, run: Run, step: Any, index: int | None = None) -> Any:
        """What a vjp task reads for the value of node ``index`` (default: the step's own output):
        the future a forward on this cluster left, or the array of this process."""
        index = step.index if index is None else index
        handle = run.handle("values", index)
        if handle is not None and getattr(handle, "client", None) is self.client is not None:
            return handle
        value = run.value(run.nodes[index])
        if value is None:
            raise BackwardError(rules.freed_message(step.node))
        return self.data(value)

    def compute(self, wanted: dict[Any, Any], back: set) -> dict[Any, Any]:
        """Run the graph for the ``wanted`` keys: ``{name: result}``, where a result that stays on
        a cluster (its name is not in ``back``) is a :class:`_Held` future."""
        names, keys = list(wanted), list(wanted.values())
        if self.client is None:
            return dict(zip(names, self.get(self.tasks, keys)))
        if self._scattered:
            self.tasks.update(zip(self._scattered, _copies_on(self.client).futures(list(self._scattered.values()))))
        futures = dict(zip(names, self.client.get(self.tasks, keys, sync=False)))
        gather = _Gather(self.client)
        travelling = [name for name in names if name in back]
        results: dict[Any, Any] = dict(zip(travelling, gather([futures[name] for name in travelling])))
        for name in names:
            if name not in back:
                results[name] = _Held(futures[name], gather)
        return results


@dataclass(frozen=True)
class _Held:
    future: Any
    gather: Callable[[list], list]


@dataclass(frozen=True)
class _Gather:
    """Fetches many futures of one client in one round trip; equal for one client, so that a
    record fetches everything a field holds on that cluster at once."""

    client: Any

    def __call__(self, futures: list) -> list:
        gathered = self.client.gather(futures, direct=_direct(self.client))
        return [_aligned(array, writeable=True) for array in gathered]


class _ClusterCopies:
    """The arrays of this process that one client has scattered to its cluster, kept there for
    later passes: a backward reads the leaves its forward sent, and a loop that changes no leaf
    sends none again.

    A copy is reused only for the same array object (the one it was sent from, alive) whose
    dtype, shape and bytes are the same: a step, a feed or a new value makes a new object, and
    a change in place changes the bytes, so either is sent afresh. A copy is released when its
    array is garbage-collected here, or replaced.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._copies: dict[int, _Copy] = {}  # id(array) -> its copy on the cluster
        self._lock = threading.Lock()  # two graphs may run passes on one client at once

    def futures(self, arrays: list[Any]) -> list[Any]:
        """A future of the cluster's copy of each array, sending those not there in one scatter."""
        with self._lock:
            found: list[Any] = [None] * len(arrays)
            missing = []
            for position, array in enumerate(arrays):
                copy = self._copies.get(id(array))
                fingerprint = _fingerprint(array)
                if (copy is not None and copy.source() is array and copy.fingerprint == fingerprint
                        and copy.future.status == "finished"):  # not lost with a worker, nor cancelled
                    found[position] = copy.future
                else:
                    missing.append((position, array, fingerprint))
            if missing:
                sent = self.client.scatter([array for _, array, _ in missing], hash=False,
                                           direct=_direct(self.client))
                for (position, array, fingerprint), future in zip(missing, sent):
                    found[position] = future
                    if fingerprint is not None:
                        self._keep(array, fingerprint, future)
            return found

    def _keep(self, array: np.ndarray, fingerprint: tuple, future: Any) -> None:
        key = id(array)

        def forget(source: weakref.ref, key: int = key) -> None:
            # runs as the array is freed, before another object can take its id
            copy = self._copies.get(key)
            if copy is not None and copy.source is source:
                del self._copies[key]

        self._copies[key] = _Copy(weakref.ref(array, forget), fingerprint, future)


@dataclass(frozen=True)
class _Copy:
    source: weakref.ref
    fingerprint: tuple
    future: Any


_CLUSTER_COPIES: dict[str, _ClusterCopies] = {}  # client id -> what it has sent
_CLUSTER_COPIES_LOCK = threading.Lock()


def _copies_on(client: Any) -> _ClusterCopies:
    """The copies ``client`` keeps on its cluster; those of closed clients are forgotten."""
    with _CLUSTER_COPIES_LOCK:
        for client_id, kept in list(_CLUSTER_COPIES.items()):
            if kept.client.status in ("closing", "closed"):
                del _CLUSTER_COPIES[client_id]
        copies = _CLUSTER_COPIES.get(client.id)
        if copies is None or copies.client is not client:
            copies = _CLUSTER_COPIES[client.id] = _ClusterCopies(client)
        return copies


def _fingerprint(array: Any) -> tuple | None:
    """What a NumPy array holds: dtype, shape and a digest of its bytes; None for another
    library's array, which is sent again each pass."""
    if type(array) is not np.ndarray:
        return None
    return array.dtype.str, array.shape, hashlib.sha256(np.ascontiguousarray(array).data).digest()


def _direct(client: Any) -> bool:
    """Whether arrays travel straight between this process and the workers: unless the client was
    made with ``direct_to_workers=False`` (workers this process cannot reach), as the scheduler
    relaying them would copy each array twice more, in the process that runs it (a LocalCluster's
    scheduler runs in the client's process)."""
    return client.direct_to_workers is not False


def _commit(run: Run, field: str, key: Any, result: Any) -> None:
    if isinstance(result, _Held):
        run.hold(field, key, result.future, result.gather)
    elif result is not None:  # nothing flowed there: the in-process loop records nothing either
        run.here(field)[key] = result


def _client_of(get: Callable) -> Any:
    """The dask.distributed Client whose ``get`` Dask's current scheduler is, or None."""
    owner = getattr(get, "__self__", None) if inspect.ismethod(get) else None
    return owner if type(owner).__module__.startswith("distributed") else None


def _aligned(array: Any, writeable: bool = False) -> Any:
    """An array as the in-process loops would have it: one that arrives misaligned from another
    process is copied (NumPy's kernels take another path on it, and the last bits differ), and one
    that arrives read-only is copied when it is to be committed to a graph."""
    if type(array) is not np.ndarray:
        return array
    return np.require(array, requirements=("A", "W") if writeable else ("A",))


# -- the tasks: each one step of the in-process loops, with the same checks ----------------------------


def _forward_step(structure: GraphStructure, index: int, check_finite: bool, *args: Any) -> np.ndarray:
    node = structure.nodes[index]
    op = rules.op_of(node)
    args = tuple(_aligned(a) for a in args)
    try:
        out = op.forward(*args, **node.attrs)
    except Exception as exc:
        raise rules.forward_failure(node, list(args), exc) from exc
    if type(out) is not np.ndarray:
        out = rules.as_result_array(node, "forward", out)
    rules.check_real(node, "forward", out, args)
    if op.shape is not None:
        rules.check_forward_shape(node, list(args), out)
    if check_finite and not all_finite(out):
        raise NonFiniteError(rules.non_finite_message(node, list(args), out))
    return out


def _vjp_step(structure: GraphStructure, index: int, needs: tuple[bool, ...], jacobian: bool, g: Any, out: Any,
              *args: Any) -> tuple[np.ndarray | None, ...]:
    if g is None:  # every contribution to this node was None: it passes nothing on
        return (None,) * len(args)
    pull = rules.pull_jacobian if jacobian else rules.pull_vjp
    return pull(structure.nodes[index], _aligned(g), [_aligned(a) for a in args], _aligned(out), needs)


def _accumulate(total: Any, contribution: Any) -> Any:
    if contribution is None:
        return total
    return accumulate(_aligned(total), _aligned(contribution))
