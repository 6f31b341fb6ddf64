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
"""

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
from .model._fit import ProfileModel
from .model._profile import Profiles, ResourceProfile, ServiceProfile
from .solver._machine import Machine
from .solver._mix import FleetPlan, MixPlan
from .solver._plan import Plan, ResourcePlan

__version__ = "0.1.0"

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
