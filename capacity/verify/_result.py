"""Result records of ``capacity verify``: frozen dataclasses with ``to_dict``.

JSON (``kind: "capacity.verify"``, ``schema_version: 1``): ``workloads``, ``ratio`` (per
service, replicas per unit of the count), ``sandbox`` (``cpus``, ``memory_bytes``,
``cgroup_version``), ``limits`` (``max_throttled``, ``hold_s``, ``probe``), ``steps`` (one per
count tried, in order), ``measured_count`` (largest count that passed; units of the ratio),
``measured_exact`` (False when the ramp stopped at ``max_count`` without a failure),
``measured_by_resource`` (per resource: ``count`` and ``exact``; a resource that did not fail
is a lower bound), ``failure`` (why ``measured_count + 1`` failed), ``prediction`` (per method:
``safe_count``, ``binding_resource``, ``per_resource``; ``claimed_risk`` per resource at the
default method's count), and ``comparison`` (per method, and ``plan`` for the plan's answer:
predicted, measured, relative error, ``over``: True when the prediction is above the measured
capacity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "VERIFY_SCHEMA_VERSION",
    "MethodPrediction",
    "Prediction",
    "Step",
    "VerifyResult",
]

VERIFY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Step:
    """One count held in the sandbox, and what happened.

    ``count`` is in units of the ratio (replicas for one service); ``counts`` per service.
    ``throttled_fraction`` is throttled CFS periods / periods of the sandbox during the hold
    (``cpu_throttled_seconds`` the time its tasks waited meanwhile, summed over tasks: a
    quota filled to exactly 100 % throttles most periods by a little, since the replicas'
    own periods are not aligned with the sandbox's);
    ``cpu_cores`` its mean CPU use; ``oom_kills`` kills in the sandbox (cgroup counters and
    containers' ``OOMKilled`` state, whichever is larger); ``host_other_cores`` the CPU the rest
    of the host used meanwhile, and ``contended`` True when it left the sandbox less than its
    quota (then a CPU count that passed is not trustworthy: verify on a quiet host);
    ``failed_replicas`` replicas that did not start or ended; ``memory_failcnt`` charges that
    hit the limit (reclaim, not a failure by itself); ``probe_*`` the user probe (None without one).
    """

    count: int
    counts: Mapping[str, int]
    passed: bool
    reason: str
    failed_resource: str | None
    oom_kills: int
    failed_replicas: int
    memory_failcnt: int
    memory_usage_bytes: int
    memory_peak_bytes: int | None
    throttled_fraction: float
    cpu_cores: float
    held_s: float
    probe_runs: int = 0
    probe_failures: int = 0
    probe_latency_max_s: float | None = None
    host_other_cores: float = 0.0
    contended: bool = False
    cpu_throttled_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = dict(self.counts)
        return d


@dataclass(frozen=True)
class MethodPrediction:
    """One solver method's answer: count (units of the ratio), binding resource, per resource."""

    method: str
    safe_count: int | None
    binding_resource: str | None
    per_resource: Mapping[str, int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "safe_count": self.safe_count,
                "binding_resource": self.binding_resource, "per_resource": dict(self.per_resource)}


@dataclass(frozen=True)
class Prediction:
    """What the project's own collector, fit and solver predicted for the sandbox.

    ``claimed_risk`` is, per resource, P(overload) the default method claimed at its count
    (``safe_count``: the plan's answer, see the property);
    ``epsilon``/``incompressible_epsilon`` the risks asked for; ``profile`` per service and
    resource the mean, p99 and max of one replica (column units) from the short collection.
    """

    default_method: str
    epsilon: float
    incompressible_epsilon: float
    methods: Mapping[str, MethodPrediction]
    claimed_risk: Mapping[str, float | None]
    profile: Mapping[str, Mapping[str, Mapping[str, float]]]
    collection: Mapping[str, Any]
    assumptions: tuple[str, ...] = ()
    plan_count: int | None = None
    plan_methods: Mapping[str, str] = field(default_factory=dict)

    @property
    def safe_count(self) -> int | None:
        """The plan's answer with the default method. Where that method is undefined for a
        resource (``empirical`` without a trace of 30 points) the solver plans it by
        ``gaussian`` (``plan_methods`` says which method each resource used)."""
        if self.plan_count is not None:
            return self.plan_count
        return self.methods[self.default_method].safe_count

    def to_dict(self) -> dict[str, Any]:
        return {
            "default_method": self.default_method, "epsilon": self.epsilon,
            "incompressible_epsilon": self.incompressible_epsilon,
            "safe_count": self.safe_count,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
            "claimed_risk": dict(self.claimed_risk),
            "profile": {s: {r: dict(v) for r, v in res.items()} for s, res in self.profile.items()},
            "collection": dict(self.collection), "assumptions": list(self.assumptions),
            "plan_methods": dict(self.plan_methods),
        }


@dataclass(frozen=True)
class VerifyResult:
    """Measured capacity of a sandbox sized like the target, beside the prediction."""

    workloads: tuple[Mapping[str, Any], ...]
    ratio: Mapping[str, int]
    sandbox: Mapping[str, Any]
    limits: Mapping[str, Any]
    steps: tuple[Step, ...]
    measured_count: int
    measured_exact: bool
    failure: str
    measured_by_resource: Mapping[str, Mapping[str, Any]]
    prediction: Prediction | None = None
    elapsed_s: float = 0.0

    def comparison(self) -> dict[str, dict[str, Any]]:
        """Per method: predicted vs measured, relative error, and whether it is above."""
        out: dict[str, dict[str, Any]] = {}
        if self.prediction is None:
            return out
        m = self.measured_count
        for name, p in self.prediction.methods.items():
            n = p.safe_count
            out[name] = {
                "predicted": n, "measured": m,
                "relative_error": None if n is None or m == 0 else (n - m) / m,
                "over": None if n is None else n > m,
                "measured_is_lower_bound": not self.measured_exact,
            }
        n = self.prediction.safe_count  # the plan's answer (default method, with fallback)
        out["plan"] = {"predicted": n, "measured": m,
                       "relative_error": None if n is None or m == 0 else (n - m) / m,
                       "over": None if n is None else n > m,
                       "measured_is_lower_bound": not self.measured_exact}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": VERIFY_SCHEMA_VERSION, "kind": "capacity.verify",
            "workloads": [dict(w) for w in self.workloads], "ratio": dict(self.ratio),
            "sandbox": dict(self.sandbox), "limits": dict(self.limits),
            "steps": [s.to_dict() for s in self.steps],
            "measured_count": self.measured_count, "measured_exact": self.measured_exact,
            "failure": self.failure,
            "measured_by_resource": {k: dict(v) for k, v in self.measured_by_resource.items()},
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "comparison": self.comparison(), "elapsed_s": self.elapsed_s,
        }
