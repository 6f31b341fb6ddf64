"""capacity: how many containers fit safely on a machine, from what they really use.

The pipeline, one function per stage::

    import capacity
    samples = capacity.load(demo=True)           # or capacity.collect("30s"), load("x.parquet")
    profiles = capacity.fit(samples)             # one replica's demand per service
    plans = capacity.plan_all(profiles, "cpus=8,memory=32GiB", running=samples)
    plans.what_if(machine="cpus=16,memory=64GiB")
    capacity.report(plans, samples=samples)      # reports/<host>-<UTC time>/report.html

Tables are pandas DataFrames with units in the column names; results are frozen dataclasses
with ``to_dict()``, ``to_frame()``, ``_repr_html_`` and ``plot(ax=None)``. Every error derives
from :class:`CapacityError`.

The names are imported on first use (PEP 562 ``__getattr__``), so ``capacity --version`` and
``import capacity`` do not pay for pandas, numpy and scipy until a name that needs them is
touched; ``from capacity import fit`` and ``capacity.fit`` work as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import (
    CapacityError,
    ContainerGone,
    DockerUnavailable,
    InsufficientData,
    InvalidFile,
    InvalidParameter,
    InvalidSamples,
    NoContainers,
    NotFittedError,
    ProfileVersionError,
    StoreError,
    StoreLocked,
)
from ._lazy import attach
from ._settings import Settings  # light: only the error types

if TYPE_CHECKING:
    from ._api import (
        Plans,
        collect,
        fit,
        load,
        plan,
        plan_all,
        plan_mix,
        report,
        running_counts,
        size,
        what_if,
    )
    from .model._fit import ProfileModel
    from .model._profile import Profiles, ResourceProfile, ServiceProfile
    from .solver._machine import Machine
    from .solver._mix import FleetPlan, MixPlan
    from .solver._plan import Plan, ResourcePlan

__version__ = "0.1.0"

#: public name -> the private module that defines it, imported on first access
_LAZY = {
    "Plans": "._api",
    "collect": "._api",
    "fit": "._api",
    "load": "._api",
    "plan": "._api",
    "plan_all": "._api",
    "plan_mix": "._api",
    "report": "._api",
    "running_counts": "._api",
    "size": "._api",
    "what_if": "._api",
    "ProfileModel": ".model._fit",
    "Profiles": ".model._profile",
    "ResourceProfile": ".model._profile",
    "ServiceProfile": ".model._profile",
    "Machine": ".solver._machine",
    "FleetPlan": ".solver._mix",
    "MixPlan": ".solver._mix",
    "Plan": ".solver._plan",
    "ResourcePlan": ".solver._plan",
}

__all__ = [
    "CapacityError",
    "ContainerGone",
    "DockerUnavailable",
    "FleetPlan",
    "InsufficientData",
    "InvalidFile",
    "InvalidParameter",
    "InvalidSamples",
    "Machine",
    "MixPlan",
    "NoContainers",
    "NotFittedError",
    "Plan",
    "Plans",
    "ProfileModel",
    "ProfileVersionError",
    "Profiles",
    "ResourcePlan",
    "ResourceProfile",
    "ServiceProfile",
    "Settings",
    "StoreError",
    "StoreLocked",
    "__version__",
    "collect",
    "fit",
    "load",
    "plan",
    "plan_all",
    "plan_mix",
    "report",
    "running_counts",
    "size",
    "what_if",
]


__getattr__, __dir__ = attach(__name__, _LAZY, globals())
