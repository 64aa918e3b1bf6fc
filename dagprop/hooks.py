"""The plugin interface: hook specifications and the plugin manager that gathers plugins.

A plugin is any module or object with functions marked ``@dagprop.hookimpl`` whose
names match a hook below. Built-in op families are plugins registered exactly like
third-party ones; installed distributions add plugins through the ``dagprop``
entry-point group.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import pluggy

from .errors import PluginError

if TYPE_CHECKING:
    from .executors import Executor
    from .op import Op
    from .simulation import Step

__all__ = ["hookspec", "hookimpl", "BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "make_plugin_manager", "plugin_name"]

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
    "dagprop_plugins.indexing",
    "dagprop_plugins.losses",
    "dagprop_plugins.layers",
    "dagprop_plugins.convolution",
    "dagprop_plugins.pooling",
    "dagprop_plugins.normalization",
    "dagprop_plugins.lookup",
    "dagprop_plugins.onnx_converters",
    "dagprop_plugins.torch_converters",
    "dagprop_plugins.dask_executor",
)


HOOK_NAMES = ("dagprop_ops", "dagprop_torch_converters", "dagprop_onnx_converters", "dagprop_on_step",
              "dagprop_executors")


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
    def dagprop_torch_converters(self) -> Mapping[str, Callable[..., Any]]:
        """Return ``{torch op name: converter}``: how :func:`dagprop.from_torch` turns a torch op into dagprop nodes.

        Keys are ATen ops without their overload, ``"aten.linear"`` (``aten.add`` covers
        ``aten.add.Tensor`` and ``aten.add.Scalar``); other namespaces likewise
        (``"mylib.rotate"``). A converter is ``convert(b, *args, **kwargs)``. ``b`` is a
        :class:`dagprop.importers.torch.Builder`: the graph to build in (``b.op(op_name,
        *args, **attrs)``, ``b.const(value)``, or node arithmetic), ``b.out_shape``,
        ``b.out_dtype`` and ``b.dtypes`` (the torch dtypes of the arguments),
        ``b.overload``, ``b.module`` and ``b.static(x)`` for a value needed now.
        ``args`` and ``kwargs`` are the call's arguments in the ATen schema's order:
        tensors as :class:`dagprop.Node`, lists of tensors as lists of nodes, anything
        else as it is; arguments left at their default are usually left out, so declare
        the schema's defaults. It returns the node holding the result (an argument node
        for a call that changes no value), or a tuple with one node per result (None for
        one it does not compute), and raises ``NotImplementedError`` with a sentence for
        arguments it does not handle: from_torch then lists the call with every other
        unsupported one in a single :class:`dagprop.UnsupportedOpsError`.

        The built-in mapping, :mod:`dagprop_plugins.torch_converters`, is registered
        through this same hook (see :mod:`dagprop.importers.torch` for the whole
        contract). Two plugins converting the same torch op are an error naming both.
        """
        raise NotImplementedError

    @hookspec
    def dagprop_onnx_converters(self) -> Mapping[str, Callable[..., Any]]:
        """Return ``{ONNX op type: converter}``: how :func:`dagprop.from_onnx` turns an ONNX node into dagprop nodes.

        A converter is ``convert(ctx, *inputs, **attributes)``. ``ctx`` is a
        :class:`dagprop.importers.onnx.Context`: the graph, ``ctx.opset`` (the model's
        default-domain version), ``ctx.output(op, *args, output=0, **attrs)`` to build the
        node computing an output (named as the ONNX output), ``ctx.op(...)`` for any
        node on the way, ``ctx.static(x)`` for a value needed now and ``ctx.shape(x)``.
        ``inputs`` are the ONNX node's inputs in order: a :class:`dagprop.Node`, a numpy
        array when the value is known at conversion time (integer initializers,
        Constants, values computed from those only), or None for an optional input left
        out. ``attributes`` are the node's attributes by their ONNX names as Python
        values (declare each as a keyword with the ONNX default). It returns the node
        computing the first output, or a tuple with one per output (None for one it
        does not compute), or arrays for values known now; it raises (a ValueError
        with a sentence) for what it cannot convert, and from_onnx names the node.

        Keys are ONNX op types (``"Gemm"``); an op of another domain is keyed
        ``"domain:OpType"``. The built-in mapping,
        :mod:`dagprop_plugins.onnx_converters`, is registered through this same hook
        (see :mod:`dagprop.importers.onnx` for the whole contract). Two plugins
        converting the same ONNX op type are an error naming both.
        """
        raise NotImplementedError

    @hookspec
    def dagprop_executors(self) -> Mapping[str, Callable[[], Executor]]:
        """Return ``{name: factory}``: engines that run a graph's plan, ``g.forward(executor=name)``
        and ``g.backward(loss, executor=name)``.

        A factory takes no arguments and returns an :class:`dagprop.executors.Executor`: an
        object with ``forward`` and ``backward`` methods mirroring the in-process scheduler's
        :func:`~dagprop.scheduler.run_forward` and :func:`~dagprop.scheduler.run_backward`
        (see :mod:`dagprop.executors` for the contract). Import heavy engines inside the
        factory, so that a missing one costs nothing until it is asked for, and raise
        :class:`dagprop.PluginError` there saying what to install. The built-in
        ``"dask"`` executor, :mod:`dagprop_plugins.dask_executor`, is registered through
        this same hook. Two plugins providing the same name are an error naming both.
        """
        raise NotImplementedError

    @hookspec
    def dagprop_on_step(self, step: Step) -> None:
        """Called for each event of a simulated run (:func:`dagprop.simulate`).

        ``step.kind`` is ``"forward"``, ``"backward"`` or (in forward mode)
        ``"tangent"``; use it to log or draw a run as it happens. The return value
        is ignored.
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
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        _register(pm, _load(entry_point), entry_point.name)
    for plugin in plugins:
        _register(pm, plugin, None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return pm


def _load(entry_point: metadata.EntryPoint) -> Any:
    """The plugin an installed distribution names in the ``dagprop`` group, or a PluginError naming both."""
    try:
        return entry_point.load()
    except Exception as exc:  # a broken third-party distribution
        dist = entry_point.dist.name if entry_point.dist is not None else "an unknown distribution"
        raise PluginError(f"the {ENTRY_POINT_GROUP!r} entry point {entry_point.name!r} = {entry_point.value!r} of "
                          f"distribution {dist!r} failed to load: {type(exc).__name__}: {exc}") from exc


def _register(pm: pluggy.PluginManager, plugin: Any, name: str | None) -> None:
    if pm.is_registered(plugin):
        return
    name = name or plugin_name(plugin)
    _check_marked(plugin, name)
    if pm.get_plugin(name) is not None:
        raise PluginError(f"two different plugins are both named {name!r} (an object of a class defined twice, "
                          f"as when a notebook cell runs again?); pass only one of them")
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(f"cannot register plugin {name!r}: {exc}") from exc
    if not pm.get_hookcallers(plugin):
        pm.unregister(plugin)
        raise PluginError(f"plugin {name!r} implements no dagprop hook: give it one of {', '.join(HOOK_NAMES)} as "
                          f"a function marked @dp.hookimpl; a plugin is a module or an object holding such functions")


def _check_marked(plugin: Any, name: str) -> None:
    """A function named like a hook but not marked ``@dagprop.hookimpl`` would be ignored: say so."""
    for hook in HOOK_NAMES:
        function = getattr(plugin, hook, None)
        if callable(function) and not hasattr(function, f"{PROJECT}_impl"):
            raise PluginError(f"plugin {name!r} has a {hook} that is not marked @dagprop.hookimpl, so dagprop "
                              f"would never call it; put @dp.hookimpl on the line above its def")


def plugin_name(plugin: Any) -> str:
    """The name a plugin is registered under: a module's name, or its class's qualified name.

    Examples
    --------
    >>> import math
    >>> class Cubes:
    ...     pass
    >>> plugin_name(math), plugin_name(Cubes())
    ('math', 'dagprop.hooks.Cubes')
    """
    return getattr(plugin, "__name__", None) or f"{type(plugin).__module__}.{type(plugin).__qualname__}"
