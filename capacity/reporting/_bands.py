"""Total demand of N replicas as a distribution: the median and the ``1 - epsilon`` quantile.

A plan carries, per resource, the safe count and the total demand at it; a chart of demand
against count needs the whole curve. When a :class:`~capacity.solver.ResourcePlan` carries one
(a ``demand_curve`` field of ``[[N, median, upper], ...]``), it is used as is. Otherwise the
curve is recomputed here with the solver's own model of one replica
(:func:`capacity.solver._demand.replica_demand`): by the same block-bootstrap simulator the
empirical risk model uses where the profile has a trace, else by the normal approximation
``N*mu + z*sqrt(N*var + N*(N-1)*cov)``. The band's ``source`` says which, and the chart says it
in its legend: a drawing aid, not a second plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from ..model._profile import Profiles
from ..solver._demand import Simulator, replica_demand
from ..solver._plan import Plan

__all__ = ["DRAWING_DRAWS", "DemandBand", "count_grid", "demand_bands"]

#: Monte Carlo draws behind a drawn band (the plan's own P(overload) uses its own count)
DRAWING_DRAWS = 20_000
#: points per curve
_POINTS = 40


@dataclass(frozen=True)
class DemandBand:
    """Total demand of ``counts`` replicas of one service for one resource (column unit).

    ``median`` and ``upper`` (the ``1 - epsilon`` quantile) are the replicas' demand only,
    without reserve or other containers; ``source`` names how they were computed.
    """

    resource: str
    counts: tuple[int, ...]
    median: tuple[float, ...]
    upper: tuple[float, ...]
    epsilon: float
    source: str


def count_grid(n_max: int) -> np.ndarray:
    """Up to 40 integer counts from 0 to ``n_max`` inclusive."""
    return np.unique(np.linspace(0, max(n_max, 1), num=_POINTS).round().astype(int))


def _from_plan(resource: str, curve: Any, epsilon: float) -> DemandBand:
    rows = [(int(r[0]), float(r[1]), float(r[2])) for r in curve]
    return DemandBand(
        resource, tuple(r[0] for r in rows), tuple(r[1] for r in rows),
        tuple(r[2] for r in rows), epsilon, "the plan's demand curve",
    )


def demand_bands(
    plan: Plan,
    profiles: Profiles | None,
    *,
    n_max: int | Mapping[str, int],
    resources: Sequence[str] | None = None,
    seed: int = 0,
) -> Mapping[str, DemandBand]:
    """Per planned resource of ``plan``, the band of total demand for N = 0 .. ``n_max``
    (one count for all resources, or one per resource).

    Resources without a safe count, or (without a curve in the plan) without a profile, are
    left out: the chart then draws only what the plan itself holds.
    """
    out: dict[str, DemandBand] = {}
    sp = profiles.services.get(plan.service) if profiles is not None else None
    for r, rp in plan.per_resource.items():
        if rp.safe_count is None or (resources is not None and r not in resources):
            continue
        eps = float(rp.epsilon if rp.epsilon is not None else plan.epsilon)
        curve = getattr(rp, "demand_curve", None)
        if curve:
            out[r] = _from_plan(r, curve, eps)
            continue
        if sp is None:
            continue
        demand = replica_demand(sp, r)
        if demand is None:
            continue
        counts = count_grid(n_max if isinstance(n_max, int) else n_max[r])
        use_sim = demand.has_trace and "empirical" in (plan.risk_model or "empirical")
        if use_sim:
            sim = Simulator(demand, n_draws=DRAWING_DRAWS, rng=np.random.default_rng(seed))
            totals = [sim.total(int(n)) for n in counts]
            median = [float(np.median(t)) for t in totals]
            upper = [float(np.quantile(t, 1.0 - eps)) for t in totals]
            source = "block bootstrap of the recorded trace (empirical)"
        else:
            z = -NormalDist().inv_cdf(eps)  # norm.isf(eps), without importing scipy.stats
            n = counts.astype(float)
            sd = np.sqrt(np.maximum(n * demand.var + n * (n - 1) * demand.cov, 0.0))
            med = n * demand.mean
            up = med + z * sd
            if demand.limit is not None:
                med, up = np.minimum(med, n * demand.limit), np.minimum(up, n * demand.limit)
            median, upper = [float(v) for v in med], [float(v) for v in up]
            source = "normal approximation (mean, variance, replica covariance)"
        if not all(math.isfinite(v) for v in (*median, *upper)):
            continue
        out[r] = DemandBand(r, tuple(int(n) for n in counts), tuple(median), tuple(upper),
                            eps, source)
    return out
