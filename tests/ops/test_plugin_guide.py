"""The plugin-author guide (plugins/README.md): its Python blocks run, and the cube example works."""

import re
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "plugins" / "README.md"
MODULE_HEADER = "# dagprop_cube.py\n"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_guide_has_the_cube_plugin_and_its_use():
    blocks = python_blocks()
    assert sum(b.startswith(MODULE_HEADER) for b in blocks) == 1
    assert any("import dagprop_cube" in b for b in blocks)


def test_every_python_block_of_the_guide_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"__name__": "plugin_guide"}
    try:
        for block in python_blocks():
            if block.startswith(MODULE_HEADER):
                (tmp_path / "dagprop_cube.py").write_text(block, encoding="utf-8")
            else:
                exec(compile(block, str(GUIDE), "exec"), namespace)
    finally:
        sys.modules.pop("dagprop_cube", None)
    printed = capsys.readouterr().out
    assert "8.0 [ 3. 12.  3.]" in printed
    assert "check_op('cube') passed: vjp vs finite differences" in printed
    assert "jacobian vs vjp" in printed and "vjp vs decomposition" in printed
