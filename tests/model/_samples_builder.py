"""Build samples tables from plain arrays for the model tests (imported by test modules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def samples_table(
    series: Mapping[str, Mapping[str, Sequence[float] | np.ndarray]],
    *,
    service_of: Mapping[str, str] | None = None,
    interval_s: float = 5.0,
    start: pd.Timestamp = T0,
) -> pd.DataFrame:
    """A samples table: ``series[container_id][resource column] -> values``, one row per
    value at ``start + i * interval_s``; service ``service_of[cid]`` (default ``"svc"``)."""
    frames = []
    for cid, columns in series.items():
        n = len(next(iter(columns.values())))
        frame = pd.DataFrame(
            {
                "time": start + pd.to_timedelta(np.arange(n) * interval_s, unit="s"),
                "container_id": cid,
                "container_name": cid,
                "service": (service_of or {}).get(cid, "svc"),
                "image": "busybox",
                "interval_s": interval_s,
            }
        )
        for column, values in columns.items():
            frame[column] = np.asarray(values, dtype=float)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
