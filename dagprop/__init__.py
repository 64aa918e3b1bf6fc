"""dagprop: see backpropagation. A compute graph of plugin ops, its forward values, its
gradients, and the gradient that flowed along every edge and every path.

>>> import dagprop as dp
>>> g = dp.Graph()
>>> x = g.param("x", 2.0)
>>> y = x * x + 3 * x
>>> g.forward(); g.backward(y)
>>> float(y.value), float(x.grad)
(10.0, 7.0)
"""

from __future__ import annotations

from .errors import (
    BackwardError,
    CycleError,
    DagpropError,
    GradcheckError,
    GraphError,
    LoadError,
    MissingRuleError,
    NodeLookupError,
    NonFiniteError,
    OpError,
    PluginError,
    RenderError,
    ShapeError,
    UnknownExecutorError,
    UnknownOpError,
    UnsupportedOpsError,
)
from .compiled import CompiledStep
from .drawing import path_table, render, to_dot
from .graph import Graph, Node
from .hooks import hookimpl, hookspec
from .importers import from_onnx, from_torch
from .io import load, save
from .jacobians import GradcheckReport, gradcheck
from .node_table import NodeTable
from .op import Op, SourceForm, broadcast_shape, unbroadcast
from .paths import Path
from .player import Animation, animate
from .registry import register_plugin, unregister_plugin
from .run import Run
from .simulation import Step, simulate
from .source import codegen
from . import testing

__version__ = "0.1.0"

__all__ = [
    "Graph",
    "Node",
    "Run",
    "NodeTable",
    "Op",
    "SourceForm",
    "hookimpl",
    "hookspec",
    "register_plugin",
    "unregister_plugin",
    "unbroadcast",
    "broadcast_shape",
    "gradcheck",
    "GradcheckReport",
    "codegen",
    "CompiledStep",
    "Path",
    "path_table",
    "simulate",
    "Step",
    "animate",
    "Animation",
    "testing",
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
    "render",
    "to_dot",
    "save",
    "load",
    "from_torch",
    "from_onnx",
]
