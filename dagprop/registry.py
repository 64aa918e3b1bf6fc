"""The op registry: every op the registered plugins provide, by name."""

from __future__ import annotations

import difflib
import warnings
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping

import pluggy

from .errors import PluginError, UnknownExecutorError, UnknownOpError
from .hooks import make_plugin_manager, plugin_name
from .op import Op

__all__ = ["Registry", "default_registry", "register_plugin", "unregister_plugin"]

_extra_plugins: list[Any] = []
_default: Registry | None = None

# The public attributes of dagprop.Node (tests/ops/test_registry.py keeps the two in step).
# Ops become node methods through Node.__getattr__, which Python consults only for names
# the node lacks, so an op named like one of these could never be called as node.<name>().
NODE_ATTRIBUTES = frozenset({
    "T", "attrs", "grad", "grad_node", "graph", "index", "inputs", "kind", "name", "ndim", "op", "op_def",
    "requires_grad", "scope", "shape", "static_shape", "tangent", "value",
})


class Registry:
    """The ops of one plugin manager, looked up by name.

    Examples
    --------
    >>> reg = default_registry()
    >>> reg["matmul"].inputs
    ('a', 'b')
    >>> "softmax" in reg, reg.ops.get("no_such_op")
    (True, None)
    """

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self.plugin_manager = plugin_manager
        self._executors: dict[str, Callable[[], Any]] | None = None  # asked for on first use
        self._ops: dict[str, Op] = {}
        for impl in plugin_manager.hook.dagprop_ops.get_hookimpls():
            for op in _ops_of(impl):
                if op.name in NODE_ATTRIBUTES:
                    raise PluginError(
                        f"op {op.name!r} from plugin {impl.plugin_name!r} cannot be registered: "
                        f"{op.name!r} is an attribute of dagprop.Node, so node.{op.name} would give that "
                        f"attribute and never the op (ops are node methods only under names Node does not "
                        f"use); rename the op"
                    )
                earlier = self._ops.get(op.name)
                if earlier is not None:
                    raise PluginError(
                        f"op {op.name!r} is defined by two plugins, {earlier.plugin!r} and "
                        f"{impl.plugin_name!r}; unregister or uninstall one of them"
                    )
                self._ops[op.name] = op.with_plugin(impl.plugin_name)
        self._ops = dict(sorted(self._ops.items()))
        #: Every op by name, read-only: ``ops.get(name)`` looks one up without raising.
        self.ops: Mapping[str, Op] = MappingProxyType(self._ops)

    @classmethod
    def with_plugins(cls, plugins: Iterable[Any] = ()) -> Registry:
        """A registry of the built-in, installed and globally registered plugins plus ``plugins``."""
        return cls(make_plugin_manager([*_extra_plugins, *plugins]))

    def __getitem__(self, name: str) -> Op:
        try:
            return self._ops[name]
        except KeyError:
            raise UnknownOpError(unknown_op_message(name, self._ops)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops.values())

    def __len__(self) -> int:
        return len(self._ops)

    def names(self) -> list[str]:
        """The registered op names, sorted."""
        return list(self._ops)

    def executors(self) -> dict[str, Callable[[], Any]]:
        """``{name: factory}`` of every executor the plugins provide (``dagprop_executors``), sorted.

        Raises PluginError when a plugin's hook fails or returns something other than
        ``{str: callable}``, or when two plugins provide the same name (naming both).

        Examples
        --------
        >>> sorted(default_registry().executors())
        ['dask']
        """
        if self._executors is None:
            self._executors = _executors_of(self.plugin_manager)
        return dict(self._executors)

    def executor(self, name: str) -> Callable[[], Any]:
        """The factory of the executor called ``name``; UnknownExecutorError naming the known ones.

        Examples
        --------
        >>> default_registry().executor("dask").__module__
        'dagprop_plugins.dask_executor'
        """
        factories = self.executors()
        try:
            return factories[name]
        except KeyError:
            known = ", ".join(map(repr, factories)) or "none"
            raise UnknownExecutorError(
                f"no registered plugin provides an executor named {name!r}; the executors are: {known} "
                f"(executor=None runs in this process; a plugin adds one through the dagprop_executors hook)"
            ) from None


def unknown_op_message(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return f"no registered plugin provides an op named {name!r}{hint} (dagprop ops lists them all)"


def _ops_of(impl: pluggy.HookImpl) -> list[Op]:
    try:
        provided: Any = impl.function()
    except Exception as exc:
        raise PluginError(f"plugin {impl.plugin_name!r}: its dagprop_ops hook raised {exc!r}") from exc
    try:
        ops = list(provided or ())
    except TypeError:
        raise PluginError(
            f"plugin {impl.plugin_name!r}: dagprop_ops must return a list of dagprop.Op, got {provided!r}"
        ) from None
    for op in ops:
        if not isinstance(op, Op):
            raise PluginError(
                f"plugin {impl.plugin_name!r}: dagprop_ops returned {op!r}; each item must be a dagprop.Op"
            )
    return ops


def _executors_of(plugin_manager: pluggy.PluginManager) -> dict[str, Callable[[], Any]]:
    return dict(sorted(hook_table(plugin_manager, "dagprop_executors", "executor names", "{name!r} is provided").items()))


def hook_table(plugin_manager: pluggy.PluginManager, hook: str, keys: str, claimed: str
               ) -> dict[str, Callable[..., Any]]:
    """``{name: callable}`` from every plugin implementing ``hook`` (converters, executors), one
    plugin per name; ``keys`` says what the names are, ``claimed`` how a second plugin claims
    one (``"op {name!r} is converted"``), for the messages.

    Raises PluginError when a plugin's hook fails or returns something other than
    ``{str: callable}``, or when two plugins give the same name (naming both).

    Examples
    --------
    >>> table = hook_table(default_registry().plugin_manager, "dagprop_executors", "executor names",
    ...                    "{name!r} is provided")
    >>> sorted(table)
    ['dask']
    """
    table: dict[str, Callable[..., Any]] = {}
    owner: dict[str, str] = {}
    for impl in getattr(plugin_manager.hook, hook).get_hookimpls():
        try:
            provided = impl.function()
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r}: its {hook} hook raised {exc!r}") from exc
        if not isinstance(provided, Mapping):
            raise PluginError(f"plugin {impl.plugin_name!r}: {hook} must return a dict {{name: callable}}, "
                              f"got {type(provided).__name__}")
        for name, function in provided.items():
            if not isinstance(name, str) or not callable(function):
                raise PluginError(f"plugin {impl.plugin_name!r}: {hook} maps {name!r} to {function!r}; keys must "
                                  f"be {keys} (str) and values callables")
            if name in table:
                raise PluginError(f"{claimed.format(name=name)} by two plugins, {owner[name]!r} and "
                                  f"{impl.plugin_name!r}; unregister or uninstall one of them")
            table[name], owner[name] = function, impl.plugin_name
    return table


def default_registry() -> Registry:
    """The registry that ``dagprop.Graph()`` uses: built-in, installed and registered plugins."""
    global _default
    if _default is None:
        _default = Registry.with_plugins()
    return _default


def register_plugin(plugin: Any) -> None:
    """Add a plugin (a module or object with ``@dagprop.hookimpl`` functions) for every new Graph.

    Graphs created afterwards see its ops. Registering the same object twice is a no-op.
    Registering another object under a registered plugin's name (an object of a class
    defined again, as when a notebook cell runs twice) replaces the earlier one, with a
    warning.

    Examples
    --------
    >>> import dagprop as dp
    >>> class Twice:
    ...     @dp.hookimpl
    ...     def dagprop_ops(self):
    ...         return [dp.Op("twice", forward=lambda x: 2 * x, vjp=lambda g, x, *, out: (2 * g,))]
    >>> plugin = Twice()
    >>> dp.register_plugin(plugin)
    >>> g = dp.Graph()
    >>> g.ops.twice(g.param("x", 3.0)).name
    'twice_1'
    >>> dp.unregister_plugin(plugin)
    """
    global _default
    if any(p is plugin for p in _extra_plugins):
        return
    name = plugin_name(plugin)
    earlier = [p for p in _extra_plugins if plugin_name(p) == name]
    if earlier:
        warnings.warn(f"replacing the plugin registered earlier as {name!r} with this one", stacklevel=2)
    candidate = [*(p for p in _extra_plugins if plugin_name(p) != name), plugin]
    Registry(make_plugin_manager(candidate))  # raises before anything changes if it conflicts
    _extra_plugins[:] = candidate
    _default = None


def unregister_plugin(plugin: Any) -> None:
    """Undo :func:`register_plugin` for graphs created afterwards.

    Examples
    --------
    >>> unregister_plugin(object())  # not registered: nothing happens
    """
    global _default
    _extra_plugins[:] = [p for p in _extra_plugins if p is not plugin]
    _default = None
