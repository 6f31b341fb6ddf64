"""How precise a number a report shows is: every figure of a table column carries four
significant digits (``-68.00 %`` beside ``-68.03 %``, never ``-68 %``), so a column reads at
one precision and a tie in the order (headroom at four digits) is a tie a reader can see."""

from __future__ import annotations

import re

#: a figure with a unit as the report shows it (capacity._units.format_value/format_percent)
FIGURE = re.compile(r"^-?(\d+)(?:\.(\d+))? (cores|B|KiB|MiB|GiB|TiB|PiB|MB/s|%)$")
#: what the formatters show: four significant digits
SIGNIFICANT_DIGITS = 4


def significant_digits(text: str) -> int | None:
    """Significant digits shown in ``text`` (``"-68.00 %"`` -> 4, ``"0.0003187 cores"`` -> 4,
    ``"68 %"`` -> 2); ``None`` for what is not a figure with a unit (a count, ``-``, ``0``:
    zero, and whole numbers of four digits or more, are exact as shown)."""
    m = FIGURE.match(text.strip())
    if not m:
        return None
    whole, decimals = m.group(1), m.group(2) or ""
    if whole == "0" and not decimals.strip("0"):
        return None  # zero
    if len(whole) >= SIGNIFICANT_DIGITS and not decimals:
        return None  # 1146 MB/s: at least four digits, none after the point
    return len((whole + decimals).lstrip("0"))


def imprecise(cells: list[str]) -> list[str]:
    """The cells of a column shown at another precision than four significant digits."""
    return [c for c in cells if significant_digits(c) not in (None, SIGNIFICANT_DIGITS)]
