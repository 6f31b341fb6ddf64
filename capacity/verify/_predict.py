"""The prediction ``verify`` checks: profile at a small replica count, then every solver method.

The profile is collected the way a user would on staging: ``replicas`` copies of each
workload run *unconstrained* (no sandbox), the project's collector samples them
(:func:`capacity._pipeline.collect_samples`), the default :class:`~capacity.model.ProfileModel`
fits them, and :func:`capacity.solver._plan.plan` (one service) or
:func:`capacity.solver._mix.ratio` (a mix) answers for the target machine with each method.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .._columns import CPU, MEMORY
from .._settings import DEFAULTS
from ..model._fit import ProfileModel
from ..model._profile import Profiles
from ..solver._machine import Machine
from ..solver._plan import DEFAULT_METHOD, METHODS, plan
from ._result import MethodPrediction, Prediction
from ._workload import Replicas, Workload

__all__ = ["collect_profile", "predict", "predict_from_profiles"]

#: resources a sandbox emulates (the others are not limited by it, so not compared)
SANDBOX_RESOURCES: tuple[str, ...] = (CPU, MEMORY)


def collect_profile(
    client: Any,
    workloads: Sequence[Workload],
    *,
    replicas: int = 2,
    duration_s: float = 20.0,
    interval_s: float = 0.5,
    warmup_s: float = 1.0,
    labels: Mapping[str, str] | None = None,
    model: ProfileModel | None = None,
) -> tuple[Profiles, pd.DataFrame]:
    """Run ``replicas`` of each workload unconstrained, collect, fit; return (profiles, samples).

    Traps: the solver's empirical method needs a trace of at least 30 points, so
    ``duration_s / interval_s`` should be >= 30; a short collection gives a profile of
    confidence "low" (the model wants 3 h by default), which is planned all the same and
    stated among the plan's assumptions.
    """
    from .._errors import NoContainers
    from .._pipeline import collect_samples

    with Replicas(client, labels=labels) as reps:
        for w in workloads:
            reps.start(w, replicas)
        reps.wait_running()
        time.sleep(warmup_s)
        try:
            data = collect_samples(client, interval_s=interval_s, duration_s=duration_s,
                                   filters=reps.filters)
        except NoContainers as exc:
            # was the collector's "start some, or try 'capacity report --demo'": the
            # replicas verify itself started have exited (the command ended or failed)
            what = "; ".join(
                w.image + " " + (" ".join(w.command) if w.command else "(its own command)")
                for w in workloads)
            raise NoContainers(
                f"the replicas verify started ({what}) exited before they could be sampled: "
                "their command ended or failed; give --command a workload that keeps "
                "running for the whole check (a server, or a loop)") from exc
    # declared limits (--cpus, -m) live in the containers table: the limits method needs them
    profiles = (model or ProfileModel()).fit(data.samples, containers=data.containers).profiles_
    return profiles, data.samples


def predict_from_profiles(
    profiles: Profiles,
    machine: Machine,
    ratio: Mapping[str, int],
    *,
    epsilon: float = DEFAULTS.epsilon,
    default_method: str = DEFAULT_METHOD,
    collection: Mapping[str, Any] | None = None,
) -> Prediction:
    """Every method's count for ``ratio`` (one service: ``{name: 1}``) on ``machine``.

    Only the resources a sandbox emulates (CPU and memory) are planned: the machine is
    restricted to them, so an unknown NIC speed does not leave the plan undefined. Demand
    is planned as recorded (``valid_for_s=None``: no drift, no allowance for a daily cycle
    not seen): the sandbox measures the same workload seconds after it was recorded, not
    the period ahead a plan is for (a mix's plan likewise).
    """
    cap = {r: v for r, v in machine.capacity.items() if r in SANDBOX_RESOURCES}
    target = dataclasses.replace(machine, capacity=cap, missing=())
    methods: dict[str, MethodPrediction] = {}
    claimed: dict[str, float | None] = {}
    assumptions: tuple[str, ...] = ()
    plan_count: int | None = None
    plan_methods: dict[str, str] = {}
    if len(ratio) == 1 and next(iter(ratio.values())) == 1:
        service = next(iter(ratio))
        p = plan(profiles, target, service=service, epsilon=epsilon, method=default_method,
                 valid_for_s=None)
        for m in METHODS:
            per = {r: rp.methods.get(m) for r, rp in p.per_resource.items()
                   if r in SANDBOX_RESOURCES}
            got = p.methods.get(m, {})  # absent: not computed (a profile too thin to plan)
            methods[m] = MethodPrediction(m, got.get("safe_count"),
                                          got.get("binding_resource"), per)
        claimed = {r: rp.p_overload_at_safe_count for r, rp in p.per_resource.items()
                   if r in SANDBOX_RESOURCES}
        assumptions = (*p.assumptions, "verify: demand planned as recorded (no drift, no "
                       "allowance for a daily cycle not seen): the sandbox measures the same "
                       "workload seconds later")
        plan_count = p.safe_count
        plan_methods = {r: rp.method for r, rp in p.per_resource.items()
                        if r in SANDBOX_RESOURCES}
    else:
        from ..solver._mix import ratio as plan_ratio

        for m in METHODS:
            try:
                mp = plan_ratio(profiles, target, dict(ratio), epsilon=epsilon, method=m,
                                valid_for_s=None)
            except Exception as exc:  # a method undefined for a mix (no limits declared)
                methods[m] = MethodPrediction(m, None, None, {"reason": None})
                assumptions += (f"{m}: {exc}",)
                continue
            methods[m] = MethodPrediction(m, mp.multiple if mp.safe else None,
                                          mp.binding_resource, {})
            if m == default_method:
                claimed = {r: mr.p_overload for r, mr in mp.per_resource.items()}
                assumptions += tuple(mp.assumptions)
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for service in ratio:
        sp = profiles[service]
        summary[service] = {
            r: {"mean": float(rp.mean), "p99": float(rp.p99), "max": float(rp.max)}
            for r, rp in sp.resources.items() if r in SANDBOX_RESOURCES
        }
    return Prediction(
        default_method=default_method, epsilon=epsilon,
        incompressible_epsilon=DEFAULTS.replace(epsilon=epsilon).memory_epsilon,
        methods=methods, claimed_risk=claimed, profile=summary,
        collection=dict(collection or {}), assumptions=assumptions,
        plan_count=plan_count, plan_methods=plan_methods,
    )


def predict(
    client: Any,
    workloads: Sequence[Workload],
    machine: Machine,
    ratio: Mapping[str, int] | None = None,
    *,
    epsilon: float = DEFAULTS.epsilon,
    replicas: int = 2,
    duration_s: float = 20.0,
    interval_s: float = 0.5,
    labels: Mapping[str, str] | None = None,
) -> tuple[Prediction, Profiles]:
    """Collect a profile of ``workloads`` and predict the count for ``machine``."""
    ratio = dict(ratio or {w.name: 1 for w in workloads})
    profiles, samples = collect_profile(client, workloads, replicas=replicas,
                                        duration_s=duration_s, interval_s=interval_s,
                                        labels=labels)
    collection = {"replicas_per_service": replicas, "duration_s": duration_s,
                  "interval_s": interval_s, "rows": len(samples)}
    return predict_from_profiles(profiles, machine, ratio, epsilon=epsilon,
                                 collection=collection), profiles
