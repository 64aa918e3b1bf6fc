"""Applying one op's rules safely: calling its vjp or its Jacobian, checking what comes
back, and the error messages that name the node, the op, the plugin and the shapes."""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from .backend import all_finite, is_foreign, is_real_floating, namespace, to_numpy
from .errors import GraphError, MissingRuleError, NonFiniteError, OpError, ShapeError

if TYPE_CHECKING:
    from .node import Node
    from .op import Op
    from .run import Run

__all__ = ["op_of", "pull_vjp", "pull_jacobian", "push_jvp", "check_finite_grads", "local_jacobians",
           "sparse_local_jacobians", "broadcast_entries", "one_hot_seeds", "slot_name"]


def op_of(node: Node) -> Op:
    """The op of an op node: rules are only ever applied to op nodes, never to leaves."""
    if node.op_def is None:
        raise GraphError(f"{node.name!r} is a {node.kind}, not an op node")
    return node.op_def


def pull_vjp(node: Node, g: np.ndarray, args: Sequence[np.ndarray], out: np.ndarray,
             needs: tuple[bool, ...]) -> tuple[np.ndarray | None, ...]:
    """The gradient of each input of ``node`` from the gradient ``g`` of its output, checked."""
    op = op_of(node)
    extra = {"needs": needs} if op.vjp_takes_needs else {}
    try:
        results = op.vjp(g, *args, out=out, **extra, **node.attrs)
    except Exception as exc:
        raise OpError(f"vjp of {where(node)} raised {type(exc).__name__}: {exc} "
                      f"(inputs {describe(node, args)})") from exc
    return check_input_grads(node, args, results, needs, "vjp")


def pull_jacobian(node: Node, g: np.ndarray, args: Sequence[np.ndarray], out: np.ndarray,
                  needs: tuple[bool, ...]) -> tuple[np.ndarray | None, ...]:
    """Like :func:`pull_vjp`, but by contracting ``g`` with each input's explicit Jacobian."""
    jacobians = local_jacobians(node, args, out, needs)
    xp = namespace(g)
    return tuple(None if j is None else xp.tensordot(g, j, axes=g.ndim) for j in jacobians)


def push_jvp(node: Node, tangents: Sequence[np.ndarray | None], args: Sequence[np.ndarray], out: np.ndarray
             ) -> tuple[np.ndarray | None, ...]:
    """What each input's tangent contributes to the tangent of ``node``'s output, checked.

    Uses the op's ``jvp`` rule, or else contracts its explicit Jacobian with the tangents.
    """
    op = op_of(node)
    needs = tuple(t is not None for t in tangents)
    if op.jvp is not None:
        try:
            results = op.jvp(tuple(tangents), *args, out=out, **node.attrs)
        except Exception as exc:
            raise OpError(f"jvp of {where(node)} raised {type(exc).__name__}: {exc} "
                          f"(inputs {describe(node, args)})") from exc
    elif op.jacobian is not None:
        jacobians = local_jacobians(node, args, out, needs)
        xp = namespace(out)
        results = tuple(None if j is None or t is None else xp.tensordot(j, t, axes=t.ndim)
                        for j, t in zip(jacobians, tangents))
    else:
        raise MissingRuleError(f"forward mode cannot go through {where(node)}: the op has neither a jvp rule nor an "
                      f"explicit jacobian; give it jvp=(tangents, *inputs, out, **attrs) -> one output-shaped "
                      f"contribution per input, or jacobian=, or define it with Op.elementwise if it is elementwise")
    return check_input_grads(node, args, results, needs, "jvp", [out.shape] * len(args))


def local_jacobians(node: Node, args: Sequence[np.ndarray], out: np.ndarray,
                    needs: tuple[bool, ...] | None = None, *, explicit: bool = True) -> tuple[np.ndarray | None, ...]:
    """d out / d input for each input of ``node``, shaped ``out.shape + input.shape``.

    Uses the op's explicit ``jacobian`` when it has one (and ``explicit`` is true),
    otherwise its vjp applied to one one-hot seed per output element.
    """
    op = op_of(node)
    needs = needs if needs is not None else (True,) * len(args)
    if explicit and op.jacobian is not None:
        extra = {"needs": needs} if op.jacobian_takes_needs else {}
        try:
            results = op.jacobian(*args, out=out, **extra, **node.attrs)
        except Exception as exc:
            raise OpError(f"jacobian of {where(node)} raised {type(exc).__name__}: {exc}") from exc
        expected = [out.shape + a.shape for a in args]
        return check_input_grads(node, args, results, needs, "jacobian", expected)
    xp = namespace(out)
    if out.size == 0:  # no output element, so no row to pull: the Jacobian is empty
        return tuple(xp.zeros(out.shape + a.shape, dtype=xp.float64) if need else None for a, need in zip(args, needs))
    columns: list[list[np.ndarray | None]] = [[] for _ in args]
    for seed in one_hot_seeds(out.shape):
        row = pull_vjp(node, seed if xp is np else xp.asarray(seed), args, out, needs)
        for slot, grad in enumerate(row):
            columns[slot].append(grad)
    return tuple(
        None if not needs[slot] or any(c is None for c in cols)
        else xp.reshape(xp.stack([xp.asarray(c, dtype=xp.float64) for c in cols]), out.shape + args[slot].shape)
        for slot, cols in enumerate(columns)
    )


#: One input's local partial derivatives: flat output indices, flat input indices, values.
Entries = tuple[np.ndarray, np.ndarray, np.ndarray]


def sparse_local_jacobians(node: Node, args: Sequence[np.ndarray], out: np.ndarray,
                           needs: tuple[bool, ...] | None = None) -> tuple[Entries | None, ...]:
    """The non-zero entries of :func:`local_jacobians`, without building the dense Jacobians where possible.

    Per input, ``(rows, columns, values)``: the flat index of an output element, the
    flat index of an input element and the partial derivative there, sorted by
    (row, column), each pair once and no zero value (NaN is kept); None where
    ``needs`` is false or no gradient flows. From the op's ``sparse_jacobian`` when it
    has one, from the ``derivative`` of an :meth:`~dagprop.Op.elementwise` op (its
    diagonal), else from the dense Jacobian with its zeros dropped. The values are the
    dense Jacobian's, number for number.

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); W = g.param("W", [[1.0, 2.0], [0.0, 4.0]]); x = g.param("x", [1.0, 1.0])
    >>> y = W @ x
    >>> g.forward()
    >>> rows, columns, values = sparse_local_jacobians(y, [W.value, x.value], y.value)[1]
    >>> rows.tolist(), columns.tolist(), values.tolist()
    ([0, 0, 1], [0, 1, 1], [1.0, 2.0, 4.0])
    """
    op = op_of(node)
    needs = needs if needs is not None else (True,) * len(args)
    if is_foreign(out):  # the element graph is a view: it computes what it shows, in NumPy
        args, out = [to_numpy(a) for a in args], to_numpy(out)
    if op.sparse_jacobian is not None:
        try:
            results = op.sparse_jacobian(*args, out=out, needs=needs, **node.attrs)
        except Exception as exc:
            raise OpError(f"sparse_jacobian of {where(node)} raised {type(exc).__name__}: {exc}") from exc
        return _checked_entries(node, args, out, results, needs)
    if op.derivative is not None:  # Op.elementwise checked that its jacobian is this diagonal
        derivative = np.broadcast_to(np.asarray(op.derivative(args[0], out=out, **node.attrs), dtype=np.float64),
                                     out.shape).ravel()
        diagonal = np.arange(out.size)
        return (_nonzero_entries(diagonal, diagonal, derivative) if needs[0] else None,)
    return tuple(None if jacobian is None else dense_entries(jacobian, out.size)
                 for jacobian in local_jacobians(node, args, out, needs))


def dense_entries(jacobian: np.ndarray, out_size: int) -> Entries:
    """The non-zero entries of a dense Jacobian shaped ``out.shape + input.shape``, in C order."""
    flat = np.asarray(jacobian, dtype=np.float64).reshape(out_size, -1)
    rows, columns = np.nonzero(flat)
    return rows, columns, flat[rows, columns]


def broadcast_entries(in_shape: tuple[int, ...], out_shape: tuple[int, ...], values: Any) -> Entries:
    """The entries of an elementwise op's Jacobian for one input broadcast to ``out_shape``:
    output element r depends on the input element broadcast to it, with derivative
    ``values`` (broadcast to ``out_shape``). For a ``sparse_jacobian`` rule.

    Examples
    --------
    >>> [a.tolist() for a in broadcast_entries((2,), (2, 2), [[1.0, 2.0], [3.0, 0.0]])]
    [[0, 1, 2], [0, 1, 0], [1.0, 2.0, 3.0]]
    """
    size = math.prod(out_shape)
    columns = np.broadcast_to(np.arange(math.prod(in_shape)).reshape(in_shape), out_shape).ravel()
    derivatives = np.broadcast_to(np.asarray(values, dtype=np.float64), out_shape).ravel()
    return _nonzero_entries(np.arange(size), columns, derivatives)


def _nonzero_entries(rows: np.ndarray, columns: np.ndarray, values: np.ndarray) -> Entries:
    keep = values != 0
    if keep.all():
        return rows, columns, values
    return rows[keep], columns[keep], values[keep]


def _checked_entries(node: Node, args: Sequence[np.ndarray], out: np.ndarray, results: Any,
                     needs: tuple[bool, ...]) -> tuple[Entries | None, ...]:
    """What a sparse_jacobian rule returned, checked, sorted by (row, column) and without zeros."""
    if not isinstance(results, (tuple, list)) or len(results) != len(args):
        got = f"{type(results).__name__}" + (f" of length {len(results)}" if isinstance(results, (tuple, list)) else "")
        raise OpError(f"sparse_jacobian of {where(node)} returned {got}; expected a tuple of {len(args)} (one per "
                      f"input: {', '.join(input_names(node, len(args)))}), each (rows, columns, values) or None")
    checked: list[Entries | None] = []
    for slot, (result, arg) in enumerate(zip(results, args)):
        if result is None or not needs[slot]:
            checked.append(None)
            continue
        name = input_names(node, len(args))[slot]
        try:
            rows, columns, values = (np.asarray(part).ravel() for part in result)
        except (TypeError, ValueError):
            raise OpError(f"sparse_jacobian of {where(node)} returned {type(result).__name__} for input {slot} "
                          f"({name}); expected three 1-D arrays (rows, columns, values)") from None
        if not (len(rows) == len(columns) == len(values)) or rows.dtype.kind not in "iu" or columns.dtype.kind not in "iu":
            raise OpError(f"sparse_jacobian of {where(node)} returned rows, columns and values of lengths "
                          f"{len(rows)}, {len(columns)}, {len(values)} (dtypes {rows.dtype}, {columns.dtype}) for "
                          f"input {slot} ({name}); expected integer rows and columns as long as the values")
        values = values.astype(np.float64, copy=False)
        check_real(node, "sparse_jacobian", values, args)
        size = int(np.size(arg))
        if len(rows) and (rows.min() < 0 or rows.max() >= out.size or columns.min() < 0 or columns.max() >= size):
            raise OpError(f"sparse_jacobian of {where(node)} returned an index out of range for input {slot} "
                          f"({name}): rows must lie in [0, {out.size}) (output {out.shape}) and columns in "
                          f"[0, {size}) (input {np.shape(arg)})")
        keys = rows.astype(np.int64) * size + columns
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
            raise OpError(f"sparse_jacobian of {where(node)} returned the same (row, column) twice for input "
                          f"{slot} ({name}); give each partial derivative once")
        checked.append(_nonzero_entries(rows[order], columns[order], values[order]))
    return tuple(checked)


def one_hot_seeds(shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """One fresh array per element of ``shape``, 1 at that element and 0 elsewhere, in C order:
    each seeds a backward pass that yields one row of a Jacobian."""
    for k in range(math.prod(shape)):
        seed = np.zeros(shape)
        seed.flat[k] = 1.0
        yield seed


def as_result_array(node: Node, rule: str, result: Any) -> np.ndarray:
    """What a rule returned as an array (a number or a nested list is fine); OpError if it is not numbers.
    An array of another library than NumPy stays one."""
    if is_foreign(result):
        return result
    try:
        return np.asarray(result)
    except Exception as exc:
        raise OpError(f"{rule} of {where(node)} returned {type(result).__name__}, which is not an array: {exc}"
                      ) from None


def check_real(node: Node, rule: str, array: np.ndarray, args: Sequence[Any]) -> None:
    """OpError unless ``array`` is real floating-point: values and gradients are never complex,
    integer, boolean, strings or objects."""
    if not is_real_floating(array):
        raise OpError(f"{rule} of {where(node)} returned an array of dtype {array.dtype}; values and gradients "
                      f"must be real floating-point arrays (inputs {describe(node, args)})")


def check_input_grads(node: Node, args: Sequence[np.ndarray], results: Any, needs: tuple[bool, ...],
                      rule: str, expected: Sequence[tuple[int, ...]] | None = None) -> tuple:
    """Check that a rule returned one array (or None) per input, each of the expected shape."""
    expected = [a.shape for a in args] if expected is None else expected
    if not isinstance(results, (tuple, list)) or len(results) != len(args):
        got = f"{type(results).__name__}" + (f" of length {len(results)}" if isinstance(results, (tuple, list)) else "")
        raise OpError(
            f"{rule} of {where(node)} returned {got}; expected a tuple of {len(args)} "
            f"(one per input: {', '.join(input_names(node, len(args)))}) with shapes {tuple(expected)}"
        )
    checked: list[np.ndarray | None] = []
    for slot, (result, shape) in enumerate(zip(results, expected)):
        if result is None or not needs[slot]:
            checked.append(None)
            continue
        if type(result) is not np.ndarray:
            result = as_result_array(node, rule, result)
            if type(result) is np.ndarray and result.dtype.kind in "biu":  # a plain number or list of them
                result = result.astype(np.float64)
        check_real(node, rule, result, args)
        if result.shape != shape:
            name = input_names(node, len(args))[slot]
            meaning = {"jacobian": "d out/d " + name, "jvp": "the output"}.get(rule, name)
            raise OpError(
                f"{rule} of {where(node)} returned shape {result.shape} for input {slot} ({name}); "
                f"expected {shape}, the shape of {meaning}"
            )
        checked.append(result)
    return tuple(checked)


def expected_shape(name: str, op: Op, inputs: Sequence[str], shapes: Sequence[tuple[int, ...]],
                   attrs: dict[str, Any]) -> tuple[int, ...]:
    """The output shape the op's shape rule gives for these input shapes; ShapeError naming
    the node, the op, its plugin and every input's shape when the rule rejects them."""
    if op.shape is None:
        raise GraphError(f"op {op.name!r} has no shape rule")
    plugin = f" (plugin {op.plugin!r})" if op.plugin else ""
    try:
        shape = op.shape(*shapes, **attrs)
    except (ValueError, TypeError, IndexError) as reason:  # how a shape rule says no
        described = ", ".join(f"{n} {s}" for n, s in zip(inputs, shapes))
        raise ShapeError(f"op node {name!r}: {op.name}{plugin} cannot take inputs of shapes {described}: "
                         f"{reason}") from None
    except Exception as exc:
        raise OpError(f"the shape rule of op {op.name!r}{plugin} raised {type(exc).__name__} at node {name!r}: "
                      f"{exc}") from exc
    try:
        checked = tuple(operator.index(n) for n in shape)
    except TypeError:
        checked = None
    if checked is None or any(n < 0 for n in checked):
        raise OpError(f"the shape rule of op {op.name!r}{plugin} returned {shape!r} at node {name!r}; expected a "
                      f"tuple of non-negative ints")
    return checked


def check_forward_shape(node: Node, args: Sequence[np.ndarray], out: np.ndarray) -> None:
    expected = expected_shape(node.name, op_of(node), [n.name for n in node.inputs], [a.shape for a in args],
                              node.attrs)
    if out.shape != expected:
        raise OpError(f"forward of {where(node)} returned shape {out.shape}; its shape rule expects "
                      f"{expected} for inputs {describe(node, args)}")


def forward_failure(node: Node, args: Sequence[np.ndarray], exc: Exception) -> Exception:
    """The error to raise for a forward that raised: a ShapeError when the shape rule explains it."""
    op = op_of(node)
    if op.shape is not None:
        try:
            expected_shape(node.name, op, [n.name for n in node.inputs], [a.shape for a in args], node.attrs)
        except ShapeError as error:
            return error
    return OpError(f"forward of {where(node)} raised {type(exc).__name__}: {exc} (inputs {describe(node, args)})")


def non_finite_message(node: Node, args: Sequence[np.ndarray], out: np.ndarray) -> str:
    bad = _nan_or_inf(out)
    return (f"{where(node)} produced {bad} (check_finite=True); it is the first node to do so; "
            f"inputs {describe(node, args)}")


def missing_value_message(node: Node, args: Sequence[Any]) -> str:
    missing = [n.name for n, a in zip(node.inputs, args) if a is None]
    return (f"op node {node.name!r} ({node.op}) cannot run: no value for {', '.join(map(repr, missing))}; "
            f"give the input a value or feed it: forward(feeds={{{missing[0]!r}: ...}})")


def freed_message(node: Node) -> str:
    return (f"cannot backpropagate through {node.name!r}: the value of it or of an input is not known, because "
            f"forward(retain=False) frees intermediate values and forward(outputs=...) computes only what those "
            f"outputs need; run forward() (retain=True) before backward()")


def where(node: Node) -> str:
    op = op_of(node)
    plugin = f", plugin {op.plugin!r}" if op.plugin else ""
    return f"op {op.name!r} at node {node.name!r}{plugin}"


def slot_name(node: Node, slot: int) -> str:
    """The name of argument ``slot`` of op node ``node``, as its op calls it (``x[2]`` for variadic ops).

    Examples
    --------
    >>> import dagprop as dp
    >>> g = dp.Graph(); a = g.param("a", 1.0)
    >>> v = g.param("v", [1.0])
    >>> slot_name(a * a, 1), slot_name(g.op("concat", v, v), 1)
    ('b', 'x[1]')
    """
    op = node.op_def
    if op is None:
        return str(slot)
    if op.variadic:
        return f"{op.inputs[0]}[{slot}]"
    return op.inputs[min(slot, len(op.inputs) - 1)]


def input_names(node: Node, count: int) -> list[str]:
    """The names of the first ``count`` argument slots of ``node``."""
    return [slot_name(node, slot) for slot in range(count)]


def describe(node: Node, args: Sequence[Any]) -> str:
    return ", ".join(f"{n.name} {getattr(a, 'shape', None)}" for n, a in zip(node.inputs, args))


def check_finite_grads(run: Run) -> None:
    """NonFiniteError naming the first node, in the order the backward pass reached them, whose
    gradient in ``run`` is NaN or Inf, and the edge that brought it."""
    plan = run.plan
    assert plan is not None  # run_backward always records its plan
    for index in reversed(plan.order):
        grad = run.grads[index]
        if grad is None or all_finite(grad):  # True for lazy (dask) gradients: checking would compute them
            continue
        node = run.nodes[index]
        bad = _nan_or_inf(grad)
        culprits = [f"{consumer.name!r} ({consumer.op}, argument {slot})" for consumer, slot, sent in run.received(node)
                    if not all_finite(sent)]
        source = f"it came from {', '.join(culprits)}" if culprits else "it is the seed"
        raise NonFiniteError(f"the gradient of {node.name!r} ({node.op or node.kind}) holds {bad} "
                             f"(check_finite=True); it is the first node to get one, and {source}; "
                             f"the graph's gradients are unchanged")


def _nan_or_inf(array: Any) -> str:
    xp = namespace(array)
    return "NaN" if bool(xp.any(xp.isnan(array))) else "Inf"
