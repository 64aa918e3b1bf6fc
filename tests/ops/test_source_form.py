"""SourceForm, an op's optional source for dp.codegen: refused when malformed, with a message saying why."""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp
from dagprop.op import SourceForm


def _double(x):
    return 2.0 * x


def _double_vjp(g, x, *, out):
    return (2.0 * g,)


def _double_derivative(x, *, out):
    return 2.0


def _double_source(call):
    return f"2.0 * {call.inputs[0]}"


def _add_vjp(g, a, b, *, out):
    return g, g


def test_every_built_in_op_but_two_has_a_source_form():
    registry = dp.Graph().registry
    assert {op.name for op in registry if op.source is None} == {"attention", "cross_entropy"}


def test_a_rule_must_be_callable():
    with pytest.raises(dp.PluginError, match="SourceForm: forward must be callable or None, got '2 \\* x'"):
        SourceForm(forward="2 * x")


def test_vjp_and_derivative_are_one_or_the_other():
    with pytest.raises(dp.PluginError, match="give vjp or derivative, not both"):
        SourceForm(vjp=_double_source, derivative=_double_source)


def test_source_must_be_a_source_form():
    with pytest.raises(dp.PluginError, match="op 'double': source must be a dagprop.op.SourceForm or None"):
        dp.Op("double", forward=_double, vjp=_double_vjp, source=_double_source)


def test_a_derivative_is_for_an_op_of_one_input():
    with pytest.raises(dp.PluginError, match="a source form with a derivative is for an op of one input"):
        dp.Op("plus", forward=np.add, vjp=_add_vjp, inputs=("a", "b"),
              source=SourceForm(derivative=_double_source))


def test_an_elementwise_op_takes_a_source_form():
    form = SourceForm(forward=_double_source, derivative=_double_source)
    assert dp.Op.elementwise("double", _double, _double_derivative, source=form).source is form
