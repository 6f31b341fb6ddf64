"""A ``--network host`` container is not charged with the host's network traffic."""

from __future__ import annotations

import pytest

from capacity._collect import CachedCgroupReader
from capacity.sources import CgroupReader
from capacity.sources._docker import list_containers


@pytest.mark.docker
def test_host_network_container_has_no_network_counters(docker_client, run_container) -> None:
    host = run_container("sleep", "60", network_mode="host")
    bridged = run_container("sleep", "60")
    infos = {i.id: i for i in list_containers(docker_client, filters={"id": [host.id, bridged.id]})}
    reader = CgroupReader()
    on_host = reader.read(infos[host.id])
    own = reader.read(infos[bridged.id])
    assert on_host.net_rx_bytes_total is None and on_host.net_tx_bytes_total is None
    assert on_host.net_namespace == reader.host_net_namespace()
    assert own.net_rx_bytes_total is not None and own.net_namespace != on_host.net_namespace
    assert on_host.cpu_usage_seconds_total >= 0 and on_host.memory_usage_bytes > 0
    # the collector's reader, whose second reading goes through the held descriptors only
    # (and skips the host's net/dev): the same answer
    cached = CachedCgroupReader()
    for _ in range(2):
        again, own_again = cached.read(infos[host.id]), cached.read(infos[bridged.id])
        assert again.net_rx_bytes_total is None and again.net_tx_bytes_total is None
        assert again.net_namespace == on_host.net_namespace
        assert own_again.net_rx_bytes_total is not None
    cached.close()
