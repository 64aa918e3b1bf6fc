"""The exception hierarchy: every error dagprop raises derives from DagpropError."""

from __future__ import annotations

__all__ = [
    "DagpropError",
    "GraphError",
    "CycleError",
    "ShapeError",
    "OpError",
    "PluginError",
    "UnknownOpError",
    "BackwardError",
    "NonFiniteError",
    "GradcheckError",
    "RenderError",
    "LoadError",
    "CommandError",
    "LargeGraphWarning",
]


class DagpropError(Exception):
    """Base class of every error raised by dagprop."""


class GraphError(DagpropError, ValueError):
    """The graph is not usable as asked: a duplicate name, a missing value, a stale plan."""


class CycleError(GraphError):
    """The graph has a cycle, so it has no topological order."""


class ShapeError(GraphError):
    """An op node's inputs have shapes its op cannot take."""


class OpError(DagpropError):
    """An op's forward, vjp or jacobian raised or returned something malformed."""


class PluginError(DagpropError):
    """A plugin is malformed, or two plugins define the same op."""


class UnknownOpError(PluginError, KeyError):
    """No registered plugin provides an op of that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BackwardError(DagpropError):
    """backward() cannot run as asked (no forward yet, non-scalar loss without a seed, ...)."""


class NonFiniteError(DagpropError, FloatingPointError):
    """A node produced NaN or Inf while forward(check_finite=True) was running."""


class GradcheckError(DagpropError, AssertionError):
    """Analytic and numeric gradients disagree."""


class RenderError(DagpropError):
    """Graphviz could not turn a diagram into a picture: dot is missing, too slow, or failed."""


class LoadError(DagpropError, ValueError):
    """A saved graph file cannot be read: not JSON, not a dagprop graph, or a field is missing or malformed."""


class CommandError(DagpropError):
    """A ``dagprop`` command was asked for something it cannot do with the given arguments."""


class LargeGraphWarning(UserWarning):
    """The graph has more nodes than ``max_nodes``: a collapsed view is drawn instead."""
