"""The day-shift backtest protocol (issue 13) for one-replica histories, and its fleet mode.

A history of **one replica** cannot show how replicas of a service move together. The protocol
makes replicas of it as **whole-day shifted copies** of its series: replica ``i`` at an instant
of the test window is the series ``i`` days later (circularly within the test window), so
replicas share the time of day but not the day. Then:

1. **Split on whole days with data**: the first ``train_days`` days holding samples train,
   the next ``test_days`` such days test (both default to half of the days with data). A day
   without data (a history with holes of whole days, as GCD jobs that skip days) is left
   out, not counted as a training or test day: a test day filled from the others would be
   a copy of them, and a training day without samples measures nothing.
2. **Capacity**: per resource ``C = capacity_factor x`` the training window's mean (default 20).
3. **Truth**: the largest N whose summed demand over the test window exceeds ``C`` (for any
   resource) in at most ``violation_share`` (1 %) of the test instants.
4. **Predictions**: every solver method's count for one replica's profile fitted on the
   training window, for a machine of capacity ``C`` (CPU saturation 1: ``C`` is the line the
   truth uses), beside two recipes computed on the same training data: the krr recipe (a
   replica requests CPU p95 and memory max x 1.15) and the VPA target (P90 x 1.15 for every
   resource); their count is ``min over resources of floor(C / request)``.
5. **Score**: a prediction is *unsafe* when above the truth; *packing* is prediction / truth
   when safe.

Traps
-----
- With more replicas than test days, shifts repeat: repeated copies move exactly together
  (the sum is ``floor(N / T)`` times the whole-window sum plus the first ``N mod T`` shifts).
  That is the protocol, stated in every result; real new replicas are less correlated.
- The series is put on a grid of its median interval; an instant missing on one test day is
  filled with the mean of the same time of day over the other test days (an instant missing
  on all is dropped). Gaps are counted in the result.
- Days are 86,400 s from the first sample, not calendar days. A day counts as present when
  it holds at least :data:`MIN_DAY_SHARE` of the samples of the median present day.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._columns import CPU, MEMORY, RESOURCES
from .._errors import InsufficientData, InvalidParameter
from .._settings import DEFAULTS
from ..model._fit import ProfileModel
from ..solver._machine import Machine
from ..solver._plan import DEFAULT_METHOD, METHODS, _bisect_last, choose_service, plan

__all__ = [
    "DAY_S",
    "RECIPES",
    "FleetShiftBacktest",
    "ShiftBacktest",
    "fleet_shift_backtest",
    "shift_backtest",
]

DAY_S = 86_400.0
#: the recipes scored beside the solver's methods: per resource, (statistic, factor)
RECIPES: Mapping[str, Mapping[str, tuple[str, float]]] = {
    "krr": {CPU: ("p95", 1.0), MEMORY: ("max", 1.15)},
    "vpa": {"*": ("p90", 1.15)},
}
#: fewest whole days with data a history must hold (one to train, one to test)
MIN_DAYS = 2
#: a day holding fewer samples than this share of the median day's is absent
MIN_DAY_SHARE = 0.1


@dataclass(frozen=True)
class ShiftBacktest:
    """One service's day-shift backtest (see the module docstring).

    Attributes
    ----------
    predictions : Mapping[str, int or None]
        Count per solver method and recipe (None: undefined, reason in ``reasons``).
    truth : int
        Largest N within ``violation_share`` on the test window.
    capacity : Mapping[str, float]
        ``C`` per resource, the resource's unit.
    """

    service: str
    train_days: int
    test_days: int
    step_s: float
    capacity: Mapping[str, float]
    truth: int
    predictions: Mapping[str, int | None]
    reasons: Mapping[str, str] = field(default_factory=dict)
    binding: str = ""
    missing_instants: int = 0
    warnings: tuple[str, ...] = ()
    drift: Mapping[str, float] = field(default_factory=dict)
    #: whole days without data inside the span the training and test days were taken from
    absent_days: int = 0

    def unsafe(self, method: str) -> bool | None:
        n = self.predictions.get(method)
        return None if n is None else n > self.truth

    def packing(self, method: str) -> float | None:
        n = self.predictions.get(method)
        if n is None or n > self.truth or self.truth <= 0:
            return None
        return n / self.truth

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "train_days": self.train_days, "test_days": self.test_days,
            "step_s": self.step_s, "capacity": dict(self.capacity), "truth": self.truth,
            "binding": self.binding, "predictions": dict(self.predictions),
            "reasons": dict(self.reasons), "missing_instants": self.missing_instants,
            "drift": dict(self.drift), "absent_days": self.absent_days,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class FleetShiftBacktest:
    """The day-shift backtest of many one-replica services, scored per method."""

    results: tuple[ShiftBacktest, ...]
    skipped: Mapping[str, str]
    methods: tuple[str, ...]
    default_method: str
    protocol: str

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per method: ``scored`` services, ``unsafe`` share, mean ``packing`` when safe,
        ``undefined`` count."""
        out: dict[str, dict[str, float | int | None]] = {}
        for m in self.methods:
            unsafe = [u for r in self.results if (u := r.unsafe(m)) is not None]
            packing = [p for r in self.results if (p := r.packing(m)) is not None]
            out[m] = {
                "scored": len(unsafe),
                "undefined": len(self.results) - len(unsafe),
                "unsafe": float(np.mean(unsafe)) if unsafe else None,
                "packing": float(np.mean(packing)) if packing else None,
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "capacity.backtest.shift", "protocol": self.protocol,
            "default_method": self.default_method, "summary": self.summary(),
            "services": [r.to_dict() for r in self.results], "skipped": dict(self.skipped),
        }


def _grid(df: pd.DataFrame, resources: Sequence[str], step_s: float, t0: pd.Timestamp,
          days: int) -> dict[str, np.ndarray]:
    """(days x instants per day) matrix per resource, NaN where no sample fell."""
    per_day = round(DAY_S / step_s)
    slot = np.floor((df["time"] - t0).dt.total_seconds().to_numpy() / step_s + 1e-6)
    slot = slot.astype(np.int64)
    keep = (slot >= 0) & (slot < days * per_day)
    out = {}
    for r in resources:
        v = df[r].to_numpy(dtype=float)[keep]
        s = slot[keep]
        ok = ~np.isnan(v)
        sums = np.bincount(s[ok], weights=v[ok], minlength=days * per_day)
        counts = np.bincount(s[ok], minlength=days * per_day)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r] = (sums / counts).reshape(days, per_day)
    return out


def _shift_totals(test: np.ndarray, n: int) -> np.ndarray:
    """Totals of N whole-day shifted copies at every test instant: (days x per day)."""
    days = test.shape[0]
    whole, part = divmod(n, days)
    total = whole * test.sum(axis=0, keepdims=True) if whole else np.zeros((1, test.shape[1]))
    # replica i at day d is day (d + i) mod T: the first `part` shifts
    for i in range(part):
        total = total + np.roll(test, -i, axis=0)
    return np.broadcast_to(total, test.shape) if total.shape[0] == 1 else total


def _truth(test: Mapping[str, np.ndarray], capacity: Mapping[str, float], share: float,
           cap: int) -> int:
    """Largest N (up to ``cap``) whose totals exceed C for any resource in at most ``share``
    of the test instants (totals grow with N: step up, then bisect)."""

    def ok(n: int) -> bool:
        over = np.zeros(next(iter(test.values())).shape, dtype=bool)
        for r, m in test.items():
            over |= _shift_totals(m, n) > capacity[r] * (1 + 1e-12)
        return float(over.mean()) <= share

    if not ok(1):
        return 0
    lo, hi = 1, 2
    while hi <= cap and ok(hi):
        lo, hi = hi, hi * 2
    if hi > cap:
        return cap if ok(cap) else _bisect_last(ok, lo, cap)
    return _bisect_last(ok, lo, hi)




def _recipe_count(train: pd.DataFrame, resources: Sequence[str], capacity: Mapping[str, float],
                  recipe: Mapping[str, tuple[str, float]]) -> tuple[int | None, str]:
    counts = []
    for r in resources:
        stat, factor = recipe.get(r, recipe.get("*", ("max", 1.0)))
        x = train[r].dropna().to_numpy(dtype=float)
        if not x.size:
            continue
        q = float(x.max()) if stat == "max" else float(np.quantile(x, float(stat[1:]) / 100))
        request = q * factor
        if request <= 0:
            continue  # no demand: this resource does not limit the count
        counts.append(math.floor(capacity[r] / request + 1e-9))
    if not counts:
        return None, "no positive request: unbounded"
    return min(counts), ""


def shift_backtest(
    samples: pd.DataFrame,
    *,
    service: str | None = None,
    train_days: int | None = None,
    test_days: int | None = None,
    capacity_factor: float = 20.0,
    violation_share: float = 0.01,
    epsilon: float = DEFAULTS.epsilon,
    methods: Sequence[str] = METHODS,
    model: ProfileModel | None = None,
    seed: int = 0,
    max_count: int = 100_000,
    valid_for_s: float | str | None = "test",
    plan_margin: float = 1.0,
    accept_unseen_hours: bool = False,
) -> ShiftBacktest:
    """Backtest one one-replica service by the day-shift protocol (module docstring).

    Parameters
    ----------
    samples : pandas.DataFrame
        A samples table; the service's rows must come from one container.
    service : str, optional
        Which service (may be omitted when there is one).
    train_days, test_days : int, optional
        Whole days (86,400 s from the first sample) that train and test; default half of the
        whole days covered each (the test gets the odd one).
    capacity_factor : float
        ``C = capacity_factor x`` the training mean, per resource.
    violation_share : float
        Share of test instants the truth may exceed ``C`` in.
    epsilon : float
        The solver's risk (memory at a tenth, as the solver does).
    methods : sequence of str
        Solver methods scored (the recipes ``krr`` and ``vpa`` always are).
    max_count : int
        Largest truth searched.
    valid_for_s : float, "test" or None
        The plans' horizon (``plan(valid_for_s=...)``): ``"test"`` (default) the test window's
        length, which is what the plan must hold over; None: no drift.
    plan_margin : float
        The plans see capacity ``C / plan_margin`` while the truth keeps ``C``: a uniform
        margin on demand, for trade-off sweeps (``benchmarks/accuracy/frontier.py``); 1 (the
        default): none. Must be finite and >= 1.
    accept_unseen_hours : bool
        Plan a training history that missed some hours of the day on every day (as
        ``capacity plan --accept-unseen-hours``); default False: such a plan is refused and
        the methods come back undefined with the reason.

    Raises
    ------
    InvalidParameter
        Several containers in the service, a service not in the samples, days out of range.
    InsufficientData
        Fewer than :data:`MIN_DAYS` whole days, or no resource with a positive training mean.
    """
    if (isinstance(plan_margin, bool) or not isinstance(plan_margin, int | float)
            or not (math.isfinite(plan_margin) and plan_margin >= 1.0)):
        raise InvalidParameter("plan_margin", "shift_backtest", "a finite number >= 1",
                               plan_margin)
    if isinstance(valid_for_s, str) and valid_for_s != "test":
        raise InvalidParameter("valid_for_s", "shift_backtest", '"test", seconds or None',
                               valid_for_s)
    names = sorted(samples["service"].astype(str).unique())
    service = choose_service(names, service, "shift_backtest")
    df = samples[samples["service"].astype(str) == service].copy()
    ids = df["container_id"].astype(str).unique() if "container_id" in df else np.array(["-"])
    if len(ids) != 1:
        raise InvalidParameter(
            "service", "shift_backtest",
            "a one-replica history (this protocol makes replicas as day-shifted copies; "
            "use the split backtest for several recorded replicas, or fleet mode by container)",
            f"{service!r} with {len(ids)} containers")
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df = df.sort_values("time")
    resources = [r for r in RESOURCES if r in df.columns and df[r].notna().any()]
    dt = df["time"].diff().dt.total_seconds().dropna()
    step_s = float(dt[dt > 0].median()) if (dt > 0).any() else 0.0
    if not step_s > 0:
        raise InsufficientData(f"{service!r}: fewer than two distinct sample times")
    # a step that does not divide a day is rounded to one that does
    step_s = DAY_S / max(1, round(DAY_S / step_s))
    t0 = df["time"].min()
    # the last sample covers one step: a day of 288 five-minute samples is a whole day
    span_days = int(((df["time"].max() - t0).total_seconds() + step_s) // DAY_S)
    day_of = ((df["time"] - t0).dt.total_seconds().to_numpy() // DAY_S).astype(np.int64)
    per_day = np.bincount(day_of[day_of < span_days], minlength=max(span_days, 1))
    seen = per_day[per_day > 0]
    present = [int(d) for d in np.flatnonzero(
        per_day >= MIN_DAY_SHARE * (float(np.median(seen)) if seen.size else 1.0))]
    days = len(present)
    if days < MIN_DAYS:
        raise InsufficientData(
            f"{service!r} holds {days} whole day(s) with data (< {MIN_DAYS}; {span_days} "
            "covered): the day-shift protocol needs one to train and one to test; use the "
            "split backtest (train_fraction)")
    train_days = train_days if train_days is not None else days // 2
    test_days = test_days if test_days is not None else days - train_days
    if not (train_days >= 1 and test_days >= 1 and train_days + test_days <= days):
        raise InvalidParameter("train_days/test_days", "shift_backtest",
                               f"at least 1 each, together at most the {days} whole days "
                               "with data", (train_days, test_days))
    train_set, test_set = present[:train_days], present[train_days:train_days + test_days]
    train = df[np.isin(day_of, train_set)]
    split = t0 + pd.Timedelta(seconds=test_set[0] * DAY_S)
    means = {r: float(train[r].mean()) for r in resources}
    resources = [r for r in resources if means[r] > 0 and math.isfinite(means[r])]
    if not resources:
        raise InsufficientData(f"{service!r}: no resource with a positive training mean")
    capacity = {r: capacity_factor * means[r] for r in resources}
    # the test days with data, one row each (days between them without data left out)
    grid = _grid(df[df["time"] >= split], resources, step_s, split,
                 test_set[-1] - test_set[0] + 1)
    rows = [d - test_set[0] for d in test_set]
    grid = {r: m[rows] for r, m in grid.items()}
    missing = 0
    for r, m in grid.items():
        missing = max(missing, int(np.isnan(m).sum()))
        with warnings.catch_warnings():  # a time of day missing on every test day: dropped
            warnings.simplefilter("ignore", RuntimeWarning)
            fill = np.nanmean(m, axis=0)
        grid[r] = np.where(np.isnan(m), fill[None, :], m)
    cols = np.ones(next(iter(grid.values())).shape[1], dtype=bool)
    for m in grid.values():
        cols &= ~np.isnan(m).any(axis=0)
    grid = {r: m[:, cols] for r, m in grid.items()}
    if not cols.any():
        raise InsufficientData(f"{service!r}: no sample in the test window")
    truth = _truth(grid, capacity, violation_share, max_count)

    machine = Machine(name=f"{capacity_factor:g} x training mean"
                      + (f" / margin {plan_margin:g}" if plan_margin != 1.0 else ""),
                      capacity={r: c / plan_margin for r, c in capacity.items()},
                      cpu_saturation=1.0)
    model = model or ProfileModel()
    profiles = model.fit(train).profiles_
    horizon = test_days * DAY_S if isinstance(valid_for_s, str) else valid_for_s
    p = plan(profiles, machine, service=service, epsilon=epsilon, method=DEFAULT_METHOD,
             rng=np.random.default_rng(seed), valid_for_s=horizon,
             accept_unseen_hours=accept_unseen_hours)
    predictions: dict[str, int | None] = {}
    reasons: dict[str, str] = {}
    for meth in methods:
        entry = p.methods.get(meth, {})
        predictions[meth] = entry.get("safe_count")
        if predictions[meth] is None:
            reasons[meth] = str(entry.get("reason") or p.reason or "undefined")
    for name, recipe in RECIPES.items():
        predictions[name], why = _recipe_count(train, resources, capacity, recipe)
        if why:
            reasons[name] = why
    sp = profiles.services.get(service)
    return ShiftBacktest(
        service=service, train_days=train_days, test_days=test_days, step_s=step_s,
        capacity=capacity, truth=truth, predictions=predictions, reasons=reasons,
        binding=str(p.binding_resource or ""), missing_instants=missing,
        drift={r: float(v["factor"]) for r, v in p.meta.get("drift", {}).items()},
        warnings=tuple(getattr(sp, "warnings", ())),
        absent_days=test_set[-1] - present[0] + 1 - train_days - test_days,
    )


def fleet_shift_backtest(
    samples: pd.DataFrame,
    *,
    by: str = "container_id",
    methods: Sequence[str] = METHODS,
    default_method: str = DEFAULT_METHOD,
    **kwargs: Any,
) -> FleetShiftBacktest:
    """:func:`shift_backtest` of every ``by`` group (default each container its own service);
    a group the protocol cannot take is skipped with the reason."""
    if by not in samples.columns:
        raise InvalidParameter("by", "fleet_shift_backtest", f"a column of {list(samples)}", by)
    df = samples.copy()
    df["service"] = df[by].astype(str)
    results: list[ShiftBacktest] = []
    skipped: dict[str, str] = {}
    for name, group in df.groupby("service", sort=True, observed=True):
        try:
            results.append(shift_backtest(group, service=str(name), methods=methods, **kwargs))
        except (InsufficientData, InvalidParameter) as e:
            skipped[str(name)] = str(e)
    protocol = (
        "one-replica histories; replicas as whole-day shifted copies (circular within the test "
        "window; shifts repeat beyond its days); train on whole days, test on the following; "
        f"truth: largest N over C in at most {kwargs.get('violation_share', 0.01):.0%} of test "
        f"instants, C = {kwargs.get('capacity_factor', 20.0):g} x the training mean"
    )
    return FleetShiftBacktest(results=tuple(results), skipped=skipped,
                              methods=(*methods, *RECIPES), default_method=default_method,
                              protocol=protocol)
