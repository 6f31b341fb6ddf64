"""Frozen reference: ``capacity/store/_rates.py`` as of main 184c71d (before issue 14's
array path), kept verbatim below this note so tests can check that the rewritten
``counters_to_samples`` and ``Store.samples`` give the same samples, bit for bit. Not used
by the package; only the imports were made absolute.

Cumulative counters -> rates: the one place where resets, gaps and churn are handled.

Two functions, both pure and vectorised (no Python loop per row):

- :func:`counters_to_samples` turns the counters table (one raw reading per container per
  round, see :mod:`capacity._columns`) into the samples table (one row per container per
  interval, rates averaged over the interval).
- :func:`host_to_rates` does the same for the host table (one :class:`HostCounters` per round).

The rules, shared by both, are spelled out in the docstring of :func:`counters_to_samples`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from capacity._columns import (
    CPU,
    DISK_READ,
    DISK_USAGE,
    DISK_WRITE,
    MEMORY,
    NET_RX,
    NET_TX,
    SAMPLE_COLUMNS,
)
from capacity._errors import InvalidParameter, InvalidSamples

__all__ = [
    "COUNTER_TOTAL_COLUMNS",
    "HOST_RATE_COLUMNS",
    "MIN_INTERVAL_S",
    "SAMPLE_EXTRA_COLUMNS",
    "counters_to_samples",
    "empty_samples",
    "host_to_rates",
    "service_key",
]

#: columns the samples table carries beyond :data:`capacity._columns.SAMPLE_COLUMNS`
SAMPLE_EXTRA_COLUMNS: tuple[str, ...] = (
    "started_at",  # datetime64[ns, UTC]; with container_id it keys a container lifecycle
    "cpu_throttled_fraction",  # throttled periods / periods over the interval; NaN: no quota
    "memory_oom_kills",  # OOM kills during the interval (a count, float so it can be NaN)
    "net_shared",  # bool: the container shares its network namespace with another one
)

#: cumulative counters of :class:`~capacity.sources.ContainerCounters`: only go down on a reset
COUNTER_TOTAL_COLUMNS: tuple[str, ...] = (
    "cpu_usage_seconds_total",
    "cpu_periods_total",
    "cpu_throttled_periods_total",
    "cpu_throttled_seconds_total",
    "memory_oom_kills_total",
    "memory_failcnt_total",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "disk_read_ops_total",
    "disk_write_ops_total",
    "net_rx_bytes_total",
    "net_tx_bytes_total",
    "net_rx_packets_total",
    "net_tx_packets_total",
)

#: counter column -> rate column of the samples table
_RATE_OF: dict[str, str] = {
    "cpu_usage_seconds_total": CPU,
    "net_rx_bytes_total": NET_RX,
    "net_tx_bytes_total": NET_TX,
    "disk_read_bytes_total": DISK_READ,
    "disk_write_bytes_total": DISK_WRITE,
}

_NET_RATES: tuple[str, ...] = (NET_RX, NET_TX)

#: intervals shorter than this (seconds) are two reads of one round, not a measurement
MIN_INTERVAL_S = 1e-3

_SAMPLE_DTYPES: dict[str, str] = {
    "time": "datetime64[ns, UTC]",
    "container_id": "str",
    "container_name": "str",
    "service": "str",
    "image": "str",
    "interval_s": "float64",
    CPU: "float64",
    MEMORY: "float64",
    NET_RX: "float64",
    NET_TX: "float64",
    DISK_READ: "float64",
    DISK_WRITE: "float64",
    DISK_USAGE: "float64",
    "started_at": "datetime64[ns, UTC]",
    "cpu_throttled_fraction": "float64",
    "memory_oom_kills": "float64",
    "net_shared": "bool",
}
assert tuple(_SAMPLE_DTYPES) == (*SAMPLE_COLUMNS, *SAMPLE_EXTRA_COLUMNS)

_HOST_TOTALS: dict[str, str] = {
    "cpu_usage_seconds_total": "host_cpu_cores",
    "net_rx_bytes_total": "host_net_rx_bytes_per_second",
    "net_tx_bytes_total": "host_net_tx_bytes_per_second",
    "disk_read_bytes_total": "host_disk_read_bytes_per_second",
    "disk_write_bytes_total": "host_disk_write_bytes_per_second",
}
_HOST_GAUGES: dict[str, str] = {
    "memory_used_bytes": "host_memory_used_bytes",
    "memory_total_bytes": "host_memory_total_bytes",
    "logical_cpus": "host_logical_cpus",
}

#: columns of the host rates table, in order (all float64 but ``time``)
HOST_RATE_COLUMNS: tuple[str, ...] = (
    "time",
    "interval_s",
    "host_cpu_cores",
    "host_memory_used_bytes",
    "host_memory_total_bytes",
    "host_net_rx_bytes_per_second",
    "host_net_tx_bytes_per_second",
    "host_disk_read_bytes_per_second",
    "host_disk_write_bytes_per_second",
    "host_logical_cpus",
)


def empty_samples() -> pd.DataFrame:
    """Return an empty samples table with the documented columns and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in _SAMPLE_DTYPES.items()})


def _check_params(owner: str, interval_s: float | None, gap_factor: float) -> None:
    if interval_s is not None and not (math.isfinite(interval_s) and interval_s > 0):
        raise InvalidParameter("interval_s", owner, "a finite number of seconds > 0", interval_s)
    if not (math.isfinite(gap_factor) and gap_factor >= 1.0):
        raise InvalidParameter("gap_factor", owner, "a finite number >= 1", gap_factor)


def _require(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    for col in columns:
        if col not in df.columns:
            fix = (
                " Add it from a clock that is never stepped (time.monotonic() at each read);"
                " rates are never computed from wall time."
                if col == "monotonic_s"
                else ""
            )
            raise InvalidSamples(
                f"the {table} table has no {col!r} column (columns: {list(df.columns)}).{fix}",
                column=col,
            )


def _utc(values: pd.Series) -> pd.Series:
    """Any datetime-like (naive = UTC, aware, ISO text, epoch ns) -> datetime64[ns, UTC]."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out = pd.to_datetime(values, unit="ns", utc=True)
    else:
        out = pd.to_datetime(values, utc=True, format="ISO8601")
    return out.astype("datetime64[ns, UTC]")


def _float(values: pd.Series) -> np.ndarray:
    """Nullable ints / objects with None -> float64 with NaN (2**53 bytes is 9 PB: exact)."""
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _interval_mask(
    dt: np.ndarray,
    series: np.ndarray,
    deltas: Sequence[np.ndarray],
    interval_s: float | None,
    gap_factor: float,
) -> np.ndarray:
    """Rows that close a usable interval: has a previous reading, dt > 0, no reset, no gap."""
    keep = np.isfinite(dt) & (dt >= MIN_INTERVAL_S)
    for delta in deltas:
        keep &= ~(delta < 0)  # NaN < 0 is False: a missing counter is not a reset
    if interval_s is not None:
        limit = np.full(dt.shape, gap_factor * interval_s)
    else:
        # changed after 184c71d on purpose: the median of the intervals within 5 rows of the
        # series (it was the whole series', which dropped a collector's every interval after
        # it was restarted at a longer --interval)
        # and the larger of that and the whole series' median (alternating intervals)
        usable = pd.Series(np.where(keep, dt, np.nan))
        local = (usable.groupby(series)
                 .transform(lambda v: v.rolling(11, center=True, min_periods=1).median())
                 .to_numpy())
        whole = usable.groupby(series).transform("median").to_numpy()
        limit = gap_factor * np.fmax(local, whole)
    keep &= ~(dt > limit)  # NaN limit (no usable interval at all) keeps nothing anyway
    return keep


def counters_to_samples(
    counters: pd.DataFrame,
    containers: pd.DataFrame,
    *,
    interval_s: float | None = None,
    gap_factor: float = 2.0,
) -> pd.DataFrame:
    """Turn raw cumulative counters into the samples table (rates per container per interval).

    Parameters
    ----------
    counters : DataFrame
        The counters table: ``time`` (UTC wall time of the round), ``monotonic_s`` (seconds
        on a clock that is never stepped, same origin for the whole table), ``container_id``,
        ``started_at`` (UTC) and the fields of :class:`capacity.sources.ContainerCounters`.
        Only ``cpu_usage_seconds_total`` and ``memory_working_set_bytes`` are required; a
        missing counter column gives NaN rates. Nullable integers may hold NaN/None/pd.NA.
        An optional ``disk_usage_bytes`` column is carried as read. Any row order.
    containers : DataFrame
        One row per container lifecycle: ``container_id`` (or ``id``), ``started_at``,
        ``name``, ``image``, ``service`` (the :class:`capacity.sources.ContainerInfo` fields).
    interval_s : float, optional
        The sampling interval in seconds, used for gap detection. Default: the median
        interval of each series, so a collector run at 10 s and one at 60 s both work.
    gap_factor : float, default 2.0
        An interval longer than ``gap_factor * interval_s`` is a gap (missed rounds, a
        stopped collector, a suspended host) and is dropped. Must be >= 1.

    Returns
    -------
    DataFrame
        Exactly :data:`capacity._columns.SAMPLE_COLUMNS` followed by
        :data:`SAMPLE_EXTRA_COLUMNS`, one row per usable interval, at the interval's end,
        sorted by ``(container_id, started_at, time)`` with a fresh index:

        - ``time`` datetime64[ns, UTC]: wall time of the reading that ends the interval;
        - ``container_id``, ``container_name``, ``service``, ``image``: str;
        - ``interval_s`` float64: monotonic seconds between the two readings;
        - ``cpu_cores``: CPU seconds used per second (1.0 = one logical CPU busy; can be
          above 1 on several cores);
        - ``memory_working_set_bytes``: the gauge read at the interval's end (not a mean);
        - ``net_*_bytes_per_second``, ``disk_*_bytes_per_second``: delta / ``interval_s``;
        - ``disk_usage_bytes``: as read, NaN where it was not sampled (it is sampled slowly);
        - ``started_at`` datetime64[ns, UTC];
        - ``cpu_throttled_fraction``: throttled periods delta / periods delta, NaN when
          there is no CPU quota (no periods counted) or no period elapsed;
        - ``memory_oom_kills``: OOM kills during the interval, float64 (NaN when not read);
        - ``net_shared`` bool: see "Shared network namespaces".

    Raises
    ------
    InvalidSamples
        A required column is missing from ``counters``.
    InvalidParameter
        ``interval_s`` is not > 0, or ``gap_factor`` is below 1.

    Notes
    -----
    **Series.** A series is one container lifecycle, keyed by ``(container_id,
    started_at)``: a restart keeps the id but resets every counter. Input is sorted by
    ``(container_id, started_at, monotonic_s)`` first, so row order does not matter.

    **Clock.** Rates divide by the delta of ``monotonic_s``, never of wall time (NTP steps
    it). A row with a missing ``monotonic_s`` or a delta below :data:`MIN_INTERVAL_S` (1 ms:
    a duplicate read, or a clock that went back) has no usable interval and is dropped; a
    missing delta is never taken as 1 s.

    **First sample.** The first reading of a series has no rate: it produces no row. A
    series read once produces nothing.

    **Resets.** A cumulative counter (:data:`COUNTER_TOTAL_COLUMNS`) that goes down within
    a series is a reset (counter wrap, cgroup recreated): the whole interval that ends on that
    reading is dropped, so no rate is ever negative. The next interval is measured from the
    reset value and is kept.

    **Gaps.** An interval longer than ``gap_factor`` x the sampling interval is dropped,
    never interpolated: an average over a long gap would flatten the peaks fitting needs.

    **NaN.** A NaN counter (not readable on this host, or missing this round) gives a NaN
    rate for that column only, in the intervals on both sides of it; other columns keep
    their values. It is never read as 0.

    **Shared network namespaces.** Containers with the same ``net_namespace`` in the same
    round (rows with equal ``time``) all read the same interface counters (``--network
    host`` or ``container:X``), which would count the traffic twice. Among the usable rows of
    that round and namespace, the first by ``container_id`` keeps the net rates, the others
    get NaN; all of them get ``net_shared=True``. Trap: with ``--network host`` the counters
    are the whole host's traffic, not the container's.

    **Metadata.** Rows are joined to ``containers`` on ``(container_id, started_at)``. A
    lifecycle without metadata gets ``container_name`` = the short id, ``image`` = ""
    and ``service`` = the name (the DESIGN.md default chain ends at the name).

    **Precision.** Counters are converted to float64, exact up to 2**53 (9 PB of bytes);
    no container counter gets near that.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.to_datetime(["2024-01-01T00:00:00Z", "2024-01-01T00:00:10Z"])
    >>> start = pd.Timestamp("2023-12-31T00:00:00Z")
    >>> counters = pd.DataFrame({"time": t, "monotonic_s": [100.0, 110.0],
    ...     "container_id": "abc", "started_at": start,
    ...     "cpu_usage_seconds_total": [5.0, 10.0], "memory_working_set_bytes": [1, 2]})
    >>> meta = pd.DataFrame({"container_id": ["abc"], "started_at": [start],
    ...     "name": ["web-1"], "image": ["web:1"], "service": ["web"]})
    >>> s = counters_to_samples(counters, meta)
    >>> s[["service", "interval_s", "cpu_cores", "memory_working_set_bytes"]]
      service  interval_s  cpu_cores  memory_working_set_bytes
    0     web        10.0        0.5                       2.0
    """
    _check_params("counters_to_samples", interval_s, gap_factor)
    required = (
        "time",
        "monotonic_s",
        "container_id",
        "started_at",
        "cpu_usage_seconds_total",
        "memory_working_set_bytes",
    )
    if len(counters) == 0:
        return empty_samples()
    _require(counters, required, "counters")

    df = pd.DataFrame(
        {
            "time": _utc(counters["time"]),
            "monotonic_s": _float(counters["monotonic_s"]),
            "container_id": counters["container_id"].astype("str"),
            "started_at": _utc(counters["started_at"]),
        }
    ).reset_index(drop=True)  # labels = positions, so `order` indexes the raw columns
    df = df.sort_values(["container_id", "started_at", "monotonic_s"], kind="stable")
    order = df.index.to_numpy()
    df = df.reset_index(drop=True)

    def column(name: str) -> np.ndarray:
        if name not in counters.columns:
            return np.full(len(df), np.nan)
        return _float(counters[name])[order]

    cid = df["container_id"].to_numpy()
    # as datetime64 (UTC): a plain to_numpy() of a tz-aware column builds a Timestamp object
    # per row, a second per million rows
    started = df["started_at"].to_numpy(dtype="datetime64[ns]")
    same = np.zeros(len(df), dtype=bool)
    same[1:] = (cid[1:] == cid[:-1]) & (started[1:] == started[:-1])
    series = np.cumsum(~same)

    def delta(values: np.ndarray) -> np.ndarray:
        d = np.full(values.shape, np.nan)
        d[1:] = values[1:] - values[:-1]
        d[~same] = np.nan
        return d

    mono = df["monotonic_s"].to_numpy()
    dt = delta(mono)
    deltas = {name: delta(column(name)) for name in COUNTER_TOTAL_COLUMNS}
    keep = _interval_mask(dt, series, list(deltas.values()), interval_s, gap_factor)

    # Shared namespaces are counted over the whole round, first samples included.
    netns = column("net_namespace")
    ns_key = pd.DataFrame({"time": df["time"], "ns": netns})
    ns_size = ns_key.groupby(["time", "ns"], dropna=True)["ns"].transform("size")
    shared = np.isfinite(netns) & (ns_size.to_numpy(dtype="float64", na_value=0) > 1)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = pd.DataFrame(
            {
                "time": df["time"],
                "container_id": df["container_id"],
                "interval_s": dt,
                **{rate: deltas[total] / dt for total, rate in _RATE_OF.items()},
                MEMORY: column(MEMORY),
                DISK_USAGE: column(DISK_USAGE),
                "started_at": df["started_at"],
                "cpu_throttled_fraction": deltas["cpu_throttled_periods_total"]
                / np.where(deltas["cpu_periods_total"] > 0, deltas["cpu_periods_total"], np.nan),
                "memory_oom_kills": deltas["memory_oom_kills_total"],
                "net_shared": shared,
                "_ns": netns,
            }
        )
    out = out[keep]

    # Among the kept rows of a shared namespace in one round, the first by id owns the traffic.
    if out["net_shared"].any():
        rank = out.groupby(["time", "_ns"], dropna=False, sort=False).cumcount()
        not_owner = out["net_shared"] & (rank > 0)
        out.loc[not_owner, list(_NET_RATES)] = np.nan
    out = out.drop(columns="_ns")

    out = _join_metadata(out, containers)
    out = out.reset_index(drop=True)
    return out[list(_SAMPLE_DTYPES)].astype(_SAMPLE_DTYPES)


def _join_metadata(out: pd.DataFrame, containers: pd.DataFrame) -> pd.DataFrame:
    """Add container_name, image and service on (container_id, started_at)."""
    meta = (
        containers.rename(columns={"id": "container_id"})
        if ("container_id" not in containers.columns and "id" in containers.columns)
        else containers
    )
    if len(meta) and {"container_id", "started_at"} <= set(meta.columns):
        wanted = {"name": "container_name", "image": "image", "service": "service"}
        meta = pd.DataFrame(
            {
                "container_id": meta["container_id"].astype("str"),
                "started_at": _utc(meta["started_at"]),
                **{
                    new: (meta[old].astype("str") if old in meta.columns else None)
                    for old, new in wanted.items()
                },
            }
        ).drop_duplicates(["container_id", "started_at"], keep="last")
        out = out.merge(meta, on=["container_id", "started_at"], how="left", sort=False)
    else:
        out = out.assign(container_name=None, image=None, service=None)
    name = out["container_name"].astype("object")
    name = name.where(name.notna(), out["container_id"].str.slice(0, 12))
    image = out["image"].astype("object").where(out["image"].notna(), "")
    service = service_key(out["service"], image, name)
    return out.assign(container_name=name, image=image, service=service)


def service_key(service: pd.Series | None, image: pd.Series | None,
                name: pd.Series) -> pd.Series:
    """The grouping key per row: ``service`` where set and not empty, else ``image``, else
    ``name`` (the rule the collector uses for containers without a Compose label).

    An empty service would pool every container without one into a single service ``""``.
    """

    def text(s: pd.Series | None) -> pd.Series:
        if s is None:
            return pd.Series("", index=name.index, dtype="object")
        t = s.astype("object").where(s.notna(), "")
        return t.map(lambda v: str(v).strip())

    key = text(service)
    img = text(image)
    key = key.where(key != "", img)
    return key.where(key != "", text(name))


def host_to_rates(
    host: pd.DataFrame,
    *,
    interval_s: float | None = None,
    gap_factor: float = 2.0,
) -> pd.DataFrame:
    """Turn the host table (HostCounters per round) into host rates, one row per interval.

    Parameters
    ----------
    host : DataFrame
        ``time`` (UTC), ``monotonic_s`` and the fields of
        :class:`capacity.sources.HostCounters`; a missing column gives NaN.
    interval_s, gap_factor
        As in :func:`counters_to_samples`.

    Returns
    -------
    DataFrame
        :data:`HOST_RATE_COLUMNS`: ``time`` (datetime64[ns, UTC], end of the interval),
        ``interval_s`` (s), ``host_cpu_cores`` (CPU seconds per second over all logical
        CPUs), ``host_memory_used_bytes`` and ``host_memory_total_bytes`` (gauges at the
        interval's end), ``host_{net_rx,net_tx,disk_read,disk_write}_bytes_per_second``,
        ``host_logical_cpus``. All float64 but ``time``.

    Notes
    -----
    The same rules as :func:`counters_to_samples` over one series, with one difference:
    rows are sorted by wall ``time``, not by ``monotonic_s``, since a host table can span
    reboots and the monotonic clock restarts at each boot. The interval across a reboot has
    a delta <= 0 or counters that went down, and is dropped. Trap: a wall clock stepped back
    by more than one interval reorders rounds; those intervals are dropped too, never
    negative.
    """
    _check_params("host_to_rates", interval_s, gap_factor)
    if len(host) == 0:
        return pd.DataFrame(
            {
                c: pd.Series([], dtype="datetime64[ns, UTC]" if c == "time" else "float64")
                for c in HOST_RATE_COLUMNS
            }
        )
    _require(host, ("time", "monotonic_s"), "host")
    time = _utc(host["time"])
    order = np.argsort(time.to_numpy(dtype="datetime64[ns]"), kind="stable")

    def column(name: str) -> np.ndarray:
        if name not in host.columns:
            return np.full(len(host), np.nan)
        return _float(host[name])[order]

    def delta(values: np.ndarray) -> np.ndarray:
        d = np.full(values.shape, np.nan)
        d[1:] = values[1:] - values[:-1]
        return d

    dt = delta(column("monotonic_s"))
    deltas = {name: delta(column(name)) for name in _HOST_TOTALS}
    keep = _interval_mask(
        dt, np.zeros(len(dt), dtype=np.int64), list(deltas.values()), interval_s, gap_factor
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = pd.DataFrame(
            {
                "time": time.iloc[order].reset_index(drop=True),
                "interval_s": dt,
                **{rate: deltas[total] / dt for total, rate in _HOST_TOTALS.items()},
                **{rate: column(gauge) for gauge, rate in _HOST_GAUGES.items()},
            }
        )
    out = out[keep].reset_index(drop=True)
    return out[list(HOST_RATE_COLUMNS)].astype(
        {c: "float64" for c in HOST_RATE_COLUMNS if c != "time"}
    )


# From capacity/store/_sqlite.py as of main 184c71d: how Store.samples attached disk usage.
def _attach_disk_usage(counters: pd.DataFrame, disk: pd.DataFrame) -> pd.DataFrame:
    """Put each disk reading on the nearest counters row of the same lifecycle."""
    left = disk.assign(
        _key=disk["container_id"].astype("str")
        + "|"
        + disk["started_at"].astype("int64").astype("str")
    )
    right = counters[["time", "container_id", "started_at"]].assign(
        _row=np.arange(len(counters)),
        _key=counters["container_id"].astype("str")
        + "|"
        + counters["started_at"].astype("int64").astype("str"),
    )
    matched = pd.merge_asof(
        left.sort_values("time"),
        right.sort_values("time")[["time", "_key", "_row"]],
        on="time",
        by="_key",
        direction="nearest",
    ).dropna(subset=["_row"])
    matched = matched.drop_duplicates("_row", keep="last")
    values = np.full(len(counters), np.nan)
    values[matched["_row"].astype("int64").to_numpy()] = matched["disk_usage_bytes"].astype(
        "float64"
    )
    return counters.assign(disk_usage_bytes=values)

