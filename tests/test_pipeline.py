"""The glue between stages: what runs now, and the disk space it holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity._pipeline import disk_in_use_bytes, running_counts


def _samples() -> pd.DataFrame:
    t0, t1 = pd.Timestamp("2026-01-01T00:00:00Z"), pd.Timestamp("2026-01-01T00:00:01Z")
    return pd.DataFrame(
        {
            "time": [t0, t1, t1, t0],
            "container_id": ["a", "a", "b", "c"],
            "service": ["web", "web", "db", "gone"],
            "disk_usage_bytes": [100.0, np.nan, 50.0, 999.0],
        }
    )


def test_disk_in_use_is_the_latest_reading_of_each_running_container() -> None:
    # a: its last reading (100, the later row was not sampled); b: 50; c stopped before the end
    assert disk_in_use_bytes(_samples()) == 150.0


def test_disk_in_use_without_readings_is_zero() -> None:
    df = _samples().assign(disk_usage_bytes=np.nan)
    assert disk_in_use_bytes(df) == 0.0
    assert disk_in_use_bytes(df.drop(columns="disk_usage_bytes")) == 0.0


def test_running_counts_are_the_last_instant() -> None:
    assert running_counts(_samples()) == {"web": 1, "db": 1}


def test_a_since_window_reaching_before_1970_means_everything() -> None:
    """Before: ``fit --store S --since 1e308`` was an unexpected OverflowError (timedelta)."""
    from datetime import UTC, datetime, timedelta

    from capacity._pipeline import since_time

    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert since_time(None, now) is None
    assert since_time(1e308, now) is None and since_time(now.timestamp(), now) is None
    assert since_time(60.0, now) == now - timedelta(seconds=60)


def test_categorical_columns_give_the_same_answers() -> None:
    # Prometheus samples carry categorical string columns: a service absent at the last
    # instant ("gone") is not running, not a service with 0 (pandas 2's observed=False)
    cat = _samples().astype({"container_id": "category", "service": "category"})
    assert running_counts(cat) == {"web": 1, "db": 1}
    assert disk_in_use_bytes(cat) == 150.0


def _rounds(offsets_s: dict[str, float], rounds: dict[str, int], service: dict[str, str],
            interval_s: float = 10.0) -> pd.DataFrame:
    """Samples every ``interval_s``, container ``c`` read ``offsets_s[c]`` into each round
    (another tool's export: each container stamped when it was read), for ``rounds[c]``
    rounds."""
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    rows = [{"time": t0 + pd.Timedelta(seconds=k * interval_s + offsets_s[c]),
             "container_id": c, "service": service[c], "interval_s": interval_s,
             "disk_usage_bytes": 10.0}
            for c in offsets_s for k in range(rounds[c])]
    return pd.DataFrame(rows)


def test_containers_read_at_different_moments_of_the_last_round_all_run_now() -> None:
    """Three web replicas stamped 0, 1.5 and 3 s into each 10 s round: only the last one
    was "running", so the report said OK with 2 more fitting where it should have said
    critical. A container absent from the last round (one interval earlier) is gone."""
    offsets = {"w1": 0.0, "w2": 1.5, "w3": 3.0, "d1": 0.5, "old": 2.0}
    service = {"w1": "web", "w2": "web", "w3": "web", "d1": "db", "old": "web"}
    rounds = {"w1": 30, "w2": 30, "w3": 30, "d1": 30, "old": 29}
    samples = _rounds(offsets, rounds, service)
    assert running_counts(samples) == {"web": 3, "db": 1}
    assert disk_in_use_bytes(samples) == 40.0
    # without an interval_s column, each container's step between its samples is its interval
    assert running_counts(samples.drop(columns="interval_s")) == {"web": 3, "db": 1}


def test_a_round_spread_over_most_of_the_interval_all_runs_now() -> None:
    """Half the interval was the window: replicas read 6 s apart in 10 s rounds (an
    export stamping each container when read) counted 2 of 3 running, and a host over its
    safe count said WARNING instead of CRITICAL. A container a round behind is gone."""
    offsets = {"w1": 0.0, "w2": 3.0, "w3": 6.0, "old": 8.0}
    service = {"w1": "web", "w2": "web", "w3": "web", "old": "web"}
    samples = _rounds(offsets, {"w1": 30, "w2": 30, "w3": 30, "old": 28}, service)
    assert running_counts(samples) == {"web": 3}


def test_scrapes_at_different_intervals_and_a_new_container_run_now() -> None:
    # a 60 s scrape last read 40 s before a 15 s one's last; a container with one sample
    # (started in the last round, read 37 ms before the latest) takes the others' interval
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    rows = [{"time": t0 + pd.Timedelta(seconds=s), "container_id": "slow", "service": "a"}
            for s in range(0, 121, 60)]
    rows += [{"time": t0 + pd.Timedelta(seconds=s), "container_id": "fast", "service": "b"}
             for s in range(40, 161, 15)]
    rows.append({"time": t0 + pd.Timedelta(seconds=154.963), "container_id": "new",
                 "service": "b"})
    samples = pd.DataFrame(rows).assign(disk_usage_bytes=1.0)
    assert running_counts(samples) == {"a": 1, "b": 2}


def test_a_container_that_missed_rounds_then_stopped_is_not_running() -> None:
    # its last intervals are 20 s at a 10 s rate (missed rounds, under the 2x gap bound):
    # their median (20 s) kept it "running" 10 s after it stopped; the least (10 s) does not
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    rows = [{"time": t0 + pd.Timedelta(seconds=s), "container_id": "a", "service": "web"}
            for s in range(0, 201, 10)]
    rows += [{"time": t0 + pd.Timedelta(seconds=s), "container_id": "b", "service": "web"}
             for s in [*range(0, 100, 10), *range(100, 191, 20)]]
    samples = pd.DataFrame(rows).assign(disk_usage_bytes=1.0)
    assert running_counts(samples) == {"web": 1}


def test_a_table_with_repeated_index_labels_counts() -> None:
    # two tables concatenated keep their own index: ValueError (cannot reindex) before
    both = pd.concat([_samples(), _samples().assign(container_id=lambda d: d.container_id + "2")])
    assert running_counts(both) == {"web": 2, "db": 2}
