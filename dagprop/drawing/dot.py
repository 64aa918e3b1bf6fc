"""Running Graphviz's ``dot``: DOT text in, a picture out, with a time limit.

The only module that runs the binary; everything else in dagprop builds DOT text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path as FilePath

import graphviz

from ..errors import RenderError

__all__ = ["write", "pipe", "output_format", "INSTALL_HINT"]

SUFFIX_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz; "
                "conda: conda install graphviz), or write DOT text, which needs no Graphviz "
                "(dagprop.to_dot, or a path ending in .dot)")

_NODE_STATEMENT = re.compile(r"^\s*\w+ \[", re.MULTILINE)


def output_format(path: str | FilePath, format: str | None = None) -> str:
    """The Graphviz output format for ``path``: ``format`` if given, else from the suffix.

    Examples
    --------
    >>> output_format("out/graph.PNG"), output_format("x.svg", "pdf"), output_format("g.gv")
    ('png', 'pdf', 'dot')
    """
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in graphviz.FORMATS and fmt != "dot":
            raise RenderError(f"unknown output format {format!r}; Graphviz writes {', '.join(sorted(graphviz.FORMATS))}")
        return fmt
    suffix = FilePath(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise RenderError(f"cannot tell the format of {str(path)!r} from its suffix; use one of "
                          f"{', '.join(SUFFIX_FORMATS)} or pass format=")
    return SUFFIX_FORMATS[suffix]


def write(source: str, path: str | FilePath, *, format: str | None = None, timeout: float = 60.0) -> FilePath:
    """Turn DOT text into a file: DOT as is for ``.dot``, otherwise through Graphviz's dot.

    Parameters
    ----------
    source : str
        DOT text, e.g. from :func:`to_dot`.
    path : str or pathlib.Path
        The file to write (parent directories are created).
    format : str, optional
        Output format; default from the suffix (.svg .png .pdf .dot .gv).
    timeout : float
        Seconds dot may run before it is stopped.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    RenderError
        dot missing, too slow or failing, or an unknown format.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write("digraph { a -> b }", os.path.join(tmp, "ab.dot"))
    ...     written.read_text()
    'digraph { a -> b }'
    """
    fmt = output_format(path, format)
    path = FilePath(path)
    data = source.encode("utf-8") if fmt == "dot" else pipe(source, fmt, timeout=timeout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def pipe(source: str, format: str = "svg", *, timeout: float = 60.0) -> bytes:
    """Run Graphviz's dot on DOT text and return the picture's bytes, stopping it after ``timeout`` seconds.

    Raises
    ------
    RenderError
        When dot is not installed (the message says how to install it), runs longer
        than ``timeout``, or fails.

    Examples
    --------
    >>> pipe("digraph { a -> b }", "svg")[:5]
    b'<?xml'
    """
    executable = shutil.which(str(graphviz.backend.DOT_BINARY))
    if executable is None:
        raise RenderError(f"Graphviz's dot program is not installed (not found on PATH), so the diagram cannot be "
                          f"turned into {format.upper()}: {INSTALL_HINT}")
    nodes = len(_NODE_STATEMENT.findall(source))
    try:
        finished = subprocess.run([executable, f"-T{format}"], input=source.encode("utf-8"), capture_output=True,
                                  timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz's dot took longer than {timeout:g} s to lay out a diagram of about {nodes} nodes "
                          f"and was stopped; draw less (a smaller max_nodes, no expand, the tensor level) or allow "
                          f"more time (timeout=)") from None
    except OSError as exc:
        raise RenderError(f"could not run Graphviz's dot ({executable}): {exc}") from None
    if finished.returncode != 0:
        message = finished.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz's dot failed (exit status {finished.returncode}): "
                          f"{' / '.join(message[:3]) or 'no message'}")
    return finished.stdout
