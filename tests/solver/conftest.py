"""Fixtures of the solver tests (profiles with known numbers live in capacity.solver._testing)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
