"""PyTorch modules as dagprop graphs: :func:`from_torch`, and what a torch converter is.

How a module is read
--------------------
The module is traced on the example inputs with ``torch.export.export``, which records
every call as an ATen op (``aten.linear``, ``aten.conv2d``, ``aten.layer_norm``...) with
its arguments, the shape and dtype of every value, and the path of the module that made
each call. Each call then becomes one or a few dagprop nodes:

- every input of ``forward`` becomes an input named after its parameter (``x``; the
  parts of a tuple or dict argument ``d`` are ``d_0``, ``d_key``...) holding the example
  value; it gets a gradient when the example tensor has ``requires_grad=True``;
- every trainable parameter becomes a param named by its ``state_dict`` name
  (``conv1.weight``); buffers (``bn.running_mean``), frozen parameters and tensors the
  module makes as constants become consts of the same names: dagprop gives them no
  gradient and never updates them (batch norm in training mode normalises with the
  batch's statistics but leaves the running ones as they were);
- the node computing the module's result is named ``output`` (``output_0``,
  ``output_1``... when ``forward`` returns several tensors); the node computing any other
  call is named as the traced graph names the call (``linear_1``, ``layer_norm``), and
  the other nodes its conversion needs after it (``linear_1:transpose``);
- every node goes into the scope of the module that made the call, so ``attn.q``'s
  linear and its weight are in the scope ``("attn", "q")`` and
  ``dp.render(g, collapse=["attn"])`` draws the attention as one box.

Calls whose arguments are all known at conversion time (buffers, constants, shapes,
``torch.arange``, a causal mask) are computed by torch there and then, and their
results become consts. Calls that nothing returned by ``forward`` depends on (a batch
norm's update of its running statistics) are left out. Values are float64 whatever the
module's precision; integer and boolean tensors (token ids, masks) are float64 arrays
of their values.

The route: torch.export, not torch.fx
-------------------------------------
Both tracers were tried with torch 2.13 on the three models the tests convert (an MLP,
a LeNet-like CNN with batch norm, a transformer block). ``torch.fx.symbolic_trace``
traced all three in 0.01-0.02 s, but it records whatever Python called: leaf modules
(``call_module fc1``, whose weights are to be read off the module object), methods
(``call_method transpose``), functions, and shape arithmetic as nodes of their own
(``getattr(q, "shape")``, ``getitem``, ``math.sqrt``), which would need three converter
tables and an interpreter for Python; it gives no shapes or dtypes, and cannot trace a
module that branches on a shape (``if x.shape[1] > 1``). ``torch.export.export``
records one vocabulary, ATen ops with fixed schemas, whether the model called
``nn.Linear``, ``F.linear`` or ``x @ w.T + b``, with every value's shape and dtype
(``meta["val"]``), each call's module path (``meta["nn_module_stack"]``) and the
``state_dict`` name of every parameter and buffer (its graph signature), and it runs
Python control flow on the example's shapes. Its default IR keeps ops at the level a
model is written in (``linear``, ``conv2d``, ``batch_norm``, ``layer_norm``, ``gelu``,
``scaled_dot_product_attention``, ``flatten``). It is slower: 0.3-0.4 s for the
transformer block (the conversion after it takes 0.03 s), plus 4-10 s for the first
export in a process while torch loads its compiler stack. Being faithful to what the
model computes is worth it. When the model changes in place a tensor its result
depends on (``relu_``, ``h += 1``), the program is first made functional with
``run_decompositions({})`` (another 1-2 s), so converters only ever see functional ops.

Converters
----------
Each torch op is turned into dagprop nodes by a *converter*, a function a plugin
returns from the ``dagprop_torch_converters`` hook as ``{op name: converter}``. The op
name is the ATen op without its overload: ``"aten.linear"``, ``"aten.add"`` (for
``aten.add.Tensor`` and ``aten.add.Scalar``), ``"aten.cumsum"``; ops of other
namespaces likewise (``"mylib.rotate"``). The built-in converters,
:mod:`dagprop_plugins.torch_converters`, are registered through that same hook. A
converter is::

    def convert(b, *args, **kwargs) -> Node | tuple

``b``
    A :class:`Builder`: the graph to build in (``b.op(op_name, *args, **attrs)``,
    ``b.const(value)``, or node arithmetic such as ``x * 2``), the call's output shape
    and the dtypes of its arguments, and ``b.static(value)`` for an argument whose
    value must be known now.
``args``, ``kwargs``
    The call's arguments as the traced program has them, in the ATen schema's order
    (``aten.linear(input, weight, bias=None)``): a tensor is a :class:`dagprop.Node`, a
    list of tensors a list of nodes, anything else (ints, floats, bools, lists of
    ints, strings, None, ``torch.dtype``) arrives as it is. Arguments left at their
    default are usually left out, so give the parameters the schema's defaults.
returns
    The node holding the call's result: a new node, or one of the argument nodes for
    a call that changes no value (``contiguous``). For an op with several results, a
    tuple with one node per result (None for one the converter does not compute;
    using it is then an error).

A converter that cannot handle some arguments (``ceil_mode=True``, indices computed by
the model) raises ``NotImplementedError`` with a sentence saying so. A call whose op has
no converter, whose converter raises ``NotImplementedError``, or whose converter needs
a dagprop op no plugin provides does not stop the conversion: :func:`from_torch` goes on
and then raises one :class:`~dagprop.UnsupportedOpsError` listing every such op, how
often it is called and why. Any other exception from a converter is a bug in it, raised
as a :class:`~dagprop.PluginError` naming the call, its module and the converter.

>>> import torch
>>> import dagprop as dp
>>> import numpy as np
>>> def swapped(ndim, dim):                      # the axes with ``dim`` and the last one swapped
...     axes = list(range(ndim)); axes[dim], axes[-1] = axes[-1], axes[dim]
...     return tuple(axes)
>>> def convert_cumsum(b, x, dim, dtype=None):   # cumsum: a matmul with a triangle of ones
...     n, axes = x.shape[dim], swapped(x.ndim, dim)
...     summed = b.op("matmul", b.op("transpose", x, axes=axes), b.const(np.triu(np.ones((n, n)))))
...     return b.op("transpose", summed, axes=axes)
>>> class Cumsum:
...     @dp.hookimpl
...     def dagprop_torch_converters(self):
...         return {"aten.cumsum": convert_cumsum}
>>> class Running(torch.nn.Module):
...     def forward(self, x):
...         return x.cumsum(1)
>>> g = dp.from_torch(Running(), torch.tensor([[1.0, 2.0, 3.0]]), plugins=[Cumsum()])
>>> g.forward(); g["output"].value
array([[1., 3., 6.]])
"""

from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from .table import converter_table
from .torch_builder import Builder, op_name, traced_shapes
from .torch_program import as_array, example_leaves, export_program, import_torch, module_scope, needed_values
from ..errors import DagpropError, PluginError, UnknownOpError, UnsupportedOpsError
from ..graph import Graph, Node

if TYPE_CHECKING:
    from torch.export import ExportedProgram
    from torch.fx import Node as TorchNode

    from ..registry import Registry

__all__ = ["from_torch", "converters", "op_name", "Builder"]

Converter = Callable[..., Any]
MAX_REASONS = 3  # distinct reasons the error message shows per unsupported op


# -- converters ------------------------------------------------------------------------------------


def converters(registry: Registry | None = None) -> dict[str, Converter]:
    """``{torch op name: converter}`` from every plugin implementing ``dagprop_torch_converters``.

    Parameters
    ----------
    registry : Registry, optional
        Whose plugins to ask (default: the one ``dagprop.Graph()`` uses).

    Raises
    ------
    PluginError
        When a plugin's hook fails or returns something other than ``{str: callable}``,
        or two plugins convert the same op (naming both).

    Examples
    --------
    >>> table = converters()
    >>> table["aten.linear"].__module__
    'dagprop_plugins.torch_converters'
    """
    return converter_table(registry, "dagprop_torch_converters", "torch op names such as 'aten.cumsum'")


# -- one conversion --------------------------------------------------------------------------------


@dataclass
class _Problem:
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)


class _Conversion:
    """One module's conversion: the traced program, the graph being built, and what each call became.

    Built by :func:`from_torch`; the nodes are first built in a working graph, where
    converters may build freely, and then copied into the graph returned, under
    the names the module docstring describes, leaving out what the outputs do not need.
    """

    def __init__(self, program: ExportedProgram, module: Any, example_inputs: tuple, graph: Graph,
                 table: Mapping[str, Converter]) -> None:
        self.torch = import_torch()
        self.program = program
        self.module = module
        self.example_inputs = example_inputs
        self.graph = graph
        self.table = table
        self.values: dict[str, Any] = {}        # traced value name -> Node, tuple of them, or a Python value
        self.known: dict[str, Any] = {}         # traced value name -> torch value known now (buffers, folded calls)
        self.const_names: dict[str, tuple[str, tuple[str, ...]]] = {}  # known value -> (node name, scope)
        self.made_by: dict[int, str] = {}       # working node index -> the call whose converter built it
        self.problems: dict[str, _Problem] = {}

    # -- leaves --

    def add_leaves(self) -> None:
        kinds = self.torch.export.graph_signature.InputKind
        trainable = {name for name, p in self.module.named_parameters(remove_duplicate=False) if p.requires_grad}
        user_values = iter(example_leaves(self.example_inputs))
        for spec in self.program.graph_signature.input_specs:
            name = spec.arg.name
            if spec.kind == kinds.USER_INPUT:
                value = next(user_values, None)
                if isinstance(value, self.torch.Tensor):
                    float_input = value.is_floating_point()
                    self.values[name] = self.graph.input(name, as_array(value),
                                                         requires_grad=bool(value.requires_grad and float_input))
                else:
                    self.known[name] = value
            elif spec.kind in (kinds.PARAMETER, kinds.BUFFER, kinds.CONSTANT_TENSOR):
                tensor = self.program.state_dict.get(spec.target)
                if tensor is None:
                    tensor = self.program.constants[spec.target]
                scope = tuple(spec.target.split(".")[:-1])
                if spec.kind == kinds.PARAMETER and spec.target in trainable:
                    with _in_scope(self.graph, scope):
                        self.values[name] = self.graph.param(spec.target, as_array(tensor))
                else:
                    self.known[name] = tensor
                    self.const_names[name] = (spec.target, scope)
            else:
                raise DagpropError(f"from_torch cannot convert a module whose exported program takes a "
                                   f"{spec.kind.name} input ({name!r}); it converts tensors, parameters and buffers")

    # -- calls --

    def convert_all(self) -> None:
        needed = needed_values(self.program)
        for fx_node in self.program.graph.nodes:
            if fx_node.op != "call_function" or fx_node.name not in needed:
                continue
            if self.fold(fx_node):
                continue
            if fx_node.target is operator.getitem:
                self.pick(fx_node)
            else:
                self.convert(fx_node)

    def fold(self, fx_node: TorchNode) -> bool:
        """Compute a call whose arguments are all known now with torch itself; False if they are not."""
        torch = self.torch
        if any(arg.name not in self.known for arg in fx_node.all_input_nodes):
            return False
        if torch.Tag.nondeterministic_seeded in getattr(fx_node.target, "tags", ()):
            return False
        args, kwargs = torch.fx.node.map_arg((fx_node.args, fx_node.kwargs), lambda n: self.known[n.name])
        target: Any = fx_node.target
        try:
            with torch.no_grad():
                self.known[fx_node.name] = target(*args, **kwargs)
        except Exception:  # torch cannot run it outside the trace: convert it like any other call
            return False
        self.const_names[fx_node.name] = (fx_node.name, module_scope(fx_node))
        return True

    def pick(self, fx_node: TorchNode) -> None:
        """``getitem`` on the results of an op with several: take the one asked for."""
        source: Any = fx_node.args[0]
        index: Any = fx_node.args[1]
        results = self.values[source.name]
        picked = results[index] if isinstance(results, (tuple, list)) and -len(results) <= index < len(results) \
            else None
        if picked is None and not isinstance(results, _Failed):
            self.record(op_name(source.target), f"result {index} is used, but its converter does not compute it",
                        source)
        self.values[fx_node.name] = picked if picked is not None else self.placeholder(fx_node)

    def argument(self, fx_node: TorchNode) -> Any:
        if fx_node.name in self.values:
            return self.values[fx_node.name]
        value = self.known[fx_node.name]
        if not isinstance(value, self.torch.Tensor):
            return value
        name, scope = self.const_names[fx_node.name]
        with _in_scope(self.graph, scope):
            node = self.graph.const(as_array(value), name=name if name not in self.graph else None)
        self.values[fx_node.name] = node
        return node

    def convert(self, fx_node: TorchNode) -> None:
        torch = self.torch
        name = op_name(fx_node.target)
        convert = self.table.get(name)
        if convert is None:
            self.record(name, None, fx_node)
            self.values[fx_node.name] = self.placeholder(fx_node)
            return
        args, kwargs = torch.fx.node.map_arg((fx_node.args, fx_node.kwargs), self.argument)
        dtypes = tuple(getattr(a.meta.get("val"), "dtype", None) if isinstance(a, torch.fx.Node) else None
                       for a in fx_node.args)
        scope = module_scope(fx_node)
        builder = Builder(self.graph, fx_node, ".".join(scope), dtypes)
        start = len(self.graph)
        try:
            with _in_scope(self.graph, scope):
                result = convert(builder, *args, **kwargs)
            result = self.checked(result, convert, fx_node)
        except NotImplementedError as exc:
            self.record(name, str(exc) or "its converter does not handle these arguments", fx_node)
            result = self.placeholder(fx_node)
        except UnknownOpError as exc:
            self.record(name, f"its converter needs a dagprop op: {exc}", fx_node)
            result = self.placeholder(fx_node)
        except Exception as exc:
            raise PluginError(f"the converter {_qualified(convert)} of {name} failed on the call "
                              f"{fx_node.name!r} (module {'.'.join(scope) or 'the root'!r}, arguments "
                              f"{_describe(args)}): {type(exc).__name__}: {exc}") from exc
        for index in range(start, len(self.graph)):
            self.made_by[index] = fx_node.name
        self.values[fx_node.name] = result

    def checked(self, result: Any, convert: Converter, fx_node: TorchNode) -> Any:
        if isinstance(result, np.ndarray):
            return self.graph.const(result.astype(np.float64))
        if isinstance(result, Node) and result.graph is self.graph:
            return result
        if isinstance(result, (tuple, list)) and all(r is None or (isinstance(r, Node) and r.graph is self.graph)
                                                     for r in result):
            return tuple(result)
        if isinstance(result, (int, float)) and not isinstance(fx_node.meta.get("val"), self.torch.Tensor):
            return result
        raise PluginError(f"the converter {_qualified(convert)} of {op_name(fx_node.target)} returned {result!r} "
                          f"for the call {fx_node.name!r}; it must return a node of the graph it was given "
                          f"(b.graph), or a tuple of them for an op with several results")

    def record(self, name: str, reason: str | None, fx_node: TorchNode) -> None:
        problem = self.problems.setdefault(name, _Problem())
        problem.count += 1
        if reason is not None:
            problem.reasons[reason] = problem.reasons.get(reason, 0) + 1
        module = ".".join(module_scope(fx_node))
        if module not in problem.modules:
            problem.modules.append(module)

    def placeholder(self, fx_node: TorchNode) -> Any:
        """Zeros of the call's shape, so that the calls after an unconvertible one are still tried."""
        shapes = traced_shapes(fx_node.meta.get("val"))
        made = _zeros(self.graph, shapes)
        return _Failed(made) if isinstance(made, tuple) else made

    # -- the result --

    def outputs(self) -> list[Node]:
        kinds = self.torch.export.graph_signature.OutputKind
        specs = [s for s in self.program.graph_signature.output_specs if s.kind == kinds.USER_OUTPUT]
        found = []
        for spec in specs:
            name = getattr(spec.arg, "name", None)
            value = self.argument_named(name) if name is not None else None
            if not isinstance(value, Node):
                raise DagpropError(f"the module returns {getattr(spec.arg, 'value', value)!r} among its results; "
                                   f"from_torch converts modules whose forward returns tensors")
            found.append(value)
        return found

    def argument_named(self, name: str) -> Any:
        fx_node = next(n for n in self.program.graph.nodes if n.name == name)
        return self.argument(fx_node)

    def raise_problems(self) -> None:
        if not self.problems:
            return
        raise UnsupportedOpsError(_unsupported_message(self.problems),
                                  ops={name: p.count for name, p in self.problems.items()})

    def finish(self, outputs: list[Node]) -> Graph:
        """The graph returned: the working graph's needed nodes under their final names."""
        graph = self.graph
        names = ["output"] if len(outputs) == 1 else [f"output_{k}" for k in range(len(outputs))]
        claimed: set[int] = set()
        for k, node in enumerate(outputs):
            if node.op_def is None or node.index in claimed:  # an input, a param or another output as it is
                with _in_scope(graph, node.scope):
                    node = outputs[k] = (graph.op("reshape", node, shape=tuple(node.shape)) if node.shape is not None
                                         else graph.op("getitem", node, index=Ellipsis))
                self.made_by[node.index] = names[k]
            claimed.add(node.index)
        needed = graph.plan.ancestors(tuple(node.index for node in outputs)) | {n.index for n in graph if n.kind == "input" and n.index not in self.made_by}
        final_names = self.final_names(outputs, names, needed)
        result = Graph()
        result.registry = graph.registry
        copies: dict[int, Node] = {}
        for node in graph:
            if node.index not in needed:
                continue
            name = final_names[node.index]
            with _in_scope(result, node.scope):
                if node.kind == "input":
                    made = result.input(name, node.value, requires_grad=node.requires_grad)
                elif node.kind == "param":
                    made = result.param(name, node.value)
                elif node.kind == "const":
                    made = result.const(node.value, name=name)
                else:
                    made = result.op(str(node.op), *(copies[i.index] for i in node.inputs), name=name, **node.attrs)
            copies[node.index] = made
        return result

    def final_names(self, outputs: list[Node], output_names: list[str], needed: set[int]) -> dict[int, str]:
        graph = self.graph
        names: dict[int, str] = {}
        used: set[str] = set()

        def claim(index: int, stem: str) -> None:
            name, k = stem, 1
            while name in used:
                k += 1
                name = f"{stem}_{k}"
            names[index] = name
            used.add(name)

        for node in graph:  # inputs, params and buffers keep the names they were made with
            if node.index in needed and node.op_def is None and node.index not in self.made_by:
                claim(node.index, node.name)
        for node, name in zip(outputs, output_names):
            claim(node.index, name)
        for traced, value in self.values.items():  # each call's result: the traced program's name for it
            if isinstance(value, Node) and value.index in needed and value.index not in names:
                claim(value.index, traced)
        for node in graph:
            if node.index in needed and node.index not in names:
                claim(node.index, f"{self.made_by.get(node.index, node.name)}:{node.op or 'const'}")
        return names


class _Failed(tuple):
    """The placeholders standing for the results of a call that could not be converted."""


def _zeros(graph: Graph, shapes: Any) -> Any:
    if shapes is None:
        return None
    if all(isinstance(size, int) for size in shapes):
        return graph.input(f"unconverted_{len(graph)}", np.zeros(shapes))
    return tuple(_zeros(graph, s) for s in shapes)


@contextlib.contextmanager
def _in_scope(graph: Graph, scope: tuple[str, ...]) -> Iterator[None]:
    if not scope:
        yield
        return
    with graph.scope("/".join(part.replace("/", "_") for part in scope)):
        yield


def _qualified(convert: Converter) -> str:
    return f"{getattr(convert, '__module__', '?')}.{getattr(convert, '__qualname__', repr(convert))}"


def _describe(args: Iterable[Any]) -> str:
    shown = [f"node {a.name} {tuple(a.shape) if a.shape is not None else ''}".rstrip() if isinstance(a, Node)
             else repr(a) for a in args]
    return "(" + ", ".join(shown) + ")"


def _unsupported_message(problems: Mapping[str, _Problem]) -> str:
    calls = sum(p.count for p in problems.values())
    lines = [f"from_torch cannot convert {len(problems)} torch op{'s' if len(problems) != 1 else ''} "
             f"({calls} call{'s' if calls != 1 else ''}); every one is listed:"]
    for name, problem in sorted(problems.items(), key=lambda item: (-item[1].count, item[0])):
        why = "; ".join(list(problem.reasons)[:MAX_REASONS]) or "no converter"
        where = ", ".join("the root module" if m == "" else m for m in problem.modules)
        lines.append(f"  {name}: {problem.count} call{'s' if problem.count != 1 else ''} in {where}: {why}")
    example = f"{{{min(problems)!r}: convert}}"
    lines += [
        ("Add converters with a plugin implementing the dagprop_torch_converters hook (README section "
         "'Models from PyTorch and ONNX'; the contract is in dagprop.importers.torch), for example:"),
        "    def convert(b, x, *args, **kwargs):   # x: a dagprop Node; b.op('exp', x) builds a node",
        "        return ...                          # the node holding the call's result",
        "    class Converters:",
        "        @dp.hookimpl",
        f"        def dagprop_torch_converters(self): return {example}",
        "and pass it: dp.from_torch(module, *inputs, plugins=[Converters()]), or dp.register_plugin(Converters()).",
    ]
    return "\n".join(lines)


# -- the entry point -------------------------------------------------------------------------------


def from_torch(module: Any, *example_inputs: Any, plugins: Iterable[Any] | None = None) -> Graph:
    """A PyTorch module as a dagprop graph of the same computation, ready to run forward and backward.

    The module is traced with ``torch.export.export`` on ``example_inputs``, in the
    mode it is in (call ``module.eval()`` first for dropout off and batch norm with
    its running statistics), and every call it makes becomes dagprop nodes, through
    the converters plugins give (see :mod:`dagprop.importers.torch`).

    Parameters
    ----------
    module : torch.nn.Module
        The model; it is not changed.
    *example_inputs : torch.Tensor
        The arguments of ``module.forward`` (tuples, lists and dicts of tensors are
        taken apart). Their values become the inputs' values; shapes are fixed to
        theirs. A float tensor with ``requires_grad=True`` gives its input a gradient.
    plugins : iterable, optional
        Extra plugins for the graph: their ops, and their ``dagprop_torch_converters``
        for torch ops dagprop does not convert (a second converter for an op dagprop
        already converts is an error naming both).

    Returns
    -------
    Graph
        Inputs named after ``forward``'s parameters; trainable parameters as params
        named by their ``state_dict`` names (``fc1.weight``); buffers, frozen
        parameters and constants as consts of their names; the result as the node
        ``output`` (``output_0``, ``output_1``... for several); every node in the scope
        of the module that made it (``("attn", "q")``). Not run yet: call
        ``forward``, and ``backward`` from a scalar built on ``g["output"]``.

    Raises
    ------
    UnsupportedOpsError
        Some torch ops cannot be converted: every one is listed with how often the
        model calls it and why (no converter, arguments its converter does not
        handle, a dagprop op no plugin provides), with how to add a converter.
    PluginError
        A converter failed or returned something other than nodes; the message names
        the call, its module and the converter.
    DagpropError
        torch is not installed, or the module takes or returns something other than
        tensors. Errors of ``torch.export`` itself (a model it cannot trace) are
        raised as they are, with a note.

    See Also
    --------
    dagprop.from_onnx : an ONNX file, from any framework.

    Notes
    -----
    Built-in converters (:mod:`dagprop_plugins.torch_converters`) cover the layers of
    common models: linear, conv1d/conv2d, max and average pooling, batch, layer and
    group norm, embedding, dropout, scaled dot-product attention; elementwise
    arithmetic and activations (relu, gelu, silu, tanh, sigmoid, softmax, log_softmax,
    ...); reductions (sum, mean, max, min, var, std, logsumexp); shaping (view,
    reshape, flatten, permute, transpose, squeeze, unsqueeze, expand, cat, stack,
    split, chunk, slicing, indexing with constant indices, pad); mse and cross-entropy
    losses. ``dagprop ops`` lists the dagprop ops; ``converters()`` the torch ops.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> import dagprop as dp
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> class MLP(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc2(torch.tanh(self.fc1(x)))
    >>> model, x = MLP().double(), torch.randn(5, 3, dtype=torch.float64)
    >>> g = dp.from_torch(model, x)
    >>> sorted(n.name for n in g.params), g["fc1.weight"].scope, g["output"].shape
    (['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight'], ('fc1',), (5, 2))
    >>> L = g["output"].sum()
    >>> g.forward(); g.backward(L)
    >>> model(x).sum().backward()
    >>> bool(np.allclose(g["output"].value, model(x).detach().numpy()))
    True
    >>> bool(np.allclose(g["fc1.weight"].grad, model.fc1.weight.grad.numpy()))
    True
    """
    torch = import_torch()
    graph = Graph(plugins=plugins)
    table = converters(graph.registry)
    program = export_program(torch, module, example_inputs)
    conversion = _Conversion(program, module, example_inputs, graph, table)
    conversion.add_leaves()
    conversion.convert_all()
    conversion.raise_problems()
    outputs = conversion.outputs()
    return conversion.finish(outputs)
