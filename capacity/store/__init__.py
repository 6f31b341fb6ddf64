"""The durable sample store and the counters -> rates function (see DESIGN.md, "store")."""

from ._rates import (
    COUNTER_TOTAL_COLUMNS,
    HOST_RATE_COLUMNS,
    SAMPLE_EXTRA_COLUMNS,
    counters_to_samples,
    empty_samples,
    host_to_rates,
)

__all__ = [
    "COUNTER_TOTAL_COLUMNS",
    "HOST_RATE_COLUMNS",
    "SAMPLE_EXTRA_COLUMNS",
    "counters_to_samples",
    "empty_samples",
    "host_to_rates",
]
