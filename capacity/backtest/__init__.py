"""``capacity backtest``: plan on the earlier part of a history, count violations on the later.

:func:`backtest` takes a samples table (collected, read from the store or a file, or a public
trace loaded by :func:`load_gcd_vms` / :func:`load_alibaba_containers`).
"""

from ._backtest import BACKTEST_SCHEMA_VERSION, BacktestResult, MethodBacktest, backtest
from ._protocol import FleetShiftBacktest, ShiftBacktest, fleet_shift_backtest, shift_backtest
from ._traces import (
    GCD_STEP_S,
    load_alibaba_containers,
    load_alibaba_machines,
    load_azure_cpu,
    load_gcd_vms,
)

__all__ = [
    "BACKTEST_SCHEMA_VERSION",
    "GCD_STEP_S",
    "BacktestResult",
    "FleetShiftBacktest",
    "MethodBacktest",
    "ShiftBacktest",
    "backtest",
    "fleet_shift_backtest",
    "load_alibaba_containers",
    "load_alibaba_machines",
    "load_azure_cpu",
    "load_gcd_vms",
    "shift_backtest",
]
