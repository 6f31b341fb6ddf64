"""Fit per-service profiles from the samples table (a scikit-learn style estimator).

The work is vectorised: the table is turned into numpy arrays once, sorted by (service,
container, time), and every statistic is computed on array slices with ``np.bincount``,
cumulative sums and matrix products. The only Python loops run per service x resource (and
per candidate distribution), never per row.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Self

import numpy as np
import pandas as pd

from .._columns import CPU, MEMORY, PLAUSIBLE_MAX, PLAUSIBLE_TEXT, RESOURCES
from .._errors import InvalidParameter, InvalidSamples, NotFittedError
from .._schema import first_line as _first_line
from ..store._files import outlying_times, service_key
from ..store._rates import service_codes
from ._profile import (
    BurstProfile,
    Correlation,
    FitResult,
    Profiles,
    ResourceProfile,
    ServiceProfile,
)

__all__ = [
    "ProfileModel",
    "daily_levels",
    "effective_window_s",
    "sampling_coverage",
    "sampling_warnings",
]

# Which statistic of one replica's distribution the skeleton solver sizes with, per resource.
_DEMAND_STATISTIC = {CPU: "p95"}
_DEFAULT_STATISTIC = "max"

#: candidate parametric families, in the order they are tried
FAMILIES: tuple[str, ...] = ("normal", "lognormal", "gamma", "weibull")

#: declared-limit columns read from the samples (or containers) table, and the resource each caps
LIMIT_COLUMNS: Mapping[str, str] = {"cpu_limit_cores": CPU, "memory_limit_bytes": MEMORY}

#: confidence-interval levels reported in ``quantile_ci``
_CI_NAMES: Mapping[str, float] = {"p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}

#: the Kolmogorov-Smirnov critical value coefficient at the 1 % level (D_crit ~ 1.63 / sqrt(m))
_KS_COEFF_1PCT = 1.628

#: fewest samples above the p90 for a parametric fit to be judged at all
_MIN_TAIL_SAMPLES = 20

#: a sample more than this many (median) intervals after the previous one starts a new run
_GAP_FACTOR = 1.5

#: narrowest centred moving average of the slow/fast split, in samples: ``window_s`` is widened
#: to this many sampling intervals when it covers fewer (at 5-minute samples a 300 s window is
#: one sample wide, so the "slow" part would be the whole series)
MIN_WINDOW_SAMPLES = 5

#: a slow share (``slow_var / (slow_var + fast_var)``) above this is a degenerate split: the
#: plan then treats replicas as moving as one, which the profile says
DEGENERATE_SLOW_SHARE = 0.99

#: one cycle the history must cover for time-of-day effects to be seen, seconds
DAY_S = 86_400.0

#: share of a history's intervals off the median by more than 25 % (gaps excluded) above which
#: the sampling is called irregular
_IRREGULAR_SHARE = 0.10

#: share of the span missing (gaps longer than ``_GAP_FACTOR`` intervals) above which it is said
_GAP_SHARE = 0.05

#: largest (bins x containers) matrix built for the replica correlation
_MAX_ALIGN_CELLS = 20_000_000

#: most replicas whose pairwise correlation is averaged (those with the most samples)
_MAX_REPLICAS_CORRELATED = 100


def _quantile_name(q: float) -> str:
    """``p95``, ``p99.9``, ``max``; ten significant digits, so a level near 1 is not named
    ``p100`` beside ``max`` (0.9999999 is ``p99.99999``)."""
    return "max" if q == 1.0 else f"p{100 * q:.10g}"


def _sorted_quantile(s: np.ndarray, q: np.ndarray | float) -> np.ndarray:
    """numpy's default (linear) quantile of an already sorted, non-empty array."""
    pos = np.asarray(q, dtype=float) * (s.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, s.size - 1)
    frac = pos - lo
    out: np.ndarray = s[lo] + frac * (s[hi] - s[lo])
    return out


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` without BLAS: single-threaded and deterministic. (On this kind of shared
    2-core host, a multi-threaded BLAS call on these small matrices waits on its threads
    and is ~5x slower; its summation order can also vary with the thread count.)"""
    out: np.ndarray = np.einsum("ni,nj->ij", a, b)
    return out


def _dense_corr(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``x`` (no NaN); NaN for a constant column."""
    n_rows = x.shape[0]
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - mu) / np.where(sd > 0, sd, 1.0)
        r: np.ndarray = _gram(z, z) / n_rows
    bad = sd <= 1e-12 * np.abs(mu)
    r[bad, :] = np.nan
    r[:, bad] = np.nan
    return r


def _pairwise_corr(x: np.ndarray, min_periods: int = 3) -> np.ndarray:
    """Pearson correlation of the columns of ``x`` over pairwise-complete rows (NaN = missing).

    Columns without NaN are correlated in one dense product; a column with NaN is correlated
    with every other over its own rows only (cheap for a sparse column such as
    ``disk_usage_bytes``). Columns are standardised first, so large units (bytes) do not lose
    precision. NaN where fewer than ``min_periods`` common rows or a column is constant over
    them.
    """
    k = x.shape[1]
    m = ~np.isnan(x)
    full = m.all(axis=0)
    r = np.full((k, k), np.nan)
    if full.any() and x.shape[0] >= min_periods:
        r[np.ix_(full, full)] = _dense_corr(x[:, full])
    for j in np.flatnonzero(~full):
        rows = m[:, j]
        if rows.sum() < min_periods:
            continue
        sub = x[rows]
        ms = ~np.isnan(sub)
        for i in range(k):
            if i == j:
                col = sub[:, j]
                r[j, j] = 1.0 if col.std() > 1e-12 * abs(col.mean()) else np.nan
                continue
            both = ms[:, i]
            if both.sum() < min_periods:
                r[i, j] = r[j, i] = np.nan
                continue
            pair = _dense_corr(sub[both][:, [i, j]])
            r[i, j] = r[j, i] = pair[0, 1]
    r[~np.isfinite(r)] = np.nan
    result: np.ndarray = np.clip(r, -1.0, 1.0)
    diag = np.diag_indices(k)
    result[diag] = np.where(np.isnan(result[diag]), np.nan, 1.0)
    return result


def _run_lengths(above: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """Lengths (in samples) of the runs of consecutive linked ``True`` in ``above``."""
    if not above.any():
        return np.zeros(0, dtype=np.int64)
    cont_above = np.zeros(above.size, dtype=bool)
    cont_above[1:] = above[:-1] & linked[1:]
    start = above & ~cont_above
    run = np.cumsum(start) - 1
    lengths: np.ndarray = np.bincount(run[above])
    return lengths


def _corr_mapping(r: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float | None]]:
    return {
        a: {b: _none_if_nan(float(r[i, j])) for j, b in enumerate(names)}
        for i, a in enumerate(names)
    }


# --------------------------------------------------------------------------- fitting families


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

#: (log-density, CDF) of a family from its parameters, in numpy/scipy.special (no frozen
#: scipy.stats objects: building those costs more than the fit itself on 20,000 points)
_Funcs = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _family_funcs(family: str, p: Mapping[str, float]) -> _Funcs:
    from scipy import special

    if family == "normal":
        loc, scale = p["loc"], p["scale"]
        return (
            lambda x: -0.5 * ((x - loc) / scale) ** 2 - math.log(scale) - _LOG_SQRT_2PI,
            lambda x: special.ndtr((x - loc) / scale),
        )
    if family == "lognormal":
        sh, mu = p["s"], math.log(p["scale"])
        return (
            lambda x: -0.5 * ((np.log(x) - mu) / sh) ** 2 - math.log(sh) - np.log(x)
            - _LOG_SQRT_2PI,
            lambda x: special.ndtr((np.log(x) - mu) / sh),
        )
    if family == "gamma":
        a, scale = p["a"], p["scale"]
        const = float(special.gammaln(a)) + math.log(scale)
        return (
            lambda x: (a - 1) * np.log(x / scale) - x / scale - const,
            lambda x: special.gammainc(a, x / scale),
        )
    if family == "weibull":
        c, scale = p["c"], p["scale"]
        return (
            lambda x: math.log(c / scale) + (c - 1) * np.log(x / scale) - (x / scale) ** c,
            lambda x: -np.expm1(-((x / scale) ** c)),
        )
    raise ValueError(f"unknown family {family!r}")


def _binom_ppf(q: float, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``scipy.stats.binom.ppf(q, n, p)`` for 0 < q < 1, n >= 1, 0 < p < 1: the smallest k
    with P(X <= k) >= q, computed as scipy computes it (``bdtrik``, then one step down if
    that already reaches q), from ``scipy.special``: importing ``scipy.stats`` costs 0.4 s
    of every ``capacity report``."""
    from scipy import special

    k = np.ceil(special.bdtrik(q, n, p))
    below = np.maximum(k - 1, 0)
    return np.where(special.bdtr(below, n, p) >= q, below, k)


def _brentq(f: Callable[[float], float], a: float, b: float, *, xtol: float,
            rtol: float = 4 * sys.float_info.epsilon, maxiter: int = 100) -> float:
    """A root of ``f`` in [a, b] (``f(a)``, ``f(b)`` of opposite signs), within ``xtol +
    rtol * |root|``: Brent's method as ``scipy.optimize.brentq`` runs it (a port of its C
    code). Importing ``scipy.optimize`` for it cost 0.17 s a report. Checked against scipy
    on 3,000 random Weibull shape fits (the one use here): the same root to the last bit;
    on other functions within the tolerance. Raises ``ValueError`` without a sign change,
    ``RuntimeError`` after ``maxiter`` iterations."""
    xpre, xcur = a, b
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = f(xpre), f(xcur)
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if math.copysign(1, fpre) == math.copysign(1, fcur):
        raise ValueError("f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and math.copysign(1, fpre) != math.copysign(1, fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry  # good short step
            else:
                spre = scur = sbis
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = f(xcur)
    raise RuntimeError(f"Brent's method did not converge in {maxiter} iterations")


def _fit_family(family: str, x: np.ndarray) -> dict[str, float] | None:
    """MLE of one family on ``x`` (all > 0 except for the normal); None when it cannot fit."""
    from scipy import special

    if family == "normal":
        sd = float(x.std())
        return {"loc": float(x.mean()), "scale": sd} if sd > 0 else None
    if x[0] <= 0:  # x is sorted
        return None
    logx = np.log(x)
    if family == "lognormal":
        s = float(logx.std())
        return {"s": s, "scale": float(np.exp(logx.mean()))} if s > 0 else None
    if family == "gamma":
        m = float(x.mean())
        s_ = math.log(m) - float(logx.mean())
        if s_ <= 0:
            return None
        # Minka's starting point, then Newton on log(a) - digamma(a) = s
        a = (3 - s_ + math.sqrt((s_ - 3) ** 2 + 24 * s_)) / (12 * s_)
        for _ in range(20):
            f = math.log(a) - float(special.digamma(a)) - s_
            fp = 1 / a - float(special.polygamma(1, a))
            step = f / fp
            a = max(a - step, a / 10)
            if abs(step) < 1e-10 * a:
                break
        return {"a": a, "scale": m / a}
    if family == "weibull":
        # profile likelihood for the shape c on data scaled to mean 1 (c is scale-free)
        y = x / x.mean()
        logy = np.log(y)
        mlog = float(logy.mean())

        def score(c: float) -> float:
            yc = y**c
            return float((yc * logy).sum() / yc.sum()) - 1 / c - mlog

        lo, hi = 0.05, 100.0
        try:
            if score(lo) * score(hi) > 0:
                return None
            c = _brentq(score, lo, hi, xtol=1e-8)
        except (ValueError, OverflowError, FloatingPointError):
            return None
        return {"c": c, "scale": float(np.mean(y**c) ** (1 / c)) * float(x.mean())}
    raise ValueError(f"unknown family {family!r}")


def _fit_distribution(
    s: np.ndarray, families: Sequence[str], max_samples: int, tail_tolerance: float
) -> FitResult:
    """Choose a family by AIC among those whose tail above the p90 passes a KS test.

    ``s`` is sorted. Above ``max_samples`` samples, the fit uses ``max_samples`` evenly spaced
    order statistics (deterministic, and the same for any order of the input).
    """
    if not families:
        return FitResult(reason="no candidate families requested")
    n = s.size
    if n < 10 * _MIN_TAIL_SAMPLES:
        return FitResult(reason=f"only {n} samples: need {10 * _MIN_TAIL_SAMPLES} to judge a tail")
    x = _sorted_quantile(s, (np.arange(max_samples) + 0.5) / max_samples) if n > max_samples else s
    if x[-1] <= x[0]:
        return FitResult(reason="constant samples: no distribution to fit")
    u = float(_sorted_quantile(x, 0.9))
    tail = x[x > u]
    m = tail.size
    if m < _MIN_TAIL_SAMPLES:
        return FitResult(reason=f"only {m} distinct samples above the p90: too few to judge a tail")
    threshold = max(_KS_COEFF_1PCT / math.sqrt(m), tail_tolerance)
    ecdf_hi = np.arange(1, m + 1) / m
    ecdf_lo = np.arange(0, m) / m
    aics: dict[str, float] = {}
    tails: dict[str, float] = {}
    params: dict[str, dict[str, float]] = {}
    skipped: list[str] = []
    for family in families:
        with np.errstate(all="ignore"):
            p = _fit_family(family, x)
            if p is None:
                skipped.append(family)
                continue
            logpdf, cdf = _family_funcs(family, p)
            ll = float(np.sum(logpdf(x)))
            if not math.isfinite(ll):
                skipped.append(family)
                continue
            fu = float(cdf(np.asarray(u)))
            denom = 1.0 - fu
            if denom <= 0:
                skipped.append(family)
                continue
            g = (cdf(tail) - fu) / denom
            d = float(np.max(np.maximum(np.abs(ecdf_hi - g), np.abs(g - ecdf_lo))))
        aics[family] = 2 * len(p) - 2 * ll
        tails[family] = d
        params[family] = p
    passing = [f for f in aics if tails[f] <= threshold]
    if not passing:
        why = ", ".join(f"{f} {tails[f]:.3f}" for f in tails) or "none could be fitted"
        return FitResult(
            tail_threshold=threshold,
            aic_by_family=aics,
            tail_by_family=tails,
            reason=f"no family fits the tail above the p90 (KS distance > {threshold:.3f}: "
            f"{why}); use the empirical quantiles",
        )
    best = min(passing, key=lambda f: aics[f])
    reason = f"lowest AIC among families whose tail above the p90 passes (KS <= {threshold:.3f})"
    if skipped:
        reason += f"; not fitted: {', '.join(skipped)} (zeros or degenerate samples)"
    return FitResult(
        family=best,
        params=params[best],
        aic=aics[best],
        tail_statistic=tails[best],
        tail_threshold=threshold,
        aic_by_family=aics,
        tail_by_family=tails,
        reason=reason,
    )


# --------------------------------------------------------------------------- the table


@dataclass
class _Table:
    """The samples as sorted numpy arrays (one entry per row, after averaging duplicates)."""

    services: np.ndarray  # names, sorted
    svc: np.ndarray  # int64 code into services, non-decreasing
    cont: np.ndarray  # int64 code of the series (container), sorted within a service
    t: np.ndarray  # seconds since the earliest sample of the fit
    t0_ns: int  # the earliest sample, ns since the epoch (UTC)
    interval: np.ndarray  # seconds, NaN where unknown
    values: dict[str, np.ndarray]  # resource column -> float64 (NaN = not sampled)
    limits: dict[str, np.ndarray]  # limit column -> float64 (NaN = none declared)
    throttled: np.ndarray | None  # cpu_throttled_fraction, when present
    duplicates: np.ndarray  # per service: rows averaged away
    outliers: dict[str, int]  # per service (group_by value as given): rows dropped for time
    #: distinct sample times of every service (as ``t``), made once when asked
    _instants: np.ndarray | None = None

    @property
    def instants(self) -> np.ndarray:
        """The distinct times anything was sampled, seconds as ``t`` (sorted)."""
        if self._instants is None:
            self._instants = np.unique(self.t)
        return self._instants


def _encode_sorted(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes that follow the sorted order of the unique values (so input order is moot)."""
    codes, uniques = pd.factorize(col, sort=False)
    return _sort_codes(codes, uniques)


def _sort_codes(codes: np.ndarray, uniques: Any) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` (>= 0) into ``uniques`` renumbered in the sorted order of ``str`` of the
    uniques; (codes, names sorted)."""
    names = np.asarray([str(u) for u in uniques], dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank[codes], names[order]


def _reject_first(
    bad: np.ndarray, column: str, samples: pd.DataFrame, group_by: str, values: np.ndarray,
    what: str,
) -> None:
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    service = samples[group_by].iloc[i]
    value = float(values[i])
    who = (f", container {samples['container_id'].iloc[i]!r}"
           if "container_id" in samples.columns else "")
    raise InvalidSamples(
        f"column {column!r} of service {service!r} has {value!r} at row {i} "
        f"(time {samples['time'].iloc[i]}{who}): {what}; drop or fix those rows "
        f"({int(bad.sum())} rows in all)",
        column=column,
        service=str(service),
        value=value,
    )


def _prepare(samples: pd.DataFrame, containers: pd.DataFrame | None, group_by: str) -> _Table:
    if not isinstance(samples, pd.DataFrame):
        raise InvalidSamples(
            f"samples must be a pandas DataFrame (the samples table); got {type(samples).__name__}"
        )
    for column in ("time", group_by):
        if column not in samples.columns:
            raise InvalidSamples(
                f"samples have no {column!r} column; got columns {list(samples.columns)}: "
                "pass the samples table from 'capacity collect' or capacity.load()",
                column=column,
            )
    resources = [c for c in RESOURCES if c in samples.columns]
    if not resources:
        raise InvalidSamples(
            f"samples have none of the resource columns {list(RESOURCES)}; got "
            f"{list(samples.columns)}",
        )
    if samples.empty:
        raise InvalidSamples("samples are empty: collect for longer, or check the filters")
    samples, outliers = _drop_outlying_times(samples, group_by)

    # the key as codes into its distinct values (never a string per row: 4 M rows)
    key_codes, key_values = _group_codes(samples, group_by)
    if (key_codes < 0).any():
        i = int(np.flatnonzero(key_codes < 0)[0])
        raise InvalidSamples(
            f"column {group_by!r} is missing at row {i}: every sample needs a service",
            column=group_by,
            value=None,
        )
    svc, services = _sort_codes(key_codes, key_values)
    del key_codes
    times = _utc_times(samples)
    if times.isna().any():
        i = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InvalidSamples(
            f"column 'time' of service {services[svc[i]]!r} is missing (NaT) at row {i}: "
            "every sample needs its time",
            column="time",
            service=str(services[svc[i]]),
            value=None,
        )
    ns = times.to_numpy(dtype="datetime64[ns]").view(np.int64)
    del times

    values: dict[str, np.ndarray] = {}
    for column in resources:
        v = _floats(samples[column])
        _reject_first(np.isinf(v), column, samples, group_by, v,
                      "rates and gauges must be finite (NaN means 'not sampled')")
        with np.errstate(invalid="ignore"):
            _reject_first(v < 0, column, samples, group_by, v, "rates and gauges must be >= 0")
            _reject_first(v > PLAUSIBLE_MAX[column], column, samples, group_by, v,
                          f"above {PLAUSIBLE_TEXT[column]}, more than any machine has (a unit "
                          "mix-up or a corrupt cell?)")
        values[column] = v

    if "interval_s" in samples.columns:
        interval = _floats(samples["interval_s"])
        with np.errstate(invalid="ignore"):
            _reject_first(np.isinf(interval) | (interval <= 0), "interval_s", samples, group_by,
                          interval, "an interval must be a finite number of seconds > 0")
    else:
        interval = np.full(len(samples), np.nan)

    cid_codes: np.ndarray | None = None
    if "container_id" in samples.columns:
        cid = samples["container_id"]
        cid_codes, cid_values = pd.factorize(cid, use_na_sentinel=True)
        if (cid_codes < 0).any():
            i = int(np.flatnonzero(cid_codes < 0)[0])
            raise InvalidSamples(
                f"column 'container_id' of service {services[svc[i]]!r} is missing at row {i}",
                column="container_id",
                service=str(services[svc[i]]),
                value=None,
            )
        cont, _ = _sort_codes(cid_codes, cid_values)
    else:
        cont = svc.copy()

    limits: dict[str, np.ndarray] = {}
    per_container: pd.DataFrame | None = None
    if containers is not None and cid_codes is not None:
        have = [c for c in LIMIT_COLUMNS if c in containers.columns]
        if have:
            per = containers.drop_duplicates("container_id", keep="last").set_index(
                "container_id"
            )[have]
            # one row per distinct container id of the samples, taken per row below
            per_container = per.reindex(np.asarray(cid_values, dtype=object))
    for column in LIMIT_COLUMNS:
        if per_container is not None:
            if column not in per_container.columns:
                continue
            lim = _floats(pd.to_numeric(per_container[column], errors="coerce"))
            lim = np.where(np.isfinite(lim) & (lim > 0), lim, np.nan)[cid_codes]
        elif column in samples.columns:
            lim = _floats(pd.to_numeric(samples[column], errors="coerce"))
            lim = np.where(np.isfinite(lim) & (lim > 0), lim, np.nan)
        else:
            continue
        limits[column] = lim
    del cid_codes
    throttled = (
        _floats(samples["cpu_throttled_fraction"])
        if "cpu_throttled_fraction" in samples.columns
        else None
    )

    # sort by (service, container, time), unless it already is (the common case)
    if len(ns) > 1:
        dsvc, dcont, dt = np.diff(svc), np.diff(cont), np.diff(ns)
        in_order = (dsvc > 0) | ((dsvc == 0) & ((dcont > 0) | ((dcont == 0) & (dt >= 0))))
        if not in_order.all():
            order = np.lexsort((ns, cont, svc))
            svc, cont, ns, interval = svc[order], cont[order], ns[order], interval[order]
            values = {k: v[order] for k, v in values.items()}
            limits = {k: v[order] for k, v in limits.items()}
            throttled = None if throttled is None else throttled[order]

    # duplicate (service, container, time): average them (NaN-aware), count per service
    dup = np.zeros(len(ns), dtype=bool)
    if len(ns) > 1:
        dup[1:] = (np.diff(svc) == 0) & (np.diff(cont) == 0) & (np.diff(ns) == 0)
    duplicates = np.bincount(svc[dup], minlength=len(services)).astype(np.int64)
    if dup.any():
        grp = np.cumsum(~dup) - 1
        keep = ~dup

        def avg(a: np.ndarray) -> np.ndarray:
            ok = ~np.isnan(a)
            total = np.bincount(grp[ok], weights=a[ok], minlength=int(grp[-1]) + 1)
            count = np.bincount(grp[ok], minlength=int(grp[-1]) + 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(count > 0, total / np.maximum(count, 1), np.nan)

        values = {k: avg(v) for k, v in values.items()}
        limits = {k: avg(v) for k, v in limits.items()}
        interval = avg(interval)
        throttled = None if throttled is None else avg(throttled)
        svc, cont, ns = svc[keep], cont[keep], ns[keep]

    t0 = int(ns.min())
    return _Table(
        services=services,
        svc=svc,
        cont=cont,
        t=(ns - t0) / 1e9,
        t0_ns=t0,
        interval=interval,
        values=values,
        limits=limits,
        throttled=throttled,
        duplicates=duplicates,
        outliers=outliers,
    )


def _floats(col: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing: a read-only view when it already is numpy
    float64 (no copy of a column of millions of rows), else converted."""
    if col.dtype == np.float64:
        out: np.ndarray = col.to_numpy()
        return out
    return col.to_numpy(dtype=float, na_value=np.nan)


def _group_codes(samples: pd.DataFrame, group_by: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_group_key` as (int64 code per row, -1 where missing; object array of the
    distinct keys), computed per distinct value, not per row."""
    if group_by != "service":
        codes, uniques = pd.factorize(samples[group_by], use_na_sentinel=True)
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)
    name = samples["container_name"] if "container_name" in samples.columns else (
        samples["container_id"] if "container_id" in samples.columns else samples[group_by])
    codes, keys = service_codes(samples[group_by], samples["image"] if "image" in samples.columns
                                else None, name)
    empty = keys == ""
    if empty.any():  # an empty key is a missing one (see _group_key); renumber the others
        new = np.cumsum(~empty) - 1
        codes = np.where(empty[codes], -1, new[codes])
        keys = keys[~empty]
    return codes, keys


def _group_key(samples: pd.DataFrame, group_by: str) -> pd.Series:
    """The ``group_by`` column; for ``"service"`` an empty or missing value falls back to the
    image, then the container name (then id), as the collector does for a container without a
    Compose label: an empty service would pool unrelated containers into one service ""."""
    key = samples[group_by]
    if group_by != "service":
        return key
    name = samples["container_name"] if "container_name" in samples.columns else (
        samples["container_id"] if "container_id" in samples.columns else key)
    key = service_key(key, samples["image"] if "image" in samples.columns else None, name)
    return key.where(key != "", None)


def _utc_times(samples: pd.DataFrame) -> pd.Series:
    try:
        return pd.to_datetime(samples["time"], utc=True).astype("datetime64[ns, UTC]")
    except pd.errors.OutOfBoundsDatetime as exc:
        raise InvalidSamples(
            f"column 'time' holds a time outside the range capacity handles "
            f"({pd.Timestamp.min.isoformat()} to {pd.Timestamp.max.isoformat()}): "
            f"{_first_line(exc)}; fix "
            "or drop that row (a placeholder such as 9999-12-31?)", column="time"
        ) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidSamples(
            f"column 'time' cannot be read as UTC datetimes ({_first_line(exc)})", column="time"
        ) from exc


def _drop_outlying_times(
    samples: pd.DataFrame, group_by: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Samples without the rows whose time is outlying (rule:
    :func:`capacity.store.outlying_times`), and per service how many were dropped.

    A stray 1970 row among a day of samples would otherwise stretch the span to 56 years.
    """
    times = _utc_times(samples)
    ns = times.to_numpy(dtype="datetime64[ns]").view(np.int64)
    ok = ~times.isna().to_numpy()
    mask = np.zeros(len(samples), dtype=bool)
    mask[ok] = outlying_times(ns[ok])
    if not mask.any():
        return samples, {}
    if mask[ok].all():
        raise InvalidSamples(
            f"every sample time is outlying (first {times.iloc[0]}): before 2000-01-01, a "
            "clock that was never set? Fix the times, or drop those rows",
            column="time", value=str(times.iloc[0]),
        )
    dropped = _group_key(samples.loc[mask], group_by).fillna("").astype(str).value_counts()
    return samples.loc[~mask], {str(k): int(v) for k, v in dropped.items()}


# --------------------------------------------------------------------------- sampling


def effective_window_s(window_s: float, step_s: float) -> float:
    """The slow/fast split's window, seconds: ``window_s``, widened to at least
    :data:`MIN_WINDOW_SAMPLES` sampling intervals of ``step_s`` seconds (unchanged when
    ``step_s`` is 0 or unknown).

    >>> effective_window_s(300.0, 300.0), effective_window_s(300.0, 1.0)
    (1500.0, 300.0)
    """
    if not (step_s > 0 and math.isfinite(step_s)):
        return float(window_s)
    return float(max(window_s, MIN_WINDOW_SAMPLES * step_s))


def sampling_warnings(
    t_s: np.ndarray, series: np.ndarray, step_s: float, interval_s: np.ndarray | None = None
) -> list[str]:
    """What is wrong with a service's sampling, one sentence each (empty when regular).

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times, seconds, sorted within each series.
    series : numpy.ndarray
        Dense series (container) code of each sample, non-decreasing.
    step_s : float
        The median sampling interval, seconds.
    interval_s : numpy.ndarray, optional
        The declared ``interval_s`` of each sample (NaN: unknown).

    Returns
    -------
    list of str
        Gaps (samples missing over more than :data:`_GAP_SHARE` of the span), irregular
        intervals (more than :data:`_IRREGULAR_SHARE` of them off the median by more than
        25 %), and a sampling interval that changed mid-way (the median of the first and the
        second half of the samples differ by more than 1.5 times).
    """
    out: list[str] = []
    if step_s <= 0 or t_s.size < 3:
        return out
    same = series[1:] == series[:-1]
    dt = np.diff(t_s)[same]
    if dt.size < 2:
        return out
    # a changed interval: the median interval before and after the middle of the span (no
    # sort: replicas' rows are each in time order, not the service's)
    t_end = t_s[1:][same]
    early = t_end < 0.5 * (float(t_s.min()) + float(t_s.max()))
    m1 = m2 = step_s
    if early.any() and not early.all():
        m1, m2 = float(np.median(dt[early])), float(np.median(dt[~early]))
    declared = interval_s[~np.isnan(interval_s)] if interval_s is not None else np.zeros(0)
    if declared.size and declared.min() > 0 and declared.max() > 1.5 * declared.min():
        out.append(
            f"the declared sampling interval changes from {declared.min():g} s to "
            f"{declared.max():g} s: statistics mix two resolutions (bursts shorter than the "
            "coarser one are not seen there); fit each period apart"
        )
    elif min(m1, m2) > 0 and max(m1, m2) > 1.5 * min(m1, m2):
        out.append(
            f"the sampling interval changed mid-way (median {m1:g} s, then {m2:g} s): "
            "statistics mix two resolutions; fit each period apart"
        )
    gap = dt > _GAP_FACTOR * step_s
    span = float(np.sum(dt))
    missing = float(np.sum(dt[gap] - step_s))
    if span > 0 and missing / span > _GAP_SHARE:
        out.append(
            f"{int(gap.sum())} gaps in the samples (longest {float(dt[gap].max()):g} s, "
            f"{100 * missing / span:.0f} % of the span missing): demand during the gaps is "
            "unknown"
        )
    regular = dt[~gap]
    off = float(np.mean(np.abs(regular - step_s) > 0.25 * step_s)) if regular.size else 0.0
    if off > _IRREGULAR_SHARE:
        out.append(
            f"irregular sampling: {100 * off:.0f} % of the intervals are off the median "
            f"{step_s:g} s by more than 25 %; the slow/fast window and burst lengths are "
            "counted in samples of the median"
        )
    return out


def sampling_coverage(t_s: np.ndarray, series: np.ndarray, step_s: float) -> tuple[float, float]:
    """How many independent looks the samples give, against the instants their span holds.

    Returns ``(effective_samples, span_instants)``:

    - ``span_instants``: the sampling instants each replica's span holds at ``step_s`` (its
      first to its last sample, the last covering one interval), summed over replicas;
    - ``effective_samples``: Kish's effective count of the samples weighted by the time each
      stands for, ``(sum w)^2 / sum w^2``, with ``w`` the interval to the replica's next sample
      (the last: ``step_s``), and a gap (over 1.5 intervals) standing for one interval only:
      what it skipped was not seen. Regular samples give ``n``; a sample that stands for five
      intervals counts for less than five, a burst of close samples for less than its count.

    Both are equal for a regular history; a history with gaps, irregular intervals or an
    interval that changed mid-way has ``effective_samples < span_instants`` (the plan widens
    demand by ``1 + 1.96 cv (1/sqrt(n_eff) - 1/sqrt(n_ref))``, both per replica over the
    autocorrelation time: :mod:`capacity.solver._coverage`). ``(0, 0)`` without an
    interval.

    >>> sampling_coverage(np.arange(4) * 60.0, np.zeros(4, dtype=int), 60.0)
    (4.0, 4.0)
    >>> sampling_coverage(np.r_[0.0, 60, 600, 660], np.zeros(4, dtype=int), 60.0)  # a gap
    (4.0, 12.0)
    """
    if t_s.size == 0 or not step_s > 0:
        return 0.0, 0.0
    same = np.zeros(t_s.size, dtype=bool)  # sample i has a next sample of its own replica
    same[:-1] = series[1:] == series[:-1]
    w = np.full(t_s.size, float(step_s))
    dt = np.diff(t_s)
    nxt = np.where(same[:-1], dt, step_s)
    w[:-1] = np.where(nxt > _GAP_FACTOR * step_s, step_s, np.maximum(nxt, 0.0))
    n_series = int(series.max()) + 1 if series.size else 0
    lo = np.full(n_series, np.inf)
    hi = np.full(n_series, -np.inf)
    np.minimum.at(lo, series, t_s)
    np.maximum.at(hi, series, t_s)
    span_instants = float(np.sum((hi - lo) / step_s + 1.0))
    sq = float(w @ w)
    effective = float(w.sum()) ** 2 / sq if sq > 0 else 0.0
    return effective, span_instants


#: the start of the profile warning naming times of day the history did not see
UNSEEN_HOURS_WARNING = "hours of the day not seen"
#: a time of day seen on fewer than this share of the days the history spans is "not seen"
UNSEEN_HOURS_SHARE = 0.5
#: widths of the time-of-day bins (seconds; each divides a day): the finest at least twice
#: the sampling interval is used, so a regular history has a sample in every bin
_TOD_BINS_S = (3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400)


def unseen_hours(t_s: np.ndarray, day_offset_s: float, step_s: float,
                 sampled_s: np.ndarray | None = None) -> tuple[tuple[float, float], ...]:
    """Times of day (UTC) the history rarely or never saw: each ``(start_h, end_h)`` range
    of hours of the day whose bins had a sample on fewer than :data:`UNSEEN_HOURS_SHARE` of
    the days the history spans at that time of day, and missed on at least two (a gap that
    recurs daily: a collector down every night, a scrape window). A gap at random instants
    leaves no time of day unseen; a single outage neither; a regular history never has one.

    ``t_s``: the service's sample times (any replica), seconds after an instant
    ``day_offset_s`` seconds past a UTC midnight. ``sampled_s``: the times anything was
    sampled (every service of the recording, same origin): a bin with a sample of another
    service was seen, and this service simply did not run then (a dev stack stopped at
    night: planned by what it uses while it runs), not missed. The bins are an hour wide,
    wider for a sampling interval over half an hour (:data:`_TOD_BINS_S`). ``()`` when
    fewer than a day's bins hold a sample (a history under a day: the plan's one-day
    allowance covers it).

    >>> t = np.arange(3 * 288) * 300.0
    >>> keep = (t % 86400 < 11 * 3600) | (t % 86400 >= 15 * 3600)  # 11:00-15:00 never seen
    >>> unseen_hours(t[keep], 0.0, 300.0)
    ((11.0, 15.0),)
    >>> unseen_hours(t[keep], 0.0, 300.0, sampled_s=t)  # others were sampled then
    ()
    """
    if t_s.size == 0 or not step_s > 0:
        return ()
    width = next((b for b in _TOD_BINS_S if b >= 2 * step_s), 86400)
    per_day = 86400 // width
    if per_day < 2:
        return ()
    b = np.floor((np.asarray(t_s, dtype=float) + day_offset_s) / width).astype(np.int64)
    lo, hi = int(b.min()), int(b.max())
    seen_abs = np.unique(b)
    if sampled_s is not None and sampled_s.size:
        other = np.floor((np.asarray(sampled_s, dtype=float) + day_offset_s) / width)
        other = other.astype(np.int64)
        seen_abs = np.union1d(seen_abs, other[(other >= lo) & (other <= hi)])
    if seen_abs.size < per_day:
        return ()
    possible = np.bincount(np.arange(lo, hi + 1) % per_day, minlength=per_day)
    seen = np.bincount(seen_abs % per_day, minlength=per_day)
    # missed on at least two days: one outage is the sampling widening's, not a cycle's gap
    low = (seen < UNSEEN_HOURS_SHARE * possible) & (possible - seen >= 2)
    if not low.any():
        return ()
    # ranges of consecutive low bins from a seen one: a range across midnight stays whole
    start = int(np.flatnonzero(~low)[0])
    out: list[tuple[float, float]] = []
    cur: list[int] | None = None
    for i in [(start + k) % per_day for k in range(per_day)] + [start]:
        if low[i]:
            cur = [i, i + 1] if cur is None else [cur[0], i + 1]
        elif cur is not None:
            out.append((cur[0] * width / 3600, (cur[1] % per_day) * width / 3600))
            cur = None
    return tuple(sorted(out))


def format_hours(ranges: Sequence[tuple[float, float]]) -> str:
    """``"11:00-15:00, 23:00-01:00"``: ranges of hours of the day."""
    def hm(h: float) -> str:
        return f"{int(h) % 24:02d}:{round((h % 1) * 60):02d}"
    return ", ".join(f"{hm(a)}-{hm(b)}" for a, b in ranges)


def daily_levels(t_s: np.ndarray, v: np.ndarray, step_s: float) -> tuple[float | None, ...]:
    """Mean of ``v`` over each whole day (86,400 s) counted back from the end of the history
    (the last sample covers ``step_s``), oldest first; None for a day holding fewer than a
    tenth of the samples of the median day. Empty under one whole day.

    >>> daily_levels(np.arange(48) * 3600.0, np.r_[np.ones(24), 3 * np.ones(24)], 3600.0)
    (1.0, 3.0)
    """
    if t_s.size == 0 or not step_s > 0:
        return ()
    end = float(t_s.max()) + step_s
    # a day short by under 1 % (a late first sample) is still whole
    days = int((end - float(t_s.min())) / DAY_S + 0.01)
    if days < 1:
        return ()
    # 0: the last day (a sample at the start of a day belongs to it: half a step of slack)
    k = np.floor((end - 0.5 * step_s - t_s) / DAY_S).astype(np.int64)
    keep = k < days
    sums = np.bincount(k[keep], weights=v[keep], minlength=days)
    counts = np.bincount(k[keep], minlength=days)
    # relative to the other days, not to the median interval: irregular sampling (bursts of
    # short intervals) makes the median interval promise far more samples than any day holds
    seen = counts[counts > 0]
    enough = counts >= 0.1 * float(np.median(seen)) if seen.size else counts > 0
    out = [float(sums[i] / counts[i]) if enough[i] and counts[i] else None for i in range(days)]
    return tuple(reversed(out))


# --------------------------------------------------------------------------- the estimator


class ProfileModel:
    """Fit one replica's demand per service and resource from the samples table.

    Parameters
    ----------
    group_by : str
        Column naming the service (default ``"service"``).
    quantiles : sequence of float
        Extra quantile levels in (0, 1) for ``ResourceProfile.quantiles`` (p50, p90, p95, p99,
        p99.9 and max are always there). Named ``"p99.99"`` for 0.9999.
    half_life_s : float
        Half-life of the histogram's sample weights, seconds (default 24 h, as the Kubernetes
        VPA recommender).
    min_samples : int
        Fewer samples than this in a service makes its confidence ``"low"`` (default 100, as krr).
    min_span_s : float
        A shorter span than this makes its confidence ``"low"`` (default 3 h, as krr).
    window_s : float
        Centred moving-average window of the slow component, seconds (default 300). Widened to
        :data:`MIN_WINDOW_SAMPLES` sampling intervals when it covers fewer (the profile's
        ``window_s`` is the width used, e.g. 1,500 s at 5-minute samples).
    n_bins : int
        Histogram bins (default 200: the first from 0 to the smallest positive sample, then
        geometric up to the maximum).
    families : sequence of str
        Candidate parametric families among ``"normal"``, ``"lognormal"``, ``"gamma"``,
        ``"weibull"``; empty to skip the parametric fit.
    tail_tolerance : float
        Largest conditional KS distance above the p90 accepted regardless of the sample size
        (default 0.05); see :class:`~capacity.model.FitResult`.
    fit_max_samples : int
        Parametric fits use at most this many evenly spaced order statistics (default 20,000).
    ci_level : float
        Confidence level of ``quantile_ci`` (default 0.95).
    correlation_interval_s : float
        Bin width of the correlation between services, seconds (default 60).
    trace_max_points : int
        Longest ``trace`` kept per resource (default 2,000); ``replica_trace`` keeps whole
        replicas' own series within the same budget (at least one replica, so it can be as
        long as ``trace``; the JSON then holds up to twice as many trace points).

    Attributes
    ----------
    profiles_ : Profiles
        The fitted profiles (after :meth:`fit`).

    Notes
    -----
    How the input is treated (never silently):

    - inf or a negative value in a resource column, a missing service, container id or time,
      an interval <= 0: :class:`~capacity.InvalidSamples` naming the column, service, value.
    - NaN in a resource column means "not sampled" (the first sample of a counter has no rate;
      ``disk_usage_bytes`` is read slowly): that value is left out of that resource only.
      A resource with no value in a service gets no profile; a service with no value at all
      gets a profile with no resources and ``confidence == "low"``.
    - Unsorted rows are sorted by (service, container, time).
    - Rows of one container with the same time are averaged into one (counted in ``notes``).
    - A single sample gives a profile (std 0, no fit, no burst) flagged ``"low"``.
    - CPU above the declared CPU limit and memory above the declared memory limit (columns
      ``cpu_limit_cores`` / ``memory_limit_bytes`` of the samples, or of ``containers``) are
      clipped to the limit: they cannot happen, so they are measurement jitter (in ``notes``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> samples = pd.DataFrame({
    ...     "time": pd.date_range("2026-01-01", periods=500, freq="5s", tz="UTC"),
    ...     "service": "web", "container_id": "c1", "interval_s": 5.0,
    ...     "cpu_cores": np.linspace(0.1, 0.5, 500)})
    >>> p = ProfileModel(min_span_s=60).fit(samples).profiles_["web"].resources["cpu_cores"]
    >>> round(p.p50, 3), round(p.max, 3)
    (0.3, 0.5)
    """

    def __init__(
        self,
        group_by: str = "service",
        *,
        quantiles: Sequence[float] = (0.5, 0.9, 0.95, 0.99, 0.999),
        half_life_s: float = 86_400.0,
        min_samples: int = 100,
        min_span_s: float = 3 * 3600.0,
        window_s: float = 300.0,
        n_bins: int = 200,
        families: Sequence[str] = FAMILIES,
        tail_tolerance: float = 0.05,
        fit_max_samples: int = 20_000,
        ci_level: float = 0.95,
        correlation_interval_s: float = 60.0,
        trace_max_points: int = 2_000,
    ) -> None:
        self.group_by = group_by
        self.quantiles = quantiles
        self.half_life_s = half_life_s
        self.min_samples = min_samples
        self.min_span_s = min_span_s
        self.window_s = window_s
        self.n_bins = n_bins
        self.families = families
        self.tail_tolerance = tail_tolerance
        self.fit_max_samples = fit_max_samples
        self.ci_level = ci_level
        self.correlation_interval_s = correlation_interval_s
        self.trace_max_points = trace_max_points

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: fitted attributes before fit()
        if name == "profiles" or (name.endswith("_") and not name.startswith("__")):
            raise NotFittedError(
                f"This ProfileModel is not fitted yet ({name} is set by fit): "
                "call fit(samples) first."
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params``."""
        return {
            "group_by": self.group_by,
            "quantiles": tuple(self.quantiles),
            "half_life_s": self.half_life_s,
            "min_samples": self.min_samples,
            "min_span_s": self.min_span_s,
            "window_s": self.window_s,
            "n_bins": self.n_bins,
            "families": tuple(self.families),
            "tail_tolerance": self.tail_tolerance,
            "fit_max_samples": self.fit_max_samples,
            "ci_level": self.ci_level,
            "correlation_interval_s": self.correlation_interval_s,
            "trace_max_points": self.trace_max_points,
        }

    def _check_params(self) -> None:
        owner = "ProfileModel"

        def positive(name: str, value: Any) -> None:
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidParameter(name, owner, "a finite number > 0", value)

        def int_at_least(name: str, value: Any, low: int) -> None:
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
                raise InvalidParameter(name, owner, f"an int >= {low}", value)

        if not isinstance(self.group_by, str) or not self.group_by:
            raise InvalidParameter("group_by", owner, "a column name", self.group_by)
        for q in self.quantiles:
            if not (isinstance(q, int | float) and 0 < q < 1):
                raise InvalidParameter("quantiles", owner, "levels in (0, 1)", self.quantiles)
        positive("half_life_s", self.half_life_s)
        positive("window_s", self.window_s)
        positive("correlation_interval_s", self.correlation_interval_s)
        int_at_least("min_samples", self.min_samples, 1)
        int_at_least("n_bins", self.n_bins, 2)
        int_at_least("fit_max_samples", self.fit_max_samples, 200)
        int_at_least("trace_max_points", self.trace_max_points, 1)
        if not (isinstance(self.min_span_s, int | float) and self.min_span_s >= 0):
            raise InvalidParameter("min_span_s", owner, "a number of seconds >= 0", self.min_span_s)
        if not (isinstance(self.tail_tolerance, int | float) and 0 < self.tail_tolerance < 1):
            raise InvalidParameter("tail_tolerance", owner, "in (0, 1)", self.tail_tolerance)
        if not (isinstance(self.ci_level, int | float) and 0 < self.ci_level < 1):
            raise InvalidParameter("ci_level", owner, "in (0, 1)", self.ci_level)
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or isinstance(self.families, str):
            raise InvalidParameter("families", owner, f"a subset of {FAMILIES}", self.families)

    def fit(self, samples: pd.DataFrame, *, containers: pd.DataFrame | None = None) -> Self:
        """Fit profiles from the samples table; sets ``profiles_``.

        Parameters
        ----------
        samples : pandas.DataFrame
            The samples table (:mod:`capacity._columns`): ``time``, the ``group_by`` column,
            ideally ``container_id`` and ``interval_s``, and any resource columns. Declared
            limits are read from its ``cpu_limit_cores`` / ``memory_limit_bytes`` columns when
            present.
        containers : pandas.DataFrame, optional
            The collector's containers table: when given, limits are taken from it by
            ``container_id`` instead.

        Returns
        -------
        ProfileModel
            ``self``.

        Raises
        ------
        InvalidSamples
            Input that cannot be used (see the class notes); names column, service and value.
        InvalidParameter
            A constructor parameter out of range.
        """
        self._check_params()
        table = _prepare(samples, containers, self.group_by)
        levels = sorted({0.5, 0.9, 0.95, 0.99, 0.999, *map(float, self.quantiles)})
        n_services = len(table.services)
        bounds = np.searchsorted(table.svc, np.arange(n_services + 1))
        resources = list(table.values)
        cgrid = np.floor(table.t / self.correlation_interval_s).astype(np.int64)

        services: dict[str, ServiceProfile] = {}
        minute_means: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {
            r: {} for r in resources
        }
        between_resources: dict[str, dict[str, dict[str, float | None]]] = {}
        for k, name in enumerate(table.services):
            a, b = int(bounds[k]), int(bounds[k + 1])
            if a == b:
                continue
            sp, mm, rc = self._fit_service(str(name), table, slice(a, b), levels, cgrid[a:b])
            services[str(name)] = sp
            for r, v in mm.items():
                minute_means[r][str(name)] = v
            between_resources[str(name)] = rc

        between_services: dict[str, dict[str, dict[str, float | None]]] = {}
        names = [str(s) for s in table.services if str(s) in services]
        n_g = int(cgrid.max()) + 1 if cgrid.size else 0
        for r in resources:
            cols = [s for s in names if s in minute_means[r]]
            if not cols:
                continue
            mat = np.full((n_g, len(cols)), np.nan)
            for j, s in enumerate(cols):
                idx, means = minute_means[r][s]
                mat[idx, j] = means
            rows = ~np.all(np.isnan(mat), axis=1)
            between_services[r] = _corr_mapping(_pairwise_corr(mat[rows]), cols)

        self.profiles_ = Profiles(
            services=services,
            source="samples",
            created_at=datetime.now(UTC).isoformat(),
            meta={
                k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()
            },
            correlation=Correlation(
                between_services=between_services,
                between_resources=between_resources,
                interval_s=float(self.correlation_interval_s),
            ),
        )
        return self

    @property
    def profiles(self) -> Profiles:
        """``profiles_``, or :class:`~capacity.NotFittedError` before :meth:`fit`."""
        # Trap: the NotFittedError (an AttributeError) raised here makes Python retry with
        # __getattr__("profiles"), which therefore raises NotFittedError too.
        return self.profiles_

    # ----------------------------------------------------------------------- per service

    def _fit_service(
        self, name: str, table: _Table, sl: slice, levels: list[float], cgrid: np.ndarray
    ) -> tuple[
        ServiceProfile,
        dict[str, tuple[np.ndarray, np.ndarray]],
        dict[str, dict[str, float | None]],
    ]:
        t = table.t[sl]
        cont_raw = table.cont[sl]
        # dense series codes 0..k-1 within the service, in sorted container order
        new_series = np.ones(t.size, dtype=bool)
        new_series[1:] = cont_raw[1:] != cont_raw[:-1]
        series = np.cumsum(new_series) - 1
        n_series = int(series[-1]) + 1
        n = t.size
        span_s = float(t.max() - t.min())

        interval = table.interval[sl]
        dts = np.diff(t)[~new_series[1:]]
        known = interval[~np.isnan(interval)]
        if known.size:
            step = float(np.median(known))
        elif dts.size:
            step = float(np.median(dts))
        else:
            step = 0.0
        # consecutive samples of one container without a missed sample between them
        linked = np.zeros(n, dtype=bool)
        if n > 1:
            linked[1:] = ~new_series[1:] & (np.diff(t) <= _GAP_FACTOR * step)

        weights = np.exp2(-(t.max() - t) / self.half_life_s)
        notes: list[str] = []
        warnings: list[str] = []
        dups = int(table.duplicates[np.searchsorted(table.services, name)])
        if dups:
            notes.append(f"{dups} rows with a repeated (container, time) were averaged into one")
        dropped = table.outliers.get(str(name), 0)
        if dropped:
            notes.append(
                f"{dropped} row(s) dropped for an outlying time (before 2000, or far outside "
                "the middle 98 % of the sample times: capacity.store.outlying_times)"
            )

        # declared limits, clipping
        limit_of: dict[str, float | None] = {}
        clip_at: dict[str, np.ndarray] = {}
        for column, resource in LIMIT_COLUMNS.items():
            lim = table.limits.get(column)
            if lim is None:
                limit_of[column] = None
                continue
            lim = lim[sl]
            declared = lim[~np.isnan(lim)]
            limit_of[column] = float(declared.max()) if declared.size else None
            if declared.size and declared.min() != declared.max():
                notes.append(
                    f"replicas declare different {column} ({declared.min():g} to "
                    f"{declared.max():g}): the largest is kept"
                )
            if declared.size and resource in table.values:
                clip_at[resource] = lim

        values: dict[str, np.ndarray] = {}
        for r, v in table.values.items():
            v = v[sl]
            if r in clip_at:
                with np.errstate(invalid="ignore"):
                    over = v > clip_at[r]
                if over.any():
                    notes.append(
                        f"{int(over.sum())} {r} samples above the declared limit were clipped "
                        "to it"
                    )
                    v = np.where(over, clip_at[r], v)
            values[r] = v

        if table.throttled is not None and CPU in values:
            thr = table.throttled[sl]
            thr = thr[~np.isnan(thr)]
            if thr.size and float(thr.mean()) > 0.01:
                warnings.append(
                    f"CPU was throttled in {100 * float(thr.mean()):.1f} % of periods: demand "
                    "above the CPU limit was never seen, so the CPU profile understates what "
                    "the service would use without the limit"
                )

        # time bins of the service's own sampling grid (for replica alignment and the trace)
        if step > 0:
            tbin = np.floor((t - t.min()) / step + 0.5).astype(np.int64)
        else:
            tbin = np.zeros(n, dtype=np.int64)

        # the slow component's centred window, in samples (at least MIN_WINDOW_SAMPLES wide),
        # truncated at each container's ends: rows lo .. hi1 - 1 (shared by every resource)
        window_s = effective_window_s(self.window_s, step)
        if window_s > self.window_s:
            notes.append(
                f"slow/fast window widened from {self.window_s:g} s to {window_s:g} s "
                f"({MIN_WINDOW_SAMPLES} samples of {step:g} s)"
            )
        half = min(round(window_s / (2 * step)), n) if step > 0 else n
        first = np.searchsorted(series, np.arange(n_series), side="left")
        last = np.searchsorted(series, np.arange(n_series), side="right")
        rows = np.arange(n)
        window = (
            np.maximum(rows - half, first[series]),
            np.minimum(rows + half + 1, last[series]),
        )

        # the time-of-day slot of each sample, when the history covers two whole days at an
        # interval that divides a day (within 1 %): replicas share their time of day
        tod_slot: np.ndarray | None = None
        per_day = round(DAY_S / step) if step > 0 else 0
        if (per_day >= 2 and abs(per_day * step - DAY_S) <= 0.01 * DAY_S
                and span_s + step >= 2 * DAY_S * 0.99):
            tod_slot = (tbin % per_day).astype(np.int64)
        elif span_s >= DAY_S:
            notes.append(
                f"time of day not modelled: the sampling interval {step:g} s does not divide "
                "a day" if per_day >= 2 else "time of day not modelled: no sampling interval")
        else:
            notes.append("time of day not modelled: under two whole days of history")

        profiles: dict[str, ResourceProfile] = {}
        minute: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for r, v in values.items():
            ok = ~np.isnan(v)
            if not ok.any():
                continue
            profiles[r] = self._fit_resource(
                r, v, ok, series, n_series, linked, weights, tbin, step, levels, window,
                window_s, tod_slot,
            )
            rp = profiles[r] = replace(
                profiles[r], daily_levels=daily_levels(t[ok], v[ok], step)
            )
            if n_series == 1 and rp.var > 0 and (
                rp.slow_var / max(rp.slow_var + rp.fast_var, 1e-300) > DEGENERATE_SLOW_SHARE
            ):
                share = rp.slow_var / (rp.slow_var + rp.fast_var)
                warnings.append(
                    f"{r}: degenerate slow/fast split (slow share {share:.4f} with a "
                    f"{window_s:g} s window): replicas are planned as moving as one, the "
                    "safe side but a low count; a longer or finer-sampled history splits it"
                )
            g = cgrid[ok]
            sums = np.bincount(g, weights=v[ok])
            counts = np.bincount(g)
            idx = np.flatnonzero(counts)
            minute[r] = (idx, sums[idx] / counts[idx])

        present = [r for r in RESOURCES if r in profiles]
        mat = np.column_stack([values[r] for r in present]) if present else np.empty((n, 0))
        rc = _corr_mapping(_pairwise_corr(mat), present)

        count = max((p.count for p in profiles.values()), default=0)
        warnings += sampling_warnings(t, series, step, interval)
        effective_samples, span_instants = sampling_coverage(t, series, step)
        unseen = unseen_hours(t, (table.t0_ns % (86_400 * 10**9)) / 1e9, step,
                              sampled_s=table.instants)
        if unseen:
            warnings.append(
                f"{UNSEEN_HOURS_WARNING}: {format_hours(unseen)} UTC (samples on fewer than "
                f"half of the days the history spans at those hours): a load that peaks "
                "there is not in the profile; collect over those hours"
            )
        # the last sample covers one interval: 288 five-minute samples are a whole day (as
        # daily_levels and the time-of-day check count it; a day short by under 1 % is whole)
        covered_s = span_s + (step if step > 0 else 0.0)
        if span_s > 0 and covered_s < 0.99 * DAY_S:
            notes.append(
                f"history of {covered_s / 3600:.3g} h, shorter than one day: the daily cycle "
                "is not covered, so a busier time of day than the one recorded is not planned "
                "for"
            )
        if not profiles:
            warnings.append("no value in any resource column: nothing to profile")
        if count == 1:
            warnings.append("a single sample: spread, fit and burstiness are undefined")
        if count < self.min_samples:
            warnings.append(
                f"only {count} samples (< min_samples={self.min_samples}): collect for longer"
            )
        if span_s < self.min_span_s:
            warnings.append(
                f"span of {span_s:.0f} s (< min_span_s={self.min_span_s:g}): collect for longer "
                "to see slow cycles; high quantiles are uncertain"
            )
        t_start = pd.Timestamp(table.t0_ns + round(float(t.min()) * 1e9), tz="UTC")
        t_end = pd.Timestamp(table.t0_ns + round(float(t.max()) * 1e9), tz="UTC")
        mem_limit = limit_of.get("memory_limit_bytes")
        sp = ServiceProfile(
            service=name,
            replicas_seen=n_series,
            n_samples=n,
            span_s=span_s,
            interval_s=step,
            resources=profiles,
            cpu_limit_cores=limit_of.get("cpu_limit_cores"),
            memory_limit_bytes=None if mem_limit is None else int(mem_limit),
            warnings=tuple(warnings),
            confidence="low" if warnings else "ok",
            notes=tuple(notes),
            time_start=t_start.isoformat(),
            time_end=t_end.isoformat(),
            effective_samples=effective_samples,
            span_instants=span_instants,
        )
        return sp, minute, rc

    # ----------------------------------------------------------------------- per resource

    def _fit_resource(
        self,
        resource: str,
        v: np.ndarray,
        ok: np.ndarray,
        series: np.ndarray,
        n_series: int,
        linked: np.ndarray,
        weights: np.ndarray,
        tbin: np.ndarray,
        step: float,
        levels: list[float],
        window: tuple[np.ndarray, np.ndarray],
        window_s: float,
        tod_slot: np.ndarray | None = None,
    ) -> ResourceProfile:
        x = v[ok]
        n = x.size
        s = np.sort(x)
        mean = float(x.mean())
        # exactly 0 for constant samples (the mean of equal floats need not equal them)
        std = float(x.std(ddof=1)) if n > 1 and s[0] != s[-1] else 0.0
        qv = _sorted_quantile(s, np.asarray(levels))
        quantiles = {_quantile_name(q): float(val) for q, val in zip(levels, qv, strict=True)}
        quantiles["max"] = float(s[-1])
        p90 = quantiles["p90"]
        statistic = _DEMAND_STATISTIC.get(resource, _DEFAULT_STATISTIC)

        # per-container means (replica spread) and deviations from them
        ser = series[ok]
        csum = np.bincount(ser, weights=x, minlength=n_series)
        ccount = np.bincount(ser, minlength=n_series)
        seen = ccount > 0
        cmeans = csum[seen] / ccount[seen]
        spread: float | None = None
        if cmeans.size > 1 and cmeans.mean() > 0:
            spread = float(cmeans.std(ddof=1) / cmeans.mean())
        dev_full = np.where(ok, v - (csum / np.maximum(ccount, 1))[series], np.nan)

        burst = self._burst(v, ok, dev_full, linked, step, p90)

        slow_var, fast_var = self._slow_fast(v, dev_full, ok, series, window, csum, ccount,
                                             tod_slot)

        # quantile confidence intervals from order statistics, at the effective sample size
        ci = self._quantile_ci(s, v, ok, linked)

        edges, hweights = self._histogram(x, s, weights[ok])

        trace, trace_interval = self._trace(x, tbin[ok], step)
        replica_trace = self._replica_trace(x, tbin[ok], ser, n_series, len(trace))
        replica_corr = self._replica_correlation(v, ok, series, n_series, tbin)

        fit = (
            _fit_distribution(s, self.families, self.fit_max_samples, self.tail_tolerance)
            if n > 1
            else FitResult(reason="a single sample")
        )
        return ResourceProfile(
            resource=resource,
            count=int(n),
            mean=mean,
            std=std,
            p50=quantiles["p50"],
            p90=p90,
            p95=quantiles["p95"],
            p99=quantiles["p99"],
            max=quantiles["max"],
            demand=quantiles[statistic],
            demand_statistic=statistic,
            quantiles=quantiles,
            idle_baseline=float(_sorted_quantile(s, 0.05)),
            peak_to_mean=quantiles["p99"] / mean if mean > 0 else None,
            histogram_edges=edges,
            histogram_weights=hweights,
            fit=fit,
            burst=burst,
            replica_spread=spread,
            slow_var=slow_var,
            fast_var=fast_var,
            window_s=float(window_s),
            time_of_day_s=DAY_S if tod_slot is not None else 0.0,
            replica_correlation=replica_corr,
            quantile_ci=ci,
            ci_level=float(self.ci_level),
            trace=trace,
            trace_interval_s=trace_interval,
            replica_trace=replica_trace,
        )

    def _burst(
        self,
        v: np.ndarray,
        ok: np.ndarray,
        dev: np.ndarray,
        linked: np.ndarray,
        step: float,
        threshold: float,
    ) -> BurstProfile:
        n = v.size
        # lag-1 autocorrelation of deviations from each container's mean, pooled
        lag1: float | None = None
        if n > 2:
            pair = linked[1:] & ok[1:] & ok[:-1]
            if pair.sum() >= 3:
                num = float(np.sum(dev[1:][pair] * dev[:-1][pair]))
                den = float(np.nansum(dev * dev))
                if den > 0:
                    lag1 = float(np.clip(num / den, -1.0, 1.0))
        with np.errstate(invalid="ignore"):
            above = ok & (v >= threshold)
        if not above.any() or step <= 0:
            return BurstProfile(threshold=threshold, lag1_autocorrelation=lag1)
        lengths = _run_lengths(above, linked) * step
        return BurstProfile(
            threshold=threshold,
            n_runs=int(lengths.size),
            mean_run_s=float(lengths.mean()),
            p90_run_s=float(np.quantile(lengths, 0.9)),
            max_run_s=float(lengths.max()),
            lag1_autocorrelation=lag1,
        )

    def _slow_fast(
        self,
        v: np.ndarray,
        dev: np.ndarray,
        ok: np.ndarray,
        series: np.ndarray,
        window: tuple[np.ndarray, np.ndarray],
        csum: np.ndarray,
        ccount: np.ndarray,
        tod_slot: np.ndarray | None = None,
    ) -> tuple[float, float]:
        """Variance of the slow component and the rest of the variance.

        The slow component is the time-of-day profile (the mean deviation at each slot of the
        day, over every day and replica; only with ``tod_slot``, i.e. two whole days or more)
        plus a centred moving average of what the profile leaves. Index based: the window is
        ``window_s / interval`` samples (at least :data:`MIN_WINDOW_SAMPLES`), truncated at
        each container's first and last sample (a container shorter than the window gets its
        mean). Without the profile a spike that recurs at one time every day is averaged
        into the fast part, as if replicas hit it at different times.
        """
        lo, hi1 = window
        base = np.zeros(v.size)
        if tod_slot is not None:
            slots = int(tod_slot.max()) + 1
            tsum = np.bincount(tod_slot[ok], weights=dev[ok], minlength=slots)
            tcount = np.bincount(tod_slot[ok], minlength=slots)
            base = np.where(ok, (tsum / np.maximum(tcount, 1))[tod_slot], 0.0)
        d0 = np.where(ok, dev - base, 0.0)
        cs = np.concatenate(([0.0], np.cumsum(d0)))
        cc = np.concatenate(([0], np.cumsum(ok)))
        wsum = cs[hi1] - cs[lo]
        wcount = cc[hi1] - cc[lo]
        cmean = csum / np.maximum(ccount, 1)
        slow = (cmean[series] + base + wsum / np.maximum(wcount, 1))[ok]
        slow_var = float(slow.var())
        # the residual's variance plus twice its covariance with the slow part (a moving
        # average is not an orthogonal split), so that slow_var + fast_var is the variance
        total_var = float(v[ok].var())
        return slow_var, max(total_var - slow_var, 0.0)

    def _quantile_ci(
        self, s: np.ndarray, v: np.ndarray, ok: np.ndarray, linked: np.ndarray
    ) -> dict[str, tuple[float, float | None]]:
        """Order-statistic intervals at the effective sample size of each quantile.

        Correlated samples carry less information than independent ones. For the q quantile
        what matters is the indicator "sample above it": modelled as a two-state Markov chain
        whose runs above last L samples on average, the variance of its mean is (2 L - 1)
        times the independent one, so the interval uses n_eff = n / (2 L - 1) (L ~ 1 and
        n_eff ~ n for independent samples). The ranks found among n_eff are scaled back to n.
        """
        n = s.size
        alpha = 1 - self.ci_level
        names = list(_CI_NAMES)
        levels = np.array([_CI_NAMES[k] for k in names])
        n_eff = np.empty(levels.size, dtype=np.int64)
        for k, q in enumerate(levels):
            xq = float(_sorted_quantile(s, q))
            with np.errstate(invalid="ignore"):
                lengths = _run_lengths(ok & (v > xq), linked)
            mean_run = float(lengths.mean()) if lengths.size else 1.0
            n_eff[k] = max(math.floor(n / max(2 * mean_run - 1, 1.0)), 1)
        # 1-based ranks among n_eff effective samples, scaled back to ranks among the n
        lo_rank = _binom_ppf(alpha / 2, n_eff, levels)
        hi_rank = _binom_ppf(1 - alpha / 2, n_eff, levels) + 1
        lo_i = np.floor(lo_rank * n / n_eff).astype(np.int64)
        hi_i = np.ceil(hi_rank * n / n_eff).astype(np.int64)
        out: dict[str, tuple[float, float | None]] = {}
        for k, name in enumerate(names):
            lo = float(s[lo_i[k] - 1]) if lo_i[k] >= 1 else float(s[0])
            hi = float(s[hi_i[k] - 1]) if hi_i[k] <= n else None
            out[name] = (lo, hi)
        return out

    def _histogram(
        self, x: np.ndarray, s: np.ndarray, w: np.ndarray
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        vmax = float(s[-1])
        positive = s[s > 0]
        if vmax <= 0 or positive.size == 0:
            return (0.0, 0.0), (1.0,)
        lo = max(float(positive[0]), vmax * 1e-6)
        if lo >= vmax:
            return (0.0, vmax, vmax), (float(np.sum(w[x < vmax]) / w.sum()),
                                       float(np.sum(w[x >= vmax]) / w.sum()))
        nb = self.n_bins
        edges = np.concatenate(([0.0], np.geomspace(lo, vmax, nb)))
        edges[-1] = vmax
        log_ratio = math.log(vmax / lo) / (nb - 1)
        with np.errstate(divide="ignore"):
            idx = np.where(
                x < lo, 0, 1 + np.floor(np.log(np.maximum(x, lo) / lo) / log_ratio)
            ).astype(np.int64)
        idx = np.clip(idx, 0, nb - 1)
        hw = np.bincount(idx, weights=w, minlength=nb)
        hw = hw / hw.sum()
        return tuple(map(float, edges)), tuple(map(float, hw))

    def _trace(
        self, x: np.ndarray, tbin: np.ndarray, step: float
    ) -> tuple[tuple[float, ...], float]:
        if x.size == 0:
            return (), 0.0
        n_bins = int(tbin.max()) + 1
        factor = max(1, math.ceil(n_bins / self.trace_max_points))
        coarse = tbin // factor
        sums = np.bincount(coarse, weights=x)
        counts = np.bincount(coarse)
        keep = counts > 0
        return tuple(map(float, sums[keep] / counts[keep])), float(step * factor)

    def _replica_trace(
        self, x: np.ndarray, tbin: np.ndarray, ser: np.ndarray, n_series: int, n_trace: int
    ) -> tuple[float, ...]:
        """Each replica's own series at the trace's spacing, replicas one after another.

        Binned with the same factor as :meth:`_trace` (so both share ``trace_interval_s``),
        each replica's bins oldest first, gaps closed. Replicas with the most samples come
        first; whole replicas are added while the total stays within ``trace_max_points``
        (at least one replica is always kept). With one replica this equals ``trace``.

        Parameters
        ----------
        x, tbin, ser : numpy.ndarray
            The resource's sampled values (unit of the column), their bin on the service's
            sampling grid, and their replica code (0 .. n_series - 1), row-aligned.
        n_series : int
            Replicas of the service.
        n_trace : int
            Length of ``trace`` (0: nothing to build).
        """
        if x.size == 0 or n_trace == 0:
            return ()
        n_bins = int(tbin.max()) + 1
        factor = max(1, math.ceil(n_bins / self.trace_max_points))
        coarse = tbin // factor
        n_coarse = int(coarse.max()) + 1
        keys, inverse = np.unique(ser.astype(np.int64) * n_coarse + coarse, return_inverse=True)
        means = np.bincount(inverse, weights=x) / np.bincount(inverse)
        owner = keys // n_coarse  # replica of each bin; keys sorted: by replica, then time
        lengths = np.bincount(owner, minlength=n_series)
        order = np.argsort(-np.bincount(ser, minlength=n_series), kind="stable")
        budget = max(self.trace_max_points, int(lengths[order[0]]))
        chosen = order[np.cumsum(lengths[order]) <= budget]
        if chosen.size == 0:
            chosen = order[:1]
        keep = np.isin(owner, chosen)
        # replicas in the chosen order (most samples first), each oldest first
        rank = np.empty(n_series, dtype=np.int64)
        rank[chosen] = np.arange(chosen.size)
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(rank[owner[idx]], kind="stable")]
        return tuple(map(float, means[idx]))

    def _replica_correlation(
        self, v: np.ndarray, ok: np.ndarray, series: np.ndarray, n_series: int, tbin: np.ndarray
    ) -> float | None:
        if n_series < 2:
            return None
        n_bins = int(tbin.max()) + 1
        if n_bins * n_series > _MAX_ALIGN_CELLS:
            return None
        if n_series > _MAX_REPLICAS_CORRELATED:
            # churn: keep the replicas with the most samples (pairs grow as the square)
            counts = np.bincount(series[ok], minlength=n_series)
            keep = np.zeros(n_series, dtype=bool)
            keep[np.argsort(-counts, kind="stable")[:_MAX_REPLICAS_CORRELATED]] = True
            ok = ok & keep[series]
            series = np.cumsum(keep)[series] - 1
            n_series = _MAX_REPLICAS_CORRELATED
        mat = np.full((n_bins, n_series), np.nan)
        # duplicates within a bin (jitter): the last wins; they are rare and close in time
        mat[tbin[ok], series[ok]] = v[ok]
        r = _pairwise_corr(mat)
        iu = np.triu_indices(n_series, k=1)
        pairs = r[iu]
        pairs = pairs[~np.isnan(pairs)]
        return float(pairs.mean()) if pairs.size else None
