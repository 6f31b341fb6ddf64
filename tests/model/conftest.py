"""Fixtures of the model tests."""

from __future__ import annotations

import pytest
from _samples_builder import samples_table


@pytest.fixture
def make_samples():
    """The :func:`samples_table` builder, as a fixture."""
    return samples_table
