"""The program torch.export traces, as :func:`dagprop.from_torch` reads it: tracing the module,
the values its result depends on, the module that made each call, the example inputs'
leaves and tensors as arrays. torch itself is imported only when a module is converted."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DagpropError

if TYPE_CHECKING:
    from torch.export import ExportedProgram
    from torch.fx import Node as TorchNode

__all__ = ["as_array", "example_leaves", "export_program", "import_torch", "module_scope", "needed_values"]


def import_torch() -> Any:
    """The torch module, or a DagpropError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise DagpropError("converting PyTorch modules needs torch: pip install 'dagprop[torch]' "
                           "(or pip install torch)") from None
    return torch


def export_program(torch: Any, module: Any, example_inputs: tuple) -> ExportedProgram:
    """The module traced on the example inputs by ``torch.export.export``; made functional first when
    it changes in place a tensor its result depends on, so that converters only see functional ops."""
    try:
        program = torch.export.export(module, tuple(example_inputs))
    except Exception as exc:
        exc.add_note("(raised by torch.export.export, which dagprop.from_torch uses to trace the module on the "
                     "example inputs)")
        raise
    if _mutates_what_is_needed(program):
        with warnings.catch_warnings():  # torch's own deprecation notices, nothing the caller can act on
            warnings.simplefilter("ignore", FutureWarning)
            program = program.run_decompositions({})
    return program


def needed_values(program: ExportedProgram) -> set[str]:
    """The names of the traced values that what ``forward`` returns depends on."""
    torch = import_torch()
    kinds = torch.export.graph_signature.OutputKind
    returned = {getattr(s.arg, "name", None) for s in program.graph_signature.output_specs
                if s.kind == kinds.USER_OUTPUT}
    by_name = {n.name: n for n in program.graph.nodes}
    stack = [by_name[name] for name in returned if name in by_name]
    seen: set[str] = set()
    while stack:
        fx_node = stack.pop()
        if fx_node.name in seen:
            continue
        seen.add(fx_node.name)
        stack.extend(fx_node.all_input_nodes)
    return seen


def _mutates_what_is_needed(program: ExportedProgram) -> bool:
    """Whether a call changes in place a tensor that what ``forward`` returns depends on."""
    torch = import_torch()
    changing = {torch.Tag.inplace, torch.Tag.inplace_view, torch.Tag.out}
    needed = needed_values(program)
    return any(fx_node.op == "call_function" and changing & set(getattr(fx_node.target, "tags", ()))
               and any(arg.name in needed for arg in fx_node.all_input_nodes)
               for fx_node in program.graph.nodes)


def module_scope(fx_node: TorchNode) -> tuple[str, ...]:
    """The module path that made a call, as a scope: ``"attn.q"`` -> ``("attn", "q")``."""
    stack = fx_node.meta.get("nn_module_stack") or {}
    if not stack:
        return ()
    path = str(list(stack.values())[-1][0]).split("@")[0]
    return tuple(part for part in path.split(".") if part)


def example_leaves(value: Any) -> list[Any]:
    """The leaves of the example inputs in the order torch.export numbers them (dicts in insertion order)."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in example_leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in example_leaves(item)]
    return [value]


def as_array(tensor: Any) -> np.ndarray:
    """A real tensor's values as a new float64 array; DagpropError for a complex one."""
    tensor = tensor.detach().cpu()
    if tensor.is_complex():
        raise DagpropError(f"from_torch converts real tensors; got a complex one of shape {tuple(tensor.shape)}")
    return tensor.double().numpy().copy()
