"""dagprop in Jupyter, for real: a notebook built with nbformat and executed headlessly by nbclient
on an ipykernel kernel, whose outputs are then read as a front end would read them.

A graph displays itself as HTML with its SVG inline (so JupyterLab keeps the tooltips), and
``dp.animate(g, loss)`` without a path plays inline, as an iframe whose ``srcdoc`` is the
whole self-contained player.
"""

from __future__ import annotations

import html
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import ci, needs_dot

if ci():  # in CI a missing test requirement is a failure, not a skip
    import nbclient
    import nbformat
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
else:
    nbclient = pytest.importorskip("nbclient", reason="nbclient is a test requirement: pip install -e '.[test]'")
    nbformat = pytest.importorskip("nbformat", reason="nbformat is a test requirement: pip install -e '.[test]'")
    pytest.importorskip("ipykernel", reason="ipykernel is a test requirement: pip install -e '.[test]'")
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

pytestmark = needs_dot

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"

CELLS = [
    """import dagprop as dp
g = dp.Graph()
W = g.param("W", [[1.5, -2.0], [0.25, 3.0]])
x = g.input("x", [[1.0], [2.0]])
L = (W @ x).sum()
g.forward(); g.backward(L)""",
    "g",
    "player = dp.animate(g, L)\nplayer",
    "print(player.save('saved.html'))",
]


def kernel(folder: Path) -> KernelManager:
    """A kernel running this very interpreter, with this checkout importable: whatever kernels
    the machine (or a fresh .venv) has installed, the notebook runs the dagprop under test."""
    spec = folder / "kernels" / "dagprop-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dagprop tests", "language": "python",
        "env": {"PYTHONPATH": str(ROOT)},
    }))
    return KernelManager(kernel_name="dagprop-test", connection_file=str(folder / "connection.json"), transport="ipc",
                         kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after a headless run, and the folder it ran in."""
    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    client = nbclient.NotebookClient(notebook, km=kernel(folder), timeout=180, startup_timeout=120,
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    nbformat.validate(notebook)
    return notebook, folder


def result(notebook, cell: int) -> dict:
    """The data of a cell's execute_result (what the cell's last expression displays)."""
    outputs = notebook.cells[cell].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    (shown,) = [o for o in outputs if o.output_type == "execute_result"]
    return shown["data"]


def test_a_graph_shows_html_with_the_svg_and_its_tooltips_inline(executed):
    notebook, _ = executed
    data = result(notebook, 1)
    assert {"text/html", "image/svg+xml", "text/plain"} <= set(data)
    assert data["text/plain"].startswith("<dagprop.Graph")
    page = data["text/html"]
    assert "<?xml" not in page and "<!DOCTYPE" not in page  # an HTML fragment, not an XML document
    svg = ET.fromstring(page).find(f"{SVG}svg")  # the fragment is well-formed: a div around the SVG
    assert svg is not None
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert "n0" in titles  # Graphviz's own ids
    tooltips = [a.get(XLINK_TITLE) for a in svg.iter(f"{SVG}a") if a.get(XLINK_TITLE)]
    weight = next(t for t in tooltips if t.startswith("W (param)"))
    assert weight.endswith("value:\n[[1.5, -2.0],\n[0.25, 3.0]]\ngradient:\n[[1.0, 2.0],\n[1.0, 2.0]]")  # in full
    assert ET.fromstring(data["image/svg+xml"]).tag == f"{SVG}svg"  # the image stays for other front ends


def test_animate_without_a_path_plays_inline_in_an_iframe(executed):
    notebook, folder = executed
    data = result(notebook, 2)
    assert data["text/plain"].startswith("<Animation 'dagprop: forward and backward through ")
    frame = data["text/html"]
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" title="[^"]*" sandbox="allow-scripts" style="[^"]*"></iframe>',
                         frame)
    assert match, frame[:300]
    page = html.unescape(match.group(1))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    sections = re.findall(r'<section class="frame" id="frame-(\d+)"', page)
    pictures = json.loads(re.search(r'<script type="application/json" id="pictures">(.*?)</script>', page, re.S)[1])
    assert len(sections) == len(pictures["frames"]) > 5
    assert "<script src" not in page and "http://" not in page.split("<main>")[0]  # no network
    # the player's own script and ids live inside the iframe's document, apart from the notebook
    assert 'id="slider"' not in frame and 'id="slider"' in page
    saved = folder / "saved.html"
    assert notebook.cells[3].outputs[0]["text"].strip() == "saved.html"
    assert saved.read_text(encoding="utf-8") == page
