"""pytest's view of this directory: its doctests run on the modules dagprop registers.

The directory is installed as the package ``dagprop_plugins`` (see ``package-dir`` in
pyproject.toml), but pytest names modules after their directory, so ``--doctest-modules``
would import every file a second time as ``plugins.<module>`` and test that copy, not the
plugin the registry uses. Each module collected here is handed pytest the
``dagprop_plugins`` module instead, whenever that module is this very file.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

_PACKAGE = "dagprop_plugins"


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module) and collector.path.parent == Path(__file__).parent:
        name = _installed_name(collector.path)
        if name is not None:
            collector.obj = importlib.import_module(name)


def _installed_name(path: Path) -> str | None:
    """``dagprop_plugins.<stem>`` when importing that name loads ``path``, else None (pytest imports it itself)."""
    if path.name == "conftest.py":
        return None
    name = f"{_PACKAGE}.{path.stem}" if path.name != "__init__.py" else _PACKAGE
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or Path(spec.origin).resolve() != path.resolve():
        return None
    return name
