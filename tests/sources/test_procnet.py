"""/proc/<pid>/net/dev parsing and network namespace identity, on fixtures and on this host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from capacity.sources._procnet import net_namespace_inode, parse_net_dev, read_net_dev

PROC = Path(__file__).parent.parent / "data" / "cgroup_v2_cgroupfs" / "proc"

OLD_KERNEL_FORMAT = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|"
    "bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo:12 1 0 0 0 0 0 0 12 1 0 0 0 0 0 0\n"
    "  eth0:1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
    "  eth1:  5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n"
)


def test_sums_every_interface_but_lo():
    c = parse_net_dev(OLD_KERNEL_FORMAT)
    assert (c.rx_bytes_total, c.tx_bytes_total) == (1005, 2007)
    assert (c.rx_packets_total, c.tx_packets_total) == (11, 21)
    assert c.interfaces == ("eth0", "eth1")


def test_exclude_is_configurable():
    c = parse_net_dev(OLD_KERNEL_FORMAT, exclude=())
    assert c.rx_bytes_total == 1017
    assert c.interfaces == ("lo", "eth0", "eth1")


def test_fixture_tree():
    c = read_net_dev(4242, PROC)
    assert c.interfaces == ("eth0", "eth1")
    assert c.rx_bytes_total == 123456789 + 1000
    assert net_namespace_inode(4242, PROC) == 4026532512


def test_gone_process_raises_file_not_found():
    with pytest.raises(FileNotFoundError):
        read_net_dev(99999, PROC)
    with pytest.raises(FileNotFoundError):
        net_namespace_inode(99999, PROC)


def test_live_namespace_inode_matches_stat():
    pid = os.getpid()
    assert net_namespace_inode(pid) == os.stat(f"/proc/{pid}/ns/net").st_ino
    own = read_net_dev(pid)
    assert "lo" not in own.interfaces
