"""counters_to_samples and host_to_rates: exact numbers for each rule in the docstring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity._columns import SAMPLE_COLUMNS
from capacity._errors import InvalidParameter, InvalidSamples
from capacity.store import (
    HOST_RATE_COLUMNS,
    SAMPLE_EXTRA_COLUMNS,
    counters_to_samples,
    host_to_rates,
)

T0 = pd.Timestamp("2024-05-01T12:00:00Z")
START = pd.Timestamp("2024-05-01T11:00:00Z")
#: float tolerance for rates computed from exact binary fractions
REL = 1e-12


def _counters(rows: list[dict]) -> pd.DataFrame:
    """Rows with defaults: id "a", started at START, time = T0 + monotonic_s."""
    full = []
    for r in rows:
        r = {"container_id": "a", "started_at": START, "memory_working_set_bytes": 100, **r}
        if "time" not in r:
            r["time"] = T0 + pd.Timedelta(seconds=r["monotonic_s"])
        full.append(r)
    return pd.DataFrame(full)


def _meta(*ids: str, started_at: pd.Timestamp = START) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "container_id": list(ids),
            "started_at": [started_at] * len(ids),
            "name": [f"n-{i}" for i in ids],
            "image": [f"img-{i}" for i in ids],
            "service": [f"svc-{i}" for i in ids],
        }
    )


def test_columns_and_dtypes_exact() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 1.0},
            {"monotonic_s": 10.0, "cpu_usage_seconds_total": 6.0},
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s.columns) == [*SAMPLE_COLUMNS, *SAMPLE_EXTRA_COLUMNS]
    assert str(s["time"].dtype) == "datetime64[ns, UTC]"
    assert str(s["started_at"].dtype) == "datetime64[ns, UTC]"
    assert s["net_shared"].dtype == bool
    assert s.loc[0, "cpu_cores"] == 0.5
    assert s.loc[0, "interval_s"] == 10.0
    assert s.loc[0, "time"] == T0 + pd.Timedelta(seconds=10)
    assert (s.loc[0, "container_name"], s.loc[0, "image"], s.loc[0, "service"]) == (
        "n-a",
        "img-a",
        "svc-a",
    )


def test_empty_input_gives_typed_empty_frame() -> None:
    c = _counters([{"monotonic_s": 0.0, "cpu_usage_seconds_total": 1.0}]).iloc[:0]
    s = counters_to_samples(c, _meta())
    full = counters_to_samples(
        _counters(
            [
                {"monotonic_s": 0.0, "cpu_usage_seconds_total": 1.0},
                {"monotonic_s": 1.0, "cpu_usage_seconds_total": 2.0},
            ]
        ),
        _meta("a"),
    )
    assert len(s) == 0
    assert list(s.columns) == list(full.columns)
    assert s.dtypes.to_dict() == full.dtypes.to_dict()


def test_first_sample_has_no_row_and_single_reading_gives_nothing() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 1.0},
            {"monotonic_s": 5.0, "cpu_usage_seconds_total": 2.0},
            {"monotonic_s": 10.0, "cpu_usage_seconds_total": 4.0},
            {"container_id": "b", "monotonic_s": 10.0, "cpu_usage_seconds_total": 9.0},
        ]
    )
    s = counters_to_samples(c, _meta("a", "b"))
    assert list(s["container_id"]) == ["a", "a"]
    assert list(s["cpu_cores"]) == [0.2, 0.4]


def test_reset_drops_the_interval_and_keeps_the_next() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 10.0, "net_rx_bytes_total": 1000},
            {"monotonic_s": 10.0, "cpu_usage_seconds_total": 20.0, "net_rx_bytes_total": 2000},
            {"monotonic_s": 20.0, "cpu_usage_seconds_total": 2.0, "net_rx_bytes_total": 100},
            {"monotonic_s": 30.0, "cpu_usage_seconds_total": 7.0, "net_rx_bytes_total": 600},
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s["interval_s"]) == [10.0, 10.0]
    assert list(s["cpu_cores"]) == [1.0, 0.5]
    assert list(s["net_rx_bytes_per_second"]) == [100.0, 50.0]
    assert list(s["time"]) == [T0 + pd.Timedelta(seconds=10), T0 + pd.Timedelta(seconds=30)]


def test_reset_of_a_secondary_counter_also_drops_the_interval() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 1.0, "disk_read_bytes_total": 50},
            {"monotonic_s": 1.0, "cpu_usage_seconds_total": 2.0, "disk_read_bytes_total": 10},
            {"monotonic_s": 2.0, "cpu_usage_seconds_total": 3.0, "disk_read_bytes_total": 30},
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s["disk_read_bytes_per_second"]) == [20.0]


def test_restart_is_a_new_series_keyed_by_started_at() -> None:
    later = START + pd.Timedelta(minutes=30)
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 100.0},
            {"monotonic_s": 10.0, "cpu_usage_seconds_total": 110.0},
            # restarted: same id, counters from zero; the first reading has no rate
            {"monotonic_s": 20.0, "cpu_usage_seconds_total": 0.5, "started_at": later},
            {"monotonic_s": 30.0, "cpu_usage_seconds_total": 2.5, "started_at": later},
        ]
    )
    meta = pd.concat([_meta("a"), _meta("a", started_at=later).assign(name="n-a2")])
    s = counters_to_samples(c, meta)
    assert list(s["cpu_cores"]) == [1.0, 0.2]
    assert list(s["container_name"]) == ["n-a", "n-a2"]
    assert list(s["started_at"]) == [START, later]


def test_gap_longer_than_factor_times_median_is_dropped() -> None:
    mono = [0.0, 10.0, 20.0, 30.0, 75.0, 85.0]  # 45 s > 2 x median 10 s
    cpu = [0.0, 1.0, 2.0, 3.0, 100.0, 101.0]
    c = _counters(
        [{"monotonic_s": m, "cpu_usage_seconds_total": v} for m, v in zip(mono, cpu, strict=True)]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s["interval_s"]) == [10.0, 10.0, 10.0, 10.0]
    assert list(s["cpu_cores"]) == [0.1, 0.1, 0.1, 0.1]
    # with a larger factor the long interval is kept, averaged as it is
    s3 = counters_to_samples(c, _meta("a"), gap_factor=5.0)
    assert list(s3["interval_s"]) == [10.0, 10.0, 10.0, 45.0, 10.0]
    # with the interval given, 2 x 5 s = 10 s: only intervals <= 10 s are kept
    s_given = counters_to_samples(c, _meta("a"), interval_s=5.0)
    assert list(s_given["interval_s"]) == [10.0, 10.0, 10.0, 10.0]
    s_tight = counters_to_samples(c, _meta("a"), interval_s=4.0)
    assert len(s_tight) == 0


def test_non_increasing_or_missing_monotonic_is_never_taken_as_one_second() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0},
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 1.0, "time": T0},  # dt == 0
            {"monotonic_s": 2.0, "cpu_usage_seconds_total": 2.0},
            {"monotonic_s": 2.0 + 1e-6, "cpu_usage_seconds_total": 2.5},  # a duplicate read
            {"monotonic_s": np.nan, "cpu_usage_seconds_total": 3.0, "time": T0},
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s["interval_s"]) == [2.0]
    assert list(s["cpu_cores"]) == [0.5]


def test_unsorted_input_is_sorted() -> None:
    rows = [
        {"container_id": cid, "monotonic_s": m, "cpu_usage_seconds_total": m * k}
        for cid, k in (("b", 0.25), ("a", 0.5))
        for m in (0.0, 4.0, 8.0)
    ]
    c = _counters(rows)
    shuffled = c.sample(frac=1.0, random_state=7)
    s = counters_to_samples(shuffled, _meta("a", "b"))
    assert list(s["container_id"]) == ["a", "a", "b", "b"]
    assert list(s["cpu_cores"]) == [0.5, 0.5, 0.25, 0.25]
    assert list(s.index) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(s, counters_to_samples(c, _meta("a", "b")))


def test_nan_counter_gives_nan_for_that_column_only() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0, "net_tx_bytes_total": 0},
            {"monotonic_s": 1.0, "cpu_usage_seconds_total": 1.0, "net_tx_bytes_total": None},
            {"monotonic_s": 2.0, "cpu_usage_seconds_total": 2.0, "net_tx_bytes_total": 40},
            {"monotonic_s": 3.0, "cpu_usage_seconds_total": 3.0, "net_tx_bytes_total": 50},
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s["cpu_cores"]) == [1.0, 1.0, 1.0]
    tx = s["net_tx_bytes_per_second"].tolist()
    assert np.isnan(tx[0]) and np.isnan(tx[1]) and tx[2] == 10.0
    # counters this host cannot read are NaN, never 0
    assert s["disk_read_bytes_per_second"].isna().all()
    assert s["cpu_throttled_fraction"].isna().all()
    assert s["disk_usage_bytes"].isna().all()


def test_nullable_int_columns_are_accepted() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0, "net_rx_bytes_total": 0},
            {"monotonic_s": 2.0, "cpu_usage_seconds_total": 1.0, "net_rx_bytes_total": None},
            {"monotonic_s": 4.0, "cpu_usage_seconds_total": 2.0, "net_rx_bytes_total": 8},
        ]
    )
    c["net_rx_bytes_total"] = c["net_rx_bytes_total"].astype("Int64")
    s = counters_to_samples(c, _meta("a"))
    assert s["net_rx_bytes_per_second"].isna().tolist() == [True, True]


def test_memory_is_the_gauge_at_the_end_and_disk_usage_as_read() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0, "memory_working_set_bytes": 1},
            {
                "monotonic_s": 1.0,
                "cpu_usage_seconds_total": 0.0,
                "memory_working_set_bytes": 500,
                "disk_usage_bytes": 4096.0,
            },
            {"monotonic_s": 2.0, "cpu_usage_seconds_total": 0.0, "memory_working_set_bytes": 300},
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert list(s["memory_working_set_bytes"]) == [500.0, 300.0]
    assert s["disk_usage_bytes"].iloc[0] == 4096.0
    assert np.isnan(s["disk_usage_bytes"].iloc[1])


def test_throttled_fraction_and_oom_kills() -> None:
    c = _counters(
        [
            {
                "monotonic_s": 0.0,
                "cpu_usage_seconds_total": 0.0,
                "cpu_periods_total": 100,
                "cpu_throttled_periods_total": 10,
                "memory_oom_kills_total": 0,
            },
            {
                "monotonic_s": 1.0,
                "cpu_usage_seconds_total": 0.5,
                "cpu_periods_total": 110,
                "cpu_throttled_periods_total": 14,
                "memory_oom_kills_total": 2,
            },
            {
                "monotonic_s": 2.0,
                "cpu_usage_seconds_total": 0.5,
                "cpu_periods_total": 110,  # idle: no period elapsed -> NaN, not 0/0
                "cpu_throttled_periods_total": 14,
                "memory_oom_kills_total": 2,
            },
        ]
    )
    s = counters_to_samples(c, _meta("a"))
    assert s["cpu_throttled_fraction"].iloc[0] == pytest.approx(0.4, rel=REL)
    assert np.isnan(s["cpu_throttled_fraction"].iloc[1])
    assert list(s["memory_oom_kills"]) == [2.0, 0.0]


def test_shared_network_namespace_counted_once() -> None:
    rows = []
    for m, rx in ((0.0, 0), (10.0, 1000), (20.0, 3000)):
        for cid in ("c", "b", "a"):  # unsorted ids on purpose
            rows.append(
                {
                    "container_id": cid,
                    "monotonic_s": m,
                    "cpu_usage_seconds_total": m,
                    "net_rx_bytes_total": rx if cid != "c" else 5 * m,
                    "net_tx_bytes_total": rx // 2 if cid != "c" else 0,
                    "net_namespace": 4026531992 if cid != "c" else 4026532000,
                }
            )
    s = counters_to_samples(_counters(rows), _meta("a", "b", "c"))
    a, b, c = (s[s["container_id"] == x] for x in "abc")
    assert list(a["net_rx_bytes_per_second"]) == [100.0, 200.0]
    assert list(a["net_tx_bytes_per_second"]) == [50.0, 100.0]
    assert b["net_rx_bytes_per_second"].isna().all()
    assert b["net_tx_bytes_per_second"].isna().all()
    assert a["net_shared"].all() and b["net_shared"].all()
    assert list(c["net_rx_bytes_per_second"]) == [5.0, 5.0]
    assert not c["net_shared"].any()
    # the namespace's traffic sums to what the interface saw, once
    assert s["net_rx_bytes_per_second"].sum() == 100.0 + 200.0 + 5.0 + 5.0


def test_shared_namespace_owner_is_the_first_usable_row() -> None:
    # "a" joins at monotonic 10: its first reading has no rate, so "b" keeps the traffic then
    rows = [
        {"container_id": "b", "monotonic_s": 0.0, "net_rx_bytes_total": 0},
        {"container_id": "b", "monotonic_s": 10.0, "net_rx_bytes_total": 100},
        {"container_id": "a", "monotonic_s": 10.0, "net_rx_bytes_total": 100},
        {"container_id": "b", "monotonic_s": 20.0, "net_rx_bytes_total": 300},
        {"container_id": "a", "monotonic_s": 20.0, "net_rx_bytes_total": 300},
    ]
    for r in rows:
        r.update(cpu_usage_seconds_total=0.0, net_namespace=7)
    s = counters_to_samples(_counters(rows), _meta("a", "b"))
    got = {(r.container_id, r.interval_s): r.net_rx_bytes_per_second for r in s.itertuples()}
    assert got[("a", 10.0)] == 20.0
    assert np.isnan(got[("b", 10.0)])
    assert s["net_shared"].all()
    first = s[s["time"] == T0 + pd.Timedelta(seconds=10)]
    assert list(first["container_id"]) == ["b"] and first["net_rx_bytes_per_second"].iloc[0] == 10


def test_missing_metadata_falls_back_to_short_id() -> None:
    cid = "0123456789abcdef0123"
    c = _counters(
        [
            {"container_id": cid, "monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0},
            {"container_id": cid, "monotonic_s": 1.0, "cpu_usage_seconds_total": 1.0},
        ]
    )
    s = counters_to_samples(c, _meta())
    assert (s["container_name"].iloc[0], s["image"].iloc[0], s["service"].iloc[0]) == (
        cid[:12],
        "",
        cid[:12],
    )


def test_time_as_text_and_id_column_named_id() -> None:
    c = _counters(
        [
            {"monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0},
            {"monotonic_s": 1.0, "cpu_usage_seconds_total": 1.0},
        ]
    )
    c["time"] = c["time"].map(lambda t: t.isoformat())
    c["started_at"] = START.isoformat()
    meta = _meta("a").rename(columns={"container_id": "id"})
    s = counters_to_samples(c, meta)
    assert s["service"].iloc[0] == "svc-a"
    assert s["time"].iloc[0] == T0 + pd.Timedelta(seconds=1)


def test_missing_column_and_bad_parameters() -> None:
    c = _counters([{"monotonic_s": 0.0, "cpu_usage_seconds_total": 0.0}])
    with pytest.raises(InvalidSamples, match="monotonic_s") as info:
        counters_to_samples(c.drop(columns="monotonic_s"), _meta())
    assert info.value.column == "monotonic_s"
    with pytest.raises(InvalidParameter, match="'gap_factor' parameter"):
        counters_to_samples(c, _meta(), gap_factor=0.5)
    with pytest.raises(InvalidParameter, match="'interval_s' parameter"):
        counters_to_samples(c, _meta(), interval_s=0)


@st.composite
def _counter_walks(draw: st.DrawFn) -> pd.DataFrame:
    """Random monotone-ish counters with resets (drops to a random lower value)."""
    n = draw(st.integers(min_value=0, max_value=40))
    n_ids = draw(st.integers(min_value=1, max_value=3))
    rows = []
    for i in range(n_ids):
        mono = 0.0
        totals = {"cpu_usage_seconds_total": 0.0, "net_rx_bytes_total": 0.0}
        for _ in range(n):
            mono += draw(st.floats(min_value=0.0, max_value=30.0))
            for k in totals:
                if draw(st.booleans()) and draw(st.booleans()):
                    totals[k] = draw(st.floats(min_value=0.0, max_value=max(totals[k], 0.0)))
                else:
                    totals[k] += draw(st.floats(min_value=0.0, max_value=1e9))
            nan = draw(st.integers(min_value=0, max_value=9)) == 0
            rows.append(
                {
                    "container_id": f"c{i}",
                    "monotonic_s": mono,
                    "memory_working_set_bytes": 1,
                    "cpu_usage_seconds_total": totals["cpu_usage_seconds_total"],
                    "net_rx_bytes_total": np.nan if nan else totals["net_rx_bytes_total"],
                    "net_namespace": draw(st.sampled_from([1.0, 2.0, np.nan])),
                }
            )
    return _counters(rows) if rows else _counters([{"monotonic_s": 0.0}]).iloc[:0]


@settings(max_examples=200, deadline=None)
@given(_counter_walks(), st.sampled_from([None, 5.0, 20.0]))
def test_rates_are_never_negative(c: pd.DataFrame, interval_s: float | None) -> None:
    s = counters_to_samples(c, _meta("c0", "c1", "c2"), interval_s=interval_s)
    rates = s[["interval_s", "cpu_cores", "net_rx_bytes_per_second", "memory_oom_kills"]]
    assert not (rates < 0).any().any()
    assert (s["interval_s"] > 0).all()
    assert np.isfinite(s["cpu_cores"]).all()


def test_host_to_rates_reset_gap_and_reboot() -> None:
    base = {
        "memory_used_bytes": 10,
        "memory_total_bytes": 100,
        "net_tx_bytes_total": 0,
        "disk_read_bytes_total": 0,
        "disk_write_bytes_total": 0,
        "logical_cpus": 4,
    }
    rows = [
        (0, 0.0, 0.0, 0),
        (10, 10.0, 20.0, 1000),
        (20, 20.0, 40.0, 500),  # net counter went down: reset, dropped
        (30, 30.0, 60.0, 1500),
        (40, 40.0, 80.0, 2500),
        (100, 100.0, 200.0, 3500),  # 60 s gap: dropped
        (110, 110.0, 220.0, 4500),
        (120, 5.0, 1.0, 10),  # reboot: monotonic restarted, dropped
        (130, 15.0, 11.0, 110),
    ]
    host = pd.DataFrame(
        [
            {
                "time": T0 + pd.Timedelta(seconds=t),
                "monotonic_s": m,
                "cpu_usage_seconds_total": cpu,
                "net_rx_bytes_total": rx,
                **base,
            }
            for t, m, cpu, rx in rows
        ]
    ).sample(frac=1.0, random_state=1)
    r = host_to_rates(host)
    assert list(r.columns) == list(HOST_RATE_COLUMNS)
    assert str(r["time"].dtype) == "datetime64[ns, UTC]"
    assert list(r["interval_s"]) == [10.0] * 5
    assert list(r["host_cpu_cores"]) == [2.0, 2.0, 2.0, 2.0, 1.0]
    assert list(r["host_net_rx_bytes_per_second"]) == [100.0, 100.0, 100.0, 100.0, 10.0]
    assert list(r["host_logical_cpus"]) == [4.0] * 5
    empty = host_to_rates(host.iloc[:0])
    assert list(empty.columns) == list(HOST_RATE_COLUMNS) and len(empty) == 0
    assert empty.dtypes.to_dict() == r.dtypes.to_dict()


def test_an_interval_changed_mid_way_is_not_a_gap_but_a_gap_in_either_period_is() -> None:
    """300 intervals of 1 s, then 200 of 10 s: against the median of the whole series (1 s)
    every 10 s interval was a "gap" and dropped. The sampling interval is now the median of
    the intervals near each one; a long interval among short ones is still a gap."""
    steps = [1.0] * 300 + [10.0] * 200
    steps[100], steps[400] = 5.0, 40.0  # a gap in each period (> 2 x 1 s, > 2 x 10 s)
    mono = np.concatenate(([0.0], np.cumsum(steps)))
    c = _counters([{"monotonic_s": m, "cpu_usage_seconds_total": m / 2} for m in mono])
    s = counters_to_samples(c, _meta("a"))
    assert s["interval_s"].value_counts().to_dict() == {1.0: 299, 10.0: 199}
    assert np.allclose(s["cpu_cores"], 0.5)


def test_intervals_that_alternate_are_no_gaps() -> None:
    # 1 s and 10 s in turn: at every 10 s interval 6 of the 11 nearby are 1 s, so the local
    # median alone (1 s) dropped 47 of the 50 10 s intervals (85 % of the time, unsaid); the
    # whole series' median (5.5 s) says they are the sampling, not gaps
    steps = [1.0, 10.0] * 50
    mono = np.concatenate(([0.0], np.cumsum(steps)))
    c = _counters([{"monotonic_s": m, "cpu_usage_seconds_total": m / 2} for m in mono])
    s = counters_to_samples(c, _meta("a"))
    assert s["interval_s"].value_counts().to_dict() == {1.0: 50, 10.0: 50}
    # a real gap in such a series is still one
    steps = [1.0, 10.0] * 25 + [60.0] + [1.0, 10.0] * 25
    mono = np.concatenate(([0.0], np.cumsum(steps)))
    c = _counters([{"monotonic_s": m, "cpu_usage_seconds_total": m / 2} for m in mono])
    s = counters_to_samples(c, _meta("a"))
    assert 60.0 not in set(s["interval_s"])


def test_a_counter_glitch_past_any_machine_is_left_out_with_a_warning() -> None:
    # one network counter read as 2**62 in one round: a rate of 4.6e17 B/s, which refused the
    # whole store (every cron report UNKNOWN until --since left it behind); now that interval
    # is NaN for that column, as across a reset, and the others keep theirs
    rows = [{"monotonic_s": float(m), "cpu_usage_seconds_total": m / 2,
             "net_rx_bytes_total": float(2**62 if m == 50 else m * 1e6)} for m in range(0, 100, 10)]
    with pytest.warns(UserWarning, match="net_rx_bytes_per_second above 1e15"):
        s = counters_to_samples(_counters(rows), _meta("a"))
    rx = s["net_rx_bytes_per_second"]
    # into the glitch: NaN here; out of it the counter goes down, a reset, as before
    assert rx.isna().sum() == 1 and (rx.dropna() == 1e6).all() and len(rx.dropna()) >= 7
    assert s["cpu_cores"].notna().all()
