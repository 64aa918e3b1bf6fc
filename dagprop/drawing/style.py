"""The look of a diagram: colours, node shapes by kind, and small pieces of DOT markup."""

from __future__ import annotations

from typing import Iterable

# Every colour that means something is named once here, with the word the legend uses for it
# (COLOUR_NAMES). Together they stay apart for readers with any of the three kinds of colour
# blindness (tests/test_model_diagrams.py checks their distances under simulated protanopia,
# deuteranopia and tritanopia), and no two meanings share a word.
RED = "#d62728"
# Okabe and Ito's blue: the colour-blind-safe opposite of the gradients' red
TANGENT = "#0072b2"
INK = "#1a1a1a"
GREY = "#8c8c8c"
FAINT = "#b5b5b5"
CAPTION = "#6b6b6b"
# the local derivative on element edges: green in every mode, so that it never reads as a tangent
# (blue) or a caption (grey); dark enough for 9-point text
WEIGHT = "#1a9850"
# highlights and paths, in order: none of them red, blue, green, grey or purple, which mean something else
PALETTE = ("#ff7f0e", "#56b4e9", "#8c564b", "#e78ac3")
PALETTE_NAMES = dict(zip(PALETTE, ("orange", "sky blue", "brown", "pink")))
CLUSTER_COLOUR = "#762a83"  # an opened composite's dashed box
# the backward pass built as nodes (backward(create_graph=True)): a red dashed border on a red tint
BACKWARD_FILL = "#fdeeee"
BACKWARD_EDGE = "#e08080"
COLOUR_NAMES = {INK: "black", RED: "red", TANGENT: "blue", WEIGHT: "green", GREY: "grey", CAPTION: "grey",
                CLUSTER_COLOUR: "purple", **PALETTE_NAMES}
GREYED_LOOK = ("#f7f7f7", "#c4c4c4")
COLLAPSED_MATRIX = (3, 3)  # arrays drawn in full in a collapsed view of a large graph

# kind -> (shape, style, fill colour, border colour)
KIND_LOOKS = {
    "param": ("box", "filled,bold", "#e4eefb", "#2b62b8"),
    "input": ("box", "filled", "#fbf0dc", "#a0652a"),
    "const": ("box", "filled,dashed", "#f3f3f3", "#9a9a9a"),
    "op": ("box", "rounded,filled", "#ffffff", "#3d3d3d"),
}


def kind_look(kind: str, greyed: bool, backward: bool = False) -> tuple[str, str, str, str]:
    """(shape, style, fill, border) of a node of ``kind``; greyed nodes keep their shape only, and
    nodes of the backward pass (``backward``) keep their shape with a red dashed border on a red tint.

    Examples
    --------
    >>> kind_look("param", False)[1], kind_look("param", True)[2]
    ('filled,bold', '#f7f7f7')
    >>> kind_look("op", False, backward=True)
    ('box', 'rounded,filled,dashed', '#fdeeee', '#d62728')
    """
    shape, style, fill, border = KIND_LOOKS.get(kind, KIND_LOOKS["op"])
    if backward:
        parts = [part for part in style.split(",") if part not in ("bold", "dashed")]
        return shape, ",".join(parts + ["dashed"]), BACKWARD_FILL, RED
    if greyed:
        fill, border = GREYED_LOOK
    return shape, style, fill, border


def dot_attrs(pairs: Iterable[tuple[str, str]]) -> str:
    """DOT attribute pairs, already quoted, joined for a statement's brackets.

    Examples
    --------
    >>> dot_attrs([("shape", "box"), ("penwidth", "3")])
    'shape=box penwidth=3'
    """
    return " ".join(f"{key}={value}" for key, value in pairs)


def captioned(caption: str, content: str, colour: str = CAPTION) -> str:
    """A label row: a small caption on the left, the content on the right."""
    return (f'<TR><TD ALIGN="RIGHT" VALIGN="MIDDLE"><FONT COLOR="{colour}" POINT-SIZE="8">{caption}</FONT></TD>'
            f'<TD ALIGN="LEFT">{content}</TD></TR>')


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as a caption shows it.

    Examples
    --------
    >>> shape_text(()), shape_text((3,)), shape_text((2, 3))
    ('scalar', '(3,)', '2×3')
    """
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "scalar" if shape == () else "\u00d7".join(str(n) for n in shape)


def smaller(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """The smaller of two (rows, columns) limits, axis by axis."""
    return min(a[0], b[0]), min(a[1], b[1])
