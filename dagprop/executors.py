"""Executors: what runs a plan when ``forward`` or ``backward`` is given ``executor=``.

The default, ``executor=None``, is the in-process scheduler (:mod:`dagprop.scheduler`),
which this module never touches. Any other executor is named, and comes from a
plugin's ``dagprop_executors`` hook as ``{name: factory}`` (the built-in ``"dask"``
executor, :mod:`dagprop_plugins.dask_executor`, included), or is given as an object.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import GraphError

if TYPE_CHECKING:
    import numpy as np

    from .graph import Graph
    from .registry import Registry
    from .run import Run
    from .scheduler import Plan

__all__ = ["Executor", "executor_for", "GraphStructure"]


@runtime_checkable
class Executor(Protocol):
    """An engine that runs a graph's plan: the in-process scheduler's two loops, elsewhere.

    Both methods must leave the numbers the in-process scheduler leaves, each gradient
    summed in the plan's order, so that diagrams, paths, files and a second accumulating
    ``backward`` cannot tell the difference. Numbers may stay where they were computed
    (a cluster's memory): :meth:`dagprop.Run.hold` records such an entry, and the record
    fetches it when it is first read.

    Examples
    --------
    An executor running the in-process loops (a plugin would return ``{"here": Here}``
    from its ``dagprop_executors`` hook, and the graph would take ``executor="here"``):

    >>> import dagprop as dp
    >>> from dagprop import scheduler
    >>> class Here:
    ...     def forward(self, plan, run, outputs, *, retain, check_finite):
    ...         scheduler.run_forward(plan, run.values, outputs, retain=retain, check_finite=check_finite)
    ...     def backward(self, plan, run, loss, seed, *, mode):
    ...         return scheduler.run_backward(plan, run.values, loss, seed, mode=mode)
    >>> g = dp.Graph(); x = g.param("x", 3.0); y = x * x
    >>> g.forward(executor=Here()); g.backward(y, executor=Here()); float(x.grad)
    6.0
    """

    def forward(self, plan: Plan, run: Run, outputs: tuple[int, ...] | None, *, retain: bool,
                check_finite: bool) -> None:
        """Compute the values of the op steps of ``plan.forward_plan(outputs)`` into ``run``
        (a fresh record holding the leaves' values), as :func:`dagprop.scheduler.run_forward` does."""

    def backward(self, plan: Plan, run: Run, loss: int, seed: np.ndarray, *, mode: str) -> Run:
        """A fresh record over ``run``'s values with the gradients of one backward pass from
        node ``loss``, as :func:`dagprop.scheduler.run_backward` returns it."""


def executor_for(executor: str | Executor, registry: Registry) -> Executor:
    """The executor ``executor`` names (made by its plugin's factory), or ``executor`` itself.

    Raises
    ------
    UnknownExecutorError
        For a name no plugin provides; the message lists those that are.
    GraphError
        For something that is neither a name nor an executor.

    Examples
    --------
    >>> from dagprop.registry import default_registry
    >>> type(executor_for("dask", default_registry())).__name__
    'DaskExecutor'
    """
    if isinstance(executor, str):
        return registry.executor(executor)()
    if isinstance(executor, Executor):
        return executor
    raise GraphError(f"executor must be None (this process), an executor's name such as 'dask', or an object with "
                     f"forward and backward methods (dagprop.executors.Executor), got {type(executor).__name__} "
                     f"{executor!r}")


class GraphStructure:
    """A graph's nodes without its numbers: what a task needs to apply a node's op and to name
    the node in an error. An executor hands one to its tasks; in this process it is the graph
    itself, and pickled (to a worker) it is the graph pickled without its run record.

    Examples
    --------
    >>> import pickle
    >>> import dagprop as dp
    >>> g = dp.Graph(); y = g.param("x", [1.0, 2.0]).exp(); g.forward()
    >>> there = pickle.loads(pickle.dumps(GraphStructure(g)))
    >>> there.nodes[y.index].op, there.nodes[y.index].value is None
    ('exp', True)
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self._token = uuid.uuid4().hex

    def __dask_tokenize__(self) -> str:
        # Dask fingerprints every object in a task graph, pickling (twice) those it does not know: a
        # structure is made for one pass and never changes, so a name of its own says as much, at no cost
        return self._token

    def __reduce__(self) -> tuple:
        # graph.py's own pickled state, less the numbers: the tasks get those as their arguments
        return _structure_from_state, (self.graph.state(numbers=False),)


def _structure_from_state(state: dict[str, Any]) -> GraphStructure:
    from .graph import Graph

    graph = Graph.__new__(Graph)
    graph.__setstate__(state)
    return GraphStructure(graph)
