"""Models from other frameworks as dagprop graphs: PyTorch modules and ONNX files.

The frameworks are optional extras (``dagprop[torch]``, ``dagprop[onnx]``), imported only
when a model is converted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..graph import Graph

__all__ = ["from_torch", "from_onnx"]


def from_torch(module: Any, *example_inputs: Any, **options: Any) -> Graph:
    """A PyTorch module as a dagprop graph; see :func:`dagprop.importers.torch.from_torch`.

    Examples
    --------
    >>> import torch
    >>> import dagprop as dp
    >>> g = dp.from_torch(torch.nn.Linear(3, 2).double(), torch.ones(1, 3, dtype=torch.float64))
    >>> g["output"].shape
    (1, 2)
    """
    from .torch import from_torch as convert

    return convert(module, *example_inputs, **options)


def from_onnx(path: Any, **options: Any) -> Graph:
    """An ONNX model file as a dagprop graph; see :func:`dagprop.importers.onnx.from_onnx`.

    Examples
    --------
    >>> import dagprop as dp
    >>> from dagprop.importers.onnx import tiny_model_bytes
    >>> g = dp.from_onnx(tiny_model_bytes())
    >>> sorted(n.name for n in g if n.kind == "input")
    ['x']
    """
    from .onnx import from_onnx as convert

    return convert(path, **options)
