"""The lean path of a fleet's week gives the same samples, profiles and plans.

``load_prometheus`` keeps the samples' string columns as categories and assembles the rate
batches column by column; the fit reads the service key, the container ids and the limits
per distinct value instead of per row (benchmarks/RESULTS.md, "Prometheus source"). These
tests hold them equal to the plain path on a small fleet: the store's ``str`` table, one
batch, limits as per-row columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from capacity._pipeline import (
    _CATEGORY_COLUMNS,
    Samples,
    _concat_parts,
    _rates_in_batches,
    fit_profiles,
    plan_all,
    running_counts,
)
from capacity.solver import Machine
from capacity.store._rates import counters_to_samples

START = pd.Timestamp("2026-11-01T00:00:00Z")
STEP_S = 30.0
SCRAPES = 1_000  # 8.3 h: a fit with every statistic (over the 3 h span, over 200 samples)


def _fleet(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counters and containers of 12 containers in 4 services, one restarted (a second
    lifecycle of one id), one counter reset, one gap, NaN memory readings, a container
    without a service label (grouped by its image) and one service with padded spaces."""
    rng = np.random.default_rng(seed)
    counters, containers = [], []
    services = ["web", " api ", "", "db"]  # "" -> the image; " api " -> "api"
    for c in range(12):
        service = services[c % 4]
        cid = f"{c:064x}"
        t = STEP_S * np.arange(SCRAPES) + rng.uniform(0, 0.5, SCRAPES)
        if c == 5:  # a gap of 20 scrapes
            t = np.delete(t, np.arange(400, 420))
        n = len(t)
        cpu = np.cumsum(rng.gamma(2.0, 0.05 * (1 + c % 4), n) * STEP_S)
        if c == 7:  # a counter reset
            cpu[600:] -= cpu[600] - 1.0
        memory = (100 + 20 * (c % 4)) * 2.0**20 + rng.normal(0, 2**20, n).cumsum()
        memory = np.abs(memory)
        memory[rng.integers(0, n, 5)] = np.nan
        starts = [START - pd.Timedelta(hours=1)] * n
        if c == 9:  # restarted halfway: a second lifecycle, counters from 0
            half = n // 2
            starts[half:] = [START + pd.Timedelta(seconds=float(t[half]) - 1)] * (n - half)
            cpu[half:] -= cpu[half] - 0.5
        counters.append(pd.DataFrame({
            "time": START + pd.to_timedelta(t, unit="s"),
            "monotonic_s": 1_000.0 + t,
            "container_id": cid,
            "started_at": starts,
            "cpu_usage_seconds_total": cpu,
            "memory_working_set_bytes": memory,
        }))
        for started in dict.fromkeys(starts):
            containers.append({
                "container_id": cid, "started_at": started, "name": f"c{c}",
                "image": f"img{c % 4}:1", "service": service,
                "cpu_limit_cores": 2.0 if c % 4 == 0 else np.nan,
                "memory_limit_bytes": 512 * 2.0**20 if c % 4 == 3 else np.nan,
            })
    return pd.concat(counters, ignore_index=True), pd.DataFrame(containers)


def _profiles_dict(samples: pd.DataFrame | Samples) -> dict[str, Any]:
    d = fit_profiles(samples).to_dict()
    d.pop("created_at")
    return d


def test_batched_categorical_samples_equal_the_plain_table() -> None:
    counters, containers = _fleet()
    plain = counters_to_samples(counters, containers)
    lean = _concat_parts(_rates_in_batches(counters, containers, batch_rows=2_500))
    assert {c: str(lean[c].dtype) for c in _CATEGORY_COLUMNS} == dict.fromkeys(
        _CATEGORY_COLUMNS, "category")
    back = lean.astype(dict.fromkeys(_CATEGORY_COLUMNS, "str"))
    pd.testing.assert_frame_equal(back, plain)
    # one batch, or as many as containers: the same table
    one = _concat_parts(_rates_in_batches(counters, containers))
    pd.testing.assert_frame_equal(one.astype(dict.fromkeys(_CATEGORY_COLUMNS, "str")), plain)


def test_profiles_and_plans_equal_on_the_lean_table() -> None:
    """Categorical strings and limits looked up per distinct container give the profiles
    (every field, to the bit) and the plans of the plain table."""
    counters, containers = _fleet(seed=1)
    plain = counters_to_samples(counters, containers)
    lean = _concat_parts(_rates_in_batches(counters, containers, batch_rows=3_000))
    with_limits = {
        name: Samples(frame, pd.DataFrame(), containers, STEP_S, "test")
        for name, frame in (("plain", plain), ("lean", lean))
    }
    profiles = {name: fit_profiles(s) for name, s in with_limits.items()}
    dicts = {name: p.to_dict() for name, p in profiles.items()}
    for d in dicts.values():
        d.pop("created_at")
    assert dicts["lean"] == dicts["plain"]
    assert sorted(profiles["plain"].services) == ["api", "db", "img2:1", "web"]
    assert profiles["plain"].services["web"].cpu_limit_cores == 2.0
    assert profiles["plain"].services["db"].memory_limit_bytes == 512 * 2**20

    # limits given as per-row columns of the samples (no containers table): the same
    rows = plain.merge(containers[["container_id", "started_at", "cpu_limit_cores",
                                   "memory_limit_bytes"]],
                       on=["container_id", "started_at"], how="left")
    assert _profiles_dict(rows) == dicts["plain"]

    machine = Machine.from_spec("cpus=4,memory=8GiB")
    plans = {name: plan_all(p, machine, running=running_counts(with_limits[name].samples))
             for name, p in profiles.items()}
    assert {s: p.to_dict() for s, p in plans["lean"].items()} == \
        {s: p.to_dict() for s, p in plans["plain"].items()}
