"""Parsers for a cgroup v2 (unified hierarchy) directory: one directory holds every controller.

The container's directory is ``/sys/fs/cgroup/docker/<id>`` with the cgroupfs driver and
``/sys/fs/cgroup/system.slice/docker-<id>.scope`` with the systemd driver (the parent changes
with ``--cgroup-parent``); :mod:`capacity.sources._cgroup` finds it from the ``0::/path`` line
of ``/proc/<pid>/cgroup``. File formats follow ``Documentation/admin-guide/cgroup-v2.rst``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cgroup_v1 import FileReader, key_value, read_file, read_texts
from ._types import ContainerCounters

__all__ = [
    "FILES",
    "REQUIRED",
    "fields_from_texts",
    "file_paths",
    "parse_io_stat",
    "read_counters",
    "read_fields",
    "read_max",
]


def read_max(path: str | Path, read: FileReader = read_file) -> int | None:
    """Read a limit file such as ``memory.max``: ``"max"`` (no limit) -> ``None``, else bytes."""
    return _max_value(read(str(path)))


def parse_io_stat(text: str) -> tuple[int, int, int, int]:
    """Sum ``io.stat`` over devices.

    Parameters
    ----------
    text : str
        Lines ``MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`` (one per device
        with I/O; the file is empty for a cgroup that did no I/O).

    Returns
    -------
    tuple of int
        ``(read_bytes, written_bytes, read_ops, write_ops)``. Discards (``dbytes``) are left
        out.
    """
    totals = {"rbytes": 0, "wbytes": 0, "rios": 0, "wios": 0}
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, sep, value = item.partition("=")
            if sep and key in totals:
                totals[key] += int(value)
    return totals["rbytes"], totals["wbytes"], totals["rios"], totals["wios"]


def read_counters(
    container_id: str, cgroup_dir: Path, read: FileReader = read_file
) -> ContainerCounters:
    """Read one container's counters from its cgroup v2 directory.

    Parameters
    ----------
    container_id : str
        Copied into the result.
    cgroup_dir : Path
        The container's directory in the unified hierarchy.

    Returns
    -------
    ContainerCounters
        Network fields are left ``None``: they come from ``/proc/<pid>/net/dev``.

    Raises
    ------
    FileNotFoundError
        ``cpu.stat``, ``memory.current`` or ``memory.stat`` is missing: the cgroup was
        removed (or the memory controller is not enabled for it).

    Notes
    -----
    - ``cpu.stat`` is in microseconds (v1 used nanoseconds). ``nr_periods``, ``nr_throttled``
      and ``throttled_usec`` appear only when the ``cpu`` controller is enabled for the
      cgroup; without it they are ``None``.
    - The working set subtracts ``inactive_file`` (v2 has no ``total_`` prefix: every
      ``memory.stat`` key is already hierarchical).
    - ``memory.peak`` exists since Linux 5.19; before, the peak is ``None``.
    - v2 has no ``failcnt``; the closest counterpart is the ``max`` key of ``memory.events``
      (times usage was about to exceed ``memory.max``), reported as
      ``memory_failcnt_total``.
    - Writeback is attributed to the cgroup that dirtied the pages on v2, so buffered writes
      show up in ``io.stat`` (late, when flushed).
    """
    return ContainerCounters(**read_fields(container_id, cgroup_dir, read))


#: The files of one container's directory in the order they are read, and whether each is
#: required (missing: the cgroup is gone, or its memory controller is not enabled)
FILES: tuple[tuple[str, bool], ...] = (
    ("cpu.stat", True),
    ("memory.current", True),
    ("memory.stat", True),
    ("memory.events", False),
    ("io.stat", False),
    ("memory.max", False),
    ("memory.peak", False),
    ("pids.current", False),
)
#: per slot of :data:`FILES`: required or not
REQUIRED = tuple(required for _, required in FILES)


def file_paths(cgroup_dir: Path | str) -> list[tuple[str, ...]]:
    """Per slot of :data:`FILES`, the path to read (a one-element tuple)."""
    return [(f"{cgroup_dir}/{name}",) for name, _ in FILES]


def read_fields(
    container_id: str, cgroup_dir: Path | str, read: FileReader = read_file
) -> dict[str, Any]:
    """:func:`read_counters` as the keyword arguments of :class:`ContainerCounters`.

    For callers that add fields (the network counters) before building the record once.
    """
    return fields_from_texts(container_id, read_texts(file_paths(cgroup_dir), REQUIRED, read))


def fields_from_texts(container_id: str, texts: Sequence[str | None]) -> dict[str, Any]:
    """Parse the texts of the :data:`FILES` slots (``None``: missing) into counter fields."""
    cpu_text, current_text, stat_text, events_text, io_text, max_text, peak_text, pids_text = (
        texts
    )
    if cpu_text is None or current_text is None or stat_text is None:
        raise FileNotFoundError(f"a required v2 file of container {container_id[:12]} is missing")
    cpu = "\n" + cpu_text
    mem_usage = int(current_text)
    stat = "\n" + stat_text
    usage_usec = key_value(cpu, "\nusage_usec ")
    if usage_usec is None:
        raise FileNotFoundError(f"cpu.stat of container {container_id[:12]} has no usage_usec")

    inactive_file = key_value(stat, "\ninactive_file ")
    events = "\n" + events_text if events_text is not None else None
    io = parse_io_stat(io_text) if io_text is not None else None
    throttled_usec = key_value(cpu, "\nthrottled_usec ")

    return {
        "container_id": container_id,
        "cpu_usage_seconds_total": usage_usec / 1e6,
        "memory_usage_bytes": mem_usage,
        "memory_working_set_bytes": max(0, mem_usage - (inactive_file or 0)),
        "cpu_periods_total": key_value(cpu, "\nnr_periods "),
        "cpu_throttled_periods_total": key_value(cpu, "\nnr_throttled "),
        "cpu_throttled_seconds_total": throttled_usec / 1e6 if throttled_usec is not None else None,
        "memory_rss_bytes": key_value(stat, "\nanon "),
        "memory_cache_bytes": key_value(stat, "\nfile "),
        "memory_inactive_file_bytes": inactive_file,
        "memory_limit_bytes": _max_value(max_text) if max_text is not None else None,
        "memory_peak_bytes": int(peak_text) if peak_text is not None else None,
        "memory_oom_kills_total": key_value(events, "\noom_kill ") if events is not None else None,
        "memory_failcnt_total": key_value(events, "\nmax ") if events is not None else None,
        "disk_read_bytes_total": io[0] if io else None,
        "disk_write_bytes_total": io[1] if io else None,
        "disk_read_ops_total": io[2] if io else None,
        "disk_write_ops_total": io[3] if io else None,
        "pids": int(pids_text) if pids_text is not None else None,
    }


def _max_value(text: str) -> int | None:
    text = text.strip()
    return None if text == "max" else int(text)
