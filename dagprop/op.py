"""What an op is: a small object holding a forward rule and its vector-Jacobian product.

Every operation in dagprop, built-in or third-party, is an :class:`Op` returned by a
plugin's ``dagprop_ops`` hook. The engine never special-cases an op by name.
"""

from __future__ import annotations

import functools
import inspect
import keyword
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from .backend import is_foreign, namespace
from .errors import PluginError

__all__ = ["Op", "SourceForm", "unbroadcast", "broadcast_shape", "ATTRIBUTE_TYPES", "ATTRIBUTE_TYPES_TEXT"]

Shape = tuple[int, ...]

# What an op attribute may be made of, so that save/load and dp.codegen can write every graph out.
ATTRIBUTE_TYPES = (type(None), bool, int, float, str, slice, type(Ellipsis), tuple, list, dict, np.generic, np.ndarray)
ATTRIBUTE_TYPES_TEXT = ("numbers, strings, None, slices, Ellipsis, numpy scalars and arrays, or lists, tuples and "
                        "dicts of them")


@dataclass(frozen=True, eq=False)
class Op:
    """One operation: its name, its inputs, a forward rule and a backward (vjp) rule.

    Parameters
    ----------
    name : str
        A Python identifier, unique across all registered plugins. It becomes a node
        method (``x.name()``), so it may not be a keyword or start with ``_``, and the
        registry refuses the names of :class:`dagprop.Node`'s own attributes.
    forward : callable
        ``forward(*arrays, **attrs) -> ndarray``. Must not modify its inputs. A NumPy
        ufunc (``np.add``, ``np.exp``) may be given as is: it takes no attributes, and
        it must take as many inputs as the op declares.
    vjp : callable
        ``vjp(g, *arrays, out, **attrs) -> tuple``: given ``g``, the gradient of the
        loss with respect to the output, return one gradient per input, each shaped
        like that input (use :func:`unbroadcast` to undo broadcasting), or ``None``
        for an input that gets no gradient. If it also accepts a ``needs`` keyword,
        it receives a tuple of booleans saying which inputs need a gradient, so it
        can skip work (and invalid maths) for the others.
    inputs : tuple of str
        Names of the inputs, in order. With ``variadic=True`` the op takes any
        number (at least one) of inputs, all called ``inputs[0]``.
    jacobian : callable, optional
        ``jacobian(*arrays, out, **attrs) -> tuple``: the explicit Jacobian of the
        output with respect to each input, shaped ``out.shape + input.shape``.
        For teaching and for checking the vjp; the engine can always build one
        from the vjp instead. Like the vjp, it may accept ``needs`` and return
        ``None`` for inputs that need no Jacobian.
    jvp : callable, optional
        ``jvp(tangents, *arrays, out, **attrs) -> tuple``: forward mode. ``tangents``
        holds, per input, the direction that input moves in (shaped like it), or
        ``None`` for an input that does not move. Return, per input, what its tangent
        contributes to the output's, ``J_k @ tangents[k]`` shaped like ``out``, or
        ``None`` where the tangent is ``None``; the engine sums them. Without it,
        forward mode contracts the explicit ``jacobian`` with the tangents.
    vjp_graph : callable, optional
        ``vjp_graph(g, *inputs, out, **attrs) -> tuple``: the vjp built out of graph
        nodes, so that ``backward(create_graph=True)`` can draw the backward pass
        and differentiate it again. ``g``, ``inputs`` and ``out`` are
        :class:`dagprop.Node` objects; return, per input, a node shaped like that
        input (``unbroadcast`` works on nodes too) or ``None``. May accept ``needs``
        like the vjp. Without it, an op with a ``decompose`` is differentiated
        through its circuit.
    sparse_jacobian : callable, optional
        ``sparse_jacobian(*arrays, out, needs, **attrs) -> tuple``: the same partial
        derivatives as ``jacobian``, only the structurally non-zero ones: per input,
        ``(rows, columns, values)``, three 1-D arrays holding the flat index of an
        output element, the flat index of an input element and d out / d input there,
        each (row, column) pair at most once, or ``None`` for an input whose
        ``needs`` entry is false. Lets the element graph and element-level paths skip
        building and scanning a dense Jacobian (matmul's is mostly zeros); without
        it they use the dense Jacobian with its zeros dropped.
    derivative : callable, optional
        ``derivative(x, *, out, **attrs) -> array``: for an elementwise op of one
        input, d out / d x at every element. Set by :meth:`Op.elementwise`, which
        builds the vjp, the Jacobian, the jvp and the vjp_graph from it.
    decompose : callable, optional
        ``decompose(*nodes, **attrs) -> Node``: rebuild the op from other ops on
        graph nodes, so a composite op can be shown as a box or as its circuit.
    shape : callable, optional
        ``shape(*input_shapes, **attrs) -> output_shape``. Raises ``ValueError``
        with a reason when the shapes do not fit. Lets the graph reject bad shapes
        as soon as a node is built.
    min_inputs : int, optional
        The least number of inputs, when trailing ones may be left out
        (default: all of them are required).
    example : callable, optional
        ``example(rng) -> (args, attrs)``: typical inputs, used by
        ``dagprop check-op`` and the docs.
    source : SourceForm, optional
        How :func:`dagprop.codegen` writes the op as NumPy expressions
        (``z = W @ x``, ``d_W = d_z @ x.T``). Without it, generated code calls
        ``ops['name'].forward(...)`` and ``ops['name'].vjp(...)``.
    doc : str
        One line saying what the op computes.

    See Also
    --------
    Op.elementwise : an elementwise op from its forward and its derivative alone.

    Examples
    --------
    >>> def cube_forward(x):
    ...     return x**3
    >>> def cube_vjp(g, x, *, out):
    ...     return (3 * x**2 * g,)
    >>> cube = Op("cube", forward=cube_forward, vjp=cube_vjp, inputs=("x",))
    >>> cube.name, cube.inputs
    ('cube', ('x',))
    """

    name: str
    forward: Callable[..., Any]
    vjp: Callable[..., Any]
    inputs: tuple[str, ...] = ("x",)
    jacobian: Callable[..., Any] | None = None
    jvp: Callable[..., Any] | None = field(default=None, kw_only=True)
    vjp_graph: Callable[..., Any] | None = field(default=None, kw_only=True)
    derivative: Callable[..., Any] | None = field(default=None, kw_only=True)
    sparse_jacobian: Callable[..., Any] | None = field(default=None, kw_only=True)
    decompose: Callable[..., Any] | None = None
    shape: Callable[..., Shape] | None = None
    min_inputs: int | None = None
    variadic: bool = False
    example: Callable[[np.random.Generator], tuple[tuple, dict]] | None = None
    source: SourceForm | None = field(default=None, kw_only=True)
    doc: str = ""
    plugin: str = ""
    vjp_takes_needs: bool = field(init=False, repr=False)
    jacobian_takes_needs: bool = field(init=False, repr=False)
    vjp_graph_takes_needs: bool = field(init=False, repr=False)
    attr_names: frozenset[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = f"op {self.name!r}" + (f" from plugin {self.plugin!r}" if self.plugin else "")
        if not isinstance(self.name, str) or not self.name.isidentifier() or keyword.iskeyword(self.name):
            raise PluginError(f"{where}: an op name must be a Python identifier and not a keyword, "
                              f"since it becomes a node method (x.{self.name}(...))")
        if self.name.startswith("_"):
            raise PluginError(f"{where}: an op name may not start with '_': it becomes a node method, "
                              f"and nodes keep names starting with '_' for themselves")
        for role in ("forward", "vjp"):
            if not callable(getattr(self, role)):
                raise PluginError(f"{where}: {role} must be callable, got {getattr(self, role)!r}")
        for role in ("jacobian", "jvp", "vjp_graph", "derivative", "sparse_jacobian", "decompose", "shape", "example"):
            value = getattr(self, role)
            if value is not None and not callable(value):
                raise PluginError(f"{where}: {role} must be callable or None, got {value!r}")
        inputs = tuple(self.inputs)
        if not inputs or not all(isinstance(n, str) for n in inputs):
            raise PluginError(f"{where}: inputs must be a non-empty tuple of names, got {self.inputs!r}")
        object.__setattr__(self, "inputs", inputs)
        if isinstance(self.forward, np.ufunc):
            _check_ufunc_forward(self, self.forward, where)
        if self.derivative is not None:
            _check_derived_rules(self, where)
        if self.source is not None:
            _check_source(self, where)
        object.__setattr__(self, "vjp_takes_needs", _accepts_keyword(self.vjp, "needs"))
        object.__setattr__(self, "jacobian_takes_needs",
                           self.jacobian is not None and _accepts_keyword(self.jacobian, "needs"))
        object.__setattr__(self, "vjp_graph_takes_needs",
                           self.vjp_graph is not None and _accepts_keyword(self.vjp_graph, "needs"))
        object.__setattr__(self, "attr_names", _keyword_names(self.forward))

    @classmethod
    def elementwise(cls, name: str, forward: Callable[..., Any], derivative: Callable[..., Any],
                    **options: Any) -> Op:
        """An elementwise op of one input whose local derivative is stated once.

        Every rule is built from ``derivative``, so none can disagree with another: the
        vjp ``g * derivative(x, out=out)``, the jvp ``tangent * derivative(x, out=out)``,
        the explicit Jacobian (the derivative on the diagonal), and the vjp_graph, the
        same ``g * derivative(x, out=out)`` called on graph nodes instead of arrays.
        That last one works when the derivative is written with arithmetic operators
        and comparisons (``1.0 - out * out``, ``x > 0``), which nodes support; a
        derivative that calls NumPy functions gets first-order rules only. The op's
        output is shaped like its input.

        Parameters
        ----------
        name : str
            The op's name, as for :class:`Op`.
        forward : callable
            ``forward(x, **attrs) -> array`` shaped like ``x``; a NumPy ufunc such as
            ``np.tanh`` can be given as is.
        derivative : callable
            ``derivative(x, *, out, **attrs) -> array``: d out / d x at every element,
            shaped like ``x`` (or a number, for a constant slope). It receives the
            forward's output as ``out``, to reuse it (tanh: ``1 - out**2``), and the
            op's attributes as keywords, with the same defaults as ``forward``. It
            must not modify ``x`` or ``out``, so it cannot be a ufunc, which would
            write into ``out``.
        **options
            Any other field of :class:`Op` (``decompose``, ``example``, ``doc``,
            ``source``, ``inputs`` with one name) except the rules built here.

        Returns
        -------
        Op
            With ``vjp``, ``jvp``, ``jacobian``, ``vjp_graph``, ``shape`` and ``derivative`` set.

        Raises
        ------
        PluginError
            When ``options`` gives a rule that is built here, when the op
            would have other than one input, when ``derivative`` is a ufunc, or
            when a rule is not callable.

        See Also
        --------
        Op : any op, with a hand-written vjp.

        Examples
        --------
        >>> import numpy as np
        >>> def cube_forward(x):
        ...     return x**3
        >>> def cube_derivative(x, *, out):
        ...     return 3 * x**2
        >>> cube = Op.elementwise("cube", cube_forward, cube_derivative, doc="x ** 3")
        >>> x = np.array([1.0, 2.0])
        >>> cube.vjp(np.ones(2), x, out=cube_forward(x))
        (array([ 3., 12.]),)
        >>> cube.jacobian(x, out=cube_forward(x))
        (array([[ 3.,  0.],
                [ 0., 12.]]),)
        >>> cube.jvp((np.array([1.0, 0.5]),), x, out=cube_forward(x))
        (array([3., 6.]),)
        >>> cube.shape((2,))
        (2,)
        """
        built_here = sorted({"vjp", "jvp", "jacobian", "vjp_graph", "shape"} & set(options))
        if built_here:
            raise PluginError(f"op {name!r}: Op.elementwise builds {', '.join(built_here)} from the derivative; "
                              f"leave {'it' if len(built_here) == 1 else 'them'} out, or use Op(...) for a "
                              f"hand-written vjp")
        # an op without attributes gets the vjp without ``**attrs``: packing an empty dict
        # on every call would cost more than the derivative's own call on the hot path
        vjp = _elementwise_vjp if _keyword_names(forward) == frozenset() else _elementwise_vjp_with_attrs
        return cls(name, forward=forward, vjp=functools.partial(vjp, derivative),
                   jacobian=functools.partial(_elementwise_jacobian, derivative),
                   jvp=functools.partial(_elementwise_jvp, derivative),
                   vjp_graph=functools.partial(_elementwise_vjp_with_attrs, derivative), derivative=derivative,
                   shape=_same_shape, **options)

    @property
    def arity(self) -> tuple[int, int | None]:
        """The least and the most number of inputs (``None``: no upper bound)."""
        if self.variadic:
            return 1, None
        least = len(self.inputs) if self.min_inputs is None else self.min_inputs
        return least, len(self.inputs)

    def with_plugin(self, plugin: str) -> Op:
        """A copy of this op labelled with the plugin that provides it."""
        return replace(self, plugin=plugin)

    def __repr__(self) -> str:
        extras = [k for k in ("derivative", "jacobian", "decompose") if getattr(self, k) is not None]
        tail = f", has {'+'.join(extras)}" if extras else ""
        return f"Op({self.name!r}, inputs={self.inputs!r}, plugin={self.plugin!r}{tail})"


@dataclass(frozen=True)
class SourceForm:
    """How generated code writes an op: NumPy expressions a teacher would write, instead of calls to the op.

    :func:`dagprop.codegen` calls each rule with a :class:`dagprop.source.SourceCall`
    holding the identifiers of the node's inputs, output and gradient, its attribute
    values and every shape (codegen runs after a forward pass, so it specialises the code
    to the shapes). Each rule returns source text, or ``None`` to fall back, for that node,
    to the op's own call (``ops['name'].forward(...)`` or ``ops['name'].vjp(...)``); so a
    rule need only cover the cases that read well, and an op may have one rule and not
    the other.

    Parameters
    ----------
    forward : callable, optional
        ``forward(call) -> str | list of str | None``: an expression for the output
        (``f"{a} @ {b}"``), or statements that assign it to ``call.out`` (for a value that
        takes two steps to compute stably).
    vjp : callable, optional
        ``vjp(call) -> tuple | None``: one entry per input, in order, each an expression for
        that input's gradient, statements that assign it to ``call.targets[slot]``, or
        ``None`` (an input with ``call.needs[slot]`` false is never asked for). Each
        expression must be shaped like its input; ``call.sum_to`` undoes broadcasting.
    derivative : callable, optional
        For an op of one input whose output is shaped like it: ``derivative(call) -> str |
        None``, d out / d x at every element (``f"1 - {call.out} * {call.out}"``); the vjp is written
        as ``g * derivative``. Give either ``vjp`` or ``derivative``, not both.

    See Also
    --------
    dagprop.codegen : writes a graph's passes out, with these rules.

    Examples
    --------
    >>> def cube_forward(x):
    ...     return x**3
    >>> def cube_source(call):
    ...     return f"{call.inputs[0]}**3"
    >>> def cube_derivative_source(call):
    ...     return f"3 * {call.inputs[0]}**2"
    >>> form = SourceForm(forward=cube_source, derivative=cube_derivative_source)
    >>> def cube_derivative(x, *, out):
    ...     return 3 * x**2
    >>> Op.elementwise("cube", cube_forward, cube_derivative, source=form).source is form
    True
    """

    forward: Callable[[Any], str | list[str] | None] | None = None
    vjp: Callable[[Any], tuple | None] | None = None
    derivative: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        for role in ("forward", "vjp", "derivative"):
            value = getattr(self, role)
            if value is not None and not callable(value):
                raise PluginError(f"SourceForm: {role} must be callable or None, got {value!r}")
        if self.vjp is not None and self.derivative is not None:
            raise PluginError("SourceForm: give vjp or derivative, not both: the vjp is written from the derivative")


def _check_source(op: Op, where: str) -> None:
    if not isinstance(op.source, SourceForm):
        raise PluginError(f"{where}: source must be a dagprop.op.SourceForm or None, got {op.source!r}")
    if op.source.derivative is not None and (op.variadic or len(op.inputs) != 1):
        raise PluginError(f"{where}: a source form with a derivative is for an op of one input, but the op "
                          f"declares inputs {op.inputs}{' (variadic)' if op.variadic else ''}; give vjp instead")


def _elementwise_vjp(derivative: Callable, g: np.ndarray, x: np.ndarray, *, out: np.ndarray) -> tuple:
    return (g * derivative(x, out=out),)


def _elementwise_vjp_with_attrs(derivative: Callable, g: np.ndarray, x: np.ndarray, *, out: np.ndarray,
                                **attrs: Any) -> tuple:
    return (g * derivative(x, out=out, **attrs),)


def _elementwise_jvp(derivative: Callable, tangents: tuple, x: np.ndarray, *, out: np.ndarray, **attrs: Any
                     ) -> tuple:
    (tangent,) = tangents
    return (None if tangent is None else tangent * derivative(x, out=out, **attrs),)


def _elementwise_jacobian(derivative: Callable, x: np.ndarray, *, out: np.ndarray, **attrs: Any) -> tuple:
    """The derivative on the diagonal: each output element depends on its own input element only."""
    if is_foreign(x):
        xp = namespace(x)
        diagonal = xp.reshape(xp.broadcast_to(xp.asarray(derivative(x, out=out, **attrs), dtype=x.dtype), x.shape),
                              (1, x.size))
        jacobian = xp.where(xp.eye(x.size, dtype=xp.bool), diagonal, xp.zeros((), dtype=x.dtype))
        return (xp.reshape(jacobian, out.shape + x.shape),)
    jacobian = np.zeros((x.size, x.size))
    np.fill_diagonal(jacobian, np.broadcast_to(derivative(x, out=out, **attrs), x.shape).ravel())
    return (jacobian.reshape(out.shape + x.shape),)


def _same_shape(shape: Shape, **attrs: Any) -> Shape:
    return shape


def _check_derived_rules(op: Op, where: str) -> None:
    """An op with a derivative has one input, and the vjp and Jacobian that Op.elementwise built from it."""
    if op.variadic or len(op.inputs) != 1:
        raise PluginError(f"{where}: a derivative defines an elementwise op of one input, but the op declares "
                          f"inputs {op.inputs}{' (variadic)' if op.variadic else ''}")
    if isinstance(op.derivative, np.ufunc):
        raise PluginError(f"{where}: derivative is the ufunc {op.derivative.__name__}, which would take the op's "
                          f"output, passed as out=, for the array to write its result into; wrap it in a function "
                          f"of (x, *, out)")
    built = {"vjp": (_elementwise_vjp, _elementwise_vjp_with_attrs), "jacobian": (_elementwise_jacobian,),
             "jvp": (_elementwise_jvp,), "vjp_graph": (_elementwise_vjp_with_attrs,)}
    derived = all(isinstance(rule, functools.partial) and rule.func in functions and rule.args == (op.derivative,)
                  for rule, functions in ((getattr(op, role), functions) for role, functions in built.items()))
    if not derived:
        raise PluginError(f"{where}: its rules (vjp, jvp, jacobian, vjp_graph) were not built from its derivative, so they could "
                          f"disagree with it; define the op with Op.elementwise(name, forward, derivative, ...)")


def _check_ufunc_forward(op: Op, ufunc: np.ufunc, where: str) -> None:
    """A ufunc takes positional arguments beyond its inputs as output arrays, which it would overwrite."""
    least, most = op.arity
    if ufunc.nout != 1:
        raise PluginError(f"{where}: forward is the ufunc {ufunc.__name__}, which returns {ufunc.nout} arrays; "
                          f"a forward returns one")
    if least != ufunc.nin or most != ufunc.nin:
        declared = f"{least}" if least == most else f"{least} to {most if most is not None else 'any number of'}"
        raise PluginError(f"{where}: forward is the ufunc {ufunc.__name__}, which takes {ufunc.nin} "
                          f"input{'s' if ufunc.nin != 1 else ''}, but the op declares {declared} "
                          f"({', '.join(op.inputs)}); a ufunc would write its result into an extra argument")


def _accepts_keyword(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params and params[name].kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def _keyword_names(fn: Callable) -> frozenset[str] | None:
    """Names of the attributes a forward accepts, or None when it takes ``**kwargs`` or is opaque."""
    if isinstance(fn, np.ufunc):  # its own keywords (where, dtype, ...) are not op attributes
        return frozenset()
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def unbroadcast(grad: Any, shape: Shape) -> Any:
    """Sum a gradient over the axes that broadcasting added or stretched.

    When an input of shape ``shape`` was broadcast to the output's shape in the
    forward pass, each of its elements fed several output elements, so its
    gradient is the sum of theirs. A bias ``b`` of shape (3, 1) added to ``Wx``
    of shape (3, 4) gets the sum of the four columns of the incoming gradient.

    Examples
    --------
    >>> import numpy as np
    >>> unbroadcast(np.ones((3, 4)), (3, 1))
    array([[4.],
           [4.],
           [4.]])
    >>> unbroadcast(np.ones((2, 3)), ()).item()
    6.0

    Given a graph node, it builds the same sums as nodes (for a ``vjp_graph``):

    >>> import dagprop as dp
    >>> g = dp.Graph(); d = g.param("d", np.ones((3, 4)))
    >>> unbroadcast(d, (3, 1)).op, unbroadcast(d, (3, 1)).shape
    ('sum', (3, 1))
    """
    if getattr(grad, "shape", None) == shape:
        return grad
    if hasattr(grad, "graph"):  # a Node: the same sums, as nodes
        return _unbroadcast_node(grad, tuple(shape))
    if grad.__class__ is np.ndarray:
        add_reduce = _add_reduce
    elif is_foreign(grad):
        add_reduce = namespace(grad).sum
    else:
        grad, add_reduce = np.asarray(grad), _add_reduce
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead:
        grad = add_reduce(grad, axis=tuple(range(lead)))
    stretched = tuple([i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1])
    return add_reduce(grad, axis=stretched, keepdims=True) if stretched else grad


_add_reduce = np.add.reduce  # np.sum's own arithmetic without its Python-level dispatch


def _unbroadcast_node(grad: Any, shape: Shape) -> Any:
    lead = len(grad.shape) - len(shape)
    if lead:
        grad = grad.graph.op("sum", grad, axis=tuple(range(lead)))
    stretched = tuple([i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1])
    return grad.graph.op("sum", grad, axis=stretched, keepdims=True) if stretched else grad


def broadcast_shape(*shapes: Shape) -> Shape:
    """The shape NumPy broadcasting gives; ``ValueError`` with the shapes when they clash.

    Examples
    --------
    >>> broadcast_shape((3, 1), (1, 4))
    (3, 4)
    """
    if len(shapes) == 2 and type(shapes[0]) is tuple and (shapes[0] == shapes[1] or shapes[1] == ()) \
            and all([type(n) is int and n >= 0 for n in shapes[0]]):  # the common cases, without numpy
        return tuple(shapes[0])
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError("shapes " + ", ".join(map(str, shapes)) + " do not broadcast together") from None
