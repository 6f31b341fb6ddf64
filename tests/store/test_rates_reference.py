"""``counters_to_samples`` computes the samples on arrays per series since issue 14 (no
per-row pandas joins, groupbys or string keys); its answers must not change. Checked here
bit for bit against the frozen implementation of main 184c71d (``_reference_rates.py``) on
seeded counters tables built to hit every rule at once: restarts, resets, gaps, NaN and
nullable counters, shared namespaces, duplicate and shuffled rows, missing columns, missing
keys, and metadata that is partial, duplicated or absent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _reference_rates import counters_to_samples as reference

from capacity.store import counters_to_samples

T0 = pd.Timestamp("2024-03-01T00:00:00Z")
CASES = 40


def _counters(rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    n_containers = int(rng.integers(1, 7))
    rounds = int(rng.integers(2, 120))
    step_s = float(rng.choice([1.0, 10.0, 15.0]))
    for i in range(n_containers):
        cid = f"{rng.integers(0, 3)}{i:063x}"
        restart_at = int(rng.integers(1, rounds + 5))
        k = np.arange(rounds)
        alive = rng.random(rounds) > float(rng.choice([0.0, 0.05, 0.3]))  # gaps, churn
        k = k[alive]
        mono = 1000.0 + step_s * k + rng.normal(0, 0.01, len(k))
        if rng.random() < 0.2 and len(k) > 3:
            mono[2] = mono[1]  # a duplicate read: dt = 0
        started = np.where(k >= restart_at, T0 + pd.Timedelta(seconds=restart_at * step_s),
                           T0 - pd.Timedelta(days=1))
        base = np.where(k >= restart_at, k - restart_at, k).astype(float)
        cpu = 0.3 * base + rng.random(len(k)) * 0.1
        if rng.random() < 0.3 and len(k) > 5:
            cpu[len(k) // 2:] -= 100  # a reset within a lifecycle
        rx = (1500 * base).astype("int64")
        frame = pd.DataFrame({
            "time": T0 + pd.to_timedelta(step_s * k, unit="s"),
            "monotonic_s": mono,
            "container_id": cid,
            "started_at": pd.to_datetime(started, utc=True),
            "cpu_usage_seconds_total": cpu,
            "memory_working_set_bytes": pd.array(
                np.where(rng.random(len(k)) < 0.05, None, 10**6 + k * (i + 1)), dtype="Int64"),
            "net_rx_bytes_total": pd.array(
                np.where(rng.random(len(k)) < 0.05, None, rx), dtype="Int64"),
            "net_tx_bytes_total": (2**62 if i == 1 else 0) + 700 * base,
            "disk_read_bytes_total": 4096.0 * base,
            "cpu_periods_total": pd.array(
                np.where(base > 10, 100 * base, None), dtype="Int64"),
            "cpu_throttled_periods_total": pd.array(
                np.where(base > 10, base // 3, None), dtype="Int64"),
            "memory_oom_kills_total": base // 40,
            "net_namespace": pd.array(
                np.where(rng.random(len(k)) < 0.1, None,
                         4026531000 + int(rng.integers(0, max(2, n_containers - 1)))),
                dtype="Int64"),
            "disk_usage_bytes": np.where(k % 7 == 0, 10.0**6 * k, np.nan),
        })
        frames.append(frame)
    counters = pd.concat(frames, ignore_index=True)
    if rng.random() < 0.3:
        counters = pd.concat([counters, counters.sample(frac=0.05, random_state=1)],
                             ignore_index=True)  # duplicated rows
    counters = counters.sample(frac=1.0, random_state=int(rng.integers(0, 2**31)))
    for name in ("disk_read_bytes_total", "net_namespace", "disk_usage_bytes",
                 "memory_oom_kills_total"):
        if rng.random() < 0.2:
            counters = counters.drop(columns=name)
    if rng.random() < 0.15:
        counters = counters.copy()
        counters.iloc[:2, counters.columns.get_loc("started_at")] = pd.NaT
    return counters


def _containers(rng: np.random.Generator, counters: pd.DataFrame, seed: int) -> pd.DataFrame:
    keys = counters[["container_id", "started_at"]].dropna().drop_duplicates()
    meta = keys.assign(
        name=[f"c-{x[:4]}" for x in keys["container_id"]],
        image=rng.choice(["img:1", "", None], len(keys)),
        service=rng.choice(["web", "", None, " db "], len(keys)),
    )
    variant = seed % 6
    if variant == 1:
        return meta.iloc[: len(meta) // 2]  # lifecycles without metadata
    if variant == 2:
        return pd.concat([meta, meta.assign(name="renamed")])  # duplicates: the last wins
    if variant == 3:
        return meta.rename(columns={"container_id": "id"})
    if variant == 4:
        return pd.DataFrame()
    return meta


@pytest.mark.parametrize("seed", range(CASES))
def test_samples_equal_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counters = _counters(rng)
    containers = _containers(rng, counters, seed)
    options = [{}, {"interval_s": 10.0}, {"gap_factor": 1.0}, {"interval_s": 1.0,
                                                                 "gap_factor": 3.5}]
    for kwargs in options:
        want = reference(counters, containers, **kwargs)
        got = counters_to_samples(counters, containers, **kwargs)
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_the_cases_hit_the_rules() -> None:
    # the comparison above is only worth something if the cases produce what it compares
    shared = dropped = rows = 0
    for seed in range(CASES):
        rng = np.random.default_rng(seed)
        counters = _counters(rng)
        got = counters_to_samples(counters, _containers(rng, counters, seed))
        rows += len(got)
        shared += int(got["net_shared"].sum())
        dropped += len(counters) - len(got)
    assert rows > 1000 and shared > 50 and dropped > 200
