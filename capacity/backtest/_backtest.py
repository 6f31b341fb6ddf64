"""Backtest: plan on the earlier part of a history, count violations on the later part.

Given a samples table (collected, or a public trace loaded by :mod:`._traces`) of one
service's replicas:

1. **Split** by time: the first ``train_fraction`` of the span trains, the rest tests.
2. **Plan** on the training window with the default profile model and every solver method.
3. **Drift.** Fit on the first half of the training window and plan; then find, on the
   second half, the largest count (at most that plan) whose violation rate stays within each
   resource's epsilon (unless the excess is not significant: the rate's lower 95 % bound,
   one draw per instant, is within epsilon; a finite window's noise is not drift). The
   plan's relative excess is the drift ``margin`` of the method
   (0 when the first half's plan held on the second half); the method's final count is its
   training plan times ``1 - margin``, rounded down. Demand that drifts within the training
   window is expected to drift on, so the plan is held back by what it would have cost there.
4. **Test.** The final count's total demand is replayed on the test window: at each instant,
   N replica slots are assigned to the recorded replicas by ``n_assignments`` random
   permutations (slot i gets replica ``perm[i mod k]``), and the totals are compared with
   capacity minus reserve. The violation rate is the share of (instant, assignment) pairs
   above it; capacity used is the mean total over usable capacity. The test's own best count
   (the largest N within epsilon on the test window, ``oracle_count``) is given too.

Traps
-----
- With more slots than recorded replicas (N > k) replicas are reused: reused slots move
  exactly together, more correlated than real new replicas (the safe side for violations).
- A replica missing at an instant (not started yet, gone) stands in as the mean of the
  replicas present then; instants with none are dropped.
- Times of collected samples differ by milliseconds between containers: they are put on a
  grid of the median interval.
- The violation rate is per instant of the data's interval (5 min for the GCD trace): an
  overload shorter than that is invisible, as it is to the plan.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .._columns import RESOURCES
from .._errors import InsufficientData, InvalidParameter
from .._settings import DEFAULTS
from ..model._fit import ProfileModel
from ..solver._demand import clopper_pearson
from ..solver._machine import Machine
from ..solver._plan import DEFAULT_METHOD, METHODS, choose_service, plan

__all__ = ["BACKTEST_SCHEMA_VERSION", "BacktestResult", "MethodBacktest", "backtest"]

BACKTEST_SCHEMA_VERSION = 1
#: fewest instants in each of the four windows (train halves, test) to backtest at all
MIN_INSTANTS = 10


@dataclass(frozen=True)
class MethodBacktest:
    """One method's plan on the training window and what happened on the test window.

    Attributes
    ----------
    planned_count : int or None
        The method's count on the whole training window (None: undefined, see ``reason``).
    margin : float
        Drift hold-back taken, a fraction of ``planned_count`` in [0, 1).
    count : int or None
        ``floor(planned_count * (1 - margin))``: the count tested.
    violation_rate, violation_rate_without_margin : float or None
        Share of test (instant, assignment) pairs where any resource's total exceeded its
        usable capacity, at ``count`` and at ``planned_count``.
    violation_by_resource : Mapping[str, float]
        The same per resource, at ``count``.
    epsilon_by_resource : Mapping[str, float]
        Each resource's allowed rate (the solver's: memory is ``epsilon * 0.1``).
    within_epsilon : bool or None
        Every resource's violation rate at ``count`` is within its epsilon.
    utilisation_by_resource : Mapping[str, float]
        Mean total demand at ``count`` over usable capacity, on the test window.
    drift : Mapping[str, Any]
        ``first_half_count``, ``safe_on_second_half`` and ``second_half_violation_rate``.
    """

    method: str
    planned_count: int | None
    margin: float
    count: int | None
    violation_rate: float | None
    violation_rate_without_margin: float | None
    violation_by_resource: Mapping[str, float]
    epsilon_by_resource: Mapping[str, float]
    within_epsilon: bool | None
    utilisation_by_resource: Mapping[str, float]
    drift: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "planned_count": self.planned_count, "margin": self.margin,
            "count": self.count, "violation_rate": self.violation_rate,
            "violation_rate_without_margin": self.violation_rate_without_margin,
            "violation_by_resource": dict(self.violation_by_resource),
            "epsilon_by_resource": dict(self.epsilon_by_resource),
            "within_epsilon": self.within_epsilon,
            "utilisation_by_resource": dict(self.utilisation_by_resource),
            "drift": dict(self.drift), "reason": self.reason,
        }


@dataclass(frozen=True)
class BacktestResult:
    """A backtest of every method for one service (see the module docstring)."""

    service: str
    machine: Machine
    epsilon: float
    default_method: str
    windows: Mapping[str, Mapping[str, Any]]
    replicas: int
    methods: Mapping[str, MethodBacktest]
    oracle_count: int
    assumptions: tuple[str, ...] = ()

    @property
    def default(self) -> MethodBacktest:
        return self.methods[self.default_method]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": BACKTEST_SCHEMA_VERSION, "kind": "capacity.backtest",
            "service": self.service, "machine": self.machine.to_dict(),
            "epsilon": self.epsilon, "default_method": self.default_method,
            "windows": {k: dict(v) for k, v in self.windows.items()},
            "replicas": self.replicas, "oracle_count": self.oracle_count,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
            "assumptions": list(self.assumptions),
        }


class _Demand:
    """Per resource, a (instants x replicas) matrix of one window, and the totals of N slots."""

    def __init__(self, samples: pd.DataFrame, resources: Sequence[str], step_s: float,
                 t0: pd.Timestamp, replicas: Sequence[str]) -> None:
        grid = np.floor((samples["time"] - t0).dt.total_seconds().to_numpy() / step_s + 1e-6)
        frame = samples.assign(_slot=grid.astype(np.int64))
        self.matrices: dict[str, np.ndarray] = {}
        for r in resources:
            wide = frame.pivot_table(index="_slot", columns="container_id", values=r,
                                     aggfunc="mean").reindex(columns=list(replicas))
            x = wide.to_numpy(dtype=float)
            with warnings.catch_warnings():  # an instant with no replica: dropped below
                warnings.simplefilter("ignore", RuntimeWarning)
                row_mean = np.nanmean(x, axis=1) if x.size else np.zeros(0)
            keep = ~np.isnan(row_mean)
            x = x[keep]
            fill = np.broadcast_to(row_mean[keep][:, None], x.shape)
            self.matrices[r] = np.where(np.isnan(x), fill, x)
        self.instants = min((m.shape[0] for m in self.matrices.values()), default=0)

    def totals(self, resource: str, assignments: np.ndarray) -> np.ndarray:
        """(instants x assignments) totals; ``assignments`` is (replicas x assignments) counts."""
        return self.matrices[resource][: self.instants] @ assignments


def _assignments(n: int, k: int, n_assign: int, rng: np.random.Generator) -> np.ndarray:
    """(k x n_assign) replica counts of N slots: slot i gets replica perm[i mod k]."""
    out = np.zeros((k, n_assign))
    slots = np.arange(n) % k
    for j in range(n_assign):
        perm = rng.permutation(k)
        out[:, j] = np.bincount(perm[slots], minlength=k)
    return out


class _Evaluator:
    def __init__(self, demand: _Demand, usable: Mapping[str, float], n_assign: int,
                 seed: int, k: int, *, significant: bool = False) -> None:
        self.significant = significant
        self.demand = demand
        self.usable = dict(usable)
        self.n_assign = n_assign
        self.seed = seed
        self.k = k

    def rates(self, n: int) -> tuple[float, dict[str, float], dict[str, float]]:
        """(any-resource violation rate, per resource rate, per resource utilisation) at N."""
        if n <= 0:
            return 0.0, dict.fromkeys(self.usable, 0.0), dict.fromkeys(self.usable, 0.0)
        a = _assignments(n, self.k, self.n_assign, np.random.default_rng(self.seed + n))
        anyv: np.ndarray | None = None
        per: dict[str, float] = {}
        util: dict[str, float] = {}
        for r, u in self.usable.items():
            t = self.demand.totals(r, a)
            v = t > u * (1 + 1e-9)
            per[r] = float(v.mean())
            util[r] = float(t.mean() / u) if u > 0 else math.inf
            anyv = v if anyv is None else (anyv | v)
        return (float(anyv.mean()) if anyv is not None else 0.0), per, util

    def ok(self, n: int, eps: Mapping[str, float]) -> bool:
        """Every resource's violation rate at N is within its epsilon; with ``significant``,
        unless the excess is significant (the rate's lower 95 % bound, counting one draw per
        instant: assignments at one instant are not independent, is above epsilon)."""
        _, per, _ = self.rates(n)
        if not self.significant:
            return all(per[r] <= eps[r] for r in per)
        t = self.demand.instants
        return all(clopper_pearson(round(per[r] * t), t, 0.90)[0] <= eps[r] for r in per)

    def largest_ok(self, eps: Mapping[str, float], upper: int) -> int:
        """Largest N in [0, upper] within epsilon (violations grow with N: search downward
        in doubling steps, then bisect)."""
        if upper <= 0 or self.ok(upper, eps):
            return max(upper, 0)
        lo, hi = 0, upper  # ok(lo), not ok(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.ok(mid, eps):
                lo = mid
            else:
                hi = mid
        return lo


def _grow_oracle(ev: _Evaluator, eps: Mapping[str, float], start: int, cap: int) -> int:
    n = max(start, 1)
    while n < cap and ev.ok(n, eps):
        n *= 2
    return ev.largest_ok(eps, min(n, cap))


def backtest(
    samples: pd.DataFrame,
    machine: Machine,
    *,
    containers: pd.DataFrame | None = None,
    service: str | None = None,
    epsilon: float = DEFAULTS.epsilon,
    train_fraction: float = 0.5,
    methods: Sequence[str] = METHODS,
    default_method: str = DEFAULT_METHOD,
    n_assignments: int = 64,
    hold_back: bool = True,
    model: ProfileModel | None = None,
    seed: int = 0,
    oracle_limit: int = 4096,
) -> BacktestResult:
    """Plan on the earlier part of ``samples``, count violations on the later part.

    Parameters
    ----------
    samples : pandas.DataFrame
        A samples table (``time``, ``service``, ``container_id``, resource columns).
    machine : Machine
        The machine planned for, in the samples' units. Only resources with a capacity and
        samples are planned and tested.
    containers : pandas.DataFrame, optional
        The containers table (``container_id``, ``cpu_limit_cores``, ``memory_limit_bytes``)
        for the declared limits, when the samples do not carry them: without limits the
        ``limits`` method is undefined.
    service : str, optional
        Which service (may be omitted when there is one).
    epsilon : float
        The plan's risk (memory and disk space at ``epsilon * 0.1``, as the solver does).
    train_fraction : float
        Share of the time span that trains, in (0, 1).
    methods : sequence of str
        Solver methods to backtest (default all).
    n_assignments : int
        Random assignments of slots to recorded replicas per count tested.
    hold_back : bool
        Apply the drift margin (default True); the rate without it is reported either way.
    model : ProfileModel, optional
        The profile model (default parameters when None).
    seed : int
        Seed of the assignments and the solver's Monte Carlo draws.

    Returns
    -------
    BacktestResult

    Raises
    ------
    InvalidParameter
        ``train_fraction`` outside (0, 1), an unknown method or service.
    InsufficientData
        A window (train halves or test) with fewer than :data:`MIN_INSTANTS` instants.
    """
    if not 0 < train_fraction < 1:
        raise InvalidParameter("train_fraction", "backtest", "in (0, 1)", train_fraction)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InvalidParameter("methods", "backtest", f"a subset of {METHODS}", unknown)
    if default_method not in methods:
        methods = [*methods, default_method]
    names = sorted(samples["service"].astype(str).unique())
    service = choose_service(names, service, "backtest")
    df = samples[samples["service"].astype(str) == service].copy()
    df["time"] = pd.to_datetime(df["time"], utc=True)
    resources = [r for r in RESOURCES if r in df.columns and r in machine.capacity
                 and df[r].notna().any()]
    if not resources:
        raise InsufficientData(
            f"no resource of {service!r} has both samples and a machine capacity "
            f"(machine: {sorted(machine.capacity)})")
    target = replace(machine, capacity={r: machine.capacity[r] for r in resources}, missing=())
    step_s = float(pd.to_numeric(df["interval_s"], errors="coerce").median()) \
        if "interval_s" in df else float(df.groupby("container_id", observed=True)["time"].diff()
                                          .dt.total_seconds().median())
    t0, t1 = df["time"].min(), df["time"].max()
    split = t0 + (t1 - t0) * train_fraction
    mid = t0 + (split - t0) / 2
    train = df[df["time"] <= split]
    test = df[df["time"] > split]
    first, second = train[train["time"] <= mid], train[train["time"] > mid]
    replicas = sorted(df["container_id"].astype(str).unique())
    grid_t0 = t0 - pd.Timedelta(seconds=step_s / 2)
    windows = {name: _Demand(w, resources, step_s, grid_t0, replicas)
               for name, w in (("train", train), ("first_half", first),
                               ("second_half", second), ("test", test))}
    for name, w in windows.items():
        if w.instants < MIN_INSTANTS:
            raise InsufficientData(
                f"the {name} window of {service!r} has {w.instants} instants "
                f"(< {MIN_INSTANTS}): give a longer history or another train_fraction")
    model = model or ProfileModel()
    rng_seed = seed

    def fit_plan(frame: pd.DataFrame) -> Any:
        profiles = model.fit(frame, containers=containers).profiles_
        # the plan must hold over the test window: that is its horizon for drift
        return plan(profiles, target, service=service, epsilon=epsilon, method=default_method,
                    rng=np.random.default_rng(rng_seed),
                    valid_for_s=float((t1 - split).total_seconds()))

    full, half = fit_plan(train), fit_plan(first)
    eps = {r: float(full.per_resource[r].epsilon or epsilon) for r in resources}
    usable = {r: target.capacity[r] - target.reserved(r) for r in resources}
    k = len(replicas)
    ev_test = _Evaluator(windows["test"], usable, n_assignments, seed, k)
    ev_second = _Evaluator(windows["second_half"], usable, n_assignments, seed, k,
                           significant=True)
    out: dict[str, MethodBacktest] = {}
    for m in methods:
        n_full = full.methods.get(m, {}).get("safe_count")  # absent: profile too thin
        n_half = half.methods.get(m, {}).get("safe_count")
        if n_full is None and m == "limits":
            out[m] = MethodBacktest(m, None, 0.0, None, None, None, {}, eps, None, {},
                                    reason="no declared limit in the history")
            continue
        if n_full is None:
            reasons = "; ".join(f"{r}: {p.reason}" for r, p in full.per_resource.items()
                                if p.reason) or next(
                (a for a in full.assumptions if "trace of" in a), "undefined for this profile")
            out[m] = MethodBacktest(m, None, 0.0, None, None, None, {}, eps, None, {},
                                    reason=reasons)
            continue
        drift: dict[str, Any] = {"first_half_count": n_half}
        margin = 0.0
        if n_half is not None and n_half > 0:
            safe_b = ev_second.largest_ok(eps, n_half)
            drift["safe_on_second_half"] = safe_b
            drift["second_half_violation_rate"] = ev_second.rates(n_half)[0]
            margin = max(0.0, 1.0 - safe_b / n_half)
        n = math.floor(n_full * (1 - margin) + 1e-9) if hold_back else n_full
        rate, per, util = ev_test.rates(n)
        out[m] = MethodBacktest(
            method=m, planned_count=n_full, margin=margin if hold_back else 0.0, count=n,
            violation_rate=rate, violation_rate_without_margin=ev_test.rates(n_full)[0],
            violation_by_resource=per, epsilon_by_resource=eps,
            within_epsilon=all(per[r] <= eps[r] for r in per), utilisation_by_resource=util,
            drift={**drift, "margin_measured": margin},
        )
    counts = [b.count for b in out.values() if b.count]
    oracle = _grow_oracle(ev_test, eps, max(counts, default=1), oracle_limit)
    times = {name: {"instants": w.instants} for name, w in windows.items()}
    times["train"].update(start=str(t0), end=str(split))
    times["test"].update(start=str(split), end=str(t1))
    assumptions = (
        f"trained on the first {train_fraction:.0%} of {t1 - t0} ({step_s:g} s instants); "
        "drift measured between the training window's halves",
        f"{k} recorded replicas; test totals of N slots over {n_assignments} random "
        "assignments to them (slots beyond k reuse replicas: move together)",
        f"violation: a resource's total above capacity minus reserve; epsilon {eps}",
        *full.assumptions,
    )
    return BacktestResult(
        service=service, machine=target, epsilon=epsilon, default_method=default_method,
        windows=times, replicas=k, methods=out, oracle_count=oracle, assumptions=assumptions,
    )
