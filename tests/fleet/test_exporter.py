"""``collect --serve``: the exporter's series and labels, and a taken port.

The series are parsed back with prometheus_client's own text parser, as a scraper would.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from capacity._collect import Collection
from capacity._errors import CapacityError
from capacity._exporter import ExporterSink, parse_listen_address
from capacity.cli import main
from capacity.sources._types import ContainerCounters, ContainerInfo

CID = "ab" * 32
T = datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC)


class _Health:
    rounds, read_errors, gone, engine_down = 7, 1, 2, True
    outages = ({"gap_s": 3.0},)


def _round(sink: ExporterSink) -> None:
    info = ContainerInfo(
        id=CID, name="shop-web-1", image="shop/web:3", service="shop/web", pid=42,
        started_at=datetime(2026, 11, 30, 11, 0, tzinfo=UTC),
        labels={"com.docker.compose.service": "web", "com.docker.compose.project": "shop"},
        cpu_limit_cores=0.5, memory_limit_bytes=2**30,
    )
    counters = ContainerCounters(
        container_id=CID, cpu_usage_seconds_total=12.5, memory_usage_bytes=300,
        memory_working_set_bytes=200, net_rx_bytes_total=1000, net_tx_bytes_total=None,
    )
    sink.write_round(T, 100.0, [info], [counters])


def test_the_latest_round_is_served_with_cadvisor_names_and_labels() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    store = Collection()
    sink = ExporterSink(store, clock=lambda: T.timestamp() + 4)
    sink.collector = _Health()
    _round(sink)
    assert store.rounds == 1  # forwarded to the real sink
    registry = CollectorRegistry(auto_describe=False)
    registry.register(sink)
    text = generate_latest(registry).decode()
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    cpu = samples["container_cpu_usage_seconds_total"]
    assert cpu.value == 12.5 and cpu.timestamp == T.timestamp()
    assert cpu.labels == {
        "id": f"/docker/{CID}", "name": "shop-web-1", "image": "shop/web:3",
        "container_label_com_docker_compose_service": "web",
        "container_label_com_docker_compose_project": "shop",
    }
    assert samples["container_memory_working_set_bytes"].value == 200
    assert samples["container_network_receive_bytes_total"].value == 1000
    assert "container_network_transmit_bytes_total" not in samples  # not read: not 0
    assert samples["container_spec_cpu_quota"].value == 50_000
    assert samples["container_spec_memory_limit_bytes"].value == 2**30
    assert samples["capacity_collector_rounds_total"].value == 7
    assert samples["capacity_collector_engine_outages_total"].value == 1
    assert samples["capacity_collector_engine_up"].value == 0
    assert samples["capacity_collector_store_lag_seconds"].value == 0  # Collection: no buffer


def test_listen_addresses() -> None:
    assert parse_listen_address("[::1]:9105") == ("::1", 9105)
    assert parse_listen_address("9105") == ("0.0.0.0", 9105)
    for bad in ("", ":http", "host:70000"):
        with pytest.raises(CapacityError, match="give \\[HOST\\]:PORT"):
            parse_listen_address(bad)


@pytest.mark.docker
def test_a_taken_port_is_one_line_exit_3_and_nothing_written(tmp_path: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store = tmp_path / "samples.sqlite"
        code = main(["collect", "--serve", f"127.0.0.1:{port}", "--duration", "2s",
                     "--store", str(store), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith(f"capacity: error: cannot serve metrics on 127.0.0.1:{port}: ")
    assert "in use" in err[0] and "--serve" in err[0]
    assert not store.exists()
