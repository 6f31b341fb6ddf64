"""How a profile keeps its long number lists, and how profiles.json writes them.

A profile's traces (``trace``, ``replica_trace``: thousands of points per resource) and its
histogram (``histogram_edges``, ``histogram_weights``) are most of a profiles file: written as
JSON text, 100 services x 6 resources took 16 MiB. They are kept at a stated precision, and
written packed, so the file of 100 services one hour at 10 s is about 3 MiB.

Precision (applied when a :class:`~capacity.model.ResourceProfile` is made, so a profile read
back from its file is *equal* to the one written, and the plan made from the file is the
plan made in memory):

- a trace is kept on a grid of 16 bits of its largest value: every point is a whole multiple
  of ``step``, the smallest power of two with ``max |value| <= 65535 * step``; so each point
  moves by at most ``step / 2 <= max / 65535`` (half of that bound for most traces), i.e.
  0.0015 % of the series' peak. Keeping is idempotent (a kept trace is kept unchanged).
- a histogram (edges and weights) is kept as float32: relative error <= 2**-24 (6e-8).

Packed form (``profiles.json`` schema version 4): a list of at least :data:`PACK_MIN_VALUES`
numbers may be written as an object ``{"packed": "uint16", "scale": step, "n": n, "data":
"..."}``, whose values are ``k * scale`` for the ``n`` little-endian unsigned 16-bit integers
``k`` in ``data`` (base64 of the zlib-compressed bytes); ``"float32"`` and ``"float64"``
carry IEEE little-endian floats the same way (no ``scale``). float64 is exact, and NaN in it
stands for ``null`` where a list may hold one (a correlation matrix). Shorter lists, and every
list a person may want to read (quantiles, daily levels), stay plain JSON lists; a reader
accepts a plain list wherever a packed one may be.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = [
    "MAX_PACKED_VALUES",
    "PACK_MIN_VALUES",
    "STORAGE_NOTE",
    "TRACE_LEVELS",
    "is_packed",
    "keep_float32",
    "keep_trace",
    "pack",
    "trace_step",
    "unpack",
]

#: a kept trace has at most this many steps between 0 and its largest |value| (16 bits)
TRACE_LEVELS = 65535
#: lists shorter than this are written as plain JSON lists
PACK_MIN_VALUES = 32
#: smallest trace step used (below it, a trace of tiny values is kept exactly)
_MIN_STEP = 2.0**-1000
#: float32's largest finite value; a histogram beyond it is kept in float64
_F32_MAX = 3.4e38
_DTYPES = {"uint16": "<u2", "float32": "<f4", "float64": "<f8"}

#: what profiles.json says about its packed lists and their precision (the ``storage`` field)
STORAGE_NOTE = (
    "Lists of 32 or more numbers may be packed: {packed: uint16, scale, n, data} holds n "
    "values k * scale, data being the base64 of the zlib-compressed little-endian uint16 k; "
    "float32 and float64 likewise, without scale (NaN in float64 is null). Traces "
    "(trace, replica_trace) are kept to 16 bits of their largest value: each point is a "
    "multiple of scale, the smallest power of two with max <= 65535 * scale, so it moved by "
    "at most max / 65535 (0.0015 % of the peak). Histograms are kept as float32 (relative "
    "error <= 6e-8). Plans from this file equal plans from the profiles that wrote it."
)


def trace_step(peak: float) -> float:
    """The grid step of a trace whose largest absolute value is ``peak``: the smallest power
    of two with ``peak <= 65535 * step`` (0 for a zero, non-finite or tiny peak: kept as
    is)."""
    if not math.isfinite(peak) or peak < TRACE_LEVELS * _MIN_STEP:
        return 0.0
    step = 2.0 ** math.ceil(math.log2(peak / TRACE_LEVELS))
    while peak > TRACE_LEVELS * step:  # log2 may be an ulp off at a power of two
        step *= 2.0
    while peak <= TRACE_LEVELS * step / 2.0:
        step /= 2.0
    return step


def keep_trace(values: Sequence[float]) -> tuple[float, ...]:
    """``values`` on their 16-bit grid (see the module docstring); idempotent. A trace with a
    NaN or an infinity is returned unchanged (the loader refuses such a file)."""
    if len(values) == 0:
        return ()
    import numpy as np

    x = np.asarray(values, dtype=float)
    if not np.isfinite(x).all():
        return tuple(float(v) for v in x)
    step = trace_step(float(np.abs(x).max()))
    if step == 0.0:
        return tuple(x.tolist())
    return tuple((np.rint(x / step) * step).tolist())


def keep_float32(values: Sequence[float]) -> tuple[float, ...]:
    """``values`` rounded to float32 (relative error <= 2**-24); idempotent. Values outside
    float32's range, NaN or infinite, leave the list unchanged."""
    if len(values) == 0:
        return ()
    import numpy as np

    x = np.asarray(values, dtype=float)
    if not np.isfinite(x).all() or float(np.abs(x).max()) > _F32_MAX:
        return tuple(x.tolist())
    return tuple(x.astype(np.float32).astype(float).tolist())


def _encode(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def pack(values: Sequence[float | None], kind: str = "float64") -> Any:
    """The JSON form of a list of numbers: a plain list when short, else packed as
    ``kind`` (``"trace"``: uint16 on the trace grid, ``"float32"``, ``"float64"``) when that
    keeps every value exactly, else as float64 (exact). ``None`` is written as NaN (float64
    only)."""
    if len(values) < PACK_MIN_VALUES:
        return list(values)
    import numpy as np

    x = np.array([math.nan if v is None else v for v in values], dtype=float)
    n = int(x.size)
    if kind == "trace" and np.isfinite(x).all():
        step = trace_step(float(np.abs(x).max()))
        if step > 0.0:
            k = np.rint(x / step)
            if k.min() >= 0 and k.max() <= TRACE_LEVELS and np.array_equal(k * step, x):
                return {
                    "packed": "uint16",
                    "scale": step,
                    "n": n,
                    "data": _encode(k.astype("<u2").tobytes()),
                }
    if (
        kind in ("trace", "float32")
        and np.isfinite(x).all()
        and float(np.abs(x).max(initial=0.0)) <= _F32_MAX
    ):
        f = x.astype("<f4")
        if np.array_equal(f.astype(float), x):
            return {"packed": "float32", "n": n, "data": _encode(f.tobytes())}
    return {"packed": "float64", "n": n, "data": _encode(x.astype("<f8").tobytes())}


#: most values one packed list may declare (a count past it is a damaged file: 2**31 - 1
#: float64 values would be 16 GiB; zlib's decompress takes a C ssize_t bound)
MAX_PACKED_VALUES = 2**31 - 1
#: deflate's largest expansion is about 1,032:1; a count needing more is refused before any
#: memory is given to it (a 1.4 MB file must not claim 1 GiB of values)
_ZLIB_MAX_RATIO = 1100


def is_packed(value: Any) -> bool:
    """True for an object of the packed form (a dict with a ``"packed"`` key)."""
    return isinstance(value, dict) and "packed" in value


def unpack(value: Any) -> list[float]:
    """The numbers of a packed object (NaN where float64 holds NaN).

    Raises ``ValueError`` with what is wrong (unknown ``packed``, ``n`` not a whole number,
    ``data`` not base64 of zlib data of ``n`` values, ``scale`` not a finite number > 0); the
    loader turns it into :class:`~capacity.InvalidFile` naming the field.
    """
    import numpy as np

    kind = value.get("packed")
    if not isinstance(kind, str) or kind not in _DTYPES:
        raise ValueError(f"'packed' must be one of {sorted(_DTYPES)}; got {kind!r}")
    n = value.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_PACKED_VALUES:
        raise ValueError(f"'n' must be a whole number from 0 to {MAX_PACKED_VALUES:,}; got {n!r}")
    dtype = np.dtype(_DTYPES[kind])
    want = n * dtype.itemsize
    data = value.get("data")
    if not isinstance(data, str):
        raise ValueError(f"'data' must be base64 text; got {type(data).__name__}")
    try:
        packed = base64.b64decode(data, validate=True)
        if want > _ZLIB_MAX_RATIO * len(packed) + 64:  # deflate expands at most ~1,032x
            raise ValueError(
                f"{len(packed):,} compressed bytes cannot hold {n:,} values: "
                "a damaged or hand-edited count"
            )
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, want + 1)  # bounded: a zip bomb stops here
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise ValueError(f"'data' is not base64 of zlib-compressed bytes ({exc})") from exc
    if len(raw) != want or not inflate.eof:
        raise ValueError(
            f"'data' must hold {n} {kind} values ({want} bytes); "
            f"got {len(raw)}{'' if inflate.eof else ' or more'} bytes"
        )
    out = np.frombuffer(raw, dtype=dtype).astype(float)
    if kind == "uint16":
        scale = value.get("scale")
        if (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ValueError(f"'scale' must be a finite number > 0; got {scale!r}")
        out = out * float(scale)
    return out.tolist()
