"""The built-in plugins' doctests run once, on the modules dagprop registers.

The directory plugins/ is installed as the package dagprop_plugins; pytest, which names
modules after their directory, would otherwise import each file a second time as
plugins.<module> and run the doctests on that copy (plugins/conftest.py prevents it).
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# every plugin module whose source holds a doctest, in the order pytest collects them
WITH_DOCTESTS = sorted(path.stem for path in (REPO / "plugins").glob("[!_]*.py")
                       if path.stem != "conftest" and ">>> " in path.read_text(encoding="utf-8"))

COLLECT = """
import sys
import pytest
pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "plugins"])
print("imported:", " ".join(sorted(name for name in sys.modules if name.split(".")[0] == "plugins")))
"""


def test_each_plugin_module_is_collected_once_under_its_installed_name():
    result = subprocess.run([sys.executable, "-c", COLLECT], cwd=REPO, capture_output=True, text=True, timeout=300,
                            check=False)
    lines = result.stdout.splitlines()
    items = [line for line in lines if "::" in line]
    assert items == [f"plugins/{module}.py::dagprop_plugins.{module}" for module in WITH_DOCTESTS], result.stdout
    # only the package and the conftest itself: no plugin module ran a second time as plugins.<module>
    imported = next(line for line in lines if line.startswith("imported:")).split()[1:]
    assert set(imported) <= {"plugins", "plugins.conftest"}, imported
