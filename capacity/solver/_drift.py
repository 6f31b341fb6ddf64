"""Drift of a service's demand level, measured inside its history and carried forward over the
planning horizon (``valid_for``): issue 13, cause 2.

A plan is for a period ahead. The profile's ``daily_levels`` are the mean of each whole day
(counted back from the end of the history). Two readings of how the level moves:

- **trend**: the least-squares line through the daily levels, projected to the end of the
  horizon (``valid_for_s`` after the history ends), kept only when its slope is significant
  (|t| >= 2: day-to-day noise alone would otherwise set a margin, as it did in the split
  backtest);
- **busiest day**: the highest daily level (day against day: a future day can be as busy as
  the busiest one seen).

The drift factor is ``max(1, trend level, busiest level) / mean``: demand is taken to scale by
it (a level shift that scales the spread too), so N replicas fit when they fit in the usable
capacity divided by the factor. The **margin** drift took is ``1 - 1 / factor`` of the
capacity. A fall is never carried forward (the count is not raised by drift).

A straight line measured over D days is carried at most :data:`TREND_CARRY_SPANS` (3) times
D days past the history's end: a 5-day trend taken linearly to ``--valid-for 365d`` made the
level x30 and the count 0, a forecast no 5-day history supports. Past that bound the trend is
carried for 3 D days only, and the reason says so ("valid-for 365 d exceeds what a 5-day
history can forecast ...; re-plan with more history"); plan.json has
``trend_carried_s`` beside ``valid_for_s``. The default horizon (7 d) is inside the bound for
every history that measures a trend (3 days or more), so default plans do not change.

One whole day of history (under :data:`MIN_DRIFT_DAYS`): drift cannot be measured, and a
day's level is not the next day's. The plan then takes a stated default allowance,
:data:`UNMEASURED_DRIFT_FACTOR` (x1.10), and says so: the 90th percentile of the ratio of a
day's mean to the previous day's, over the 26 day pairs of each of 84 Azure V1 VMs that no
benchmark scores (the VMs of the shipped excerpt's source file after its first 16). In the
day-shift backtest it took GCD jobs trained on one day from 43.8 % to 29.2 % unsafe (48
jobs; the rest of that trace unchanged).

Traps
-----
- Fewer than :data:`MIN_DRIFT_DAYS` whole days, or under two days' worth of samples (a gap
  spreads a few hours over two calendar days): drift is not measured, and the plan says so.
  Under one whole day (a staging run, the sandbox) the daily peak may not have been seen:
  the same allowance is taken as for one day, and said (the profile notes that the daily
  cycle was not covered). ``valid_for_s=None`` (API only) plans demand as recorded.
- A weekly cycle needs two weeks to be told from a trend; on shorter histories a weekday/weekend
  change reads as trend or busiest day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._settings import DEFAULTS

__all__ = [
    "DAY_S",
    "DEFAULT_VALID_FOR_S",
    "MIN_DRIFT_DAYS",
    "SHORT_HISTORY_S",
    "TREND_CARRY_SPANS",
    "UNMEASURED_DRIFT_FACTOR",
    "Drift",
    "drift_of",
]

DAY_S = 86_400.0
#: default planning horizon: the plan is meant to hold this long after the history ends
#: (declared once, in :class:`capacity.Settings` as ``valid_for_s``: 7 days)
DEFAULT_VALID_FOR_S: float = DEFAULTS.valid_for_s or 7 * DAY_S
#: fewest whole days of history for drift to be measured
MIN_DRIFT_DAYS = 2
#: |t| of the daily-level slope from which a trend is carried forward
TREND_T = 2.0
#: a trend measured over D days is carried at most this many times D days past the history's
#: end (a stated bound, not a fitted one: 3 keeps the default 7 d horizon inside it for every
#: history long enough to measure a trend, 3 days or more)
TREND_CARRY_SPANS = 3.0
#: drift factor taken when the history holds one whole day (drift not measurable): the 90th
#: percentile of next-day / day level ratios over 84 held-out Azure V1 VMs (module docstring)
UNMEASURED_DRIFT_FACTOR = 1.10
#: a history covering less than this (seconds; a day short by under 1 % is whole, as the
#: profile counts days) has not seen the daily cycle: the same allowance is taken
SHORT_HISTORY_S = 0.99 * DAY_S


@dataclass(frozen=True)
class Drift:
    """Drift of one resource's level (see the module docstring).

    Attributes
    ----------
    factor : float
        Demand is planned at ``factor`` times the profile (>= 1).
    days : int
        Whole days of history (``daily_levels``); the days that measured the drift may be
        fewer (days with too few samples have no level): ``reason`` names those.
    slope_per_day : float or None
        Trend of the daily level, share of the mean per day (None: not measured).
    busiest_day : float or None
        Busiest daily level over the mean.
    reason : str
        Why drift was not measured, or what set the factor.
    trend_carried_s : float or None
        Seconds past the history's end the trend was carried: ``valid_for_s``, or less when
        that exceeds :data:`TREND_CARRY_SPANS` times the days that measured it (said in
        ``reason``); None when no significant trend was found.
    """

    factor: float
    days: int
    slope_per_day: float | None
    busiest_day: float | None
    reason: str
    trend_carried_s: float | None = None

    @property
    def margin(self) -> float:
        """Share of the usable capacity drift took: ``1 - 1 / factor``."""
        return 1.0 - 1.0 / self.factor


def drift_of(levels: Sequence[float | None], mean: float, valid_for_s: float,
             covered_s: float | None = None) -> Drift:
    """Drift factor from a profile's ``daily_levels`` (oldest first; None: a day without
    enough samples) and its ``mean``, carried ``valid_for_s`` seconds past the history's end.
    ``covered_s``: the seconds of demand the history saw (its span plus one interval; with
    gaps, its effective samples times the interval: :func:`capacity.solver._plan.covered_time_s`);
    under :data:`SHORT_HISTORY_S` the daily cycle was not seen, and under two days' worth
    drift is not measured even over two calendar days a gap stretched it to: the default
    allowance is taken (None: not known, as in older profiles: no allowance).

    >>> d = drift_of([1.0, 2.0], 1.5, 0.0)  # a day at 1, a day at 2
    >>> round(d.factor, 3), d.days  # the busiest day over the mean
    (1.333, 2)
    """
    days = len(levels)
    with_data = sum(x is not None for x in levels)
    if days == 0 and covered_s is not None and 0 < covered_s < SHORT_HISTORY_S and mean > 0:
        return Drift(UNMEASURED_DRIFT_FACTOR, 0, None, None,
                     f"drift not measured: {covered_s / 3600:.3g} h of history, shorter than "
                     f"one day (the daily peak may not have been seen); default allowance "
                     f"x{UNMEASURED_DRIFT_FACTOR:.2f}, as for one whole day (the 90th "
                     "percentile of next-day level ratios over 84 Azure VMs)")
    if (days >= MIN_DRIFT_DAYS and covered_s is not None and mean > 0
            and 0 < covered_s < MIN_DRIFT_DAYS * SHORT_HISTORY_S):
        # whole calendar days, but a gap stretched them: under two days of demand was seen
        return Drift(UNMEASURED_DRIFT_FACTOR, days, None, None,
                     f"drift not measured: the samples cover {covered_s / 3600:.3g} h (under "
                     f"{MIN_DRIFT_DAYS} days' worth) though the history spans {days} calendar "
                     f"days; default allowance x{UNMEASURED_DRIFT_FACTOR:.2f}, as for one whole "
                     "day (the 90th percentile of next-day level ratios over 84 Azure VMs)")
    if days < MIN_DRIFT_DAYS or with_data < MIN_DRIFT_DAYS or not mean > 0:
        why = (f"drift not measured: {days} whole day(s) of history (< {MIN_DRIFT_DAYS})"
               if days < MIN_DRIFT_DAYS else "drift not measured: no demand" if not mean > 0
               else f"drift not measured: {with_data} day(s) with enough samples")
        if with_data == 1 and mean > 0:  # one day seen: its level is not the next day's
            return Drift(UNMEASURED_DRIFT_FACTOR, days, None, None,
                         f"{why}; default allowance x{UNMEASURED_DRIFT_FACTOR:.2f} (a day's "
                         "level is not the next day's: the 90th percentile of next-day level "
                         "ratios over 84 Azure VMs)")
        return Drift(1.0, days, None, None, why)
    d = np.array([i for i, x in enumerate(levels) if x is not None], dtype=float)
    lv = np.array([x for x in levels if x is not None], dtype=float) / mean
    busiest = float(lv.max())
    slope = t = trend_level = 0.0
    carried_s: float | None = None
    span_days = float(d[-1] - d[0] + 1)  # the days that measured the trend, first to last
    if lv.size >= 3:
        b, a = np.polyfit(d, lv, 1)
        resid = lv - (a + b * d)
        sxx = float(((d - d.mean()) ** 2).sum())
        se = math.sqrt(float(resid @ resid) / (lv.size - 2) / sxx) if sxx > 0 else 0.0
        slope = float(b)
        t = slope / se if se > 0 else (math.inf if slope > 0 else 0.0)
        if t >= TREND_T:
            # the level at the end of the horizon (the day index of its last instant), the
            # horizon bounded by what a line measured over span_days can forecast
            carried_s = min(valid_for_s, TREND_CARRY_SPANS * span_days * DAY_S)
            trend_level = float(a + b * (days - 0.5 + carried_s / DAY_S))
    factor = max(1.0, busiest, trend_level)
    # the days that measured it, as every part of the reason names them: first to last day
    # with a level (earlier days with too few samples measured nothing), and how many of
    # them had one when a day between had none
    measured = f"{span_days:g} days" + ("" if lv.size == span_days else
                                        f" ({lv.size} with a level)")
    capped = ""
    if carried_s is not None and carried_s < valid_for_s:
        capped = (f"; valid-for {valid_for_s / DAY_S:g} d exceeds what a {span_days:g}-day "
                  f"history can forecast (a trend is carried at most {TREND_CARRY_SPANS:g}x "
                  "the days that measured it); re-plan with more history")
    if trend_level > 1.0 and trend_level >= busiest:
        why = (f"trend {slope:+.1%} of the mean per day over {measured} (t {t:.1f}) carried "
               f"{(carried_s or 0.0) / DAY_S:g} d ahead: level x{factor:.2f}{capped}")
    elif capped:
        why = f"busiest of {measured} at x{busiest:.2f} the mean{capped}"
    else:
        why = f"busiest of {measured} at x{busiest:.2f} the mean" + (
            f"; trend {slope:+.1%}/day not significant (t {t:.1f} < {TREND_T:g})"
            if lv.size >= 3 and t < TREND_T else "")
    return Drift(factor, days, slope, busiest, why, trend_carried_s=carried_s)
