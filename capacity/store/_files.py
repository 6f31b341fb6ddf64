"""Export and import of the samples table and the raw tables as Parquet or CSV.

The format follows the suffix: ``.parquet`` / ``.pq`` for Parquet (exact: dtypes, nanoseconds
and the UTC time zone are kept), ``.csv`` (optionally ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``,
``.csv.zst``) for CSV (times as ISO 8601 with ``+00:00``, floats written so they read back
bit for bit).

Reading samples validates them (:func:`validate_samples`): a file written by someone else
gets a clear :class:`InvalidSamples` naming the column, the value and the fix, instead of a
wrong plan later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._columns import (
    CPU,
    DISK_READ,
    DISK_USAGE,
    DISK_WRITE,
    MEMORY,
    NET_RX,
    NET_TX,
    SAMPLE_COLUMNS,
)
from .._errors import InvalidParameter, InvalidSamples
from ..sources._types import ContainerCounters, ContainerInfo, HostCounters
from ._rates import _SAMPLE_DTYPES, SAMPLE_EXTRA_COLUMNS

__all__ = ["read_samples", "read_table", "validate_samples", "write_samples", "write_table"]

_STRING_COLUMNS = ("container_id", "container_name", "service", "image")
_TIME_COLUMNS = ("time", "started_at")
#: must be >= 0 where present (NaN is allowed: "not measured")
_NON_NEGATIVE = (
    CPU,
    MEMORY,
    NET_RX,
    NET_TX,
    DISK_READ,
    DISK_WRITE,
    DISK_USAGE,
    "cpu_throttled_fraction",
    "memory_oom_kills",
)
#: cells of these raw-table columns are mappings or sequences, stored as JSON text
_JSON_COLUMNS = ("labels", "published_host_ports", "attributes", "facts")
_INT_FIELDS = frozenset(
    f.name
    for cls in (ContainerCounters, HostCounters, ContainerInfo)
    for f in fields(cls)
    if "int" in str(f.type)
) | {"disk_usage_bytes"}
_RAW_STRING_COLUMNS = (
    "container_id",
    "action",
    *(f.name for f in fields(ContainerInfo) if f.type in ("str", "str | None")),
)
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst")
_NA_TEXT = ["", "NaN", "nan", "NA", "<NA>", "NaT", "None", "null"]


def _format(path: Path, owner: str) -> Literal["parquet", "csv"]:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    raise InvalidParameter(
        "path", owner, "a file ending in .parquet, .pq or .csv (optionally .csv.gz)", str(path)
    )


def _invalid(msg: str, column: str, value: object) -> InvalidSamples:
    return InvalidSamples(msg, column=column, value=value)


def _utc_column(values: pd.Series, column: str, allow_missing: bool) -> pd.Series:
    try:
        out = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise _invalid(
            f"column {column!r} holds a value that is not a time ({exc}). Write times as "
            "ISO 8601, e.g. 2024-05-01T12:00:00Z (times without an offset are read as UTC).",
            column,
            None,
        ) from exc
    out = out.astype("datetime64[ns, UTC]")
    if not allow_missing and out.isna().any():
        first = out.index[out.isna()][0]
        raise _invalid(
            f"column {column!r} is missing at row {first} ({int(out.isna().sum())} rows in "
            "all): every sample needs the time its interval ends. Drop those rows or fill "
            "them.",
            column,
            values.loc[first],
        )
    return out


def validate_samples(df: pd.DataFrame) -> pd.DataFrame:
    """Check a samples table and return it with the documented dtypes.

    Parameters
    ----------
    df : DataFrame
        Must hold every column of :data:`capacity._columns.SAMPLE_COLUMNS`. The extra
        columns of :data:`capacity.store.SAMPLE_EXTRA_COLUMNS` are optional: when absent
        they are added as NaT / NaN / False. Other columns are kept, after these.

    Returns
    -------
    DataFrame
        A copy with ``time`` and ``started_at`` as datetime64[ns, UTC] (naive times are
        taken as UTC), str ids and names, float64 resources, bool ``net_shared``.

    Raises
    ------
    InvalidSamples
        A missing column; a missing or unparseable ``time``; a non-numeric, infinite or
        negative resource; an ``interval_s`` that is not > 0. ``.column`` and ``.value``
        say which. NaN resources are allowed: they mean "not measured".
    """
    for col in SAMPLE_COLUMNS:
        if col not in df.columns:
            raise _invalid(
                f"the samples table has no {col!r} column (columns: {list(df.columns)}). "
                f"Samples need {list(SAMPLE_COLUMNS)}; a table of raw counters is turned "
                "into samples by capacity.store.counters_to_samples.",
                col,
                None,
            )
    out = df.copy()
    out["time"] = _utc_column(df["time"], "time", allow_missing=False)
    for col in _STRING_COLUMNS:
        if col == "container_id" and df[col].isna().any():
            first = df.index[df[col].isna()][0]
            raise _invalid(
                f"column 'container_id' is missing at row {first}: every sample belongs to "
                "a container. Drop those rows or fill them.",
                col,
                None,
            )
        out[col] = df[col].astype("object").where(df[col].notna(), "").astype("str")
    numeric = ["interval_s", *(c for c in _NON_NEGATIVE if c in df.columns)]
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce").astype("float64")
        bad = values.isna() & df[col].notna()
        if bad.any():
            first = df.index[bad][0]
            raise _invalid(
                f"column {col!r} holds a non-number at row {first}: {df[col].loc[first]!r}. "
                "Write numbers in the unit the column name gives, without a suffix.",
                col,
                df[col].loc[first],
            )
        for problem, mask, fix in (
            ("infinite", np.isinf(values), "a rate over a zero-length interval?"),
            ("negative", values < 0, "a counter reset turned into a rate? Rates are >= 0;"),
        ):
            if mask.any():
                first = df.index[mask][0]
                raise _invalid(
                    f"column {col!r} is {problem} at row {first}: {float(values.loc[first])!r} "
                    f"({int(mask.sum())} rows in all; {fix} recompute the samples with "
                    "capacity.store.counters_to_samples, or drop those rows).",
                    col,
                    float(values.loc[first]),
                )
        out[col] = values
    bad_interval = ~(out["interval_s"] > 0)
    if bad_interval.any():
        first = df.index[bad_interval][0]
        raise _invalid(
            f"column 'interval_s' must be > 0 seconds; row {first} has "
            f"{float(out['interval_s'].loc[first])!r}. Drop those rows: a rate needs an "
            "interval.",
            "interval_s",
            float(out["interval_s"].loc[first]),
        )
    if "started_at" in df.columns:
        out["started_at"] = _utc_column(df["started_at"], "started_at", allow_missing=True)
    else:
        out["started_at"] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
    for col in ("cpu_throttled_fraction", "memory_oom_kills"):
        if col not in df.columns:
            out[col] = np.nan
    if "net_shared" in df.columns:
        shared = df["net_shared"]
        if shared.dtype != bool:
            text = shared.astype("str").str.strip().str.lower()
            shared = text.isin(["true", "1", "yes"])
        out["net_shared"] = shared.astype(bool)
    else:
        out["net_shared"] = False
    known = [*SAMPLE_COLUMNS, *SAMPLE_EXTRA_COLUMNS]
    out = out[known + [c for c in out.columns if c not in known]]
    return out.astype(_SAMPLE_DTYPES)


def write_samples(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate a samples table and write it as Parquet or CSV (by suffix); return the path.

    Raises :class:`InvalidSamples` (see :func:`validate_samples`) before writing anything,
    and :class:`InvalidParameter` for an unknown suffix.
    """
    p = Path(path)
    fmt = _format(p, "write_samples")
    _write(validate_samples(df), p, fmt)
    return p


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read a samples table written by :func:`write_samples` (or by anyone) and validate it.

    Returns the table with the dtypes of :func:`validate_samples`; raises
    :class:`InvalidSamples` naming the column, the value and the fix.
    """
    p = Path(path)
    fmt = _format(p, "read_samples")
    try:
        raw = (
            _read_csv(p, string_columns=_STRING_COLUMNS) if fmt == "csv" else pd.read_parquet(p)
        )
    except FileNotFoundError as exc:
        raise InvalidSamples(
            f"samples file {p} does not exist: check the path, or write one with "
            "capacity.store.write_samples", value=str(p)
        ) from exc
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        # pyarrow's ArrowInvalid is a ValueError; a truncated or foreign file lands here.
        raise InvalidSamples(
            f"samples file {p} cannot be read as {fmt}: {type(exc).__name__}: {exc}; "
            "is it a samples table written by capacity (or with the documented columns)?",
            value=str(p),
        ) from exc
    return validate_samples(raw)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a raw table (counters, containers, host, events, ...) as Parquet or CSV.

    Mapping and sequence cells of ``labels``, ``published_host_ports``, ``attributes`` and
    ``facts`` are written as JSON text (and decoded by :func:`read_table`). Nothing is
    validated: raw tables are kept as read.
    """
    p = Path(path)
    fmt = _format(p, "write_table")
    out = df.copy()
    for col in _JSON_COLUMNS:
        if col in out.columns:
            out[col] = [
                v
                if isinstance(v, str) or v is None
                else json.dumps(dict(v) if isinstance(v, Mapping) else list(v), sort_keys=True)
                for v in out[col]
            ]
    _write(out, p, fmt)
    return p


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a raw table written by :func:`write_table`.

    ``time`` and ``started_at`` come back as datetime64[ns, UTC]. Parquet keeps every dtype
    and value as written. CSV is close but lossy in one way: it cannot tell a missing text
    from an empty one, so a missing text (``compose_project`` of a container outside
    Compose) reads back as ``""``; integer counter fields come back as nullable Int64.
    """
    p = Path(path)
    fmt = _format(p, "read_table")
    if fmt == "parquet":
        df = pd.read_parquet(p)
    else:
        df = _read_csv(p, string_columns=_RAW_STRING_COLUMNS)
        for col in df.columns:
            if col in _TIME_COLUMNS:
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601").astype(
                    "datetime64[ns, UTC]"
                )
            elif col in _INT_FIELDS and pd.api.types.is_numeric_dtype(df[col]):
                df[col] = df[col].astype("Int64")
    for col in _JSON_COLUMNS:
        if col in df.columns:
            df[col] = [json.loads(v) if isinstance(v, str) else v for v in df[col]]
            if col == "published_host_ports":
                df[col] = [tuple(v) if isinstance(v, list) else v for v in df[col]]
    return df


def _write(df: pd.DataFrame, path: Path, fmt: Literal["parquet", "csv"]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        # pandas writes aware times as "2024-05-01 12:00:10.000000001+00:00": every digit kept
        df.to_csv(path, index=False)


def _read_csv(path: Path, string_columns: tuple[str, ...]) -> pd.DataFrame:
    """CSV with strings kept as written ("" stays "", not NaN) and NaN spelled many ways."""
    header = pd.read_csv(path, nrows=0).columns
    strings = [c for c in header if c in string_columns]
    na: dict[Any, list[str]] = {c: _NA_TEXT for c in header if c not in strings}
    return pd.read_csv(
        path,
        dtype={c: "str" for c in strings},
        keep_default_na=False,
        na_values=na,
    )
