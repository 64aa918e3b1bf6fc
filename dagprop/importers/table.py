"""The converter table both importers build from their hook: one plugin per op name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import PluginError

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
    from ..registry import default_registry

    registry = registry or default_registry()
    table: dict[str, Callable[..., Any]] = {}
    owner: dict[str, str] = {}
    for impl in getattr(registry.plugin_manager.hook, hook).get_hookimpls():
        try:
            provided = impl.function()
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r}: its {hook} hook raised {exc!r}") from exc
        if not isinstance(provided, Mapping):
            raise PluginError(f"plugin {impl.plugin_name!r}: {hook} must return a dict {{op name: converter}}, "
                              f"got {type(provided).__name__}")
        for name, convert in provided.items():
            if not isinstance(name, str) or not callable(convert):
                raise PluginError(f"plugin {impl.plugin_name!r}: {hook} maps {name!r} to {convert!r}; keys must "
                                  f"be {keys} (str) and values functions")
            if name in table:
                raise PluginError(f"op {name!r} is converted by two plugins, {owner[name]!r} and "
                                  f"{impl.plugin_name!r}; unregister or uninstall one of them")
            table[name], owner[name] = convert, impl.plugin_name
    return table
