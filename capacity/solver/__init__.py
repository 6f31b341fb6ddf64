"""The solver: machine, reserves and risk -> the largest safe count, mixes, stacks and fleets."""

from ._compose import ComposeService, Stack, plan_stack, read_compose
from ._machine import Machine, measured_reserve, parse_rate
from ._mix import FleetPlan, MixModel, MixPlan, MixResource, more_of, ratio, size_fleet, weighted
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
