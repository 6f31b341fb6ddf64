"""Parsers for a cgroup v2 (unified hierarchy) directory: one directory holds every controller.

The container's directory is ``/sys/fs/cgroup/docker/<id>`` with the cgroupfs driver and
``/sys/fs/cgroup/system.slice/docker-<id>.scope`` with the systemd driver (the parent changes
with ``--cgroup-parent``); :mod:`capacity.sources._cgroup` finds it from the ``0::/path`` line
of ``/proc/<pid>/cgroup``. File formats follow ``Documentation/admin-guide/cgroup-v2.rst``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ._cgroup_v1 import FileReader, optional, read_file, read_flat_keyed, read_int
from ._types import ContainerCounters

__all__ = ["parse_io_stat", "read_counters", "read_max"]


def read_max(path: str | Path, read: FileReader = read_file) -> int | None:
    """Read a limit file such as ``memory.max``: ``"max"`` (no limit) -> ``None``, else bytes."""
    text = read(str(path)).strip()
    return None if text == "max" else int(text)


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
    cpu = read_flat_keyed(f"{cgroup_dir}/cpu.stat", read)
    mem_usage = read_int(f"{cgroup_dir}/memory.current", read)
    stat = read_flat_keyed(f"{cgroup_dir}/memory.stat", read)
    if "usage_usec" not in cpu:
        raise FileNotFoundError(f"{cgroup_dir / 'cpu.stat'} has no usage_usec")

    inactive_file = stat.get("inactive_file")
    events = optional(lambda: read_flat_keyed(f"{cgroup_dir}/memory.events", read))
    io_text = optional(partial(read, f"{cgroup_dir}/io.stat"))
    io = parse_io_stat(io_text) if io_text is not None else None
    throttled_usec = cpu.get("throttled_usec")

    return ContainerCounters(
        container_id=container_id,
        cpu_usage_seconds_total=cpu["usage_usec"] / 1e6,
        memory_usage_bytes=mem_usage,
        memory_working_set_bytes=max(0, mem_usage - (inactive_file or 0)),
        cpu_periods_total=cpu.get("nr_periods"),
        cpu_throttled_periods_total=cpu.get("nr_throttled"),
        cpu_throttled_seconds_total=throttled_usec / 1e6 if throttled_usec is not None else None,
        memory_rss_bytes=stat.get("anon"),
        memory_cache_bytes=stat.get("file"),
        memory_inactive_file_bytes=inactive_file,
        memory_limit_bytes=optional(lambda: read_max(f"{cgroup_dir}/memory.max", read)),
        memory_peak_bytes=optional(lambda: read_int(f"{cgroup_dir}/memory.peak", read)),
        memory_oom_kills_total=events.get("oom_kill") if events is not None else None,
        memory_failcnt_total=events.get("max") if events is not None else None,
        disk_read_bytes_total=io[0] if io else None,
        disk_write_bytes_total=io[1] if io else None,
        disk_read_ops_total=io[2] if io else None,
        disk_write_ops_total=io[3] if io else None,
        pids=optional(lambda: read_int(f"{cgroup_dir}/pids.current", read)),
    )
