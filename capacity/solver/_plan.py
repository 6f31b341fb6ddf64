"""The solver: the largest safe count of one service per resource, the binding resource, the risk.

Risk
----
``epsilon`` is the allowed probability that a resource's total demand (the service's replicas,
plus ``occupied`` by other containers, plus the machine's reserve) exceeds its capacity at a
random instant, one instant being one sampling interval of the profile (stated in the plan).
CPU, network and disk bandwidth are compressible: an overload throttles. Memory and disk space
are not: an overload is an OOM kill or a full disk, so their default epsilon is stricter,
``epsilon * INCOMPRESSIBLE_EPSILON_FACTOR`` unless ``incompressible_epsilon`` is given. With
``horizon_s`` (default 300 s) the empirical method bounds instead P(the maximum of total demand
over the next ``horizon_s`` seconds exceeds capacity) for the incompressible resources: in
``benchmarks/RESULTS.md`` (section Plan) a plan at an instant's risk 1e-3 had a 2.4 % chance
of an OOM kill within five minutes, and the 300 s horizon fixed it for one replica less.
Its cost is the replicas' paths summed once (``n_draws`` x horizon steps x up to 16
replicas, in float32); the count search then reads bounds of each draw's maximum and
evaluates paths step by step only for the draws near the capacity (``_demand._Paths``).
``horizon_s=0`` (``--horizon 0``) plans at an instant.

Methods (all computed, one chosen)
----------------------------------
``limits``
    Sum of declared limits (``--cpus``, ``-m``): what Kubernetes requests and cluster-capacity
    do. Undefined where no limit is declared.
``peak``
    Sum of per-replica maxima.
``quantile``
    Sum of per-replica quantiles. The level is ``quantile_level`` when given (for example
    ``1 - epsilon``); by default the profile's own sizing statistic (CPU p95, memory and the
    rest the maximum: the krr rule, the baseline most spreadsheets use).
``gaussian``
    ``N*mu + z*sqrt(N*var + N*(N-1)*cov) <= C`` with ``z = Phi^-1(1 - epsilon)`` and ``cov`` the
    covariance between two replicas (see :mod:`capacity.solver._demand`: measured replica
    correlation, else the slow component shared), capped at ``N`` times a declared limit.
``empirical``
    Monte Carlo: ``n_draws`` sums of N replicas drawn by circular block bootstrap from the
    recorded traces (shared component from the mean over replicas at one instant, own component
    from one replica's own series at a random instant each; see
    :mod:`capacity.solver._demand`),
    P(overload) estimated with a 95 % Clopper-Pearson interval; a fixed seed through the
    injected ``rng``. The safe count is the largest N whose estimate is <= epsilon (N = 1,
    2, ... scanned up to the replicas summed exactly: the count is one less than the first
    over epsilon; the scan goes on until the interval's lower bound passes epsilon, for
    ``safe_count_interval``, the counts allowed by the interval's upper and lower bounds).
    Each resource of each service draws from its own child of ``rng``, keyed by their names
    (:class:`ResourceModel`, :func:`~capacity.solver._demand.child_generator`), so for a
    fixed profile, seed and ``n_draws`` the count never falls when the usable capacity or
    epsilon grows, and does not move when a capacity of another resource is added. Trap:
    by default ``n_draws`` grows as epsilon shrinks below 1e-3
    (:func:`default_n_draws`); two epsilons with different draw counts are two samples,
    and their counts may differ by the Monte Carlo error either way.

:data:`DEFAULT_METHOD` is ``empirical`` (``gaussian`` where a resource has no usable trace):
demand is skewed and bursty, and a normal tail underestimates it; see
``benchmarks/RESULTS.md`` (section Plan) for the accuracy run behind this choice. P(overload)
columns are always computed with the *risk model* (``empirical`` where a trace exists, else
``gaussian``), whatever method chose N, so methods can be compared on one scale.

:func:`plan`, the CLI (``capacity plan``, ``capacity report``) and
:func:`capacity._pipeline.plan_all` all default to :data:`DEFAULT_METHOD`.

JSON (``kind: "capacity.plan"``, ``schema_version: 2``)
------------------------------------------------------
Top level: ``schema_version`` (int), ``kind``, ``service``, ``machine`` (``name``, ``capacity``,
``reserve``, ``headroom``, ``missing``), ``method``, ``risk_model``, ``epsilon`` (the base, for
compressible resources), ``incompressible_epsilon``, ``horizon_s`` (0 or null: instant risk),
``safe_count`` (int or null: undefined), ``binding_resource`` (a resource column,
``"port conflict"``, or null), ``reason`` (why undefined, else ""), ``running``, ``more``
(how many more beside ``running``; null when undefined), ``ports``, ``methods`` (per method:
``safe_count``, ``binding_resource``), ``per_resource`` (per resource column: ``resource``,
``safe_count``, ``capacity``, ``reserve``, ``occupied``, ``demand_per_replica`` (the effective
per-replica figure: ``demand_at_safe_count / safe_count`` for pooled methods),
``demand_at_safe_count`` (the total the method compares with ``capacity - reserve - occupied``),
``utilisation_at_safe_count`` (``(reserve + occupied + demand_at_safe_count) / capacity``),
``reason``, ``epsilon``, ``method``, ``host_cost`` (the host's fixed cost of one container
outside its cgroup, already inside every per-replica figure), ``mean_per_replica``,
``expected_utilisation_at_safe_count`` and ``expected_utilisation_at_next`` (with the mean
demand, at N and N + 1),
``p_overload_at_safe_count``, ``p_overload_interval_at_safe_count``
([lo, hi] or null), ``p_overload_at_next`` (N + 1), ``safe_count_interval`` ([lo, hi] or
null), ``methods`` (per method: safe count or null), ``risk_curve`` ([[N, P(overload)], ...])),
``assumptions`` (list of str), ``meta``, ``settings`` (every setting the plan was made with,
as given: :class:`capacity.Settings`). Units are those of the resource column. A
new field is a minor change; removing or renaming one bumps ``schema_version``. See
docs/plan-json.md.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy import special

from .._columns import CPU, DISK_USAGE, MEMORY
from .._errors import InsufficientData, InvalidParameter, ProfileVersionError
from .._settings import (
    DEFAULTS,
    INCOMPRESSIBLE_EPSILON_FACTOR,
    MAX_DEFAULT_DRAWS,
    Settings,
    check_risk,
    whole_count,
)
from ..model._fit import UNSEEN_HOURS_WARNING
from ..model._profile import Profiles, ServiceProfile
from ._coverage import coverage_widening, has_sampling_fault
from ._demand import (
    MAX_SUMMED_REPLICAS,
    MAX_SUMMED_REPLICAS_HORIZON,
    MAX_SUMMED_REPLICAS_HORIZON_EXACT,
    ReplicaDemand,
    Simulator,
    _limit_of,
    child_generator,
    clopper_pearson,
    factor_figure,
    replica_demand,
    with_factor,
    with_host_cost,
)
from ._drift import drift_of
from ._machine import Machine
from ._methods import DEFAULT_METHOD, METHODS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "DEFAULT_METHOD",
    "INCOMPRESSIBLE",
    "INCOMPRESSIBLE_EPSILON_FACTOR",
    "METHODS",
    "MIN_SAMPLES_TO_PLAN",
    "PLAN_SCHEMA_VERSION",
    "PORT_CONFLICT",
    "REQUIRED",
    "Plan",
    "ResourcePlan",
    "default_n_draws",
    "occupied_by_others",
    "plan",
]

PLAN_SCHEMA_VERSION = 2
#: resources where an overload kills (OOM) or fails writes, instead of throttling
INCOMPRESSIBLE: frozenset[str] = frozenset({MEMORY, DISK_USAGE})
#: resources every container uses: when the machine's capacity or the service's demand of one
#: of them is unknown (while the other side is known), it could bind, so the count is undefined
REQUIRED: tuple[str, ...] = (CPU, MEMORY)
PORT_CONFLICT = "port conflict"
#: how a machine spec gives each resource's capacity, for the reason when it is missing
_SPEC_EXAMPLE = {CPU: "cpus=8", MEMORY: "memory=32GiB", DISK_USAGE: "disk=400GB",
                 "net_rx_bytes_per_second": "net=10Gbit", "net_tx_bytes_per_second": "net=10Gbit",
                 "disk_read_bytes_per_second": "disk_bw=500MB/s",
                 "disk_write_bytes_per_second": "disk_bw=500MB/s"}
#: reasons of a resource whose capacity or demand is unknown
CAPACITY_UNKNOWN = "machine capacity unknown"
NO_SAMPLES = "no samples of this resource"
#: relative tolerance of "fits": 0.1 * 30 is 3.0000000000000004 in floating point
_FIT_RTOL = 1e-9
#: upper 95 % Clopper-Pearson bound of zero events in n trials, times n (-ln 0.025)
_ZERO_OF_N_UPPER = -math.log(0.025)
#: largest count searched; beyond it the count is reported as unbounded (no real demand)
_MAX_COUNT = 10**7
_CURVE_POINTS = 60
#: fewer samples than this and nothing is planned (undefined, with the reason). The profile
#: model warns (confidence "low") far earlier, below ``ProfileModel.min_samples`` (100); a
#: default ``capacity report`` (10 s at 1 s) gives about 10 per single-replica service.
MIN_SAMPLES_TO_PLAN = 10


def default_n_draws(epsilon: float) -> int:
    """Monte Carlo draws for a risk ``epsilon``: about 20 expected overloads at the boundary,
    at least 20,000 and at most 200,000 (a tiny epsilon such as 1e-320 makes 20 / epsilon
    infinite: it is capped before it is rounded)."""
    return int(min(max(math.ceil(min(20.0 / epsilon, MAX_DEFAULT_DRAWS)), 20_000),
                   MAX_DEFAULT_DRAWS))


@dataclass(frozen=True)
class ResourcePlan:
    """The answer for one resource, in the resource column's unit.

    ``safe_count`` is None when it cannot be computed (capacity unknown, no samples, a profile
    too thin to trust); ``reason`` then says why. See the module docstring for every field.
    """

    resource: str
    safe_count: int | None
    capacity: float | None
    reserve: float
    occupied: float
    demand_per_replica: float | None
    demand_at_safe_count: float | None
    utilisation_at_safe_count: float | None
    reason: str = ""
    epsilon: float | None = None
    method: str = ""
    mean_per_replica: float | None = None
    expected_utilisation_at_safe_count: float | None = None
    expected_utilisation_at_next: float | None = None
    p_overload_at_safe_count: float | None = None
    p_overload_interval_at_safe_count: tuple[float, float] | None = None
    p_overload_at_next: float | None = None
    safe_count_interval: tuple[int, int] | None = None
    methods: Mapping[str, int | None] = field(default_factory=dict)
    risk_curve: tuple[tuple[int, float], ...] = ()
    host_cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["methods"] = dict(self.methods)
        d["risk_curve"] = [list(p) for p in self.risk_curve]
        for k in ("p_overload_interval_at_safe_count", "safe_count_interval"):
            d[k] = None if d[k] is None else list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResourcePlan:
        d = dict(d)
        d["methods"] = dict(d.get("methods", {}))
        d["risk_curve"] = tuple((int(n), float(p)) for n, p in d.get("risk_curve", ()))
        for k in ("p_overload_interval_at_safe_count", "safe_count_interval"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class Plan:
    """How many replicas of ``service`` fit on ``machine``, per resource and overall.

    ``more`` is how many fit beside the ``running`` ones. ``binding_resource`` is the resource
    with the smallest safe count, or ``"port conflict"`` when a fixed host port allows fewer.
    """

    service: str
    machine: Machine
    method: str
    epsilon: float
    safe_count: int | None
    binding_resource: str | None
    per_resource: Mapping[str, ResourcePlan]
    running: int = 0
    assumptions: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    risk_model: str = ""
    incompressible_epsilon: float | None = None
    horizon_s: float | None = None
    reason: str = ""
    ports: tuple[int, ...] = ()
    methods: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: Settings = DEFAULTS

    @property
    def more(self) -> int | None:
        """How many more replicas fit beside the ``running`` ones (never negative)."""
        return None if self.safe_count is None else max(self.safe_count - self.running, 0)

    def to_frame(self) -> pd.DataFrame:
        """One row per resource (see :func:`capacity.solver._display.plan_frame`)."""
        from ._display import plan_frame

        return plan_frame(self)

    def _repr_html_(self) -> str:
        from ._display import plan_html

        return plan_html(self)

    def plot(self, ax: Axes | None = None) -> Axes:
        """P(overload) against the count per resource, epsilon and the safe count marked;
        returns the Axes (a new Figure's, not pyplot's, when ``ax`` is None)."""
        from ._display import plot_plan

        return plot_plan(self, ax)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "kind": "capacity.plan",
            "service": self.service,
            "machine": self.machine.to_dict(),
            "method": self.method,
            "risk_model": self.risk_model,
            "epsilon": self.epsilon,
            "incompressible_epsilon": self.incompressible_epsilon,
            "horizon_s": self.horizon_s,
            "safe_count": self.safe_count,
            "binding_resource": self.binding_resource,
            "reason": self.reason,
            "running": self.running,
            "more": self.more,
            "ports": list(self.ports),
            "methods": {k: dict(v) for k, v in self.methods.items()},
            "per_resource": {k: v.to_dict() for k, v in self.per_resource.items()},
            "assumptions": list(self.assumptions),
            "meta": dict(self.meta),
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        if d.get("kind") != "capacity.plan" or d.get("schema_version") != PLAN_SCHEMA_VERSION:
            raise ProfileVersionError(
                f"plan schema version {d.get('schema_version')!r} (kind {d.get('kind')!r}) is "
                f"not {PLAN_SCHEMA_VERSION}: re-run 'capacity plan'"
            )
        return cls(
            service=d["service"],
            machine=Machine.from_dict(d["machine"]),
            method=d["method"],
            epsilon=d["epsilon"],
            safe_count=d["safe_count"],
            binding_resource=d["binding_resource"],
            per_resource={k: ResourcePlan.from_dict(v) for k, v in d["per_resource"].items()},
            running=d.get("running", 0),
            assumptions=tuple(d.get("assumptions", ())),
            meta=d.get("meta", {}),
            risk_model=d.get("risk_model", ""),
            incompressible_epsilon=d.get("incompressible_epsilon"),
            horizon_s=d.get("horizon_s"),
            reason=d.get("reason", ""),
            ports=tuple(d.get("ports", ())),
            methods={k: dict(v) for k, v in d.get("methods", {}).items()},
            settings=(Settings.from_dict(d["settings"]) if d.get("settings") else
                      Settings(epsilon=d["epsilon"], method=d["method"],
                               incompressible_epsilon=d.get("incompressible_epsilon"),
                               horizon_s=d.get("horizon_s"))),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text


# -- one resource ---------------------------------------------------------------------------


class ResourceModel:
    """Every method's view of one service's demand for one resource, at one risk.

    Parameters
    ----------
    demand : ReplicaDemand
    epsilon : float
        Allowed P(overload) for this resource.
    rng : numpy.random.Generator
        For the empirical method: a child generator keyed by the service and resource
        names is made from its seed (:func:`~capacity.solver._demand.child_generator`), and
        every draw of this resource (the instants, then the replicas, lazily as far as the
        count search goes) comes from that child. So the draws depend on the seed and the
        names only, never on which other models exist or how far their searches went: for a fixed
        profile and seed the empirical count is nondecreasing in the usable capacity and in
        epsilon (at a fixed ``n_draws``), as the closed-form methods' are.
    n_draws : int
        Monte Carlo draws.
    horizon_steps : int
        Path length of the empirical method in trace steps (1: instant risk).
    quantile_level : float, optional
        Level of the ``quantile`` method; None: the profile's sizing statistic.
    horizon_replicas : int, optional
        Replicas summed path by path over a horizon; None: chosen from the replica's skewness
        (see :class:`Simulator` and :func:`~capacity.solver._demand.horizon_replicas_for`).

    A period ahead: :meth:`at_factor` gives the same model (the same draws) with one
    replica's own demand times a demand factor and the host cost per container unscaled
    (:func:`~capacity.solver._demand.with_factor`); ``factor`` is 1 here.
    """

    def __init__(
        self,
        demand: ReplicaDemand,
        *,
        epsilon: float,
        rng: np.random.Generator,
        n_draws: int,
        horizon_steps: int = 1,
        quantile_level: float | None = None,
        u: np.ndarray | None = None,
        simulate: bool = True,
        horizon_replicas: int | None = None,
    ) -> None:
        self.demand = demand
        self.epsilon = epsilon
        self.z = float(-special.ndtri(epsilon))  # norm.isf
        self.rng = child_generator(rng, f"{demand.service}\x00{demand.resource}")
        self.n_draws = n_draws
        self.horizon_steps = horizon_steps
        self.quantile_level = quantile_level
        self._u = u
        self._sim: Simulator | None = None
        self._simulate = simulate
        self.horizon_replicas = horizon_replicas
        self._most: dict[str, int] = {}
        #: the demand factor of this view (:meth:`at_factor`); 1: demand as profiled
        self.factor = 1.0
        #: ``demand`` at ``factor`` (the closed-form methods' view of it)
        self.planned = demand
        self._base: ResourceModel | None = None
        self._views: dict[float, ResourceModel] = {}

    def at_factor(self, factor: float) -> ResourceModel:
        """This model for a period ahead: one replica's own demand times ``factor`` (>= 1;
        :func:`demand_factor`), the host cost per container added unscaled (the shim and
        kernel memory outside the cgroup do not drift). The view shares this model's draws
        (so counts at two factors compare on the same draws) and its ``demand``; the
        closed-form methods read ``planned``, the empirical one compares the same totals
        with a threshold per count: ``f (T - n h) + n h <= usable``."""
        if factor == 1.0 or self._base is not None:
            if self._base is not None and factor != self.factor:
                return self._base.at_factor(factor)
            return self
        view = self._views.get(factor)
        if view is None:
            view = copy.copy(self)
            view.factor = float(factor)
            view.planned = with_factor(self.demand, factor)
            view._base = self
            view._most = {}
            view._views = {}
            self._views[factor] = view
        return view

    def _threshold(self, n: int, usable: float) -> float:
        """What the total of ``n`` replicas as profiled (host cost included) may reach for
        their total at ``factor`` to stay within ``usable`` (the inverse of
        :func:`~capacity.solver._demand.factor_figure`)."""
        if self.factor == 1.0:
            return usable
        return (usable + (self.factor - 1.0) * n * self.demand.host_cost) / self.factor

    @property
    def sim(self) -> Simulator | None:
        if self._base is not None:
            return self._base.sim
        if self._sim is None and self.demand.has_trace and self._simulate:
            self._sim = Simulator(
                self.demand, n_draws=self.n_draws, rng=self.rng,
                horizon_steps=self.horizon_steps, u=self._u,
                horizon_replicas=self.horizon_replicas,
            )
        return self._sim

    @property
    def risk_model(self) -> str:
        return "empirical" if self.demand.has_trace and self._simulate else "gaussian"

    # per-replica figures of the linear methods
    def per_replica(self, method: str) -> tuple[float | None, str]:
        """One replica's figure by a linear method, host cost included, at ``factor``
        (never for ``limits``: a declared limit caps demand whatever its drift)."""
        per, why = self._per_replica(method)
        if per is None or method == "limits":
            return per, why
        return float(factor_figure(per, self.factor, self.demand.host_cost)), why

    def _per_replica(self, method: str) -> tuple[float | None, str]:
        d = self.demand
        if method == "limits":
            if d.limit is None:
                return None, "no declared limit for this resource"
            return d.limit, ""
        if method == "peak":
            return (min(d.peak, d.limit) if d.limit is not None else d.peak), ""
        if method == "quantile":
            if self.quantile_level is None:  # the profile's sizing statistic (CPU p95, max)
                value = float(getattr(d.profile, "demand", d.peak - d.host_cost))
                if d.limit is not None:
                    value = min(value, d.limit - d.host_cost)
                return value + d.host_cost, ""
            return d.quantile(self.quantile_level), ""
        raise InvalidParameter("method", "plan", f"one of {METHODS}", method)

    def gaussian_total(self, n: int | np.ndarray) -> Any:
        d = self.planned
        n = np.asarray(n, dtype=float)
        var = np.maximum(n * d.var + n * (n - 1) * d.cov, 0.0)
        total = n * d.mean + self.z * np.sqrt(var)
        if d.limit is not None:
            total = np.minimum(total, n * d.limit)
        return total

    def gaussian_p(self, n: int | np.ndarray, usable: float) -> Any:
        d = self.planned
        n = np.asarray(n, dtype=float)
        sd = np.sqrt(np.maximum(n * d.var + n * (n - 1) * d.cov, 0.0))
        mean = n * d.mean
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(sd > 0, special.ndtr((mean - usable) / np.where(sd > 0, sd, 1.0)),
                         (mean > usable * (1 + _FIT_RTOL)).astype(float))
        if d.limit is not None:
            p = np.where(n * d.limit <= usable * (1 + _FIT_RTOL), 0.0, p)
        return np.where(n <= 0, 0.0, p)

    def bound(self, method: str, n: int) -> float | None:
        """The total demand of ``n`` replicas the method compares with the usable capacity."""
        if n <= 0:
            return 0.0
        if method in ("limits", "peak", "quantile"):
            per, _ = self.per_replica(method)
            return None if per is None else n * per
        if method == "gaussian":
            return float(self.gaussian_total(n))
        if method == "empirical":
            sim = self.sim
            if sim is None:
                return None
            return float(factor_figure(sim.quantile(n, 1.0 - self.epsilon), self.factor,
                                       self.demand.host_cost, n))
        raise InvalidParameter("method", "plan", f"one of {METHODS}", method)

    def safe(self, method: str, usable: float) -> tuple[int | None, str, tuple[int, int] | None]:
        """(largest safe count or None, reason, count interval for the empirical method)."""
        d = self.planned
        if usable <= 0:
            return 0, "reserve and other containers already use all of it", None
        if method in ("limits", "peak", "quantile"):
            per, why = self.per_replica(method)
            if per is None:
                return None, why, None
            if per <= 0:
                return None, "no measurable demand: does not limit the count", None
            n = _cap(math.floor(usable / per * (1 + _FIT_RTOL)))
            return (n, "", None) if n is not None else self._unbounded(usable)
        if d.mean <= 0 and d.var <= 0:
            return None, "no measurable demand: does not limit the count", None
        if method == "gaussian":
            n = self._gaussian_count(usable)
            return (n, "", None) if n is not None else self._unbounded(usable)
        if method == "empirical":
            if self.sim is None:
                return None, d.trace_note or "no trace", None
            n, why, interval = self._empirical_safe(usable)
            return (n, why, interval) if n is not None else self._unbounded(usable)
        raise InvalidParameter("method", "plan", f"one of {METHODS}", method)

    def _unbounded(self, usable: float) -> tuple[int, str, None]:
        """A number for a near-idle replica whose risk search passed :data:`_MAX_COUNT`
        (issue 13, cause 4): the count with every replica at its peak at once (a safe lower
        bound) when that is within the search, else :data:`_MAX_COUNT` itself. The machine's
        structural limits (PIDs, addresses, per-container host cost) are not modelled here:
        they bound such a count first, and the reason says so."""
        d = self.planned
        peak = min(d.peak, d.limit) if d.limit is not None else d.peak
        if peak > 0 and usable / peak <= _MAX_COUNT:
            return (math.floor(usable / peak * (1 + _FIT_RTOL)),
                    "demand too small for the risk model to limit the count: every replica at "
                    "its peak at once is given (a safe lower bound); the machine's structural "
                    "limits (PIDs, addresses, per-container cost) are not modelled and may bind "
                    "first", None)
        return (_MAX_COUNT,
                f"demand too small to limit the count below {_MAX_COUNT:,}: capped there; the "
                "machine's structural limits (PIDs, addresses, per-container cost) are not "
                "modelled and bind first", None)

    def _gaussian_count(self, usable: float) -> int | None:
        """Largest n with ``n mu + z sqrt(n var + n (n - 1) cov) <= usable``.

        Squaring gives ``(mu^2 - z^2 cov) n^2 - (2 U mu + z^2 (var - cov)) n + U^2 >= 0`` for
        ``n <= U / mu``; its smaller root is the real-valued answer, checked and stepped on
        the exact constraint (rounding), so only a few evaluations are needed.
        """
        d, z = self.planned, self.z

        def fits(k: int) -> bool:
            return float(self.gaussian_total(k)) <= usable * (1 + _FIT_RTOL)

        mu, v, c = d.mean, max(d.var, 0.0), min(max(d.cov, 0.0), max(d.var, 0.0))
        if mu <= 0:
            return _largest(fits)
        a = mu * mu - z * z * c
        b = 2 * usable * mu + z * z * (v - c)
        if abs(a) < 1e-12 * mu * mu:
            root = usable * usable / b if b > 0 else usable / mu
        else:
            disc = max(b * b - 4 * a * usable * usable, 0.0)
            # the smaller positive root, in the form that does not cancel
            root = 2 * usable * usable / (b + math.sqrt(disc)) if b > 0 else usable / mu
        # a capacity near the float limit (cpus=1e300) overflows usable**2: the count is
        # then far beyond _MAX_COUNT whatever the variance (was: "cannot convert NaN")
        bound = min(root, usable / mu) if math.isfinite(root) else usable / mu
        if not bound <= _MAX_COUNT:
            return None
        guess = max(int(bound), 0)
        if d.limit is not None and d.limit > 0:
            guess = max(guess, math.floor(usable / d.limit * (1 + _FIT_RTOL)))
        if guess > _MAX_COUNT:
            return None
        # the closed form is within a step or two of the answer; the search around it is
        # bounded all the same (a demand that never stops fitting ends at _MAX_COUNT: None)
        return _largest(fits, start=guess)

    def exceedances(self, n: int, usable: float) -> int:
        """Draws in which ``n`` replicas at ``factor`` exceed ``usable``."""
        sim = self.sim
        assert sim is not None  # callers check
        return sim.exceedances(n, self._threshold(n, usable) * (1 + _FIT_RTOL))

    def allows(self, k: int, bound: str) -> bool:
        """Whether ``k`` exceedances in ``n_draws`` meet epsilon by the ``bound``: ``point``
        (the estimate), ``upper`` or ``lower`` (of the 95 % Clopper-Pearson interval)."""
        m, eps = self.n_draws, self.epsilon
        if bound == "point":
            return k / m <= eps
        lo, hi = clopper_pearson(k, m)
        return (hi if bound == "upper" else lo) <= eps

    def most(self, bound: str) -> int:
        """The largest exceedance count :meth:`allows` (-1: none); every count above is
        refused, since the estimate and both interval bounds grow with the count
        (``tests/solver/test_horizon_paths.py`` checks the rounded values do too)."""
        cached = self._most.get(bound)
        if cached is None:
            if not self.allows(0, bound):
                cached = -1
            else:
                hi = 1
                while hi <= self.n_draws and self.allows(hi, bound):
                    hi *= 2
                cached = (self.n_draws if hi > self.n_draws and self.allows(self.n_draws, bound)
                          else _bisect_last(lambda k: self.allows(k, bound), hi // 2,
                                            min(hi, self.n_draws + 1)))
            self._most[bound] = cached
        return cached

    def _empirical_safe(self, usable: float) -> tuple[int | None, str, tuple[int, int] | None]:
        m, eps = self.n_draws, self.epsilon
        # scan N = 1, 2, ... (common random numbers make each step one pass) until the
        # estimate is over epsilon, then on until the interval's lower bound is too
        ks: list[int] = []
        first_over = first_lower = None
        # the scan runs over the replicas summed exactly (one more each step, incremental);
        # over a horizon up to 256 for a light-tailed replica without a clear skew (see
        # horizon_shortcut_for; the others scan to 64, scaled beyond 16): a doubling search
        # there would overshoot and re-sum the counts passed on the way (10x the CPU time)
        sim = self.sim
        assert sim is not None  # callers check
        scan = _scan_limit(sim)
        n = 1
        while n <= scan:
            k = self.exceedances(n, usable)
            ks.append(k)
            if first_over is None and k / m > eps:
                first_over = n
            if first_over is not None and clopper_pearson(k, m)[0] > eps:
                first_lower = n
                break
            n += 1
        counts = np.asarray(ks)
        upper = _cp_upper(counts, m)
        over_upper = np.flatnonzero(upper > eps)
        first_upper = int(over_upper[0]) + 1 if over_upper.size else None
        if first_lower is None:
            # beyond the summed replicas: search on the extrapolated totals
            def ok(q: int, bound: str) -> bool:
                # exceedances(q) <= the largest count the bound allows: over a horizon
                # the draws near the capacity are evaluated only when bounds leave it open
                return sim.exceeds_at_most(q, self._threshold(q, usable) * (1 + _FIT_RTOL),
                                           self.most(bound))

            start = scan
            if first_over is None:
                first_over = _first_fail(lambda q: ok(q, "point"), start)
            if first_upper is None:
                first_upper = _first_fail(lambda q: ok(q, "upper"), start)
            first_lower = _first_fail(lambda q: ok(q, "lower"), start)
        if first_over is None or first_lower is None or first_upper is None:
            return None, "unbounded: demand too small to limit the count", None
        return first_over - 1, "", (first_upper - 1, first_lower - 1)

    def empirical_count_from(self, usable: float, known: int) -> int | None:
        """The empirical method's count (``safe("empirical", usable)[0]``) when every count
        up to ``known`` is known to pass its point estimate at ``usable`` (the count at a
        smaller usable: the same draws exceed a larger capacity no more often). The scan
        starts after ``known`` instead of at 1; beyond the replicas summed the search is
        the one :meth:`_empirical_safe` makes, so the answer is the same count."""
        sim = self.sim
        assert sim is not None  # callers check
        m, eps = self.n_draws, self.epsilon
        scan = _scan_limit(sim)
        n = max(known, 0) + 1
        while n <= scan:
            if self.exceedances(n, usable) / m > eps:
                return n - 1
            n += 1
        first = _first_fail(lambda q: sim.exceeds_at_most(
            q, self._threshold(q, usable) * (1 + _FIT_RTOL), self.most("point")), scan)
        return None if first is None else first - 1

    def p_overload(self, n: int, usable: float) -> tuple[float, tuple[float, float] | None]:
        """P(total demand of ``n`` replicas > usable) by the risk model, with its interval."""
        if n <= 0:
            return 0.0, None
        if self.sim is not None:
            k = self.exceedances(n, usable)
            return k / self.n_draws, clopper_pearson(k, self.n_draws)
        return float(self.gaussian_p(n, usable)), None

    def curve(self, n_max: int, usable: float) -> tuple[tuple[int, float], ...]:
        ns = np.unique(np.linspace(0, max(n_max, 1), num=_CURVE_POINTS).round().astype(int))
        if self.sim is not None:
            return tuple((int(n), self.exceedances(int(n), usable) / self.n_draws if n > 0
                          else 0.0) for n in ns)
        ps = self.gaussian_p(ns, usable)
        return tuple((int(n), float(p)) for n, p in zip(ns, ps, strict=True))


def _scan_limit(sim: Simulator) -> int:
    """Counts the empirical search scans one by one: those summed exactly (64 at an instant;
    over a horizon up to the simulator's, 256 for a light-tailed replica)."""
    return MAX_SUMMED_REPLICAS if sim.h == 1 else max(MAX_SUMMED_REPLICAS,
                                                      sim.horizon_replicas)


def _cp_upper(k: np.ndarray, m: int, level: float = 0.95) -> np.ndarray:
    """Vectorised upper Clopper-Pearson bound (as in :func:`clopper_pearson`)."""
    a = (1 - level) / 2
    k = np.asarray(k, dtype=float)
    hi = special.betaincinv(k + 1, np.maximum(m - k, 1e-12), 1 - a)  # beta.ppf
    return np.where(k >= m, 1.0, hi)


def _cap(n: int) -> int | None:
    return None if n > _MAX_COUNT else max(n, 0)


def _largest(fits: Any, *, start: int = 0, limit: int = _MAX_COUNT) -> int | None:
    """Largest n in [0, limit] with fits(n), for a monotone predicate (true, then false).

    Searches from ``start`` (a guess) by doubling steps up or down, then bisection, so it
    costs O(log |answer - start|) calls. Every search ends: when ``fits(limit)`` still
    holds the count is unbounded by the inputs and None is returned; 0 when not even
    ``fits(1)`` holds (``fits(0)`` is taken as true: no replica always fits).

    For a predicate that is not monotone the answer still fits, and the search is monotone
    in the predicate: from the same ``start``, a predicate true wherever ``fits`` is never
    gives a smaller answer (the probes are the same until the first that only it passes;
    ``tests/solver/test_properties.py`` checks it). The empirical count relies on this
    beyond the replicas summed, where the exceedances need not grow with n (the sum
    switches to sign-randomised or weighted replicas): at a larger capacity or epsilon every
    count passes wherever it passed before, so the count cannot fall.
    """
    start = min(max(int(start), 0), limit)
    if start > 0 and not fits(start):
        hi, step = start, 1  # fits(hi) is false: step down to a count that fits
        while True:
            lo = max(hi - step, 0)
            if lo == 0 or fits(lo):
                break
            hi, step = lo, step * 2
    else:
        lo, step = start, 1  # fits(lo) (or lo == 0): step up until a count does not fit
        while True:
            hi = min(lo + step, limit)
            if hi == lo:
                return None
            if not fits(hi):
                break
            if hi >= limit:
                return None
            lo, step = hi, step * 2
    return _bisect_last(fits, lo, hi)


def _bisect_last(ok: Any, lo: int, hi: int) -> int:
    """The last n in [lo, hi) with ok(n), for ok true then false, given ok(lo) (or lo the
    floor) and not ok(hi): bisection, O(log(hi - lo)) calls."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _first_fail(ok: Any, start: int) -> int | None:
    """Smallest n > start with not ok(n) (ok monotone: true then false); None if unbounded."""
    last = _largest(lambda k: ok(start + k - 1) if k > 0 else True)
    return None if last is None else start + last


# -- one service ----------------------------------------------------------------------------


def _resolve_epsilon(
    resource: str, epsilon: float, incompressible_epsilon: float | None,
    per_resource: Mapping[str, float] | None,
) -> float:
    # the risks given are checked (the Settings bound); memory's derived one (epsilon x 0.1)
    # is then above 0 and not checked again: it would blame a parameter nobody gave
    settings = Settings(epsilon=epsilon, incompressible_epsilon=incompressible_epsilon)
    if per_resource and resource in per_resource:
        return check_risk(per_resource[resource], f"epsilon_per_resource[{resource!r}]")
    if resource in INCOMPRESSIBLE:
        return settings.memory_epsilon
    return settings.epsilon


def _check_epsilon(eps: Any, name: str = "epsilon") -> float:
    return check_risk(eps, name)  # one bound for every risk, with its reason


#: services named in full in an error; beyond, the first ones and the count
_NAMED_SERVICES = 20


def choose_service(names: Sequence[str], service: str | None, owner: str) -> str:
    """``service`` checked against ``names``; None: the only one. Several and none chosen:
    the error lists them and says to pass ``--service`` (it said "got None" before)."""
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:_NAMED_SERVICES]) + (
        f", ... ({len(names)} in all)" if len(names) > _NAMED_SERVICES else "")
    if service is None:
        if len(names) == 1:
            return names[0]
        raise InvalidParameter(
            "service", owner,
            f"given when there are several services ({len(names)}: {shown}): pass "
            "--service NAME (service=NAME in Python) for one of them" if names else
            "given: there is no service in the input", service)
    if service not in names:
        raise InvalidParameter("service", owner, f"one of {shown}", service)
    return service


def pick_service(profiles: Profiles, service: str | None) -> ServiceProfile:
    """The profile of ``service`` (the only one when None)."""
    return profiles[choose_service(list(profiles.services), service, "plan")]


def thin_profile_reason(sp: ServiceProfile, *, require_confidence: bool = False) -> str:
    """Why a profile is too thin to plan from, or ``""``.

    Too thin: fewer than :data:`MIN_SAMPLES_TO_PLAN` samples of every resource (no quantile
    means anything), or ``confidence == "low"`` when ``require_confidence``. A low confidence
    alone is otherwise planned, with the profile's warnings among the assumptions.
    """
    counts = [int(getattr(rp, "count", 0)) for rp in sp.resources.values()]
    if max(counts, default=0) < MIN_SAMPLES_TO_PLAN:
        return (f"profile too thin: {max(counts, default=0)} samples (< {MIN_SAMPLES_TO_PLAN}); "
                "collect for longer")
    if require_confidence and getattr(sp, "confidence", "ok") == "low":
        why = "; ".join(getattr(sp, "warnings", ())) or "too few samples or too short a span"
        return f"profile confidence is low ({why})"
    return ""


def occupied_by_others(
    profiles: Profiles, running: Mapping[str, int], service: str, *,
    valid_for_s: float | None = None, method: str | None = None,
) -> dict[str, float]:
    """What the running replicas of every service but ``service`` take, per resource column.

    Each other service counts its per-replica sizing figure (``ResourceProfile.demand``: p95
    for CPU, the maximum for memory and the rest) times its running count: a conservative
    constant, so "how many more of ``service`` fit" never leans on the others staying quiet.
    With ``valid_for_s`` (the plan's horizon) each figure is taken at the demand factor that
    service's own plan takes (:func:`demand_factor`: drift, the short-history allowance, the
    sampling widening), never past its declared limit, except for ``method="limits"``: what
    runs beside is planned for the same period ahead. Services without a profile are skipped.
    :func:`capacity.solver.more_of` is the joint alternative, with the others' demand drawn
    from their distributions and correlations.
    """
    occupied: dict[str, float] = {}
    for other, count in running.items():
        if other == service or other not in profiles.services:
            continue
        sp = profiles[other]
        for r, rp in sp.resources.items():
            figure = float(rp.demand)
            if valid_for_s is not None and method != "limits" and count:
                f = demand_factor(sp, r, float(rp.mean), valid_for_s=valid_for_s).factor
                if math.isfinite(f) and f > 1:  # NaN, no level: its own plan says so
                    # never past its declared limit: a replica cannot use more
                    limit = _limit_of(sp, r)
                    figure = min(figure * f, max(figure, limit if limit is not None
                                                 else math.inf))
            occupied[r] = occupied.get(r, 0.0) + figure * count
    return occupied


def plan(
    profiles: Profiles,
    machine: Machine,
    *,
    service: str | None = None,
    epsilon: float = DEFAULTS.epsilon,
    method: str = DEFAULTS.method,
    running: int = 0,
    occupied: Mapping[str, float] | None = None,
    incompressible_epsilon: float | None = DEFAULTS.incompressible_epsilon,
    epsilon_per_resource: Mapping[str, float] | None = None,
    quantile_level: float | None = DEFAULTS.quantile_level,
    ports: Sequence[int] = (),
    horizon_s: float | None = DEFAULTS.horizon_s,
    independent_offsets: bool = DEFAULTS.independent_offsets,
    require_confidence: bool = DEFAULTS.require_confidence,
    accept_unseen_hours: bool = DEFAULTS.accept_unseen_hours,
    n_draws: int | None = None,
    rng: np.random.Generator | None = None,
    compare: bool = True,
    valid_for_s: float | None = DEFAULTS.valid_for_s,
    settings: Settings | None = None,
    running_beside: Mapping[str, int] | None = None,
) -> Plan:
    """The largest count of ``service`` replicas that fit on ``machine`` at risk ``epsilon``.

    Parameters
    ----------
    profiles : Profiles
        Fitted profiles (one replica per service).
    machine : Machine
        Capacity and reserves (configured plus headroom).
    service : str, optional
        Which service; may be omitted when ``profiles`` has one.
    epsilon : float
        Allowed P(overload) at a random instant for compressible resources, in [1e-12, 0.5).
    method : str
        One of :data:`METHODS`; see the module docstring. Default :data:`DEFAULT_METHOD`,
        the same as the CLI's and the report's.
    running : int
        Replicas of ``service`` running now (``more`` = safe count minus these).
    running_beside : Mapping[str, int], optional
        Replicas of the other services running now, per service: for the machine's
        structural count limits (PIDs, open files, addresses), whose count in use they are
        inside of, and whose slots they take even where a machine file's count says less
        (:func:`capacity.solver._structural.structural_plan`; said in the assumptions).
        Their resource use is ``occupied``.
    occupied : Mapping[str, float], optional
        Per resource, what other containers use now (column units); left out of the capacity.
    incompressible_epsilon : float, optional
        Epsilon for memory and disk space; default ``epsilon * 0.1``.
    epsilon_per_resource : Mapping[str, float], optional
        Overrides per resource column.
    quantile_level : float, optional
        Level of the ``quantile`` method; default the profile's sizing statistic.
    ports : Sequence[int]
        Fixed host ports the service publishes: at most one replica per host ("port conflict").
    horizon_s : float, optional
        For memory and disk space with the empirical method: bound P(max over the next
        ``horizon_s`` seconds > capacity) instead of the instant risk (default 300 s,
        ``DEFAULT_HORIZON_S``; 0 or None: at an instant). Trap: with a trace step at least
        as long as the horizon (a recording of a day or more is averaged to ~2,000 points,
        43 s apart or more), the path is one step and the risk that of an instant.
    independent_offsets : bool
        Opt-in: replicas are independent (random time offsets). Never the default.
    require_confidence : bool
        Undefined (with the reason) for a profile flagged ``confidence == "low"``; by default
        it is planned and its warnings are listed among the assumptions. A profile with fewer
        than :data:`MIN_SAMPLES_TO_PLAN` samples is never planned.
    accept_unseen_hours : bool
        A profile whose history missed some hours of the day on most days it spans (its
        warning "hours of the day not seen") has no count (None, with the reason): its
        daily peak may be in those hours, and no margin for sampling at random covers that.
        True: planned from the hours it saw, and said in the assumptions.
    n_draws : int, optional
        Monte Carlo draws per resource; default :func:`default_n_draws` of its epsilon.
    rng : numpy.random.Generator, optional
        Random generator for the empirical method; default ``default_rng(0)`` (fixed seed).
    compare : bool
        Compute every method side by side (``methods``) and P(overload) by the risk model.
        False: only ``method``, and P(overload) by its own model (gaussian for the closed-form
        methods): the fast path, e.g. ~0.5 ms per service for ``gaussian``.
    settings : Settings, optional
        All of ``epsilon``, ``incompressible_epsilon``, ``method``, ``quantile_level``,
        ``horizon_s``, ``independent_offsets``, ``require_confidence``, ``valid_for_s`` at
        once (those
        arguments are then ignored), and the seed of ``rng`` when ``rng`` is not given. The
        plan keeps the settings it was made with in ``plan.settings``.

    Unknowns
    --------
    CPU and memory (:data:`REQUIRED`) are used by every container: when the machine's
    capacity or the service's demand of one of them is unknown while the other side is
    known (a spec without ``cpus``, CPU never measured), that resource could bind, so the
    count is undefined (None, with the reason), never the count of the other resources. Any
    other resource whose capacity or demand is unknown is not planned and is named in the
    assumptions.
    valid_for_s : float or None
        Planning horizon, seconds after the history ends (default
        :data:`~capacity.solver._drift.DEFAULT_VALID_FOR_S`, 7 days). Drift measured inside
        the history (a significant trend of the daily levels carried to the horizon's end,
        or the busiest whole day) scales each resource's demand; the margin it took is in the
        assumptions and ``meta["drift"]``. Histories under two whole days: not measured (said).
        None: no drift (the plan is for demand as recorded).

    Returns
    -------
    Plan

    Raises
    ------
    InvalidParameter
        epsilon outside [1e-12, 0.5), an unknown method or service, capacity at or below reserve.
    InsufficientData
        The service profile has no resource with samples.

    Examples
    --------
    >>> from capacity.solver._testing import constant_profiles
    >>> p = plan(constant_profiles({"cpu_cores": 0.5}), Machine.from_spec("cpus=4"))
    >>> p.safe_count, p.binding_resource  # 90 % of 4 CPUs usable: floor(3.6 / 1.10 / 0.5)
    (6, 'cpu_cores')
    >>> p.meta["widening"]["cpu_cores"]["replicas"]  # a 200 s history: the x1.10 allowance
    1
    >>> plan(constant_profiles({"cpu_cores": 0.5}), Machine.from_spec("cpus=4"),
    ...      valid_for_s=None).safe_count  # demand as recorded: floor(3.6 / 0.5)
    7
    """
    if settings is None:
        settings = Settings(epsilon=epsilon, incompressible_epsilon=incompressible_epsilon,
                            method=method, quantile_level=quantile_level, horizon_s=horizon_s,
                            independent_offsets=independent_offsets,
                            require_confidence=require_confidence, valid_for_s=valid_for_s,
                            accept_unseen_hours=accept_unseen_hours,
                            seed=None if rng is not None else DEFAULTS.seed)
    elif rng is not None:
        settings = settings.replace(seed=None)
    epsilon, incompressible_epsilon = settings.epsilon, settings.incompressible_epsilon
    method, quantile_level, horizon_s = settings.method, settings.quantile_level, \
        settings.horizon_s
    independent_offsets = settings.independent_offsets
    require_confidence = settings.require_confidence
    valid_for_s = settings.valid_for_s
    running = whole_count(running, "running", "plan")
    for port in ports:
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidParameter("ports", "plan", "host ports in 1..65535", port)
    sp = pick_service(profiles, service)
    if not any(int(getattr(rp, "count", 0)) > 0 for rp in sp.resources.values()):
        raise InsufficientData(
            f"service {sp.service!r} has no resource with samples: collect for longer, or "
            "check that the collector can read its cgroup"
        )
    occupied = dict(occupied or {})
    rng = rng if rng is not None else np.random.default_rng(settings.seed)
    eps_by_resource = {
        r: _resolve_epsilon(r, epsilon, incompressible_epsilon, epsilon_per_resource)
        for r in sorted(set(machine.capacity) | set(sp.resources))
    }
    draws_by_resource = {r: int(n_draws or default_n_draws(e))
                         for r, e in eps_by_resource.items()}
    thin = thin_profile_reason(sp, require_confidence=require_confidence)
    notes: set[str] = set()
    accepted, refused = unseen_hours_verdict(sp, settings.accept_unseen_hours)
    if accepted and not thin:
        notes.add(accepted)
    if refused and not thin:
        thin = refused
    per: dict[str, ResourcePlan] = {}
    drifts: dict[str, dict[str, Any]] = {}
    # resources whose demand was widened for what the history does not show (a sampling
    # fault, a daily cycle not seen): (model, usable, factor without the widening, widening)
    widened: dict[str, tuple[ResourceModel, float, float, dict[str, Any]]] = {}
    covered_s = covered_time_s(sp)
    risk_models: set[str] = set()
    for r in sorted(set(machine.capacity) | set(sp.resources)):
        capacity = machine.capacity.get(r)
        reserve = machine.reserved(r)
        occ = float(occupied.get(r, 0.0))
        if capacity is not None:
            machine.usable(r)  # a capacity of 0, or a reserve taking it all: said which
        if occ < 0 or not math.isfinite(occ):
            raise InvalidParameter(f"occupied of {r}", "plan", "a finite number >= 0", occ)
        demand = replica_demand(sp, r, independent_offsets=independent_offsets,
                                with_trace=compare or method == "empirical")
        if demand is not None:  # the host's cost of one container outside its cgroup
            demand = with_host_cost(demand, float(machine.host_cost.get(r, 0.0)))
        base: dict[str, Any] = dict(resource=r, capacity=capacity, reserve=reserve, occupied=occ,
                    epsilon=eps_by_resource[r], method=method,
                    host_cost=float(machine.host_cost.get(r, 0.0)))
        if capacity is None:
            why = next((m.split(": ", 1)[1] for m in machine.missing if m.startswith(r + ":")),
                       f"the machine spec does not give it: add {_SPEC_EXAMPLE.get(r, 'it')}")
            per[r] = ResourcePlan(safe_count=None, demand_per_replica=None,
                                  demand_at_safe_count=None, utilisation_at_safe_count=None,
                                  reason=f"{CAPACITY_UNKNOWN}: {why}", **base)
            continue
        if demand is None:
            per[r] = ResourcePlan(safe_count=None, demand_per_replica=None,
                                  demand_at_safe_count=None, utilisation_at_safe_count=None,
                                  reason=NO_SAMPLES, **base)
            continue
        if thin:
            per[r] = ResourcePlan(safe_count=None, demand_per_replica=None,
                                  demand_at_safe_count=None, utilisation_at_safe_count=None,
                                  mean_per_replica=demand.mean, reason=thin, **base)
            continue
        horizon_steps, note = horizon_steps_of(demand, horizon_s, method)
        if note:
            notes.add(f"{r}: {note}")
        model = ResourceModel(demand, epsilon=eps_by_resource[r], rng=rng,
                              n_draws=draws_by_resource[r],
                              horizon_steps=horizon_steps, quantile_level=quantile_level,
                              simulate=compare or method == "empirical")
        if demand.var > 0:
            notes.add(f"{r}: {demand.cov_note}")
        if demand.trace_note and method == "empirical":
            notes.add(f"{sp.service} {r}: {demand.trace_note}; gaussian used instead")
        df = demand_factor(sp, r, demand.mean - demand.host_cost, valid_for_s=valid_for_s,
                           covered_s=covered_s)
        measured, widening = df.measured, dict(df.widening)
        if df.drift is not None:
            drifts[r] = dict(df.drift)
            notes.add(drift_note(r, valid_for_s, df.drift, method, host_share_of(demand)))
        if math.isnan(df.factor):  # a fault named, and no effective samples: no level
            per[r] = ResourcePlan(safe_count=None, demand_per_replica=None,
                                  demand_at_safe_count=None, utilisation_at_safe_count=None,
                                  mean_per_replica=demand.mean,
                                  reason=widening["sampling"]["reason"], **base)
            continue
        factor = df.factor
        usable = capacity - reserve - occ
        per[r] = _resource_plan(model, method, base, usable=usable,
                                compare=compare, drift_factor=factor)
        if widening:
            widened[r] = (model, usable, measured, widening)
        risk_models.add(model.risk_model)
    # what each widening cost in replicas: the count without it, from the same draws (after
    # every resource is planned: a search may draw more replicas from the shared generator)
    widenings: dict[str, dict[str, Any]] = {}
    for r, (model, usable, measured, widening) in widened.items():
        chosen = per[r].method
        n = per[r].safe_count
        before = (n if n is None or widening["factor"] <= 1.0
                  else _count_at(model, chosen, usable, measured, known=n))
        widening.update(margin=1.0 - 1.0 / widening["factor"], count=n,
                        count_without=before,
                        replicas=None if n is None or before is None else before - n)
        widenings[r] = widening
        what = widening_what(widening)
        if chosen == "limits":  # a declared limit caps demand: neither widening applies
            notes.add(f"{r}: not widened: the limits method plans at the declared limit "
                      f"(the widening for {what}, x{widening['factor']:.3f}, not applied)")
            continue
        if widening["factor"] <= 1.0:  # a fault named, but no margin (said in its reason)
            notes.add(f"{r}: not widened: {widening['sampling']['reason']}")
            continue
        notes.add(f"{r}: widened for {what}: demand x{widening['factor']:.3f}, "
                  + margin_text(widening["factor"], host_share_of(model.demand))
                  + (f", {widening['replicas']} replica(s) ({before} -> {n})"
                     if widening["replicas"] is not None else "")
                  + (f"; measured drift x{measured:.3f} on top" if measured > 1 else ""))
        if "sampling" in widening:
            notes.add(f"{r}: {widening['sampling']['reason']}")
    if machine.limits:  # structural count limits (PIDs, open files, addresses)
        from ._structural import stale_in_use_note, structural_plan

        beside = {s: int(n) for s, n in (running_beside or {}).items() if s != sp.service}
        for lim in machine.limits:
            counted = structural_plan(lim, sp.service, running=running,
                                      headroom=machine.headroom, beside=beside)
            if counted is not None:
                per[lim.resource] = counted
                stale = stale_in_use_note(lim, {**beside, sp.service: running})
                if stale:
                    notes.add(stale)
    return _assemble(sp, machine, per, method=method, epsilon=epsilon, running=running,
                     ports=tuple(ports), risk_models=risk_models, notes=notes,
                     incompressible_epsilon=settings.memory_epsilon,
                     horizon_s=horizon_s, n_draws=draws_by_resource, thin=thin,
                     quantile_level=quantile_level, settings=settings, drift=drifts,
                     valid_for_s=valid_for_s, widening=widenings)



def unseen_hours_of(sp: ServiceProfile) -> str:
    """The hours of the day a profile's history missed on most days it spans, as its
    warning names them (``"12:00-14:00 UTC"``); ``""`` when it saw every hour."""
    unseen = next((w for w in getattr(sp, "warnings", ()) if w.startswith(UNSEEN_HOURS_WARNING)),
                  "")
    return unseen.split(" (", 1)[0].removeprefix(UNSEEN_HOURS_WARNING).lstrip(": ")


def unseen_hours_verdict(sp: ServiceProfile, accept: bool) -> tuple[str, str]:
    """``(note, refusal)`` for a profile whose history missed some hours of the day on most
    days (its warning :data:`~capacity.model._fit.UNSEEN_HOURS_WARNING`): with ``accept`` the
    note said among the assumptions, else the reason no count is given (the hours and the
    flag named); ``("", "")`` for a history that saw every hour. Single-service plans and
    mixes (:class:`capacity.solver.MixModel`) judge it with this one function."""
    unseen = unseen_hours_of(sp)
    if not unseen:
        return "", ""
    hours = f"{UNSEEN_HOURS_WARNING}: {unseen}"
    if accept:
        return (f"{hours}: planned from the hours seen, as accepted (--accept-unseen-hours); "
                "a load that peaks in the hours not seen is not planned for"), ""
    return "", (f"{hours}: the daily peak may be in them, and no margin covers a gap that "
                "recurs at the same time of day; collect over those hours, or accept planning "
                "from the hours seen (--accept-unseen-hours)")


@dataclass(frozen=True)
class DemandFactor:
    """What one service's demand of one resource is planned at, times its profile, for a
    period ahead (issue 13): drift carried over ``valid_for_s`` (or the stated allowance for
    a history under two days' worth, :mod:`capacity.solver._drift`), times the widening for a
    sampling fault (:mod:`capacity.solver._coverage`). A single-service plan and a mix of
    services (:class:`capacity.solver.MixModel`) take the same factor from
    :func:`demand_factor`; neither applies it to the ``limits`` method (a declared limit caps
    demand whatever its drift).

    Attributes
    ----------
    factor : float
        One replica's own demand is planned at ``factor`` times the profile (>= 1; NaN: a
        sampling fault left no level to plan from, ``widening["sampling"]["reason"]`` says
        why); the host cost per container is added unscaled
        (:func:`capacity.solver._demand.with_factor`).
    measured : float
        The measured drift (trend or busiest day) inside ``factor``; 1 when none was
        measured (an allowance is a widening, not a measurement).
    drift : Mapping or None
        ``factor``, ``margin``, ``days``, ``slope_per_day``, ``busiest_day``, ``reason`` of
        the drift (a plan's ``meta["drift"][resource]``); None when ``valid_for_s`` is None.
    widening : Mapping
        ``allowance`` (the drift allowance for a daily cycle not measured) and ``sampling``
        (the fault's ``factor``, ``margin``, ``effective_samples``, ``span_instants``,
        ``autocorrelation_time``, ``cv``, ``reason``) where taken, and ``factor`` (what both
        take together: ``factor / measured``); empty when neither applies.
    """

    factor: float
    measured: float
    drift: Mapping[str, Any] | None
    widening: Mapping[str, Any]

    @property
    def margin(self) -> float:
        """Share of the usable capacity the factor takes: ``1 - 1 / factor``."""
        return 1.0 - 1.0 / self.factor

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a factor that is not a number (a sampling fault left no effective
        samples: no count) is null, as every undefined figure of a plan is."""
        out = {"factor": self.factor, "margin": self.margin, "measured_drift": self.measured,
               "drift": None if self.drift is None else dict(self.drift),
               "widening": {k: dict(v) if isinstance(v, Mapping) else v
                            for k, v in self.widening.items()}}
        return cast(dict[str, Any], _finite_or_null(out))


def _finite_or_null(value: Any) -> Any:
    """``value`` with every float that is NaN or infinite replaced by None (JSON null),
    through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value


def demand_factor(sp: ServiceProfile, resource: str, mean: float, *,
                  valid_for_s: float | None, covered_s: float | None = None) -> DemandFactor:
    """The :class:`DemandFactor` of ``resource`` of the service ``sp``.

    ``mean``: one replica's mean demand without the host's cost per container (the cost
    does not drift). ``valid_for_s``: the planning horizon, seconds (None: no drift, no
    allowance). ``covered_s``: :func:`covered_time_s` of ``sp`` (computed when None).
    The sampling widening is counted per replica running at once in the history
    (:func:`replicas_at_once`), whatever count is planned.

    >>> from capacity.solver._testing import constant_profiles
    >>> sp = constant_profiles({"cpu_cores": 0.5})["svc"]  # a 200 s history
    >>> demand_factor(sp, "cpu_cores", 0.5, valid_for_s=86_400.0).factor
    1.1
    >>> demand_factor(sp, "cpu_cores", 0.5, valid_for_s=None).factor
    1.0
    """
    rp = sp.resources[resource]
    factor = measured = 1.0
    drift_entry: dict[str, Any] | None = None
    widening: dict[str, Any] = {}
    if valid_for_s is not None:
        drift = drift_of(tuple(getattr(rp, "daily_levels", ()) or ()), mean, valid_for_s,
                         covered_s=covered_time_s(sp) if covered_s is None else covered_s)
        factor = drift.factor
        drift_entry = {"factor": drift.factor, "margin": drift.margin, "days": drift.days,
                       "slope_per_day": drift.slope_per_day,
                       "busiest_day": drift.busiest_day, "reason": drift.reason,
                       "trend_carried_s": drift.trend_carried_s}
        if drift.factor > 1 and drift.busiest_day is None:
            # an allowance for a cycle not measured, not a measured drift
            widening["allowance"] = drift.factor
        else:
            measured = drift.factor
    # a sampling fault (gaps, irregular or changed intervals): fewer looks than the span
    cov = coverage_widening(getattr(sp, "warnings", ()), getattr(sp, "effective_samples", None),
                            getattr(sp, "span_instants", None), replicas=replicas_at_once(sp),
                            mean=float(rp.mean), std=float(rp.std), trace=rp.trace,
                            trace_interval_s=float(rp.trace_interval_s),
                            interval_s=float(sp.interval_s))
    if cov.reason:
        widening["sampling"] = {"factor": cov.factor, "margin": cov.margin,
                                "effective_samples": cov.effective_samples,
                                "span_instants": cov.span_instants,
                                "autocorrelation_time": cov.tau, "cv": cov.cv,
                                "reason": cov.reason}
    factor *= cov.factor
    if widening:
        widening["factor"] = factor / measured
    return DemandFactor(factor, measured, drift_entry, widening)


def drift_note(label: str, valid_for_s: float | None, drift: Mapping[str, Any],
               method: str, host_share: float = 0.0) -> str:
    """The assumption that says the drift of ``label`` (a resource, or ``service resource``
    in a mix) and the margin it took (none for the ``limits`` method). ``host_share``: the
    share of one replica's mean demand that is the host cost per container (see
    :func:`margin_text`)."""
    return (f"{label}: drift over {(valid_for_s or 0.0) / 86_400:g} d: {drift['reason']}"
            + ("; not applied to the limits method (a declared limit caps demand)"
               if method == "limits" else
               "; " + margin_text(drift["factor"], host_share, "{:.0%}")
               if drift["factor"] > 1 else "; no margin"))


def margin_text(factor: float, host_share: float, fmt: str = "{:.1%}") -> str:
    """``"margin 9% of the usable capacity"`` for demand planned at ``factor``: ``1 - 1 /
    factor`` when one replica's demand is all its own; with the host cost per container
    ``host_share`` of it (which does not drift) the factor takes ``1 - 1 / (1 + (factor - 1)
    (1 - host_share))``, and the text says why it is smaller where that shows in ``fmt``."""
    own = min(max(1.0 - host_share, 0.0), 1.0)
    margin = fmt.format(1.0 - 1.0 / (1.0 + (factor - 1.0) * own))
    text = f"margin {margin} of the usable capacity"
    if margin != fmt.format(1.0 - 1.0 / factor):
        text += (f" (the host cost per container, {host_share:.0%} of a replica's mean, "
                 "does not drift)")
    return text


def host_share_of(demand: ReplicaDemand) -> float:
    """The share of one replica's mean demand (``demand``, host cost included) that is the
    host cost per container; 0 without one."""
    return demand.host_cost / demand.mean if demand.host_cost > 0 and demand.mean > 0 else 0.0


def widening_what(widening: Mapping[str, Any]) -> str:
    """What a :attr:`DemandFactor.widening` widened for, in words."""
    return " and ".join(
        w for w, on in (("the daily cycle not measured (drift allowance "
                         f"x{widening.get('allowance', 1.0):.2f})",
                         "allowance" in widening),
                        ("a sampling fault (x"
                         f"{widening.get('sampling', {}).get('factor', 1.0):.3f})",
                         "sampling" in widening)) if on)


def replicas_at_once(sp: ServiceProfile) -> float:
    """How many of the service's containers ran at once, on average: the instants a regular
    history of them holds (``span_instants``) over the instants of the service's span; the
    containers seen (``replicas_seen``) when the profile does not say. A service redeployed
    daily under new names has seen 9 containers where 3 ran at a time: per-replica figures
    divide by 3."""
    seen = float(int(getattr(sp, "replicas_seen", 1) or 1))
    span_instants = getattr(sp, "span_instants", None)
    step = float(sp.interval_s) if sp.interval_s > 0 else 0.0
    if span_instants is None or not step > 0:
        return max(seen, 1.0)
    return min(max(float(span_instants) / (float(sp.span_s) / step + 1.0), 1.0), seen)


def covered_time_s(sp: ServiceProfile) -> float:
    """Seconds of demand one replica's history saw: its span plus one interval; for a
    profile with a named sampling fault, its effective samples per replica times the
    interval when fewer (a gap covers none of its time). Drift is measured only on two
    days' worth of covered time, not on a calendar span a gap stretched."""
    step = float(sp.interval_s) if sp.interval_s > 0 else 0.0
    covered = float(sp.span_s) + step
    eff = getattr(sp, "effective_samples", None)
    if eff is not None and step > 0 and has_sampling_fault(getattr(sp, "warnings", ())):
        covered = min(covered, float(eff) / replicas_at_once(sp) * step)
    return covered


def _count_at(model: ResourceModel, method: str, usable: float, factor: float,
              known: int | None = None) -> int | None:
    """The safe count by ``method`` with one replica's own demand scaled by ``factor``, the
    host cost not (as :func:`_resource_plan` counts it: never below the count at the
    declared limits).
    ``known``: the count at a larger factor, where the empirical method's scan may start
    (not with a declared limit: that count may be the at-limits floor, taken at the
    unscaled capacity, which need not pass at this one)."""
    if method == "limits":
        return model.safe(method, usable)[0]
    view = model.at_factor(factor)
    if (method == "empirical" and known is not None and model.sim is not None
            and usable > 0 and not model.demand.limit):
        n = view.empirical_count_from(usable, known)
    else:
        n = view.safe(method, usable)[0]
    limit = model.demand.limit
    if factor > 1 and n is not None and limit and usable > 0:
        n = max(n, math.floor(usable / limit * (1 + _FIT_RTOL)))
    return n


def horizon_steps_of(demand: ReplicaDemand, horizon_s: float | None,
                     method: str) -> tuple[int, str]:
    """``(path length in trace steps, note)`` of the risk over ``horizon_s`` seconds for
    ``demand``: > 1 only for an incompressible resource (memory, disk space) with a trace
    step; the note (else ``""``) says when the path is longer than the recorded trace and
    the empirical method only replays it. Single-service plans and mixes
    (:class:`capacity.solver.MixModel`) take the horizon from this one function."""
    if not (horizon_s and demand.resource in INCOMPRESSIBLE and demand.trace_interval_s > 0):
        return 1, ""
    steps = max(1, round(horizon_s / demand.trace_interval_s))
    held = max(demand.own.size, demand.shared.size)
    if demand.has_trace and steps > held and method == "empirical":
        # a path longer than the trace only replays it (_demand.TraceSimulator)
        return steps, (f"horizon {horizon_s:g} s is longer than the recorded trace "
                       f"({held * demand.trace_interval_s:g} s): the risk is of exceeding "
                       "at any moment of the trace replayed, not over the whole horizon; "
                       "record a longer history or give a shorter --horizon")
    return steps, ""


def _resource_plan(
    model: ResourceModel, method: str, base: dict[str, Any], *, usable: float,
    compare: bool = True, drift_factor: float = 1.0,
) -> ResourcePlan:
    """One resource's plan; one replica's own demand scaled by ``drift_factor`` (>= 1), the
    host cost per container added unscaled (:meth:`ResourceModel.at_factor`), except for
    ``limits`` (a declared limit caps demand whatever its drift) and never past the limit:
    N replicas that fit at their limits fit whatever the drift."""
    capacity = float(base["capacity"])
    counts: dict[str, int | None] = {}
    reasons: dict[str, str] = {}
    intervals: dict[str, tuple[int, int] | None] = {}
    limit = model.demand.limit
    # capped as every count is (cpus=1e300 made it a 300-digit int the risk curve choked on)
    # (and a limit of 1e-313 cores made usable / limit inf, which floor() refuses)
    at_limits = (int(min(usable / limit * (1 + _FIT_RTOL), _MAX_COUNT))
                 if limit and usable > 0 else 0)
    for m in (METHODS if compare else (method, "gaussian")):
        if m not in counts:
            counts[m], reasons[m], intervals[m] = model.at_factor(
                1.0 if m == "limits" else drift_factor).safe(m, usable)
            c = counts[m]
            if m != "limits" and drift_factor > 1 and c is not None and c < at_limits:
                counts[m], intervals[m] = at_limits, None
    chosen = method
    if counts[method] is None and method == "empirical" and not model.demand.has_trace:
        chosen = "gaussian"  # no usable trace: say so in the assumptions, plan by gaussian
    n = counts[chosen]
    mean = model.demand.mean
    base = {**base, "method": chosen}
    if n is None:
        return ResourcePlan(safe_count=None, demand_per_replica=None, demand_at_safe_count=None,
                            utilisation_at_safe_count=None, reason=reasons[chosen],
                            mean_per_replica=mean, methods=counts, **base)
    scale = drift_factor if chosen != "limits" else 1.0
    ahead = model.at_factor(scale)  # risk figures at the demand for the period ahead
    total = ahead.bound(chosen, n)
    if total is not None and scale != 1.0 and limit and n > 0:
        # the demand planned for the period ahead (what the count was compared with), never
        # past the declared limits: replicas at their limits fit whatever the drift
        total = min(total, n * limit)
    fixed = base["reserve"] + base["occupied"]
    p_n, p_interval = ahead.p_overload(n, usable)
    p_next, _ = ahead.p_overload(n + 1, usable)
    per_replica = (ahead.per_replica(chosen)[0] if chosen in ("limits", "peak", "quantile")
                   else ahead.planned.mean)
    curve = ahead.curve(max(math.ceil((n + 1) * 1.5), n + 2), usable)
    if at_limits:
        # demand is capped at the declared limit: counts that fit at their limits cannot
        # overload, whatever the drift or widening the risk model was run with (it showed
        # P(overload) 0.83 at a count the at-limits rule had set)
        if n <= at_limits:
            p_n, p_interval = 0.0, None
        if n + 1 <= at_limits:
            p_next = 0.0
        curve = tuple((k, 0.0 if k <= at_limits else p) for k, p in curve)
    return ResourcePlan(
        safe_count=n,
        demand_per_replica=(total / n) if (total is not None and n > 0) else per_replica,
        demand_at_safe_count=total,
        utilisation_at_safe_count=None if total is None else (fixed + total) / capacity,
        reason=reasons[chosen] or ("" if n > 0 else "not even one replica fits"),
        mean_per_replica=mean,
        expected_utilisation_at_safe_count=(fixed + n * mean) / capacity,
        expected_utilisation_at_next=(fixed + (n + 1) * mean) / capacity,
        p_overload_at_safe_count=p_n,
        p_overload_interval_at_safe_count=p_interval,
        p_overload_at_next=p_next,
        safe_count_interval=intervals[chosen],
        methods=counts,
        risk_curve=curve,
        **base,
    )


def _binding(per: Mapping[str, ResourcePlan], counts: Mapping[str, int | None],
             ports: tuple[int, ...]) -> tuple[int | None, str | None]:
    known = {r: c for r, c in counts.items() if c is not None}
    binding = min(known, key=lambda r: (known[r], r)) if known else None
    n = known[binding] if binding is not None else None
    if ports and (n is None or n > 1):
        return 1, PORT_CONFLICT
    return n, binding


def _assemble(
    sp: ServiceProfile, machine: Machine, per: dict[str, ResourcePlan], *, method: str,
    epsilon: float, running: int, ports: tuple[int, ...], risk_models: set[str],
    notes: set[str], incompressible_epsilon: float, horizon_s: float | None,
    n_draws: Mapping[str, int], thin: str, quantile_level: float | None,
    settings: Settings,
    drift: Mapping[str, Any] | None = None, valid_for_s: float | None = None,
    widening: Mapping[str, Any] | None = None,
) -> Plan:
    hours = unseen_hours_of(sp)
    safe, binding = _binding(per, {r: p.safe_count for r, p in per.items()}, ports)
    unknown = _unknown_required(per)
    methods: dict[str, dict[str, Any]] = {}
    for m in METHODS:
        if not any(m in p.methods for p in per.values()):
            continue  # not computed (compare=False)
        counts = {r: p.methods.get(m) for r, p in per.items() if p.methods}
        ms, mb = _binding(per, counts, ports)
        methods[m] = ({"safe_count": None, "binding_resource": None} if unknown else
                      {"safe_count": ms, "binding_resource": mb})
    reason = ""
    if unknown and not thin:
        safe, binding = None, None
        reason = "; ".join(unknown)
    elif safe is None:
        reason = thin or "; ".join(f"{r}: {p.reason}" for r, p in per.items() if p.reason) \
            or "no resource could be planned"
    risk_model = "empirical" if risk_models == {"empirical"} else (
        "gaussian" if risk_models == {"gaussian"} else "empirical where a trace exists, "
        "else gaussian")
    level = ("the profile's sizing statistic (CPU p95, others max)" if quantile_level is None
             else f"p{quantile_level * 100:g}")
    assumptions = [
        f"method {method}; P(overload) by the {risk_model} risk model",
        f"epsilon {epsilon:g} for CPU, network and disk I/O (compressible: overload throttles); "
        f"{incompressible_epsilon:g} for memory and disk space (incompressible: OOM kill, full "
        "disk)",
        "risk at a random instant of one sampling interval "
        f"({sp.interval_s:g} s)" + (f"; memory and disk space over a {horizon_s:g} s horizon"
                                   if horizon_s else ""),
        f"data: {sp.n_samples} samples from {sp.replicas_seen} replica(s) over "
        f"{sp.span_s:g} s; profile confidence {getattr(sp, 'confidence', 'unknown')}",
        f"reserves: {dict(machine.reserve) or 'none configured'}; headroom "
        f"{machine.headroom:.0%} of capacity",
        f"quantile method level: {level}",
        *sorted(notes),
    ]
    if "empirical" in risk_model:
        assumptions.append(
            f"empirical: {sorted(set(n_draws.values()))} Monte Carlo draws per resource (block "
            "bootstrap of the recorded trace, own components summed up to "
            f"{MAX_SUMMED_REPLICAS} replicas, beyond scaled by sqrt(N/{MAX_SUMMED_REPLICAS}), "
            "sign-randomised for a left-skewed replica"
            + (f"; over the horizon K = {MAX_SUMMED_REPLICAS_HORIZON} (as they are, "
               "sign-randomised or with random weights: the first whose tail a "
               "Cornish-Fisher expansion leaves at least N replicas'; else up to "
               f"{MAX_SUMMED_REPLICAS_HORIZON_EXACT} summed exactly), beyond scaled by "
               "sqrt(N/K)"
               if horizon_s else "")
            + "), 95 % Clopper-Pearson interval on P(overload); fixed seed"
        )
        # below about 3.7 / n_draws not even zero overloads among the draws shows the risk
        # is under epsilon: say so, the count is then "none seen in the draws"
        unresolved = sorted(
            (r, p.epsilon, n_draws[r]) for r, p in per.items()
            if p.safe_count_interval is not None and r in n_draws
            and p.epsilon is not None and p.epsilon * n_draws[r] < _ZERO_OF_N_UPPER)
        assumptions += [
            f"{r}: epsilon {e:g} is below what {n:,} draws resolve (zero overloads among "
            f"them bound the risk only to {_ZERO_OF_N_UPPER / n:.2g}): the empirical count is "
            "the largest with no overload in the draws, not one shown to meet epsilon; "
            "compare the gaussian count or plan at a larger epsilon"
            for r, e, n in unresolved]
    assumptions += [f"capacity unknown, not planned: {m}" for m in machine.missing
                    if m.split(":", 1)[0] not in REQUIRED]
    assumptions += [f"demand unknown, not planned: {r} ({p.reason})" for r, p in per.items()
                    if r not in REQUIRED and p.reason == NO_SAMPLES and p.capacity is not None]
    assumptions += [f"{r} not planned: neither the machine nor the profile gives it"
                    for r in REQUIRED if r not in per]
    if ports:
        assumptions.append(f"fixed host port(s) {list(ports)}: one replica per host")
    assumptions += [f"profile warning: {w}" for w in getattr(sp, "warnings", ())]
    # what the history does not cover and how the split was widened (model notes)
    assumptions += [f"profile note: {n}" for n in getattr(sp, "notes", ())
                    if "daily cycle" in n or "window widened" in n]
    if sp.cpu_limit_cores or sp.memory_limit_bytes:
        assumptions.append("demand capped at the declared limits (a replica cannot use more)")
    return Plan(
        service=sp.service, machine=machine, method=method, epsilon=epsilon, safe_count=safe,
        binding_resource=binding, per_resource=per, running=running,
        assumptions=tuple(assumptions),
        meta={"n_draws": dict(n_draws), "interval_s": sp.interval_s, "span_s": sp.span_s,
              "replicas_seen": sp.replicas_seen,
              "confidence": getattr(sp, "confidence", "unknown"),
              "valid_for_s": valid_for_s, "drift": dict(drift or {}),
              **({"widening": dict(widening)} if widening else {}),
              # a history that missed these hours of the day on most days: refused (no
              # count) unless accepted; the report's plan.json says which, per service
              **({"unseen_hours": {"hours": hours,
                                   "accepted": settings.accept_unseen_hours}}
                 if hours else {})},
        risk_model=risk_model, incompressible_epsilon=incompressible_epsilon,
        horizon_s=horizon_s, reason=reason, ports=ports, methods=methods, settings=settings,
    )


def _unknown_required(per: Mapping[str, ResourcePlan]) -> list[str]:
    """Why a required resource (CPU, memory) is unknown while it could bind, one per resource.

    It could bind when one side is known: the machine gives its capacity but the service was
    never measured on it, or the service was measured but the machine's capacity is not given.
    """
    out = []
    for r in REQUIRED:
        rp = per.get(r)
        if rp is None or rp.safe_count is not None:
            continue
        if rp.reason.startswith(CAPACITY_UNKNOWN):
            why = rp.reason.removeprefix(CAPACITY_UNKNOWN).lstrip(": ")
            out.append(f"{r} unknown: its capacity is not known ({why}); it could bind, so "
                       "the count is undefined")
        elif rp.reason == NO_SAMPLES:
            out.append(f"{r} unknown: no samples of it for this service; it could bind, so "
                       "the count is undefined (check that the collector reads this "
                       "container's cgroup, or collect again)")
    return out
