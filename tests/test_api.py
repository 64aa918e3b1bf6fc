"""The public API's promises: every public name documents a runnable example, no function
hides a module of the same name, and views never reach into another object's private fields."""

from __future__ import annotations

import ast
import importlib
import inspect
import types
import pkgutil
from pathlib import Path

import pytest

import dagprop as dp

PACKAGE = Path(dp.__file__).parent
PLUGINS = PACKAGE.parent / "plugins"
# pluggy's markers are decorator instances, documented with the plugin guide, not functions or classes
NOT_FUNCTIONS_OR_CLASSES = {"hookimpl", "hookspec", "testing"}


def has_example(obj: object) -> bool:
    doc = inspect.getdoc(obj) or ""
    return "Examples\n--------" in doc and ">>> " in doc


def public_members(cls: type) -> list[str]:
    """Public methods and properties; slot attributes (Run.values is its slot _values, bound
    under a public name) are documented in the class's Attributes section instead."""
    return [name for name, member in inspect.getmembers(cls) if not name.startswith("_")
            and not isinstance(member, types.MemberDescriptorType)]


def slot_attributes(cls: type) -> list[str]:
    return [name for name, member in inspect.getmembers(cls) if not name.startswith("_")
            and isinstance(member, types.MemberDescriptorType)]


@pytest.mark.parametrize("name", sorted(set(dp.__all__) - NOT_FUNCTIONS_OR_CLASSES))
def test_every_exported_name_has_a_runnable_example(name):
    assert has_example(getattr(dp, name)), f"dagprop.{name} has no Examples section with a doctest"


@pytest.mark.parametrize("cls", [dp.Graph, dp.Node, dp.Run], ids=lambda c: c.__name__)
def test_every_public_method_has_a_runnable_example(cls):
    missing = [name for name in public_members(cls) if not has_example(getattr(cls, name))]
    assert not missing, f"{cls.__name__} members without an Examples section: {missing}"


def test_slot_attributes_are_documented_in_the_class():
    for cls in (dp.Node, dp.Run):
        doc = inspect.getdoc(cls)
        for name in slot_attributes(cls):
            if name != "nodes":
                assert f"\n{name} :" in doc, f"{cls.__name__}.{name} is not in the Attributes section"


def all_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages([str(PACKAGE)], prefix="dagprop.")
                  if info.name != "dagprop.__main__")  # importing it runs the command line


@pytest.mark.parametrize("module", all_modules())
def test_no_attribute_hides_a_module(module):
    """``import dagprop.x as m`` gives the module: no function or class of the parent has its name."""
    imported = importlib.import_module(module)
    parent, _, leaf = module.rpartition(".")
    found = getattr(importlib.import_module(parent), leaf)
    assert found is imported, f"{parent}.{leaf} is {found!r}, not the module {module}"


def test_the_public_functions_keep_their_names():
    for name in ("render", "simulate", "animate", "codegen", "to_dot"):
        assert inspect.isfunction(getattr(dp, name)), name


def reach_ins(path: Path) -> list[str]:
    """``X._name`` attribute accesses where X is not ``self`` or ``cls`` (dunders are protocols)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_reaches_into_another_objects_private_fields():
    sources = sorted(PACKAGE.rglob("*.py")) + sorted(PLUGINS.glob("*.py"))
    found = [hit for path in sources for hit in reach_ins(path)]
    assert not found, "private fields read from outside their object:\n" + "\n".join(found)


def test_the_reach_in_check_sees_a_reach_in(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f(graph, self):\n    return graph._values, self._own, graph.__class__\n")
    assert reach_ins(sample) == ["sample.py:2 graph._values"]
