"""Parsing and formatting of durations and byte sizes given by people.

Durations: ``"10s"``, ``"500ms"``, ``"5m"``, ``"2h"``, ``"14d"``, or a bare number of seconds.
Sizes: ``"512MiB"``, ``"32GiB"``, ``"400GB"``, ``"1.5TB"``, or a bare number of bytes.
Binary suffixes (KiB, MiB, ..., or Ki, Mi, ... as Kubernetes writes them) are powers of 1024,
decimal ones (kB, MB, GB, TB, upper-case B) powers of 1000. A bare prefix (``32G``, ``512m``)
or a lower-case ``b`` (``32gb``, ``512Mb``) is refused as ambiguous: Docker (``docker run -m
32g``, Compose) reads ``g`` and ``gb`` as GiB, Kubernetes reads ``G`` as 10^9, and ``Mb`` is
a megabit; ``32G`` once meant 32e9 bytes here while the same ``32g`` in a Compose file meant
32 GiB. Compose files keep Docker's binary meaning (:mod:`capacity.solver._compose`).

Numbers as people read them (:func:`format_value` and friends) live here too, below every
pipeline stage, so the model's and the solver's notebook displays, the report and the console
show the same value the same way (and tests can parse it back): four significant digits in a
human unit: cores for CPU, binary units (KiB, MiB, GiB) for bytes, MB/s (10^6 bytes per
second) for rates, percent for shares and probabilities; ``None`` is shown as ``"-"``.
"""

from __future__ import annotations

import math
import re

from ._columns import CPU, DISK_READ, DISK_USAGE, DISK_WRITE, MEMORY, NET_RX, NET_TX
from ._errors import InvalidParameter

__all__ = [
    "BYTE_RESOURCES",
    "MAX_DURATION_S",
    "MAX_DURATION_TEXT",
    "RESOURCE_NAMES",
    "format_bytes",
    "format_count",
    "format_duration",
    "format_percent",
    "format_probability",
    "format_value",
    "parse_bytes",
    "parse_duration",
    "resource_name",
    "unit_of",
]

_DURATION_UNITS_S = {
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}

#: the longest duration any setting takes (100 years, in seconds): beyond it no history, horizon
#: or collection speaks for anything, and ``--horizon 1e308`` was taken silently
MAX_DURATION_S = 100 * 365.25 * 86400.0
#: how the bound is said in error messages
MAX_DURATION_TEXT = "at most 100 years (3.156e9 s)"

_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}

_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_duration(text: str | float | int, *, name: str = "duration") -> float:
    """Return a duration in seconds from ``"10s"``, ``"5m"``, ``"2h"``, ``"14d"`` or a number.

    Raises :class:`InvalidParameter` for an unknown unit, a negative or a non-finite value,
    a value over :data:`MAX_DURATION_S` (100 years: ``1e308`` is no duration), and for
    True/False, which Python counts as 1 and 0 (``cpus = true`` in a TOML file).
    """
    if isinstance(text, bool):
        raise InvalidParameter(name, "capacity", "a duration such as 500ms, 10s, 5m, 2h or 14d",
                               text)
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _NUMBER_UNIT.match(str(text))
        unit = match.group(2).lower() if match else None
        if match is None or (unit and unit not in _DURATION_UNITS_S):
            raise InvalidParameter(
                name, "capacity", "a duration such as 500ms, 10s, 5m, 2h or 14d", text
            )
        value = float(match.group(1)) * (_DURATION_UNITS_S[unit] if unit else 1.0)
    if not math.isfinite(value) or value < 0:
        raise InvalidParameter(name, "capacity", "a finite duration >= 0", text)
    if value > MAX_DURATION_S:
        raise InvalidParameter(name, "capacity",
                               f"a duration of {MAX_DURATION_TEXT} (a planning horizon "
                               "past that is not a plan)", text)
    return value


def parse_bytes(text: str | float | int, *, name: str = "size") -> float:
    """Return a size in bytes from ``"512MiB"``, ``"32GiB"``, ``"400GB"`` or a number (not
    True/False, which Python counts as 1 and 0).

    ``32G``, ``32g``, ``32gb`` are refused as ambiguous (module docstring): GiB to Docker,
    10^9 to Kubernetes. ``32GiB`` (or ``32Gi``) is 32 x 2^30 bytes, ``32GB`` 32 x 10^9.
    """
    if isinstance(text, bool):
        raise InvalidParameter(name, "capacity", "a size such as 512MiB, 32GiB or 400GB", text)
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _NUMBER_UNIT.match(str(text))
        given = match.group(2) if match else ""
        unit = given.lower() if match else None
        if match is not None and (unit in ("k", "m", "g", "t") or (
                unit in ("kb", "mb", "gb", "tb") and given.endswith("b"))):
            number, prefix = match.group(1), given[0].upper()
            raise InvalidParameter(
                name, "capacity",
                f"a size that says binary or decimal ({number}{given} is {number} "
                f"{prefix}iB to Docker, {number} x 10^{3 * 'KMGT'.index(prefix) + 3} bytes "
                f"to Kubernetes{', and a lower-case b is bits' if len(given) > 1 else ''}): "
                f"give {number}{prefix}iB (binary) or {number}{prefix}B (decimal)", text)
        if (match is not None and unit in ("kib", "mib", "gib", "tib")
                and given.endswith("b")):
            number = match.group(1)
            raise InvalidParameter(
                name, "capacity", f"a size in bytes ({number}{given}: a lower-case b is "
                f"bits): give {number}{given[:-1]}B", text)
        if match is None or unit not in _BYTE_UNITS:
            raise InvalidParameter(
                name, "capacity", "a size such as 512MiB, 32GiB or 400GB", text
            )
        value = float(match.group(1)) * _BYTE_UNITS[unit]
    if not math.isfinite(value) or value < 0:
        raise InvalidParameter(name, "capacity", "a finite size >= 0", text)
    return value


def format_bytes(n_bytes: float) -> str:
    """Format a byte count with a binary suffix, e.g. ``"48.0 MiB"``."""
    if not math.isfinite(n_bytes):
        return str(n_bytes)
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Format seconds as ``"10s"``, ``"5m"``, ``"2h30m"``."""
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m}m{s:02d}s" if s else f"{m}m"
    h, rest = divmod(round(seconds), 3600)
    m = rest // 60
    return f"{h}h{m:02d}m" if m else f"{h}h"


#: resource columns measured in bytes (not bytes per second)
BYTE_RESOURCES: frozenset[str] = frozenset({MEMORY, DISK_USAGE})

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _sig(value: float, *, trim: bool = False) -> str:
    """Four significant digits, trailing zeros kept, never in exponent notation below 1e15.

    Every figure of a column then carries the same precision: ``-68.00`` beside ``-68.03``
    (not ``-68``, which reads as two digits), ``100.0`` beside ``98.88``, ``0.3000`` beside
    ``0.3003``; a value that rounds up to the next power of ten keeps four digits
    (``99.996`` -> ``100.0``, not ``100.00``). Zero is ``"0"``; integers of four digits or
    more are shown whole (``1146``, ``65533``). ``trim`` drops the trailing zeros, for a
    figure in a sentence rather than in a column (``"2 cores usable"``, ``"below 20 %"``).

    >>> _sig(-68.0), _sig(-68.031), _sig(99.996), _sig(0.0003187), _sig(2.0), _sig(1146.4)
    ('-68.00', '-68.03', '100.0', '0.0003187', '2.000', '1146')
    >>> _sig(-68.0, trim=True), _sig(0.25, trim=True)
    ('-68', '0.25')
    """
    if value == 0:
        return "0"
    rounded = _round4(value)
    if not math.isfinite(rounded):  # a ratio over a huge capacity (cpus=1e308): no digits
        return str(rounded)
    digits = max(4 - 1 - math.floor(math.log10(abs(rounded))), 0)
    text = f"{rounded:.{digits}f}"
    return text.rstrip("0").rstrip(".") if trim and digits else text


def _round4(value: float) -> float:
    """``value`` rounded to four significant digits (``99.996`` -> ``100.0``)."""
    return float(f"{value:.3e}")


def unit_of(resource: str) -> str:
    """The display unit of a resource column (``"cores"``, ``"bytes"``, ``"count"``, ``"MB/s"``).

    >>> unit_of("pids_count"), unit_of("addresses_count[bridge]")
    ('count', 'count')
    """
    if resource == CPU:
        return "cores"
    if resource in BYTE_RESOURCES or resource.split("[", 1)[0] in BYTE_RESOURCES:
        return "bytes"
    if "_count" in resource:  # structural limits: pids_count, addresses_count[bridge], ...
        return "count"
    return "MB/s"


def format_value(resource: str | None, value: float | None, *, trim: bool = False) -> str:
    """A value of ``resource`` (in its column's unit) in a human unit, four significant digits.

    Trailing zeros are kept, so every number of a table column shows the same precision
    (``64.50 MiB`` beside ``67.85 MiB``); ``trim=True`` drops them for a figure in a sentence.

    Examples
    --------
    >>> format_value("cpu_cores", 0.308643)
    '0.3086 cores'
    >>> format_value("memory_working_set_bytes", 64.5 * 1024**2)
    '64.50 MiB'
    >>> format_value("cpu_cores", 2.0), format_value("cpu_cores", 2.0, trim=True)
    ('2.000 cores', '2 cores')
    >>> format_value("net_rx_bytes_per_second", 1.25e9)
    '1250 MB/s'
    """
    if value is None or resource is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if resource == CPU:
        return f"{_sig(value, trim=trim)} cores"
    if "_count" in resource:  # structural limits: pids_count, addresses_count[bridge], ...
        return f"{value:,.0f}"
    if resource in BYTE_RESOURCES or resource.split("[", 1)[0] in BYTE_RESOURCES:
        v = float(value)
        for unit in _BINARY:
            # compared as shown: 1023.99 MiB is 1.000 GiB, not 1024 MiB
            if abs(_round4(v)) < 1024 or unit == _BINARY[-1]:
                return f"{_sig(v, trim=trim)} {unit}"
            v /= 1024
    return f"{_sig(value / 1e6, trim=trim)} MB/s"


def format_percent(share: float | None, *, trim: bool = False) -> str:
    """A share (0.2 = 20 %) as ``"20.00 %"``: four significant digits, trailing zeros kept
    (a column's figures all show four); ``trim=True`` gives ``"20 %"`` for a sentence."""
    if share is None:
        return "-"
    return f"{_sig(share * 100, trim=trim)} %"


def format_probability(p: float | None, *, trim: bool = False) -> str:
    """A probability as a percentage; tiny ones keep their significant digits."""
    return format_percent(p, trim=trim)


def format_count(n: int | None) -> str:
    """A container count with thousands separators (``"5,535"``), ``"-"`` when undefined.

    As the capacities beside it are written (``32,768`` PIDs): for people; plan.json keeps
    the integers.
    """
    return "-" if n is None else f"{int(n):,}"


#: the name a person reads for each resource column (plan.json keeps the column names)
RESOURCE_NAMES: dict[str, str] = {
    CPU: "CPU",
    MEMORY: "memory",
    NET_RX: "network in",
    NET_TX: "network out",
    DISK_READ: "disk read",
    DISK_WRITE: "disk write",
    DISK_USAGE: "disk space",
    "pids_count": "PIDs",
    "open_files_count": "open files",
}


def resource_name(resource: str | None) -> str:
    """The human name of a resource column (``memory`` for ``memory_working_set_bytes``);
    an unknown column is returned as is, ``None`` (nothing binds) as ``"-"``.

    >>> resource_name("memory_working_set_bytes")
    'memory'
    """
    if resource is None:
        return "-"
    if resource == "count":
        return "container count"
    if resource.startswith("addresses_count["):  # a structural limit per network (issue 12)
        return f"addresses in {resource[len('addresses_count['):].rstrip(']')}"
    if resource.startswith(f"{DISK_USAGE}["):  # a filesystem holding volumes (issue 12)
        return f"disk space on {resource[len(DISK_USAGE) + 1:-1]}"
    return RESOURCE_NAMES.get(resource, resource)
