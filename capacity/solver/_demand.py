"""One replica's demand as the solver sees it, and the Monte Carlo simulator of sums of replicas.

:func:`replica_demand` reads a :class:`~capacity.model.ResourceProfile` defensively (profiles of
an older fit may lack fields) into a :class:`ReplicaDemand`: mean, variance, the covariance
between two replicas of the service and where it came from, per-replica quantiles, the declared
limit, and the two trace components the simulator draws from.

Replicas are not independent
----------------------------
Replica ``i`` at time ``t`` is modelled as ``mean + shared(t) + own_i(t_i)``: a component every
replica shares at the same instant, plus one each replica draws at its own random time.

- Several replicas recorded together (``replica_correlation`` = rho measured): ``shared`` is the
  recorded trace's deviation (the mean over replicas, aligned in time) scaled to variance
  ``rho * var``, and ``own`` the deviation of one replica's own series (``replica_trace``)
  scaled to ``(1 - rho) * var``. Two replicas then have covariance ``rho * var``.
- One replica recorded: the slow component (the centred moving average over ``window_s``)
  is shared, scaled to ``slow_var``; the fast residual is the replica's own, scaled to
  ``fast_var``. Covariance ``slow_var``.
- Neither known (an old profile): perfectly correlated (covariance ``var``), the safe side.
- ``independent_offsets=True`` (opt-in, never the default): replicas are the same process at
  random time offsets, so nothing is shared (covariance 0); ``own`` is one replica's series.

Traps
-----
- The profile's ``trace`` is the mean over the replicas sampled together. Its *shape* is not
  one replica's: two replicas busy at 0.5 core a third of the time each, never at once, average
  to a trace that never exceeds 0.25, and rescaling that to one replica's variance gives a
  symmetric-ish tail topping out near 0.36, so P(one replica > 0.45) came out 0 instead of 1/3.
  The replica's own component is therefore drawn from ``replica_trace`` (each replica's own
  series); ``trace`` only carries what replicas share. A profile without ``replica_trace``
  (schema version 2) falls back to ``trace`` for both, with that bias (stated in ``cov_note``,
  so among the plan's assumptions).
- The trace is averaged down to ~2,000 points: on a long recording one point averages several
  samples, so bursts shorter than ``trace_interval_s`` are smoothed. The rescaling restores the
  variance of one sample, not the full shape of its tail; a recording with short, tall bursts
  is better planned from a trace at the sampling interval (shorter recording per profile).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special

from .._columns import CPU, MEMORY
from .._errors import CapacityError
from ..model._fit import DEGENERATE_SLOW_SHARE, MIN_WINDOW_SAMPLES

__all__ = [
    "HORIZON_SHORTCUT_MIN_SKEW",
    "MAX_SUMMED_REPLICAS_HORIZON",
    "MAX_SUMMED_REPLICAS_HORIZON_EXACT",
    "MIN_TRACE_POINTS",
    "ReplicaDemand",
    "Simulator",
    "clopper_pearson",
    "horizon_replicas_for",
    "replica_demand",
    "with_host_cost",
]

#: fewer trace points than this and the empirical method is undefined for the resource
MIN_TRACE_POINTS = 30
#: at most this many replicas are summed draw by draw; beyond, the sum of the replicas' own
#: components is extrapolated as sqrt(n / K) times the sum of K (keeps the skew of K replicas,
#: which overstates the skew of n > K replicas: the safe side for an upper tail)
MAX_SUMMED_REPLICAS = 64
#: the same for paths over a horizon (``horizon_steps > 1``), where each replica costs a whole
#: path per draw: 16 replicas summed step by step, beyond scaled by sqrt(n / 16), but only
#: for a right-skewed replica (see :func:`horizon_replicas_for`). Scaling keeps the skewness
#: of 16 replicas (g / 4 for one replica's g) where n have g / sqrt(n): for g > 0 that widens
#: the upper tail (the safe side: counts equal to 64's or up to 5 % lower on the right-skewed
#: profiles of ``tests/solver/test_horizon_paths.py``); for g < 0 (memory that sits high and
#: sometimes dips) it narrows it, and the count came out 1 to 2 replicas too high
MAX_SUMMED_REPLICAS_HORIZON = 16
#: replicas summed path by path over a horizon when one replica's own component is not
#: clearly right-skewed (skewness < :data:`HORIZON_SHORTCUT_MIN_SKEW`): the exact sum up to
#: here; beyond, still scaled by sqrt(n / 256), whose skewness error (g / 16 against
#: g / sqrt(n)) is a quarter of the shortcut's. Trap: beyond 256 replicas a left-skewed
#: replica's count may still be one too high (not observed; not excluded)
MAX_SUMMED_REPLICAS_HORIZON_EXACT = 256
#: smallest sample skewness of one replica's own component (the fast variation the replicas
#: do not share) for which :data:`MAX_SUMMED_REPLICAS_HORIZON` replicas are summed and scaled.
#: The margin covers the sampling error of the skewness (about sqrt(6 / 2000) = 0.055 for a
#: 2,000-point trace, more for a correlated one) and shapes with no skew but light tails
#: (a sawtooth heap: skewness 0.03, excess kurtosis -1.1; 8 replicas summed planned one
#: replica above 64 there), which go to the exact sum
HORIZON_SHORTCUT_MIN_SKEW = 0.25

_LEVEL_KEYS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999, "max": 1.0}


@dataclass(frozen=True)
class ReplicaDemand:
    """One replica of ``service`` for ``resource``, in the resource column's unit.

    Attributes
    ----------
    mean, var : float
        Per-replica mean and variance (unit, unit squared).
    cov : float
        Covariance between two replicas of the service at one instant (unit squared).
    cov_note : str
        The assumption behind ``cov``, for the plan's assumption list.
    peak : float
        Largest sample of one replica.
    limit : float or None
        Declared per-replica limit (CPU cores or memory bytes); demand cannot exceed it.
    count : int
        Samples behind the profile.
    shared, own : numpy.ndarray
        Zero-mean components the simulator draws from (see the module docstring); ``own``
        empty when the profile has no usable trace. Their lengths may differ (``shared`` is
        the time-aligned trace, ``own`` one replica's series, possibly several concatenated).
    trace_interval_s : float
        Spacing of ``shared`` and ``own``, seconds.
    trace_note : str
        Why the trace cannot be used (the empirical method then falls back to gaussian),
        or ``""``.
    host_cost : float
        Fixed cost of one replica outside its cgroup (shim, kernel memory), already added to
        ``mean``, ``peak`` and ``limit`` by :func:`with_host_cost`; 0 when none.
    """

    service: str
    resource: str
    mean: float
    var: float
    cov: float
    cov_note: str
    peak: float
    limit: float | None
    count: int
    profile: Any
    shared: np.ndarray
    own: np.ndarray
    trace_interval_s: float
    trace_note: str = ""
    host_cost: float = 0.0

    @property
    def sd(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    @property
    def has_trace(self) -> bool:
        return self.own.size > 0

    def quantile(self, q: float) -> float:
        """One replica's ``q`` quantile, capped at the declared limit.

        A level the profile names (p50 ... p99.9, max) is read from ``quantiles``; any other
        from the decaying-weight histogram, else interpolated between the named levels.
        Trap: above ``1 - 1/count`` this is an interpolation towards the largest sample.
        """
        p = self.profile
        named = dict(getattr(p, "quantiles", {}) or {})
        for key in ("p50", "p90", "p95", "p99", "max"):
            if key not in named and getattr(p, key, None) is not None:
                named[key] = getattr(p, key)
        value: float | None = None
        for key, level in _LEVEL_KEYS.items():
            if abs(level - q) < 1e-12 and named.get(key) is not None:
                value = float(named[key])
        if value is None and len(getattr(p, "histogram_weights", ()) or ()) > 0:
            try:
                value = float(p.quantile(q))
            except (CapacityError, ValueError, StopIteration):  # empty or old histogram
                value = None
        if value is None:
            levels = sorted(
                (lvl, float(named[k])) for k, lvl in _LEVEL_KEYS.items() if named.get(k) is not None
            )
            xs = [lvl for lvl, _ in levels]
            ys = [v for _, v in levels]
            value = float(np.interp(q, xs, ys)) if xs else self.peak
        if self.limit is not None:
            value = min(value, self.limit - self.host_cost)
        return value + self.host_cost


def with_host_cost(demand: ReplicaDemand, cost: float) -> ReplicaDemand:
    """``demand`` with a fixed per-replica cost added (the host's cost of one container
    outside its cgroup): mean, peak, limit and every quantile shift by ``cost``; the
    variance and the trace shapes do not change (the cost is a constant)."""
    if not cost:
        return demand
    return replace(
        demand, mean=demand.mean + cost, peak=demand.peak + cost,
        limit=None if demand.limit is None else demand.limit + cost,
        host_cost=demand.host_cost + cost,
    )


def _limit_of(service_profile: Any, resource: str) -> float | None:
    if resource == CPU:
        v = getattr(service_profile, "cpu_limit_cores", None)
    elif resource == MEMORY:
        v = getattr(service_profile, "memory_limit_bytes", None)
    else:
        v = None
    if v is None or isinstance(v, bool):
        return None
    limit = float(v)
    # a limit <= 0 or NaN limits nothing (and would make every count "fit"): profiles read
    # from a file never carry one (Profiles.from_dict refuses it); this guards hand-built ones
    return limit if math.isfinite(limit) and limit > 0 else None


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with the window shrunk at the ends (no padding bias)."""
    if window <= 1 or x.size < 3:
        return x.copy()
    window = min(window, x.size)
    c = np.concatenate(([0.0], np.cumsum(x)))
    half_lo, half_hi = window // 2, window - window // 2
    idx = np.arange(x.size)
    lo = np.clip(idx - half_lo, 0, x.size)
    hi = np.clip(idx + half_hi, 0, x.size)
    return (c[hi] - c[lo]) / (hi - lo)


def _slow_component(trace: np.ndarray, window: int, step_s: float, cycle_s: float) -> np.ndarray:
    """The shared part of a one-replica trace, as the profile model splits it: the cycle's
    profile (mean at each position of the ``cycle_s`` cycle; when the trace covers two
    cycles at a step dividing it) plus a moving average of ``window`` points of the rest.
    Trap: the trace closes gaps, so after a gap the cycle's phase is off by the gap."""
    per = round(cycle_s / step_s) if cycle_s > 0 and step_s > 0 else 0
    if per >= 2 and abs(per * step_s - cycle_s) <= 0.01 * cycle_s and trace.size >= 2 * per:
        d = trace - trace.mean()
        pos = np.arange(trace.size) % per
        profile = np.bincount(pos, weights=d, minlength=per) / np.maximum(
            np.bincount(pos, minlength=per), 1)
        base = profile[pos]
        return trace.mean() + base + _moving_average(d - base, window)
    return _moving_average(trace, window)


def _scaled(x: np.ndarray, target_var: float) -> np.ndarray:
    d = x - x.mean()
    v = float(d.var())
    if target_var <= 0 or v <= 0:
        return np.zeros_like(d)
    return d * math.sqrt(target_var / v)


def replica_demand(
    service_profile: Any, resource: str, *, independent_offsets: bool = False,
    with_trace: bool = True,
) -> ReplicaDemand | None:
    """The solver's view of one replica of a service for one resource, or None without samples.

    Reads the profile defensively: fields an older profile lacks fall back to the safe side
    (perfect correlation between replicas when neither ``replica_correlation`` nor
    ``slow_var`` is known). ``with_trace=False`` skips the trace components (the closed-form
    methods do not need them).
    """
    rp = service_profile.resources.get(resource)
    if rp is None or int(getattr(rp, "count", 0)) == 0:
        return None
    mean = float(rp.mean)
    var = float(getattr(rp, "var", float(rp.std) ** 2))
    rho = getattr(rp, "replica_correlation", None)
    slow_var = float(getattr(rp, "slow_var", 0.0) or 0.0)
    fast_var = float(getattr(rp, "fast_var", 0.0) or 0.0)
    window_s = float(getattr(rp, "window_s", 300.0) or 300.0)
    replicas = int(getattr(service_profile, "replicas_seen", 1) or 1)
    if independent_offsets:
        cov, note = 0.0, "replicas at random time offsets: independent (opt-in assumption)"
        mode = "independent"
    elif replicas > 1 and rho is not None:
        rho = float(min(max(rho, 0.0), 1.0))
        cov = rho * var
        note = f"replicas co-move as measured over {replicas} replicas (correlation {rho:.2f})"
        mode = "rho"
    elif slow_var > 0 or fast_var > 0:
        # Trap: slow_var + fast_var differs from var by their covariance; keep var as the total.
        cov = min(slow_var, var)
        note = (
            f"one replica recorded: slow component (moving average over {window_s:g} s"
            + (", plus the time-of-day profile" if getattr(rp, "time_of_day_s", 0.0) else
               "; time of day not modelled") +
            ") shared by all replicas, fast residual independent"
        )
        if var > 0 and cov / var > DEGENERATE_SLOW_SHARE:
            note += (f"; degenerate split (slow share {cov / var:.4f}): replicas planned as "
                     "moving as one")
        mode = "slow"
    else:
        cov, note = var, "replica co-movement unknown: replicas assumed perfectly correlated"
        mode = "perfect"
    trace = np.asarray(getattr(rp, "trace", ()) or () if with_trace else (), dtype=float)
    mine = np.asarray(getattr(rp, "replica_trace", ()) or () if with_trace else (), dtype=float)
    step = float(getattr(rp, "trace_interval_s", 0.0) or 0.0)
    shared = own = np.zeros(0)
    trace_note = ""
    if mine.size < MIN_TRACE_POINTS or not np.all(np.isfinite(mine)):
        # an older profile (or a short replica): one replica's shape is not known, the mean
        # over replicas stands in for it (narrower than one replica's when replicas > 1)
        mine = trace
        if (with_trace and replicas > 1 and mode in ("rho", "independent")
                and trace.size >= MIN_TRACE_POINTS):
            note += ("; one replica's own series not in the profile (refit it): the mean over "
                     "replicas stands in for it and understates its bursts")
    if not with_trace:
        pass
    elif trace.size < MIN_TRACE_POINTS or not np.all(np.isfinite(trace)):
        trace_note = (
            f"trace of {trace.size} points (< {MIN_TRACE_POINTS}): refit with a longer "
            "recording to use the empirical method"
        )
    elif mode == "slow":
        # at least MIN_WINDOW_SAMPLES trace points wide: a one-point average is the trace itself
        window = max(MIN_WINDOW_SAMPLES, round(window_s / step)) if step > 0 else trace.size
        slow = _slow_component(trace, window, step,
                               float(getattr(rp, "time_of_day_s", 0.0) or 0.0))
        own = _scaled(trace - slow, max(var - cov, 0.0))
        shared = _scaled(slow, cov)
        if cov > 0 and not shared.any():  # a flat slow component cannot carry the shared part
            shared = _scaled(trace, cov)
    else:
        share = {"independent": 0.0, "rho": cov / var if var > 0 else 1.0, "perfect": 1.0}[mode]
        shared = _scaled(trace, share * var)
        own = _scaled(mine, (1.0 - share) * var)
    return ReplicaDemand(
        service=str(service_profile.service),
        resource=resource,
        mean=mean,
        var=var,
        cov=cov,
        cov_note=note,
        peak=float(rp.max),
        limit=_limit_of(service_profile, resource),
        count=int(rp.count),
        profile=rp,
        shared=shared,
        own=own,
        trace_interval_s=step,
        trace_note=trace_note,
    )


def horizon_replicas_for(own: np.ndarray) -> int:
    """Replicas to sum path by path over a horizon for a replica whose own component is
    ``own``: :data:`MAX_SUMMED_REPLICAS_HORIZON` (16) when its sample skewness is at least
    :data:`HORIZON_SHORTCUT_MIN_SKEW`, else :data:`MAX_SUMMED_REPLICAS_HORIZON_EXACT` (256).

    Why: beyond the replicas summed, the sum is scaled by sqrt(n / k), which keeps the
    skewness of k replicas. For a right-skewed replica that overstates the upper tail of n
    replicas (the count comes out equal or a little lower: safe); for a left-skewed or
    unskewed, light-tailed one it understates it (the count came out 1 to 2 replicas too high
    with 16 summed on a memory trace that sits high and dips), so those are summed exactly.
    """
    x = np.asarray(own, dtype=float)
    if x.size == 0:
        return MAX_SUMMED_REPLICAS_HORIZON
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    if m2 <= 0:  # no variation of its own: every sum is exact
        return MAX_SUMMED_REPLICAS_HORIZON
    skew = float(np.mean(d * d * d)) / m2**1.5
    return (MAX_SUMMED_REPLICAS_HORIZON if skew >= HORIZON_SHORTCUT_MIN_SKEW
            else MAX_SUMMED_REPLICAS_HORIZON_EXACT)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for ``k`` successes in ``n`` draws."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, a))
    hi = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - a))
    return lo, hi


class Simulator:
    """Monte Carlo totals of ``n`` replicas of one service for one resource.

    Each of ``n_draws`` independent draws picks one instant ``u`` (shared by all replicas and,
    when ``u`` is passed in, by all services of a mix: traces of one recording are aligned by
    relative position) and, per replica, its own random instant. With ``horizon_steps = h > 1``
    every draw is a path of ``h`` consecutive trace steps (a circular block bootstrap, so bursts
    keep their length), and the draw's total is the path's maximum: the risk of exceeding the
    capacity at any moment within ``h * trace_interval_s`` seconds.

    Totals are built replica by replica with common random numbers, so ``total(n)`` for all
    ``n`` comes from the same draws and the risk curve is smooth. Up to
    :data:`MAX_SUMMED_REPLICAS` replicas (over a horizon, :data:`MAX_SUMMED_REPLICAS_HORIZON`
    for a right-skewed replica, else :data:`MAX_SUMMED_REPLICAS_HORIZON_EXACT`: see
    :func:`horizon_replicas_for`) are summed draw by draw; beyond, extrapolated.

    Parameters
    ----------
    demand : ReplicaDemand
        With a usable trace (``demand.has_trace``).
    n_draws : int
        Independent draws. The standard error of a probability p is sqrt(p (1 - p) / n_draws).
    rng : numpy.random.Generator
        Injected so a plan is reproducible (the CLI seeds it with a fixed number).
    horizon_steps : int
        Path length in trace steps (1: risk at a random instant).
    u : numpy.ndarray, optional
        Shared instants in [0, 1), one per draw; drawn from ``rng`` when not given.
    horizon_replicas : int, optional
        Replicas summed path by path when ``horizon_steps > 1`` (beyond, scaled); None (the
        default): :func:`horizon_replicas_for` the replica's own component (16 when it is
        right-skewed, else 256). Paths are summed in float32.
    """

    def __init__(
        self,
        demand: ReplicaDemand,
        *,
        n_draws: int,
        rng: np.random.Generator,
        horizon_steps: int = 1,
        u: np.ndarray | None = None,
        horizon_replicas: int | None = None,
    ) -> None:
        if not demand.has_trace:
            raise ValueError(f"{demand.service}/{demand.resource} has no usable trace")
        self.demand = demand
        self.n_draws = int(n_draws)
        self.rng = rng
        # own (one replica's series) and shared (the time-aligned trace) may differ in length
        length = demand.own.size
        shared = demand.shared if demand.shared.size else np.zeros(length)
        n_shared = shared.size
        # a path longer than the traces only repeats them: its maximum is theirs
        self.h = min(max(int(horizon_steps), 1), max(length, n_shared))
        self._length = length
        if u is None:
            u = rng.random(self.n_draws)
        start = np.minimum((u * n_shared).astype(np.int64), n_shared - 1)
        self._summed = 0
        self._cache: dict[int, np.ndarray] = {}
        self._own_sum: np.ndarray  # (n_draws, h): float32 over a horizon, else float64
        if self.h > 1:  # the level paths are built on demand, row by row where possible
            if horizon_replicas is None:
                horizon_replicas = horizon_replicas_for(demand.own)
            if horizon_replicas < 1:
                raise ValueError(f"horizon_replicas must be >= 1; got {horizon_replicas}")
            self._own_sum = np.zeros((self.n_draws, self.h), dtype=np.float32)
            self._paths = _Paths(self, shared, start, int(horizon_replicas))
        else:
            self._own_sum = np.zeros((self.n_draws, 1))
            # mean + shared, per draw: (n_draws, 1)
            self._level = demand.mean + shared[start % n_shared][:, None]
        #: replicas summed path by path over a horizon (beyond, scaled); 1 at an instant
        self.horizon_replicas = self._paths.replicas if self.h > 1 else 1

    def _add_replica(self) -> None:
        start = self.rng.integers(0, self._length, size=self.n_draws, dtype=np.int32)
        if self.h == 1:
            self._own_sum[:, 0] += self.demand.own[start]
        else:
            idx = (start[:, None] + np.arange(self.h)) % self._length
            self._own_sum += self.demand.own[idx]
        self._summed += 1

    def total(self, n: int) -> np.ndarray:
        """Per draw, the total demand of ``n`` replicas (its maximum over the horizon)."""
        if n <= 0:
            return np.zeros(self.n_draws)
        if self.h > 1:
            return self._paths.total(n)
        cached = self._cache.get(n)
        if cached is not None:
            return cached
        k = min(n, MAX_SUMMED_REPLICAS)
        while self._summed < k:
            self._add_replica()
            if self._summed < k:
                self._store(self._summed)
        own = self._own_sum if n <= k else self._own_sum * math.sqrt(n / k)
        path = n * self._level + own
        if self.demand.limit is not None:
            path = np.minimum(path, n * self.demand.limit)
        out = path[:, 0]
        if n <= k:  # beyond k the extrapolation is one cheap pass: not worth the memory
            self._cache[n] = out.astype(np.float32)
        return out

    def exceedances(self, n: int, threshold: float) -> int:
        """How many draws' totals of ``n`` replicas exceed ``threshold``: the same count as
        ``np.count_nonzero(self.total(n) > threshold)``, computed without whole paths where
        bounds decide (see :class:`_Paths`)."""
        if n <= 0:
            return self.n_draws if threshold < 0 else 0
        if self.h > 1:
            return self._paths.exceedances(n, threshold)
        return int(np.count_nonzero(self.total(n) > threshold))

    def exceeds_at_most(self, n: int, threshold: float, most: int) -> bool:
        """``self.exceedances(n, threshold) <= most``, settled by bounds where they can
        (over a horizon, the draws near the threshold are evaluated only when the sure ones
        and the open ones fall on both sides of ``most``)."""
        if self.h > 1 and n > 0:
            return self._paths.count(n, threshold, most) <= most
        return self.exceedances(n, threshold) <= most

    def quantile(self, n: int, q: float) -> float:
        """``np.quantile(self.total(n), q)``, computed without whole paths where bounds
        decide (see :class:`_Paths`)."""
        if self.h > 1 and n > 0:
            return self._paths.quantile(n, q)
        return float(np.quantile(self.total(n), q))

    def _store(self, n: int) -> None:
        # cache the totals of intermediate counts while their replica sums are at hand
        if n in self._cache:
            return
        path = n * self._level + self._own_sum
        if self.demand.limit is not None:
            path = np.minimum(path, n * self.demand.limit)
        out = path[:, 0]
        self._cache[n] = out.astype(np.float32)  # float32: half the memory, 6e-8 relative


#: elements of one block of paths summed at a time (1 MiB of float64: stays in cache)
_BLOCK_ELEMENTS = 1 << 17


def _circular_windows(x: np.ndarray, h: int) -> np.ndarray:
    """Every circular window of ``h`` points of ``x``: row ``i`` is ``x[(i + arange(h)) %
    x.size]``; a read-only strided view of ``x`` repeated to ``x.size + h - 1`` points."""
    return np.lib.stride_tricks.sliding_window_view(np.resize(x, x.size + h - 1), h)


class _Paths:
    """The horizon (``h > 1``) part of :class:`Simulator`: the same draws, summed in blocks.

    A draw's total is ``max_t min(n level[t] + c own_k[t], n limit)`` with ``own_k`` the sum of
    ``k = min(n, K)`` replicas' own windows (``K`` the simulator's ``horizon_replicas``: by
    default 16 for a right-skewed replica, else 256, see :func:`horizon_replicas_for`) and
    ``c = sqrt(n / k)`` (1 when ``n <= k``).
    ``own_k`` is summed in float32 (``c own_k`` too), the level and the total in float64. The
    replicas' start instants come from ``rng`` exactly as the instant simulator draws them,
    and the sums are added in the same order, so every total equals the one a plain
    ``(n_draws, h)`` computation with the same dtypes gives, bit for bit.

    Cost: ``n_draws x h x k`` float32 additions for the paths, once per plan (each replica
    costs a whole path per draw, hence ``K = 16`` here for a right-skewed replica against 64
    at an instant: with 64 the 20,000 x 300-step paths of a 1 s trace took 0.4-0.7 s of CPU
    per service; a replica that is not right-skewed sums up to 256 exactly, at the cost of
    one path per replica counted).

    What makes the rest fast is that :meth:`exceedances` (what the count search asks,
    hundreds of times per plan) rarely needs whole paths. Per draw it keeps ``max_t own_k``
    for every ``k`` summed, and ``min_t``/``max_t`` of the level; then for a count ``n``

    - ``n max level + c max own_k`` bounds the total from above, and
    - ``n min level + c max own_k`` from below (at the instant ``own_k`` peaks),

    so only draws between the bounds (near the threshold) are evaluated step by step, on
    their own rows. Before any path is summed a cheaper bound, the sum of each replica's
    largest value in its window, settles the counts far below the answer (all draws under
    the threshold), so replicas are summed only as far as the answer needs. Floating-point
    addition and multiplication by a positive number are monotone, so the bounds hold for
    the rounded values too (each bound is computed with the same dtypes, in the same order,
    as the paths) and the counts are exact.
    """

    def __init__(
        self, sim: Simulator, shared: np.ndarray, shared_start: np.ndarray, replicas: int
    ) -> None:
        self.sim = sim
        self.replicas = replicas  # summed path by path; beyond, scaled
        own = sim.demand.own.astype(np.float32)
        h = sim.h
        self.h = h
        self._shared_start = shared_start
        self._level_all: np.ndarray | None = None
        # every window of own, circular (row i = own[i : i + h]): a view, nothing copied
        self._table = _circular_windows(own, h)
        self._window_max = self._table.max(axis=1)
        # mean + every window of shared (the same additions as per draw, so the same
        # rounded values): a row per draw; its extremes and where it peaks
        self._level_table = _circular_windows(sim.demand.mean + shared, h)
        w_max = self._level_table.max(axis=1)
        w_min = self._level_table.min(axis=1)
        w_at = self._level_table.argmax(axis=1)
        self._level_max = w_max[shared_start]
        self._level_min = w_min[shared_start]
        self._at_level_max = w_at[shared_start]  # the step where the level peaks, per draw
        self._level_max_all = self._level_max.max()
        self._rows = max(16, _BLOCK_ELEMENTS // h)
        self._starts: list[np.ndarray] = []  # one per replica drawn, (n_draws,) int32
        # float32 as the paths, added in their order: a bound of the rounded sums
        self._sum_max: list[np.ndarray] = [np.zeros(sim.n_draws, np.float32)]  # window maxima
        # max_t own_k per k summed; None for a k summed past in one go (made when asked)
        self._own_max: list[np.ndarray | None] = [np.zeros(sim.n_draws, np.float32)]
        self._level_at_max: dict[int, np.ndarray] = {}  # the level where own_k peaks, per k
        self._counted: dict[tuple[int, float], int] = {}  # (n, threshold) -> exceedances
        self._summed = 0  # replicas whose windows are added into sim._own_sum

    def _windows(self, starts: np.ndarray) -> np.ndarray:
        return self._table[starts]

    def _draw(self, k: int) -> None:
        """Draw the start instants of replicas up to ``k`` (cheap; the paths wait)."""
        while len(self._starts) < k:
            start = self.sim.rng.integers(0, self.sim._length, size=self.sim.n_draws,
                                          dtype=np.int32)
            self._starts.append(start)
            self._sum_max.append(self._sum_max[-1] + self._window_max[start])

    def _sum(self, k: int) -> None:
        """Add replicas up to ``k`` into the paths, a block of draws at a time. Only the
        maximum of ``own_k`` is taken (half the cost of summing); those of the counts
        passed on the way are made when asked (:meth:`_peak`)."""
        self._draw(k)
        if self._summed >= k:
            return
        own_sum = self.sim._own_sum
        peak = np.empty(self.sim.n_draws, np.float32)
        for r0 in range(0, self.sim.n_draws, self._rows):
            block = own_sum[r0:r0 + self._rows]  # a view: added in place
            for j in range(self._summed, k):
                block += self._windows(self._starts[j][r0:r0 + self._rows])
            block.max(axis=1, out=peak[r0:r0 + self._rows])
        self._own_max.extend([None] * (k - self._summed - 1) + [peak])
        self._summed = k
        self.sim._summed = k

    def _peak(self, k: int) -> np.ndarray:
        """``max_t own_k`` per draw (``k`` summed already); summed again on the side for a
        ``k`` passed in one go (rare: the count search walks up one count at a time)."""
        peak = self._own_max[k]
        if peak is None:
            peak = np.empty(self.sim.n_draws, np.float32)
            for r0 in range(0, self.sim.n_draws, self._rows):
                rows = np.arange(r0, min(r0 + self._rows, self.sim.n_draws))
                self._own_rows(k, rows).max(axis=1, out=peak[r0:r0 + self._rows])
            self._own_max[k] = peak
        return peak

    def _own_rows(self, k: int, rows: np.ndarray) -> np.ndarray:
        """``own_k`` on the given draws only, summed in the same order as the full paths."""
        if k == self._summed:
            return self.sim._own_sum[rows]
        out = np.zeros((rows.size, self.h), np.float32)
        for j in range(k):
            out += self._windows(self._starts[j][rows])
        return out

    def _level(self, rows: np.ndarray | slice) -> np.ndarray:
        """mean + shared path of the given draws, (rows, h), as the instant simulator has it."""
        if isinstance(rows, slice):
            if self._level_all is None:
                self._level_all = self._level(np.arange(self.sim.n_draws))
            return self._level_all
        return self._level_table[self._shared_start[rows]]

    def _totals(self, n: int, rows: np.ndarray | slice) -> np.ndarray:
        k = min(n, self.replicas)
        level = self._level(rows)
        if isinstance(rows, slice):
            own = self.sim._own_sum if k == self._summed else self._own_rows(
                k, np.arange(self.sim.n_draws))
        else:
            own = self._own_rows(k, rows)
        if n > k:
            own = own * math.sqrt(n / k)  # float32, as the bounds scale it
        # n * level + own, in place on a fresh copy of the levels (the same float64 values)
        path = np.multiply(level, n) if level is self._level_all else level
        if path is level:
            np.multiply(path, n, out=path)
        path += own
        limit = self.sim.demand.limit
        if limit is not None:
            np.minimum(path, n * limit, out=path)
        return path.max(axis=1)

    def total(self, n: int) -> np.ndarray:
        cached = self.sim._cache.get(n)
        if cached is not None:
            return cached
        k = min(n, self.replicas)
        self._sum(k)
        out = self._totals(n, slice(None))
        if n <= k:
            self.sim._cache[n] = out.astype(np.float32)
        return out

    def _bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of every draw's total of ``n`` replicas, from the paths'
        maxima (sums replicas up to ``min(n, self.replicas)``)."""
        k = min(n, self.replicas)
        scale = 1.0 if n <= k else math.sqrt(n / k)
        limit = self.sim.demand.limit
        cap = math.inf if limit is None else n * limit
        self._sum(k)
        own_max = self._peak(k) * scale  # scale > 0: the maximum of the scaled paths
        upper = np.minimum(n * self._level_max + own_max, cap)
        lower = np.minimum(n * self._level_at_peak(k) + own_max, cap)
        return lower, upper

    def _level_at_peak(self, k: int) -> np.ndarray:
        """Per draw, the level at the instant ``own_k`` peaks (the path there is one of the
        values its maximum is taken over: a lower bound); the level's minimum when ``own_k``
        is no longer at hand (more replicas summed since)."""
        if k != self._summed:
            return self._level_min
        level = self._level_at_max.get(k)
        if level is None:
            at = self.sim._own_sum.argmax(axis=1)
            level = self._level_table[self._shared_start, at]
            self._level_at_max[k] = level
        return level

    def quantile(self, n: int, q: float) -> float:
        # Every draw whose upper bound is below the lower bounds' order statistic at q's
        # position i lies below the totals' own order statistic i, so stands below it in
        # the sorted totals whatever its value: only the others are evaluated, the rest set
        # to -inf, and the order statistics i and i + 1 that np.quantile reads are unchanged.
        lower, upper = self._bounds(n)
        i = math.floor(q * (self.sim.n_draws - 1))
        floor = np.partition(lower, i)[i]
        rows = np.flatnonzero(upper >= floor)
        totals = np.full(self.sim.n_draws, -np.inf)
        totals[rows] = self._totals(n, rows)
        return float(np.quantile(totals, q))

    def exceedances(self, n: int, threshold: float) -> int:
        return self.count(n, threshold)

    def count(self, n: int, threshold: float, most: int | None = None) -> int:
        """Draws whose total of ``n`` replicas exceeds ``threshold``; with ``most``, a number
        on the same side of ``most`` as that count (the count itself when the bounds do not
        settle the side), so the draws near the threshold are evaluated only then."""
        done = self._counted.get((n, threshold))
        if done is not None:  # the count search asks the same count more than once
            return done
        k = min(n, self.replicas)
        scale = 1.0 if n <= k else math.sqrt(n / k)
        limit = self.sim.demand.limit
        cap = math.inf if limit is None else n * limit
        self._draw(k)
        # 1. the sum of each replica's window maximum: no path needed (first its largest
        # value over the draws: a bound of the bounds, rounded monotonically as they are)
        top = n * self._level_max_all + scale * self._sum_max[k].max()
        if min(top, cap) <= threshold:
            self._counted[(n, threshold)] = 0
            return 0
        upper = n * self._level_max + scale * self._sum_max[k]
        if not np.any(np.minimum(upper, cap) > threshold):
            self._counted[(n, threshold)] = 0
            return 0
        # 2. the paths' maxima: exact where they decide, step by step between them
        self._sum(k)
        peak = self._peak(k)
        if min(n * self._level_max_all + scale * peak.max(), cap) <= threshold:
            self._counted[(n, threshold)] = 0  # the largest upper bound is below: none
            return 0
        own_max = peak * scale  # scale > 0: the maximum of the scaled paths
        rows = np.flatnonzero(np.minimum(n * self._level_max + own_max, cap) > threshold)
        # below: the path at the instant own_k peaks (when own_k is at hand), else anywhere
        if k == self._summed and k in self._level_at_max:  # asked before: all draws at hand
            level = self._level_at_max[k][rows]
        elif k == self._summed and k == self.replicas:  # every count beyond asks again
            level = self._level_at_peak(k)[rows]
        elif k == self._summed:
            at = self.sim._own_sum[rows].argmax(axis=1)
            level = self._level_table[self._shared_start[rows], at]
        else:
            level = self._level_min[rows]
        sure = np.minimum(n * level + own_max[rows], cap) > threshold
        if k == self._summed:  # and at the instant the level peaks
            rest = rows[~sure]
            own_there = self.sim._own_sum[rest, self._at_level_max[rest]] * scale
            sure[~sure] = np.minimum(n * self._level_max[rest] + own_there, cap) > threshold
        open_rows = rows[~sure]
        n_sure = int(np.count_nonzero(sure))
        if most is not None and (n_sure > most or n_sure + open_rows.size <= most):
            return n_sure if n_sure > most else n_sure + open_rows.size  # the side is settled
        exact = 0
        if open_rows.size:
            exact = int(np.count_nonzero(self._totals(n, open_rows) > threshold))
        count = n_sure + exact
        self._counted[(n, threshold)] = count
        return count


def mix_totals(
    sims: Mapping[str, Simulator], counts: Mapping[str, int], n_draws: int
) -> np.ndarray:
    """Per draw, the sum over services of ``counts[s]`` replicas (sims share ``u``)."""
    total = np.zeros(n_draws)
    for s, n in counts.items():
        if n > 0 and s in sims:
            total = total + sims[s].total(int(n))
    return total
