"""Column names of the tables that flow through the pipeline. Units are in the names.

The **counters table** (what a collector reads, what the store keeps) has one row per
container per round: ``time`` (UTC), ``monotonic_s``, ``container_id``, ``started_at`` (UTC;
with the id it keys a series, since a restart resets counters) and every field of
:class:`capacity.sources.ContainerCounters`.

The **samples table** (the rate table of DESIGN.md, what ``fit`` takes) has one row per
container per interval, at the interval's end: the columns of :data:`SAMPLE_COLUMNS`. A
samples *file* from another tool needs only ``time``, a key (``container_id``,
``container_name`` or ``service``) and one resource column; the loader fills in the rest
(:func:`capacity.store.validate_samples`, docs/input-files.md).
"""

from __future__ import annotations

__all__ = [
    "CPU",
    "DISK_READ",
    "DISK_USAGE",
    "DISK_WRITE",
    "KEY_COLUMNS",
    "MEMORY",
    "NET_RX",
    "NET_TX",
    "PLAUSIBLE_MAX",
    "PLAUSIBLE_TEXT",
    "RESOURCES",
    "SAMPLE_COLUMNS",
]

#: average cores used over the interval (1.0 = one logical CPU busy the whole interval)
CPU = "cpu_cores"
#: usage minus inactive file cache, clamped at 0, at the end of the interval
MEMORY = "memory_working_set_bytes"
NET_RX = "net_rx_bytes_per_second"
NET_TX = "net_tx_bytes_per_second"
DISK_READ = "disk_read_bytes_per_second"
DISK_WRITE = "disk_write_bytes_per_second"
#: writable layer (+ volumes where known); sampled slowly, NaN between readings
DISK_USAGE = "disk_usage_bytes"

#: every resource column a profile is fitted for, in report order
RESOURCES: tuple[str, ...] = (CPU, MEMORY, NET_RX, NET_TX, DISK_READ, DISK_WRITE, DISK_USAGE)

#: the largest reading of one container any machine can give, per resource column (a
#: reading above it is a unit mix-up or a corrupt cell, refused when samples are loaded or
#: fitted, exit 3): 1e5 cores, 2**60 bytes (1 EiB) of memory or disk, 1e15 bytes/s (8 Pbit/s)
#: of network or disk bandwidth. Generous by orders of magnitude on purpose: the largest
#: machines have ~1e3 cores and ~1e14 bytes of memory.
PLAUSIBLE_MAX: dict[str, float] = {
    CPU: 1e5,
    MEMORY: float(2**60),
    NET_RX: 1e15,
    NET_TX: 1e15,
    DISK_READ: 1e15,
    DISK_WRITE: 1e15,
    DISK_USAGE: float(2**60),
}

#: the bound of :data:`PLAUSIBLE_MAX` in words, for error messages
PLAUSIBLE_TEXT: dict[str, str] = {
    CPU: "1e5 cores", MEMORY: "2**60 bytes (1 EiB)", DISK_USAGE: "2**60 bytes (1 EiB)",
    **{c: "1e15 bytes/s" for c in (NET_RX, NET_TX, DISK_READ, DISK_WRITE)},
}

#: identifying columns of the samples table
KEY_COLUMNS: tuple[str, ...] = (
    "time",  # datetime64[ns, UTC], end of the interval
    "container_id",
    "container_name",
    "service",  # grouping key: Compose service label, else image, else name
    "image",
    "interval_s",  # length of the interval the rates are averaged over, seconds
)

SAMPLE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *RESOURCES)
