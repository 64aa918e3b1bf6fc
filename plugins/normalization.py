"""The normalization family (being written)."""

from __future__ import annotations

import dagprop as dp
from dagprop import Op


@dp.hookimpl
def dagprop_ops() -> list[Op]:
    """This family's ops."""
    return []
