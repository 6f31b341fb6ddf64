"""Every search of the solver ends, at a bound derived from its inputs (issue 11, item 1).

The tests count predicate calls (how much work a search does) and run the whole call under
a generous wall-clock bound (:func:`bounded.within`) so a regression fails instead of hanging.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from bounded import within

from capacity._columns import CPU, MEMORY
from capacity.solver import Machine, plan
from capacity.solver._mix import _fewest_hosts, size_fleet
from capacity.solver._plan import _MAX_COUNT, _largest
from capacity.solver._testing import profiles_of, resource_profile, service_profile

#: wall-clock bound of one planning call: far above its real cost, far below "forever"
BOUND_S = 60.0


class Counted:
    """A monotone predicate ``n <= answer`` (or always true) that counts its calls."""

    def __init__(self, answer: int | None) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, n: int) -> bool:
        self.calls += 1
        return self.answer is None or n <= self.answer


@pytest.mark.parametrize("answer", [0, 1, 2, 7, 1000, 123_456, _MAX_COUNT - 1])
@pytest.mark.parametrize("start", [0, 1, 5, 999, 10**6, _MAX_COUNT])
def test_largest_finds_the_answer_in_logarithmic_calls(answer: int, start: int) -> None:
    fits = Counted(answer)
    assert _largest(fits, start=start) == answer
    assert fits.calls <= 2 * math.log2(_MAX_COUNT) + 4


@pytest.mark.parametrize("start", [0, 3, _MAX_COUNT])
def test_largest_of_a_predicate_that_always_fits_is_unbounded_not_endless(start: int) -> None:
    fits = Counted(None)
    assert _largest(fits, start=start) is None
    assert fits.calls <= 2 * math.log2(_MAX_COUNT) + 4


@pytest.mark.parametrize("answer, start", [(1, 1), (3, 1), (40, 7), (10**9, 1), (10**11, 5)])
def test_fewest_hosts_bisects_instead_of_counting_hosts(answer: int, start: int) -> None:
    # ceil(count / h) <= 1 fits on one host: h = count hosts needed; count up to 1e11
    calls = 0

    def fits(per_host: dict[str, int]) -> bool:
        nonlocal calls
        calls += 1
        return per_host["web"] <= 1

    assert _fewest_hosts(fits, {"web": answer}, start=start) == answer
    assert calls <= 2 * math.log2(answer + 1) + 4


def _cpu_service(limit: float | None, *, memory_limit: int | None = None):
    x = np.random.default_rng(3).gamma(4.0, 0.05, 400)
    mem = np.random.default_rng(4).normal(2e8, 1e7, 400)
    return profiles_of(service_profile(
        "web", {CPU: resource_profile(CPU, x), MEMORY: resource_profile(MEMORY, mem)},
        cpu_limit_cores=limit, memory_limit_bytes=memory_limit))


@pytest.mark.parametrize("method", ["gaussian", "empirical", "limits", "peak", "quantile"])
@pytest.mark.parametrize("limits", [dict(limit=-1.0), dict(limit=0.0), dict(limit=math.nan),
                                    dict(limit=None, memory_limit=-5)])
def test_a_limit_that_is_not_positive_ends_and_limits_nothing(method: str, limits) -> None:
    machine = Machine.from_spec("cpus=4,memory=8GiB")
    with within(BOUND_S, f"plan with {limits}"):
        bad = plan(_cpu_service(**limits), machine, method=method, n_draws=2000)
        plain = plan(_cpu_service(None), machine, method=method, n_draws=2000)
    assert bad.safe_count == plain.safe_count


def test_size_of_a_hundred_billion_replicas_ends() -> None:
    profiles = _cpu_service(None)
    machine = Machine.from_spec("cpus=4,memory=8GiB")
    with within(BOUND_S, "size_fleet of 1e11 replicas"):
        fleet = size_fleet(profiles, machine, {"web": 99_999_999_999}, method="gaussian")
    per_host = fleet.per_host["web"]
    assert fleet.hosts_needed == math.ceil(99_999_999_999 / per_host)
    assert fleet.hosts_curve[-1][0] == 2 * 99_999_999_999
