"""The margin a plan takes for a history that holds fewer looks than its span (issue 13, bad
input and faults): gaps, irregular intervals, a sampling interval changed mid-way.

A plan rests on the level of demand it read from the history. A regular history over a span
holds ``span_instants`` looks at it (the profile's ``span_instants``: the sampling instants its
span holds at the median interval); a faulty one fewer effective ones (``effective_samples``:
Kish's count of the samples weighted by the time each stands for, a gap standing for one
interval; :func:`capacity.model._fit.sampling_coverage`). Looks a few intervals apart are not
independent either: both counts are divided by the integrated autocorrelation time ``tau`` of
the demand trace (in intervals), giving ``n_eff`` and ``n_ref`` independent looks.

The standard error of the level read from ``n`` independent looks is ``cv / sqrt(n)`` of the
mean (``cv``: one replica's coefficient of variation). A clean history of the same span is
planned at the level it read, with the error of ``n_ref`` looks; the faulty history is held
to the same assurance: its demand is planned at the level plus the *extra* error its fewer
looks leave, at 95 % (two-sided, ``z = 1.96``, as the plan's Clopper-Pearson interval)::

    factor = 1 + z * cv * (1 / sqrt(n_eff) - 1 / sqrt(n_ref))

Demand is then taken to scale by the factor, as drift's (:mod:`capacity.solver._drift`): N
replicas fit when they fit in the usable capacity divided by it, and the **margin** is
``1 - 1 / factor`` of the usable capacity. A regular history has ``n_eff == n_ref``: factor 1,
and the plan is the one it was before this margin existed. Only a profile whose sampling the
model names as faulty (its warnings) is widened; the factor is not tuned on any benchmark.

Traps
-----
- A history with an interval changed mid-way is widened for the instants of the finer
  interval its coarser part did not see; its statistics still mix the two resolutions (the
  profile's warning says so: fit each period apart).
- Older profiles (no ``effective_samples``) are not widened; the plan says so.
- A history whose samples cover its span at the median interval (an irregular one that
  samples faster than the median in bursts) gets factor 1 even when a fault is named.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["COVERAGE_Z", "Coverage", "coverage_widening", "has_sampling_fault",
           "integrated_autocorrelation_time"]

#: normal quantile of the margin: 95 % two-sided, as the plan's Clopper-Pearson interval
COVERAGE_Z = 1.959963984540054

#: the sampling faults the model names (its warnings) that reduce the effective looks
_FAULT_WORDS = ("gaps in the samples", "irregular sampling",
                "sampling interval changed mid-way", "declared sampling interval changes")


def has_sampling_fault(warnings: Sequence[str]) -> bool:
    """Whether a profile's warnings name a sampling fault that reduces its effective looks."""
    return any(k in w for w in warnings for k in _FAULT_WORDS)


@dataclass(frozen=True)
class Coverage:
    """How much a sampling fault widened one resource's demand.

    Attributes
    ----------
    factor : float
        Demand is planned at ``factor`` times the profile (>= 1; 1: not widened; NaN: no
        count, the level is not known: ``reason`` says why).
    effective_samples, span_instants : float or None
        The profile's effective looks and the instants its span holds (None: not known).
    tau : float
        Integrated autocorrelation time of the trace, in sampling intervals (>= 1).
    cv : float
        One replica's coefficient of variation (std / mean).
    reason : str
        What set the factor, or why there is none.
    """

    factor: float
    effective_samples: float | None
    span_instants: float | None
    tau: float
    cv: float
    reason: str

    @property
    def margin(self) -> float:
        """Share of the usable capacity the widening took: ``1 - 1 / factor``."""
        return 1.0 - 1.0 / self.factor


def integrated_autocorrelation_time(x: Sequence[float]) -> float:
    """``1 + 2 * sum(rho_k)`` over the lags before the first non-positive autocorrelation
    (Geyer's initial positive sequence, simplified), in steps of ``x``; 1 for fewer than 3
    points or a constant series.

    >>> integrated_autocorrelation_time([1.0, -1.0] * 50)  # alternating: no positive lag
    1.0
    """
    v = np.asarray(x, dtype=float)
    n = v.size
    if n < 3:
        return 1.0
    d = v - v.mean()
    var = float(d @ d)
    if not var > 0:
        return 1.0
    size = 1 << int(2 * n - 1).bit_length()
    f = np.fft.rfft(d, size)
    acov = np.fft.irfft(f * np.conj(f), size)[:n]
    rho = acov[1:] / var
    stop = np.flatnonzero(rho <= 0)
    kept = rho[: int(stop[0])] if stop.size else rho
    return float(max(1.0, 1.0 + 2.0 * float(kept.sum())))


def coverage_widening(
    warnings: Sequence[str], effective_samples: float | None, span_instants: float | None,
    *, mean: float, std: float, trace: Sequence[float], trace_interval_s: float,
    interval_s: float, replicas: float = 1.0,
) -> Coverage:
    """The factor for one resource (see the module docstring).

    Parameters
    ----------
    warnings : sequence of str
        The service profile's warnings; only a named sampling fault widens.
    effective_samples, span_instants : float or None
        The service profile's fields of the same names.
    mean, std : float
        One replica's mean and standard deviation of demand (resource unit; the host cost
        per container excluded: it is not read from the history).
    trace, trace_interval_s : sequence of float, float
        The resource's trace and its spacing, seconds (for ``tau``).
    interval_s : float
        The profile's median sampling interval, seconds.
    replicas : float
        Replicas running at once, on average (``replicas_at_once`` of the plan: not every
        container ever seen, a redeploy renames them): both counts are summed over them,
        and are taken per replica (the mean), as ``cv`` and ``tau`` are one replica's:
        replicas that move together are not independent looks at the level.

    >>> c = coverage_widening(["12 gaps in the samples (...)"], 400.0, 576.0, mean=1.0,
    ...                       std=0.5, trace=[], trace_interval_s=0.0, interval_s=300.0)
    >>> round(c.factor, 4), round(c.margin, 4)  # 1 + 1.96 * 0.5 * (1/20 - 1/24)
    (1.0082, 0.0081)
    """
    none = Coverage(1.0, effective_samples, span_instants, 1.0, 0.0, "")
    if not has_sampling_fault(warnings):
        return none
    if effective_samples is None or span_instants is None:
        return Coverage(1.0, None, None, 1.0, 0.0,
                        "sampling fault named but the profile does not give its effective "
                        "samples (an older profile): no margin taken; fit the samples again")
    if not effective_samples > 0:
        return Coverage(math.nan, effective_samples, span_instants, 1.0, 0.0,
                        "sampling fault named and no effective samples: the level is not "
                        "known; fit the samples again")
    if not (mean > 0 and std > 0):
        return Coverage(1.0, effective_samples, span_instants, 1.0, 0.0,
                        "sampling fault named; no spread in demand: no margin")
    tau = integrated_autocorrelation_time(trace)
    if trace_interval_s > 0 and interval_s > 0:
        tau *= max(trace_interval_s / interval_s, 1.0)
    per = max(float(replicas), 1.0)
    n_eff = max(effective_samples / per / tau, 1.0)
    n_ref = max(span_instants / per / tau, n_eff)
    cv = std / mean
    factor = 1.0 + COVERAGE_Z * cv * (1.0 / math.sqrt(n_eff) - 1.0 / math.sqrt(n_ref))
    share = effective_samples / span_instants if span_instants > 0 else 1.0
    why = (f"sampling fault: {effective_samples:.0f} effective samples of the "
           f"{span_instants:.0f} instants the span holds ({min(share, 1.0):.0%}); "
           f"autocorrelation time {tau:.3g} intervals: {n_eff:.3g} independent looks per "
           f"replica, not {n_ref:.3g}; the level's extra 95 % error (cv {cv:.2f}) x{factor:.3f}")
    return Coverage(factor, effective_samples, span_instants, tau, cv, why)
