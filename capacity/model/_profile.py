"""Profiles: one replica's demand per service and resource, in a versioned JSON form."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ProfileVersionError

__all__ = ["PROFILES_SCHEMA_VERSION", "Profiles", "ResourceProfile", "ServiceProfile"]

PROFILES_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ResourceProfile:
    """One replica's demand for one resource, in the resource column's unit.

    ``demand`` is the per-replica figure the solver sizes with (p95 for CPU, the maximum for
    memory and the rest in the walking skeleton); the other fields describe the distribution.
    """

    resource: str
    count: int
    mean: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    demand: float
    demand_statistic: str


@dataclass(frozen=True)
class ServiceProfile:
    """One replica of one service: per-resource profiles, pooled over its replicas."""

    service: str
    replicas_seen: int
    n_samples: int
    span_s: float
    interval_s: float
    resources: Mapping[str, ResourceProfile]
    cpu_limit_cores: float | None = None
    memory_limit_bytes: int | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["resources"] = {k: asdict(v) for k, v in self.resources.items()}
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceProfile:
        d = dict(d)
        d["resources"] = {k: ResourceProfile(**v) for k, v in d["resources"].items()}
        d["warnings"] = tuple(d.get("warnings", ()))
        return cls(**d)


@dataclass(frozen=True)
class Profiles:
    """All service profiles of one fit, with where they came from."""

    services: Mapping[str, ServiceProfile]
    source: str = ""
    created_at: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, service: str) -> ServiceProfile:
        return self.services[service]

    def __len__(self) -> int:
        return len(self.services)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PROFILES_SCHEMA_VERSION,
            "kind": "capacity.profiles",
            "source": self.source,
            "created_at": self.created_at,
            "meta": dict(self.meta),
            "services": {k: v.to_dict() for k, v in self.services.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profiles:
        version = d.get("schema_version")
        if d.get("kind") != "capacity.profiles" or version != PROFILES_SCHEMA_VERSION:
            raise ProfileVersionError(
                f"profiles schema version {version!r} (kind {d.get('kind')!r}) is not the "
                f"version {PROFILES_SCHEMA_VERSION} this release reads: refit with "
                "'capacity fit', or use the capacity release that wrote the file"
            )
        return cls(
            services={k: ServiceProfile.from_dict(v) for k, v in d["services"].items()},
            source=d.get("source", ""),
            created_at=d.get("created_at", ""),
            meta=d.get("meta", {}),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, default=_json_default, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Profiles:
        p = Path(path_or_text) if not str(path_or_text).lstrip().startswith("{") else None
        text = p.read_text() if p is not None else str(path_or_text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileVersionError(
                f"{p or 'profiles text'} is not a profiles JSON file ({exc}): "
                "write one with 'capacity fit --out profiles.json'"
            ) from exc
        return cls.from_dict(data)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
