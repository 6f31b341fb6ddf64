"""The solver: machine, reserves and risk -> the largest safe count, mixes, stacks and fleets.

Public names are imported on first use (see ``capacity._lazy``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from ._compose import ComposeService, Stack, plan_stack, read_compose
    from ._machine import Machine, measured_reserve, parse_rate
    from ._mix import (
        FleetPlan,
        MixModel,
        MixPlan,
        MixResource,
        more_of,
        ratio,
        size_fleet,
        weighted,
    )
    from ._plan import (
        DEFAULT_METHOD,
        INCOMPRESSIBLE,
        METHODS,
        PLAN_SCHEMA_VERSION,
        PORT_CONFLICT,
        Plan,
        ResourcePlan,
        occupied_by_others,
        plan,
    )

#: public name -> the private module that defines it, imported on first access
_LAZY = {
    "ComposeService": "._compose",
    "Stack": "._compose",
    "plan_stack": "._compose",
    "read_compose": "._compose",
    "Machine": "._machine",
    "measured_reserve": "._machine",
    "parse_rate": "._machine",
    "FleetPlan": "._mix",
    "MixModel": "._mix",
    "MixPlan": "._mix",
    "MixResource": "._mix",
    "more_of": "._mix",
    "ratio": "._mix",
    "size_fleet": "._mix",
    "weighted": "._mix",
    "DEFAULT_METHOD": "._plan",
    "INCOMPRESSIBLE": "._plan",
    "METHODS": "._plan",
    "PLAN_SCHEMA_VERSION": "._plan",
    "PORT_CONFLICT": "._plan",
    "Plan": "._plan",
    "ResourcePlan": "._plan",
    "occupied_by_others": "._plan",
    "plan": "._plan",
}

__all__ = [
    "DEFAULT_METHOD",
    "INCOMPRESSIBLE",
    "METHODS",
    "PLAN_SCHEMA_VERSION",
    "PORT_CONFLICT",
    "ComposeService",
    "FleetPlan",
    "Machine",
    "MixModel",
    "MixPlan",
    "MixResource",
    "Plan",
    "ResourcePlan",
    "Stack",
    "measured_reserve",
    "more_of",
    "occupied_by_others",
    "parse_rate",
    "plan",
    "plan_stack",
    "ratio",
    "read_compose",
    "size_fleet",
    "weighted",
]

__getattr__, __dir__ = attach(__name__, _LAZY, globals())
