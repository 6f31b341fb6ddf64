"""Profiles built from known numbers, for tests, doctests and benchmarks of the solver.

They bypass the fitting model on purpose: a closed-form test needs exactly the mean, variance
and covariance it states. Fields follow :class:`capacity.model.ResourceProfile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..model._profile import Profiles, ResourceProfile, ServiceProfile

__all__ = [
    "constant_profiles",
    "normal_profiles",
    "normal_samples",
    "profiles_of",
    "resource_profile",
    "service_profile",
]

_LEVELS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999, "max": 1.0}


def resource_profile(
    resource: str,
    samples: Any,
    *,
    interval_s: float = 1.0,
    slow_var: float | None = None,
    fast_var: float | None = None,
    window_s: float = 300.0,
    replica_correlation: float | None = None,
    demand_statistic: str = "p95",
    trace: bool = True,
) -> ResourceProfile:
    """A profile of one replica from its samples (the trace is the samples themselves).

    ``slow_var`` and ``fast_var`` default to the variance split of a centred moving average
    over ``window_s``.
    """
    x = np.asarray(samples, dtype=float)
    q = {k: float(np.quantile(x, lvl)) for k, lvl in _LEVELS.items()}
    var = float(x.var(ddof=1)) if x.size > 1 else 0.0
    if slow_var is None or fast_var is None:
        from ._demand import _moving_average

        slow = _moving_average(x, max(1, round(window_s / interval_s)))
        slow_var = float(slow.var()) if slow_var is None else slow_var
        fast_var = float((x - slow).var()) if fast_var is None else fast_var
    return ResourceProfile(
        resource=resource,
        count=int(x.size),
        mean=float(x.mean()),
        std=var**0.5,
        p50=q["p50"],
        p90=q["p90"],
        p95=q["p95"],
        p99=q["p99"],
        max=q["max"],
        demand=q[demand_statistic],
        demand_statistic=demand_statistic,
        quantiles=q,
        slow_var=slow_var,
        fast_var=fast_var,
        window_s=window_s,
        replica_correlation=replica_correlation,
        trace=tuple(float(v) for v in x) if trace else (),
        trace_interval_s=interval_s if trace else 0.0,
    )


def service_profile(
    service: str,
    resources: Mapping[str, ResourceProfile],
    *,
    replicas_seen: int = 1,
    interval_s: float = 1.0,
    cpu_limit_cores: float | None = None,
    memory_limit_bytes: int | None = None,
    confidence: str = "ok",
    warnings: tuple[str, ...] = (),
) -> ServiceProfile:
    n = max((rp.count for rp in resources.values()), default=0)
    return ServiceProfile(
        service=service,
        replicas_seen=replicas_seen,
        n_samples=n,
        span_s=n * interval_s,
        interval_s=interval_s,
        resources=dict(resources),
        cpu_limit_cores=cpu_limit_cores,
        memory_limit_bytes=memory_limit_bytes,
        confidence=confidence,
        warnings=warnings,
    )


def profiles_of(*services: ServiceProfile) -> Profiles:
    return Profiles(services={s.service: s for s in services}, source="synthetic")


def constant_profiles(demand: Mapping[str, float], *, service: str = "svc",
                      n: int = 200) -> Profiles:
    """One service whose every sample of each resource equals ``demand[resource]``."""
    return profiles_of(
        service_profile(
            service,
            {r: resource_profile(r, np.full(n, float(v))) for r, v in demand.items()},
        )
    )


def normal_samples(mu: float, sd: float, n: int = 20_000, *, seed: int = 7) -> np.ndarray:
    """Exact normal quantiles in a shuffled order: sample quantiles match the law's."""
    from scipy import stats

    x = mu + sd * stats.norm.ppf((np.arange(n) + 0.5) / n)
    return np.random.default_rng(seed).permutation(x)


def normal_profiles(
    mu: float,
    sd: float,
    *,
    rho: float | None = None,
    slow_var: float = 0.0,
    replicas: int = 1,
    memory: tuple[float, float] | None = None,
    service: str = "svc",
    **sp_kwargs: Any,
) -> Profiles:
    """One service with normal CPU demand (and memory when given): ``slow_var`` of the
    variance shared between replicas when one was recorded, ``rho`` when several were."""
    from .._columns import CPU, MEMORY

    x = normal_samples(mu, sd)
    res = {CPU: resource_profile(CPU, x, slow_var=slow_var, fast_var=float(x.var()) - slow_var,
                                 replica_correlation=rho)}
    if memory is not None:
        m = normal_samples(*memory)
        res[MEMORY] = resource_profile(MEMORY, m, slow_var=0.0, fast_var=float(m.var()),
                                       replica_correlation=rho)
    return profiles_of(service_profile(service, res, replicas_seen=replicas, **sp_kwargs))
