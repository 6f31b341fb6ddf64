"""The model stage: samples -> one replica's demand profile per service and resource.

Public names are imported on first use (see ``capacity._lazy``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
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

#: public name -> the private module that defines it, imported on first access
_LAZY = {
    "ProfileModel": "._fit",
    "PROFILES_SCHEMA_VERSION": "._profile",
    "QUANTILE_LEVELS": "._profile",
    "BurstProfile": "._profile",
    "Correlation": "._profile",
    "FitResult": "._profile",
    "Profiles": "._profile",
    "ResourceProfile": "._profile",
    "ServiceProfile": "._profile",
}

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

__getattr__, __dir__ = attach(__name__, _LAZY, globals())
