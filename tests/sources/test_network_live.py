"""Network counters of real containers: bytes served over a private bridge, shared namespaces."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from source_live_helpers import MiB, delta, info_of

from capacity.sources._cgroup import CgroupReader, cgroup_version
from capacity.sources._procnet import net_namespace_inode

#: counters at the interface include TCP/IP and HTTP headers, ARP and ACKs: within this
NET_TOLERANCE = 0.05
#: size of the served file, bytes, and how many times the client fetches it
FILE_BYTES = 1 * MiB
FETCHES = 20
#: bound on the wait for the server to answer (under a second when the host is quiet)
SERVER_READY_TIMEOUT_S = 60.0

pytestmark = pytest.mark.skipif(
    cgroup_version() is None, reason="needs /proc and /sys/fs/cgroup of the engine's host"
)


@pytest.fixture
def bridge_network(docker_client: Any) -> Iterator[Any]:
    """A user-defined bridge, labelled, removed after the test."""
    network = docker_client.networks.create(
        f"capacity-test-{uuid.uuid4().hex[:8]}", driver="bridge", labels={"capacity.test": "1"}
    )
    try:
        yield network
    finally:
        network.reload()
        for c in network.containers:
            network.disconnect(c, force=True)
        network.remove()


@pytest.mark.docker
def test_http_transfer_between_two_containers(
    docker_client: Any, run_container: Any, bridge_network: Any
):
    server = run_container(
        "sh",
        "-c",
        f"mkdir -p /www && dd if=/dev/zero of=/www/f bs={FILE_BYTES} count=1 2>/dev/null"
        " && exec httpd -f -p 8080 -h /www",
        network=bridge_network.name,
        name=f"capacity-srv-{uuid.uuid4().hex[:8]}",
    )
    client = run_container("sleep", "600", network=bridge_network.name)
    reader = CgroupReader()
    server_info, client_info = info_of(docker_client, server), info_of(docker_client, client)
    # wait until the server answers (it creates its file first): bounded in time, and a
    # server that never answers fails here, by name, not as a transfer of 0 bytes below
    probe = f"wget -q -O /dev/null http://{server.name}:8080/f"
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while client.exec_run(["sh", "-c", probe]).exit_code != 0:
        assert time.monotonic() < deadline, f"{server.name} did not answer within " \
            f"{SERVER_READY_TIMEOUT_S:g} s: {server.logs()!r}"
        time.sleep(0.1)
    s0, c0 = reader.read(server_info), reader.read(client_info)
    loop = f"i=0; while [ $i -lt {FETCHES} ]; do {probe} || exit 1; i=$((i+1)); done"
    result = client.exec_run(["sh", "-c", loop])
    assert result.exit_code == 0, result.output
    s1, c1 = reader.read(server_info), reader.read(client_info)

    sent = FETCHES * FILE_BYTES
    assert delta(s1.net_tx_bytes_total, s0.net_tx_bytes_total) == pytest.approx(
        sent, rel=NET_TOLERANCE
    )
    assert delta(c1.net_rx_bytes_total, c0.net_rx_bytes_total) == pytest.approx(
        sent, rel=NET_TOLERANCE
    )
    # the other direction carries only requests and ACKs
    assert delta(c1.net_tx_bytes_total, c0.net_tx_bytes_total) < NET_TOLERANCE * sent
    assert s0.net_namespace != c0.net_namespace


@pytest.mark.docker
def test_shared_namespaces_are_reported(docker_client: Any, run_container: Any):
    reader = CgroupReader()
    owner = run_container("sleep", "600")
    joined = run_container("sleep", "600", network_mode=f"container:{owner.id}")
    host = run_container("sleep", "600", network_mode="host")
    owner_info, joined_info = info_of(docker_client, owner), info_of(docker_client, joined)
    host_c = reader.read(info_of(docker_client, host))
    # The namespace can receive a stray packet (IPv6 router solicitation, ARP) between two
    # reads: read the owner before and after the joined container, and compare when nothing
    # arrived in between; when packets keep coming, the joined reading must lie between.
    for _ in range(20):
        before = reader.read(owner_info)
        joined_c = reader.read(joined_info)
        after = reader.read(owner_info)
        if before.net_rx_bytes_total == after.net_rx_bytes_total:
            break
    assert before.net_namespace == joined_c.net_namespace == after.net_namespace
    if before.net_rx_bytes_total == after.net_rx_bytes_total:
        assert joined_c.net_rx_bytes_total == before.net_rx_bytes_total
        assert joined_c.net_rx_packets_total == before.net_rx_packets_total
    else:
        assert before.net_rx_bytes_total <= joined_c.net_rx_bytes_total <= after.net_rx_bytes_total
    owner_c = after
    # --network host: the engine's namespace, which this test process shares
    assert host_c.net_namespace == net_namespace_inode(os.getpid())
    assert host_c.net_namespace != owner_c.net_namespace
