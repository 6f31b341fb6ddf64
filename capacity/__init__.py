"""capacity: how many containers fit safely on a machine, from what they really use."""

from ._errors import (
    CapacityError,
    ContainerGone,
    DockerUnavailable,
    InsufficientData,
    InvalidParameter,
    InvalidSamples,
    NoContainers,
    NotFittedError,
    ProfileVersionError,
    StoreError,
)

__version__ = "0.1.0"

__all__ = [
    "CapacityError",
    "ContainerGone",
    "DockerUnavailable",
    "InsufficientData",
    "InvalidParameter",
    "InvalidSamples",
    "NoContainers",
    "NotFittedError",
    "ProfileVersionError",
    "StoreError",
    "__version__",
]
