"""A sandbox "machine": a parent cgroup sized like the target, that containers run under.

``docker run --cgroup-parent=/capacity-sandbox-<id>`` puts a container's cgroup under the
sandbox, so the sandbox's CPU quota and memory limit bound the containers' *sum*, as the
target machine's CPUs and RAM would. One class serves both cgroup versions; only the file
names differ:

========================  ==========================================  =============================
what                      cgroup v1 (one hierarchy per controller)    cgroup v2 (unified)
========================  ==========================================  =============================
CPU limit                 ``cpu/<s>/cpu.cfs_quota_us`` and             ``<s>/cpu.max``
                          ``cpu.cfs_period_us``                        (``"quota period"``)
memory limit              ``memory/<s>/memory.limit_in_bytes``         ``<s>/memory.max``
CPU used                  ``cpuacct/<s>/cpuacct.usage`` (ns)           ``cpu.stat`` ``usage_usec``
throttling                ``cpu/<s>/cpu.stat`` ``nr_periods``,         ``cpu.stat`` (same keys,
                          ``nr_throttled``, ``throttled_time`` (ns)    ``throttled_usec``)
OOM kills                 ``memory.oom_control`` ``oom_kill``,         ``memory.events``
                          summed over the sandbox's subtree            ``oom_kill`` (hierarchical)
failed charges            ``memory.failcnt``                           ``memory.events`` ``max``
========================  ==========================================  =============================

Traps
-----
- On v1 the ``oom_kill`` count is kept in the cgroup of the *killed process* only, not in its
  ancestors (v2 propagates it up): the sandbox's own file says 0 while its children were
  killed. The subtree is summed, but a container whose cgroup is gone took its count with it;
  :mod:`capacity.verify._ramp` also reads each container's ``OOMKilled`` state.
- ``runc`` creates the sandbox's directory in every other hierarchy it joins (``cpuset``,
  ``devices``, ``freezer``, ``systemd``, ``unified``...); :meth:`Sandbox.destroy` removes the
  name from every hierarchy under the root, deepest first.
- A container being started is charged for ``runc init`` (a few MiB): near the limit, the last
  replica can fail to *start* (``cannot start a stopped process``), not only be OOM-killed.
- The throttled fraction is per CFS period (100 ms by default), a much finer scale than the
  collector's sampling interval: demand that looks flat at 1 s can still throttle.

The cgroup root is a parameter, so tests run the v2 path on a temporary directory tree.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, Self

from .._errors import CapacityError, InvalidParameter
from ..sources._cgroup import cgroup_version
from ..sources._cgroup_v1 import optional, read_flat_keyed, read_int

__all__ = [
    "SANDBOX_LABEL",
    "SANDBOX_PREFIX",
    "Sandbox",
    "SandboxCounters",
    "SandboxError",
    "host_limits",
    "leftover_sandboxes",
]

_log = logging.getLogger("capacity.verify")

SANDBOX_PREFIX = "capacity-sandbox-"
#: label every verify container carries: its value is the sandbox name (for sweeping)
SANDBOX_LABEL = "capacity.verify.sandbox"
#: CFS period written with the quota, microseconds (the kernel default)
DEFAULT_PERIOD_US = 100_000
#: smallest memory limit accepted: below it not even one busybox replica starts
MIN_MEMORY_BYTES = 16 * 1024 * 1024
#: share of the host's available memory a sandbox may take (the rest keeps the host alive)
HOST_MEMORY_SHARE = 0.8
#: v1 controllers the sandbox is created in (the others runc creates on demand)
_V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "blkio")
_V2_CONTROLLERS = ("cpu", "memory", "pids")


class SandboxError(CapacityError):
    """The sandbox cannot be made or removed: too large for this host, no cgroupfs, no permission.

    ``leftovers`` lists cgroup directories that could not be removed (empty otherwise).
    """

    def __init__(self, message: str, *, leftovers: tuple[Path, ...] = ()) -> None:
        super().__init__(message)
        self.leftovers = leftovers


@dataclass(frozen=True)
class SandboxCounters:
    """One reading of the sandbox's cgroup, cumulative since it was created.

    Attributes
    ----------
    cpu_usage_seconds_total : float
        CPU time of every process in the sandbox, seconds (summed over CPUs).
    cpu_periods_total, cpu_throttled_periods_total : int
        CFS periods in which the sandbox ran, and in which it hit its quota.
    cpu_throttled_seconds_total : float
        Time its tasks spent throttled, seconds (summed over CPUs).
    memory_usage_bytes : int
        What is charged now (includes page cache and kernel memory).
    memory_peak_bytes : int or None
        Largest charge so far (v1 ``max_usage_in_bytes``, v2 ``memory.peak``; None if absent).
    memory_failcnt_total : int
        Charges that hit the limit (reclaim was needed); not a failure by itself.
    memory_oom_kills_total : int
        Processes killed by the OOM killer in the sandbox's subtree (see the module traps).
    """

    cpu_usage_seconds_total: float
    cpu_periods_total: int
    cpu_throttled_periods_total: int
    cpu_throttled_seconds_total: float
    memory_usage_bytes: int
    memory_peak_bytes: int | None
    memory_failcnt_total: int
    memory_oom_kills_total: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def throttled_fraction_since(self, earlier: SandboxCounters) -> float:
        """Throttled periods / periods between ``earlier`` and this reading (0 when idle)."""
        periods = self.cpu_periods_total - earlier.cpu_periods_total
        throttled = self.cpu_throttled_periods_total - earlier.cpu_throttled_periods_total
        return throttled / periods if periods > 0 else 0.0


def host_limits() -> tuple[float, int]:
    """What this host can emulate: (logical CPUs this process may use, available memory bytes)."""
    import psutil

    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = float(psutil.cpu_count() or 1)
    return cpus, int(psutil.virtual_memory().available)


def leftover_sandboxes(cgroup_root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """Every ``capacity-sandbox-*`` directory under ``cgroup_root`` (v1 hierarchies and v2)."""
    found: list[Path] = list(cgroup_root.glob(SANDBOX_PREFIX + "*"))
    for mount in cgroup_root.iterdir() if cgroup_root.is_dir() else ():
        if mount.is_dir() and not mount.name.startswith(SANDBOX_PREFIX):
            found.extend(mount.glob(SANDBOX_PREFIX + "*"))
    return sorted(p for p in found if p.is_dir())


class Sandbox:
    """A parent cgroup with a CPU quota of ``cpus`` and a memory limit of ``memory_bytes``.

    Use it as a context manager: the cgroup is created on entry and removed on exit, also on
    an exception, Ctrl-C (SIGINT) or SIGTERM (turned into :class:`KeyboardInterrupt` while the
    sandbox exists, in the main thread). Containers must be gone before it can be removed:
    remove them first (nest their context inside), or pass ``sweep`` to remove stragglers.

    Parameters
    ----------
    cpus : float
        CPU quota in cores (1.5 = 150 ms of CPU per 100 ms period, spread over any CPUs).
    memory_bytes : int
        Memory limit of the whole sandbox, bytes (page cache and kernel memory count).
    cgroup_root : Path
        Where the cgroup filesystems are mounted (a temporary tree in tests).
    name : str, optional
        Directory name; default ``capacity-sandbox-<8 hex>``.
    host_cpus, host_memory_bytes : optional
        What this host can emulate; default :func:`host_limits`. A target above
        ``host_cpus`` CPUs or above ``HOST_MEMORY_SHARE`` of ``host_memory_bytes`` is refused.
    sweep : callable, optional
        Called with the sandbox name before the cgroup is removed (removes leftover
        containers carrying ``SANDBOX_LABEL=<name>``).
    period_us : int
        CFS period, microseconds.
    handle_signals : bool
        Turn SIGTERM into KeyboardInterrupt while the sandbox exists (default True).
    remove_timeout_s : float
        How long :meth:`destroy` retries a busy cgroup (processes still exiting).

    Raises
    ------
    SandboxError
        The target is larger than this host can emulate, or the cgroup cannot be written.

    Examples
    --------
    >>> with Sandbox(1.0, 256 * 2**20) as sandbox:  # doctest: +SKIP
    ...     client.containers.run(image, cgroup_parent=sandbox.cgroup_parent, detach=True)
    """

    def __init__(
        self,
        cpus: float,
        memory_bytes: int,
        *,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        name: str | None = None,
        host_cpus: float | None = None,
        host_memory_bytes: int | None = None,
        sweep: Callable[[str], None] | None = None,
        period_us: int = DEFAULT_PERIOD_US,
        handle_signals: bool = True,
        remove_timeout_s: float = 15.0,
    ) -> None:
        self.cpus = cpus
        self.memory_bytes = memory_bytes
        self.cgroup_root = Path(cgroup_root)
        self.name = name or SANDBOX_PREFIX + uuid.uuid4().hex[:8]
        self.host_cpus = host_cpus
        self.host_memory_bytes = host_memory_bytes
        self.sweep = sweep
        self.period_us = period_us
        self.handle_signals = handle_signals
        self.remove_timeout_s = remove_timeout_s
        self.version: Literal[1, 2] | None = None
        self.created: list[Path] = []
        self._old_handler: Any = None

    # -- checks ------------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse a target this host cannot emulate (raises :class:`SandboxError`)."""
        if not (isinstance(self.cpus, int | float) and self.cpus > 0):
            raise InvalidParameter("cpus", "Sandbox", "a number of cores > 0", self.cpus)
        if not (isinstance(self.memory_bytes, int) and self.memory_bytes >= MIN_MEMORY_BYTES):
            raise InvalidParameter(
                "memory_bytes", "Sandbox", f"an int >= {MIN_MEMORY_BYTES} (16 MiB)",
                self.memory_bytes,
            )
        host_cpus, host_mem = self.host_cpus, self.host_memory_bytes
        if host_cpus is None or host_mem is None:
            measured = host_limits()
            host_cpus = measured[0] if host_cpus is None else host_cpus
            host_mem = measured[1] if host_mem is None else host_mem
        if self.cpus > host_cpus:
            raise SandboxError(
                f"the target has {self.cpus:g} CPUs but this host has {host_cpus:g}: a sandbox "
                "cannot emulate more CPUs than exist (the quota could never be used). Verify "
                "on a larger host, or scale the target down (e.g. half the CPUs and half "
                "the memory) and scale the measured count up with care"
            )
        allowed = int(host_mem * HOST_MEMORY_SHARE)
        if self.memory_bytes > allowed:
            raise SandboxError(
                f"the target has {self.memory_bytes / 2**20:.0f} MiB of memory but this host "
                f"has {host_mem / 2**20:.0f} MiB available ({HOST_MEMORY_SHARE:.0%}: "
                f"{allowed / 2**20:.0f} MiB usable for a sandbox): the host would run out "
                "before the sandbox's limit. Verify on a larger host, or a smaller target"
            )

    # -- paths -------------------------------------------------------------------------------

    @property
    def cgroup_parent(self) -> str:
        """The value of ``docker run --cgroup-parent`` (cgroupfs driver)."""
        return "/" + self.name

    def _v1_dir(self, controller: str) -> Path:
        return self.cgroup_root / controller / self.name

    @property
    def v2_dir(self) -> Path:
        return self.cgroup_root / self.name

    # -- lifecycle ---------------------------------------------------------------------------

    def create(self) -> Self:
        """Check the target, then create the cgroup and write its limits."""
        self.check()
        version = cgroup_version(self.cgroup_root)
        if version is None:
            raise SandboxError(
                f"no cgroup filesystem under {self.cgroup_root}: verify needs the host's "
                "cgroupfs (run on the Docker host, as root)"
            )
        self.version = version
        quota = max(round(self.cpus * self.period_us), 1000)  # the kernel's minimum: 1 ms
        try:
            if version == 1:
                self._create_v1(quota)
            else:
                self._create_v2(quota)
        except PermissionError as exc:
            self.destroy()
            raise SandboxError(
                f"cannot create the sandbox cgroup ({exc}): run as root (or with write access "
                f"to {self.cgroup_root})"
            ) from exc
        except OSError as exc:
            self.destroy()
            raise SandboxError(f"cannot create the sandbox cgroup: {exc}") from exc
        return self

    def _mkdir(self, path: Path) -> None:
        path.mkdir()
        self.created.append(path)

    def _create_v1(self, quota: int) -> None:
        done: set[Path] = set()
        for controller in _V1_CONTROLLERS:
            mount = self.cgroup_root / controller
            if not mount.is_dir():
                continue
            real = mount.resolve()  # cpu and cpuacct may be one co-mounted hierarchy
            if real in done:
                continue
            done.add(real)
            self._mkdir(mount / self.name)
        cpu, memory = self._v1_dir("cpu"), self._v1_dir("memory")
        (cpu / "cpu.cfs_period_us").write_text(f"{self.period_us}\n")
        (cpu / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        (memory / "memory.limit_in_bytes").write_text(f"{self.memory_bytes}\n")
        memsw = memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # with swap accounting: no swapping out of the limit either
            with contextlib.suppress(OSError):
                memsw.write_text(f"{self.memory_bytes}\n")

    def _create_v2(self, quota: int) -> None:
        root = self.cgroup_root
        enable = " ".join(f"+{c}" for c in _V2_CONTROLLERS)
        subtree = root / "cgroup.subtree_control"
        have = subtree.read_text().split() if subtree.exists() else []
        if not all(c in have for c in _V2_CONTROLLERS):
            # the kernel adds "+name" entries to what is enabled; nothing else is touched
            subtree.write_text(enable + "\n")
        self._mkdir(self.v2_dir)
        d = self.v2_dir
        (d / "cpu.max").write_text(f"{quota} {self.period_us}\n")
        (d / "memory.max").write_text(f"{self.memory_bytes}\n")
        swap = d / "memory.swap.max"
        if swap.exists():
            with contextlib.suppress(OSError):
                swap.write_text("0\n")
        # children (the containers) get the controllers too; runc does it as well
        (d / "cgroup.subtree_control").write_text(enable + "\n")

    def destroy(self) -> list[Path]:
        """Remove the sandbox from every hierarchy under the root; return what is left.

        Retries busy directories (processes still exiting) for ``remove_timeout_s``.
        Never raises for a missing directory; the caller decides what a leftover means.
        """
        if self.sweep is not None:
            with contextlib.suppress(Exception):  # best effort: the engine may be gone
                self.sweep(self.name)
        deadline = time.monotonic() + self.remove_timeout_s
        while True:
            left = [p for p in self._all_dirs() if not _remove_tree(p)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.created = []
        return left

    def _all_dirs(self) -> list[Path]:
        return [p for p in leftover_sandboxes(self.cgroup_root) if p.name == self.name]

    def exists(self) -> bool:
        return bool(self._all_dirs())

    def __enter__(self) -> Self:
        self.create()
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            left = self.destroy()
        finally:
            if self._old_handler is not None:
                signal.signal(signal.SIGTERM, self._old_handler)
                self._old_handler = None
        if left and exc_type is not None:
            # do not hide the original error, but never leave cgroups behind silently
            _log.warning("sandbox cgroups left behind (still busy): %s",
                         ", ".join(map(str, left)))
        if left and exc_type is None:
            raise SandboxError(
                f"sandbox cgroups could not be removed (still busy after "
                f"{self.remove_timeout_s:g} s): {', '.join(map(str, left))}; remove their "
                "containers, then rmdir them",
                leftovers=tuple(left),
            )

    # -- reading -----------------------------------------------------------------------------

    def read(self) -> SandboxCounters:
        """Read the sandbox's cumulative counters (see :class:`SandboxCounters`)."""
        if self.version == 2:
            return self._read_v2()
        if self.version == 1:
            return self._read_v1()
        raise SandboxError("the sandbox is not created: use it as a context manager")

    def _read_v1(self) -> SandboxCounters:
        cpu, memory = self._v1_dir("cpu"), self._v1_dir("memory")
        cpuacct = self._v1_dir("cpuacct")
        if not cpuacct.is_dir():
            cpuacct = cpu
        stat = read_flat_keyed(cpu / "cpu.stat")
        oom_kills = 0
        for d in _walk(memory):
            try:
                oom_kills += read_flat_keyed(d / "memory.oom_control").get("oom_kill", 0)
            except FileNotFoundError:  # a container's cgroup removed while we walked
                continue
        return SandboxCounters(
            cpu_usage_seconds_total=read_int(cpuacct / "cpuacct.usage") / 1e9,
            cpu_periods_total=stat.get("nr_periods", 0),
            cpu_throttled_periods_total=stat.get("nr_throttled", 0),
            cpu_throttled_seconds_total=stat.get("throttled_time", 0) / 1e9,
            memory_usage_bytes=read_int(memory / "memory.usage_in_bytes"),
            memory_peak_bytes=optional(lambda: read_int(memory / "memory.max_usage_in_bytes")),
            memory_failcnt_total=optional(lambda: read_int(memory / "memory.failcnt")) or 0,
            memory_oom_kills_total=oom_kills,
        )

    def _read_v2(self) -> SandboxCounters:
        d = self.v2_dir
        stat = read_flat_keyed(d / "cpu.stat")
        events = optional(lambda: read_flat_keyed(d / "memory.events")) or {}
        return SandboxCounters(
            cpu_usage_seconds_total=stat.get("usage_usec", 0) / 1e6,
            cpu_periods_total=stat.get("nr_periods", 0),
            cpu_throttled_periods_total=stat.get("nr_throttled", 0),
            cpu_throttled_seconds_total=stat.get("throttled_usec", 0) / 1e6,
            memory_usage_bytes=read_int(d / "memory.current"),
            memory_peak_bytes=optional(lambda: read_int(d / "memory.peak")),
            memory_failcnt_total=events.get("max", 0),
            # memory.events is hierarchical on v2: the sandbox's own file counts its children
            memory_oom_kills_total=events.get("oom_kill", 0),
        )

    def __repr__(self) -> str:
        return (f"Sandbox(cpus={self.cpus:g}, memory_bytes={self.memory_bytes}, "
                f"name={self.name!r}, version={self.version})")


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _walk(top: Path) -> Iterator[Path]:
    """``top`` and every directory below it (a vanished one is skipped)."""
    yield top
    try:
        children = [p for p in top.iterdir() if p.is_dir()]
    except OSError:
        return
    for child in children:
        yield from _walk(child)


def _remove_tree(top: Path) -> bool:
    """rmdir ``top`` and its sub-cgroups, deepest first; True when ``top`` is gone.

    On cgroupfs a directory with only control files is removable (``rmdir`` ignores them);
    a busy one gives EBUSY. A plain directory standing in for cgroupfs gives ENOTEMPTY: its
    regular files were written by :class:`Sandbox` (tests), and are unlinked.
    """
    if not top.exists():
        return True
    for d in sorted(_walk(top), key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY:
                continue
            for f in d.iterdir():
                if f.is_file():
                    with contextlib.suppress(OSError):
                        f.unlink()
            with contextlib.suppress(OSError):
                d.rmdir()
    return not top.exists()
