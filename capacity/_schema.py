"""Typed field checks for the input files, shared by every loader.

Each loader (profiles JSON, Compose YAML, store cells) walks its parsed document with one
:class:`Fields` object and asks for each field by its dotted path: ``number``, ``count``,
``text``, ``mapping``, ``numbers``. The first field that breaks the schema raises
:class:`~capacity.InvalidFile`, whose message names the file, the field, the value seen and
what to do. After the walk the loader may trust the document.

Why typed loaders and not a schema library: the documents are small and fixed, the checks
that matter (finite, >= 0, ordered quantiles, a histogram with one edge more than weights,
a limit > 0) are value checks that JSON Schema spells awkwardly and pydantic would add a
dependency for; a failure must also carry the fix for *this* file, which is easiest where
the field is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import InvalidFile

__all__ = ["Fields", "first_line", "short"]

#: longest rendering of a bad value in a message
_SHORT = 80


def short(value: Any) -> str:
    """``repr(value)`` cut to a readable length (a billion-element list is not printed)."""
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k!r}: ..." for k in list(value)[:4]) + (
            ", ...}" if len(value) > 4 else "}")
    elif isinstance(value, list | tuple) and len(value) > 8:
        text = f"[{', '.join(short(v) for v in value[:4])}, ... ({len(value)} items)]"
    else:
        text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


class Fields:
    """Field checks for one document.

    Parameters
    ----------
    file : str
        The file's name as the user gave it (or ``"profiles text"``).
    fix : str
        What to do, appended to every message (e.g. "refit with 'capacity fit'").
    """

    def __init__(self, file: str, fix: str) -> None:
        self.file = file
        self.fix = fix

    def fail(self, path: str, problem: str, value: Any, *, seen: str | None = None) -> InvalidFile:
        """The error for ``path``: ``FILE: field PATH must be PROBLEM; got VALUE. FIX``.

        ``seen`` replaces the rendering of ``value`` (for a description such as "10000
        services" rather than the value itself).
        """
        where = f"field {path!r}" if path else "the document"
        got = seen if seen is not None else short(value)
        return InvalidFile(
            f"{self.file}: {where} must be {problem}; got {got}. {self.fix}",
            file=self.file, field=path or None, value=value,
        )

    def missing(self, path: str, what: str) -> InvalidFile:
        """The error for a required field that is absent."""
        return InvalidFile(
            f"{self.file}: field {path!r} is missing (it must be {what}). {self.fix}",
            file=self.file, field=path, value=None,
        )

    def mapping(self, d: Mapping[str, Any], key: str, path: str, *,
                required: bool = True) -> Mapping[str, Any]:
        """``d[key]`` as a mapping with str keys (``{}`` when optional and absent)."""
        if key not in d:
            if required:
                raise self.missing(path, "a mapping")
            return {}
        v = d[key]
        return self.as_mapping(v, path)

    def as_mapping(self, v: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            raise self.fail(path, "a mapping (an object of named fields)", v)
        for k in v:
            if not isinstance(k, str):
                raise self.fail(f"{path}.{k}", "named by a string", k)
        return v

    def number(self, d: Mapping[str, Any], key: str, path: str, *, required: bool = True,
               default: float | None = 0.0, minimum: float | None = None,
               exclusive: bool = False, maximum: float | None = None,
               nullable: bool = False) -> float | None:
        """A finite number (bools are not numbers), in the given range; None if nullable."""
        if key not in d:
            if required:
                raise self.missing(path, "a number")
            return default
        return self.as_number(d[key], path, minimum=minimum, exclusive=exclusive,
                              maximum=maximum, nullable=nullable)

    def as_number(self, v: Any, path: str, *, minimum: float | None = None,
                  exclusive: bool = False, maximum: float | None = None,
                  nullable: bool = False) -> float | None:
        if v is None and nullable:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(path, "a number" + (" or null" if nullable else ""), v)
        if not math.isfinite(v):
            raise self.fail(path, "a finite number (NaN and infinity are not values)", v)
        if minimum is not None and (v <= minimum if exclusive else v < minimum):
            raise self.fail(path, f"{'>' if exclusive else '>='} {minimum:g}", v)
        if maximum is not None and v > maximum:
            raise self.fail(path, f"<= {maximum:g}", v)
        return float(v)

    def count(self, d: Mapping[str, Any], key: str, path: str, *, required: bool = True,
              default: int = 0, minimum: int = 0) -> int:
        """An int >= ``minimum`` (a float with an integral value is accepted)."""
        if key not in d:
            if required:
                raise self.missing(path, "a whole number")
            return default
        v = d[key]
        if isinstance(v, float) and math.isfinite(v) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(path, "a whole number", v)
        if v < minimum:
            raise self.fail(path, f"a whole number >= {minimum}", v)
        return v

    def text(self, d: Mapping[str, Any], key: str, path: str, *, required: bool = True,
             default: str = "", choices: Sequence[str] | None = None) -> str:
        if key not in d:
            if required:
                raise self.missing(path, "a string")
            return default
        v = d[key]
        if not isinstance(v, str):
            raise self.fail(path, "a string", v)
        if choices is not None and v not in choices:
            raise self.fail(path, f"one of {list(choices)}", v)
        return v

    def texts(self, d: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        """An optional list of strings."""
        v = d.get(key, [])
        if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
            raise self.fail(path, "a list of strings", v)
        return tuple(v)

    def numbers(self, d: Mapping[str, Any], key: str, path: str, *,
                minimum: float | None = None) -> tuple[float, ...]:
        """An optional list of finite numbers (each >= ``minimum``)."""
        v = d.get(key, [])
        if not isinstance(v, list | tuple):
            raise self.fail(path, "a list of numbers", v)
        out = []
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) \
                    or (minimum is not None and x < minimum):
                bound = "" if minimum is None else f" >= {minimum:g}"
                raise self.fail(f"{path}[{i}]", f"a finite number{bound}", x)
            out.append(float(x))
        return tuple(out)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: pandas and PyYAML explain over several
    lines, and the CLI prints one line per error."""
    lines = str(exc).strip().splitlines()
    return lines[0].rstrip(" :") if lines else type(exc).__name__
