"""The model stage: samples -> one replica's demand profile per service and resource."""

from ._fit import ProfileModel
from ._profile import (
    PROFILES_SCHEMA_VERSION,
    QUANTILE_LEVELS,
    BurstProfile,
    Correlation,
    FitResult,
    Profiles,
    ResourceProfile,
    ServiceProfile,
)

__all__ = [
    "PROFILES_SCHEMA_VERSION",
    "QUANTILE_LEVELS",
    "BurstProfile",
    "Correlation",
    "FitResult",
    "ProfileModel",
    "Profiles",
    "ResourceProfile",
    "ServiceProfile",
]
