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
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy import special

from .._errors import InvalidParameter
from .._settings import DEFAULTS, Settings, whole_counts
from .._units import resource_name
from ..model._fit import UNSEEN_HOURS_WARNING
from ..model._profile import Profiles
from ._coverage import has_sampling_fault
from ._demand import clopper_pearson, mix_totals, replica_demand
from ._machine import Machine
from ._plan import (
    _FIT_RTOL,
    _SPEC_EXAMPLE,
    METHODS,
    PORT_CONFLICT,
    REQUIRED,
    ResourceModel,
    _bisect_last,
    _check_epsilon,
    _largest,
    _resolve_epsilon,
    default_n_draws,
    pick_service,
)

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

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.p_overload_interval is not None:
            d["p_overload_interval"] = list(self.p_overload_interval)
        return d


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

    @property
    def safe(self) -> bool:
        return not self.reason

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
        }


class MixModel:
    """Every resource constraint of a set of services on one machine.

    Parameters mirror :func:`capacity.solver.plan`. ``extra_profiles`` are services planned by
    constant demand (for example Compose services planned by their declared limits).
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
        self.incompressible_epsilon = Settings(
            epsilon=self.epsilon, incompressible_epsilon=incompressible_epsilon).memory_epsilon
        self.occupied = dict(occupied or {})
        self.unknown_correlation = unknown_correlation
        rng = rng if rng is not None else np.random.default_rng(0)
        self.resources: list[str] = []
        self.eps: dict[str, float] = {}
        self.models: dict[str, dict[str, ResourceModel]] = {}
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
            u = rng.random(self.n_draws)  # one shared instant per draw: services aligned
            models = {}
            for s in self.services:
                d = replica_demand(profiles[s], r, independent_offsets=independent_offsets)
                if d is None or (d.mean <= 0 and d.var <= 0):
                    continue
                models[s] = ResourceModel(d, epsilon=eps, rng=rng, n_draws=self.n_draws,
                                          quantile_level=quantile_level, u=u)
            if models:
                self.resources.append(r)
                self.models[r] = models
                self.eps[r] = eps
                self.usable[r] = cap - reserve - float(self.occupied.get(r, 0.0))
        self.unknown = _unknown_required(self.profiles, machine, self.services)

    # -- per resource -------------------------------------------------------------------

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
        z = float(-special.ndtri(eps if eps is not None else self.eps[r]))
        return mu, a, b, z

    def bound(self, r: str, counts: Mapping[str, int], method: str | None = None) -> float | None:
        """The method's bound on the total demand of ``counts`` for resource ``r``."""
        method = method or self.method
        models = self.models[r]
        n = {s: int(c) for s, c in counts.items() if c > 0 and s in models}
        if not n:
            return 0.0
        if method in ("limits", "peak", "quantile"):
            total = 0.0
            for s, c in n.items():
                per, _ = models[s].per_replica(method)
                if per is None:
                    return None
                total += c * per
            return total
        if method == "empirical" and all(m.sim is not None for s, m in models.items() if s in n):
            t = mix_totals({s: models[s].sim for s in n}, n, self.n_draws)  # type: ignore[misc]
            return float(np.quantile(t, 1 - self.eps[r]))
        vec = np.array([n.get(s, 0) for s in self.services], dtype=float)
        mu, a, b, z = self.gaussian_parts(r)
        total = float(mu @ vec + z * math.sqrt(max(vec @ a @ vec + b @ vec, 0.0)))
        limits = {s: models[s].demand.limit for s in n}
        if all(lim is not None for lim in limits.values()):
            total = min(total, sum(c * float(limits[s] or 0.0) for s, c in n.items()))
        return total

    def p_overload(
        self, r: str, counts: Mapping[str, int]
    ) -> tuple[float, tuple[float, float] | None]:
        """P(overload) of resource ``r`` by the risk model (empirical where every trace exists)."""
        models = self.models[r]
        n = {s: int(c) for s, c in counts.items() if c > 0 and s in models}
        if not n:
            return 0.0, None
        usable = self.usable[r] * (1 + _FIT_RTOL)
        if all(models[s].demand.has_trace for s in n):
            t = mix_totals({s: models[s].sim for s in n}, n, self.n_draws)  # type: ignore[misc]
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
            total = self.bound(r, counts)
            if total is None:
                continue
            if total > self.usable[r] * (1 + _FIT_RTOL):
                return False, r
        return True, None

    def describe(self, counts: Mapping[str, int], *, check: bool = False) -> dict[str, MixResource]:
        out: dict[str, MixResource] = {}
        for r in self.resources:
            total = self.bound(r, counts)
            cap = self.machine.capacity[r]
            reserve = self.machine.reserved(r)
            occ = float(self.occupied.get(r, 0.0))
            mean = sum(c * self.models[r][s].demand.mean for s, c in counts.items()
                       if s in self.models[r])
            p, interval = self.p_overload(r, counts) if check else (None, None)
            out[r] = MixResource(
                resource=r, capacity=cap, reserve=reserve, occupied=occ, epsilon=self.eps[r],
                demand=total, mean_demand=mean,
                utilisation=None if total is None else (reserve + occ + total) / cap,
                p_overload=p, p_overload_interval=interval,
                fits=total is None or total <= self.usable[r] * (1 + _FIT_RTOL),
            )
        return out

    def binding(self, counts: Mapping[str, int], step: Mapping[str, int]) -> str | None:
        """The resource that stops ``counts + step``."""
        bigger = {s: counts.get(s, 0) + step.get(s, 0) for s in set(counts) | set(step)}
        return self.fits(bigger)[1]

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
        out.append("demand as recorded: drift, the drift allowance for a history under two "
                   "days and the sampling-fault widening of single-service plans are not "
                   "applied to a mix (plan each service alone to see them)")
        faulty = [s for s in self.services
                  if has_sampling_fault(self.profiles[s].warnings)
                  or any(w.startswith(UNSEEN_HOURS_WARNING) for w in self.profiles[s].warnings)]
        if faulty:
            out.append(f"faulty histories planned as recorded, not widened: {', '.join(faulty)} "
                       "(gaps, irregular intervals or hours of the day not seen: their "
                       "profiles' warnings)")
        return tuple(out)


def _plan_of(model: MixModel, kind: str, counts: Mapping[str, int], binding: str | None,
             **extra: Any) -> MixPlan:
    per = model.describe(counts, check=True)
    check = {r: {"p_overload": m.p_overload, "p_overload_interval": m.p_overload_interval,
                 "epsilon": m.epsilon, "ok": m.p_overload is None or m.p_overload <= m.epsilon}
             for r, m in per.items()}
    return MixPlan(kind=kind, counts=dict(counts), machine=model.machine, method=model.method,
                   epsilon=model.epsilon, binding_resource=binding, per_resource=per,
                   assumptions=model.assumptions(), check=check, **extra)


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
    return MixPlan(kind=kind, counts=dict(counts), machine=model.machine, method=model.method,
                   epsilon=model.epsilon, binding_resource=None, per_resource={},
                   reason="; ".join(model.unknown), assumptions=model.assumptions(),
                   unknown=model.unknown)


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
    model = MixModel(profiles, machine, services, **kwargs)
    service = pick_service(profiles, service).service
    base = {pick_service(profiles, s).service: int(c) for s, c in current.items()}
    if any(c < 0 for c in base.values()):
        raise InvalidParameter("current", "more_of", "counts >= 0", dict(current))
    if model.unknown:
        return _unknown_mix(model, "more", base)
    ok, binding = model.fits(base)
    if not ok:
        return _plan_of(model, "more", base, binding, more=0,
                        reason=f"what runs now already exceeds {binding} at the stated risk")
    n = _largest(lambda k: model.fits({**base, service: base.get(service, 0) + k})[0])
    if n is None:
        return _plan_of(model, "more", base, None, reason="unbounded: no resource limits it")
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
    if model.unknown:
        return _unknown_mix(model, "ratio", unit)
    k = _largest(lambda m: model.fits({s: m * c for s, c in unit.items()})[0])
    if k is None:
        return _plan_of(model, "ratio", unit, None, reason="unbounded: no resource limits it")
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
    services = list(weights)
    method = kwargs.get("method", DEFAULTS.method)
    model = MixModel(profiles, machine, services, **kwargs)
    services = model.services
    if model.unknown:
        return _unknown_mix(model, "weighted", {s: 0 for s in services})
    w = np.array([float(weights[s]) for s in weights])
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidParameter("weights", "weighted", "finite weights >= 0", dict(weights))
    lo = np.array([float((minimum or {}).get(s, 0)) for s in weights])
    hi = np.array([float((maximum or {}).get(s, 10**6)) for s in weights])
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
                           assumptions=tuple(assumptions))
        if method != "empirical":
            break
        bad = [r for r in model.resources if model.p_overload(r, counts)[0] > model.eps[r]]
        if not bad:
            break
        for r in bad:
            eps_scale[r] /= 2
        assumptions.append(f"simulation found {bad} over epsilon: gaussian epsilon halved")
    binding = None
    for s in services:
        b = model.binding(counts, {s: 1})
        if b is not None:
            binding = b
            break
    plan = _plan_of(model, "weighted", counts, binding)
    return MixPlan(**{**{f.name: getattr(plan, f.name) for f in fields(plan)},
                      "assumptions": (*assumptions,
                                      "linearised by tangent cuts of the gaussian constraint "
                                      "(Kelley), every candidate checked exactly")})


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
            for i, s in enumerate(model.services):
                if s in model.models[r]:
                    v, _ = model.models[r][s].per_replica(method)
                    per[i] = v or 0.0
            rows.append(per)
            ub.append(usable * (1 + _FIT_RTOL))
        else:
            parts[r] = model.gaussian_parts(r, model.eps[r] * eps_scale[r])
            rows.append(parts[r][0])  # the mean constraint: a valid relaxation
            ub.append(usable)
    # a finite upper bound per service from its mean demand alone
    for i, s in enumerate(model.services):
        for r in model.resources:
            mean = model.models[r][s].demand.mean if s in model.models[r] else 0.0
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
    if model.unknown:
        return FleetPlan(want, machine, method, eps, spare, None, None, {}, None,
                         reason="; ".join(model.unknown), assumptions=model.assumptions(),
                         unknown=model.unknown)
    if total == 0:
        return FleetPlan(want, machine, method, eps, spare, spare, 0, {}, None,
                         assumptions=model.assumptions())
    ok, binding = model.fits(per_host(total))
    if not ok:
        return FleetPlan(want, machine, method, eps, spare, None, None, {}, binding,
                         reason=f"one replica of every service together does not fit: "
                                f"{resource_name(binding)} binds", assumptions=model.assumptions(),
                         per_resource=model.describe(per_host(total), check=True))
    needed = _fewest_hosts(lambda c: model.fits(c)[0], want)
    binding = model.fits(per_host(needed - 1))[1] if needed > 1 else None
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
                     hosts_curve=curve)
