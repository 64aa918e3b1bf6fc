"""The exception hierarchy: every error dagprop raises derives from DagpropError."""

from __future__ import annotations

from typing import Mapping

__all__ = [
    "DagpropError",
    "GraphError",
    "CycleError",
    "ShapeError",
    "OpError",
    "PluginError",
    "UnknownOpError",
    "UnknownExecutorError",
    "NodeLookupError",
    "BackwardError",
    "NonFiniteError",
    "GradcheckError",
    "RenderError",
    "LoadError",
    "UnsupportedOpsError",
    "MissingRuleError",
    "CommandError",
    "LargeGraphWarning",
]


class DagpropError(Exception):
    """Base class of every error raised by dagprop.

    Examples
    --------
    >>> import dagprop as dp
    >>> try:
    ...     dp.Graph().op("no_such_op")
    ... except dp.DagpropError as error:
    ...     print(type(error).__name__)
    UnknownOpError
    """


class GraphError(DagpropError, ValueError):
    """The graph is not usable as asked: a duplicate name, a missing value, a stale plan.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); _ = g.param("w", 1.0)
    >>> g.param("w", 2.0)
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: a node named 'w' already exists in this graph (param); names must be unique
    """


class CycleError(GraphError):
    """The graph has a cycle, so it has no topological order.

    Graphs built through the API are acyclic by construction; a cycle can only come
    from a file (see :func:`dagprop.load`).

    Examples
    --------
    >>> issubclass(CycleError, GraphError)
    True
    """


class ShapeError(GraphError):
    """An op node's inputs have shapes its op cannot take.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph()
    >>> g.param("A", [[1.0, 2.0]]) @ g.param("B", [[1.0, 2.0]])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.ShapeError: op node 'new matmul node': matmul (plugin 'dagprop_plugins.linalg') cannot take inputs of shapes A (1, 2), B (1, 2): ...
    """


class OpError(DagpropError):
    """An op's forward, vjp or jacobian raised or returned something malformed.

    Examples
    --------
    >>> import dagprop as dp
    >>> def bad_vjp(g, x, *, out):
    ...     return (g, g)  # one gradient too many
    >>> class Bad:
    ...     @dp.hookimpl
    ...     def dagprop_ops(self):
    ...         return [dp.Op("bad", forward=lambda x: 2 * x, vjp=bad_vjp)]
    >>> g = dp.Graph(plugins=[Bad()]); y = g.ops.bad(g.param("x", 1.0))
    >>> g.forward(); g.backward(y)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.OpError: vjp of op 'bad' at node 'bad_1', plugin ... returned tuple of length 2; expected a tuple of 1 ...
    """


class MissingRuleError(OpError):
    """An op lacks a rule a run needs: a jvp for forward mode, a vjp_graph for ``create_graph=True``.

    The op still works for what its rules cover (every first-order backward pass).

    Examples
    --------
    >>> import dagprop as dp
    >>> def double(x):
    ...     return 2 * x
    >>> def double_vjp(g, x, *, out):
    ...     return (2 * g,)
    >>> class Double:
    ...     @dp.hookimpl
    ...     def dagprop_ops(self):
    ...         return [dp.Op("double", forward=double, vjp=double_vjp)]
    >>> g = dp.Graph(plugins=[Double()]); x = g.param("x", 1.0); y = g.ops.double(x)
    >>> g.jvp({x: 1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.MissingRuleError: forward mode cannot go through op 'double' at node 'double_1', ...
    """


class PluginError(DagpropError):
    """A plugin is malformed, or two plugins define the same op.

    Examples
    --------
    >>> import dagprop as dp
    >>> dp.Op("not an identifier", forward=abs, vjp=abs)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.PluginError: op 'not an identifier': an op name must be a Python identifier...
    """


class UnknownOpError(PluginError, KeyError):
    """No registered plugin provides an op of that name.

    Examples
    --------
    >>> import dagprop as dp
    >>> dp.Graph().op("softmaxx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.UnknownOpError: no registered plugin provides an op named 'softmaxx'; did you mean 'softmax'...
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownExecutorError(PluginError, KeyError):
    """No registered plugin provides an executor of that name; the message lists those that do.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); y = g.param("x", 1.0).exp()
    >>> g.forward(executor="ray")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.UnknownExecutorError: no registered plugin provides an executor named 'ray'; the executors are: 'dask'...
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NodeLookupError(GraphError, KeyError):
    """No node of that name in the graph; it is also a KeyError, as a missing key is.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); _ = g.param("weights", 1.0)
    >>> g["weight"]
    Traceback (most recent call last):
    ...
    dagprop.errors.NodeLookupError: no node named 'weight' in this graph; close names: weights
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BackwardError(DagpropError, ValueError):
    """backward() cannot run as asked (no forward yet, non-scalar loss without a seed, ...).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); y = g.param("x", [1.0, 2.0]) * 2
    >>> g.forward(); g.backward(y)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.BackwardError: backward from 'mul_1' of shape (2,) needs a seed: ...
    """


class NonFiniteError(DagpropError, FloatingPointError):
    """A node produced NaN or Inf while forward(check_finite=True) was running.

    Examples
    --------
    >>> import dagprop as dp, numpy as np
    >>> g = dp.Graph(); y = g.param("x", -1.0).log()
    >>> with np.errstate(invalid="ignore"):
    ...     g.forward(check_finite=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.NonFiniteError: op 'log' at node 'log_1', plugin ... produced NaN (check_finite=True); ...
    """


class GradcheckError(DagpropError, AssertionError):
    """Analytic and numeric gradients disagree.

    Raised by :func:`dagprop.gradcheck` and :func:`dagprop.testing.check_op`, naming the
    node, the element and both values.

    Examples
    --------
    >>> issubclass(GradcheckError, AssertionError)  # pytest reports it as a failed check
    True
    """


class RenderError(DagpropError):
    """A diagram cannot be drawn as asked: an unknown option, or Graphviz's dot missing, too slow, or failing.

    Examples
    --------
    >>> import dagprop as dp
    >>> dp.to_dot(dp.Graph(), rankdir="up")
    Traceback (most recent call last):
    ...
    dagprop.errors.RenderError: rankdir= must be one of ('LR', 'RL', 'TB', 'BT'), got 'up'
    """


class LoadError(DagpropError, ValueError):
    """A saved graph file cannot be read: not JSON, not a dagprop graph, or a field is missing or malformed.

    Examples
    --------
    >>> from dagprop.io import from_data
    >>> from_data({"format": "something else"})
    Traceback (most recent call last):
    ...
    dagprop.errors.LoadError: not a dagprop graph: 'format' is 'something else', expected 'dagprop-graph'
    """


class UnsupportedOpsError(DagpropError):
    """A model uses ops that no converter handles; every one is listed at once, with its count.

    Raised by :func:`dagprop.from_torch` and :func:`dagprop.from_onnx` before anything is
    built; the message says how to add a converter through the plugin hook.

    Attributes
    ----------
    ops : dict of str to int
        Each unsupported op and how many times the model uses it.

    Examples
    --------
    >>> error = UnsupportedOpsError("no converter for: Foo (2), Bar (1)", ops={"Foo": 2, "Bar": 1})
    >>> error.ops, isinstance(error, DagpropError)
    ({'Foo': 2, 'Bar': 1}, True)
    """

    def __init__(self, message: str, ops: Mapping[str, int] | None = None) -> None:
        super().__init__(message)
        self.ops: dict[str, int] = dict(ops or {})


class CommandError(DagpropError):
    """A ``dagprop`` command was asked for something it cannot do with the given arguments.

    The command line prints it as one line and exits with status 1.

    Examples
    --------
    >>> from dagprop.cli import load_source
    >>> load_source("no/such/file.json")
    Traceback (most recent call last):
    ...
    dagprop.errors.CommandError: 'no/such/file.json' does not exist
    """


class LargeGraphWarning(UserWarning):
    """The graph has more nodes than ``max_nodes``: a collapsed view is drawn instead.

    Examples
    --------
    >>> import warnings, dagprop as dp
    >>> g = dp.Graph(); h = g.param("x", 1.0)
    >>> for _ in range(5):
    ...     h = h.tanh()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = dp.to_dot(g, max_nodes=3)
    >>> caught[0].category.__name__
    'LargeGraphWarning'
    """
