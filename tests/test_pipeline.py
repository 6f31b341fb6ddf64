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


def test_categorical_columns_give_the_same_answers() -> None:
    # Prometheus samples carry categorical string columns: a service absent at the last
    # instant ("gone") is not running, not a service with 0 (pandas 2's observed=False)
    cat = _samples().astype({"container_id": "category", "service": "category"})
    assert running_counts(cat) == {"web": 1, "db": 1}
    assert disk_in_use_bytes(cat) == 150.0
