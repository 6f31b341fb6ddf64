"""Mixes of services on one machine, and fleets of machines.

- :func:`more_of`: given the counts running now, how many more of service X fit.
- :func:`ratio`: the largest multiple of a wanted ratio (3 web : 1 worker : 1 cache) that fits.
- :func:`weighted`: maximise a weighted count under every resource constraint with
  :func:`scipy.optimize.milp`, then check the answer by simulation.
- :func:`size_fleet`: hosts of one machine type for M replicas (or a mix), plus k spare.

A mix fits when, for every resource with a known capacity, the method's bound on the total
demand of all replicas (the ``(1 - epsilon)`` quantile for the pooled methods) stays within
capacity minus reserve minus ``occupied``. For the pooled methods, services add up with
their correlation: ``Var = sum_s (n_s var_s + n_s (n_s - 1) cov_s)
+ sum_{s != t} n_s n_t rho_st sd_s sd_t``, with ``rho_st`` from ``profiles.correlation``
(time-aligned one-minute means), or ``unknown_correlation`` where not measured (stated).
The empirical method draws every service at the same relative position of its trace (traces of
one recording are aligned), so measured co-movement between services is kept.

What a single-service plan applies per replica
----------------------------------------------
Every replica of every service carries the machine's host cost per container
(``Machine.host_cost``: the shim and kernel memory and CPU outside its cgroup), added to its
demand by :func:`capacity.solver._demand.with_host_cost` as :func:`capacity.solver.plan`
adds it (outside the demand the factor below scales, as there: the host cost does not
drift). The machine's structural
count limits (``Machine.limits``: PIDs, open files, addresses in a network) are count
constraints shared by every container of the mix: ``sum_s n_s d_s`` slots (``d_s`` per
replica of service ``s``, :func:`capacity.solver._structural.structural_plan`) within what
is left on the host; the replicas :func:`more_of` is told run now are inside the count in
use, as a plan's ``running``. Memory and disk space are planned over ``horizon_s`` (default
300 s) with the same path length a plan takes (:func:`capacity.solver._plan.horizon_steps_of`):
with the empirical method, each service's maximum over the horizon is summed per draw, an
upper bound of the maximum of the sum (the safe side; exact for one service). So a mix of one
service gives its plan's count on a machine with host cost and limits, over the horizon.

A period ahead (issue 13)
-------------------------
Each service's demand of each resource is planned at the factor its single-service plan
takes (:func:`capacity.solver._plan.demand_factor`: drift carried over ``valid_for_s``, or the
stated x1.10 allowance for a history under two days' worth, times the widening for a
sampling fault), for every method but ``limits`` (a declared limit caps demand whatever its
drift). The factor scales that service's own demand, not the host cost per container
(:func:`capacity.solver._demand.factor_figure`): its draws (empirical), its mean and spread
(gaussian) or its per-replica figure (peak, quantile); where every service in the count declares a
limit, the count that fits at the limits fits whatever the drift, as in a single-service
plan. So a mix of one service gives the count :func:`capacity.solver.plan` gives it (with
the same method, draws aside). The factors, why, and the margin each took are in the
assumptions and in ``demand_factors`` of the JSON. A service whose history missed the same
hours of the day on most days is refused (no count, the hours and the flag named) unless
``accept_unseen_hours``, as a single-service plan is.

How :func:`weighted` linearises the chance constraint
-----------------------------------------------------
The gaussian constraint ``g(n) = mu.n + z sqrt(n'An + b'n) <= U`` is not linear. It is
replaced by tangent cuts ``g(n0) + grad g(n0).(n - n0) <= U``, added at each candidate ``n0``
the MILP returns that violates ``g`` (Kelley's cutting-plane method), starting from the mean
constraint ``mu.n <= U``. Candidates are checked against the exact ``g``, so the answer always
satisfies it; where ``g`` is concave in some direction (independent replicas pool as
``sqrt(n)``) a cut may also remove feasible points, so the answer is feasible but may be a
little below the optimum. With ``method="empirical"`` the gaussian answer is then simulated; a
resource whose simulated P(overload) exceeds its epsilon gets its gaussian epsilon halved and
the MILP is solved again (at most :data:`MAX_TIGHTENINGS` times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from scipy import special

from .._errors import InvalidParameter
from .._settings import DEFAULTS, Settings, whole_counts
from .._units import resource_name
from ..model._profile import Profiles
from ._demand import (
    child_generator,
    clopper_pearson,
    factor_figure,
    mix_exceeds,
    mix_quantile,
    mix_totals,
    replica_demand,
    with_host_cost,
)
from ._machine import Machine, machine_lines
from ._plan import (
    _FIT_RTOL,
    _SPEC_EXAMPLE,
    METHODS,
    PORT_CONFLICT,
    REQUIRED,
    DemandFactor,
    ResourceModel,
    ResourcePlan,
    _bisect_last,
    _check_epsilon,
    _largest,
    _resolve_epsilon,
    default_n_draws,
    demand_factor,
    drift_note,
    horizon_steps_of,
    host_share_of,
    margin_text,
    pick_service,
    unseen_hours_verdict,
    widening_what,
)
from ._structural import in_use_beside, stale_in_use_note, structural_plan

__all__ = [
    "CURVE_POINTS",
    "MAX_TIGHTENINGS",
    "FleetPlan",
    "MixModel",
    "MixPlan",
    "MixResource",
    "more_of",
    "ratio",
    "size_fleet",
    "weighted",
]

MAX_TIGHTENINGS = 6
_MAX_CUTS = 200
#: most points of :attr:`FleetPlan.hosts_curve`
CURVE_POINTS = 401


@dataclass(frozen=True)
class MixResource:
    """One resource of a mix, in the resource column's unit.

    ``demand`` is the method's bound on the total of all replicas of the mix (without reserve
    and ``occupied``); ``p_overload`` the risk model's P(reserve + occupied + total > capacity).
    """

    resource: str
    capacity: float
    reserve: float
    occupied: float
    epsilon: float
    demand: float | None
    mean_demand: float
    utilisation: float | None
    p_overload: float | None
    p_overload_interval: tuple[float, float] | None
    fits: bool
    #: the host's cost of one container outside its cgroup, inside every replica's demand
    #: (as a plan's ``ResourcePlan.host_cost``); 0 for a count limit
    host_cost: float = 0.0
    #: ``"count"`` for a structural count limit (PIDs, open files, addresses: a slot is
    #: taken or not, so P(overload) is 0 or 1), else ``""``
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.p_overload_interval is not None:
            d["p_overload_interval"] = list(self.p_overload_interval)
        return d


#: the reason of a mix that no resource limits (every service's demand is 0 where it counts)
UNBOUNDED = "unbounded: no resource limits it"


@dataclass(frozen=True)
class MixPlan:
    """Counts of several services on one machine, and what they use.

    ``kind`` is ``"more"``, ``"ratio"``, ``"weighted"`` or ``"stack"``; ``multiple`` is the
    multiple of the ratio (or the number of stack copies), ``more`` the count added of the
    service asked about. ``safe`` is False when no count could be computed (``reason``);
    ``unknown`` then says which required resource (CPU, memory) is unknown while it could bind.
    """

    kind: str
    counts: Mapping[str, int]
    machine: Machine
    method: str
    epsilon: float
    binding_resource: str | None
    per_resource: Mapping[str, MixResource]
    multiple: int | None = None
    more: int | None = None
    reason: str = ""
    assumptions: tuple[str, ...] = ()
    check: Mapping[str, Any] = field(default_factory=dict)
    unprofiled: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    valid_for_s: float | None = None
    demand_factors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: memory and disk space over this horizon, seconds (0 or None: at an instant)
    horizon_s: float | None = None

    @property
    def safe(self) -> bool:
        return not self.reason

    @property
    def unbounded(self) -> bool:
        """No resource limits the counts: undefined, not over capacity."""
        return self.reason == UNBOUNDED

    def to_dict(self) -> dict[str, Any]:
        from ._plan import PLAN_SCHEMA_VERSION

        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "kind": "capacity.mix",
            "mix": self.kind,
            "counts": dict(self.counts),
            "machine": self.machine.to_dict(),
            "method": self.method,
            "epsilon": self.epsilon,
            "binding_resource": self.binding_resource,
            "multiple": self.multiple,
            "more": self.more,
            "reason": self.reason,
            "per_resource": {k: v.to_dict() for k, v in self.per_resource.items()},
            "assumptions": list(self.assumptions),
            "check": dict(self.check),
            "unprofiled": list(self.unprofiled),
            "unknown": list(self.unknown),
            "refused": list(self.refused),
            "valid_for_s": self.valid_for_s,
            "demand_factors": {s: dict(v) for s, v in self.demand_factors.items()},
            "horizon_s": self.horizon_s,
        }


class MixModel:
    """Every resource constraint of a set of services on one machine.

    Parameters mirror :func:`capacity.solver.plan`. ``valid_for_s`` and
    ``accept_unseen_hours`` as there: each service's demand is planned at the factor its
    single-service plan takes (the module docstring); ``refused`` names the services a plan
    refuses (hours of the day not seen, a sampling fault that left no level), and the mix
    then has no count. ``as_declared``: services planned at a constant declared demand
    (Compose services without a profile, by their limits): no drift, no widening.
    ``horizon_s``: memory and disk space over this many seconds, as in a plan (0 or None:
    at an instant). ``running``: replicas per service running now on the machine, inside
    its structural counts in use (``StructuralLimit.used``); taken out of them, as a plan's
    ``running`` is (default none).
    """

    def __init__(
        self,
        profiles: Profiles,
        machine: Machine,
        services: Sequence[str],
        *,
        epsilon: float = DEFAULTS.epsilon,
        method: str = DEFAULTS.method,
        incompressible_epsilon: float | None = None,
        occupied: Mapping[str, float] | None = None,
        unknown_correlation: float = 0.0,
        independent_offsets: bool = False,
        quantile_level: float | None = None,
        n_draws: int | None = None,
        rng: np.random.Generator | None = None,
        valid_for_s: float | None = DEFAULTS.valid_for_s,
        accept_unseen_hours: bool = DEFAULTS.accept_unseen_hours,
        as_declared: Sequence[str] = (),
        horizon_s: float | None = DEFAULTS.horizon_s,
        running: Mapping[str, int] | None = None,
    ) -> None:
        self.epsilon = _check_epsilon(epsilon)
        if method not in METHODS:
            raise InvalidParameter("method", "mix", f"one of {METHODS}", method)
        if not -1 <= unknown_correlation <= 1:
            raise InvalidParameter("unknown_correlation", "mix", "in [-1, 1]",
                                   unknown_correlation)
        self.method = method
        self.machine = machine
        self.profiles = profiles
        self.services = [pick_service(profiles, s).service for s in services]
        checked = Settings(epsilon=self.epsilon, incompressible_epsilon=incompressible_epsilon,
                           valid_for_s=valid_for_s, accept_unseen_hours=accept_unseen_hours,
                           horizon_s=horizon_s)
        self.incompressible_epsilon = checked.memory_epsilon
        self.valid_for_s = checked.valid_for_s
        self.horizon_s = checked.horizon_s
        self._horizon_notes: set[str] = set()
        self.as_declared = tuple(s for s in self.services if s in set(as_declared))
        #: per service and resource, the factor its single-service plan takes
        self.factors: dict[str, dict[str, DemandFactor]] = {}
        #: per resource and service, the factor applied to its demand (absent: 1)
        self.scale: dict[str, dict[str, float]] = {}
        refused: list[str] = []
        self._accepted: list[str] = []
        for s in self.services:
            accepted, refusal = unseen_hours_verdict(profiles[s], checked.accept_unseen_hours)
            refused += [f"{s}: {refusal}"] if refusal else []
            self._accepted += [f"{s}: {accepted}"] if accepted else []
        self.occupied = dict(occupied or {})
        self.unknown_correlation = unknown_correlation
        rng = rng if rng is not None else np.random.default_rng(0)
        self.resources: list[str] = []
        self.eps: dict[str, float] = {}
        self.models: dict[str, dict[str, ResourceModel]] = {}
        self._host_of: dict[str, dict[str, float]] = {}  # _host's, per resource
        self._limits_of: dict[str, dict[str, float | None]] = {}  # _limits', per resource
        self.usable: dict[str, float] = {}
        self.unknown_pairs: set[tuple[str, str]] = set()
        all_r = sorted(machine.capacity)
        eps_min = min(_resolve_epsilon(r, epsilon, incompressible_epsilon, None) for r in all_r)
        self.n_draws = int(n_draws or default_n_draws(eps_min))
        for r in all_r:
            eps = _resolve_epsilon(r, epsilon, incompressible_epsilon, None)
            cap = machine.capacity[r]
            reserve = machine.reserved(r)
            machine.usable(r, "mix")  # a capacity of 0, or a reserve taking it all: said which
            u = child_generator(rng, f"u\x00{r}").random(self.n_draws)
            models = {}
            scale: dict[str, float] = {}
            for s in self.services:
                d = replica_demand(profiles[s], r, independent_offsets=independent_offsets)
                if d is not None:  # the host's cost of one container outside its cgroup
                    d = with_host_cost(d, float(machine.host_cost.get(r, 0.0)))
                if d is None or (d.mean <= 0 and d.var <= 0):
                    continue
                steps, note = horizon_steps_of(d, self.horizon_s, method)
                if note:
                    self._horizon_notes.add(f"{s} {r}: {note}")
                models[s] = ResourceModel(d, epsilon=eps, rng=rng, n_draws=self.n_draws,
                                          quantile_level=quantile_level, u=u,
                                          horizon_steps=steps)
                if s in self.as_declared:
                    continue
                df = demand_factor(profiles[s], r, d.mean - d.host_cost,
                                   valid_for_s=self.valid_for_s)
                self.factors.setdefault(s, {})[r] = df
                if math.isnan(df.factor):  # a fault left no level: as a plan, no count
                    refused.append(f"{s} {r}: {df.widening['sampling']['reason']}")
                elif method != "limits" and df.factor != 1.0:
                    scale[s] = df.factor
            if models:
                self.resources.append(r)
                self.models[r] = models
                self.scale[r] = scale
                self.eps[r] = eps
                self.usable[r] = cap - reserve - float(self.occupied.get(r, 0.0))
        self.unknown = _unknown_required(self.profiles, machine, self.services)
        self.refused = tuple(refused)
        #: structural count limits (PIDs, open files, addresses) as a single-service plan
        #: counts them (:func:`capacity.solver._structural.structural_plan`), shared by
        #: every container of the mix: per limit, the slots of one replica of each service
        #: that takes one, and the plan of the first such service (capacity, reserve, the
        #: slots in use beside the mix's ``running`` replicas)
        self.count_limits: dict[str, tuple[dict[str, float], ResourcePlan]] = {}
        self._stale: list[str] = []
        running = dict(running or {})
        for lim in machine.limits:
            plans = {s: structural_plan(lim, s, headroom=machine.headroom)
                     for s in self.services}
            per = {s: float(p.demand_per_replica or 0.0) for s, p in plans.items()
                   if p is not None}
            if not per:
                continue  # no replica of the mix takes a slot of it
            first = next(p for p in plans.values() if p is not None)
            # the replicas of the mix running now are inside the host's count in use (and
            # take their slots where it says less: the larger reading, as a plan's)
            mine = {s: int(running.get(s, 0)) for s in per}
            others = in_use_beside(lim, mine)
            stale = stale_in_use_note(lim, mine)
            if stale:
                self._stale.append(stale)
            self.count_limits[lim.resource] = (per, replace(first, occupied=others))

    def plan_fields(self) -> dict[str, Any]:
        """The fields every :class:`MixPlan` and :class:`FleetPlan` of this model carries:
        ``refused``, ``valid_for_s``, ``horizon_s`` and ``demand_factors`` (per service and
        resource, the :meth:`DemandFactor.to_dict` of what its demand was planned at)."""
        return {"refused": self.refused, "valid_for_s": self.valid_for_s,
                "horizon_s": self.horizon_s,
                "demand_factors": {s: {r: df.to_dict() for r, df in by_r.items()}
                                   for s, by_r in self.factors.items()}}

    # -- per resource -------------------------------------------------------------------

    def _factor(self, r: str, s: str, per_replica: float) -> float:
        """Service ``s``'s demand factor for ``r`` applied to the own part of a per-replica
        figure (``per_replica`` less the host cost): never past its declared limit (a
        replica cannot use more, whatever the drift), unless the recorded figure already is."""
        f = self.scale.get(r, {}).get(s, 1.0)
        lim = self.models[r][s].demand.limit if s in self.models[r] else None
        h = self._host(r).get(s, 0.0)
        if f == 1.0 or not lim or not per_replica - h > 0:
            return f
        return min(f, max(1.0, (float(lim) - h) / (per_replica - h)))

    def _ahead(self, r: str, s: str, per_replica: float) -> float:
        """A per-replica figure of service ``s`` (host cost included) for the period ahead:
        its own part times :meth:`_factor`, the host cost per container unscaled."""
        if not per_replica > 0:
            return per_replica
        return float(factor_figure(per_replica, self._factor(r, s, per_replica),
                                   self._host(r).get(s, 0.0)))

    def _host(self, r: str) -> dict[str, float]:
        """Per service, the host cost per container inside its demand of ``r`` (made once:
        the models are fixed after ``__init__``; read-only)."""
        cached = self._host_of.get(r)
        if cached is None:
            cached = self._host_of[r] = {s: m.demand.host_cost
                                         for s, m in self.models.get(r, {}).items()}
        return cached

    def _limits(self, r: str) -> dict[str, float | None]:
        """Per service, its declared limit per replica for ``r`` (made once; read-only)."""
        cached = self._limits_of.get(r)
        if cached is None:
            cached = self._limits_of[r] = {s: m.demand.limit
                                           for s, m in self.models[r].items()}
        return cached

    def _rho(self, r: str, a: str, b: str) -> float:
        corr = getattr(self.profiles, "correlation", None)
        rho = corr.services(r, a, b) if corr is not None else None
        if rho is None:
            self.unknown_pairs.add((min(a, b), max(a, b)))
            return self.unknown_correlation
        return float(rho)

    def gaussian_parts(self, r: str, eps: float | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray, float]:
        """(mu, A, b, z) with Var(n) = n'An + b'n over ``self.services`` order."""
        models = self.models[r]
        k = len(self.services)
        mu, b = np.zeros(k), np.zeros(k)
        a = np.zeros((k, k))
        for i, s in enumerate(self.services):
            if s not in models:
                continue
            d = models[s].demand
            mu[i], b[i], a[i, i] = d.mean, max(d.var - d.cov, 0.0), d.cov
            for j, t in enumerate(self.services):
                if j != i and t in models:
                    a[i, j] = self._rho(r, s, t) * d.sd * models[t].demand.sd
        if self.scale.get(r):  # demand for the period ahead: own mean and spread times
            # each factor (the host cost does not drift), the mean never past the limit
            f = np.array([self._factor(r, s, float(mu[i])) if s in models else 1.0
                          for i, s in enumerate(self.services)])
            h = np.array([self._host(r).get(s, 0.0) for s in self.services])
            mu, b, a = factor_figure(mu, f, h), b * f * f, a * np.outer(f, f)
        z = float(-special.ndtri(eps if eps is not None else self.eps[r]))
        return mu, a, b, z

    def bound(self, r: str, counts: Mapping[str, int], method: str | None = None) -> float | None:
        """The method's bound on the total demand of ``counts`` for resource ``r``."""
        method = method or self.method
        models = self.models[r]
        n = {s: int(c) for s, c in counts.items() if c > 0 and s in models}
        if not n:
            return 0.0
        scale = self.scale.get(r, {}) if method != "limits" else {}
        if method in ("limits", "peak", "quantile"):
            total = 0.0
            for s, c in n.items():
                per, _ = models[s].per_replica(method)
                if per is None:
                    return None
                total += c * (self._ahead(r, s, per) if scale else per)
        elif self._empirical(r, n, method):
            limits = self._limits(r)
            if len(n) == 1 and not (scale and limits.get(next(iter(n)))):
                # one service, no limit to stop its drifted draws: its own quantile (over a
                # horizon from bounds of the paths, no whole path summed for a large count)
                (s, c), = n.items()
                sim = models[s].sim
                assert sim is not None  # checked above
                return self._capped(r, n, scale, float(factor_figure(
                    sim.quantile(c, 1 - self.eps[r]), scale.get(s, 1.0),
                    self._host(r).get(s, 0.0), c)), method)
            total = mix_quantile({s: models[s].sim for s in n},  # type: ignore[misc]
                                 n, self.n_draws, 1 - self.eps[r], scale, limits,
                                 self._host(r))
        else:
            vec = np.array([n.get(s, 0) for s in self.services], dtype=float)
            mu, a, b, z = self.gaussian_parts(r)
            total = float(mu @ vec + z * math.sqrt(max(vec @ a @ vec + b @ vec, 0.0)))
        return self._capped(r, n, scale, total, method)

    def _empirical(self, r: str, n: Mapping[str, int], method: str) -> bool:
        # the empirical method's draws: every service of n has its simulator
        models = self.models[r]
        return method == "empirical" and all(m.sim is not None for s, m in models.items()
                                             if s in n)

    def _over(self, r: str, counts: Mapping[str, int], threshold: float) -> bool:
        """``bound(r, counts) > threshold`` (a bound of None: False), the same answer;
        for a mix by the empirical method without its quantile where the draws' bounds
        settle it (:func:`~capacity.solver._demand.mix_exceeds`: a size search asks this
        hundreds of times, the quantile's value is only shown once)."""
        models = self.models[r]
        n = {s: int(c) for s, c in counts.items() if c > 0 and s in models}
        method = self.method
        scale = self.scale.get(r, {})
        limits = self._limits(r)
        if (not n or not self._empirical(r, n, method)
                or (len(n) == 1 and not (scale and limits.get(next(iter(n)))))):
            total = self.bound(r, counts)
            return total is not None and total > threshold
        # bound(): min(quantile, the total at the limits) when capped (_capped)
        if any(scale.get(s, 1.0) > 1 for s in n) and not self._at_limits(r, n) > threshold:
            return False
        return mix_exceeds({s: models[s].sim for s in n},  # type: ignore[misc]
                           n, self.n_draws, 1 - self.eps[r], threshold, scale, limits,
                           self._host(r))

    def _capped(self, r: str, n: Mapping[str, int], scale: Mapping[str, float], total: float,
                method: str) -> float:
        # a replica cannot use more than its declared limit: the gaussian bound never passes
        # them, and replicas that fit at their limits fit whatever the drift (as in a plan)
        if method == "gaussian" or any(scale.get(s, 1.0) > 1 for s in n):
            total = min(total, self._at_limits(r, n))
        return total

    # -- structural count limits --------------------------------------------------------

    def count_total(self, resource: str, counts: Mapping[str, int]) -> float:
        """Slots of the count limit ``resource`` that ``counts`` take (a count)."""
        per, _ = self.count_limits[resource]
        return sum(int(c) * per.get(s, 0.0) for s, c in counts.items() if c > 0)

    def count_usable(self, resource: str) -> float:
        """Slots of ``resource`` left for the mix: capacity less headroom and the others."""
        _, p = self.count_limits[resource]
        return float(p.capacity or 0.0) - p.reserve - p.occupied

    def _count_fits(self, resource: str, total: float) -> bool:
        # as structural_plan rounds a count: n <= usable / d + 1e-9
        per, _ = self.count_limits[resource]
        return total <= self.count_usable(resource) + 1e-9 * max(per.values())

    def _at_limits(self, r: str, n: Mapping[str, int]) -> float:
        """The total of ``n`` replicas at their declared limits (inf: one has none)."""
        limits = self._limits(r)
        if any(limits[s] is None for s in n):
            return math.inf
        return sum(c * float(limits[s] or 0.0) for s, c in n.items())

    def p_overload(
        self, r: str, counts: Mapping[str, int]
    ) -> tuple[float, tuple[float, float] | None]:
        """P(overload) of resource ``r`` by the risk model (empirical where every trace exists)."""
        models = self.models[r]
        n = {s: int(c) for s, c in counts.items() if c > 0 and s in models}
        if not n:
            return 0.0, None
        usable = self.usable[r] * (1 + _FIT_RTOL)
        if (any(self.scale.get(r, {}).get(s, 1.0) > 1 for s in n)
                and self._at_limits(r, n) <= usable):
            # drifted draws may pass a declared limit no replica can pass: at their limits
            # these replicas fit, as a plan's risk says (no overload)
            return 0.0, None
        if all(models[s].demand.has_trace for s in n):
            t = mix_totals({s: models[s].sim for s in n}, n, self.n_draws,  # type: ignore[misc]
                           self.scale.get(r), self._limits(r), self._host(r))
            k = int(np.count_nonzero(t > usable))
            return k / self.n_draws, clopper_pearson(k, self.n_draws)
        vec = np.array([n.get(s, 0) for s in self.services], dtype=float)
        mu, a, b, _ = self.gaussian_parts(r)
        sd = math.sqrt(max(vec @ a @ vec + b @ vec, 0.0))
        mean = float(mu @ vec)
        if sd == 0:
            return float(mean > usable), None
        return float(special.ndtr((mean - usable) / sd)), None

    def fits(self, counts: Mapping[str, int]) -> tuple[bool, str | None]:
        """(every resource within capacity, the first resource that does not)."""
        for r in self.resources:
            if self._over(r, counts, self.usable[r] * (1 + _FIT_RTOL)):
                return False, r
        for lim in self.count_limits:
            if not self._count_fits(lim, self.count_total(lim, counts)):
                return False, lim
        return True, None

    def describe(self, counts: Mapping[str, int], *, check: bool = False) -> dict[str, MixResource]:
        out: dict[str, MixResource] = {}
        for r in self.resources:
            total = self.bound(r, counts)
            cap = self.machine.capacity[r]
            reserve = self.machine.reserved(r)
            occ = float(self.occupied.get(r, 0.0))
            means = {s: m.demand.mean for s, m in self.models[r].items()}
            mean = sum(c * self._ahead(r, s, means[s])
                       for s, c in counts.items() if s in means)
            p, interval = self.p_overload(r, counts) if check else (None, None)
            out[r] = MixResource(
                resource=r, capacity=cap, reserve=reserve, occupied=occ, epsilon=self.eps[r],
                demand=total, mean_demand=mean,
                utilisation=None if total is None else (reserve + occ + total) / cap,
                p_overload=p, p_overload_interval=interval,
                fits=total is None or total <= self.usable[r] * (1 + _FIT_RTOL),
                host_cost=float(self.machine.host_cost.get(r, 0.0)),
            )
        for lim, (_, lp) in self.count_limits.items():
            slots = self.count_total(lim, counts)
            ok = self._count_fits(lim, slots)
            cap_count = float(lp.capacity or 0.0)
            out[lim] = MixResource(
                resource=lim, capacity=cap_count, reserve=lp.reserve, occupied=lp.occupied,
                epsilon=0.0, demand=slots, mean_demand=slots,
                utilisation=((lp.reserve + lp.occupied + slots) / cap_count if cap_count > 0
                             else None),
                p_overload=(0.0 if ok else 1.0) if check else None, p_overload_interval=None,
                fits=ok, method="count")
        return out

    def binding(self, counts: Mapping[str, int], step: Mapping[str, int]) -> str | None:
        """The resource that stops ``counts + step``: of those over, the one most over
        (total against what is usable), so a mix names what a plan of its services names
        (the first over in resource order said CPU where memory binds)."""
        bigger = {s: counts.get(s, 0) + step.get(s, 0) for s in set(counts) | set(step)}
        ok, first = self.fits(bigger)
        if ok:
            return None
        over: list[tuple[float, str]] = []
        for r in self.resources:
            total, usable = self.bound(r, bigger), self.usable[r]
            if total is not None and total > usable * (1 + _FIT_RTOL):
                over.append((total / usable if usable > 0 else math.inf, r))
        for lim in self.count_limits:
            total, usable = self.count_total(lim, bigger), self.count_usable(lim)
            if not self._count_fits(lim, total):
                over.append((total / usable if usable > 0 else math.inf, lim))
        if not over:
            return first
        most = max(x for x, _ in over)
        # a tie (within rounding) goes to the first in resource order, as a plan's does
        return next(r for x, r in over if x >= most * (1 - 1e-9))

    def assumptions(self) -> tuple[str, ...]:
        out = [
            f"method {self.method}; epsilon {self.epsilon:g} compressible, "
            f"{self.incompressible_epsilon:g} memory and disk space",
            "services drawn at the same relative position of their traces (one recording)"
            if self.method == "empirical" else
            "services add up with their measured correlation",
        ]
        if self.unknown_pairs:
            pairs = ", ".join(f"{a}~{b}" for a, b in sorted(self.unknown_pairs))
            out.append(f"correlation not measured, taken as {self.unknown_correlation:g}: {pairs}")
        out += [f"capacity unknown, not planned: {m}" for m in self.machine.missing]
        out += self._host_notes()
        out += self._factor_notes()
        return tuple(out)

    def _host_notes(self) -> list[str]:
        """What a single-service plan applies per replica beside its demand, said: the host
        cost per container, the risk over the horizon, the structural count limits."""
        # the machine's own line (how it was measured); none counted: say so, whatever a
        # note of the machine it came from says
        said = self.machine if self.machine.host_cost else replace(self.machine, notes=())
        cost = next(line for line in machine_lines(said)
                    if line.startswith("host cost per container"))
        out = [cost + ("; added to every replica's demand, as in a single-service plan "
                       "(not scaled by the demand factors below: it does not drift)"
                       if self.machine.host_cost else "")]
        steps = {r: max(m.horizon_steps for m in self.models[r].values())
                 for r in self.resources}
        if any(h > 1 for h in steps.values()):
            over = sorted(r for r, h in steps.items() if h > 1)
            several = len(self.services) > 1
            out.append(
                f"memory and disk space over a {self.horizon_s:g} s horizon ({', '.join(over)})"
                + (": with the empirical method, P(any moment of the horizon over capacity); "
                   "each service's maximum over the horizon summed, an upper bound of the "
                   "maximum of the sum (the safe side; exact for one service)"
                   if self.method == "empirical" and several else
                   ": with the empirical method, P(any moment of the horizon over capacity)"
                   if self.method == "empirical" else
                   f": the {self.method} method does not depend on it"))
        elif self.horizon_s:
            out.append(f"memory and disk space: horizon {self.horizon_s:g} s asked, but no "
                       "trace step shorter than it: risk at an instant")
        else:
            out.append("risk at an instant (horizon 0)")
        out += sorted(self._horizon_notes)
        for lim, (per, lp) in self.count_limits.items():
            out.append(f"count limit {lim}: {self.count_usable(lim):,.0f} slots left of "
                       f"{lp.capacity:,.0f} (in use beside the mix {lp.occupied:,.0f}, "
                       f"headroom {lp.reserve:,.0f}), shared by every container of the mix; "
                       "per replica " + ", ".join(f"{s} {d:g}" for s, d in per.items()))
        out += self._stale
        return out

    def _factor_notes(self) -> list[str]:
        """Per service and resource: the drift, the allowance and the sampling widening its
        demand was planned at, why, and the margin each took (as a plan says them)."""
        days = f"{self.valid_for_s / 86_400:g} d" if self.valid_for_s is not None else None
        out = [(f"demand for {days} ahead: each service's demand is planned at the factor "
                "its single-service plan takes (drift, the allowance for a history under two "
                "days' worth, the sampling-fault widening)" if days else
                "demand as recorded for drift (valid_for_s None); a sampling fault still "
                "widens, as in a single-service plan")
               + ("; the limits method plans at the declared limits, not widened"
                  if self.method == "limits" else "")]
        if self.as_declared:
            out.append(f"planned at a declared constant, no drift or widening: "
                       f"{', '.join(self.as_declared)}")
        out += self._accepted
        for s in self.services:
            for r in self.resources:
                df = self.factors.get(s, {}).get(r)
                if df is None:
                    continue
                label = f"{s} {r}"
                model = self.models.get(r, {}).get(s)
                share = host_share_of(model.demand) if model is not None else 0.0
                if df.drift is not None:
                    out.append(drift_note(label, self.valid_for_s, df.drift, self.method,
                                          share))
                w = df.widening
                if not w or math.isnan(df.factor):
                    continue
                if self.method == "limits":
                    out.append(f"{label}: not widened: the limits method plans at the declared "
                               f"limit (the widening for {widening_what(w)}, "
                               f"x{w['factor']:.3f}, not applied)")
                    continue
                if w["factor"] <= 1.0:
                    out.append(f"{label}: not widened: {w['sampling']['reason']}")
                    continue
                out.append(f"{label}: widened for {widening_what(w)}: demand x{w['factor']:.3f}, "
                           + margin_text(w["factor"], share)
                           + (f"; measured drift x{df.measured:.3f} on top"
                              if df.measured > 1 else "")
                           + f"; demand x{df.factor:.3f} in all")
                if "sampling" in w:
                    out.append(f"{label}: {w['sampling']['reason']}")
        return out


def _plan_of(model: MixModel, kind: str, counts: Mapping[str, int], binding: str | None,
             **extra: Any) -> MixPlan:
    per = model.describe(counts, check=True)
    check = {r: {"p_overload": m.p_overload, "p_overload_interval": m.p_overload_interval,
                 "epsilon": m.epsilon, "ok": m.p_overload is None or m.p_overload <= m.epsilon}
             for r, m in per.items()}
    return MixPlan(kind=kind, counts=dict(counts), machine=model.machine, method=model.method,
                   epsilon=model.epsilon, binding_resource=binding, per_resource=per,
                   assumptions=model.assumptions(), check=check,
                   **{**model.plan_fields(), **extra})


def _unknown_required(profiles: Profiles, machine: Machine,
                      services: Sequence[str]) -> tuple[str, ...]:
    """Why a required resource (CPU, memory) is unknown while it could bind, as the solver's
    :func:`capacity.solver.plan` judges it: the machine gives its capacity and a service was
    never measured on it, or a service was measured and the machine does not give it."""
    out: list[str] = []
    for r in REQUIRED:
        measured = {s: int(getattr(profiles[s].resources.get(r), "count", 0)) > 0
                    for s in services}
        if r in machine.capacity:
            out += [f"{r} unknown: no samples of it for {s}; it could bind, so the count is "
                    "undefined" for s, ok in measured.items() if not ok]
        elif any(measured.values()):
            out.append(f"{r} unknown: its capacity is not known (the machine spec does not "
                       f"give it: add {_SPEC_EXAMPLE[r]}); it could bind, so the count is "
                       "undefined")
    return tuple(out)


def _unknown_mix(model: MixModel, kind: str, counts: Mapping[str, int]) -> MixPlan:
    """No count: a required resource unknown while it could bind, or a service refused."""
    return MixPlan(kind=kind, counts=dict(counts), machine=model.machine, method=model.method,
                   epsilon=model.epsilon, binding_resource=None, per_resource={},
                   reason="; ".join((*model.unknown, *model.refused)),
                   assumptions=model.assumptions(), unknown=model.unknown,
                   **model.plan_fields())


def _port_services(ports: Mapping[str, Sequence[int]] | None) -> set[str]:
    return {s for s, p in (ports or {}).items() if p}


def more_of(
    profiles: Profiles,
    machine: Machine,
    service: str,
    current: Mapping[str, int],
    *,
    ports: Mapping[str, Sequence[int]] | None = None,
    **kwargs: Any,
) -> MixPlan:
    """How many more of ``service`` fit beside ``current`` (counts per service running now).

    Other services' replicas are part of the risk (with their correlation), not a constant.
    """
    current = whole_counts(current, "current", "more_of")
    services = sorted(set(current) | {service})
    service = pick_service(profiles, service).service
    base = {pick_service(profiles, s).service: int(c) for s, c in current.items()}
    # what runs now is inside the host's structural counts in use, as a plan's --running
    model = MixModel(profiles, machine, services, running=base, **kwargs)
    if any(c < 0 for c in base.values()):
        raise InvalidParameter("current", "more_of", "counts >= 0", dict(current))
    if model.unknown or model.refused:
        return _unknown_mix(model, "more", base)
    ok, binding = model.fits(base)
    if not ok:
        binding = model.binding(base, {})
        return _plan_of(model, "more", base, binding, more=0,
                        reason=f"what runs now already exceeds {resource_name(binding)} at "
                               "the stated risk")
    n = _largest(lambda k: model.fits({**base, service: base.get(service, 0) + k})[0])
    if n is None:
        return _plan_of(model, "more", base, None, reason=UNBOUNDED)
    binding = model.binding({**base, service: base.get(service, 0) + n}, {service: 1})
    if service in _port_services(ports) and base.get(service, 0) + n > 1:
        n, binding = max(1 - base.get(service, 0), 0), PORT_CONFLICT
    counts = {**base, service: base.get(service, 0) + n}
    return _plan_of(model, "more", counts, binding, more=n)


def ratio(
    profiles: Profiles,
    machine: Machine,
    wanted: Mapping[str, int],
    *,
    ports: Mapping[str, Sequence[int]] | None = None,
    **kwargs: Any,
) -> MixPlan:
    """The largest multiple k of ``wanted`` (e.g. ``{"web": 3, "worker": 1}``) that fits."""
    wanted = whole_counts(wanted, "ratio", "mix")
    if not wanted or not any(wanted.values()):
        raise InvalidParameter("ratio", "mix", "counts >= 0, not all 0", dict(wanted))
    model = MixModel(profiles, machine, list(wanted), **kwargs)
    unit = {pick_service(profiles, s).service: int(c) for s, c in wanted.items()}
    if model.unknown or model.refused:
        return _unknown_mix(model, "ratio", unit)
    k = _largest(lambda m: model.fits({s: m * c for s, c in unit.items()})[0])
    if k is None:
        return _plan_of(model, "ratio", unit, None, reason=UNBOUNDED)
    binding = model.binding({s: k * c for s, c in unit.items()}, unit)
    if any(unit[s] > 0 for s in _port_services(ports)):
        limit = min(1 // unit[s] for s in _port_services(ports) if unit.get(s, 0) > 0)
        if limit < k:
            k, binding = limit, PORT_CONFLICT
    return _plan_of(model, "ratio", {s: k * c for s, c in unit.items()}, binding, multiple=k)


def weighted(
    profiles: Profiles,
    machine: Machine,
    weights: Mapping[str, float],
    *,
    minimum: Mapping[str, int] | None = None,
    maximum: Mapping[str, int] | None = None,
    ports: Mapping[str, Sequence[int]] | None = None,
    **kwargs: Any,
) -> MixPlan:
    """Maximise ``sum_s weights[s] * n_s`` under every resource constraint (scipy milp).

    See the module docstring for the linearisation. ``minimum``/``maximum`` bound each count
    (e.g. the counts running now as a minimum). The result carries ``check``: per resource the
    simulated (or gaussian, without traces) P(overload) and whether it is within epsilon.
    """
    # the services running now (minimum) are in the mix even without a weight: their
    # replicas use the host too (they were left out: 5647 idle beside 300 mem-holders)
    names = list(dict.fromkeys([*weights, *(minimum or {})]))
    method = kwargs.get("method", DEFAULTS.method)
    canon = {s: pick_service(profiles, s).service for s in names}
    running = {canon[s]: int(c) for s, c in (minimum or {}).items()}
    # what runs now is inside the host's structural counts in use, as in more_of
    model = MixModel(profiles, machine, names, running=running, **kwargs)
    services = model.services
    if model.unknown or model.refused:
        return _unknown_mix(model, "weighted", {s: 0 for s in services})
    w = np.array([float(weights.get(s, 0.0)) for s in names])
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidParameter("weights", "weighted", "finite weights >= 0", dict(weights))
    lo = np.array([float((minimum or {}).get(s, 0)) for s in names])
    hi = np.array([float((maximum or {}).get(s, 10**6)) for s in names])
    for i, s in enumerate(services):
        if s in _port_services(ports) or any(s == pick_service(profiles, p).service
                                             for p in _port_services(ports)):
            hi[i] = min(hi[i], 1.0)
    eps_scale = {r: 1.0 for r in model.resources}
    assumptions = list(model.assumptions())
    counts: dict[str, int] = {}
    for _attempt in range(MAX_TIGHTENINGS + 1):
        counts = _milp(model, w, lo, hi, method, eps_scale)
        if not counts:
            return MixPlan(kind="weighted", counts={}, machine=machine, method=method,
                           epsilon=model.epsilon, binding_resource=None, per_resource={},
                           reason="no count satisfies the minimum counts and every resource",
                           assumptions=tuple(assumptions), **model.plan_fields())
        if method != "empirical":
            break
        bad = [r for r in model.resources if model.p_overload(r, counts)[0] > model.eps[r]]
        if not bad:
            break
        for r in bad:
            eps_scale[r] /= 2
        assumptions.append(f"simulation found {bad} over epsilon: gaussian epsilon halved")
    shrunk = _shrink(model, counts, w, lo, method)
    if shrunk != counts:
        assumptions.append("still over after the tightenings: counts cut until the "
                           "simulation passes (lightest weight first)")
    counts = _grow(model, shrunk, w, hi, method)
    binding = None
    for i, s in enumerate(services):
        if w[i] <= 0:  # what stops more of a weighted service
            continue
        b = model.binding(counts, {s: 1})
        if b is not None:
            binding = b
            break
    plan = _plan_of(model, "weighted", counts, binding)
    return MixPlan(**{**{f.name: getattr(plan, f.name) for f in fields(plan)},
                      "assumptions": (*assumptions,
                                      "linearised by tangent cuts of the gaussian constraint "
                                      "(Kelley), every candidate checked exactly")})


def _fits_checked(model: MixModel, counts: Mapping[str, int], method: str) -> bool:
    """Every resource within capacity, and for the empirical method every simulated
    P(overload) within its epsilon (the check a weighted plan reports)."""
    return model.fits(counts)[0] and (method != "empirical" or all(
        model.p_overload(r, counts)[0] <= model.eps[r] for r in model.resources))


def _shrink(model: MixModel, counts: dict[str, int], w: np.ndarray, lo: np.ndarray,
            method: str) -> dict[str, int]:
    """Fewer of each service (lightest weight first, never below ``lo``) until the counts
    pass the check: the tightenings of the gaussian epsilon may end with counts still over
    (--maximise answered 5647 idle where 5630 fit, P(overload) 1.0)."""
    if _fits_checked(model, counts, method):
        return counts
    for i in sorted(range(len(model.services)), key=lambda j: w[j]):
        s = model.services[i]
        room = counts.get(s, 0) - int(lo[i])
        if room <= 0:
            continue
        base = dict(counts)
        # the largest cut that still fails; one more passes (or the whole room is cut)
        k = _largest(lambda m, s=s, base=base: not _fits_checked(
            model, {**base, s: base.get(s, 0) - m}, method), limit=room)
        cut = min((k or 0) + 1, room)
        counts = {**base, s: base.get(s, 0) - cut}
        if _fits_checked(model, counts, method):
            break
    return counts


def _grow(model: MixModel, counts: dict[str, int], w: np.ndarray, hi: np.ndarray,
          method: str) -> dict[str, int]:
    """More of each service (by weight, heaviest first) while the counts still fit: the
    MILP's gaussian cuts know no declared limit, so replicas that fit at their limits
    whatever the drift were left out (16 at a 1-core limit on 16 cores came back 11)."""
    def ok(trial: dict[str, int]) -> bool:
        return _fits_checked(model, trial, method)

    for i in sorted(range(len(model.services)), key=lambda j: -w[j]):
        s = model.services[i]
        room = int(hi[i]) - counts.get(s, 0)
        if w[i] <= 0 or room <= 0:
            continue
        base = dict(counts)
        k = _largest(lambda m, s=s, base=base: ok({**base, s: base.get(s, 0) + m}),
                     limit=room)
        if k:
            counts = {**base, s: base.get(s, 0) + k}
    return counts


def _milp(model: MixModel, w: np.ndarray, lo: np.ndarray, hi: np.ndarray, method: str,
          eps_scale: Mapping[str, float]) -> dict[str, int]:
    from scipy import optimize  # 0.2 s to import, and only --maximise needs it

    k = len(model.services)
    rows: list[np.ndarray] = []
    ub: list[float] = []
    linear = method in ("limits", "peak", "quantile")
    parts = {}
    for r in model.resources:
        usable = model.usable[r]
        if linear:
            per = np.zeros(k)
            scale = model.scale.get(r, {}) if method != "limits" else {}
            for i, s in enumerate(model.services):
                if s in model.models[r]:
                    v, _ = model.models[r][s].per_replica(method)
                    per[i] = model._ahead(r, s, v or 0.0) if scale else (v or 0.0)
            rows.append(per)
            ub.append(usable * (1 + _FIT_RTOL))
        else:
            parts[r] = model.gaussian_parts(r, model.eps[r] * eps_scale[r])
            rows.append(parts[r][0])  # the mean constraint: a valid relaxation
            ub.append(usable)
    for lim, (per_slot, _) in model.count_limits.items():
        rows.append(np.array([per_slot.get(s, 0.0) for s in model.services]))
        ub.append(model.count_usable(lim) + 1e-9 * max(per_slot.values()))
    # a finite upper bound per service from its mean demand alone
    for i, s in enumerate(model.services):
        for r in model.resources:
            m = model.models[r][s].demand.mean if s in model.models[r] else 0.0
            mean = model._ahead(r, s, m) if m > 0 else 0.0
            if mean > 0:
                hi[i] = min(hi[i], math.floor(model.usable[r] / mean) + 1)
    if np.any(lo > hi):
        return {}
    for _ in range(_MAX_CUTS):
        res = optimize.milp(
            c=-w, integrality=np.ones(k), bounds=optimize.Bounds(lo, hi),
            constraints=[optimize.LinearConstraint(np.array(rows), -np.inf, np.array(ub))],
        )
        if res.x is None:
            return {}
        n = np.round(res.x)
        violated = False
        for r, (mu, a, b, z) in parts.items():
            q = float(n @ a @ n + b @ n)
            g = float(mu @ n + z * math.sqrt(max(q, 0.0)))
            if g > model.usable[r] * (1 + _FIT_RTOL):
                violated = True
                grad = mu + (z * (2 * a @ n + b) / (2 * math.sqrt(q)) if q > 0 else 0.0)
                rows.append(grad)
                ub.append(model.usable[r] - g + float(grad @ n))
        if not violated:
            return {s: int(v) for s, v in zip(model.services, n, strict=True)}
    return {}


@dataclass(frozen=True)
class FleetPlan:
    """Hosts of one machine type for ``replicas`` (per service), with ``spare`` hosts on top.

    ``hosts`` = ``hosts_needed`` + ``spare`` (N + k); ``per_host`` the most replicas of each
    service one host takes (``ceil(replicas / hosts_needed)``). ``per_resource`` is one host
    at that packing (:class:`MixResource`: demand, utilisation, P(overload)); ``hosts_curve``
    the hosts needed (without spare) against the total replica count from 0 to twice the
    requested total, the mix's proportions kept (:data:`CURVE_POINTS` at most).
    """

    replicas: Mapping[str, int]
    machine: Machine
    method: str
    epsilon: float
    spare: int
    hosts: int | None
    hosts_needed: int | None
    per_host: Mapping[str, int]
    binding_resource: str | None
    reason: str = ""
    assumptions: tuple[str, ...] = ()
    per_resource: Mapping[str, MixResource] = field(default_factory=dict)
    hosts_curve: tuple[tuple[int, int], ...] = ()
    unknown: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    valid_for_s: float | None = None
    demand_factors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: memory and disk space over this horizon, seconds (0 or None: at an instant)
    horizon_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        from ._plan import PLAN_SCHEMA_VERSION

        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "kind": "capacity.fleet",
            "replicas": dict(self.replicas),
            "machine": self.machine.to_dict(),
            "method": self.method,
            "epsilon": self.epsilon,
            "spare": self.spare,
            "hosts": self.hosts,
            "hosts_needed": self.hosts_needed,
            "per_host": dict(self.per_host),
            "binding_resource": self.binding_resource,
            "reason": self.reason,
            "assumptions": list(self.assumptions),
            "per_resource": {k: v.to_dict() for k, v in self.per_resource.items()},
            "hosts_curve": [list(p) for p in self.hosts_curve],
            "unknown": list(self.unknown),
            "refused": list(self.refused),
            "valid_for_s": self.valid_for_s,
            "demand_factors": {s: dict(v) for s, v in self.demand_factors.items()},
            "horizon_s": self.horizon_s,
        }


def _scaled(want: Mapping[str, int], total: int, t: int) -> dict[str, int]:
    """The mix ``want`` scaled to ``t`` replicas in all (rounded per service; exact at
    ``t == total``, nondecreasing in ``t``)."""
    return {s: math.floor(c * t / total + 0.5) for s, c in want.items()}


def _hosts_curve(
    fits: Callable[[Mapping[str, int]], bool],
    want: Mapping[str, int],
    port_services: set[str],
) -> tuple[tuple[int, int], ...]:
    """(total replicas, hosts needed) from 0 to twice the total of ``want``.

    Every count when there are at most :data:`CURVE_POINTS` of them, else an even grid that
    keeps the requested total. Hosts needed never fall as the count grows (every service's
    count is nondecreasing), so each point starts from the previous one's answer.
    """
    total = sum(want.values())
    top = 2 * total
    if top + 1 <= CURVE_POINTS:
        ts = list(range(top + 1))
    else:
        ts = sorted({*np.linspace(0, top, CURVE_POINTS).round().astype(int).tolist(), total})
    out: list[tuple[int, int]] = []
    h = 1
    for t in ts:
        counts = _scaled(want, total, t)
        if not any(counts.values()):
            out.append((t, 0))
            continue
        h = _fewest_hosts(fits, counts, start=h)
        ports = max((counts[s] for s in port_services if s in counts), default=0)
        out.append((t, max(h, ports)))
    return tuple(out)


def _fewest_hosts(fits: Callable[[Mapping[str, int]], bool], counts: Mapping[str, int],
                  *, start: int = 1) -> int:
    """The smallest H >= ``start`` with ``ceil(counts[s] / H)`` of every service fitting.

    Doubling steps up from ``start`` (the answer for a smaller mix, usually the answer or
    one below it), then bisection, bounded by the largest count: at that many hosts each holds
    at most one replica of each service, which the caller has checked fits. So the cost is
    O(log(count)) calls however many replicas are asked for, never one call per host.
    """
    start = max(start, 1)
    bound = max(max(counts.values(), default=1), start)

    def ok(h: int) -> bool:
        return fits({s: math.ceil(c / h) for s, c in counts.items()})

    if ok(start):
        return start
    lo, step = start, 1  # invariant: lo does not fit, hi fits (or is the bound)
    while True:
        hi = min(start + step, bound)
        if hi >= bound or ok(hi):
            break
        lo, step = hi, step * 2
    # the last count that does not fit, plus one: the first that does
    return _bisect_last(lambda h: not ok(h), lo, hi) + 1


def size_fleet(
    profiles: Profiles,
    machine: Machine,
    replicas: Mapping[str, int],
    *,
    spare: int = 0,
    ports: Mapping[str, Sequence[int]] | None = None,
    **kwargs: Any,
) -> FleetPlan:
    """The fewest hosts of ``machine`` that hold ``replicas`` spread evenly, plus ``spare``.

    The smallest H such that ``ceil(replicas[s] / H)`` of every service fit on one host
    together (mixes share a host), then ``H + spare``. A fixed host port allows one replica
    per host, so H >= that service's replicas ("port conflict").
    """
    if not isinstance(spare, int) or spare < 0:
        raise InvalidParameter("spare", "size", "an int >= 0", spare)
    if not replicas:
        raise InvalidParameter("replicas", "size", "counts >= 0 per service", dict(replicas))
    replicas = whole_counts(replicas, "replicas", "size")
    method = kwargs.get("method", DEFAULTS.method)
    model = MixModel(profiles, machine, list(replicas), **kwargs)
    want = {pick_service(profiles, s).service: int(c) for s, c in replicas.items()}
    total = sum(want.values())
    port_bound = max((want[pick_service(profiles, s).service] for s in _port_services(ports)),
                     default=0)

    def per_host(h: int) -> dict[str, int]:
        return {s: math.ceil(c / h) for s, c in want.items()}

    eps = model.epsilon
    fields_ = model.plan_fields()
    if model.unknown or model.refused:
        return FleetPlan(want, machine, method, eps, spare, None, None, {}, None,
                         reason="; ".join((*model.unknown, *model.refused)),
                         assumptions=model.assumptions(), unknown=model.unknown, **fields_)
    if total == 0:
        return FleetPlan(want, machine, method, eps, spare, spare, 0, {}, None,
                         assumptions=model.assumptions(), **fields_)
    ok, binding = model.fits(per_host(total))
    if not ok:
        binding = model.binding(per_host(total), {})
        return FleetPlan(want, machine, method, eps, spare, None, None, {}, binding,
                         reason=f"one replica of every service together does not fit: "
                                f"{resource_name(binding)} binds", assumptions=model.assumptions(),
                         per_resource=model.describe(per_host(total), check=True), **fields_)
    needed = _fewest_hosts(lambda c: model.fits(c)[0], want)
    binding = model.binding(per_host(needed - 1), {}) if needed > 1 else None
    if port_bound > needed:
        needed, binding = port_bound, PORT_CONFLICT
    fixed = {pick_service(profiles, s).service for s in _port_services(ports)}
    curve = _hosts_curve(lambda c: model.fits(c)[0], want, fixed)
    return FleetPlan(want, machine, method, eps, spare, needed + spare, needed,
                     per_host(needed), binding,
                     assumptions=(*model.assumptions(),
                                  f"N+{spare}: {spare} spare host(s) on top of the "
                                  f"{needed} needed; replicas spread evenly"),
                     per_resource=model.describe(per_host(needed), check=True),
                     hosts_curve=curve, **fields_)
