"""Fit per-service profiles from the samples table (scikit-learn style estimator)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

import numpy as np
import pandas as pd

from .._columns import CPU, RESOURCES
from .._errors import InvalidParameter, InvalidSamples, NotFittedError
from ._profile import Profiles, ResourceProfile, ServiceProfile

__all__ = ["ProfileModel"]

# Which statistic of one replica's distribution the skeleton sizes with, per resource.
_DEMAND_STATISTIC = {CPU: "p95"}
_DEFAULT_STATISTIC = "max"


def _validate(samples: pd.DataFrame) -> None:
    for column in ("time", "service"):
        if column not in samples.columns:
            raise InvalidSamples(
                f"samples have no {column!r} column; got columns {list(samples.columns)}: "
                "pass the samples table from 'capacity collect' or capacity.load()",
                column=column,
            )
    if samples.empty:
        raise InvalidSamples("samples are empty: collect for longer, or check the filters")
    for column in RESOURCES:
        if column not in samples.columns:
            continue
        values = samples[column].to_numpy(dtype=float, na_value=np.nan)
        bad = np.isinf(values) | (values < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidSamples(
                f"column {column!r} of service {samples['service'].iloc[i]!r} has "
                f"{values[i]!r} at {samples['time'].iloc[i]}: rates and gauges must be finite "
                "and >= 0; drop or fix those rows",
                column=column,
                service=str(samples["service"].iloc[i]),
                value=values[i],
            )


class ProfileModel:
    """Fit one replica's demand per service and resource.

    Parameters
    ----------
    group_by : str
        Column that names the service (default ``"service"``).
    min_samples : int
        Fewer samples than this for a service gives a warning in its profile.
    """

    def __init__(self, group_by: str = "service", min_samples: int = 10) -> None:
        self.group_by = group_by
        self.min_samples = min_samples

    def fit(self, samples: pd.DataFrame) -> Self:
        """Fit profiles from the samples table; sets ``profiles_``."""
        if self.min_samples < 1:
            raise InvalidParameter("min_samples", "ProfileModel", "an int >= 1", self.min_samples)
        _validate(samples)
        services: dict[str, ServiceProfile] = {}
        for service, group in samples.groupby(self.group_by, sort=True):
            resources: dict[str, ResourceProfile] = {}
            for column in RESOURCES:
                if column not in group.columns:
                    continue
                values = group[column].to_numpy(dtype=float, na_value=np.nan)
                values = values[~np.isnan(values)]
                if values.size == 0:
                    continue
                q = np.quantile(values, [0.5, 0.9, 0.95, 0.99])
                stats = {
                    "p50": float(q[0]),
                    "p90": float(q[1]),
                    "p95": float(q[2]),
                    "p99": float(q[3]),
                    "max": float(values.max()),
                }
                statistic = _DEMAND_STATISTIC.get(column, _DEFAULT_STATISTIC)
                resources[column] = ResourceProfile(
                    resource=column,
                    count=int(values.size),
                    mean=float(values.mean()),
                    std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
                    demand=stats[statistic],
                    demand_statistic=statistic,
                    **stats,
                )
            times = pd.to_datetime(group["time"], utc=True)
            span_s = float((times.max() - times.min()).total_seconds())
            interval_s = (
                float(group["interval_s"].median()) if "interval_s" in group.columns else 0.0
            )
            warnings: list[str] = []
            if len(group) < self.min_samples:
                warnings.append(
                    f"only {len(group)} samples (< {self.min_samples}): collect for longer"
                )
            services[str(service)] = ServiceProfile(
                service=str(service),
                replicas_seen=int(group["container_id"].nunique())
                if "container_id" in group.columns
                else 1,
                n_samples=len(group),
                span_s=span_s,
                interval_s=interval_s,
                resources=resources,
                warnings=tuple(warnings),
            )
        self.profiles_ = Profiles(
            services=services, source="samples", created_at=datetime.now(UTC).isoformat()
        )
        return self

    @property
    def profiles(self) -> Profiles:
        if not hasattr(self, "profiles_"):
            raise NotFittedError("This ProfileModel is not fitted yet: call fit(samples) first.")
        return self.profiles_
