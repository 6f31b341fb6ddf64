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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .._columns import CPU, MEMORY
from .._errors import CapacityError
from ..model._fit import DEGENERATE_SLOW_SHARE, MIN_WINDOW_SAMPLES

__all__ = ["MIN_TRACE_POINTS", "ReplicaDemand", "Simulator", "clopper_pearson", "replica_demand"]

#: fewer trace points than this and the empirical method is undefined for the resource
MIN_TRACE_POINTS = 30
#: at most this many replicas are summed draw by draw; beyond, the sum of the replicas' own
#: components is extrapolated as sqrt(n / K) times the sum of K (keeps the skew of K replicas,
#: which overstates the skew of n > K replicas: the safe side for an upper tail)
MAX_SUMMED_REPLICAS = 64

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
            value = min(value, self.limit)
        return value


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


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for ``k`` successes in ``n`` draws."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
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
    :data:`MAX_SUMMED_REPLICAS` replicas are summed draw by draw; beyond, extrapolated.

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
    """

    def __init__(
        self,
        demand: ReplicaDemand,
        *,
        n_draws: int,
        rng: np.random.Generator,
        horizon_steps: int = 1,
        u: np.ndarray | None = None,
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
        steps = np.arange(self.h)
        # mean + shared path, per draw: (n_draws, h)
        self._level = demand.mean + shared[(start[:, None] + steps) % n_shared]
        self._own_sum = np.zeros((self.n_draws, self.h))
        self._summed = 0
        self._cache: dict[int, np.ndarray] = {}

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
        out = path[:, 0] if self.h == 1 else path.max(axis=1)
        if n <= k:  # beyond k the extrapolation is one cheap pass: not worth the memory
            self._cache[n] = out.astype(np.float32)
        return out

    def _store(self, n: int) -> None:
        # cache the totals of intermediate counts while their replica sums are at hand
        if n in self._cache:
            return
        path = n * self._level + self._own_sum
        if self.demand.limit is not None:
            path = np.minimum(path, n * self.demand.limit)
        out = path[:, 0] if self.h == 1 else path.max(axis=1)
        self._cache[n] = out.astype(np.float32)  # float32: half the memory, 6e-8 relative


def mix_totals(
    sims: Mapping[str, Simulator], counts: Mapping[str, int], n_draws: int
) -> np.ndarray:
    """Per draw, the sum over services of ``counts[s]`` replicas (sims share ``u``)."""
    total = np.zeros(n_draws)
    for s, n in counts.items():
        if n > 0 and s in sims:
            total = total + sims[s].total(int(n))
    return total
