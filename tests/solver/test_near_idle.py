"""Near-idle services get a number, not "unbounded" (issue 13, cause 4)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from capacity import ProfileModel
from capacity._columns import CPU, MEMORY
from capacity.solver import Machine, plan

sys.path.insert(0, str(Path(__file__).parent.parent / "model"))
from _samples_builder import samples_table

METHODS = ("peak", "quantile", "gaussian", "empirical")


def _idle(peak: float, floor: float = 1e-9):
    rng = np.random.default_rng(0)
    v = np.where(rng.random(2000) < 0.02, peak, floor)
    return ProfileModel(min_span_s=0).fit(
        samples_table({"c1": {CPU: v}}, interval_s=5.0)).profiles_


def test_near_idle_gets_the_peak_count_with_a_reason() -> None:
    # demand as recorded (a 10,000 s history would take the x1.10 allowance by default)
    p = plan(_idle(1e-6), Machine.from_spec("cpus=4"), valid_for_s=None)
    # 90 % of 4 CPUs over a 1e-6 core peak: 3.6 million, what every method now says
    assert p.safe_count == 3_600_000
    assert all(p.methods[m]["safe_count"] == 3_600_000 for m in METHODS)
    assert "structural limits" in p.per_resource[CPU].reason


def test_idle_below_the_search_is_capped_and_said() -> None:
    p = plan(_idle(1e-12, 1e-13), Machine.from_spec("cpus=4"), valid_for_s=None)
    assert p.safe_count == 10**7
    assert "capped" in p.per_resource[CPU].reason


def test_a_bounded_resource_still_binds() -> None:
    rng = np.random.default_rng(1)
    v = np.where(rng.random(2000) < 0.02, 1e-6, 1e-9)
    m = rng.uniform(50e6, 60e6, 2000)
    prof = ProfileModel(min_span_s=0).fit(
        samples_table({"c1": {CPU: v, MEMORY: m}}, interval_s=5.0)).profiles_
    p = plan(prof, Machine.from_spec("cpus=4,memory=1GiB"))
    assert p.binding_resource == MEMORY and p.safe_count is not None and p.safe_count < 20
