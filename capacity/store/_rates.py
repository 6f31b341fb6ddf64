"""Cumulative counters -> rates: the one place where resets, gaps and churn are handled.

Two functions, both pure and vectorised (no Python loop per row):

- :func:`counters_to_samples` turns the counters table (one raw reading per container per
  round, see :mod:`capacity._columns`) into the samples table (one row per container per
  interval, rates averaged over the interval).
- :func:`host_to_rates` does the same for the host table (one :class:`HostCounters` per round).

The rules, shared by both, are spelled out in the docstring of :func:`counters_to_samples`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

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

__all__ = [
    "COUNTER_TOTAL_COLUMNS",
    "HOST_RATE_COLUMNS",
    "MIN_INTERVAL_S",
    "SAMPLE_EXTRA_COLUMNS",
    "counters_to_samples",
    "empty_samples",
    "host_to_rates",
    "service_codes",
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

#: the totals whose deltas the samples table reports (the others only reveal resets)
_REPORTED_TOTALS = frozenset(
    {*_RATE_OF, "cpu_periods_total", "cpu_throttled_periods_total", "memory_oom_kills_total"}
)

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
    reset: np.ndarray,
    interval_s: float | None,
    gap_factor: float,
) -> np.ndarray:
    """Rows that close a usable interval: has a previous reading, dt > 0, no reset (a
    counter went down), no gap. ``series`` sorted (each series one run of rows)."""
    keep = np.isfinite(dt) & (dt >= MIN_INTERVAL_S) & ~reset
    if interval_s is not None:
        keep &= ~(dt > gap_factor * interval_s)
    else:  # a row with no usable interval near it is not kept anyway
        keep &= ~_local_gaps(np.where(keep, dt, np.nan), series, gap_factor)
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
        of the intervals near each one in its series (:data:`GAP_WINDOW` either side), so a
        collector run at 10 s and one at 60 s both work, and so does one store filled at
        1 s and then at 10 s (the median of the whole series took every 10 s interval for a
        gap).
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
    Without ``interval_s``, the sampling interval is the median of the usable intervals
    within :data:`GAP_WINDOW` rows of the same series: an interval that changed mid-way
    (a collector restarted at another ``--interval``) keeps both periods; the profile says
    the interval changed.

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

    series, lifecycles = _lifecycle_codes(
        counters["container_id"].astype("str"), _utc(counters["started_at"])
    )
    mono = _float(counters["monotonic_s"])
    # sorted by (container_id, started_at, monotonic_s); stable, so row order breaks ties
    order = np.lexsort((mono, series))

    def column(name: str, out: np.ndarray | None = None) -> np.ndarray | None:
        if name not in counters.columns:
            return None
        return np.take(_float(counters[name]), order, out=out)

    return _lifecycle_samples(
        series[order],
        lifecycles,
        _epoch_ns(_utc(counters["time"]))[order],
        mono[order],
        column,
        containers,
        interval_s=interval_s,
        gap_factor=gap_factor,
    )


def _without_glitches(samples: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with a reading no machine can give (:data:`capacity._columns.PLAUSIBLE_MAX`:
    a counter read once as 2**62, a glitch of the kernel or the engine's API) made NaN, as a
    reset makes the interval across it (a CPU rate: the row left out, as every row has one),
    and said in a warning.

    Counters are the collector's own data: the user cannot drop a row of the store, so
    refusing it (as a samples file is refused) would leave every report UNKNOWN until the
    glitch leaves the ``--since`` window. Trap: only past the bound; a reading under it that
    is still wrong is kept."""
    from .._columns import PLAUSIBLE_MAX, PLAUSIBLE_TEXT

    for col, bound in PLAUSIBLE_MAX.items():
        if col not in samples.columns:
            continue
        over = samples[col].to_numpy(dtype=float, na_value=np.nan) > bound
        if over.any():
            first = int(np.flatnonzero(over)[0])
            warnings.warn(
                f"{int(over.sum())} reading(s) of {col} above {PLAUSIBLE_TEXT[col]} (no machine "
                f"gives one; first {samples[col].iloc[first]:g} for container "
                f"{str(samples['container_id'].iloc[first])[:12]}) are left out as counter "
                "glitches", stacklevel=4)
            if col == CPU:  # every row has a CPU rate: the row goes, as a reset's does
                samples = samples.loc[~over].reset_index(drop=True)
            else:
                samples.loc[over, col] = np.nan
    return samples


#: rows per step of :func:`_diff_in_place` (8 MiB of float64: reused heap, not a new mapping)
_DIFF_BLOCK = 1 << 20


def _diff_in_place(values: np.ndarray) -> None:
    """``values[i] -= values[i - 1]`` for every i >= 1 (the same subtraction as
    ``values[1:] - values[:-1]``), from the end a block at a time, so no second array of
    the whole length is made. ``values[0]`` is left as it is."""
    end = len(values)
    while end > 1:
        start = max(1, end - _DIFF_BLOCK)
        before = values[start - 1 : end - 1].copy()
        values[start:end] -= before
        end = start


def _epoch_ns(values: pd.Series) -> np.ndarray:
    """datetime64[ns, UTC] -> int64 epoch ns (NaT -> the int64 minimum, as numpy has it)."""
    return values.to_numpy(dtype="datetime64[ns]").view("int64")


def _lifecycle_codes(container_id: pd.Series, started_at: pd.Series) -> tuple[np.ndarray,
                                                                             pd.DataFrame]:
    """One int64 code per row for its series, numbered in ``(container_id, started_at)``
    order, and the table of series (``container_id``, ``started_at``; row = code).

    A row with a missing id or start time is a series of its own (coded after the others),
    as an equality test of missing values has it: it never continues another reading.
    """
    ids, id_values = pd.factorize(container_id, sort=True)
    starts, start_values = pd.factorize(started_at, sort=True)
    width = max(len(start_values), 1)
    missing = (ids < 0) | (starts < 0)
    codes, pairs = pd.factorize(np.where(missing, -1, ids.astype("int64") * width + starts),
                                sort=True)
    single = np.flatnonzero(missing)
    if len(single):  # the -1 pair sorts first: give each of its rows a code of its own
        pairs = pairs[1:]
        codes = codes - 1
        codes[single] = len(pairs) + np.arange(len(single))
    lifecycles = pd.DataFrame(
        {
            "container_id": pd.concat(
                [pd.Series(id_values.take(pairs // width)), container_id.iloc[single]],
                ignore_index=True,
            ).astype("str"),
            "started_at": pd.concat(
                [pd.Series(start_values.take(pairs % width)), started_at.iloc[single]],
                ignore_index=True,
            ).astype("datetime64[ns, UTC]"),
        }
    )
    return codes.astype("int64"), lifecycles


#: intervals either side of an interval that say what the sampling interval was there: a
#: gap is an interval longer than ``gap_factor`` x the median of the usable intervals
#: within this many rows of the same series (itself included), and than the median of the
#: whole series (intervals that alternate are no gaps). The median of a whole series alone
#: took a collector restarted at 10 s after a longer run at 1 s for a stream of gaps and
#: dropped every 10 s sample; locally, up to this many long intervals in a row are gaps,
#: and a new interval is the sampling interval from its (window + 1)-th interval on.
GAP_WINDOW = 5


def _local_gaps(usable: np.ndarray, series: np.ndarray, gap_factor: float) -> np.ndarray:
    """Rows whose interval (``usable``: NaN where none) is longer than ``gap_factor`` x the
    larger of the median of the non-NaN intervals within :data:`GAP_WINDOW` rows of it in
    its series (itself included) and the median of its whole series; ``series`` sorted, so
    each series is one run of rows.

    The rows are laid out with :data:`GAP_WINDOW` NaN between two series, so no window
    reaches into another. The median is taken only where the interval exceeds ``gap_factor``
    x the window's least interval (a minimum over shifted copies): elsewhere it cannot be a
    gap, so a regular history costs a few passes over the array, not a median per row."""
    n = len(usable)
    if n == 0:
        return np.zeros(0, dtype=bool)
    w = GAP_WINDOW
    run = np.concatenate(([0], np.cumsum(series[1:] != series[:-1])))
    position = w + np.arange(n) + run * w
    padded = np.full(n + int(run[-1]) * w + 2 * w, np.nan)
    padded[position] = usable
    least = padded.copy()
    for shift in range(1, w + 1):  # fmin skips NaN: the least non-NaN interval in the window
        np.fmin(least[:-shift], padded[shift:], out=least[:-shift])
        np.fmin(least[shift:], padded[:-shift], out=least[shift:])
    with np.errstate(invalid="ignore"):
        candidate = np.flatnonzero(usable > gap_factor * least[position])
    gaps = np.zeros(n, dtype=bool)
    if len(candidate):
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)
        median = np.nanmedian(windows[position[candidate] - w], axis=1)
        # nor than the whole series' median: intervals alternating 1 s and 10 s have a
        # local median of 1 s at every 10 s one (6 of the 11), which dropped 47 of 50
        whole = pd.Series(usable).groupby(run).median().to_numpy()[run[candidate]]
        gaps[candidate] = usable[candidate] > gap_factor * np.fmax(median, whole)
    return gaps


def _shared_namespace(time_ns: np.ndarray, netns: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Rows whose ``(time, net_namespace)`` another row has too (a round, one namespace).
    ``series`` sorted (each series one run of rows)."""
    valid = np.isfinite(netns) & (time_ns != np.iinfo("int64").min)
    shared = np.zeros(len(netns), dtype=bool)
    rows = np.flatnonzero(valid & _namespace_candidates(time_ns, netns, series))
    if not len(rows):
        return shared
    t_codes, _ = pd.factorize(time_ns[rows])
    n_codes, n_values = pd.factorize(netns[rows])
    pair, _ = pd.factorize(t_codes.astype("int64") * len(n_values) + n_codes)
    shared[rows] = np.bincount(pair)[pair] > 1
    return shared


def _namespace_candidates(time_ns: np.ndarray, netns: np.ndarray,
                          series: np.ndarray) -> np.ndarray:
    """Rows that may share a ``(time, net_namespace)`` with another row; the others cannot.

    Counting every row's ``(time, namespace)`` pair takes three hash passes over millions
    of rows, and most containers have a namespace of their own. When time does not go back
    within any series, a row can only share its pair if its namespace is seen in two series
    or more, or if its series holds one time twice; only those rows need counting.
    """
    n = len(series)
    everything = np.ones(n, dtype=bool)
    same = series[1:] == series[:-1]
    if not np.all(~same | (time_ns[1:] >= time_ns[:-1])):
        return everything
    change = np.ones(n, dtype=bool)
    change[1:] = ~same | ~(netns[1:] == netns[:-1])  # NaN != NaN: a run of its own
    starts = np.flatnonzero(change)
    if len(starts) > n // 4:
        return everything
    lengths = np.diff(np.append(starts, n))
    run_ns, run_series = netns[starts], series[starts]
    finite = np.isfinite(run_ns)
    codes, values = pd.factorize(run_ns[finite])
    width = int(series.max()) + 1 if n else 1
    pairs = np.unique(codes.astype("int64") * width + run_series[finite])
    series_per_ns = np.bincount(pairs // width, minlength=len(values))
    candidate = np.zeros(len(starts), dtype=bool)
    candidate[finite] = series_per_ns[codes] > 1
    out = np.repeat(candidate, lengths)
    twice = same & (time_ns[1:] == time_ns[:-1])
    if twice.any():
        out |= np.isin(series, np.unique(series[1:][twice]))
    return out


def _lifecycle_samples(
    series: np.ndarray,
    lifecycles: pd.DataFrame,
    time_ns: np.ndarray,
    mono: np.ndarray,
    column: Callable[[str, np.ndarray | None], np.ndarray | None],
    containers: pd.DataFrame,
    *,
    interval_s: float | None,
    gap_factor: float,
) -> pd.DataFrame:
    """The rules of :func:`counters_to_samples` on rows already sorted by ``(series,
    monotonic_s)``: ``series`` int64 codes into ``lifecycles`` (``container_id``,
    ``started_at``), ``time_ns`` epoch ns, ``mono`` seconds, ``column(name, out)`` the
    float64 values of a counters field in that order (None: not read), written into
    ``out`` when it is an array (a buffer the caller no longer needs), else into a new
    array that this function may change. :meth:`Store.samples` calls it on the arrays it
    read, without a counters DataFrame."""
    n = len(series)
    same = np.zeros(n, dtype=bool)
    same[1:] = series[1:] == series[:-1]
    dt = np.full(n, np.nan)
    dt[1:] = mono[1:] - mono[:-1]
    dt[~same] = np.nan  # a series' first reading has no interval
    # A cumulative counter that went down is a reset (NaN compares False: not one). Flags on
    # a series' first row do not matter: it has no interval. Only the totals the samples
    # report are kept; the rest serve the reset test alone.
    reset = np.zeros(n, dtype=bool)
    totals: dict[str, np.ndarray] = {}  # reported total -> its deltas to the previous row
    scratch: np.ndarray | None = None  # one buffer for every total read for resets alone
    for name in COUNTER_TOTAL_COLUMNS:
        reported = name in _REPORTED_TOTALS
        values = column(name, None if reported else scratch)
        if values is None:
            continue
        reset[1:] |= values[1:] < values[:-1]
        if reported:
            _diff_in_place(values)
            totals[name] = values
        else:
            scratch = values
    del scratch
    keep = _interval_mask(dt, series, reset, interval_s, gap_factor)

    # Shared namespaces are counted over the whole round, first samples included.
    netns = column("net_namespace", None)
    if netns is None:
        netns = np.full(n, np.nan)
    shared = _shared_namespace(time_ns, netns, series)

    rows = np.flatnonzero(keep)  # each has a previous row in its series
    kept_series = series[rows]
    kept_dt = dt[rows]
    del dt, same, reset

    def delta(name: str) -> np.ndarray:
        # each total freed once used, arithmetic in place: at millions of rows every new
        # array is a fresh mapping of memory whose pages the kernel fills on first touch
        # (about 0.1 s of system time per column here)
        deltas = totals.pop(name, None)
        if deltas is None:
            return np.full(len(rows), np.nan)
        return deltas[rows]

    def per_second(name: str) -> np.ndarray:
        out = delta(name)
        out /= kept_dt
        return out

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rates = {name: per_second(total) for total, name in _RATE_OF.items()}
        periods = delta("cpu_periods_total")
        throttled = delta("cpu_throttled_periods_total") / np.where(periods > 0, periods,
                                                                     np.nan)
    kept_shared = shared[rows]
    # Among the kept rows of a shared namespace in one round, the first by id owns the traffic.
    if kept_shared.any():
        candidates = np.flatnonzero(kept_shared)
        t_codes, _ = pd.factorize(time_ns[rows][candidates])
        n_codes, n_values = pd.factorize(netns[rows][candidates])
        pair, _ = pd.factorize(t_codes.astype("int64") * len(n_values) + n_codes)
        owner = np.zeros(len(candidates), dtype=bool)
        owner[np.unique(pair, return_index=True)[1]] = True
        for rate in _NET_RATES:
            rates[rate][candidates[~owner]] = np.nan

    def gauge(name: str) -> np.ndarray:
        values = column(name, None)
        return np.full(len(rows), np.nan) if values is None else values[rows]

    meta = _join_metadata(lifecycles, containers)
    strings = {c: meta[c].astype("str").array for c in ("container_id", "container_name",
                                                         "service", "image")}
    started = _epoch_ns(meta["started_at"])[kept_series]
    data = {
        "time": _from_epoch_ns(time_ns[rows]),
        **{c: strings[c].take(kept_series) for c in ("container_id", "container_name",
                                                      "service", "image")},
        "interval_s": kept_dt,
        CPU: rates[CPU],
        MEMORY: gauge(MEMORY),
        NET_RX: rates[NET_RX],
        NET_TX: rates[NET_TX],
        DISK_READ: rates[DISK_READ],
        DISK_WRITE: rates[DISK_WRITE],
        DISK_USAGE: gauge(DISK_USAGE),
        "started_at": _from_epoch_ns(started),
        "cpu_throttled_fraction": throttled,
        "memory_oom_kills": delta("memory_oom_kills_total"),
        "net_shared": kept_shared,
    }
    # copy=False: each column stays the array it is (no consolidated copy of the floats)
    out = pd.DataFrame({c: data[c] for c in _SAMPLE_DTYPES}, copy=False)
    return _without_glitches(out.astype(_SAMPLE_DTYPES))


def _from_epoch_ns(values: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(values.view("datetime64[ns]"), tz="UTC")


def _join_metadata(lifecycles: pd.DataFrame, containers: pd.DataFrame) -> pd.DataFrame:
    """Add container_name, image and service to one row per series on (container_id,
    started_at)."""
    out = lifecycles
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
    Returns an object Series of str (stripped), on ``name``'s index.
    """
    codes, keys = service_codes(service, image, name)
    return pd.Series(keys.take(codes), index=name.index, dtype="object")


def service_codes(service: pd.Series | None, image: pd.Series | None,
                  name: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`service_key` as codes: (int64 code per row, object array of the distinct
    keys), ``keys.take(codes)`` being the key of each row.

    Each column is stripped once per distinct value, not per row: a fleet's week is millions
    of rows over a few hundred containers (4 M rows: one Python string per row per column
    was ~1.5 GiB and 8 s). Missing values (None, NaN, pd.NA) count as ``""``.
    """
    n = len(name)

    def coded(s: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        if s is None:
            return np.zeros(n, dtype=np.int64), np.array([""], dtype=object)
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        # code -1 (missing) takes the last entry, ""
        text = np.array([*(str(v).strip() for v in uniques), ""], dtype=object)
        return codes.astype(np.int64), text

    parts = [coded(service), coded(image), coded(name)]
    choice = np.full(n, 2, dtype=np.int8)  # 0: service, 1: image, 2: name
    for k in (1, 0):  # the image where the service is empty, the service where it is not
        codes, text = parts[k]
        choice[(text != "")[codes]] = k
    offsets = np.cumsum([0, *(len(text) for _, text in parts)])
    row = np.empty(n, dtype=np.int64)
    for k, (codes, text) in enumerate(parts):
        pick = choice == k
        row[pick] = (codes[pick] % len(text)) + offsets[k]  # -1 -> the last entry, ""
    keys, where = pd.factorize(np.concatenate([text for _, text in parts]))
    # only the keys some row uses (an image whose rows all have a service is none), in
    # order of first use
    used, codes = np.unique(keys[row], return_inverse=True)
    distinct = np.asarray(where, dtype=object)[used]
    return codes.astype(np.int64).reshape(-1), distinct


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
    reset = np.zeros(len(dt), dtype=bool)
    for d in deltas.values():
        reset |= d < 0  # NaN < 0 is False: a missing counter is not a reset
    keep = _interval_mask(dt, np.zeros(len(dt), dtype=np.int64), reset, interval_s, gap_factor)
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
