"""Shared fixtures and helpers for dagprop's tests."""

from __future__ import annotations

import numpy as np
import pytest

import dagprop as dp


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def graph() -> dp.Graph:
    return dp.Graph()
