"""Drift measured inside the history and carried over the planning horizon (issue 13,
cause 2): a growing service gets fewer replicas, and the margin is said."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity import ProfileModel
from capacity._columns import CPU
from capacity._errors import InvalidParameter
from capacity.model._fit import daily_levels
from capacity.solver import Machine, plan
from capacity.solver._drift import UNMEASURED_DRIFT_FACTOR, drift_of

sys.path.insert(0, str(Path(__file__).parent.parent / "model"))
from _samples_builder import samples_table

DAY = 288


def _profiles(values: np.ndarray):
    return ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0)).profiles_


def _growing(days: int, per_day: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY) / DAY
    return (1 + per_day * t) * (1 + rng.normal(0, 0.05, t.size))


def test_daily_levels_count_whole_days_from_the_end() -> None:
    t = np.arange(2 * DAY + 10) * 300.0  # 10 samples of an earlier, partial day
    v = np.r_[np.full(10, 9.0), np.ones(DAY), 3 * np.ones(DAY)]
    assert daily_levels(t, v, 300.0) == (1.0, 3.0)
    assert daily_levels(t[:100], v[:100], 300.0) == ()  # under one whole day


def test_a_significant_trend_is_carried_to_the_horizon() -> None:
    d = drift_of([1.0, 1.1, 1.2, 1.3, 1.4], 1.2, 5 * 86_400.0)
    # the line through the levels reaches 1.4 + 0.1 * 5.5 = 1.95 at the horizon's end
    assert d.factor == pytest.approx(1.95 / 1.2)
    assert "trend" in d.reason and d.margin == pytest.approx(1 - 1.2 / 1.95)
    # noise without a trend: only the busiest day counts
    flat = drift_of([1.0, 1.2, 0.9, 1.1, 1.0], 1.04, 30 * 86_400.0)
    assert flat.factor == pytest.approx(1.2 / 1.04)
    assert "not significant" in flat.reason
    # one whole day: not measured; the stated default allowance, said in the reason
    one = drift_of([2.0], 2.0, 86_400.0)
    assert one.factor == UNMEASURED_DRIFT_FACTOR and one.slope_per_day is None
    assert "not measured" in one.reason and "default allowance x1.10" in one.reason
    # two whole days of which one holds too few samples: one day seen, the same allowance
    assert drift_of([None, 2.0], 2.0, 86_400.0).factor == UNMEASURED_DRIFT_FACTOR
    # under one whole day (a staging run), or no demand: planned as recorded
    assert drift_of([], 2.0, 86_400.0).factor == 1.0
    assert drift_of([0.0, 0.0], 0.0, 86_400.0).factor == 1.0


def test_growing_service_gets_fewer_replicas_and_says_why() -> None:
    profiles = _profiles(_growing(6, 0.1))
    machine = Machine.from_spec("cpus=40,cpu_saturation=1")
    recorded = plan(profiles, machine, method="gaussian", valid_for_s=None)
    week = plan(profiles, machine, method="gaussian")
    assert week.safe_count is not None and recorded.safe_count is not None
    # +10 %/day on a level of ~1.25: the level one week past the end is ~1.6 / 1.25 = 1.3x
    assert week.safe_count <= recorded.safe_count / 1.25
    drift = week.meta["drift"][CPU]
    assert drift["factor"] > 1.25 and drift["days"] == 6
    assert any("drift over 7 d" in a and "margin" in a for a in week.assumptions)
    json.dumps(week.meta, allow_nan=False)


def test_short_history_says_drift_not_measured() -> None:
    p = plan(_profiles(_growing(1, 0.0)), Machine.from_spec("cpus=40"))
    assert any("drift not measured" in a and "default allowance" in a and "margin 9%" in a
               for a in p.assumptions)
    assert p.meta["drift"][CPU]["factor"] == UNMEASURED_DRIFT_FACTOR
    recorded = plan(_profiles(_growing(1, 0.0)), Machine.from_spec("cpus=40"),
                    valid_for_s=None)
    assert p.safe_count is not None and recorded.safe_count is not None
    assert p.safe_count < recorded.safe_count


def test_bad_horizon_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="valid_for_s"):
        plan(_profiles(_growing(2, 0.0)), Machine.from_spec("cpus=4"), valid_for_s=-1.0)


def test_profile_keeps_daily_levels_through_json(tmp_path: Path) -> None:
    from capacity.model import Profiles

    profiles = _profiles(_growing(3, 0.2))
    levels = profiles.services["svc"].resources[CPU].daily_levels
    assert len(levels) == 3 and levels[0] < levels[1] < levels[2]
    back = Profiles.from_dict(json.loads(json.dumps(profiles.to_dict())))
    assert back.services["svc"].resources[CPU].daily_levels == pytest.approx(levels)
    assert isinstance(pd.Series(levels).sum(), float)


def test_cli_valid_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from capacity.cli import main

    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(_profiles(_growing(6, 0.1)).to_dict()))
    base = ["plan", "--profiles", str(path), "--machine", "cpus=40", "--json",
            "--method", "gaussian"]
    assert main([*base, "--valid-for", "1d"]) == 0
    day = json.loads(capsys.readouterr().out)["plans"]["svc"]
    assert main([*base, "--valid-for", "30d"]) == 0
    month = json.loads(capsys.readouterr().out)["plans"]["svc"]
    assert day["meta"]["valid_for_s"] == 86_400.0
    assert month["meta"]["drift"][CPU]["factor"] > day["meta"]["drift"][CPU]["factor"]
    assert month["safe_count"] < day["safe_count"]
    assert main([*base, "--valid-for", "soon"]) == 3  # bad duration: usage error


def test_trend_is_carried_at_most_three_times_the_days_that_measured_it() -> None:
    """A 5-day trend taken linearly to --valid-for 365d made the level x30 and the count 0:
    it is carried 15 d (3 x 5 days) and the reason says the horizon exceeds the history."""
    levels = [1.0, 1.1, 1.2, 1.3, 1.4]
    year = drift_of(levels, 1.2, 365 * 86_400.0)
    bounded = drift_of(levels, 1.2, 15 * 86_400.0)
    assert year.trend_carried_s == 15 * 86_400.0
    assert year.factor == pytest.approx(bounded.factor)  # 1.4 + 0.1 * 15.5 = 2.95
    assert year.factor == pytest.approx(2.95 / 1.2)
    assert "valid-for 365 d exceeds what a 5-day history can forecast" in year.reason
    assert "re-plan with more history" in year.reason
    # inside the bound: carried the whole horizon, nothing said
    week = drift_of(levels, 1.2, 7 * 86_400.0)
    assert week.trend_carried_s == 7 * 86_400.0 and "exceeds" not in week.reason
    # no significant trend: nothing carried, nothing to bound
    assert drift_of([1.0, 1.2, 0.9, 1.1, 1.0], 1.04, 365 * 86_400.0).trend_carried_s is None


def test_plan_states_the_bounded_trend_in_assumptions_and_json() -> None:
    profiles = _profiles(_growing(5, 0.1))
    machine = Machine.from_spec("cpus=40,cpu_saturation=1")
    year = plan(profiles, machine, method="gaussian", valid_for_s=365 * 86_400.0)
    week = plan(profiles, machine, method="gaussian")
    assert year.safe_count is not None and year.safe_count > 0
    drift = year.meta["drift"][CPU]
    assert drift["trend_carried_s"] == 15 * 86_400.0
    assert week.meta["drift"][CPU]["trend_carried_s"] == 7 * 86_400.0
    assert any("exceeds what a 5-day history can forecast" in a for a in year.assumptions)
    json.dumps(year.meta, allow_nan=False)


def test_a_count_set_by_the_declared_limits_shows_no_overload_risk() -> None:
    # a replica pinned at its 0.3-core limit, one hour of history: demand is planned at the
    # stated x1.10 allowance (0.33 cores: 12 on 4 cores) but 13 replicas at their limits fit
    # 4 cores whatever the drift, so the count is 13 and its risk figures must say 0 (they
    # said P(overload) 0.83, from the widened demand the limit caps)
    import dataclasses

    rng = np.random.default_rng(0)
    cpu = np.minimum(0.3, 0.3 - np.abs(rng.normal(0, 0.002, 720)))
    fitted = ProfileModel().fit(samples_table({"c1": {CPU: cpu}}, interval_s=5.0)).profiles_
    sp = dataclasses.replace(fitted["svc"], cpu_limit_cores=0.3)
    profiles = dataclasses.replace(fitted, services={"svc": sp})
    p = plan(profiles, Machine.from_spec("cpus=4,cpu_saturation=1"))
    rp = p.per_resource[CPU]
    assert rp.safe_count == 13
    assert rp.p_overload_at_safe_count == 0.0
    assert all(pk == 0.0 for n, pk in rp.risk_curve if n <= 13)
    assert rp.p_overload_at_next == pytest.approx(1.0)  # 14 x 0.3 > 4


def test_the_reason_names_the_days_that_measured_the_drift() -> None:
    """Nine whole days whose first six hold too few samples: the trend and the busiest day
    are measured on the last three. The reason said "over 9 days" beside "a 3-day history"."""
    levels = [None] * 6 + [1.0, 1.1, 1.2]
    trend = drift_of(levels, 1.1, 365 * 86_400.0)
    assert trend.trend_carried_s == 9 * 86_400.0  # 3 x the 3 days that measured it
    assert "per day over 3 days (t " in trend.reason, trend.reason
    assert "a 3-day history can forecast" in trend.reason
    assert "9 days" not in trend.reason
    flat = drift_of([None] * 6 + [1.0, 1.2, 0.9], 1.03, 7 * 86_400.0)
    assert flat.reason.startswith("busiest of 3 days at x1.17 the mean"), flat.reason
    # a day without a level between the first and the last: the span, and how many had one
    gap = drift_of([1.0, None, 1.2, 0.9], 1.03, 7 * 86_400.0)
    assert gap.reason.startswith("busiest of 4 days (3 with a level) at x1.17"), gap.reason
    assert drift_of([1.0, 1.2, 0.9, 1.1], 1.05, 7 * 86_400.0).reason.startswith(
        "busiest of 4 days at")  # every day measured: as before
