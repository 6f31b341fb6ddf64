"""Export and import of the samples table and the raw tables as Parquet or CSV.

The format follows the suffix: ``.parquet`` / ``.pq`` for Parquet (exact: dtypes, nanoseconds
and the UTC time zone are kept), ``.csv`` (optionally ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``,
``.csv.zst``) for CSV (times as ISO 8601 with ``+00:00``, floats written so they read back
bit for bit).

Reading samples validates them (:func:`validate_samples`): a file written by someone else
gets a clear :class:`InvalidSamples` naming the column, the value and the fix, instead of a
wrong plan later. Only ``time``, a container or service key (``container_id``,
``container_name`` or ``service``) and at least one resource column are required; the rest is
filled in as documented in :func:`validate_samples`, so an export from another tool loads.
"""

from __future__ import annotations

import json
import zlib
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
from .._schema import first_line as _first_line
from ..sources._types import ContainerCounters, ContainerInfo, HostCounters
from ._rates import _SAMPLE_DTYPES, SAMPLE_EXTRA_COLUMNS, service_key

__all__ = [
    "KEY_CHOICES",
    "outlying_times",
    "read_samples",
    "read_table",
    "service_key",
    "validate_samples",
    "write_samples",
    "write_table",
]

#: a samples table needs at least one of these to tell series apart
KEY_CHOICES: tuple[str, ...] = ("container_id", "container_name", "service")
#: columns other tools name a replica by (lower case); with neither ``container_id`` nor
#: ``container_name`` present, one of them is refused, not ignored (:func:`validate_samples`)
_REPLICA_ALIASES = frozenset({"container", "containerid", "container id",
                              "id", "cid", "name", "pod", "pod_name", "replica", "instance",
                              "task", "task_id"})
#: a sample time before this is a clock that was never set (1970), not a measurement
EARLIEST_PLAUSIBLE = pd.Timestamp("2000-01-01T00:00:00Z")
#: times further than this factor times the width of the middle 98 % of times outside it ...
OUTLIER_WIDTH_FACTOR = 10.0
#: ... and further than this, seconds, are outlying (see :func:`outlying_times`)
OUTLIER_MIN_MARGIN_S = 30 * 86400.0

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
        out = out.astype("datetime64[ns, UTC]")
    except pd.errors.OutOfBoundsDatetime as exc:
        raise _invalid(
            f"column {column!r} holds a time outside the range capacity handles "
            f"({pd.Timestamp.min.isoformat()} to {pd.Timestamp.max.isoformat()}): "
            f"{_first_line(exc)}. "
            "Fix or drop that row (a clock set far in the future, or a placeholder such as "
            "9999-12-31?).",
            column,
            None,
        ) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise _invalid(
            f"column {column!r} holds a value that is not a time ({_first_line(exc)}). Write "
            "times as ISO 8601, e.g. 2024-05-01T12:00:00Z (times without an offset are read "
            "as UTC).",
            column,
            None,
        ) from exc
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


def outlying_times(ns: np.ndarray) -> np.ndarray:
    """Which sample times (ns since the epoch, UTC) lie far from the bulk of the others.

    The rule: a time is outlying when it is before 2000-01-01 (a clock that was never set:
    1970), or when it lies outside the middle 98 % of the times (from the 1st to the 99th
    percentile, each taken at a sample, so one stray row is never part of it) by more than
    ``OUTLIER_WIDTH_FACTOR`` (10) times that middle range's width and more than
    ``OUTLIER_MIN_MARGIN_S`` (30 days). A stray 1970 or 2090 row among a week of samples is
    outlying; a recording with a gap of a few days is not. Fewer than 3 samples: only the
    year-2000 rule applies.

    Returns
    -------
    numpy.ndarray of bool
        True for an outlying time, in the order given.
    """
    ns = np.asarray(ns, dtype=np.int64)
    out = ns < EARLIEST_PLAUSIBLE.value
    if ns.size < 3:
        return out
    lo = float(np.quantile(ns, 0.01, method="higher"))
    hi = float(np.quantile(ns, 0.99, method="lower"))
    if hi < lo:
        return out
    margin = max(OUTLIER_WIDTH_FACTOR * (hi - lo), OUTLIER_MIN_MARGIN_S * 1e9)
    as_float = ns.astype(np.float64)
    return out | (as_float < lo - margin) | (as_float > hi + margin)


def validate_samples(df: pd.DataFrame) -> pd.DataFrame:
    """Check a samples table and return it with the documented columns and dtypes.

    Parameters
    ----------
    df : DataFrame
        Required: ``time``; a key, at least one of ``container_id``, ``container_name`` or
        ``service``; and at least one resource column of :data:`capacity._columns.RESOURCES`.
        Optional, filled in when absent:

        - ``container_id``: ``container_name``, else ``service`` (then every row of a service
          is one series: replicas cannot be told apart). A column another tool names the
          replica by (``container``, ``id``, ``name``, ``pod``, ``instance``, ...) is then
          refused, naming ``container_id``: it was ignored, and replicas merged;
        - ``container_name``: ``container_id``; ``image``: ``""``;
        - ``service``: ``image``, else ``container_name`` (as for a container without a
          Compose label); an empty ``service`` value is filled the same way;
        - ``interval_s``: the time step to the container's previous sample (its first sample
          takes the median step of the container; NaN for a single sample: "not known");
        - a resource column: NaN ("not measured": the resource is unknown for the plan);
        - the extra columns of :data:`capacity.store.SAMPLE_EXTRA_COLUMNS`: NaT / NaN /
          False.

        Other columns are kept, after these.

    Returns
    -------
    DataFrame
        A copy with ``time`` and ``started_at`` as datetime64[ns, UTC] (naive times are
        taken as UTC), str ids and names, float64 resources, bool ``net_shared``.

    Raises
    ------
    InvalidSamples
        No ``time``, no key or no resource column; a missing, unparseable or out-of-range
        (before 1677, after 2262) ``time``; a non-numeric, infinite or negative resource, or
        one above :data:`capacity._columns.PLAUSIBLE_MAX` (no machine reads 1e30 bytes); an
        ``interval_s`` that is not > 0. ``.column`` and ``.value`` say which. NaN resources
        are allowed: they mean "not measured".
    """
    from .._columns import PLAUSIBLE_MAX, PLAUSIBLE_TEXT, RESOURCES

    need = (f"Samples need 'time', a key ({' or '.join(KEY_CHOICES)}) and at least one "
            f"resource column ({', '.join(RESOURCES)}); the other columns of "
            f"{list(SAMPLE_COLUMNS)} are optional. A table of raw counters is turned into "
            "samples by capacity.store.counters_to_samples.")
    if not isinstance(df, pd.DataFrame):
        raise _invalid(f"samples must be a pandas DataFrame; got {type(df).__name__}. {need}",
                       "", None)
    if "time" not in df.columns:
        raise _invalid(f"the samples table has no 'time' column (columns: "
                       f"{list(df.columns)[:20]}). {need}", "time", None)
    if not any(k in df.columns for k in KEY_CHOICES):
        raise _invalid(f"the samples table has no key column (columns: "
                       f"{list(df.columns)[:20]}). {need}", "container_id", None)
    if not any(r in df.columns for r in RESOURCES):
        raise _invalid(f"the samples table has no resource column (columns: "
                       f"{list(df.columns)[:20]}). {need}", "cpu_cores", None)
    if "container_id" not in df.columns and "container_name" not in df.columns:
        # another tool's name for the replica: without it every row of a service became one
        # series, replicas merged (their rows averaged), silently
        alias = next((c for c in df.columns if str(c).strip().lower() in _REPLICA_ALIASES),
                     None)
        if alias is not None and "time" in df.columns:
            # only when it tells rows of one service at one instant apart (replicas): a row
            # number or a host name beside one series per service is left alone
            keys = [c for c in ("service", "time") if c in df.columns]
            if not (df.groupby(keys, dropna=False, sort=False)[alias].nunique() > 1).any():
                alias = None
        if alias is not None:
            raise _invalid(
                f"the samples table has a {alias!r} column but no 'container_id' or "
                "'container_name': capacity reads the replica from 'container_id' (one value "
                "per container: a Docker ID or name) and does not guess from "
                f"{alias!r}; without it every row of a service is one series and replicas "
                f"are merged. Rename {alias!r} to 'container_id' if it names each replica "
                "(in a Kubernetes export the replica is the pod), or drop it.",
                str(alias), None)
    out = df.copy()
    out["time"] = _utc_column(df["time"], "time", allow_missing=False)
    if "container_id" in df.columns and df["container_id"].isna().any():
        first = df.index[df["container_id"].isna()][0]
        raise _invalid(
            f"column 'container_id' is missing at row {first}: every sample belongs to "
            "a container. Drop those rows or fill them.",
            "container_id",
            None,
        )

    def text(col: str) -> pd.Series | None:
        if col not in df.columns:
            return None
        return df[col].astype("object").where(df[col].notna(), "").astype("str")

    cid, cname, svc, image = (text(c) for c in ("container_id", "container_name", "service",
                                                "image"))
    name = cname if cname is not None else cid
    if cid is None:
        cid = cname if cname is not None else service_key(svc, image, svc)  # type: ignore[arg-type]
    assert cid is not None  # one of the keys is present (checked above)
    name = name if name is not None else cid
    out["container_id"] = cid
    out["container_name"] = name
    out["image"] = image if image is not None else ""
    out["service"] = service_key(svc, image, out["container_name"]).astype("str")
    for col in RESOURCES:
        if col not in df.columns:
            out[col] = np.nan
    numeric = [*(["interval_s"] if "interval_s" in df.columns else []),
               *(c for c in _NON_NEGATIVE if c in df.columns)]
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
        bound = PLAUSIBLE_MAX.get(col, np.inf)
        for problem, mask, fix in (
            ("infinite", np.isinf(values), "a rate over a zero-length interval?"),
            ("negative", values < 0, "a counter reset turned into a rate? Rates are >= 0;"),
            (f"above {PLAUSIBLE_TEXT.get(col, '')}, more than any machine has,",
             np.isfinite(values) & (values > bound),
             "a unit mix-up (bits, KiB, nanoseconds) or a corrupt cell? Fix the unit,"),
        ):
            if mask.any():
                first = df.index[mask][0]
                who = (f"container {df['container_id'].loc[first]!r}; "
                       if "container_id" in df.columns else "")
                raise _invalid(
                    f"column {col!r} is {problem} at row {first}: "
                    f"{float(values.loc[first])!r} "
                    f"({who}{int(mask.sum())} rows in all; {fix} recompute the samples with "
                    "capacity.store.counters_to_samples, or drop those rows).",
                    col,
                    float(values.loc[first]),
                )
        out[col] = values
    if "interval_s" in df.columns:
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
    else:
        out["interval_s"] = _inferred_interval(out["time"], out["container_id"])
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
            text_ = shared.astype("str").str.strip().str.lower()
            shared = text_.isin(["true", "1", "yes"])
        out["net_shared"] = shared.astype(bool)
    else:
        out["net_shared"] = False
    known = [*SAMPLE_COLUMNS, *SAMPLE_EXTRA_COLUMNS]
    out = out[known + [c for c in out.columns if c not in known]]
    return out.astype(_SAMPLE_DTYPES)


def _inferred_interval(time: pd.Series, container: pd.Series) -> pd.Series:
    """Seconds since the container's previous sample; its first sample takes the median
    step of the container (NaN for a container sampled once). Steps of 0 (duplicates) are
    left out of the median and become NaN ("not known")."""
    frame = pd.DataFrame({"t": time.to_numpy(dtype="datetime64[ns]").view(np.int64),
                          "c": container.to_numpy()}, index=time.index)
    frame = frame.sort_values(["c", "t"], kind="stable")
    step = frame.groupby("c", sort=False)["t"].diff() / 1e9
    step = step.where(step > 0)
    median = step.groupby(frame["c"], sort=False).transform("median")
    return step.fillna(median).reindex(time.index).astype("float64")


def write_samples(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate a samples table and write it as Parquet or CSV (by suffix); return the path.

    Raises :class:`InvalidSamples` (see :func:`validate_samples`) before writing anything,
    and :class:`InvalidParameter` for an unknown suffix.
    """
    p = Path(path)
    fmt = _format(p, "write_samples")
    _write(validate_samples(df), p, fmt)
    return p


#: what reading a damaged or foreign file raises: pyarrow's ArrowInvalid is a ValueError, a
#: gzip file cut short an EOFError (not an OSError), corrupt compressed bytes a zlib.error
_UNREADABLE: tuple[type[BaseException], ...] = (
    OSError, ValueError, EOFError, zlib.error, pd.errors.ParserError, pd.errors.EmptyDataError)


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
    except _UNREADABLE as exc:
        # pyarrow's ArrowInvalid is a ValueError; a truncated or foreign file lands here.
        raise InvalidSamples(
            f"samples file {p} cannot be read as {fmt}: {type(exc).__name__}: "
            f"{_first_line(exc)}; "
            "is it a samples table written by capacity (or with the documented columns)?",
            value=str(p),
        ) from exc
    try:
        return validate_samples(raw)
    except InvalidSamples as exc:  # name the file: the user may load several
        raise InvalidSamples(f"samples file {p}: {exc}", column=exc.column,
                             service=exc.service, value=exc.value) from exc


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
    try:
        df = (pd.read_parquet(p) if fmt == "parquet"
              else _read_csv(p, string_columns=_RAW_STRING_COLUMNS))
    except _UNREADABLE as exc:
        raise InvalidSamples(f"table file {p} cannot be read as {fmt}: "
                             f"{type(exc).__name__}: {_first_line(exc)}; is it a table written "
                             "by capacity.store.write_table?", value=str(p)) from exc
    if fmt == "csv":
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
