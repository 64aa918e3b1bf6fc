"""Tools for plugin authors: check an op's rules against finite differences and each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .errors import GradcheckError, GraphError, MissingRuleError
from .graph import Graph
from .jacobians import gradcheck
from .rules import local_jacobians, pull_vjp, push_jvp

__all__ = ["check_op", "OpCheck"]


@dataclass
class OpCheck:
    """What :func:`check_op` compared, with the largest absolute error of each comparison."""

    op: str
    errors: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # rules the op lacks, so not checked

    def __str__(self) -> str:
        text = f"check_op({self.op!r}) passed: " + ", ".join(f"{k} {v:.2g}" for k, v in self.errors.items())
        return text + "".join(f"; not checked: {note}" for note in self.notes)


def check_op(name: str, *shapes_or_arrays: Any, plugins: Iterable[Any] | None = None, seed: int = 0,
             eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7, attrs: Mapping[str, Any] | None = None,
             **more_attrs: Any) -> OpCheck:
    """Check a registered op's rules against central differences and against each other.

    - the vjp against central differences;
    - the explicit jacobian (if any) against the vjp;
    - the jvp (or the Jacobian's forward mode) against central differences along a
      random direction, and against the vjp through the identity <u, J v> = <J^T u, v>;
    - the vjp_graph (or, for a composite op, autodiff through its decomposition): its
      nodes' values against the vjp, at the inputs and at a second random point, and
      their own gradients (second derivatives) against central differences;
    - for a composite op, the vjp against autodiff through its decomposition.

    Parameters
    ----------
    name : str
        The op to check.
    *shapes_or_arrays
        One per input: a shape tuple (random standard-normal values, seeded) or an array.
    plugins : iterable, optional
        Plugins providing the op, if it is not installed or registered.
    seed : int
        Seed of the random inputs and of the random projection that makes the output scalar.
    eps, rtol, atol
        Finite-difference step and tolerances.
    attrs : dict, optional
        The op's attributes, for an attribute named like one of this function's own
        parameters (``seed``, ``eps``...).
    **more_attrs
        The op's other attributes, as keywords.

    Raises
    ------
    GradcheckError
        Saying which comparison failed, for which input and at which element.

    Examples
    --------
    >>> from dagprop.testing import check_op
    >>> print(check_op("mul", (2, 3), (3,)).op)
    mul
    """
    attrs = {**(attrs or {}), **more_attrs}
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(a) if isinstance(a, tuple) else np.asarray(a, dtype=np.float64)
              for a in shapes_or_arrays]
    g, leaves, out = _build(name, arrays, plugins, attrs)
    op = out.op_def
    g.forward()
    projection = g.const(rng.standard_normal(out.shape))
    loss = g.op("sum", g.op("mul", out, projection))
    result = OpCheck(name)
    try:
        report = gradcheck(g, loss, wrt=leaves, eps=eps, rtol=rtol, atol=atol)
    except GradcheckError as exc:
        raise GradcheckError(f"check_op({name!r}, plugin {op.plugin!r}): vjp disagrees with finite differences: {exc}") from None
    result.errors["vjp vs finite differences"] = max(report.max_abs_error.values())
    g.forward()
    if op.jacobian is not None:
        args = [leaf.value for leaf in leaves]
        explicit = local_jacobians(out, args, out.value)
        from_vjp = local_jacobians(out, args, out.value, explicit=False)
        worst = 0.0
        for slot, (a, b) in enumerate(zip(explicit, from_vjp)):
            _compare(f"check_op({name!r}, plugin {op.plugin!r}): explicit jacobian disagrees with the vjp for "
                     f"input {slot} ({leaves[slot].name})", a, b, rtol, atol)
            if a is not None and b is not None:
                worst = max(worst, float(np.abs(a - b).max(initial=0.0)))
        result.errors["jacobian vs vjp"] = worst
    if op.decompose is not None:
        g.backward(loss)
        h, twins, circuit = _build(name, arrays, plugins, attrs, decomposed=True)
        h.forward()
        _compare(f"check_op({name!r}): the decomposition's value differs from forward", circuit.value, out.value,
                 rtol, atol)
        twin_loss = h.op("sum", h.op("mul", circuit, h.const(projection.value)))
        h.forward()
        h.backward(twin_loss)
        worst = 0.0
        for leaf, twin in zip(leaves, twins):
            _compare(f"check_op({name!r}, plugin {op.plugin!r}): vjp disagrees with autodiff through the "
                     f"decomposition for input {leaf.name}", leaf.grad, twin.grad, rtol, atol)
            if leaf.grad is not None and twin.grad is not None:
                worst = max(worst, float(np.abs(leaf.grad - twin.grad).max(initial=0.0)))
        result.errors["vjp vs decomposition"] = worst
    u = np.asarray(projection.value)
    if op.jvp is not None or op.jacobian is not None:
        result.errors.update(_check_jvp(name, op, leaves, out, u, rng, eps, rtol, atol))
    if op.vjp_graph is not None or op.decompose is not None:
        try:
            result.errors.update(_check_vjp_graph(name, arrays, plugins, attrs, u, rng, eps, rtol, atol))
        except MissingRuleError as exc:
            result.notes.append(f"create_graph=True, which this op cannot take part in ({exc})")
    return result


def _check_jvp(name: str, op: Any, leaves: list, out: Any, u: np.ndarray, rng: np.random.Generator, eps: float,
               rtol: float, atol: float) -> dict[str, float]:
    args = [leaf.value for leaf in leaves]
    directions = [rng.standard_normal(a.shape) for a in args]
    contributions = push_jvp(out, directions, args, out.value)
    where = f"check_op({name!r}, plugin {op.plugin!r})"
    worst_fd = 0.0
    for slot, contribution in enumerate(contributions):
        moved = [a + eps * d if k == slot else a for k, (a, d) in enumerate(zip(args, directions))]
        back = [a - eps * d if k == slot else a for k, (a, d) in enumerate(zip(args, directions))]
        numeric = (np.asarray(op.forward(*moved, **out.attrs)) - np.asarray(op.forward(*back, **out.attrs))) / (2 * eps)
        actual = np.zeros(out.value.shape) if contribution is None else contribution
        _compare(f"{where}: jvp disagrees with finite differences for input {slot} ({leaves[slot].name})",
                 actual, numeric, rtol, atol)
        worst_fd = max(worst_fd, float(np.abs(actual - numeric).max(initial=0.0)))
    pulled = pull_vjp(out, u, args, out.value, (True,) * len(args))
    forward_side = sum(float(np.vdot(u, c)) for c in contributions if c is not None)
    reverse_side = sum(float(np.vdot(p, d)) for p, d in zip(pulled, directions) if p is not None)
    _compare(f"{where}: <u, J v> from the jvp differs from <J^T u, v> from the vjp", np.array(forward_side),
             np.array(reverse_side), rtol, atol)
    return {"jvp vs finite differences": worst_fd, "<u, Jv> vs <J^T u, v>": abs(forward_side - reverse_side)}


def _check_vjp_graph(name: str, arrays: list[np.ndarray], plugins: Iterable[Any] | None, attrs: dict[str, Any],
                     u: np.ndarray, rng: np.random.Generator, eps: float, rtol: float, atol: float) -> dict[str, float]:
    g, leaves, out = _build(name, arrays, plugins, attrs)
    op = out.op_def
    where = f"check_op({name!r}, plugin {op.plugin!r}): the vjp_graph"
    g.forward()
    loss = g.op("sum", g.op("mul", out, g.const(u)))
    g.forward()
    g.backward(loss, create_graph=True)
    grad_nodes = [leaf.grad_node for leaf in leaves]
    worst = 0.0
    for point in range(2):  # at the inputs, then somewhere else: the nodes must follow the inputs
        if point:
            for leaf in leaves:
                g.run.values[leaf.index] = leaf.value + rng.standard_normal(leaf.value.shape) * 0.1
            g.forward()
        args = [leaf.value for leaf in leaves]
        expected = pull_vjp(out, u, args, out.value, (True,) * len(args))
        for leaf, node, want in zip(leaves, grad_nodes, expected):
            got = None if node is None else node.value
            if got is None and want is not None and not np.any(want):
                continue  # no node for a gradient that is zero everywhere
            _compare(f"{where}'s value disagrees with the vjp for input {leaf.name}", got, want, rtol, atol)
            if got is not None:
                worst = max(worst, float(np.abs(got - want).max(initial=0.0)))
    weights = [g.const(rng.standard_normal(leaf.value.shape)) for leaf in leaves]
    terms = [g.op("sum", g.op("mul", node, weight)) for node, weight in zip(grad_nodes, weights) if node is not None]
    errors = {"vjp_graph vs vjp": worst}
    if terms:
        second = terms[0]
        for term in terms[1:]:
            second = g.op("add", second, term)
        g.forward()
        try:
            report = gradcheck(g, second, wrt=leaves, eps=eps, rtol=rtol, atol=atol)
        except GradcheckError as exc:
            raise GradcheckError(f"{where}'s gradients (second derivatives) disagree with finite differences: "
                                 f"{exc}") from None
        errors["second derivatives vs finite differences"] = max(report.max_abs_error.values())
    return errors


def _build(name: str, arrays: list[np.ndarray], plugins: Iterable[Any] | None, attrs: dict[str, Any],
           decomposed: bool = False) -> tuple[Graph, list, Any]:
    g = Graph(plugins=plugins)
    op = g.registry[name]
    least, most = op.arity
    if not least <= len(arrays) <= (most if most is not None else len(arrays)):
        raise GraphError(f"check_op({name!r}): the op takes {least if least == most else f'{least} or more'} "
                         f"inputs ({', '.join(op.inputs)}), got {len(arrays)}")
    names = [op.inputs[0] + str(i) if op.variadic else op.inputs[i] for i in range(len(arrays))]
    leaves = [g.param(n, a) for n, a in zip(names, arrays)]
    if not decomposed:
        return g, leaves, g.op(name, *leaves, **attrs)
    if op.decompose is None:
        raise GraphError(f"check_op({name!r}): the op has no decomposition")
    out = op.decompose(*leaves, **attrs)
    return g, leaves, out


def _compare(what: str, actual: np.ndarray | None, expected: np.ndarray | None, rtol: float, atol: float) -> None:
    if actual is None or expected is None:
        if actual is None and expected is None:
            return
        raise GradcheckError(f"{what}: one side has no gradient")
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise GradcheckError(f"{what}: shapes {actual.shape} and {expected.shape}")
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise GradcheckError(f"{what}: at index {index}, {float(actual[index]):.10g} vs {float(expected[index]):.10g}")
