"""Numbers as the report shows them: the shared formatters of :mod:`capacity._units`.

One formatter per unit, shared by HTML, Markdown, the console and the notebook displays, so the
same value reads the same everywhere (and tests can parse it back).
"""

from __future__ import annotations

from .._units import (
    BYTE_RESOURCES,
    format_count,
    format_percent,
    format_probability,
    format_value,
    unit_of,
)

__all__ = [
    "BYTE_RESOURCES",
    "format_count",
    "format_percent",
    "format_probability",
    "format_value",
    "unit_of",
]
