"""The checks an op call passes before its node is built: how many inputs, which attributes, what shape.

:meth:`Graph.op <dagprop.Graph.op>` runs them on one call, :meth:`Graph.add_table
<dagprop.Graph.add_table>` on every node of a table; so a node is checked the same way
however it is built, and each error says the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import rules
from .errors import GraphError

if TYPE_CHECKING:
    from .op import Op

__all__ = ["check_arity", "check_attributes", "infer_shape"]


def check_arity(op_def: Op, count: int, node: str | None = None) -> None:
    """GraphError unless ``op_def`` takes ``count`` inputs; the message names ``node``, if given.

    Examples
    --------
    >>> from dagprop.registry import default_registry
    >>> check_arity(default_registry()["mul"], 1, "y")
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: node 'y': op 'mul' takes 2 inputs (a, b), got 1
    """
    if count == len(op_def.inputs) and not op_def.variadic and op_def.min_inputs is None:
        return  # the usual call, decided without working out the op's arity
    least, most = op_def.arity
    if count < least or (most is not None and count > most):
        expected = f"{least}" if least == most else f"{least} to {most if most is not None else 'any number of'}"
        raise GraphError(f"{_where(node)}op {op_def.name!r} takes {expected} inputs ({', '.join(op_def.inputs)}), "
                         f"got {count}")


def check_attributes(op_def: Op, attrs: dict[str, Any], node: str | None = None) -> None:
    """GraphError naming the attributes in ``attrs`` that ``op_def`` does not take (and ``node``, if given).

    Examples
    --------
    >>> from dagprop.registry import default_registry
    >>> check_attributes(default_registry()["transpose"], {"colour": "red"})
    Traceback (most recent call last):
    ...
    dagprop.errors.GraphError: op 'transpose' has no attribute colour (it accepts: axes)
    """
    if attrs and op_def.attr_names is not None:
        unknown = sorted(set(attrs) - op_def.attr_names)
        if unknown:
            accepted = ", ".join(sorted(op_def.attr_names)) or "none"
            raise GraphError(f"{_where(node)}op {op_def.name!r} has no attribute {', '.join(unknown)} (it accepts: "
                             f"{accepted})")


def _where(node: str | None) -> str:
    return "" if node is None else f"node {node!r}: "


def infer_shape(op_def: Op, shapes: Sequence[tuple[int, ...] | None], attrs: dict[str, Any], name: str | None,
                input_names: Callable[[], list[str]]) -> tuple[int, ...] | None:
    """The shape op node ``name`` (None: a node not named yet) will have, from its inputs' ``shapes``;
    None if the op has no shape rule or an input's shape is unknown.

    Raises ShapeError naming the node, the op, its plugin and every input with its shape
    when the rule rejects the shapes (``input_names()`` gives the inputs' names, asked
    for only then), and OpError when the rule itself misbehaves.

    Examples
    --------
    >>> from dagprop.registry import default_registry
    >>> matmul = default_registry()["matmul"]
    >>> infer_shape(matmul, [(2, 3), (3, 1)], {}, "z", lambda: ["W", "x"])
    (2, 1)
    >>> infer_shape(matmul, [(2, 3), (2, 1)], {}, "z", lambda: ["W", "x"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagprop.errors.ShapeError: op node 'z': matmul (plugin ...) cannot take inputs of shapes W (2, 3), x (2, 1): ...
    """
    rule = op_def.shape
    if rule is None or None in shapes:
        return None
    try:  # the rule alone first: the checks and messages below cost more than most rules
        shape = rule(*shapes, **attrs)
    except Exception:
        shape = None
    # a tuple of non-negative ints, checked in C: this runs once per node built
    if type(shape) is tuple and (not shape or (set(map(type, shape)) == _INT and min(shape) >= 0)):
        return shape
    # rejected, or an unusual result: expected_shape calls the rule again, converts or explains
    return rules.expected_shape(name or f"new {op_def.name} node", op_def, input_names(), shapes,  # type: ignore[arg-type]
                                attrs)


_INT = {int}
