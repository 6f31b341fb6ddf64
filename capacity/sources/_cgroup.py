"""The fast path: read each container's counters straight from cgroupfs and ``/proc``.

This is how cAdvisor reads containers: find the container's cgroup from
``/proc/<pid>/cgroup`` of its main process, read the controller files there (parsed by
:mod:`._cgroup_v1` or :mod:`._cgroup_v2`), and read the network counters from
``/proc/<pid>/net/dev`` (cgroups do not count network traffic). Going through the main
process's own cgroup file makes the lookup independent of the cgroup driver (``cgroupfs``:
``/docker/<id>``; ``systemd``: ``/system.slice/docker-<id>.scope``) and of ``--cgroup-parent``.

Which cgroup version serves a controller: on a v1 host every controller has its own
hierarchy (``/sys/fs/cgroup/memory``, ...); on a v2 host there is one (``/sys/fs/cgroup`` holds
``cgroup.controllers``); a *hybrid* host has v1 hierarchies plus an almost empty v2 one at
``/sys/fs/cgroup/unified``. v1 wins wherever the ``memory`` controller is mounted as v1.

The roots are parameters so tests can point them at recorded trees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from .._errors import ContainerGone
from . import _cgroup_v1, _cgroup_v2, _procnet
from ._types import ContainerCounters, ContainerInfo

__all__ = [
    "CgroupLocation",
    "CgroupReader",
    "HeldFiles",
    "cgroup_version",
    "cgroupfs_readable",
    "locate_cgroup",
    "parse_proc_cgroup",
]

# errno values that mean "the process or cgroup went away while we read it"
_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ESRCH, errno.ENODEV})


def _is_gone(exc: OSError) -> bool:
    return isinstance(exc, FileNotFoundError | ProcessLookupError) or exc.errno in _GONE_ERRNOS


def parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """Parse ``/proc/<pid>/cgroup``.

    Parameters
    ----------
    text : str
        Lines ``hierarchy-id:controller[,controller...]:/path`` (v1; named hierarchies such as
        ``name=systemd`` are kept under that name) and ``0::/path`` (the v2 hierarchy).

    Returns
    -------
    tuple
        ``(v1, v2)``: ``v1`` maps each controller to its path (``{"cpu": "/docker/<id>",
        "cpuacct": ...}``); ``v2`` is the path in the unified hierarchy, or ``None``.

    Examples
    --------
    >>> parse_proc_cgroup("4:memory:/docker/abc\\n1:cpu,cpuacct:/docker/abc\\n0::/\\n")
    ({'memory': '/docker/abc', 'cpu': '/docker/abc', 'cpuacct': '/docker/abc'}, '/')
    """
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
            continue
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    return v1, v2


def cgroup_version(cgroup_root: Path = Path("/sys/fs/cgroup")) -> Literal[1, 2] | None:
    """Which cgroup version serves containers under ``cgroup_root``.

    Returns ``2`` on a pure v2 host (``cgroup.controllers`` at the root), ``1`` on a v1 or
    hybrid host (a v1 ``memory`` hierarchy is mounted), ``None`` when neither is found (no
    cgroupfs: a remote engine, or a container without ``/sys/fs/cgroup``).
    """
    if (cgroup_root / "cgroup.controllers").is_file():
        return 2
    if _v1_mount(cgroup_root, "memory") is not None:
        return 1
    return None


def _v1_mount(cgroup_root: Path, controller: str, joined: str = "") -> Path | None:
    """The mount point of a v1 hierarchy: ``cpu,cpuacct`` co-mounts are tried by both names."""
    for name in (joined, controller):
        if name and (cgroup_root / name).is_dir():
            candidate = cgroup_root / name
            if not (candidate / "cgroup.controllers").exists():  # not a v2 mount
                return candidate
    return None


def _under(mount: Path, path: str) -> Path:
    return mount / path.lstrip("/")


@dataclass(frozen=True)
class CgroupLocation:
    """Where one process's cgroup lives.

    ``version`` is 1 or 2. For v1, ``v1_dirs`` maps each controller to the process's
    directory in that hierarchy; for v2, ``v2_dir`` is its directory in the unified one.
    """

    version: Literal[1, 2]
    v1_dirs: Mapping[str, Path] = field(default_factory=dict)
    v2_dir: Path | None = None

    @property
    def leaf(self) -> Path:
        """The directory that must exist while the cgroup does (v1: memory; v2: the dir)."""
        if self.version == 2 and self.v2_dir is not None:
            return self.v2_dir
        return self.v1_dirs["memory"]

    def paths(self) -> tuple[Path, ...]:
        """Every directory of this location (for messages and checks)."""
        return (self.v2_dir,) if self.version == 2 and self.v2_dir else tuple(self.v1_dirs.values())

    @cached_property
    def text(self) -> tuple[str | dict[str, str], str]:
        """``(v2 directory or v1 controller -> directory, leaf)`` as strings, made once: a
        reader joins a dozen file names to them per container per round."""
        if self.version == 2 and self.v2_dir is not None:
            return str(self.v2_dir), str(self.v2_dir)
        return {k: str(v) for k, v in self.v1_dirs.items()}, str(self.leaf)


def locate_cgroup(
    proc_cgroup_text: str, cgroup_root: Path = Path("/sys/fs/cgroup")
) -> CgroupLocation | None:
    """Resolve ``/proc/<pid>/cgroup`` text to directories under ``cgroup_root``.

    v1 wins when the v1 ``memory`` hierarchy is mounted and the process has a line for it;
    otherwise the ``0::/path`` line is resolved in the unified hierarchy (``cgroup_root`` on a
    v2 host, ``cgroup_root/unified`` on a hybrid one). ``None`` when neither resolves.

    Trap: the paths are relative to the *reader's* cgroup namespace. A collector running in a
    container with a private cgroup namespace sees other containers' paths as ``/../<id>``
    and cannot resolve them: run it in the host's cgroup namespace (``--cgroupns host``) or
    use the stats API reader.
    """
    v1_paths, v2_path = parse_proc_cgroup(proc_cgroup_text)
    if "memory" in v1_paths and _v1_mount(cgroup_root, "memory") is not None:
        # co-mounted hierarchies are named by their joined list ("cpu,cpuacct")
        joined: dict[str, str] = {}
        for line in proc_cgroup_text.splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and "," in parts[1]:
                joined.update(dict.fromkeys(parts[1].split(","), parts[1]))
        dirs: dict[str, Path] = {}
        for controller, path in v1_paths.items():
            if controller.startswith("name="):
                continue
            mount = _v1_mount(cgroup_root, controller, joined.get(controller, ""))
            if mount is not None:
                dirs[controller] = _under(mount, path)
        return CgroupLocation(version=1, v1_dirs=dirs)
    if v2_path is not None:
        for mount in (cgroup_root, cgroup_root / "unified"):
            if (mount / "cgroup.controllers").is_file():
                return CgroupLocation(version=2, v2_dir=_under(mount, v2_path))
    return None


def cgroupfs_readable(
    pid: int,
    *,
    proc_root: Path = Path("/proc"),
    cgroup_root: Path = Path("/sys/fs/cgroup"),
) -> bool:
    """Whether the fast path works for process ``pid``: its cgroup resolves and is readable.

    ``False`` on a remote ``DOCKER_HOST`` (the pid is not ours), without ``/sys/fs/cgroup``,
    in a private cgroup namespace, or without permission. Use
    :class:`~capacity.sources.StatsApiReader` then.
    """
    try:
        location = locate_cgroup((proc_root / str(pid) / "cgroup").read_text(), cgroup_root)
        if location is None:
            return False
        if location.version == 2 and location.v2_dir is not None:
            (location.v2_dir / "memory.current").read_text()
        else:
            (location.v1_dirs["memory"] / "memory.usage_in_bytes").read_text()
    except (OSError, KeyError, ValueError):
        return False
    return True


class HeldFiles:
    """The files of one container, opened once and re-read from offset 0 with ``os.pread``.

    cgroup and ``/proc`` files are seq_files: a read at offset 0 renders them anew, so a
    file descriptor held across rounds gives fresh values (tests/sources/test_held_files.py
    checks it on a busy container), and a round costs one ``pread`` per file instead of
    ``open``, ``read`` and ``close``: the open (path walk, permission check, allocation) was
    the largest part of the collector's CPU time.

    Parameters
    ----------
    budget : _FdBudget
        Shared by every container of one reader: past it, files are read the plain way
        (opened and closed each time), so a host with thousands of containers never runs
        the process out of file descriptors.

    Notes
    -----
    A removed cgroup's held files fail with ``ENODEV`` (the caller's "gone" case, like
    ``ENOENT`` on a fresh open). A file missing at the first read (an optional file this
    kernel lacks) is remembered and raises :class:`FileNotFoundError` without a system call.
    Trap: a held ``/proc/<pid>/net/dev`` keeps the network namespace it was opened in, so
    it keeps counting that namespace even if the pid is reused; the cgroup files (read
    first, removed with the container) decide whether the container is gone.
    """

    #: :meth:`leaf_check_due` says yes at least every this many calls
    LEAF_CHECK_EVERY = 10

    def __init__(self, budget: _FdBudget) -> None:
        self._budget = budget
        self._fds: dict[str, int] = {}
        self._missing: set[str] = set()
        self._opened = False  # a file was opened (or read unheld) since the last check
        self._unchecked = 0

    def leaf_check_due(self) -> bool:
        """Whether the reading just made needs the check that the cgroup still exists.

        A held descriptor of a removed cgroup file fails with ``ENODEV`` (checked on kernel
        6.18, v1: every controller file, required or optional), so a reading made through
        held descriptors only cannot silently miss a removal; one that opened a file can
        (an optional file opened after the removal reads as missing, i.e. ``None``). Yes
        after an open, and every :attr:`LEAF_CHECK_EVERY` calls as a backstop for a
        filesystem whose held files stay readable (recorded trees in tests). The check is a
        ``stat`` of the cgroup directory: a path walk through cgroupfs, costlier than the
        ``pread`` of most files.
        """
        self._unchecked += 1
        if self._opened or self._unchecked >= self.LEAF_CHECK_EVERY:
            self._opened = False
            self._unchecked = 0
            return True
        return False

    def read(self, path: str) -> str:
        fd = self._fds.get(path)
        if fd is None:
            self._opened = True
            if path in self._missing:
                raise FileNotFoundError(errno.ENOENT, "no such file (first read)", path)
            if not self._budget.take():
                return _cgroup_v1.read_file(path)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                self._budget.give(1)
                if isinstance(exc, FileNotFoundError):
                    self._missing.add(path)
                raise
            self._fds[path] = fd
        chunk = os.pread(fd, 65536, 0)
        if len(chunk) < 65536:
            return chunk.decode()
        chunks = [chunk]
        offset = len(chunk)
        while chunk := os.pread(fd, 65536, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode()

    def plan(self, paths: list[tuple[str, ...]]) -> list[int] | None:
        """Per slot of ``paths`` (as :meth:`CgroupReader._paths`), the held descriptor that a
        reading through :meth:`read` used, or -1 for a slot whose files are all missing.

        ``None`` when a slot was read without a held descriptor (past the budget): such a
        container keeps being read through :meth:`read`.
        """
        fds: list[int] = []
        for candidates in paths:
            for path in candidates:
                fd = self._fds.get(path)
                if fd is not None:
                    fds.append(fd)
                    break
                if path not in self._missing:
                    return None
            else:
                fds.append(-1)
        return fds

    def close(self) -> None:
        """Close every held file (errors ignored: the descriptor is released either way)."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._budget.give(len(self._fds))
        self._fds.clear()


class _FdBudget:
    """How many more files the readers of one process may hold open: a quarter of the soft
    ``RLIMIT_NOFILE`` (the rest stays for the store, the engine's socket, the user's code)."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            import resource

            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            limit = max(0, soft // 4) if soft != resource.RLIM_INFINITY else 16_384
        self.left = limit

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def give(self, n: int) -> None:
        self.left += n


class CgroupReader:
    """Read container counters from cgroupfs and ``/proc`` (the local fast path).

    Parameters
    ----------
    proc_root : Path
        Where ``/proc`` is (a recorded tree in tests).
    cgroup_root : Path
        Where the cgroup filesystems are mounted.

    Notes
    -----
    ``read`` raises :class:`capacity.ContainerGone` when the container's process or cgroup
    disappears before or while it is read, and when the pid now belongs to a process outside
    the container's cgroup (pid reuse after the container exited): the cgroup path must
    contain the container id, as docker names it with every driver and cgroup parent.
    It never returns zeros for a container that is gone.

    Examples
    --------
    >>> reader = CgroupReader()  # doctest: +SKIP
    >>> reader.read(container).cpu_usage_seconds_total  # doctest: +SKIP
    12.5
    """

    name = "cgroup"

    def __init__(
        self, proc_root: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")
    ) -> None:
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root
        self._host_netns: int | bool | None = False  # False: not looked up yet

    def host_net_namespace(self) -> int | None:
        """Inode of the host's network namespace, or None if it cannot be read.

        That of pid 1 (the host's init) where it is readable, else this process's own: right
        when the collector runs on the host, as it should to read cgroup files. (Some
        sandboxes deny reading pid 1's namespace even to root.)
        """
        if self._host_netns is False:
            self._host_netns = None
            for pid in ("1", "self"):
                try:
                    self._host_netns = _procnet.net_namespace_inode(pid, self.proc_root)
                    break
                except OSError:
                    continue
        return self._host_netns if isinstance(self._host_netns, int) else None

    def locate(self, container: ContainerInfo) -> CgroupLocation:
        """Resolve the container's cgroup directories (raises ContainerGone)."""
        cid = container.id
        try:
            text = (self.proc_root / str(container.pid) / "cgroup").read_text()
        except OSError as exc:
            if _is_gone(exc):
                raise ContainerGone(cid, f"process {container.pid} is gone") from exc
            raise
        location = locate_cgroup(text, self.cgroup_root)
        if location is None:
            raise ContainerGone(cid, f"process {container.pid} has no resolvable cgroup")
        if not any(cid in str(p) for p in location.paths()):
            raise ContainerGone(
                cid, f"pid {container.pid} now belongs to cgroup {location.leaf} (pid reused)"
            )
        return location

    def _file_reader(self, container: ContainerInfo) -> _cgroup_v1.FileReader:
        """How the files of ``container`` are read (path -> text): open, read, close.
        :class:`capacity._collect.CachedCgroupReader` keeps them open instead."""
        return _cgroup_v1.read_file

    def _net_namespace(self, container: ContainerInfo) -> int:
        return _procnet.net_namespace_inode(container.pid, self.proc_root)

    def _leaf_check_due(self, container: ContainerInfo) -> bool:
        """Whether :meth:`read` must check that the cgroup directory still exists (it does
        each time here: an optional file opened after the cgroup vanished reads as missing)."""
        return True

    def read(self, container: ContainerInfo) -> ContainerCounters:
        """Read every counter of one container.

        A container in the host's network namespace (``--network host``) gets ``None`` network
        counters: its ``/proc/<pid>/net/dev`` is the whole host's.

        Raises
        ------
        ContainerGone
            The container's process or cgroup vanished (or the pid was reused).
        PermissionError
            The files are not readable (run as root, or use the stats API reader).
        """
        cid = container.id
        location = self.locate(container)
        read = self._file_reader(container)
        leaf = location.text[1]
        try:
            paths = self._paths(container, location)
            texts = _cgroup_v1.read_texts(paths, _REQUIRED[location.version], read)
            namespace = self._net_namespace(container)
        except OSError as exc:
            if _is_gone(exc):
                raise ContainerGone(cid, f"cgroup {leaf} vanished: {exc}") from exc
            raise
        # optional files read as None when the cgroup vanishes mid-read: check it still exists
        if self._leaf_check_due(container) and not os.path.isdir(leaf):
            raise ContainerGone(cid, f"cgroup {leaf} vanished while being read")
        return self._counters(container, location.version, texts, namespace)

    def _paths(self, container: ContainerInfo, location: CgroupLocation) -> list[tuple[str, ...]]:
        """Per file slot, the paths to try: the version's :data:`FILES`, then ``net/dev``."""
        dirs = location.text[0]
        if isinstance(dirs, str):
            paths = _cgroup_v2.file_paths(dirs)
        else:
            paths = _cgroup_v1.file_paths(container.id, dirs)
        paths.append((f"{self.proc_root}/{container.pid}/net/dev",))
        return paths

    def _counters(
        self, container: ContainerInfo, version: int, texts: list[str | None], namespace: int
    ) -> ContainerCounters:
        """Parse the texts of :meth:`_paths` (the last one ``net/dev``) into the record."""
        net_text = texts.pop()
        if version == 2:
            fields = _cgroup_v2.fields_from_texts(container.id, texts)
        else:
            fields = _cgroup_v1.fields_from_texts(container.id, texts)
        fields["net_namespace"] = namespace
        if net_text is not None and container.network_mode != "host" and (
            namespace != self.host_net_namespace()
        ):
            # /proc/<pid>/net/dev of the host's namespace counts every NIC, docker0 and every
            # veth: the whole host's traffic, several times over. It is not this container's,
            # so there its network counters stay unknown (None), never charged to it.
            net = _procnet.parse_net_dev(net_text)
            fields["net_rx_bytes_total"] = net.rx_bytes_total
            fields["net_tx_bytes_total"] = net.tx_bytes_total
            fields["net_rx_packets_total"] = net.rx_packets_total
            fields["net_tx_packets_total"] = net.tx_packets_total
        return _record(fields)


#: every field of ContainerCounters with a default, and the default
_COUNTER_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(ContainerCounters)
    if f.default is not dataclasses.MISSING
}
#: the fields without a default (a reading always has them)
_COUNTER_REQUIRED = frozenset(
    f.name for f in dataclasses.fields(ContainerCounters) if f.default is dataclasses.MISSING
)
_COUNTER_FIELDS = frozenset(f.name for f in dataclasses.fields(ContainerCounters))
#: ContainerCounters is a plain frozen dataclass (no __slots__, no __post_init__): its
#: instance is its __dict__, which _record may fill directly
_PLAIN_RECORD = not hasattr(ContainerCounters, "__slots__") and not hasattr(
    ContainerCounters, "__post_init__"
)


def _record(fields: dict[str, Any]) -> ContainerCounters:
    """``ContainerCounters(**fields)``, built without the frozen dataclass's ``__init__``.

    That ``__init__`` sets 25 fields through ``object.__setattr__`` one by one: 5 us per
    container per round, a tenth of a reading once the files are held. The instance is the
    same (fields from the defaults where not given, equal to the one ``__init__`` makes:
    tests/sources/test_held_files.py checks it); where the class is not a plain dataclass
    any more, ``__init__`` is called.
    """
    if not (_PLAIN_RECORD and _COUNTER_REQUIRED <= fields.keys() <= _COUNTER_FIELDS):
        return ContainerCounters(**fields)
    record = object.__new__(ContainerCounters)
    attributes = record.__dict__
    attributes.update(_COUNTER_DEFAULTS)
    attributes.update(fields)
    return record


#: per cgroup version, which slots of :meth:`CgroupReader._paths` are required (``net/dev``
#: is: without it the process is gone)
_REQUIRED = {1: (*_cgroup_v1.REQUIRED, True), 2: (*_cgroup_v2.REQUIRED, True)}
