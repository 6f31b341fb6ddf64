"""The machine a plan is for: its capacity per resource, and what is reserved on it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from .._columns import CPU, MEMORY
from .._errors import InvalidParameter
from .._units import parse_bytes

__all__ = ["Machine"]

_SPEC_KEYS = {
    "cpus": CPU,
    "cpu": CPU,
    "memory": MEMORY,
    "mem": MEMORY,
}


@dataclass(frozen=True)
class Machine:
    """Capacity per resource column, in that column's unit (cores, bytes, bytes per second).

    A resource missing from ``capacity`` is unknown: the plan names it instead of guessing.
    ``reserve`` holds what is kept back per resource (OS and engine baseline, headroom).
    """

    name: str
    capacity: Mapping[str, float]
    reserve: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def local(cls) -> Machine:
        """This host, from psutil: logical CPUs and total memory."""
        return cls(
            name="local",
            capacity={
                CPU: float(psutil.cpu_count(logical=True) or 1),
                MEMORY: float(psutil.virtual_memory().total),
            },
        )

    @classmethod
    def from_spec(cls, spec: str) -> Machine:
        """Parse ``"cpus=8,memory=32GiB"``; unknown keys or units raise InvalidParameter."""
        capacity: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            if not sep or key not in _SPEC_KEYS:
                raise InvalidParameter(
                    "machine",
                    "plan",
                    f"a spec like cpus=8,memory=32GiB with keys {sorted(set(_SPEC_KEYS))}",
                    spec,
                )
            column = _SPEC_KEYS[key]
            if column == CPU:
                if not re.fullmatch(r"\s*[0-9]*\.?[0-9]+\s*", value):
                    raise InvalidParameter("cpus", "machine spec", "a number of cores", value)
                capacity[column] = float(value)
            else:
                capacity[column] = parse_bytes(value, name=key)
        if not capacity:
            raise InvalidParameter("machine", "plan", "a non-empty spec like cpus=8", spec)
        return cls(name=spec, capacity=capacity)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "capacity": dict(self.capacity), "reserve": dict(self.reserve)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Machine:
        return cls(name=d["name"], capacity=dict(d["capacity"]), reserve=dict(d.get("reserve", {})))
