"""Network counters of a container, from ``/proc/<pid>/net/dev`` of one of its processes.

cgroups do not count network traffic; a network namespace does. Reading ``net/dev`` through a
process of the container shows that process's namespace, so every interface in it (``eth0``,
a second network's ``eth1``, ...) is summed; only the loopback ``lo`` is left out, since its
traffic never leaves the container.

Containers that share a namespace share these counters: ``--network container:X`` shows X's
interfaces, and ``--network host`` shows **the host's** interfaces (every container's and the
host's own traffic). :func:`net_namespace_inode` tells them apart: equal inodes mean one
namespace, to be counted once. For ``--network host`` the inode equals that of PID 1's
namespace (``/proc/1/ns/net``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ._cgroup_v1 import read_file

__all__ = ["NetDevCounters", "net_namespace_inode", "parse_net_dev", "read_net_dev"]

_NS_LINK = re.compile(r"^net:\[(\d+)\]$")
#: one interface line of ``net/dev``: name, rx bytes, rx packets, 6 more rx fields, tx bytes,
#: tx packets (and 6 more tx fields, not matched). The header lines have no ``name:`` digits.
_LINE = re.compile(r"^ *([^:\s|]+): *(\d+) +(\d+)(?: +\d+){6} +(\d+) +(\d+)", re.M)


class NetDevCounters(NamedTuple):
    """Cumulative counters summed over a namespace's interfaces (bytes and packets).

    ``interfaces`` names the interfaces that were summed, in file order.
    """

    rx_bytes_total: int
    tx_bytes_total: int
    rx_packets_total: int
    tx_packets_total: int
    interfaces: tuple[str, ...]


def parse_net_dev(text: str, *, exclude: tuple[str, ...] = ("lo",)) -> NetDevCounters:
    """Parse ``/proc/net/dev`` and sum every interface except those in ``exclude``.

    Parameters
    ----------
    text : str
        The file: two header lines, then ``name: rx_bytes rx_packets errs drop fifo frame
        compressed multicast tx_bytes tx_packets ...`` (16 numbers). Old kernels print no
        space after the colon (``eth0:1234``), which is handled.
    exclude : tuple of str
        Interface names left out of the sums (default: loopback only).

    Returns
    -------
    NetDevCounters
        Bytes and packets, as the kernel counts them at the interface: they include Ethernet,
        IP and TCP headers, so they exceed the application payload by a few percent.
    """
    rx_b = tx_b = rx_p = tx_p = 0
    names: list[str] = []
    for name, rx_bytes, rx_packets, tx_bytes, tx_packets in _LINE.findall(text):
        if name in exclude:
            continue
        rx_b += int(rx_bytes)
        rx_p += int(rx_packets)
        tx_b += int(tx_bytes)
        tx_p += int(tx_packets)
        names.append(name)
    return NetDevCounters(rx_b, tx_b, rx_p, tx_p, tuple(names))


def read_net_dev(
    pid: int, proc_root: Path = Path("/proc"), read: Callable[[str], str] = read_file
) -> NetDevCounters:
    """Read and sum ``<proc_root>/<pid>/net/dev``; see :func:`parse_net_dev`.

    Raises :class:`FileNotFoundError` when the process is gone.
    """
    return parse_net_dev(read(f"{proc_root}/{pid}/net/dev"))


def net_namespace_inode(pid: int | str, proc_root: Path = Path("/proc")) -> int:
    """The inode number of the network namespace of process ``pid``.

    Two processes are in one namespace exactly when these numbers are equal. The link
    ``/proc/<pid>/ns/net`` reads ``net:[4026532184]``; the number in brackets is the inode that
    ``os.stat`` reports for it. The link text is read first (a recorded fixture tree can hold
    such a link), and ``os.stat(...).st_ino`` is the fallback.

    Raises :class:`FileNotFoundError` when the process is gone, and :class:`PermissionError`
    when the caller may not inspect the process (reading another user's namespace needs
    root or ``CAP_SYS_PTRACE``).
    """
    link = f"{proc_root}/{pid}/ns/net"
    try:
        match = _NS_LINK.match(os.readlink(link))
    except OSError:
        match = None
    if match:
        return int(match.group(1))
    return os.stat(link).st_ino
