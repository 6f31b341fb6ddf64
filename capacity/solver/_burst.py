"""Risk of a burst past everything the history saw, up to the declared limit (issue 13).

A history of ``d`` whole days shows ``d`` daily maxima. If days are exchangeable (no day is
special before it is seen), the chance that the next day's maximum exceeds all ``d`` seen is
``1 / (d + 1)``: a general fact about records, not a fitted constant. How high such a day
goes the history cannot say; the one bound known beforehand is the replica's **declared
limit** (CPU ``--cpus``, memory ``-m``; a VM's 100 %). How long it stays above the old
maximum is measured inside the history: on each day that set a record (its maximum above
every earlier day's), the instants above the earlier maximum.

So one replica is taken to be *at its limit* at an instant with probability

    p = 1 / (d + 1) x (mean instants above the earlier maximum on a record day) / (instants
        per day)

and below it as the profile says otherwise, independently of the other replicas. The count
is the largest N whose overload probability under that mixture,

    sum over k of Binomial(N, p)(k) x P(N - k replicas as profiled + k limits > usable),

stays within epsilon (k = 0, 1, 2 evaluated; three or more counted as overload).

Traps
-----
- No declared limit, fewer than :data:`MIN_BURST_DAYS` whole days, or no trace: not applied
  (the plan says which).
- No record day in the history (every later day below the first day's maximum): the
  duration is one trace step (the least a record can last).
- The daily maxima come from the profile's ``trace`` (the mean over the replicas recorded
  together, binned to ``trace_interval_s``): with several replicas, a record of one replica
  is diluted; with one replica it is that replica's series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MIN_BURST_DAYS", "BurstRisk", "burst_risk_of", "overload_with_bursts"]

DAY_S = 86_400.0
#: fewest whole days of trace for the record rate and duration to be measured
MIN_BURST_DAYS = 2


@dataclass(frozen=True)
class BurstRisk:
    """Probability that one replica is at its limit at an instant (see the module docstring).

    Attributes
    ----------
    p : float
        Per replica and instant; 0 when not applied.
    days : int
        Whole days of trace measured.
    record_days : int
        Days (after the first) whose maximum exceeded every earlier day's.
    duration_steps : float
        Mean trace steps above the earlier maximum on a record day.
    reason : str
        What set ``p``, or why it is 0.
    """

    p: float
    days: int
    record_days: int
    duration_steps: float
    reason: str
    height: float = 0.0


def burst_risk_of(trace: Any, trace_interval_s: float, limit: float | None) -> BurstRisk:
    """The burst probability from a profile's ``trace`` (oldest first, spaced
    ``trace_interval_s`` seconds) and the declared ``limit`` (None: not applied).

    >>> days = [0.1] * 24 * 3
    >>> days[30] = 0.5  # day 1 goes past day 0's maximum for one hour
    >>> r = burst_risk_of(days, 3600.0, 1.0)
    >>> r.days, r.record_days, r.duration_steps, round(r.p, 5)
    (3, 1, 1.0, 0.01042)
    """
    x = np.asarray(trace, dtype=float)
    mode = __import__("os").environ.get("CAPACITY_EXP_HEIGHT", "limit")
    if mode == "limit" and (limit is None or not limit > 0):
        return BurstRisk(0.0, 0, 0, 0.0, "no declared limit: a burst past the history is not "
                         "bounded, so not planned for")
    if not trace_interval_s > 0 or x.size == 0:
        return BurstRisk(0.0, 0, 0, 0.0, "no trace")
    per_day = round(DAY_S / trace_interval_s)
    days = x.size // per_day if per_day >= 1 else 0
    if days < MIN_BURST_DAYS:
        return BurstRisk(0.0, days, 0, 0.0,
                         f"{days} whole day(s) of trace (< {MIN_BURST_DAYS}): the record rate "
                         "is not measured")
    m = x[x.size - days * per_day:].reshape(days, per_day)  # whole days, counted from the end
    top = m.max(axis=1)
    earlier = np.maximum.accumulate(top)[:-1]  # max over days 0..k-1, for k = 1..days-1
    above = (m[1:] > earlier[:, None]).sum(axis=1)
    records = above[above > 0]
    ratios = (top[1:] / np.where(earlier > 0, earlier, np.inf))[above > 0]
    if mode == "limit":
        height = float(limit)
    else:
        if not records.size:
            return BurstRisk(0.0, days, 0, 0.0, "no record day")
        r = float(ratios.mean()) if mode == "mean" else float(ratios.max())
        height = float(top.max()) * r
        if limit is not None and limit > 0:
            height = min(height, float(limit))
    duration = float(records.mean()) if records.size else 1.0
    p = min(1.0, duration / per_day / (days + 1) * float(__import__("os").environ.get("CAPACITY_EXP_PMUL", "1")))
    return BurstRisk(p, days, int(records.size), duration, height=height, reason=
                     f"a day past the busiest of {days} has chance 1/{days + 1} (exchangeable "
                     f"days); {records.size} record day(s) seen, above the earlier maximum "
                     f"for {duration * trace_interval_s / 60:.0f} min on average: one replica "
                     f"at its limit {p:.3%} of the time")


def overload_with_bursts(p_overload: Any, n: int, usable: float, limit: float,
                         p: float) -> float:
    """P(overload) of ``n`` replicas when each is at ``limit`` with probability ``p``
    independently, else as the risk model says: ``p_overload(k, usable)`` gives
    P(k replicas as profiled > usable)."""
    if n <= 0:
        return 0.0
    total, left = 0.0, 1.0
    for k in range(0, min(n, 2) + 1):
        w = math.comb(n, k) * p**k * (1.0 - p) ** (n - k)
        left -= w
        room = usable - k * limit
        total += w * (1.0 if room < 0 else float(p_overload(n - k, room)) if n - k > 0 else 0.0)
    return total + max(left, 0.0)
