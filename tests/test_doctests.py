"""Every example in a docstring of the package runs and gives what it shows.

``capacity._api`` has its own doctest run in tests/test_api.py.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import capacity

SKIP = ("capacity.__main__", "capacity.data.record_demo", "capacity._api")
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(capacity.__path__, "capacity.") if m.name not in SKIP
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, report=True
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
