"""Make every picture in docs/img again, with the DOT text it was drawn from.

    .venv/bin/python scripts/gallery.py            # redraw docs/img/*.png and docs/img/*.dot
    .venv/bin/python scripts/gallery.py --check    # only compare: exit 1 naming the pictures that changed

The pictures come from the examples and the demo, run with the arguments the README's
pictures need, into a scratch directory; each picture is copied into docs/img as
``<name>.png`` and, next to it, ``<name>.dot``. tests/test_gallery.py draws them again
and compares the DOT text (not the PNG bytes, which depend on the Graphviz and fonts
installed) with the committed ``.dot``. Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"

# name in docs/img -> (what draws it: an example script or "demo", the stem of the file it writes)
PICTURES = {
    "demo_softmax_circuit": ("demo", "attention_softmax_circuit"),
    "linear_layer": ("linear_layer", "linear_matrix"),
    "attention_values": ("attention_values", "values_layer"),
    "softmax_paths": ("softmax_circuit", "softmax_paths"),
    "mlp_paths_w131": ("mlp_paths", "paths_w131"),
    "attention_loss": ("attention_head", "loss_curve"),
    "attention_head": ("attention_head", "attention_head"),
    "partial_vs_total": ("partial_vs_total", "partial_total_x"),
    "forward_vs_reverse_path": ("forward_vs_reverse", "path"),
    "hessian_layer_backward": ("hessian_of_a_layer", "layer_backward"),
    "cnn_digits_gradients": ("cnn_digits", "cnn_gradients"),
    "transformer_block_depth1": ("transformer_block", "block_depth1"),
}


def run_script(script: str, outdir: Path) -> None:
    """Run examples/<script>.py (its full version, as the README shows it), or the demo, into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        if script == "demo":
            from dagprop.demo import run

            run(outdir, formats=("png", "dot"), echo=lambda line: None)
            return
        spec = importlib.util.spec_from_file_location(f"gallery_{script}", ROOT / "examples" / f"{script}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(["-o", str(outdir)])


def draw(workdir: Path) -> dict[str, Path]:
    """Draw every picture of the gallery under ``workdir``.

    Returns
    -------
    dict
        Gallery name -> the stem of its files (``stem.with_suffix(".png")`` and ``".dot"``).
    """
    for script in dict.fromkeys(script for script, _ in PICTURES.values()):
        run_script(script, workdir / script)
    return {name: workdir / script / stem for name, (script, stem) in PICTURES.items()}


def changed(drawn: dict[str, Path], images: Path = IMAGES) -> list[str]:
    """The gallery names whose DOT text in ``images`` differs from what was just ``drawn`` (or is missing)."""
    result = []
    for name, stem in drawn.items():
        committed = images / f"{name}.dot"
        if not committed.exists() or committed.read_text(encoding="utf-8") != stem.with_suffix(".dot").read_text(
                encoding="utf-8"):
            result.append(name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare the DOT text only; write nothing")
    parser.add_argument("--into", type=Path, default=IMAGES, help="where the pictures go (default: docs/img)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dagprop-gallery-") as scratch:
        drawn = draw(Path(scratch))
        differ = changed(drawn, args.into)
        if args.check:
            for name in differ:
                print(f"{args.into / name}.dot differs from what the code draws now")
            print("gallery up to date" if not differ else "run: python scripts/gallery.py")
            return 1 if differ else 0
        args.into.mkdir(parents=True, exist_ok=True)
        for name, stem in drawn.items():
            for suffix in (".png", ".dot"):
                shutil.copyfile(stem.with_suffix(suffix), args.into / f"{name}{suffix}")
            print(f"{args.into / name}.png{'  (changed)' if name in differ else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
