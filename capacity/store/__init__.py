"""The durable sample store and the counters -> rates function (see DESIGN.md, "store")."""

from ._files import (
    outlying_times,
    read_samples,
    read_table,
    validate_samples,
    write_samples,
    write_table,
)
from ._rates import (
    COUNTER_TOTAL_COLUMNS,
    HOST_RATE_COLUMNS,
    MIN_INTERVAL_S,
    SAMPLE_EXTRA_COLUMNS,
    counters_to_samples,
    empty_samples,
    host_to_rates,
    service_key,
)
from ._sqlite import SCHEMA_VERSION, Store, default_store_path

__all__ = [
    "COUNTER_TOTAL_COLUMNS",
    "HOST_RATE_COLUMNS",
    "MIN_INTERVAL_S",
    "SAMPLE_EXTRA_COLUMNS",
    "SCHEMA_VERSION",
    "Store",
    "counters_to_samples",
    "default_store_path",
    "empty_samples",
    "host_to_rates",
    "outlying_times",
    "read_samples",
    "read_table",
    "service_key",
    "validate_samples",
    "write_samples",
    "write_table",
]
