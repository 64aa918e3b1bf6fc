"""The package ships py.typed, so its types are a promise: mypy checks them with the
configuration in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_the_package_says_it_is_typed():
    assert (ROOT / "dagprop" / "py.typed").exists()
    assert 'dagprop = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()
