"""Bad input and faults (issue 13): a history with gaps, irregular intervals, a sampling
interval changed mid-way, or shorter than one daily cycle. The profile says which; the plan
never gives a silent number: by default it is planned with the fault among its assumptions
(and the report's warnings) and *widened* (a sampling fault by the effective looks its
samples give, :mod:`capacity.solver._coverage`; a history under one day by the stated x1.10
allowance), the margin stated in replicas and % of the usable capacity; with
``require_confidence`` (``--require-confidence``) it is refused with the fault as the reason,
and from the command line that refusal is an undefined count (exit 1, the reason on the
status line), never OK. A clean history's plan is not touched.

tests/model/test_sampling_interval.py checks each fault's wording in the profile; this file
follows each one through to the plan, the report and the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _samples_builder import samples_table

from capacity import ProfileModel
from capacity._columns import CPU
from capacity.model import Profiles
from capacity.solver import Machine, plan
from capacity.solver._drift import UNMEASURED_DRIFT_FACTOR

DAY = 288  # 5-minute samples per day
MACHINE = "cpus=64,cpu_saturation=1"


def _series(n: int, seed: int) -> np.ndarray:
    """A daily cycle plus noise, 5-minute samples, always positive."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 2 + 0.5 * np.sin(2 * np.pi * t / DAY) + np.abs(rng.normal(0, 0.3, n))


def _with_times(seconds: np.ndarray, interval: float | np.ndarray, seed: int) -> pd.DataFrame:
    df = samples_table({"c1": {CPU: _series(seconds.size, seed)}}, interval_s=300.0)
    df["time"] = pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(seconds, unit="s")
    df["interval_s"] = interval
    return df


def _gaps() -> pd.DataFrame:
    seconds = np.arange(2 * DAY) * 300.0
    seconds[DAY:] += 6 * 3600  # six hours missing
    return _with_times(seconds, 300.0, 1)


def _irregular() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return _with_times(np.cumsum(rng.choice([100.0, 300.0, 400.0], size=2 * DAY)), np.nan, 2)


def _changed() -> pd.DataFrame:
    half = DAY
    seconds = np.concatenate([np.arange(half) * 60.0, half * 60.0 + np.arange(half) * 300.0])
    return _with_times(seconds, np.nan, 3)


def _changed_declared() -> pd.DataFrame:
    half = DAY
    seconds = np.concatenate([np.arange(half) * 60.0, half * 60.0 + np.arange(half) * 300.0])
    return _with_times(seconds, np.where(np.arange(2 * half) < half, 60.0, 300.0), 4)


FAULTS: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "gaps": (_gaps, "gaps in the samples"),
    "irregular intervals": (_irregular, "irregular sampling"),
    "interval changed mid-way": (_changed, "sampling interval changed mid-way"),
    "declared interval changed": (_changed_declared, "declared sampling interval changes"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_is_in_the_plan_or_refuses_it(fault: str) -> None:
    make, words = FAULTS[fault]
    profiles = ProfileModel().fit(make()).profiles_
    sp = profiles["svc"]
    assert sp.confidence == "low"
    assert any(words in w for w in sp.warnings), sp.warnings
    machine = Machine.from_spec(MACHINE)
    # default: a number, with the fault among the assumptions it rests on
    p = plan(profiles, machine, rng=np.random.default_rng(0))
    assert p.safe_count is not None
    assert any(a.startswith("profile warning: ") and words in a for a in p.assumptions), (
        p.assumptions
    )
    # ... widened for the looks its samples do not give, the margin stated
    widening = p.meta["widening"][CPU]
    sampling = widening["sampling"]
    assert sampling["factor"] > 1.0 and sampling["margin"] > 0.0
    assert sampling["effective_samples"] < sampling["span_instants"]
    assert widening["replicas"] == widening["count_without"] - p.safe_count >= 0
    assert any("widened for" in a and "a sampling fault" in a and "replica(s)" in a
               and "% of the usable capacity" in a for a in p.assumptions), p.assumptions
    # never above the plan of the same values sampled regularly
    values = make()[CPU].to_numpy()
    clean = ProfileModel().fit(samples_table({"c1": {CPU: values}}, interval_s=300.0)).profiles_
    assert clean["svc"].warnings == ()
    regular = plan(clean, machine, rng=np.random.default_rng(0))
    assert regular.safe_count is not None and p.safe_count <= regular.safe_count
    # require_confidence: no number, the fault is the reason
    strict = plan(profiles, machine, rng=np.random.default_rng(0), require_confidence=True)
    assert strict.safe_count is None and strict.more is None
    assert "profile confidence is low" in strict.reason and words in strict.reason
    assert all(m["safe_count"] is None for m in strict.methods.values())


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_reaches_the_report_warnings(fault: str) -> None:
    from capacity.reporting._render import profiles_context, render_markdown, report_context

    make, words = FAULTS[fault]
    profiles = ProfileModel().fit(make()).profiles_
    _, warnings = profiles_context(profiles, [])
    assert any(words in w for w in warnings), warnings
    # the widening and its margin are among the report's assumptions
    p = plan(profiles, Machine.from_spec(MACHINE), rng=np.random.default_rng(0))
    context = report_context({"svc": p}, profiles)
    assert any("widened for" in a and "replica(s)" in a for a in context["assumptions"])
    assert "widened for" in render_markdown(context)


def test_shorter_than_one_cycle_is_said_and_takes_the_allowance() -> None:
    # 12 hours: no daily cycle seen, no day to measure drift from: the daily peak may not have
    # been seen, so the one-day allowance is taken, and said with its margin
    profiles = (
        ProfileModel()
        .fit(samples_table({"c1": {CPU: _series(DAY // 2, 5)}}, interval_s=300.0))
        .profiles_
    )
    sp = profiles["svc"]
    assert any("daily cycle is not covered" in n for n in sp.notes)
    assert sp.resources[CPU].daily_levels == ()
    machine = Machine.from_spec(MACHINE)
    p = plan(profiles, machine, rng=np.random.default_rng(0))
    recorded = plan(profiles, machine, rng=np.random.default_rng(0), valid_for_s=None)
    assert p.safe_count is not None and recorded.safe_count is not None
    assert any("daily cycle is not covered" in a for a in p.assumptions)
    drift = p.meta["drift"][CPU]
    assert drift["factor"] == UNMEASURED_DRIFT_FACTOR and "shorter than one day" in drift["reason"]
    widening = p.meta["widening"][CPU]
    assert widening["allowance"] == UNMEASURED_DRIFT_FACTOR and "sampling" not in widening
    assert widening["count_without"] == recorded.safe_count
    assert widening["replicas"] == recorded.safe_count - p.safe_count > 0
    assert any("widened for the daily cycle not measured" in a and "replica(s)" in a
               for a in p.assumptions), p.assumptions
    # demand as recorded (valid_for_s=None, API only): no allowance, no widening
    assert "widening" not in recorded.meta


def test_a_clean_history_is_not_widened() -> None:
    # two whole regular days: nothing named, nothing widened; the new profile fields
    # (effective_samples, span_instants) change nothing in its plan
    profiles = (
        ProfileModel()
        .fit(samples_table({"c1": {CPU: _series(2 * DAY, 7)}}, interval_s=300.0))
        .profiles_
    )
    sp = profiles["svc"]
    assert sp.warnings == () and sp.effective_samples == sp.span_instants == 2 * DAY
    machine = Machine.from_spec(MACHINE)
    p = plan(profiles, machine, rng=np.random.default_rng(0))
    assert "widening" not in p.meta and not any("widened for" in a for a in p.assumptions)
    older = Profiles(services={"svc": replace(sp, effective_samples=None, span_instants=None)},
                     source=profiles.source)
    assert plan(older, machine, rng=np.random.default_rng(0)).to_dict() == p.to_dict()


def test_one_day_takes_the_stated_allowance() -> None:
    # one whole day: drift cannot be measured; the default allowance is taken and said
    profiles = (
        ProfileModel()
        .fit(samples_table({"c1": {CPU: _series(DAY, 6)}}, interval_s=300.0))
        .profiles_
    )
    machine = Machine.from_spec(MACHINE)
    p = plan(profiles, machine, rng=np.random.default_rng(0))
    flat = plan(profiles, machine, rng=np.random.default_rng(0), valid_for_s=None)
    drift = p.meta["drift"][CPU]
    assert drift["factor"] > 1.0 and "default allowance" in drift["reason"]
    assert p.safe_count is not None and flat.safe_count is not None
    assert p.safe_count < flat.safe_count  # the plan widened its margin, and says by how much
    assert any("default allowance" in a and "margin" in a for a in p.assumptions)


@pytest.mark.parametrize("fault", ["gaps", "interval changed mid-way"])
def test_the_cli_refuses_with_the_reason_never_ok(
    fault: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from capacity.cli import main

    make, words = FAULTS[fault]
    path = tmp_path / "profiles.json"
    ProfileModel().fit(make()).profiles_.to_json(path)
    code = main(["plan", "--profiles", str(path), "--machine", MACHINE, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    planned = doc["plans"]["svc"]
    assert planned["safe_count"] is not None
    assert any(words in a for a in planned["assumptions"])
    # the widening and its margin are in plan.json
    widening = planned["meta"]["widening"][CPU]
    assert widening["sampling"]["factor"] > 1.0 and widening["replicas"] >= 0
    assert any("widened for" in a for a in planned["assumptions"])
    code = main(
        ["plan", "--profiles", str(path), "--machine", MACHINE, "--json", "--require-confidence"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1, doc
    refused = doc["plans"]["svc"]
    assert refused["safe_count"] is None and words in refused["reason"]


def test_an_older_profile_with_a_fault_says_it_is_not_widened() -> None:
    # a profile written before effective_samples existed: the fault is named, no margin is
    # taken, and the plan says why (never a silent number)
    profiles = ProfileModel().fit(_gaps()).profiles_
    sp = profiles["svc"]
    older = Profiles(services={"svc": replace(sp, effective_samples=None, span_instants=None)},
                     source=profiles.source)
    p = plan(older, Machine.from_spec(MACHINE), rng=np.random.default_rng(0))
    assert p.safe_count is not None
    assert p.meta["widening"][CPU]["factor"] == 1.0 and p.meta["widening"][CPU]["replicas"] == 0
    assert any(a.startswith(f"{CPU}: not widened: ") and "older profile" in a
               for a in p.assumptions), p.assumptions
