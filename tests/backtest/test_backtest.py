"""Backtest on synthetic histories with known drift, and on the public trace excerpts.

The excerpts in tests/data/traces/ (with their SOURCE.txt) keep these tests independent of
/work/shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity import InsufficientData, InvalidParameter
from capacity.backtest import backtest, load_alibaba_containers, load_gcd_vms
from capacity.solver._machine import Machine

TRACES = Path(__file__).parent.parent / "data" / "traces"
GCD = TRACES / "google2011-gcd-vms" / "GCD_VMs"
ALIBABA = TRACES / "alibaba2018-hots-10n" / "container_usage.csv"
GiB = 2**30


def synthetic(
    levels: tuple[float, float, float, float],
    *,
    replicas: int = 12,
    per_window: int = 200,
    seed: int = 1,
) -> pd.DataFrame:
    """CPU of ``replicas`` replicas: noise around a level per quarter of the history.

    Quarters 1-2 train (first half, second half), quarters 3-4 test.
    """
    rng = np.random.default_rng(seed)
    n = 4 * per_window
    level = np.repeat(np.asarray(levels), per_window)
    times = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 10, unit="s")
    frames = [
        pd.DataFrame(
            {
                "time": times,
                "service": "web",
                "container_id": f"c{i}",
                "container_name": f"c{i}",
                "image": "web",
                "interval_s": 10.0,
                "cpu_cores": level * rng.gamma(20, 1 / 20, size=n),
                "memory_working_set_bytes": 0.1 * GiB + rng.normal(0, 1e6, size=n).clip(-3e6, 3e6),
            }
        )
        for i in range(replicas)
    ]
    return pd.concat(frames, ignore_index=True)


def test_stationary_history_takes_no_margin_and_stays_within_epsilon() -> None:
    r = backtest(
        synthetic((0.2, 0.2, 0.2, 0.2)), Machine.from_spec("cpus=4,memory=64GiB,cpu_saturation=1")
    )
    d = r.default
    assert d.margin == 0.0
    assert d.within_epsilon
    assert d.count is not None and d.count > r.methods["peak"].count  # packs more than peak
    assert r.methods["limits"].count is None and "limit" in r.methods["limits"].reason


def test_drift_inside_training_is_held_back() -> None:
    """Demand grows 30 % from the first training half to the second and stays there."""
    machine = Machine.from_spec("cpus=4,memory=64GiB,cpu_saturation=1")
    held = backtest(synthetic((0.2, 0.26, 0.26, 0.26)), machine)
    raw = backtest(synthetic((0.2, 0.26, 0.26, 0.26)), machine, hold_back=False)
    d, d_raw = held.default, raw.default
    assert d.margin > 0.05
    assert d.drift["safe_on_second_half"] < d.drift["first_half_count"]
    assert d.count is not None and d_raw.count is not None and d.count < d_raw.count
    assert d.violation_rate is not None and d_raw.violation_rate is not None
    assert d.violation_rate <= d_raw.violation_rate
    assert d.violation_rate_without_margin == pytest.approx(d_raw.violation_rate)


def test_gcd_excerpt_per_method() -> None:
    samples = load_gcd_vms(GCD)
    assert samples["container_id"].nunique() == 8
    assert samples["time"].max() - samples["time"].min() == pd.Timedelta(days=4) - pd.Timedelta(
        seconds=300
    )
    r = backtest(samples, Machine.from_spec("cpus=4,memory=32GiB,cpu_saturation=1"), epsilon=0.01)
    assert set(r.methods) == {"limits", "peak", "quantile", "gaussian", "empirical"}
    assert r.methods["limits"].count == 4  # 1-core VMs on 4 cores
    for m in ("limits", "peak"):
        assert r.methods[m].violation_rate == 0.0
    assert r.default.count is not None and r.default.count >= r.methods["peak"].count
    d = r.to_dict()
    json.dumps(d)
    assert d["kind"] == "capacity.backtest" and d["oracle_count"] >= 1


def test_alibaba_excerpt_loads_and_backtests() -> None:
    samples = load_alibaba_containers(ALIBABA)
    assert samples["cpu_cores"].max() < 96
    assert (samples[["cpu_cores", "memory_working_set_bytes"]].sum(axis=1) > 0).all()
    r = backtest(samples, Machine.from_spec("cpus=96,memory=512GiB,cpu_saturation=1"), epsilon=0.05)
    assert r.methods["peak"].count is not None
    # 25 ticks of training: too short a trace for the empirical method, and it says why
    assert r.methods["empirical"].count is None
    assert "trace" in r.methods["empirical"].reason


def test_bad_input() -> None:
    s = synthetic((0.2, 0.2, 0.2, 0.2))
    machine = Machine.from_spec("cpus=4,memory=64GiB,cpu_saturation=1")
    with pytest.raises(InvalidParameter, match="'train_fraction' parameter of backtest"):
        backtest(s, machine, train_fraction=1.5)
    with pytest.raises(InvalidParameter, match="'methods'"):
        backtest(s, machine, methods=["magic"])
    with pytest.raises(InsufficientData, match="window"):
        backtest(s[s["time"] < s["time"].min() + pd.Timedelta(seconds=200)], machine)
    with pytest.raises(InsufficientData, match="no resource"):
        backtest(s, Machine.from_spec("net=1Gbit"))


def test_bundled_recording_with_its_containers_table() -> None:
    """Collected history (the bundled real recording): declared --cpus reach the limits method."""
    from capacity._pipeline import load_demo

    demo = load_demo()
    machine = Machine.from_spec("cpus=2,memory=1GiB,cpu_saturation=1")
    with_limits = backtest(
        demo.samples, machine, containers=demo.containers, service="demo/cpu-burner"
    )
    without = backtest(demo.samples, machine, service="demo/cpu-burner")
    assert with_limits.methods["limits"].count == 6  # --cpus 0.3 on 2 cores
    assert without.methods["limits"].count is None
    assert with_limits.default.within_epsilon
