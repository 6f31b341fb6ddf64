"""The slow/fast split counts its window in samples, and a history's sampling faults are said
(issue 13, cause 1): 5-minute samples with the default 300 s window used to give a
zero-width moving average, a slow share of 1 and confidence "ok"."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _samples_builder import samples_table

from capacity import ProfileModel
from capacity._columns import CPU
from capacity.model._fit import DEGENERATE_SLOW_SHARE, MIN_WINDOW_SAMPLES
from capacity.solver import Machine, plan
from capacity.solver._demand import replica_demand

DAY = 288  # 5-minute samples per day


def _daily(days: int, seed: int) -> np.ndarray:
    """A daily cycle (variance 0.125) plus white noise (variance 0.25), 5-minute samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    return 2 + 0.5 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.5, t.size)


def test_five_minute_samples_split_slow_and_fast() -> None:
    values = _daily(4, 1)
    sp = ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0))
    rp = sp.profiles_["svc"].resources[CPU]
    # the window is widened to MIN_WINDOW_SAMPLES samples, and the profile says the width used
    assert rp.window_s == MIN_WINDOW_SAMPLES * 300.0
    share = rp.slow_var / (rp.slow_var + rp.fast_var)
    # a 5-sample average keeps the cycle and 1/5 of the noise: (0.125 + 0.05) / 0.375 ~ 0.47
    assert 0.3 < share < 0.7
    assert any("widened" in n for n in sp.profiles_["svc"].notes)
    # the solver shares only the slow part between replicas
    d = replica_demand(sp.profiles_["svc"], CPU)
    assert d is not None and d.cov < 0.8 * d.var


def test_five_minute_samples_plan_more_than_perfectly_correlated() -> None:
    values = _daily(4, 2)
    profiles = ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0))
    p = plan(profiles.profiles_, Machine.from_spec("cpus=60"), epsilon=0.01, method="gaussian",
             rng=np.random.default_rng(0), valid_for_s=None)  # the split alone, no drift
    # moving as one: N * (mean + z sd) <= 54 usable cores -> about 54 / (2 + 2.33 * 0.61) = 15;
    # the slow share of ~0.5 lets the fast half average out (17 here)
    perfect = 54 / (2 + 2.326 * float(values.std()))
    assert p.safe_count is not None and p.safe_count >= int(perfect) + 2


def test_degenerate_split_is_a_warning_and_in_the_plan() -> None:
    # a smooth ramp: the moving average is the series, the slow share is 1
    values = np.linspace(1.0, 3.0, 2 * DAY)
    profiles = ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0))
    sp = profiles.profiles_["svc"]
    rp = sp.resources[CPU]
    assert rp.slow_var / (rp.slow_var + rp.fast_var) > DEGENERATE_SLOW_SHARE
    assert sp.confidence == "low"
    assert any("degenerate slow/fast split" in w for w in sp.warnings)
    p = plan(profiles.profiles_, Machine.from_spec("cpus=60"), epsilon=0.01,
             rng=np.random.default_rng(0))
    assert any("degenerate" in a for a in p.assumptions)


def test_shorter_than_a_day_is_said() -> None:
    values = _daily(1, 3)[: DAY // 2]
    profiles = ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0))
    sp = profiles.profiles_["svc"]
    assert any("daily cycle is not covered" in n for n in sp.notes)
    p = plan(profiles.profiles_, Machine.from_spec("cpus=60"), epsilon=0.01,
             rng=np.random.default_rng(0))
    assert any("daily cycle is not covered" in a for a in p.assumptions)


def test_a_whole_day_of_samples_is_not_called_shorter_than_a_day() -> None:
    # 288 five-minute samples: the last covers the day's last 5 minutes (24 h, not 23.9 h),
    # as daily_levels and the drift allowance count it
    values = _daily(1, 3)[:DAY]
    sp = ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0))
    assert not any("shorter than one day" in n for n in sp.profiles_["svc"].notes)
    assert len(sp.profiles_["svc"].resources[CPU].daily_levels) == 1


def _with_times(values: np.ndarray, seconds: np.ndarray, interval: float | np.ndarray
                ) -> pd.DataFrame:
    df = samples_table({"c1": {CPU: values}}, interval_s=300.0)
    df["time"] = pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(seconds, unit="s")
    df["interval_s"] = interval
    return df


def test_gaps_are_said() -> None:
    n = 2 * DAY
    seconds = np.arange(n) * 300.0
    seconds[n // 2:] += 6 * 3600  # six hours missing
    sp = ProfileModel().fit(_with_times(_daily(2, 4), seconds, 300.0)).profiles_["svc"]
    assert sp.confidence == "low"
    assert any("gaps in the samples" in w and "21900 s" in w for w in sp.warnings)


def test_irregular_intervals_are_said() -> None:
    rng = np.random.default_rng(5)
    seconds = np.cumsum(rng.choice([100.0, 300.0, 400.0], size=2 * DAY))
    sp = ProfileModel().fit(_with_times(_daily(2, 5), seconds, np.nan)).profiles_["svc"]
    assert any("irregular sampling" in w for w in sp.warnings)


def test_changed_interval_is_said() -> None:
    n = 2 * DAY
    seconds = np.concatenate([np.arange(n // 2) * 60.0, n // 2 * 60.0 + np.arange(n // 2) * 300])
    sp = ProfileModel().fit(_with_times(_daily(2, 6), seconds, np.nan)).profiles_["svc"]
    assert any("sampling interval changed mid-way" in w for w in sp.warnings)
    declared = np.where(np.arange(n) < n // 2, 60.0, 300.0)
    sp = ProfileModel().fit(_with_times(_daily(2, 6), seconds, declared)).profiles_["svc"]
    assert any("declared sampling interval changes from 60 s to 300 s" in w
               for w in sp.warnings)


def test_regular_history_has_no_sampling_warning() -> None:
    sp = ProfileModel().fit(samples_table({"c1": {CPU: _daily(2, 7)}}, interval_s=300.0))
    assert sp.profiles_["svc"].warnings == ()


def _spiky(days: int, same_time: bool, seed: int) -> np.ndarray:
    """Quiet (0.1 core + noise) with a 15-minute burst of 2 cores once a day: at the same
    time every day, or at a random time each day."""
    rng = np.random.default_rng(seed)
    x = 0.1 + rng.normal(0, 0.01, days * DAY)
    for d in range(days):
        start = 100 if same_time else int(rng.integers(0, DAY - 3))
        x[d * DAY + start: d * DAY + start + 3] = 2.0
    return x


def test_a_burst_at_one_time_every_day_is_shared() -> None:
    same = ProfileModel().fit(samples_table({"c1": {CPU: _spiky(6, True, 8)}},
                                            interval_s=300.0)).profiles_["svc"]
    rand = ProfileModel().fit(samples_table({"c1": {CPU: _spiky(6, False, 8)}},
                                            interval_s=300.0)).profiles_["svc"]
    share = {k: sp.resources[CPU].slow_var / sp.resources[CPU].var
             for k, sp in (("same", same), ("rand", rand))}
    # recurring at one time of day: the time-of-day profile carries it (shared by replicas);
    # at random times: a 5-sample average keeps ~3/5 of a 3-sample burst, shared share ~0.4
    assert share["same"] > 0.9 > 0.6 > share["rand"]
    assert same.resources[CPU].time_of_day_s == 86_400.0
    # the solver shares it too: fewer replicas of the daily-burst service fit
    machine = Machine.from_spec("cpus=8,cpu_saturation=1")
    n_same = plan(ProfileModel().fit(samples_table({"c1": {CPU: _spiky(6, True, 8)}},
                                                   interval_s=300.0)).profiles_, machine,
                  valid_for_s=None).safe_count
    n_rand = plan(ProfileModel().fit(samples_table({"c1": {CPU: _spiky(6, False, 8)}},
                                                   interval_s=300.0)).profiles_, machine,
                  valid_for_s=None).safe_count
    assert n_same is not None and n_rand is not None and n_same < n_rand
    # 8 cores over 2-core bursts that coincide: at most 4 (with the quiet 0.1 of the rest)
    assert n_same <= 4


def test_time_of_day_needs_two_days() -> None:
    sp = ProfileModel().fit(samples_table({"c1": {CPU: _spiky(1, True, 9)}},
                                          interval_s=300.0)).profiles_["svc"]
    assert sp.resources[CPU].time_of_day_s == 0.0
    assert any("time of day not modelled" in n for n in sp.notes)


def test_degenerate_split_reaches_the_report_warnings() -> None:
    from capacity.reporting._render import profiles_context

    profiles = ProfileModel().fit(samples_table({"c1": {CPU: np.linspace(1.0, 3.0, 2 * DAY)}},
                                                interval_s=300.0)).profiles_
    _, warnings = profiles_context(profiles, [])
    assert any("degenerate slow/fast split" in w for w in warnings)
