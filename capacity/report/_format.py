"""Numbers as the report shows them: one formatter per unit, shared by HTML, Markdown and the
console, so the same value reads the same everywhere (and tests can parse it back).

Every value keeps four significant digits in a human unit: cores for CPU, binary units
(KiB, MiB, GiB) for bytes, MB/s (10^6 bytes per second) for rates, percent for shares and
probabilities. ``None`` is shown as ``"-"``.
"""

from __future__ import annotations

import math

from .._columns import CPU, DISK_USAGE, MEMORY

__all__ = [
    "BYTE_RESOURCES",
    "format_count",
    "format_percent",
    "format_probability",
    "format_value",
    "unit_of",
]

#: resource columns measured in bytes (not bytes per second)
BYTE_RESOURCES: frozenset[str] = frozenset({MEMORY, DISK_USAGE})

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _sig(value: float) -> str:
    """Four significant digits, never in exponent notation below 1e15."""
    if value == 0:
        return "0"
    digits = max(4 - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def unit_of(resource: str) -> str:
    """The display unit of a resource column (``"cores"``, ``"bytes"``, ``"MB/s"``)."""
    if resource == CPU:
        return "cores"
    if resource in BYTE_RESOURCES:
        return "bytes"
    return "MB/s"


def format_value(resource: str | None, value: float | None) -> str:
    """A value of ``resource`` (in its column's unit) in a human unit, four significant digits.

    Examples
    --------
    >>> format_value("cpu_cores", 0.308643)
    '0.3086 cores'
    >>> format_value("memory_working_set_bytes", 64.5 * 1024**2)
    '64.5 MiB'
    >>> format_value("net_rx_bytes_per_second", 1.25e9)
    '1250 MB/s'
    """
    if value is None or resource is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if resource == CPU:
        return f"{_sig(value)} cores"
    if resource in BYTE_RESOURCES:
        v = float(value)
        for unit in _BINARY:
            if abs(v) < 1024 or unit == _BINARY[-1]:
                return f"{_sig(v)} {unit}"
            v /= 1024
    return f"{_sig(value / 1e6)} MB/s"


def format_percent(share: float | None) -> str:
    """A share (0.2 = 20 %) as ``"20 %"`` with four significant digits."""
    if share is None:
        return "-"
    return f"{_sig(share * 100)} %"


def format_probability(p: float | None) -> str:
    """A probability as a percentage; tiny ones keep their significant digits."""
    return format_percent(p)


def format_count(n: int | None) -> str:
    """A container count, ``"-"`` when undefined."""
    return "-" if n is None else str(int(n))
