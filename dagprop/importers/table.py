"""The converter table both importers build from their hook: one plugin per op name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["converter_table"]


def converter_table(registry: Registry | None, hook: str, keys: str) -> dict[str, Callable[..., Any]]:
    """``{op name: converter}`` from every plugin implementing ``hook``; ``keys`` says what the
    names are, for the messages (``"torch op names such as 'aten.cumsum'"``).

    Raises PluginError when a plugin's hook fails or returns something other than
    ``{str: callable}``, or when two plugins convert the same op (naming both).

    Examples
    --------
    >>> table = converter_table(None, "dagprop_onnx_converters", "ONNX op types")
    >>> table["Gemm"].__module__
    'dagprop_plugins.onnx_converters'
    """
    from ..registry import default_registry, hook_table

    return hook_table((registry or default_registry()).plugin_manager, hook, keys, "op {name!r} is converted")
