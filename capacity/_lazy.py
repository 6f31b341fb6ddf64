"""Import a package's public names on first use (PEP 562), so ``capacity --help`` is fast.

A package's ``__init__.py`` declares which private module defines each public name and calls
:func:`attach`; the names are imported when first read (``capacity.fit``, ``from
capacity.solver import plan``), not when the package is imported. ``capacity --version``
therefore does not pay for pandas, scipy and matplotlib. Type checkers see the names through
an ``if TYPE_CHECKING:`` import block beside the declaration.

Trap: an error raised while importing a lazy module surfaces at the first use of a name, not
at ``import capacity``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def attach(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the module
    (relative, e.g. ``"._api"``) that defines it; ``namespace`` is the package's ``globals()``,
    where a name is cached once imported."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:  # a submodule not imported yet, a typo: the usual error
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
