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
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special

from .._columns import CPU, MEMORY
from .._errors import CapacityError
from ..model._fit import DEGENERATE_SLOW_SHARE, MIN_WINDOW_SAMPLES

__all__ = [
    "BANDED",
    "HORIZON_SHORTCUT_MIN_SKEW",
    "MAX_SUMMED_REPLICAS_HORIZON",
    "MAX_SUMMED_REPLICAS_HORIZON_EXACT",
    "MIN_TRACE_POINTS",
    "SCALED",
    "SYMMETRIC",
    "ReplicaDemand",
    "Simulator",
    "child_generator",
    "clopper_pearson",
    "factor_figure",
    "horizon_replicas_for",
    "horizon_shortcut_for",
    "replica_demand",
    "symmetric_beyond_for",
    "with_factor",
    "with_host_cost",
]

#: fewer trace points than this and the empirical method is undefined for the resource
MIN_TRACE_POINTS = 30
#: at most this many replicas are summed draw by draw; beyond, the sum of the replicas' own
#: components is extrapolated as sqrt(n / K) times the sum of K. That keeps the skew of K
#: replicas, which overstates the skew of n > K replicas: the safe side for an upper tail
#: when the replica is right-skewed; a left-skewed replica's K are sign-randomised first
#: (:func:`symmetric_beyond_for`)
MAX_SUMMED_REPLICAS = 64
#: the same for paths over a horizon (``horizon_steps > 1``), where each replica costs a whole
#: path per draw: 16 replicas summed step by step, beyond scaled by sqrt(n / 16), as they are
#: or with random weights, whichever the expansion of :func:`_expansion_margin` leaves with a
#: tail at least n replicas' (else 256 summed exactly; see :func:`horizon_shortcut_for`).
#: Scaling keeps the skewness of 16 replicas (g / 4 for one replica's g) where n have
#: g / sqrt(n): for g > 0 that widens the upper tail (the safe side:
#: counts equal to the exact sum's or up to 5 % lower on the right-skewed profiles of
#: ``tests/solver/test_horizon_paths.py``); for g < 0 (memory that sits high and sometimes
#: dips) it narrows it (the count came out 1 to 2 replicas too high), hence the weights
MAX_SUMMED_REPLICAS_HORIZON = 16
#: replicas summed path by path over a horizon when one replica's own component has light
#: tails and no clear skew (:func:`horizon_shortcut_for`): the exact sum up to here; beyond,
#: scaled by sqrt(n / 256) (sign-randomised when the skewness is negative). Trap: beyond 256
#: replicas a light-tailed replica's tail is a little too light (kurtosis -1.1 / 256 against
#: -1.1 / n for a sawtooth; not observed to change a count, not excluded)
MAX_SUMMED_REPLICAS_HORIZON_EXACT = 256
#: smallest sample skewness of one replica's own component (the fast variation the replicas
#: do not share) for which :data:`MAX_SUMMED_REPLICAS_HORIZON` replicas are scaled as they
#: are, if the expansion's margin allows it (light tails can outweigh the skew: two levels,
#: high 35-45 % of the time, are summed exactly). The margin is caution beyond the sampling
#: error of the skewness (about sqrt(6 / 2000) = 0.055 for a 2,000-point trace)
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


def with_factor(demand: ReplicaDemand, factor: float) -> ReplicaDemand:
    """``demand`` for a period ahead: one replica's own demand (what its cgroup uses) times
    ``factor`` (drift, the short-history allowance, a sampling widening:
    :func:`capacity.solver._plan.demand_factor`), the host cost per container added
    unscaled (the shim and kernel memory outside the cgroup do not grow with the service's
    load). Mean, peak and limit become ``host_cost + factor (x - host_cost)``, the variance
    and covariance ``factor**2`` times, the trace components ``factor`` times.

    Trap: :meth:`ReplicaDemand.quantile` reads the profile, which is not scaled; scale a
    quantile with :func:`factor_figure` instead.
    """
    if factor == 1.0:
        return demand
    f, h = float(factor), demand.host_cost
    return replace(
        demand, mean=factor_figure(demand.mean, f, h), var=demand.var * f * f,
        cov=demand.cov * f * f, peak=factor_figure(demand.peak, f, h),
        limit=None if demand.limit is None else factor_figure(demand.limit, f, h),
        shared=demand.shared * f, own=demand.own * f,
    )


def factor_figure(per_replica: Any, factor: Any, host_cost: Any, n: float = 1.0) -> Any:
    """A figure of ``n`` replicas (host cost included: ``n x host_cost`` of it is the host's)
    at the demand ``factor``: ``factor (x - n host_cost) + n host_cost``. Works on arrays;
    exactly ``x`` at a factor of 1."""
    return factor * per_replica - (factor - 1.0) * n * host_cost


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


#: standard normal quantiles at which :func:`_expansion_margin` compares upper tails: the
#: risks 1e-3, 1e-4 and 1e-5 (a memory epsilon and beyond: over a horizon the risk at one
#: instant is smaller still)
_EXPANSION_Z = (3.090, 3.719, 4.265)
#: counts up to which the expansion is checked (log-spaced; the terms vary slowly in n)
_EXPANSION_COUNTS = np.unique(np.geomspace(1, 100_000, 400).round())
#: caution in a replica's skewness (either way) and excess kurtosis (downwards) when the
#: expansion is checked: about 2.7 standard errors on 2,000 independent points (sqrt(6 /
#: 2000) = 0.055, sqrt(24 / 2000) = 0.11). Not a sampling-error allowance against the exact
#: sum (the simulator resamples the trace, so the sample moments are exactly those of what it
#: sums): a margin for the expansion's own error, which is larger for few replicas
_SKEW_ERROR, _KURTOSIS_ERROR = 0.15, 0.3
#: shortfall of the shortcut's upper quantile under n replicas' tolerated by the expansion,
#: in standard deviations of the sum (far below what a count resolves)
_EXPANSION_TOLERANCE = 0.01


def _skew_and_kurtosis(own: np.ndarray) -> tuple[float, float] | None:
    """Sample skewness and excess kurtosis of ``own``; None when it does not vary."""
    x = np.asarray(own, dtype=float)
    if x.size == 0:
        return None
    d = x - x.mean()
    d2 = d * d
    m2 = float(np.mean(d2))
    if m2 <= 0:
        return None
    return float(np.mean(d2 * d)) / m2**1.5, float(np.mean(d2 * d2)) / (m2 * m2) - 3.0


#: how counts beyond the replicas summed are extrapolated (:attr:`Simulator.beyond`)
SCALED, SYMMETRIC, BANDED = "scaled", "symmetric", "banded"


#: bands of counts beyond the ``k`` replicas summed: (k, 16 k], (16 k, 256 k], ... (one sum
#: of ``k`` weighted replicas per band used: the count search mostly stays in one)
_BAND_RATIO = 16


def _band_of(n: int, k: int) -> int:
    """Band of a count ``n > k``: the smallest ``j >= 1`` with ``n <= k 16^j``."""
    j = 1
    while k * _BAND_RATIO**j < n:
        j += 1
    return j


def _band_weights(band: int) -> tuple[float, float]:
    """Weights ``(a + b, a - b)`` (a fair coin picks one per replica and draw) whose third
    moment is ``4^-band`` (= sqrt(k / n) at the band's top count n = k 16^band), second
    moment 1: ``a (3 - 2 a^2) = 4^-band``, ``a^2 + b^2 = 1``."""
    m3 = _BAND_RATIO ** (-band / 2)
    a = m3 / 3
    for _ in range(50):  # Newton on 3 a - 2 a^3 = m3, increasing on [0, 0.7]
        a -= (3 * a - 2 * a**3 - m3) / (3 - 6 * a * a)
    b = math.sqrt(1 - a * a)
    return a + b, a - b


def _expansion_margin(skew: float, kurtosis: float, k: int, beyond: str) -> float:
    """Smallest difference, in standard deviations of the sum, between the upper quantile
    of ``k`` replicas summed and scaled by sqrt(n / k) (as they are, sign-randomised or
    weighted per band: ``beyond``) and that of ``n`` replicas summed, over the counts
    ``n > k`` of :data:`_EXPANSION_COUNTS` and the levels of :data:`_EXPANSION_Z`, with the
    skewness ``skew`` and excess kurtosis ``kurtosis`` of one replica taken at the
    unfavourable end of their sampling error. Negative: the shortcut's tail is lighter.

    Cornish-Fisher expansion to the order 1/n: the standardised upper quantile of a sum
    with skewness ``g3`` and excess kurtosis ``g4`` is ``z + g3 (z^2 - 1) / 6 + g4 (z^3 -
    3 z) / 24 - g3^2 (2 z^3 - 5 z) / 36``. n replicas have ``g3 = g / sqrt(n)``, ``g4 =
    kappa / n``. A replica times a random weight ``c`` independent of it (``E c^2 = 1``)
    has skewness ``E[c^3] g`` and excess kurtosis ``E[c^4] (kappa + 3) - 3``; ``k`` of
    them scaled keep ``E[c^3] g / sqrt(k)`` and that kurtosis over ``k``. ``c = 1``:
    ``scaled``; a fair sign: ``symmetric`` (``E c^3 = 0``); ``banded``: ``E c^3 =
    sqrt(k / n_top)`` for the top count of ``n``'s band, ``E c^4 = 1 + 4 a^2 b^2``."""
    n = _EXPANSION_COUNTS[k < _EXPANSION_COUNTS]
    if beyond == SCALED:
        m3, m4 = np.ones_like(n), np.ones_like(n)
    elif beyond == SYMMETRIC:
        m3, m4 = np.zeros_like(n), np.ones_like(n)
    else:
        weights = {j: _band_weights(j) for j in {_band_of(int(x), k) for x in n}}
        w = np.array([weights[_band_of(int(x), k)] for x in n])
        m3 = (w[:, 0] ** 3 + w[:, 1] ** 3) / 2
        m4 = (w[:, 0] ** 4 + w[:, 1] ** 4) / 2
    n, m3, m4 = n[:, None], m3[:, None], m4[:, None]
    z = np.asarray(_EXPANSION_Z)[None, :]
    a, b, c = (z * z - 1) / 6, (z**3 - 3 * z) / 24, (2 * z**3 - 5 * z) / 36
    kappa = kurtosis - _KURTOSIS_ERROR  # the margin grows with kappa: its low end
    worst = math.inf
    for g in (skew - _SKEW_ERROR, skew + _SKEW_ERROR, skew):
        g3 = m3 * g / math.sqrt(k)
        g4 = (m4 * (kappa + 3) - 3) / k
        diff = (g3 - g / np.sqrt(n)) * a + (g4 - kappa / n) * b - (g3 * g3 - g * g / n) * c
        worst = min(worst, float(diff.min()))
    return worst


def horizon_shortcut_for(own: np.ndarray) -> tuple[int, str]:
    """``(replicas summed path by path, how counts beyond are extrapolated)`` over a horizon
    for a replica whose own component is ``own`` (see :attr:`Simulator.beyond`).

    Beyond the replicas summed (``k``) a sum of ``k`` is scaled by sqrt(n / k), which keeps
    the skewness and kurtosis of ``k`` replicas where n have smaller ones (see
    :func:`_expansion_margin`): for a right-skewed replica that widens the upper tail (the
    safe side), for a left-skewed one (memory that sits high and dips) it narrows it (the
    count came out one too high). Each replica times a fair random sign has the same
    variance, autocovariance over a path (a path and its reflection about the mean have
    the same) and even moments, and skewness 0 >= g / sqrt(n): scaled, every term of the
    expansion is at least n replicas' when the excess kurtosis is >= 0. The sign throws
    away the skewness n replicas still have (the count comes out 1-3 lower than the exact
    sum's); random weights ``(a + b, a - b)`` with third moment sqrt(k / n_top) keep it
    for the counts up to n_top (bands (k, 16k], (16k, 256k], ...), with every term of the
    expansion still at least n replicas' (``banded``).

    - skewness >= :data:`HORIZON_SHORTCUT_MIN_SKEW`: 16 replicas, ``scaled`` when the
      excess kurtosis is >= 0 or the expansion leaves its tail at least n replicas' (counts
      equal to the exact sum's or up to 5 % lower on the shapes of
      ``tests/solver/test_horizon_paths.py``), else (light tails: two levels, high 35-45 %
      of the time) up to 256 summed exactly, beyond ``scaled``;
    - else 16 replicas, the first of ``banded``, ``symmetric``, ``scaled`` (negative
      skewness) or of ``scaled``, ``symmetric`` (skewness in [0, 0.25)) whose tail the
      expansion leaves at least n replicas' (:func:`_expansion_margin` >= -0.01 standard
      deviations, the sampling error of the moments allowed for);
    - else (light tails, no clear skew: a sawtooth heap, uniform noise) up to
      :data:`MAX_SUMMED_REPLICAS_HORIZON_EXACT` (256) summed exactly, beyond
      ``symmetric`` for a negative skewness, else ``scaled``.

    Trap: an expansion, not a bound for every shape; checked against the exact sum on the
    shapes of ``tests/solver/test_horizon_paths.py`` and more (benchmarks/RESULTS.md).
    """
    moments = _skew_and_kurtosis(own)
    if moments is None:  # no variation of its own: every sum is exact
        return MAX_SUMMED_REPLICAS_HORIZON, SCALED
    skew, kurtosis = moments
    if skew >= HORIZON_SHORTCUT_MIN_SKEW:
        # right-skewed with tails at least normal (excess kurtosis >= 0): 16 scaled keep more
        # skewness and more kurtosis than n replicas have, both widening the upper tail.
        # (The expansion is not asked there: at skewness ~12, an idle service's, its g^2
        # term turns negative and would send every such replica to the exact sum, the safe
        # side but twice the plan's time, with no count changed.) Light tails that may
        # outweigh the skewness (two levels, high 35-45 % of the time: one replica too many
        # measured at 600 and 1,500 replicas): the expansion's margin decides, else summed
        # exactly as far as it goes
        if kurtosis >= 0 or (_expansion_margin(skew, kurtosis, MAX_SUMMED_REPLICAS_HORIZON,
                                               SCALED) >= -_EXPANSION_TOLERANCE):
            return MAX_SUMMED_REPLICAS_HORIZON, SCALED
        return MAX_SUMMED_REPLICAS_HORIZON_EXACT, SCALED
    for beyond in ((BANDED, SYMMETRIC, SCALED) if skew < 0 else (SCALED, SYMMETRIC)):
        margin = _expansion_margin(skew, kurtosis, MAX_SUMMED_REPLICAS_HORIZON, beyond)
        if margin >= -_EXPANSION_TOLERANCE:
            return MAX_SUMMED_REPLICAS_HORIZON, beyond
    return MAX_SUMMED_REPLICAS_HORIZON_EXACT, SYMMETRIC if skew < 0 else SCALED


def horizon_replicas_for(own: np.ndarray) -> int:
    """Replicas summed path by path over a horizon (see :func:`horizon_shortcut_for`)."""
    return horizon_shortcut_for(own)[0]


def symmetric_beyond_for(own: np.ndarray) -> bool:
    """At an instant, whether counts beyond :data:`MAX_SUMMED_REPLICAS` are extrapolated
    from that many sign-randomised replicas (``own`` has negative sample skewness) rather
    than from the replicas as they are: the same reason as over a horizon (see
    :func:`horizon_shortcut_for`). Trap: a light-tailed replica (excess kurtosis < 0: a
    sawtooth, uniform or two-level noise) is extrapolated either way with a tail a little
    lighter than n replicas' (measured: P(overload) 6-8 % low in relative terms at the
    count, both ways), since nothing beyond 64 is summed exactly at an instant."""
    moments = _skew_and_kurtosis(own)
    return moments is not None and moments[0] < 0


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for ``k`` successes in ``n`` draws."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, a))
    hi = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - a))
    return lo, hi


def child_generator(rng: np.random.Generator, key: str | None = None) -> np.random.Generator:
    """A generator of its own for one simulator, made from ``rng``'s seed.

    With ``key`` (``"<service>\\x00<resource>"``), the child is keyed by that name: its
    draws depend only on ``rng``'s seed sequence and the key, not on ``rng``'s state, on
    what other simulators drew, nor on which other resources or services exist (a plan of
    memory alone and a plan with a CPU and a disk capacity beside it draw memory alike; a
    mix of one service draws as its plan). Without ``key``, the next child ``rng`` spawns
    (spawning advances its count of children, never its stream).

    Trap (the defects this exists for): a :class:`Simulator` draws lazily, replica by
    replica, as far as the count search goes. Simulators sharing one generator (CPU and
    memory of a plan; the services of a mix) took their draws at offsets set by the others'
    searches, which depend on the capacity: on a larger machine memory's count came out lower
    (21 replicas on 27 CPUs, 20 on 35 CPUs; ``tests/solver/test_properties.py``). Children
    spawned in order still moved a count by one when a non-binding capacity was added (the
    memory child was spawned second instead of first). A generator without a seed sequence
    can do neither: one number is drawn from it instead.
    """
    seq = getattr(rng.bit_generator, "seed_seq", None)
    if key is not None and isinstance(seq, np.random.SeedSequence):
        # spawn_key (..., 2**32, crc32): apart from spawn()'s children (0, 1, 2, ...)
        return np.random.default_rng(np.random.SeedSequence(
            seq.entropy, spawn_key=(*seq.spawn_key, 1 << 32, zlib.crc32(key.encode())),
            pool_size=seq.pool_size))
    try:
        return rng.spawn(1)[0]
    except TypeError:  # a bit generator without a seed sequence
        return np.random.default_rng(np.random.SeedSequence(int(rng.integers(2**63))))


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
    :data:`MAX_SUMMED_REPLICAS` replicas (over a horizon :data:`MAX_SUMMED_REPLICAS_HORIZON`
    or :data:`MAX_SUMMED_REPLICAS_HORIZON_EXACT`, as :func:`horizon_shortcut_for` chooses)
    are summed draw by draw; beyond, extrapolated (``beyond``).

    Parameters
    ----------
    demand : ReplicaDemand
        With a usable trace (``demand.has_trace``).
    n_draws : int
        Independent draws. The standard error of a probability p is sqrt(p (1 - p) / n_draws).
    rng : numpy.random.Generator
        Injected so a plan is reproducible (the CLI seeds it with a fixed number). Drawn
        from lazily, replica by replica, as far as the counts asked: the simulator's own
        (:func:`child_generator`), never one another simulator draws from too.
    horizon_steps : int
        Path length in trace steps (1: risk at a random instant).
    u : numpy.ndarray, optional
        Shared instants in [0, 1), one per draw; drawn from ``rng`` when not given.
    horizon_replicas : int, optional
        Replicas summed path by path when ``horizon_steps > 1`` (beyond, scaled); None (the
        default): what :func:`horizon_shortcut_for` chooses for the replica's own component
        (16, or 256 when no scaled or weighted 16 keeps a tail at least n replicas').
        Paths are summed in float32.
    beyond : str, optional
        How counts beyond the replicas summed are extrapolated: ``"scaled"`` (the replicas
        as they are), ``"symmetric"`` (each times a fair random sign per draw) or
        ``"banded"`` (random weights per band of counts); None (the default): over a
        horizon what :func:`horizon_shortcut_for` chooses, at an instant ``"symmetric"``
        for a left-skewed replica (:func:`symmetric_beyond_for`), else ``"scaled"``.
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
        beyond: str | None = None,
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
        if self.h > 1:
            auto_replicas, auto_beyond = horizon_shortcut_for(demand.own)
            if horizon_replicas is None:
                horizon_replicas = auto_replicas
            if beyond is None:
                beyond = auto_beyond
        elif beyond is None:
            beyond = SYMMETRIC if symmetric_beyond_for(demand.own) else SCALED
        if beyond not in (SCALED, SYMMETRIC, BANDED):
            raise ValueError(f"beyond must be {SCALED!r}, {SYMMETRIC!r} or {BANDED!r}; "
                             f"got {beyond!r}")
        #: how counts beyond the replicas summed are extrapolated (see
        #: :func:`horizon_shortcut_for`): the sum scaled as it is (``scaled``), of
        #: sign-randomised replicas (``symmetric``), or of replicas with random weights per
        #: band of counts (``banded``, over a horizon only)
        self.beyond = beyond
        # the replicas of the extrapolation come from child generators: spawning does not
        # advance ``rng``, so the replicas summed exactly are drawn as without them
        self._far_seed: object = None
        if beyond != SCALED:
            try:
                self._far_seed = rng.spawn(1)[0].bit_generator.seed_seq
            except TypeError:  # a generator without a seed sequence: drawn from rng once
                self._far_seed = np.random.SeedSequence(int(rng.integers(2**63)))
        self._far: dict[int, _Paths] = {}  # per band of counts (1 for symmetric)
        self._own_sum: np.ndarray  # (n_draws, 1) at an instant
        self._sym_sum: np.ndarray | None = None  # at an instant: MAX_SUMMED_REPLICAS signed
        self._shared_path, self._shared_start = shared, start
        if self.h > 1:  # the level paths are built on demand, row by row where possible
            assert horizon_replicas is not None
            if horizon_replicas < 1:
                raise ValueError(f"horizon_replicas must be >= 1; got {horizon_replicas}")
            self._paths = _Paths(self, shared, start, int(horizon_replicas), rng=rng)
        else:
            if beyond == BANDED:
                raise ValueError("beyond='banded' is for a horizon (horizon_steps > 1)")
            self._own_sum = np.zeros((self.n_draws, 1))
            # mean + shared, per draw: (n_draws, 1)
            self._level = demand.mean + shared[start % n_shared][:, None]
        #: replicas summed path by path over a horizon (beyond, scaled); 1 at an instant
        self.horizon_replicas = self._paths.replicas if self.h > 1 else 1

    def _far_rng(self, key: int) -> np.random.Generator:
        """The generator of the extrapolation's replicas for band ``key`` (0: symmetric):
        the same whatever order the bands are asked in."""
        seq = self._far_seed
        assert isinstance(seq, np.random.SeedSequence)
        return np.random.default_rng(np.random.SeedSequence(
            seq.entropy, spawn_key=(*seq.spawn_key, key), pool_size=seq.pool_size))

    def _paths_for(self, n: int) -> _Paths:
        """Over a horizon, the paths that give the totals of ``n`` replicas: the replicas
        summed exactly up to ``horizon_replicas``; beyond, scaled as they are, or
        sign-randomised, or weighted for ``n``'s band of counts (:attr:`beyond`)."""
        k = self._paths.replicas
        if n <= k or self.beyond == SCALED:
            return self._paths
        band = _band_of(n, k) if self.beyond == BANDED else 0
        paths = self._far.get(band)
        if paths is None:
            weights = _band_weights(band) if band else (1.0, -1.0)
            paths = self._far[band] = _Paths(
                self, self._shared_path, self._shared_start, k, rng=self._far_rng(band),
                weights=weights, level_from=self._paths)
        return paths

    def _add_replica(self) -> None:
        start = self.rng.integers(0, self._length, size=self.n_draws, dtype=np.int32)
        self._own_sum[:, 0] += self.demand.own[start]
        self._summed += 1

    def _symmetric_sum(self) -> np.ndarray:
        """At an instant, the sum of :data:`MAX_SUMMED_REPLICAS` sign-randomised replicas
        (each draw, each replica's own value times a fair random sign), (n_draws, 1)."""
        if self._sym_sum is None:
            out = np.zeros((self.n_draws, 1))
            rng = self._far_rng(0)
            for _ in range(MAX_SUMMED_REPLICAS):
                start = rng.integers(0, self._length, size=self.n_draws, dtype=np.int32)
                sign = rng.integers(0, 2, size=self.n_draws) * 2.0 - 1.0
                out[:, 0] += sign * self.demand.own[start]
            self._sym_sum = out
        return self._sym_sum

    def total(self, n: int) -> np.ndarray:
        """Per draw, the total demand of ``n`` replicas (its maximum over the horizon):
        float32 for the counts summed exactly (as cached, first call included: the same
        values whenever asked), float64 beyond."""
        if n <= 0:
            return np.zeros(self.n_draws)
        if self.h > 1:
            return self._paths_for(n).total(n)
        cached = self._cache.get(n)
        if cached is not None:
            return cached
        k = min(n, MAX_SUMMED_REPLICAS)
        if n > k and self.beyond == SYMMETRIC:
            own = self._symmetric_sum() * math.sqrt(n / k)
        else:
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
            # the cached float32 values from the first call on: a count's totals must not
            # depend on whether it was asked before (a draw within float32's rounding of the
            # capacity was counted over once and under later, so the count could depend on
            # the order the search asked the counts in, which depends on the capacity)
            out = self._cache[n] = out.astype(np.float32)
        return out

    def exceedances(self, n: int, threshold: float) -> int:
        """How many draws' totals of ``n`` replicas exceed ``threshold``: the same count as
        ``np.count_nonzero(self.total(n) > threshold)``, computed without whole paths where
        bounds decide (see :class:`_Paths`)."""
        if n <= 0:
            return self.n_draws if threshold < 0 else 0
        if self.h > 1:
            return self._paths_for(n).exceedances(n, threshold)
        # float64: cached totals are float32, and a threshold past float32's range (a
        # capacity of 1e300) would be cast to it (inf, with a warning) by NumPy's promotion
        return int(np.count_nonzero(self.total(n) > np.float64(threshold)))

    def exceeds_at_most(self, n: int, threshold: float, most: int) -> bool:
        """``self.exceedances(n, threshold) <= most``, settled by bounds where they can
        (over a horizon, the draws near the threshold are evaluated only when the sure ones
        and the open ones fall on both sides of ``most``)."""
        if self.h > 1 and n > 0:
            return self._paths_for(n).count(n, threshold, most) <= most
        return self.exceedances(n, threshold) <= most

    def quantile(self, n: int, q: float) -> float:
        """``np.quantile(self.total(n), q)``, computed without whole paths where bounds
        decide (see :class:`_Paths`)."""
        if self.h > 1 and n > 0:
            return self._paths_for(n).quantile(n, q)
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


#: counts beyond the replicas summed whose totals a :class:`_Paths` keeps (float64,
#: ``n_draws`` each: 160 kB at 20,000 draws)
_BEYOND_CACHED = 8

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
    default 16 or 256 as :func:`horizon_shortcut_for` chooses) and ``c = sqrt(n / k)`` (1
    when ``n <= k``), the replicas' own windows weighted per draw when ``beyond`` says so.
    ``own_k`` is summed in float32 (``c own_k`` too), the level and the total in float64. The
    replicas' start instants come from ``rng`` exactly as the instant simulator draws them,
    and the sums are added in the same order, so every total equals the one a plain
    ``(n_draws, h)`` computation with the same dtypes gives, bit for bit.

    Cost: ``n_draws x h x k`` float32 additions for the paths, once per plan (each replica
    costs a whole path per draw, hence ``K = 16`` here against 64 at an instant: with 64 the
    20,000 x 300-step paths of a 1 s trace took 0.4-0.7 s of CPU per service; a replica whose
    16 scaled or weighted would leave too light a tail sums up to 256 exactly, at the cost
    of one path per replica counted).

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
        self, sim: Simulator, shared: np.ndarray, shared_start: np.ndarray, replicas: int,
        *, rng: np.random.Generator, weights: tuple[float, float] | None = None,
        level_from: _Paths | None = None,
    ) -> None:
        self.sim = sim
        self.replicas = replicas  # summed path by path; beyond, scaled
        self.signed = weights is not None
        self._rng = rng
        own = sim.demand.own.astype(np.float32)
        h = sim.h
        self.h = h
        self._shared_start = shared_start
        # every window of own, circular (row i = own[i : i + h]): a view, nothing copied;
        # with weights (w1, w2): every window of w1 own, then from row self._negated on every
        # window of w2 own (w1 = 1, w2 = -1: the replica and its reflection)
        self._table = _circular_windows(own, h)
        self._negated = 0
        if weights is not None:
            ext = own.size + h - 1
            w1, w2 = weights
            both = np.concatenate((np.resize(own * np.float32(w1), ext),
                                   np.resize(own * np.float32(w2), ext)))
            self._table = np.lib.stride_tricks.sliding_window_view(both, h)
            self._negated = ext
        self._window_max = self._table.max(axis=1)
        self._own_sum: np.ndarray | None = None  # own_k, k summed (allocated when summed)
        self._own_at: np.ndarray | None = None  # per draw, the step own_k peaks (k summed)
        # per draw, own_k at the step the level peaks (k summed): a lower bound's term
        self._own_there: np.ndarray | None = None
        # once every replica is summed, own_k is freed and each draw keeps only the steps
        # where its path can peak (:meth:`_sum`): (offsets per draw, steps, own_k there)
        self._front: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._cache: dict[int, np.ndarray] = {}  # totals of counts summed exactly, float32
        # totals (float64) of counts beyond the replicas summed, the latest few asked
        self._beyond: dict[int, np.ndarray] = {}
        self._level_table: np.ndarray
        self._level_max: np.ndarray
        self._level_min: np.ndarray
        self._at_level_max: np.ndarray
        self._level_max_all: np.float64  # numpy's: the bounds' promotion as before
        if level_from is not None:  # the same draws of the shared level: reuse its tables
            self._level_table = level_from._level_table
            self._level_max = level_from._level_max
            self._level_min = level_from._level_min
            self._at_level_max = level_from._at_level_max
            self._level_max_all = level_from._level_max_all
        else:
            # mean + every window of shared (the same additions as per draw, so the same
            # rounded values): a row per draw; its extremes and where it peaks
            self._level_table = _circular_windows(sim.demand.mean + shared, h)
            w_max = self._level_table.max(axis=1)
            w_min = self._level_table.min(axis=1)
            w_at = self._level_table.argmax(axis=1)
            self._level_max = w_max[shared_start]
            self._level_min = w_min[shared_start]
            self._at_level_max = w_at[shared_start]  # the step the level peaks, per draw
            self._level_max_all = np.float64(self._level_max.max())
        self._rows = max(16, _BLOCK_ELEMENTS // h)
        # one per replica drawn, (n_draws,): rows of the table, uint16 where they fit (half
        # the memory of int32: 256 replicas of 20,000 draws kept 20 MB per service)
        self._starts: list[np.ndarray] = []
        self._start_dtype = np.uint16 if self._table.shape[0] <= 1 << 16 else np.int32
        # float32 as the paths, added in their order: a bound of the rounded sums; made
        # when a count asks (:meth:`_sum_max_of`: a mix never does)
        self._sum_max: list[np.ndarray] = [np.zeros(sim.n_draws, np.float32)]  # window maxima
        # max_t own_k per k summed; None for a k summed past in one go (made when asked)
        self._own_max: list[np.ndarray | None] = [np.zeros(sim.n_draws, np.float32)]
        self._level_at_max: dict[int, np.ndarray] = {}  # the level where own_k peaks, per k
        self._counted: dict[tuple[int, float], int] = {}  # (n, threshold) -> exceedances
        self._summed = 0  # replicas whose windows are added into self.own_sum
        # the largest count whose totals a mix's sweep would have kept had every sweep
        # gone to twice the largest count kept (:func:`_mix_parts`): the replicas are drawn
        # that far (answers as pinned in tests/solver/data/mix_answers.json; each simulator
        # has its own generator now, so drawing less would change only its own draws)
        self._sweep_top = 0
        self._asked_top = 0  # the largest count a mix asked of these paths

    @property
    def own_sum(self) -> np.ndarray:
        """``own_k`` of every draw, (n_draws, h) float32, ``k`` the replicas summed (up to
        ``replicas - 1``: with all of them summed only :attr:`_front` is kept)."""
        if self._front is not None:
            raise RuntimeError("own_k of every replica summed is not kept: use _front")
        if self._own_sum is None:
            self._own_sum = np.zeros((self.sim.n_draws, self.h), dtype=np.float32)
        return self._own_sum

    def _windows(self, starts: np.ndarray) -> np.ndarray:
        return self._table[starts]

    def _draw(self, k: int) -> None:
        """Draw the start instants of replicas up to ``k`` (cheap; the paths wait)."""
        while len(self._starts) < k:
            length = self.sim._length
            if self.signed:  # a start and a fair coin per replica and draw in one number:
                # start + length stands for the window of w2 own at start (row start + negated)
                start = self._rng.integers(0, 2 * length, size=self.sim.n_draws,
                                           dtype=np.int32)
                start += (start >= length) * np.int32(self._negated - length)
            else:
                start = self._rng.integers(0, length, size=self.sim.n_draws, dtype=np.int32)
            # drawn as int32 (the generator's stream depends on the dtype), kept smaller
            self._starts.append(start.astype(self._start_dtype, copy=False))

    def _sum_max_of(self, k: int) -> np.ndarray:
        """Per draw, the sum of the first ``k`` replicas' window maxima (drawn already),
        float32 added in their order: a bound of ``max_t own_k`` without its path."""
        while len(self._sum_max) <= k:
            start = self._starts[len(self._sum_max) - 1]
            self._sum_max.append(self._sum_max[-1] + self._window_max[start])
        return self._sum_max[k]

    def _sum(self, k: int) -> None:
        """Add replicas up to ``k`` into the paths, a block of draws at a time. Only the
        maximum of ``own_k`` is taken (half the cost of summing); those of the counts
        passed on the way are made when asked (:meth:`_peak`).

        With every replica summed (``k = replicas``: each count from there on scales the
        same ``own_k``) the ``(n_draws, h)`` sum is not kept (24 MB per service at 20,000
        draws of 300 steps): per draw only the steps where ``n level + c own_k`` can peak
        for some ``n, c > 0`` are (:attr:`_front`), the others being at most the level's
        peak step or ``own_k``'s in both terms (rounding is monotone: never above it)."""
        self._draw(k)
        if self._summed >= k:
            return
        n_draws = self.sim.n_draws
        last = k == self.replicas
        # summed from none to every replica in one go: block by block, nothing kept
        own_sum = None if last and self._summed == 0 else self.own_sum
        peak = np.empty(n_draws, np.float32)
        at = np.empty(n_draws, np.intp)  # where it peaks, while the block is at hand
        there = np.empty(n_draws, np.float32)
        sizes = np.empty(n_draws, np.int64)
        steps: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for r0 in range(0, n_draws, self._rows):
            r1 = min(r0 + self._rows, n_draws)
            block = (np.zeros((r1 - r0, self.h), np.float32) if own_sum is None
                     else own_sum[r0:r1])  # a view: added in place
            for j in range(self._summed, k):
                block += self._windows(self._starts[j][r0:r1])
            i = np.arange(r1 - r0)
            block_at = block.argmax(axis=1)
            at[r0:r1] = block_at
            peak[r0:r1] = block[i, block_at]
            at_level = self._at_level_max[r0:r1]
            there[r0:r1] = block[i, at_level]
            if last:  # the steps not below the level's peak step nor own_k's in both
                level = self._level_table[self._shared_start[r0:r1]]
                keep = ((block > there[r0:r1, None])
                        & (level > level[i, block_at][:, None]))
                keep[i, at_level] = True
                keep[i, block_at] = True
                row, step = np.nonzero(keep)
                sizes[r0:r1] = np.bincount(row, minlength=r1 - r0)
                steps.append(step.astype(np.uint16 if self.h <= 1 << 16 else np.intp))
                values.append(block[row, step])
        self._own_max.extend([None] * (k - self._summed - 1) + [peak])
        self._own_at = at
        self._own_there = there
        self._summed = k
        if last:
            offsets = np.zeros(n_draws + 1, np.int64)
            np.cumsum(sizes, out=offsets[1:])
            self._front = (offsets, np.concatenate(steps), np.concatenate(values))
            self._own_sum = None

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
            return self.own_sum[rows]
        out = np.zeros((rows.size, self.h), np.float32)
        for j in range(k):
            out += self._windows(self._starts[j][rows])
        return out

    def _totals(self, n: int, rows: np.ndarray | slice) -> np.ndarray:
        """Per draw of ``rows`` (a slice: every draw), the total of ``n`` replicas, float64.
        Every draw is taken a block of rows at a time: no ``(n_draws, h)`` array is made or
        kept (float64, 48 MB at 20,000 x 300 steps per service), and each row's values are
        the ones the rows alone give (the same additions, element by element)."""
        k = min(n, self.replicas)
        if self._front is not None and k == self._summed:
            return self._front_max(n, np.arange(self.sim.n_draws) if isinstance(rows, slice)
                                   else rows)
        if isinstance(rows, slice):
            n_draws = self.sim.n_draws
            out = np.empty(n_draws)
            for r0 in range(0, n_draws, self._rows):
                block = np.arange(r0, min(r0 + self._rows, n_draws))
                own = (self.own_sum[r0:r0 + block.size] if k == self._summed
                       else self._own_rows(k, block))  # a view where summed: no copy
                out[r0:r0 + block.size] = self._path_max(n, block, own)
            return out
        return self._path_max(n, rows, self._own_rows(min(n, self.replicas), rows))

    def _path_max(self, n: int, rows: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Per draw of ``rows``, the maximum over the horizon of ``n`` replicas' path, its
        replicas summed ``own`` (``k = min(n, replicas)`` of them; scaled here beyond)."""
        k = min(n, self.replicas)
        if n > k:
            own = own * math.sqrt(n / k)  # float32, as the bounds scale it
        # mean + shared path of the draws (a fresh copy), as the instant simulator has it;
        # n * level + own in place
        path = self._level_table[self._shared_start[rows]]
        np.multiply(path, n, out=path)
        path += own
        limit = self.sim.demand.limit
        if limit is not None:
            np.minimum(path, n * limit, out=path)
        return path.max(axis=1)

    def _front_max(self, n: int, rows: np.ndarray) -> np.ndarray:
        """:meth:`_path_max` of ``n`` replicas (``n >= replicas``) on ``rows`` from the
        steps kept in :attr:`_front`: each value made by the same operations, so the
        same maximum, bit for bit."""
        if rows.size == 0:
            return np.empty(0)
        offsets, steps, values = self._front  # type: ignore[misc]
        first = offsets[rows]
        sizes = offsets[rows + 1] - first
        starts = np.cumsum(sizes) - sizes  # each row's first element in the flat arrays
        flat = np.repeat(first - starts, sizes) + np.arange(int(sizes.sum()))
        own = values[flat]
        k = min(n, self.replicas)
        if n > k:
            own = own * math.sqrt(n / k)  # float32, as _path_max scales it
        path = self._level_table[np.repeat(self._shared_start[rows], sizes), steps[flat]]
        np.multiply(path, n, out=path)
        path += own
        limit = self.sim.demand.limit
        if limit is not None:
            np.minimum(path, n * limit, out=path)
        return np.maximum.reduceat(path, starts)

    def total(self, n: int) -> np.ndarray:
        cached = self._cache.get(n)
        if cached is not None:
            return cached
        k = min(n, self.replicas)
        if n > k:
            return self.totals_at(n, slice(None))
        self._sum(k)
        # float32 as cached (and as totals_through caches it), from the first call on
        out = self._cache[n] = self._totals(n, slice(None)).astype(np.float32)
        self._sweep_top = max(self._sweep_top, n)
        return out

    def totals_at(self, n: int, rows: np.ndarray | slice) -> np.ndarray:
        """The totals of ``n`` replicas (beyond the replicas summed: scaled, one pass of
        the paths) on ``rows``, float64: those of every draw are kept for the latest
        :data:`_BEYOND_CACHED` counts asked when ``rows`` is most draws (a mix's quantile
        asks the same counts again and again, each time for most draws when many services'
        bounds add up), else the rows alone are evaluated."""
        assert n > self.replicas
        full = self._beyond.pop(n, None)
        if full is None:
            n_rows = self.sim.n_draws if isinstance(rows, slice) else rows.size
            if 4 * n_rows < self.sim.n_draws:
                return self._totals(n, rows)
            self._sum(self.replicas)
            full = self._totals(n, slice(None))
            while len(self._beyond) >= _BEYOND_CACHED:
                del self._beyond[next(iter(self._beyond))]  # the least recently asked
        self._beyond[n] = full  # (re)inserted: the most recently asked
        return full if isinstance(rows, slice) else full[rows]

    def sweep_for(self, n: int) -> None:
        """Make the totals of count ``n`` (at most the replicas summed) at hand for a mix:
        if not kept, with those of every count up to twice the largest a mix asked, in one
        sweep (:meth:`totals_through`; a search asks many counts in any order).

        The replicas are drawn as far as sweeps to twice the largest count kept would
        draw them (how far they went before: up to every replica summed after a few
        asks, keeping the totals of up to 256 counts per service, 20 MB at 20,000 draws,
        where a search of a few hosts asks a few dozen), so the answers stay those pinned in
        ``tests/solver/data/mix_answers.json``. Each simulator has a generator of its own
        (:func:`child_generator`): drawing less would change only its own later draws, an
        equally valid sample (about 90 MB less at 24 services of 300 replicas)."""
        top = min(max(n, 2 * self._sweep_top), self.replicas)
        self._draw(top)
        self._sweep_top = max(self._sweep_top, top)
        if n not in self._cache:
            self.totals_through(min(max(n, 2 * self._asked_top), top))
        self._asked_top = max(self._asked_top, n)

    def totals_through(self, k: int) -> None:
        """Cache the totals of every count up to ``k`` (at most the replicas summed exactly)
        in one sweep: the replicas added one at a time in their order, block by block of
        draws, each count's total taken on the way (the values :meth:`total` gives, in
        float32 as it caches them). A mix asks counts in any order (a fleet's hosts curve
        halves them when a host is added): one by one, each count below the replicas
        summed already would sum its paths again from the first replica."""
        k = min(k, self.replicas)
        todo = [n for n in range(1, k + 1) if n not in self._cache]
        if not todo:
            return
        self._draw(k)
        limit = self.sim.demand.limit
        out = {n: np.empty(self.sim.n_draws, np.float32) for n in todo}
        for r0 in range(0, self.sim.n_draws, self._rows):
            rows = np.arange(r0, min(r0 + self._rows, self.sim.n_draws))
            level = self._level_table[self._shared_start[rows]]
            own = np.zeros((rows.size, self.h), np.float32)
            for j in range(k):
                own += self._windows(self._starts[j][rows])
                n = j + 1
                if n in out:
                    path = np.multiply(level, n)
                    path += own
                    if limit is not None:
                        np.minimum(path, n * limit, out=path)
                    out[n][r0:r0 + rows.size] = path.max(axis=1)
        self._cache.update(out)

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
        if k == self._summed:  # also the path at the instant the level peaks (as count()):
            # for a large count the level's share dominates, so this bound is the tighter
            assert self._own_there is not None  # set with the sum
            own_there = self._own_there * scale
            np.maximum(lower, np.minimum(n * self._level_max + own_there, cap), out=lower)
        return lower, upper

    def _level_at_peak(self, k: int) -> np.ndarray:
        """Per draw, the level at the instant ``own_k`` peaks (the path there is one of the
        values its maximum is taken over: a lower bound); the level's minimum when ``own_k``
        is no longer at hand (more replicas summed since)."""
        if k != self._summed:
            return self._level_min
        level = self._level_at_max.get(k)
        if level is None:
            at = self._own_at if self._own_at is not None else self.own_sum.argmax(axis=1)
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
        threshold = np.float64(threshold)  # never cast down to float32 arrays' precision
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
        sum_max = self._sum_max_of(k)
        top = n * self._level_max_all + scale * sum_max.max()
        if min(top, cap) <= threshold:
            self._counted[(n, threshold)] = 0
            return 0
        upper = n * self._level_max + scale * sum_max
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
            at = (self._own_at[rows] if self._own_at is not None else
                  self.own_sum[rows].argmax(axis=1))
            level = self._level_table[self._shared_start[rows], at]
        else:
            level = self._level_min[rows]
        sure = np.minimum(n * level + own_max[rows], cap) > threshold
        if k == self._summed:  # and at the instant the level peaks
            rest = rows[~sure]
            assert self._own_there is not None  # set with the sum
            own_there = self._own_there[rest] * scale
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
    sims: Mapping[str, Simulator], counts: Mapping[str, int], n_draws: int,
    scale: Mapping[str, float] | None = None,
    limits: Mapping[str, float | None] | None = None,
    host_cost: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Per draw, the sum over services of ``counts[s]`` replicas (sims share ``u``), each
    service's own demand times ``scale[s]`` (its demand factor for a period ahead; default
    1) and its host cost per container (``host_cost[s]``, inside the draws: default 0) not
    (:func:`factor_figure`), a scaled service's part never past ``counts[s] x limits[s]``
    (its declared limit per replica: a replica cannot use more, whatever the drift) unless
    its draw already was."""
    total = np.zeros(n_draws)
    for s, n in counts.items():
        if n > 0 and s in sims:
            f = 1.0 if scale is None else float(scale.get(s, 1.0))
            lim = None if limits is None else limits.get(s)
            h = 0.0 if host_cost is None else float(host_cost.get(s, 0.0))
            total = total + _scaled_part(sims[s].total(int(n)), f, int(n), lim, h)
    return total


def _scaled_part(part: np.ndarray, f: float, n: int, limit: float | None,
                 host_cost: float = 0.0) -> np.ndarray:
    """``n`` replicas' totals ``part`` at their demand factor ``f`` (their own demand times
    ``f``, the ``n x host_cost`` inside ``part`` not), never past ``n`` times their declared
    ``limit`` unless the draw already was (nondecreasing in ``part``: bounds of the totals
    stay bounds)."""
    if f == 1.0:
        return part
    drifted = factor_figure(part, f, host_cost, n)
    if not limit:
        return drifted
    return np.minimum(drifted, np.maximum(part, n * float(limit)))


#: one service's part of a mix: (demand factor, declared limit per replica, host cost per
#: container (inside the totals, not scaled by the factor), the paths that
#: give its exact totals beyond the replicas summed or None (its totals at hand), count,
#: lower bounds of its totals per draw, upper bounds (the totals themselves when exact))
_Part = tuple[float, float | None, float, _Paths | None, int, np.ndarray, np.ndarray]


def _mix_parts(
    sims: Mapping[str, Simulator], counts: Mapping[str, int], n_draws: int,
    scale: Mapping[str, float] | None, limits: Mapping[str, float | None] | None,
    host_cost: Mapping[str, float] | None = None,
) -> tuple[list[_Part], np.ndarray, np.ndarray]:
    """Each service's part of a mix (:data:`_Part`) and the sums of their scaled lower and
    upper bounds per draw, added in ``counts`` order (as :func:`mix_totals` adds)."""
    lower = np.zeros(n_draws)
    upper = np.zeros(n_draws)
    parts: list[_Part] = []
    for s, n in counts.items():
        if n <= 0 or s not in sims:
            continue
        f = 1.0 if scale is None else float(scale.get(s, 1.0))
        lim = None if limits is None else limits.get(s)
        h = 0.0 if host_cost is None else float(host_cost.get(s, 0.0))
        sim = sims[s]
        paths = sim._paths_for(int(n)) if sim.h > 1 else None
        if paths is not None and n > paths.replicas:  # beyond the replicas summed: bounds
            lo, hi = paths._bounds(int(n))
            parts.append((f, lim, h, paths, int(n), lo, hi))
        elif paths is not None:  # summed exactly: the totals of every count up to twice
            # the largest asked so far, in one sweep, then read from the cache
            paths.sweep_for(int(n))
            lo = hi = paths.total(int(n))
            parts.append((f, lim, h, None, int(n), lo, hi))
        else:
            lo = hi = sim.total(int(n))
            parts.append((f, lim, h, None, int(n), lo, hi))
        scaled_lo = _scaled_part(lo, f, int(n), lim, h)
        lower = lower + scaled_lo
        upper = upper + (scaled_lo if hi is lo else _scaled_part(hi, f, int(n), lim, h))
    return parts, lower, upper


def mix_quantile(
    sims: Mapping[str, Simulator], counts: Mapping[str, int], n_draws: int, q: float,
    scale: Mapping[str, float] | None = None,
    limits: Mapping[str, float | None] | None = None,
    host_cost: Mapping[str, float] | None = None,
) -> float:
    """``np.quantile(mix_totals(sims, counts, n_draws, scale, limits, host_cost), q)``, computed
    without whole paths where bounds decide: over a horizon each service's total of a draw
    lies between the bounds of its paths' maxima (:class:`_Paths`), so the sum does too
    (scaled and stopped at the limits: nondecreasing), and a draw whose upper bound is below
    the lower bounds' order statistic at ``q``'s position stays below the totals' own (as
    :meth:`Simulator.quantile` does for one service). Only the other draws are summed step
    by step; every count up to the replicas summed exactly is swept once
    (:meth:`_Paths.totals_through`). Trap: over a horizon the total is each service's maximum
    over the horizon summed, an upper bound of the maximum of the sum."""
    return _quantile_of(*_mix_parts(sims, counts, n_draws, scale, limits, host_cost),
                        n_draws, q)


def _quantile_of(parts: list[_Part], lower: np.ndarray, upper: np.ndarray, n_draws: int,
                 q: float) -> float:
    """:func:`mix_quantile` of the parts :func:`_mix_parts` made."""
    if all(p is None for _, _, _, p, _, _, _ in parts):
        return float(np.quantile(lower, q))
    i = math.floor(q * (n_draws - 1))
    floor = np.partition(lower, i)[i]
    rows = np.flatnonzero(upper >= floor)
    exact = np.zeros(rows.size)
    for f, lim, h, paths, n, at_instant, _ in parts:
        part = at_instant[rows] if paths is None else paths.totals_at(n, rows)
        exact = exact + _scaled_part(part, f, n, lim, h)
    totals = np.full(n_draws, -np.inf)
    totals[rows] = exact
    return float(np.quantile(totals, q))


def mix_exceeds(
    sims: Mapping[str, Simulator], counts: Mapping[str, int], n_draws: int, q: float,
    threshold: float, scale: Mapping[str, float] | None = None,
    limits: Mapping[str, float | None] | None = None,
    host_cost: Mapping[str, float] | None = None,
) -> bool:
    """``mix_quantile(sims, counts, n_draws, q, scale, limits, host_cost) > threshold``, the
    same
    answer, settled by counting the draws over ``threshold`` where that count decides.

    With ``c`` draws' totals over the threshold and ``i = floor(q (n_draws - 1))`` (the
    order statistics ``i`` and ``i + 1`` are what :func:`numpy.quantile` interpolates
    between, and its interpolation stays between them), the quantile is over when
    ``c >= n_draws - i`` (order statistic ``i`` is) and not when ``c <= n_draws - i - 2``
    (nor is ``i + 1``). A draw whose lower bound is over counts, one whose upper bound is
    not does not; the draws in between are made exact one service at a time (the widest
    sum of gaps first), only as far as the count needs. The one count left,
    ``c = n_draws - i - 1`` (the threshold between the two order statistics), takes the
    quantile itself. A size search asks whether a host holds a mix hundreds of times: far
    from the answer the bounds tell at once, near it few draws are open.
    """
    threshold = float(threshold)
    parts, lower, upper = _mix_parts(sims, counts, n_draws, scale, limits, host_cost)
    if all(p is None for _, _, _, p, _, _, _ in parts):
        return float(np.quantile(lower, q)) > threshold
    i = math.floor(q * (n_draws - 1))
    over_at, under_at = n_draws - i, n_draws - i - 2
    sure = int(np.count_nonzero(lower > threshold))
    rows = np.flatnonzero((lower <= threshold) & (upper > threshold))
    def scaled(j: int, part: np.ndarray) -> np.ndarray:
        f, lim, h, _, n, _, _ = parts[j]
        return _scaled_part(part, f, n, lim, h)

    # the open draws' bounds per service, scaled once (elementwise: selecting rows before or
    # after scaling gives the same values), raw dtype kept: the sums are added as mix_totals
    # adds them, so a draw made exact for every service has its very total
    slo = [scaled(j, lo[rows]) for j, (*_, lo, _) in enumerate(parts)]
    shi = [scaled(j, hi[rows]) for j, (*_, hi) in enumerate(parts)]
    todo = {j for j, part in enumerate(parts) if part[3] is not None}
    while True:
        if sure >= over_at:
            return True
        if sure + rows.size <= under_at:
            return False
        if not todo:  # every open draw exact: c = n_draws - i - 1
            return _quantile_of(parts, lower, upper, n_draws, q) > threshold
        gap = {j: float(np.sum(shi[j] - slo[j])) for j in todo}
        j = max(todo, key=lambda j: gap[j])  # the widest gaps first
        todo.discard(j)
        _, _, _, paths, n, _, _ = parts[j]
        assert paths is not None
        slo[j] = shi[j] = scaled(j, paths.totals_at(n, rows))
        lo_sum = np.zeros(rows.size)
        hi_sum = np.zeros(rows.size)
        for lo, hi in zip(slo, shi, strict=True):
            lo_sum = lo_sum + lo
            hi_sum = hi_sum + hi
        over = lo_sum > threshold
        sure += int(np.count_nonzero(over))
        still = ~over & (hi_sum > threshold)
        rows = rows[still]
        slo = [lo[still] for lo in slo]
        shi = [hi[still] for hi in shi]
