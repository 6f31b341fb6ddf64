"""The horizon risk (``horizon_steps > 1``) computed by bounds and partial paths (issue 14)
gives the totals, exceedance counts and quantiles of the plain computation: every draw a
``(n_draws, h)`` path of ``n`` replicas, its maximum compared with the threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capacity._columns import MEMORY
from capacity.solver import Machine, plan
from capacity.solver._demand import (
    MAX_SUMMED_REPLICAS_HORIZON,
    MAX_SUMMED_REPLICAS_HORIZON_EXACT,
    ReplicaDemand,
    Simulator,
    horizon_replicas_for,
    replica_demand,
)
from capacity.solver._testing import profiles_of, resource_profile, service_profile

DRAWS = 3_000
STEPS = 40
#: a probability agrees "within Monte Carlo error" when within this many standard errors
MC_SIGMAS = 4.0


def demand(kind: str, limit: float | None = None, seed: int = 0) -> ReplicaDemand:
    rng = np.random.default_rng(seed)
    t = np.arange(1_000)
    if kind == "noise":  # the worst case for the bounds: every step a new value
        own = rng.gamma(3.0, 1e7, t.size) - 3e7
    else:  # a heap growing for 60 s then collected, smooth between collections
        own = 5e7 * ((t % 60) / 60.0 - 0.5) + rng.normal(0, 2e6, t.size)
    shared = 2e7 * np.sin(2 * np.pi * t / 700)
    return ReplicaDemand(
        service="svc", resource=MEMORY, mean=2.5e8, var=float(own.var() + shared.var()),
        cov=float(shared.var()), cov_note="test", peak=float(2.5e8 + own.max() + shared.max()),
        limit=limit, count=t.size, profile=None, shared=shared, own=own, trace_interval_s=1.0,
    )


def plain_totals(
    d: ReplicaDemand, seed: int, ns: list[int], h: int = STEPS
) -> dict[int, np.ndarray]:
    """The definition, step by step: the shared start per draw, then each replica's own start,
    in the order the simulator draws them from the same generator."""
    rng = np.random.default_rng(seed)
    u = rng.random(DRAWS)
    start = np.minimum((u * d.shared.size).astype(np.int64), d.shared.size - 1)
    steps = np.arange(h)
    level = d.mean + d.shared[(start[:, None] + steps) % d.shared.size]
    own_sum = np.zeros((DRAWS, h), np.float32)  # the replicas' paths are summed in float32
    own32 = d.own.astype(np.float32)
    sums = {}
    for j in range(1, MAX_SUMMED_REPLICAS_HORIZON + 1):
        s = rng.integers(0, d.own.size, size=DRAWS, dtype=np.int32)
        own_sum = own_sum + own32[(s[:, None] + steps) % d.own.size]
        sums[j] = own_sum
    out = {}
    for n in ns:
        k = min(n, MAX_SUMMED_REPLICAS_HORIZON)
        own = sums[k] if n <= k else sums[k] * math.sqrt(n / k)
        path = n * level + own
        if d.limit is not None:
            path = np.minimum(path, n * d.limit)
        out[n] = path.max(axis=1)
    return out


@pytest.mark.parametrize("kind", ["noise", "sawtooth"])
@pytest.mark.parametrize("limit", [None, 2.7e8])
def test_counts_quantiles_and_totals_equal_the_plain_paths(kind: str, limit: float | None) -> None:
    d = demand(kind, limit)
    # counts below, at and beyond the replicas summed one by one; asked out of order, so
    # counts whose sums were overwritten by later replicas are covered too
    ns = [3, 16, 17, 40, 64, 65, 150, 1, 20, 64, 2, 300, 5, 12]
    ref = plain_totals(d, seed=7, ns=sorted(set(ns)))
    # 16 summed as plain_totals does (the default for the sawtooth, not right-skewed, is 256)
    sim = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7), horizon_steps=STEPS,
                    horizon_replicas=MAX_SUMMED_REPLICAS_HORIZON)
    for n in ns:
        totals = ref[n]
        # thresholds where few, some and most draws exceed, and exactly at a draw's total
        for threshold in [*np.quantile(totals, [0.0, 0.1, 0.5, 0.9, 0.999]), totals[17],
                          totals.max() * 2]:
            assert sim.exceedances(n, float(threshold)) == np.count_nonzero(totals > threshold)
        for q in (0.5, 0.99, 0.999):
            assert sim.quantile(n, q) == np.quantile(totals, q)
    for n in (64, 150, 5):
        np.testing.assert_allclose(sim.total(n), ref[n], rtol=1e-7)  # float32 when cached


def test_plan_over_a_horizon_agrees_with_paths_drawn_afresh() -> None:
    # the plan's risk at its count, against the plain computation with other random numbers
    rng = np.random.default_rng(3)
    t = np.arange(2_000)
    trace = 2e8 + 1e8 * (((t + 17) % 60) / 60.0) + rng.normal(0, 5e6, t.size)
    sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, trace, window_s=300.0)})
    usable = 8e9
    p = plan(profiles_of(sp), Machine.from_spec(f"memory={usable:.0f}"), method="empirical",
             incompressible_epsilon=1e-3, horizon_s=300.0, compare=False,
             valid_for_s=None)  # demand as recorded: no allowance for the short history
    rp = p.per_resource[MEMORY]
    n = rp.safe_count
    assert n is not None and rp.p_overload_at_safe_count is not None
    assert rp.p_overload_at_next is not None
    d = replica_demand(sp, MEMORY)
    assert d is not None
    draws = 20_000
    for count, p_plan in ((n, rp.p_overload_at_safe_count), (n + 1, rp.p_overload_at_next)):
        totals = _plain(d, count, draws=draws, h=300)
        p_ref = float(np.mean(totals > usable))
        se = math.sqrt(max(p_ref * (1 - p_ref), 1 / draws) / draws * 2)
        assert abs(p_plan - p_ref) <= MC_SIGMAS * se + 1e-12, (count, p_plan, p_ref)


def _plain(d: ReplicaDemand, n: int, *, draws: int, h: int) -> np.ndarray:
    # the whole (n_draws, h) paths, as the simulator computed them before issue 14
    steps = np.arange(h)
    u = np.random.default_rng(5).random(draws)
    start = np.minimum((u * d.shared.size).astype(np.int64), d.shared.size - 1)
    level = d.mean + d.shared[(start[:, None] + steps) % d.shared.size]
    rng = np.random.default_rng(6)
    own = np.zeros((draws, h))
    k = horizon_replicas_for(d.own)  # as the plan chooses
    for _ in range(min(n, k)):
        s = rng.integers(0, d.own.size, size=draws)
        own += d.own[(s[:, None] + steps) % d.own.size]
    if n > k:
        own *= math.sqrt(n / k)
    path = n * level + own
    if d.limit is not None:
        path = np.minimum(path, n * d.limit)
    return path.max(axis=1)


def _traces(rng: np.random.Generator, n: int = 2_000) -> dict[str, np.ndarray]:
    t = np.arange(n)
    return {
        "gamma noise": 2e8 + 3e6 * np.sin(2 * np.pi * t / 2_000) + rng.gamma(3.0, 1e7, n),
        "sawtooth heap": 2e8 + 1e8 * ((t % 60) / 60.0) + rng.normal(0, 5e6, n),
        "rare spikes": 2e8 + np.where(rng.random(n) < 0.05, 2e8, 0.0) + rng.normal(0, 2e6, n),
        "spike runs": 2e8 + 1.5e8 * (np.convolve(rng.random(n) < 0.01, np.ones(30), "same") > 0)
        + rng.normal(0, 2e6, n),
        "slow swing": 2e8 + 5e7 * np.sin(2 * np.pi * t / 500) + rng.normal(0, 1e7, n),
        "lognormal": 1e8 * np.exp(rng.normal(0, 0.5, n)),
        # left-skewed: memory that sits high and sometimes dips (the scaled sum of 16
        # replicas planned 29 and 117 where 256 summed plan 28 and 116)
        "gamma dips": 4e8 - rng.gamma(0.3, 5e7, n),
        "rare dips": 4e8 - np.where(rng.random(n) < 0.05, 2e8, 0.0) + rng.normal(0, 2e6, n),
    }


#: how far below the count of the exact sum the default may fall (share of it)
HORIZON_REPLICAS_SHORTFALL = 0.05


@pytest.mark.parametrize("kind", list(_traces(np.random.default_rng(1))))
def test_the_horizon_shortcut_plans_what_the_exact_sum_plans_or_fewer(kind: str) -> None:
    # Beyond the replicas summed path by path, the sum is scaled by sqrt(n / K): it keeps the
    # skew of K replicas. Over a horizon K is 16 for a right-skewed replica (wider tail than
    # n replicas have: the safe side), else 256. The default must give the count of every
    # replica summed (K = 256, all of them at these sizes) or a little less, never more:
    # left-skewed traces (dips) are the ones the shortcut got wrong.
    from capacity.solver._plan import ResourceModel

    trace = _traces(np.random.default_rng(1))[kind]
    sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, trace, window_s=300.0)})
    d = replica_demand(sp, MEMORY)
    assert d is not None
    for replicas_fit in (30, 120):  # counts at the shortcut's edge and well beyond
        counts = {}
        for k in (None, MAX_SUMMED_REPLICAS_HORIZON_EXACT):
            model = ResourceModel(d, epsilon=1e-3, rng=np.random.default_rng(0), n_draws=10_000,
                                  horizon_steps=100, horizon_replicas=k)
            counts[k], _, _ = model.safe("empirical", replicas_fit * d.mean)
        fast, full = counts[None], counts[MAX_SUMMED_REPLICAS_HORIZON_EXACT]
        assert fast is not None and full is not None
        assert full <= MAX_SUMMED_REPLICAS_HORIZON_EXACT  # the reference is the exact sum
        assert full * (1 - HORIZON_REPLICAS_SHORTFALL) - 1 <= fast <= full, (kind, counts)


@pytest.mark.parametrize(("draws", "eps"), [(20_000, 1e-3), (200_000, 1e-4), (5_000, 1e-3),
                                            (20_000, 1e-2), (3_000, 0.2)])
def test_the_largest_allowed_count_splits_every_count(draws: int, eps: float) -> None:
    # the count search asks "at most most(bound) exceedances?" instead of the count itself:
    # the same answer for every count only if allows() is true up to most() and false above
    from capacity.solver._plan import ResourceModel

    model = ResourceModel(demand("noise"), epsilon=eps, rng=np.random.default_rng(0),
                          n_draws=draws)
    for bound in ("point", "upper", "lower"):
        most = model.most(bound)
        assert most >= 0
        for k in range(0, min(draws, 3 * most + 200) + 1):
            assert model.allows(k, bound) == (k <= most), (bound, k, most)


def test_exceeds_at_most_agrees_with_the_count() -> None:
    d = demand("noise")
    sim = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7), horizon_steps=STEPS)
    ref = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7), horizon_steps=STEPS)
    for n in (70, 150, 300):
        totals = ref._paths.total(n)
        for threshold in np.quantile(totals, [0.5, 0.99, 0.999]):
            k = int(np.count_nonzero(totals > threshold))
            for most in (0, k - 1, k, k + 1, 10 * k + 5):
                assert sim.exceeds_at_most(n, float(threshold), most) == (k <= most)
