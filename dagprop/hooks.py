"""The plugin interface: hook specifications and the plugin manager that gathers plugins.

A plugin is any module or object with functions marked ``@dagprop.hookimpl`` whose
names match a hook below. Built-in op families are plugins registered exactly like
third-party ones; installed distributions add plugins through the ``dagprop``
entry-point group.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Iterable

import pluggy

from .errors import PluginError

if TYPE_CHECKING:
    from .op import Op
    from .simulation import Step

__all__ = ["hookspec", "hookimpl", "BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "make_plugin_manager"]

PROJECT = "dagprop"
ENTRY_POINT_GROUP = "dagprop"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

BUILTIN_PLUGINS = (
    "dagprop_plugins.elementwise",
    "dagprop_plugins.activations",
    "dagprop_plugins.linalg",
    "dagprop_plugins.reductions",
    "dagprop_plugins.shaping",
    "dagprop_plugins.losses",
    "dagprop_plugins.layers",
)


class HookSpecs:
    """The hooks a dagprop plugin may implement."""

    @hookspec
    def dagprop_ops(self) -> Iterable[Op]:
        """Return the ops this plugin provides, as :class:`dagprop.Op` objects.

        Each op name may be provided by one plugin only; a second definition is
        an error naming both plugins.
        """
        raise NotImplementedError  # a hookspec only declares the hook: pluggy calls the plugins' functions

    @hookspec
    def dagprop_on_step(self, step: Step) -> None:
        """Called for each event of a simulated run (:func:`dagprop.simulate`).

        ``step.kind`` is ``"forward"`` or ``"backward"``; use it to log or draw a
        run as it happens. The return value is ignored.
        """


def make_plugin_manager(plugins: Iterable[Any] = ()) -> pluggy.PluginManager:
    """A plugin manager holding the built-in plugins, the installed ones and ``plugins``.

    Examples
    --------
    >>> pm = make_plugin_manager()
    >>> pm.has_plugin("dagprop_plugins.elementwise")
    True
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    for module_name in BUILTIN_PLUGINS:
        _register(pm, importlib.import_module(module_name), module_name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken third-party distribution
        raise PluginError(f"loading the {ENTRY_POINT_GROUP!r} entry points failed: {exc}") from exc
    for plugin in plugins:
        _register(pm, plugin, None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return pm


def _register(pm: pluggy.PluginManager, plugin: Any, name: str | None) -> None:
    if pm.is_registered(plugin):
        return
    try:
        pm.register(plugin, name=name or _plugin_name(plugin))
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(f"cannot register plugin {_plugin_name(plugin)!r}: {exc}") from exc


def _plugin_name(plugin: Any) -> str:
    return getattr(plugin, "__name__", None) or f"{type(plugin).__module__}.{type(plugin).__qualname__}"
