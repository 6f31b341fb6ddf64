"""Profiles: one replica's demand per service and resource, in a versioned JSON form.

Every number is in the unit of its resource column (see :mod:`capacity._columns`): cores for
``cpu_cores``, bytes for ``memory_working_set_bytes`` and ``disk_usage_bytes``, bytes per second
for the network and disk I/O rates. Times are seconds.

The objects are frozen dataclasses. ``to_dict`` gives plain JSON types (dicts, lists, floats,
``None``; never NaN), and ``from_dict(to_dict(p)) == p``. A quantity that cannot be computed
from the data (a correlation with one replica, a fit with two samples) is ``None``, never NaN.

Traps
-----
- A profile is of **one replica**, pooled over the replicas of its service: replicas are not
  independent (they share traffic and clocks), so the solver must not add them up as if they
  were; ``replica_correlation``, ``slow_var`` and ``trace`` say how much they move together.
- CPU samples taken while the container was throttled at its limit understate what it would
  have used without the limit: the profile is then censored at ``cpu_limit_cores``.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InsufficientData, InvalidFile, InvalidParameter, ProfileVersionError
from .._schema import Fields
from .._units import MAX_DURATION_S
from ._packed import (
    PACK_MIN_VALUES,
    STORAGE_NOTE,
    is_packed,
    keep_float32,
    keep_trace,
    pack,
    unpack,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "PROFILES_SCHEMA_VERSION",
    "QUANTILE_LEVELS",
    "BurstProfile",
    "Correlation",
    "FitResult",
    "Profiles",
    "ResourceProfile",
    "ServiceProfile",
]

PROFILES_SCHEMA_VERSION = 4
#: older versions this release still reads (fields they lack take their defaults): version 2
#: has no ``replica_trace``, so the solver's empirical method falls back to ``trace``;
#: version 3 writes every list as JSON text (version 4 packs long ones: :mod:`._packed`)
READABLE_SCHEMA_VERSIONS: frozenset[int] = frozenset({2, 3, PROFILES_SCHEMA_VERSION})

#: the named quantiles every profile carries, name -> level
QUANTILE_LEVELS: Mapping[str, float] = {
    "p50": 0.5,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
    "p99.9": 0.999,
    "max": 1.0,
}

_FAMILIES = ("normal", "lognormal", "gamma", "weibull")


@dataclass(frozen=True)
class FitResult:
    """The best parametric distribution of one replica's samples, or ``family == "none"``.

    Attributes
    ----------
    family : str
        ``"normal"``, ``"lognormal"``, ``"gamma"``, ``"weibull"``, or ``"none"`` when no
        candidate passes the tail test (then use the empirical quantiles).
    params : Mapping[str, float]
        The family's parameters in scipy's naming: normal ``loc``, ``scale``; lognormal ``s``,
        ``scale`` (= exp(mu)); gamma ``a``, ``scale``; weibull ``c``, ``scale``. Location is
        fixed at 0 for all but the normal.
    aic : float or None
        Akaike information criterion of the chosen family (lower is better), on the fit sample:
        all samples, or above ``fit_max_samples`` (20,000) that many evenly spaced order
        statistics (deterministic and independent of row order).
    tail_statistic : float or None
        How the tail is judged: the Kolmogorov-Smirnov distance between the empirical and the
        fitted distribution *conditional on exceeding the empirical p90*, over the samples
        above it. 0.05 means the fitted tail probabilities are off by at most 5 % of the tail
        mass (0.5 % of all mass).
    tail_threshold : float or None
        The largest ``tail_statistic`` accepted: the larger of the 1 % Kolmogorov-Smirnov
        critical value for the number of tail samples and the practical tolerance.
    aic_by_family : Mapping[str, float]
        AIC of every candidate that could be fitted (the best one is the lowest whose tail passes).
    tail_by_family : Mapping[str, float]
        The tail statistic of every candidate fitted.
    reason : str
        Why the family was chosen, or why none was.
    """

    family: str = "none"
    params: Mapping[str, float] = field(default_factory=dict)
    aic: float | None = None
    tail_statistic: float | None = None
    tail_threshold: float | None = None
    aic_by_family: Mapping[str, float] = field(default_factory=dict)
    tail_by_family: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when a family was accepted."""
        return self.family != "none"

    def distribution(self) -> Any:
        """The frozen ``scipy.stats`` distribution, or None when ``family == "none"``."""
        if not self.ok:
            return None
        from scipy import stats

        p = dict(self.params)
        if self.family == "normal":
            return stats.norm(loc=p["loc"], scale=p["scale"])
        if self.family == "lognormal":
            return stats.lognorm(p["s"], scale=p["scale"])
        if self.family == "gamma":
            return stats.gamma(p["a"], scale=p["scale"])
        if self.family == "weibull":
            return stats.weibull_min(p["c"], scale=p["scale"])
        raise ValueError(f"unknown family {self.family!r}; one of {_FAMILIES}")

    def quantile(self, q: float) -> float | None:
        """The fitted distribution's ``q`` quantile (q in [0, 1)), or None without a fit."""
        dist = self.distribution()
        return None if dist is None else float(dist.ppf(q))

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "params": dict(self.params),
            "aic": self.aic,
            "tail_statistic": self.tail_statistic,
            "tail_threshold": self.tail_threshold,
            "aic_by_family": dict(self.aic_by_family),
            "tail_by_family": dict(self.tail_by_family),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        return cls(
            family=d["family"],
            params=dict(d.get("params", {})),
            aic=d.get("aic"),
            tail_statistic=d.get("tail_statistic"),
            tail_threshold=d.get("tail_threshold"),
            aic_by_family=dict(d.get("aic_by_family", {})),
            tail_by_family=dict(d.get("tail_by_family", {})),
            reason=d.get("reason", ""),
        )


@dataclass(frozen=True)
class BurstProfile:
    """How long demand stays high, from runs of consecutive samples above the p90.

    A run is a stretch of consecutive samples of one container at or above the resource's p90
    (at or above, so that a flat top, such as CPU pinned at its limit, counts as a run); a
    missed sample (a time gap over 1.5 intervals) ends it. Run lengths are in seconds
    (samples x interval). With samples every ``interval_s``, a run shorter than one interval
    cannot be seen: bursts shorter than that are averaged into the samples.

    Attributes
    ----------
    threshold : float or None
        The p90 the runs are counted above, in the resource's unit.
    n_runs : int
        Runs seen.
    mean_run_s, p90_run_s, max_run_s : float or None
        Mean, 90th percentile and longest run length, seconds; None with no run.
    lag1_autocorrelation : float or None
        Correlation of consecutive samples of the same container (after taking out each
        container's mean), pooled over containers: near 0 for independent noise, near 1 for
        slow swings. None with fewer than 3 consecutive pairs or constant samples.
    """

    threshold: float | None = None
    n_runs: int = 0
    mean_run_s: float | None = None
    p90_run_s: float | None = None
    max_run_s: float | None = None
    lag1_autocorrelation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BurstProfile:
        return cls(**dict(d))


def _ci_from_json(v: Any) -> tuple[float, float | None]:
    return (v[0], v[1])


@dataclass(frozen=True)
class ResourceProfile:
    """One replica's demand for one resource, in the resource column's unit.

    ``demand`` is the per-replica figure the skeleton solver sizes with (p95 for CPU, the
    maximum for memory and the rest); the other fields describe the distribution and its time
    structure. All statistics are over the samples of every replica of the service pooled, each
    sample counting once, except the histogram, whose weights decay with age.

    Attributes
    ----------
    resource : str
        The samples column, e.g. ``"cpu_cores"``.
    count : int
        Samples used (non-NaN values; duplicates of one timestamp count once).
    mean, std : float
        Sample mean and standard deviation (``ddof=1``; 0 with one sample).
    p50, p90, p95, p99, max : float
        Empirical quantiles (numpy's default linear interpolation), the same as in ``quantiles``.
    demand, demand_statistic : float, str
        The skeleton solver's per-replica demand and which quantile it is.
    quantiles : Mapping[str, float]
        ``{"p50", "p90", "p95", "p99", "p99.9", "max"}`` (keys of :data:`QUANTILE_LEVELS`).
        Trap: with n samples, quantiles above 1 - 1/n are interpolations towards the max.
    idle_baseline : float
        The 5th percentile: what a replica uses when (nearly) idle.
    peak_to_mean : float or None
        ``p99 / mean``; None when the mean is 0.
    histogram_edges, histogram_weights : tuple of float
        A histogram of the samples with exponentially decaying weights (a sample ``age``
        seconds older than the service's newest sample weighs ``0.5 ** (age / half_life)``).
        ``len(edges) == len(weights) + 1``; weights sum to 1. Edges are 0, then geometric up to
        the maximum, so the tail is resolved to a few percent at every scale. Kept as
        float32 values (relative error <= 6e-8; :mod:`capacity.model._packed`).
    fit : FitResult
        The best parametric family, or ``"none"``.
    burst : BurstProfile
        Run lengths above the p90 and the lag-1 autocorrelation.
    replica_spread : float or None
        Coefficient of variation (std / mean, ``ddof=1``) of the per-replica means: 0 when
        replicas behave alike. None with one replica or a zero mean.
    slow_var, fast_var : float
        Variance of the slow component (a centred moving average of each container's series
        over ``window_s`` seconds, or its whole span if shorter; it carries each replica's level)
        and the rest: ``fast_var`` is the variance of the fast residual plus twice its
        covariance with the slow part (a moving average does not split a series into
        uncorrelated parts; the covariance is small for noise, not for a square wave near the
        window's period). So ``slow_var + fast_var`` equals the population variance (``ddof=0``,
        ~``var``), and ``N**2 * slow_var + N * fast_var`` is the variance of N replicas that share
        the slow part and not the fast one.
    window_s : float
        The moving-average window used for ``slow_var``, seconds.
    time_of_day_s : float
        86,400 when the slow component includes the time-of-day profile (the history covers
        two whole days at an interval that divides a day): a load that recurs at one time of
        day is shared by replicas. 0 when it does not (older profiles, shorter histories).
    replica_correlation : float or None
        Mean pairwise Pearson correlation between replicas sampled in the same interval (on
        the service's sampling grid); None when only one replica was seen or no two replicas
        overlap in time. With more than 100 replicas (churn), over the 100 with most samples.
    quantile_ci : Mapping[str, tuple[float, float | None]]
        ``{"p90", "p95", "p99", "p99.9"}`` -> (lower, upper) distribution-free confidence
        interval at ``ci_level`` from order statistics (binomial ranks), at the effective
        sample size ``n / (2 L - 1)``, L the mean length in samples of the runs above that
        quantile (a two-state Markov model of exceedances; ~n for independent samples), so
        bursty samples do not give falsely narrow intervals. The upper bound is None when too
        few samples exist to bound it (it lies above the maximum seen).
    ci_level : float
        Confidence level of ``quantile_ci`` (0.95).
    trace : tuple of float
        Time series of the per-replica mean (the mean over replicas sampled in the same
        interval), averaged down to at most ~2,000 points spaced ``trace_interval_s`` apart,
        oldest first. Intervals with no sample are left out (the trace closes the gap).
        Kept to 16 bits of its largest value (every point a multiple of a power-of-two step
        <= max / 65535; :func:`capacity.model._packed.keep_trace`), so the profile written to
        profiles.json and read back is equal to this one.
    trace_interval_s : float
        Spacing of ``trace``, seconds.
    replica_trace : tuple of float
        Each replica's *own* series (not the mean over replicas), binned like ``trace`` (same
        ``trace_interval_s``), replicas one after another (those with the most samples first,
        whole replicas while the total stays within the model's ``trace_max_points``; at least
        one), each oldest first. The solver draws one replica's demand from it: ``trace`` is a
        mean over replicas, whose distribution is narrower than one replica's (two replicas
        busy at 0.5 core a third of the time each, never together, average to at most 0.25).
        Trap: a block drawn across the end of one replica runs into the next replica's start.
        Empty in profiles of schema version 2 (the solver then uses ``trace``). Kept to 16
        bits of its largest value, as ``trace``.
    daily_levels : tuple of float or None
        Mean demand of each whole day (86,400 s) counted back from the end of the history,
        oldest first; None for a day with fewer than a tenth of the median day's samples. Empty
        when the history covers less than one whole day (and in older profiles). The solver
        measures drift from it (:mod:`capacity.solver._drift`).
    """

    resource: str
    count: int
    mean: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    demand: float
    demand_statistic: str
    quantiles: Mapping[str, float] = field(default_factory=dict)
    idle_baseline: float = 0.0
    peak_to_mean: float | None = None
    histogram_edges: tuple[float, ...] = ()
    histogram_weights: tuple[float, ...] = ()
    fit: FitResult = field(default_factory=FitResult)
    burst: BurstProfile = field(default_factory=BurstProfile)
    replica_spread: float | None = None
    slow_var: float = 0.0
    fast_var: float = 0.0
    window_s: float = 300.0
    time_of_day_s: float = 0.0
    replica_correlation: float | None = None
    quantile_ci: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)
    ci_level: float = 0.95
    trace: tuple[float, ...] = ()
    trace_interval_s: float = 0.0
    replica_trace: tuple[float, ...] = ()
    daily_levels: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        # the precision a profile keeps (and profiles.json writes exactly): idempotent, so
        # replace() and a round trip through the file give back an equal profile
        for name in ("trace", "replica_trace"):
            object.__setattr__(self, name, keep_trace(getattr(self, name)))
        for name in ("histogram_edges", "histogram_weights"):
            object.__setattr__(self, name, keep_float32(getattr(self, name)))
        if not self.quantiles:
            object.__setattr__(
                self,
                "quantiles",
                {
                    "p50": self.p50,
                    "p90": self.p90,
                    "p95": self.p95,
                    "p99": self.p99,
                    "max": self.max,
                },
            )
        n_edges, n_weights = len(self.histogram_edges), len(self.histogram_weights)
        if (n_edges or n_weights) and n_edges != n_weights + 1:
            raise ValueError(
                f"histogram of {self.resource}: {len(self.histogram_edges)} edges for "
                f"{len(self.histogram_weights)} weights; need one edge more than weights"
            )

    @property
    def var(self) -> float:
        """Sample variance (``std ** 2``, ``ddof=1``), in the resource's unit squared."""
        return self.std**2

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (q in [0, 1]) of the decaying-weight histogram.

        Linear within a bin. Trap: recent samples weigh more, so this differs from the
        unweighted ``quantiles`` when demand drifted over the window; and it cannot resolve
        finer than a bin (a few percent of the value).
        """
        if not 0.0 <= q <= 1.0 or math.isnan(q):
            raise InvalidParameter("q", "ResourceProfile.quantile", "in [0, 1]", q)
        if not self.histogram_weights:
            raise InsufficientData(
                f"{self.resource} has no histogram: refit with capacity >= 0.1 profiles"
            )
        cdf = [0.0]
        for w in self.histogram_weights:
            cdf.append(cdf[-1] + w)
        total = cdf[-1]
        target = q * total
        i = bisect_left(cdf, target)
        if i == 0:
            # q == 0: the lower edge of the first bin with weight
            j = next(k for k, w in enumerate(self.histogram_weights) if w > 0)
            return self.histogram_edges[j]
        i = min(i, len(self.histogram_weights))
        lo, hi = cdf[i - 1], cdf[i]
        frac = 0.0 if hi <= lo else (target - lo) / (hi - lo)
        e0, e1 = self.histogram_edges[i - 1], self.histogram_edges[i]
        return e0 + frac * (e1 - e0)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["quantiles"] = dict(self.quantiles)
        d["histogram_edges"] = pack(self.histogram_edges, "float32")
        d["histogram_weights"] = pack(self.histogram_weights, "float32")
        d["fit"] = self.fit.to_dict()
        d["burst"] = self.burst.to_dict()
        d["quantile_ci"] = {k: list(v) for k, v in self.quantile_ci.items()}
        d["trace"] = pack(self.trace, "trace")
        d["replica_trace"] = pack(self.replica_trace, "trace")
        d["daily_levels"] = list(self.daily_levels)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResourceProfile:
        d = dict(d)
        d["quantiles"] = dict(d.get("quantiles", {}))
        d["histogram_edges"] = _listed(d.get("histogram_edges", ()))
        d["histogram_weights"] = _listed(d.get("histogram_weights", ()))
        d["fit"] = FitResult.from_dict(d["fit"]) if "fit" in d else FitResult()
        d["burst"] = BurstProfile.from_dict(d["burst"]) if "burst" in d else BurstProfile()
        d["quantile_ci"] = {k: _ci_from_json(v) for k, v in d.get("quantile_ci", {}).items()}
        d["trace"] = _listed(d.get("trace", ()))
        d["replica_trace"] = _listed(d.get("replica_trace", ()))
        d["daily_levels"] = tuple(d.get("daily_levels", ()))
        return cls(**d)


@dataclass(frozen=True)
class ServiceProfile:
    """One replica of one service: per-resource profiles, pooled over its replicas.

    Attributes
    ----------
    service : str
        The grouping key's value (Compose service label, else image, else name).
    replicas_seen : int
        Distinct containers (``container_id``) seen.
    n_samples : int
        Rows used after duplicate timestamps were averaged.
    span_s : float
        Seconds from the first to the last sample of the service.
    interval_s : float
        Median sampling interval, seconds.
    resources : Mapping[str, ResourceProfile]
        Per resource column with at least one sample.
    cpu_limit_cores, memory_limit_bytes : float, int or None
        Declared limits (``docker run --cpus`` / ``-m``), the largest over the replicas; None
        when not declared or not known. CPU samples above the CPU limit and memory samples above
        the memory limit are clipped to it before profiling (counted in ``notes``).
    confidence : str
        ``"ok"``, or ``"low"`` when ``warnings`` names why (too few samples, too short a span).
    warnings : tuple of str
        Why confidence is low, and what to do.
    notes : tuple of str
        What was done to the input (duplicates averaged, values clipped at a limit, throttling).
    time_start, time_end : str
        ISO 8601 UTC times of the first and last sample.
    effective_samples, span_instants : float or None
        Kish's effective count of the samples weighted by the time each stands for, and the
        sampling instants (at ``interval_s``) their spans hold, summed over replicas
        (:func:`capacity.model._fit.sampling_coverage`). Equal for a regular history; gaps,
        irregular intervals and an interval changed mid-way make the first smaller, and the
        plan widens demand by ``1 + 1.96 cv (1/sqrt(n_eff) - 1/sqrt(n_ref))``, both counts per
        replica over the trace's autocorrelation time (:mod:`capacity.solver._coverage`).
        None in older profiles. A loaded file is refused when ``effective_samples`` exceeds
        ``n_samples`` or ``span_instants`` exceeds ``replicas_seen * (span_s / interval_s + 1)``.
    """

    service: str
    replicas_seen: int
    n_samples: int
    span_s: float
    interval_s: float
    resources: Mapping[str, ResourceProfile]
    cpu_limit_cores: float | None = None
    memory_limit_bytes: int | None = None
    warnings: tuple[str, ...] = ()
    confidence: str = "ok"
    notes: tuple[str, ...] = ()
    time_start: str = ""
    time_end: str = ""
    effective_samples: float | None = None
    span_instants: float | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per resource (quantiles, sizing figure, fit), in the column units."""
        from ._display import service_frame

        return service_frame(self)

    def _repr_html_(self) -> str:
        from ._display import service_html

        return service_html(self)

    def plot(self, ax: Axes | None = None, *, resource: str | None = None) -> Axes:
        """Demand over time for one resource (default CPU) with its quantiles; returns the
        Axes (a new Figure's, not pyplot's, when ``ax`` is None)."""
        from ._display import plot_service

        return plot_service(self, ax, resource=resource)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["resources"] = {k: v.to_dict() for k, v in self.resources.items()}
        d["warnings"] = list(self.warnings)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceProfile:
        d = dict(d)
        d["resources"] = {k: ResourceProfile.from_dict(v) for k, v in d["resources"].items()}
        d["warnings"] = tuple(d.get("warnings", ()))
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)


@dataclass(frozen=True)
class Correlation:
    """Pearson correlations, time-aligned, for the solver: correlated demand peaks together.

    Attributes
    ----------
    between_services : Mapping[str, Mapping[str, Mapping[str, float | None]]]
        ``[resource][service_a][service_b]``: correlation of the two services' per-replica
        mean demand on ``interval_s`` bins where both were sampled. 1 on the diagonal; None
        when fewer than 3 common bins or a constant series.
    between_resources : Mapping[str, Mapping[str, Mapping[str, float | None]]]
        ``[service][resource_a][resource_b]``: correlation of two resources over the
        service's samples (same rows). None as above.
    interval_s : float
        Bin width of ``between_services``, seconds (60: one-minute means).
    """

    between_services: Mapping[str, Mapping[str, Mapping[str, float | None]]] = field(
        default_factory=dict
    )
    between_resources: Mapping[str, Mapping[str, Mapping[str, float | None]]] = field(
        default_factory=dict
    )
    interval_s: float = 60.0

    def services(self, resource: str, a: str, b: str) -> float | None:
        """Correlation of services ``a`` and ``b`` for ``resource``; None when unknown."""
        return self.between_services.get(resource, {}).get(a, {}).get(b)

    def resources(self, service: str, a: str, b: str) -> float | None:
        """Correlation of resources ``a`` and ``b`` within ``service``; None when unknown."""
        return self.between_resources.get(service, {}).get(a, {}).get(b)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``between_services`` of a resource is written as a matrix
        (``{"services": [...], "matrix": <packed float64, row-major, NaN for null>}``) when
        every service has a value for every other and that makes 32 or more (exact)."""
        def plain(m: Mapping[str, Mapping[str, Mapping[str, float | None]]]) -> dict[str, Any]:
            return {k: {a: dict(row) for a, row in v.items()} for k, v in m.items()}

        return {
            "between_services": {k: _matrix_or_rows(v)
                                 for k, v in self.between_services.items()},
            "between_resources": plain(self.between_resources),
            "interval_s": self.interval_s,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Correlation:
        return cls(
            between_services={
                k: _rows(v) for k, v in d.get("between_services", {}).items()
            },
            between_resources={
                k: {a: dict(r) for a, r in v.items()}
                for k, v in d.get("between_resources", {}).items()
            },
            interval_s=d.get("interval_s", 60.0),
        )


@dataclass(frozen=True)
class Profiles:
    """All service profiles of one fit, with their correlations and where they came from.

    ``meta`` holds the model's parameters (``half_life_s``, ``window_s``, ...).
    """

    services: Mapping[str, ServiceProfile]
    source: str = ""
    created_at: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    correlation: Correlation = field(default_factory=Correlation)

    def __getitem__(self, service: str) -> ServiceProfile:
        return self.services[service]

    def __len__(self) -> int:
        return len(self.services)

    def to_frame(self) -> pd.DataFrame:
        """One row per (service, resource), in the column units."""
        from ._display import profiles_frame

        return profiles_frame(self)

    def _repr_html_(self) -> str:
        from ._display import profiles_html

        return profiles_html(self)

    def plot(self, ax: Axes | None = None, *, resource: str | None = None) -> Axes:
        """One replica's demand distribution per service for one resource (default CPU);
        returns the Axes (a new Figure's, not pyplot's, when ``ax`` is None)."""
        from ._display import plot_profiles

        return plot_profiles(self, ax, resource=resource)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PROFILES_SCHEMA_VERSION,
            "kind": "capacity.profiles",
            "source": self.source,
            "created_at": self.created_at,
            "storage": STORAGE_NOTE,
            "meta": dict(self.meta),
            "correlation": self.correlation.to_dict(),
            "services": {k: v.to_dict() for k, v in self.services.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, file: str = "profiles") -> Profiles:
        """Profiles from their JSON form, every field checked against the schema.

        Raises
        ------
        ProfileVersionError
            Another ``kind`` or a schema version this release does not read.
        InvalidFile
            A field of the wrong type, missing, NaN or infinite, negative where only >= 0
            makes sense (demand, quantiles), a limit <= 0, quantiles out of order. The
            message names the field's dotted path (``services.web.cpu_limit_cores``) and the
            value. Unknown fields are ignored (a newer minor release may add some).
        """
        return _load_profiles(d, file)

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; written to ``path`` too when given. NaN is refused (never written).

        Nested objects are indented one space a level; a list or object of numbers and
        strings (a trace, a histogram, a row of correlations) is written on one line, so a
        file of many services stays a third smaller than one number a line. The values are
        written exactly (``from_json`` gives back an equal object).
        """
        text = _compact_json(self.to_dict())
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Profiles:
        """Read JSON text or a file path, every field checked (see :meth:`from_dict`).

        Raises :class:`ProfileVersionError` for another version and :class:`InvalidFile`
        for a file that cannot be read, is not JSON, or breaks the schema.
        """
        p = Path(path_or_text) if not str(path_or_text).lstrip().startswith("{") else None
        name = str(p) if p is not None else "profiles text"
        try:
            text = p.read_text() if p is not None else str(path_or_text)
            data = json.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidFile(
                f"{name}: cannot be read ({type(exc).__name__}: {exc}): give the profiles.json "
                "written by 'capacity fit --out profiles.json'", file=name,
            ) from exc
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InvalidFile(
                f"{name}: is not a profiles JSON file ({type(exc).__name__}: {exc}): write "
                "one with 'capacity fit --out profiles.json'", file=name,
            ) from exc
        return cls.from_dict(data, file=name)


def _listed(value: Any) -> tuple[float, ...]:
    """A list of numbers from its JSON form (a plain list, or packed)."""
    return tuple(unpack(value)) if is_packed(value) else tuple(value)


def _matrix_or_rows(m: Mapping[str, Mapping[str, float | None]]) -> Any:
    """One resource's service correlations as a packed matrix, or as rows of a mapping
    (fewer than 32 cells, or a service without a value for every other)."""
    names = list(m)
    square = all(set(row) == set(names) for row in m.values())
    if not square or len(names) ** 2 < PACK_MIN_VALUES:
        return {a: dict(row) for a, row in m.items()}
    return {"services": names, "matrix": pack([m[a][b] for a in names for b in names])}


def _is_matrix(v: Any) -> bool:
    # a service named "services" has a row (a mapping) there, never a list
    return isinstance(v, Mapping) and isinstance(v.get("services"), list) and "matrix" in v


def _rows(v: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """A resource's service correlations as rows, from either JSON form (unchecked)."""
    if not _is_matrix(v):
        return {a: dict(r) for a, r in v.items()}
    names = [str(n) for n in v["services"]]
    cells = _listed(v["matrix"])
    k = len(names)
    return {a: {b: None if c is None or (isinstance(c, float) and math.isnan(c)) else c
                for b, c in zip(names, cells[i * k:(i + 1) * k], strict=True)}
            for i, a in enumerate(names)}


def _is_leaf(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float) or hasattr(value, "item")


def _compact_json(obj: Any, level: int = 0) -> str:
    """``json.dumps(obj, indent=1)``, except that a list or object whose values are all
    scalars is written on one line (no space after a list's commas)."""
    if isinstance(obj, Mapping | list | tuple) and obj:
        items = list(obj.values()) if isinstance(obj, Mapping) else list(obj)
        if all(_is_leaf(v) for v in items):
            seps = (",", ":") if not isinstance(obj, Mapping) else (", ", ": ")
            return json.dumps(obj if isinstance(obj, Mapping) else items, separators=seps,
                              default=_json_default, allow_nan=False)
        pad = "\n" + " " * (level + 1)
        if isinstance(obj, Mapping):
            parts = [json.dumps(k if isinstance(k, str) else str(k)) + ": "
                     + _compact_json(v, level + 1) for k, v in obj.items()]
            return "{" + pad + ("," + pad).join(parts) + "\n" + " " * level + "}"
        parts = [_compact_json(v, level + 1) for v in items]
        return "[" + pad + ("," + pad).join(parts) + "\n" + " " * level + "]"
    return json.dumps(obj, default=_json_default, allow_nan=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"refusing to write non-finite {value!r} to profiles JSON")
        return value
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# -- loading: every field checked, so the solver may trust a Profiles read from a file -------

_FIX = ("refit with 'capacity fit --out profiles.json', or correct the field by hand (units "
        "in capacity/_columns.py)")
_FAMILY_PARAMS: Mapping[str, tuple[str, ...]] = {
    "normal": ("loc", "scale"),
    "lognormal": ("s", "scale"),
    "gamma": ("a", "scale"),
    "weibull": ("c", "scale"),
}
#: relative slack of the "quantiles are ordered" check (floating-point interpolation)
_ORDER_RTOL = 1e-9
#: no reading in a profile's units (cores, bytes, bytes per second, operations per second,
#: counts) comes near this; past it the squares a spread is made of overflow a float (a std
#: of 1.3e154 crashed a plan with an OverflowError): such a value is a damaged file
_MAX_READING = 1e150
#: the shortest step of a demand trace, seconds: a sampling interval of a millisecond is
#: already far below any collector's (a step of 2e-313 s made the horizon's step count inf)
_MIN_TRACE_STEP_S = 1e-3
#: the smallest CPU limit a kernel enforces: a 1 ms quota per 1 s period (Kubernetes' 1m)
_MIN_CPU_LIMIT_CORES = 1e-3


def _load_fit(ck: Fields, d: Mapping[str, Any], path: str) -> FitResult:
    family = ck.text(d, "family", f"{path}.family", choices=(*_FAMILIES, "none"))
    params = ck.mapping(d, "params", f"{path}.params", required=False)
    checked = {k: float(ck.as_number(v, f"{path}.params.{k}") or 0.0) for k, v in params.items()}
    for name in _FAMILY_PARAMS.get(family, ()):
        if name not in checked:
            raise ck.missing(f"{path}.params.{name}", f"a number for family {family!r}")
        if name != "loc" and checked[name] <= 0:
            raise ck.fail(f"{path}.params.{name}", "> 0", checked[name])

    def scores(key: str) -> dict[str, float]:
        m = ck.mapping(d, key, f"{path}.{key}", required=False)
        return {k: float(ck.as_number(v, f"{path}.{key}.{k}") or 0.0) for k, v in m.items()}

    return FitResult(
        family=family, params=checked,
        aic=ck.number(d, "aic", f"{path}.aic", required=False, default=None, nullable=True),
        tail_statistic=ck.number(d, "tail_statistic", f"{path}.tail_statistic",
                                 required=False, default=None, nullable=True, minimum=0),
        tail_threshold=ck.number(d, "tail_threshold", f"{path}.tail_threshold",
                                 required=False, default=None, nullable=True, minimum=0),
        aic_by_family=scores("aic_by_family"), tail_by_family=scores("tail_by_family"),
        reason=ck.text(d, "reason", f"{path}.reason", required=False),
    )


def _load_burst(ck: Fields, d: Mapping[str, Any], path: str) -> BurstProfile:
    def opt(key: str, **kw: Any) -> float | None:
        return ck.number(d, key, f"{path}.{key}", required=False, default=None, nullable=True,
                         **kw)

    return BurstProfile(
        threshold=opt("threshold", minimum=0), n_runs=ck.count(d, "n_runs", f"{path}.n_runs",
                                                              required=False),
        mean_run_s=opt("mean_run_s", minimum=0), p90_run_s=opt("p90_run_s", minimum=0),
        max_run_s=opt("max_run_s", minimum=0),
        lag1_autocorrelation=opt("lag1_autocorrelation", minimum=-1, maximum=1),
    )


def _load_resource(ck: Fields, d: Mapping[str, Any], path: str) -> ResourceProfile:
    def nonneg(key: str) -> float:
        return float(ck.number(d, key, f"{path}.{key}", minimum=0, maximum=_MAX_READING)
                     or 0.0)

    stats_ = {k: nonneg(k) for k in ("mean", "std", "p50", "p90", "p95", "p99", "max", "demand")}
    order = ("p50", "p90", "p95", "p99", "max")
    for lo, hi in pairwise(order):
        if stats_[lo] > stats_[hi] * (1 + _ORDER_RTOL) + 1e-300:
            raise ck.fail(f"{path}.{lo}", f"<= {hi} ({stats_[hi]!r}): quantiles rise with the "
                          "level", stats_[lo])
    if stats_["mean"] > stats_["max"] * (1 + _ORDER_RTOL) + 1e-300:
        raise ck.fail(f"{path}.mean", f"<= max ({stats_['max']!r})", stats_["mean"])
    if stats_["std"] > stats_["max"] * (1 + _ORDER_RTOL) + 1e-300:
        # readings in [0, max] spread at most max / sqrt(2) (two readings, 0 and max)
        raise ck.fail(f"{path}.std", f"<= max ({stats_['max']!r}): readings between 0 and "
                      "max cannot spread wider", stats_["std"])
    quantiles = ck.mapping(d, "quantiles", f"{path}.quantiles", required=False)
    q = {k: float(ck.as_number(v, f"{path}.quantiles.{k}", minimum=0) or 0.0)
         for k, v in quantiles.items()}
    _check_levels(ck, d, q, stats_, path)
    edges = _numbers(ck, d, "histogram_edges", f"{path}.histogram_edges", minimum=0)
    weights = _numbers(ck, d, "histogram_weights", f"{path}.histogram_weights", minimum=0)
    if (edges or weights) and len(edges) != len(weights) + 1:
        raise ck.fail(f"{path}.histogram_edges", f"one more than the {len(weights)} "
                      "histogram_weights", edges, seen=f"{len(edges)} edges")
    if any(b < a for a, b in pairwise(edges)):
        raise ck.fail(f"{path}.histogram_edges", "increasing", list(edges))
    ci: dict[str, tuple[float, float | None]] = {}
    for k, v in ck.mapping(d, "quantile_ci", f"{path}.quantile_ci", required=False).items():
        where = f"{path}.quantile_ci.{k}"
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise ck.fail(where, "a pair [low, high]", v)
        low = float(ck.as_number(v[0], f"{where}[0]") or 0.0)
        high = ck.as_number(v[1], f"{where}[1]", nullable=True)
        if high is not None and _above(low, high):
            raise ck.fail(where, "a pair [low, high] with low <= high", v)
        ci[k] = (low, high)
    fit = ck.mapping(d, "fit", f"{path}.fit", required=False)
    burst = ck.mapping(d, "burst", f"{path}.burst", required=False)
    return ResourceProfile(
        resource=ck.text(d, "resource", f"{path}.resource"),
        count=ck.count(d, "count", f"{path}.count"),
        demand_statistic=ck.text(d, "demand_statistic", f"{path}.demand_statistic"),
        mean=stats_["mean"], std=stats_["std"], p50=stats_["p50"], p90=stats_["p90"],
        p95=stats_["p95"], p99=stats_["p99"], max=stats_["max"], demand=stats_["demand"],
        quantiles=q,
        idle_baseline=float(ck.number(d, "idle_baseline", f"{path}.idle_baseline",
                                      required=False, minimum=0) or 0.0),
        peak_to_mean=ck.number(d, "peak_to_mean", f"{path}.peak_to_mean", required=False,
                               default=None, nullable=True, minimum=0),
        histogram_edges=edges, histogram_weights=weights,
        fit=_load_fit(ck, fit, f"{path}.fit") if fit else FitResult(),
        burst=_load_burst(ck, burst, f"{path}.burst") if burst else BurstProfile(),
        replica_spread=ck.number(d, "replica_spread", f"{path}.replica_spread", required=False,
                                 default=None, nullable=True, minimum=0),
        slow_var=float(ck.number(d, "slow_var", f"{path}.slow_var", required=False,
                                 minimum=0) or 0.0),
        fast_var=float(ck.number(d, "fast_var", f"{path}.fast_var", required=False) or 0.0),
        window_s=float(ck.number(d, "window_s", f"{path}.window_s", required=False,
                                 default=300.0, minimum=0, exclusive=True) or 300.0),
        replica_correlation=ck.number(d, "replica_correlation", f"{path}.replica_correlation",
                                      required=False, default=None, nullable=True,
                                      minimum=-1, maximum=1),
        quantile_ci=ci,
        ci_level=float(ck.number(d, "ci_level", f"{path}.ci_level", required=False,
                                 default=0.95, minimum=0, exclusive=True, maximum=1) or 0.95),
        trace=_numbers(ck, d, "trace", f"{path}.trace", minimum=0),
        trace_interval_s=_trace_step(ck, d, f"{path}.trace_interval_s"),
        replica_trace=_numbers(ck, d, "replica_trace", f"{path}.replica_trace", minimum=0),
        time_of_day_s=float(ck.number(d, "time_of_day_s", f"{path}.time_of_day_s",
                                      required=False, minimum=0) or 0.0),
        daily_levels=_daily_levels(ck, d, f"{path}.daily_levels"),
    )


def _level_of(name: str) -> float | None:
    """The level of a quantile name (``"p99.9"`` -> 0.999, ``"max"`` -> 1), None if not one."""
    if name == "max":
        return 1.0
    try:
        level = float(name[1:]) / 100 if name.startswith("p") else math.nan
    except ValueError:
        return None
    return level if 0 <= level <= 1 else None


def _above(value: float, bound: float) -> bool:
    """``value`` over ``bound`` beyond floating-point slack."""
    return value > bound * (1 + _ORDER_RTOL) + 1e-300


def _check_levels(ck: Fields, d: Mapping[str, Any], q: Mapping[str, float],
                  stats_: Mapping[str, float], path: str) -> None:
    """Every statistic of one series inside its range: ``quantiles`` rising with the level and
    at most ``max``; ``demand`` at most ``max``; ``idle_baseline`` (p5) at most ``p50``; each
    of ``daily_levels`` (a day's mean) at most ``max``. A file edited by hand or corrupted
    broke one of them silently before (daily levels x1e30 planned 0 replicas)."""
    top = stats_["max"]
    named = []
    for k, v in q.items():
        level = _level_of(k)
        if level is None:
            raise ck.fail(f"{path}.quantiles.{k}", "named by its level (p50, p99.9, max)", k,
                          seen=repr(k))
        named.append((level, k, v))
        if _above(v, top):
            raise ck.fail(f"{path}.quantiles.{k}", f"<= max ({top!r}): no quantile is above "
                          "the largest sample", v)
    named.sort(key=lambda t: (t[0], t[1] == "max", t[1]))  # a tie with max: max last
    for (_, lo, v_lo), (_, hi, v_hi) in pairwise(named):
        if _above(v_lo, v_hi):
            raise ck.fail(f"{path}.quantiles.{lo}", f"<= quantiles.{hi} ({v_hi!r}): quantiles "
                          "rise with the level", v_lo)
    if _above(stats_["demand"], top):
        raise ck.fail(f"{path}.demand", f"<= max ({top!r}): the sizing statistic is a level "
                      "of the samples", stats_["demand"])
    idle = d.get("idle_baseline")
    if isinstance(idle, int | float) and not isinstance(idle, bool) and _above(
            float(idle), stats_["p50"]):
        raise ck.fail(f"{path}.idle_baseline", f"<= p50 ({stats_['p50']!r}): it is the 5th "
                      "percentile", idle)
    levels = d.get("daily_levels", [])
    if isinstance(levels, list | tuple):
        for i, x in enumerate(levels):
            if (isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                    and _above(float(x), top)):
                raise ck.fail(f"{path}.daily_levels[{i}]", f"<= max ({top!r}): a day's mean is "
                              "not above the largest sample", x)


def _numbers(ck: Fields, d: Mapping[str, Any], key: str, path: str, *,
             minimum: float | None = None) -> tuple[float, ...]:
    """An optional list of finite numbers (each >= ``minimum``), plain or packed."""
    v = d.get(key, [])
    if not is_packed(v):
        return ck.numbers(d, key, path, minimum=minimum)
    try:
        values = unpack(v)
    except ValueError as exc:
        raise ck.fail(path, f"a packed list of numbers ({exc})", v) from None
    return ck.numbers({key: values}, key, path, minimum=minimum)


def _daily_levels(ck: Fields, d: Mapping[str, Any], path: str) -> tuple[float | None, ...]:
    v = d.get("daily_levels", [])
    if not isinstance(v, list | tuple):
        raise ck.fail(path, "a list of numbers >= 0 or null", v)
    return tuple(ck.as_number(x, f"{path}[{i}]", minimum=0, nullable=True)
                 for i, x in enumerate(v))


def _trace_step(ck: Fields, d: Mapping[str, Any], path: str) -> float:
    """``trace_interval_s``: 0 (no trace) or a step of a millisecond to 100 years."""
    step = float(ck.number(d, "trace_interval_s", path, required=False, minimum=0,
                           maximum=MAX_DURATION_S) or 0.0)
    if 0 < step < _MIN_TRACE_STEP_S:
        raise ck.fail(path, f"0 (no trace) or a step of at least {_MIN_TRACE_STEP_S:g} s",
                      step)
    return step


def _load_service(ck: Fields, d: Mapping[str, Any], path: str) -> ServiceProfile:
    resources = ck.mapping(d, "resources", f"{path}.resources")
    cpu_limit = ck.number(d, "cpu_limit_cores", f"{path}.cpu_limit_cores", required=False,
                          default=None, nullable=True, minimum=_MIN_CPU_LIMIT_CORES,
                          maximum=_MAX_READING)
    memory_limit = ck.number(d, "memory_limit_bytes", f"{path}.memory_limit_bytes",
                             required=False, default=None, nullable=True, minimum=1,
                             maximum=_MAX_READING)
    replicas_seen = ck.count(d, "replicas_seen", f"{path}.replicas_seen")
    n_samples = ck.count(d, "n_samples", f"{path}.n_samples")
    span_s = float(ck.number(d, "span_s", f"{path}.span_s", minimum=0) or 0.0)
    interval_s = float(ck.number(d, "interval_s", f"{path}.interval_s", minimum=0) or 0.0)
    # Kish's count never exceeds the samples; the instants a span holds never exceed every
    # replica's span at the interval (one slack in a million for the JSON round trip)
    slack = 1 + 1e-6
    effective_samples = ck.number(d, "effective_samples", f"{path}.effective_samples",
                                  required=False, default=None, nullable=True, minimum=0)
    if effective_samples is not None and effective_samples > n_samples * slack:
        raise ck.fail(f"{path}.effective_samples", f"<= n_samples ({n_samples}: the "
                      "effective count never exceeds the samples)", effective_samples)
    most = replicas_seen * (span_s / interval_s + 1) if interval_s > 0 else 0.0
    span_instants = ck.number(d, "span_instants", f"{path}.span_instants", required=False,
                              default=None, nullable=True, minimum=0)
    if span_instants is not None and span_instants > most * slack + 1e-9:
        raise ck.fail(f"{path}.span_instants", f"<= {most:.6g}, the instants replicas_seen "
                      f"({replicas_seen}) spans of span_s ({span_s:g} s) hold at interval_s "
                      f"({interval_s:g} s)", span_instants)
    return ServiceProfile(
        service=ck.text(d, "service", f"{path}.service"),
        replicas_seen=replicas_seen,
        n_samples=n_samples,
        span_s=span_s,
        interval_s=interval_s,
        resources={k: _load_resource(ck, ck.as_mapping(v, f"{path}.resources.{k}"),
                                     f"{path}.resources.{k}") for k, v in resources.items()},
        cpu_limit_cores=cpu_limit,
        memory_limit_bytes=None if memory_limit is None else int(memory_limit),
        warnings=ck.texts(d, "warnings", f"{path}.warnings"),
        confidence=ck.text(d, "confidence", f"{path}.confidence", required=False, default="ok",
                           choices=("ok", "low")),
        notes=ck.texts(d, "notes", f"{path}.notes"),
        time_start=ck.text(d, "time_start", f"{path}.time_start", required=False),
        time_end=ck.text(d, "time_end", f"{path}.time_end", required=False),
        effective_samples=effective_samples,
        span_instants=span_instants,
    )


def _load_correlation(ck: Fields, d: Mapping[str, Any]) -> Correlation:
    def nested(key: str) -> dict[str, dict[str, dict[str, float | None]]]:
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        top = ck.mapping(d, key, f"correlation.{key}", required=False)
        for k, v in top.items():
            if _is_matrix(v):
                v = _checked_matrix(ck, v, f"correlation.{key}.{k}")
            rows = ck.as_mapping(v, f"correlation.{key}.{k}")
            out[k] = {}
            for a, row in rows.items():
                cells = ck.as_mapping(row, f"correlation.{key}.{k}.{a}")
                out[k][a] = {b: ck.as_number(c, f"correlation.{key}.{k}.{a}.{b}", minimum=-1,
                                             maximum=1, nullable=True)
                             for b, c in cells.items()}
        return out

    return Correlation(
        between_services=nested("between_services"),
        between_resources=nested("between_resources"),
        interval_s=float(ck.number(d, "interval_s", "correlation.interval_s", required=False,
                                   default=60.0, minimum=0, exclusive=True) or 60.0),
    )


def _checked_matrix(ck: Fields, v: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The rows of a packed correlation matrix, its shape checked (its cells are checked
    as rows are)."""
    names = v["services"]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ck.fail(f"{path}.services", "a list of distinct service names", names)
    m = v["matrix"]
    try:
        cells = unpack(m) if is_packed(m) else list(m)
    except (ValueError, TypeError) as exc:
        raise ck.fail(f"{path}.matrix", f"a packed list of numbers ({exc})", m) from None
    if len(cells) != len(names) ** 2:
        raise ck.fail(f"{path}.matrix", f"{len(names)} x {len(names)} values, row by row",
                      m, seen=f"{len(cells)} values")
    return _rows({"services": names, "matrix": cells})


def _load_profiles(d: Any, file: str) -> Profiles:
    """A :class:`Profiles` from parsed JSON, every field checked (:class:`InvalidFile`)."""
    ck = Fields(file, _FIX)
    if not isinstance(d, Mapping):
        raise ck.fail("", "a JSON object with kind 'capacity.profiles'", d)
    version = d.get("schema_version")
    readable = (isinstance(version, int) and not isinstance(version, bool)
                and version in READABLE_SCHEMA_VERSIONS)
    if d.get("kind") != "capacity.profiles" or not readable:
        newer = isinstance(version, int) and version > PROFILES_SCHEMA_VERSION
        raise ProfileVersionError(
            f"profiles schema version {version!r} (kind {d.get('kind')!r}) of {file} is not the "
            f"version {PROFILES_SCHEMA_VERSION} this release writes, nor one it reads "
            f"({sorted(READABLE_SCHEMA_VERSIONS)}): "
            + ("it was written by a newer capacity: upgrade capacity, or refit with this one"
               if newer else "refit with 'capacity fit', or use the capacity release that "
               "wrote the file")
        )
    services = ck.mapping(d, "services", "services")
    out = {k: _load_service(ck, ck.as_mapping(v, f"services.{k}"), f"services.{k}")
           for k, v in services.items()}
    for k, sp in out.items():
        if sp.service != k:  # plans, reports and --running name a service by its key
            raise ck.fail(f"services.{k}.service", f"the key it is filed under ({k!r})",
                          sp.service)
    return Profiles(
        services=out,
        source=ck.text(d, "source", "source", required=False),
        created_at=ck.text(d, "created_at", "created_at", required=False),
        meta=dict(ck.mapping(d, "meta", "meta", required=False)),
        correlation=_load_correlation(ck, ck.mapping(d, "correlation", "correlation",
                                                     required=False)),
    )
