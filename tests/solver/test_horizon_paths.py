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
    BANDED,
    MAX_SUMMED_REPLICAS,
    MAX_SUMMED_REPLICAS_HORIZON,
    MAX_SUMMED_REPLICAS_HORIZON_EXACT,
    SCALED,
    SYMMETRIC,
    ReplicaDemand,
    Simulator,
    _band_weights,
    _Paths,
    horizon_replicas_for,
    horizon_shortcut_for,
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
                    horizon_replicas=MAX_SUMMED_REPLICAS_HORIZON, beyond=SCALED)
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
        # more memory that dips or is not right-skewed (issue 14, second round)
        "bimodal 80/20": 3e8 + np.where(rng.random(n) < 0.2, -1e8, 0.0) + rng.normal(0, 1e7, n),
        "bimodal 50/50": 3e8 + np.where(rng.random(n) < 0.5, -1e8, 0.0) + rng.normal(0, 1e7, n),
        "bimodal runs": 3e8 - 1e8 * (np.convolve(rng.random(n) < 0.005, np.ones(40), "same") > 0)
        + rng.normal(0, 5e6, n),
        "sawtooth+dips": 2e8 + 1e8 * ((t % 60) / 60.0) - np.where(rng.random(n) < 0.03, 1e8, 0.0)
        + rng.normal(0, 3e6, n),
        "dip runs": 4e8 - 2e8 * (np.convolve(rng.random(n) < 0.01, np.ones(20), "same") > 0)
        + rng.normal(0, 3e6, n),
        "dips+spikes": 3e8 - rng.gamma(0.3, 5e7, n) + np.where(rng.random(n) < 0.01, 1e8, 0.0),
        "beta left": 1e8 + 3e8 * rng.beta(5.0, 1.5, n),
        "uniform": 2e8 + 1e8 * rng.random(n),
        "laplace": 3e8 + rng.laplace(0, 2e7, n),
        "student t3": 3e8 + 1e7 * rng.standard_t(3, n),
        "capped dips": np.minimum(4e8 - rng.gamma(0.5, 4e7, n) + rng.normal(0, 2e7, n), 4.1e8),
        "smoothed dips": 4e8 - np.convolve(rng.gamma(0.2, 5e7, n), np.ones(10) / 10, "same"),
        # right-skewed but light-tailed: two levels, high 45 % of the time (review: scaled
        # from 16 it planned one replica too many at 600 and 1,500)
        "two levels 45 % up": 3e8 + np.where(rng.random(n) < 0.45, 1e8, 0.0)
        + rng.normal(0, 5e6, n),
    }


#: how far below the count of the exact sum the default may fall (share of it)
HORIZON_REPLICAS_SHORTFALL = 0.05


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", list(_traces(np.random.default_rng(1))))
def test_the_horizon_shortcut_plans_what_the_exact_sum_plans_or_fewer(kind: str, seed: int) -> None:
    # Beyond the replicas summed path by path, the sum of K is scaled by sqrt(n / K): it keeps
    # the skew of K replicas. Over a horizon K is 16: as they are for a right-skewed replica
    # (wider tail than n replicas have: the safe side); sign-randomised or weighted per band
    # of counts for a left-skewed one; 256 summed exactly for light tails without a clear
    # skew (horizon_shortcut_for). The default must give the count of every replica summed
    # (K = 256, all of them at these sizes) or a little less, never more: left-skewed traces
    # (dips) are the ones the plain shortcut got wrong. 30,000 draws: with 10,000 the
    # Monte Carlo error of the two counts (the exact sum draws replicas the shortcut does
    # not) flipped one of 120 comparisons by one replica either way.
    from capacity.solver._plan import ResourceModel

    trace = _traces(np.random.default_rng(seed))[kind]
    sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, trace, window_s=300.0)})
    d = replica_demand(sp, MEMORY)
    assert d is not None
    for replicas_fit in (30, 120):  # counts at the shortcut's edge and well beyond
        counts = {}
        for k in (None, MAX_SUMMED_REPLICAS_HORIZON_EXACT):
            model = ResourceModel(d, epsilon=1e-3, rng=np.random.default_rng(0), n_draws=30_000,
                                  horizon_steps=100, horizon_replicas=k)
            counts[k], _, _ = model.safe("empirical", replicas_fit * d.mean)
        fast, full = counts[None], counts[MAX_SUMMED_REPLICAS_HORIZON_EXACT]
        assert fast is not None and full is not None
        assert full <= MAX_SUMMED_REPLICAS_HORIZON_EXACT  # the reference is the exact sum
        assert full * (1 - HORIZON_REPLICAS_SHORTFALL) - 1 <= fast <= full, (kind, counts)


def _two_levels(seed: int, n: int = 2_000) -> np.ndarray:
    """Memory high 45 % of the time (seed 4: skewness of its own part 0.26, kurtosis -1.87;
    16 scaled plan 578 at 600 mean replicas, 2,048 summed 577)."""
    rng = np.random.default_rng(seed)
    return 3e8 + np.where(rng.random(n) < 0.45, 1e8, 0.0) + rng.normal(0, 5e6, n)


def test_light_tails_outweighing_a_right_skew_are_not_scaled_from_16() -> None:
    # skewness 0.26 (>= 0.25), excess kurtosis -1.88: the expansion puts 16 replicas scaled
    # about 0.3 standard deviations below n replicas' upper quantile: summed exactly
    trace = _two_levels(4)
    sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, trace, window_s=300.0)})
    d = replica_demand(sp, MEMORY)
    assert d is not None
    assert horizon_shortcut_for(d.own) == (MAX_SUMMED_REPLICAS_HORIZON_EXACT, SCALED)
    gamma = _traces(np.random.default_rng(1))["gamma noise"]
    sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, gamma, window_s=300.0)})
    g = replica_demand(sp, MEMORY)
    assert g is not None  # heavy right tail: still the fast path
    assert horizon_shortcut_for(g.own) == (MAX_SUMMED_REPLICAS_HORIZON, SCALED)


@pytest.mark.slow
def test_two_levels_at_600_replicas_plan_the_exact_sums_count_or_fewer() -> None:
    # the reviewer's case: 16 scaled plan 578, 2,048 summed 577 (100,000 draws, 3 seeds)
    from capacity.solver._plan import ResourceModel

    trace = _two_levels(4)
    sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, trace, window_s=300.0)})
    d = replica_demand(sp, MEMORY)
    assert d is not None
    counts = {}
    # 100,000 draws: with 20,000 the Monte Carlo error moves either count by one
    for k in (None, 2_048):
        model = ResourceModel(d, epsilon=1e-3, rng=np.random.default_rng(0), n_draws=100_000,
                              horizon_steps=100, horizon_replicas=k)
        counts[k] = model.safe("empirical", 600 * d.mean)[0]
    assert counts[None] is not None and counts[2_048] is not None
    assert counts[2_048] * 0.99 <= counts[None] <= counts[2_048], counts


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


def _demand_of(kind: str, seed: int = 1) -> ReplicaDemand:
    trace = _traces(np.random.default_rng(seed))[kind]
    d = replica_demand(service_profile("svc", {MEMORY: resource_profile(
        MEMORY, trace, window_s=300.0)}), MEMORY)
    assert d is not None
    return d


def test_the_shortcut_is_chosen_by_the_shape_of_one_replica() -> None:
    k = MAX_SUMMED_REPLICAS_HORIZON
    assert horizon_shortcut_for(_demand_of("lognormal").own) == (k, SCALED)
    assert horizon_shortcut_for(_demand_of("gamma dips").own) == (k, BANDED)
    assert horizon_shortcut_for(_demand_of("sawtooth heap").own) == (
        MAX_SUMMED_REPLICAS_HORIZON_EXACT, SCALED)
    assert horizon_shortcut_for(np.zeros(100)) == (k, SCALED)  # nothing of its own


@pytest.mark.parametrize("band", [1, 2, 3])
def test_band_weights_keep_the_variance_and_the_skewness_of_the_band_top(band: int) -> None:
    w1, w2 = _band_weights(band)
    assert (w1 * w1 + w2 * w2) / 2 == pytest.approx(1.0, abs=1e-12)
    assert (w1**3 + w2**3) / 2 == pytest.approx(16.0 ** (-band / 2), abs=1e-12)
    assert w1 > 0 > w2


def test_weighted_paths_are_the_replica_and_its_reflection() -> None:
    # beyond 16 replicas a dipping replica's paths are drawn with a random weight per
    # replica and draw: each window is w1 or w2 times one of the replica's own windows
    d = _demand_of("gamma dips")
    sim = Simulator(d, n_draws=4_000, rng=np.random.default_rng(0), horizon_steps=50,
                    beyond=SYMMETRIC)
    paths = sim._paths_for(40)
    assert paths is not sim._paths and paths.signed
    own = d.own.astype(np.float32)
    for start in (0, 7, own.size - 3):
        window = own[(start + np.arange(50)) % own.size]
        np.testing.assert_array_equal(paths._table[start], window)
        np.testing.assert_array_equal(paths._table[start + paths._negated], -window)
    paths._draw(16)
    signs = np.concatenate([s >= paths._negated for s in paths._starts])
    assert abs(signs.mean() - 0.5) < 0.01  # a fair coin
    # counts beyond 16 scale the sum of 16 such replicas: at one step of the paths no skew
    # is left (a dip's reflection is as likely), where the 16 replicas as they are keep a
    # strongly negative one (one replica's skewness over 4)

    def skewness(x: np.ndarray) -> float:
        x = x.astype(float)
        return float(np.mean((x - x.mean()) ** 3) / x.std() ** 3)

    def first_step(p: _Paths) -> np.ndarray:  # own_16 at the paths' first step
        p._draw(16)
        return np.sum([p._table[start, 0] for start in p._starts[:16]], axis=0)

    assert abs(skewness(first_step(paths))) < 0.15
    assert skewness(first_step(sim._paths)) < -0.4


def _exact_instant_count(d: ReplicaDemand, eps: float, draws: int, usable: float) -> int:
    """The largest count whose exceedance estimate is <= eps, every replica summed (the
    shared level and the first replicas drawn as the simulator draws them)."""
    from capacity.solver._plan import _FIT_RTOL

    rng = np.random.default_rng(0)
    u = rng.random(draws)
    level = d.mean + d.shared[np.minimum((u * d.shared.size).astype(np.int64),
                                         d.shared.size - 1)]
    own = np.zeros(draws)
    n = 0
    while True:
        own += d.own[rng.integers(0, d.own.size, size=draws, dtype=np.int32)]
        n += 1
        if np.count_nonzero(n * level + own > usable * (1 + _FIT_RTOL)) / draws > eps:
            return n - 1


@pytest.mark.parametrize("kind", ["gamma dips", "rare dips", "bimodal 80/20", "dips+spikes"])
def test_the_instant_extrapolation_plans_what_the_exact_sum_plans_or_fewer(kind: str) -> None:
    # at an instant 64 replicas are summed, beyond scaled by sqrt(n / 64): for memory that
    # dips (left-skewed) the scaled sum of the replicas as they are has a lighter upper tail
    # than n replicas (measured with 400,000 draws on "rare dips" at 390 replicas: P 3e-5
    # against 5.8e-4 summed exactly); sign-randomised, heavier (1.1e-3)
    from capacity.solver._plan import ResourceModel

    d = _demand_of(kind)
    draws, eps = 100_000, 1e-3
    usable = 400 * d.mean  # about 390 replicas: six times the replicas summed
    model = ResourceModel(d, epsilon=eps, rng=np.random.default_rng(0), n_draws=draws)
    assert model.sim is not None and model.sim.beyond == SYMMETRIC
    fast = model.safe("empirical", usable)[0]
    exact = _exact_instant_count(d, eps, draws, usable)
    assert fast is not None and exact > 4 * MAX_SUMMED_REPLICAS
    assert exact * (1 - HORIZON_REPLICAS_SHORTFALL) <= fast <= exact, (kind, fast, exact)


@pytest.mark.parametrize("beyond", [SYMMETRIC, BANDED])
@pytest.mark.parametrize("limit", [None, 4.05e8])
def test_weighted_paths_count_what_their_plain_sums_count(beyond: str, limit: float | None) -> None:
    # the bounds that spare whole paths hold for the weighted windows too: every count and
    # quantile beyond 16 equals the plain computation from the same windows and weights
    from dataclasses import replace

    d = replace(_demand_of("gamma dips"), limit=limit)
    sim = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7), horizon_steps=STEPS,
                    beyond=beyond)
    for n in (40, 17, 300, 64, 5000):
        paths = sim._paths_for(n)
        paths._draw(16)
        own = np.zeros((DRAWS, STEPS), np.float32)
        for start in paths._starts[:16]:
            own += paths._table[start]
        level = paths._level_table[paths._shared_start]
        path = n * level + own * np.float32(math.sqrt(n / 16))
        if limit is not None:
            path = np.minimum(path, n * limit)
        totals = path.max(axis=1)
        for threshold in [*np.quantile(totals, [0.0, 0.5, 0.99, 0.999]), totals[3]]:
            assert sim.exceedances(n, float(threshold)) == np.count_nonzero(totals > threshold)
        assert sim.quantile(n, 0.999) == np.quantile(totals, 0.999)


@pytest.mark.parametrize("kind", ["noise", "sawtooth"])
@pytest.mark.parametrize("steps", [1, STEPS])
def test_the_count_without_a_widening_searched_from_the_widened_count_is_the_full_search(
    kind: str, steps: int,
) -> None:
    # the plan states what a widening cost by the count without it; that search starts
    # after the widened count (the same draws exceed a larger capacity no more often) and
    # must give what a full search gives, for counts in the scan and beyond it
    from capacity.solver._plan import ResourceModel

    for size in (20, 90, 400):
        model = ResourceModel(demand(kind), epsilon=1e-2, rng=np.random.default_rng(3),
                              n_draws=DRAWS, horizon_steps=steps)
        usable = size * 2.5e8
        for factor in (1.005, 1.1, 1.5):
            widened = model.safe("empirical", usable / factor)[0]
            full = model.safe("empirical", usable)[0]
            assert widened is not None and full is not None and widened <= full
            assert model.empirical_count_from(usable, widened) == full, (size, factor)


def test_a_horizon_longer_than_the_trace_is_said() -> None:
    """A path longer than the trace only replays it (the simulator caps it at the trace's
    length): a 1 h horizon over a 2,000 s trace was planned silently as if it held."""
    rng = np.random.default_rng(3)
    trace = 2e8 + rng.normal(0, 5e6, 2_000)
    profiles = profiles_of(service_profile("svc", {MEMORY: resource_profile(MEMORY, trace)}))
    machine = Machine.from_spec("memory=8000000000")
    long = plan(profiles, machine, method="empirical", horizon_s=3600.0, compare=False,
                valid_for_s=None)
    short = plan(profiles, machine, method="empirical", horizon_s=300.0, compare=False,
                 valid_for_s=None)
    said = [a for a in long.assumptions if "longer than the recorded trace" in a]
    assert said and "3600 s" in said[0] and "2000 s" in said[0]
    assert not any("longer than the recorded trace" in a for a in short.assumptions)


def test_instant_counts_do_not_depend_on_what_was_asked_before() -> None:
    # The totals of a count summed exactly were float64 the first time and float32 (as
    # cached) after, so a draw within float32's rounding of the threshold was counted over
    # once and under later: the count depended on the order the counts were asked in
    # (which the capacity decides). Thresholds between a draw's two values show it.
    d = demand("noise")
    n = 5
    ref = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7))
    for _ in range(n):
        ref._add_replica()
    float64 = (n * ref._level + ref._own_sum)[:, 0]
    rounded = float64.astype(np.float32).astype(np.float64)
    between = np.flatnonzero(float64 != rounded)
    assert between.size > 0
    later = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7))
    later.total(n + 3)  # passes n on the way: its totals cached
    for i in between[:10]:
        threshold = float((float64[i] + rounded[i]) / 2)
        first = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(7))
        asked_first = first.exceedances(n, threshold)  # n asked for the first time
        assert asked_first == later.exceedances(n, threshold)
        assert asked_first == first.exceedances(n, threshold)  # asked again


@pytest.mark.parametrize("kind,beyond", [("lognormal", SCALED), ("sawtooth heap", SCALED),
                                         ("gamma dips", SYMMETRIC), ("gamma dips", BANDED)])
@pytest.mark.parametrize("limit", [None, 4.05e8])
def test_totals_from_the_steps_kept_are_the_whole_paths_maxima(
        kind: str, beyond: str, limit: float | None) -> None:
    # with every replica summed only the steps where a path can peak are kept: the totals
    # made from them equal the whole paths' maxima bit for bit, summed in one go (a mix)
    # or walked up to (a plan's count search)
    from dataclasses import replace

    d = replace(_demand_of(kind), limit=limit)
    for walk in (False, True):
        sim = Simulator(d, n_draws=DRAWS, rng=np.random.default_rng(3), horizon_steps=STEPS,
                        beyond=beyond)
        paths = sim._paths_for(40)
        k = paths.replicas
        if walk:
            paths._sum(k - 1)
        paths._sum(k)
        assert paths._front is not None and paths._own_sum is None
        own = np.zeros((DRAWS, STEPS), np.float32)
        for start in paths._starts[:k]:
            own += paths._table[start]
        rows = np.arange(DRAWS)
        for n in (k, k + 1, 2 * k + 3, 5000):  # every count from k on scales own_k
            whole = paths._path_max(n, rows, own)
            np.testing.assert_array_equal(paths._totals(n, slice(None)), whole)
            some = rows[::7]
            np.testing.assert_array_equal(paths._totals(n, some), whole[some])
        kept = paths._front[0][-1]
        assert kept < DRAWS * STEPS / 2  # fewer steps than the paths (here 11-28 %)
