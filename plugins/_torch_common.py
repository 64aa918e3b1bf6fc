"""Helpers the torch converter modules share: torch's arguments as dagprop's attributes.
Private to dagprop_plugins; not part of the public API."""

from __future__ import annotations


def swap_axes(ndim, first, second):
    """The permutation that swaps two axes, for dagprop's transpose."""
    axes = list(range(ndim))
    axes[first], axes[second] = axes[second], axes[first]
    return tuple(axes)


def is_bool(dtype):
    return dtype is not None and str(dtype) == "torch.bool"


def traced_dtype(traced):
    """The dtype of a value of the traced program (None for an argument that is not one)."""
    return getattr(getattr(traced, "meta", {}).get("val"), "dtype", None)


def scaled(b, value, factor):
    return value if factor == 1 else b.op("mul", value, factor)
