"""A recorded fixture of cAdvisor (Docker) and kubelet (Kubernetes) series, loaded into a
real Prometheus with ``promtool tsdb create-blocks-from openmetrics``, read back.

tests/data/prometheus/cadvisor_kubelet.om has the label sets real exporters emit (see the
README there): the host's root cgroup without an image, Compose labels, per-CPU counters of
an old cAdvisor, several interfaces, the kubelet's pod sandboxes (``container=""`` with the
pause image, and dockershim's ``container="POD"``) that hold each pod's network, and kind's
nested cgroup path that shows one container twice. Its values are generated with known
rates, so the expected profile inputs are exact.

tests/data/prometheus/cadvisor_testdata.prom is cAdvisor's own recorded exporter output,
verbatim (google/cadvisor, lib/metrics/testdata/prometheus_metrics): it is replayed as
scrapes whose counters grow by the recorded value each time, and read back.

tests/data/prometheus/kubelet_eks_testdata.prom is lines of a real kubelet
``/metrics/cadvisor`` scrape (EKS, Kubernetes 1.21, dockershim), verbatim
(DataDog/datadog-agent's test data), replayed the same way.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_helpers import prometheus_server, require_binary

from capacity._columns import CPU, MEMORY, NET_RX
from capacity._pipeline import load_prometheus
from capacity.sources._prometheus import PrometheusAPI

DATA = Path(__file__).parents[1] / "data" / "prometheus"
END = datetime.fromtimestamp(1_793_491_200 + 600 + 1, tz=UTC)  # just after the last scrape
MIB = 2**20


@pytest.mark.slow
def test_cadvisor_and_kubelet_series_read_back(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    data_dir = tmp_path / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    str(DATA / "cadvisor_kubelet.om"), str(data_dir)],
                   check=True, capture_output=True, timeout=120)
    with prometheus_server(tmp_path / "prom", data_dir=data_dir) as url, \
            PrometheusAPI(url) as api:
        data = load_prometheus(api, since_s=900, now=END)
        kube_only = load_prometheus(api, since_s=900, now=END, selector='{job="kubelet"}',
                                    group_by=("label:namespace",))

    samples = data.samples
    by_service = samples.groupby("service")
    # the root cgroup (no image) and the pod sandbox are not containers; etcd is one
    # container although kind shows it at two cgroup paths
    assert sorted(by_service.groups) == [
        "busybox", "kube-system/etcd-kind-control-plane", "shop/db", "shop/frontend",
        "shop/web"]
    assert samples.groupby("service")["container_id"].nunique().max() == 1
    expected_cpu = {"shop/web": 0.25, "shop/db": 0.05, "busybox": 0.2,
                    "kube-system/etcd-kind-control-plane": 0.15, "shop/frontend": 0.1}
    for service, cores in expected_cpu.items():
        got = by_service.get_group(service)[CPU]
        assert got.min() == pytest.approx(cores) and got.max() == pytest.approx(cores), service
    assert (by_service.get_group("shop/db")[MEMORY] == 200 * MIB).all()
    assert (by_service.get_group("shop/frontend")[MEMORY] == 120 * MIB).all()
    # two interfaces summed; the scrape interval is measured (15 s), not assumed
    assert by_service.get_group("shop/web")[NET_RX].to_numpy() == pytest.approx(1000.0)
    # a pod's network is on its sandbox (container="" on containerd and kind, "POD" under
    # dockershim), whose samples are stamped apart from the containers': it is the pod's
    etcd_rx = by_service.get_group("kube-system/etcd-kind-control-plane")[NET_RX]
    assert etcd_rx.to_numpy() == pytest.approx(700.0)
    front_rx = by_service.get_group("shop/frontend")[NET_RX]
    # the frontend's first scrape comes 7.5 s before its sandbox's: no rate for that interval
    assert front_rx.isna().sum() == 1
    assert front_rx.dropna().to_numpy() == pytest.approx(320.0)  # eth0 + eth1 of the sandbox
    assert samples["interval_s"].to_numpy() == pytest.approx(15.0)
    assert data.interval_s == pytest.approx(15.0)
    assert len(by_service.get_group("shop/web")) == 40  # 41 scrapes, 40 intervals
    assert data.containers.set_index("service").loc["shop/web", "name"] == "shop-web-1"
    etcd = data.warnings["kube-system/etcd-kind-control-plane"]
    assert any(w.startswith("1 duplicate series") for w in etcd), etcd
    assert "shop/web" not in data.warnings  # a clean series has no warnings
    # declared limits (cAdvisor's container_spec_*): web has --cpus 0.5 -m 256m; 0 is "none"
    limits = data.containers.set_index("service")
    assert limits.loc["shop/web", "cpu_limit_cores"] == pytest.approx(0.5)
    assert limits.loc["shop/web", "memory_limit_bytes"] == 256 * MIB
    assert limits["memory_limit_bytes"].drop("shop/web").isna().all()
    assert limits["cpu_limit_cores"].drop("shop/web").isna().all()

    assert sorted(kube_only.samples["service"].unique()) == ["kube-system", "shop"]


#: cAdvisor's recording as scrapes: its counters grow by the recorded value each scrape
REPLAY_SCRAPES = 5
REPLAY_START_S = 1_793_491_200
REPLAY_EVERY_S = 15


def replay_as_openmetrics(text: str) -> str:
    """Prometheus text exposition (one scrape) -> OpenMetrics of ``REPLAY_SCRAPES`` scrapes.

    Scrape ``k`` (0-based) at ``REPLAY_START_S + 15 k`` s: a counter's value is the recorded
    value times ``k + 1``, a gauge's the recorded one; labels exactly as recorded. OpenMetrics
    names a counter family without ``_total`` and gives times in seconds."""
    kinds: dict[str, str] = {}
    order: list[str] = []
    samples: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            kinds[name] = kind
            order.append(name)
        elif line and not line.startswith("#"):
            series, rest = line.rsplit("}", 1)
            value = float(rest.split()[0])
            samples.setdefault(series.split("{", 1)[0], []).append((series + "}", value))
    out = []
    for name in order:
        kind = kinds[name]
        family = name.removesuffix("_total") if kind == "counter" else name
        out.append(f"# TYPE {family} {kind}")
        for series, value in samples.get(name, []):
            for k in range(REPLAY_SCRAPES):
                v = value * (k + 1) if kind == "counter" else value
                out.append(f"{series} {v!r} {REPLAY_START_S + REPLAY_EVERY_S * k}")
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _replayed(tmp_path: Path, fixture: str) -> Any:
    """A recorded ``/metrics`` file replayed as scrapes, backfilled by promtool into a real
    Prometheus, read back with :func:`load_prometheus` (the last 300 s)."""
    promtool = require_binary("promtool")
    source = tmp_path / "replay.om"
    source.write_text(replay_as_openmetrics((DATA / fixture).read_text()))
    data_dir = tmp_path / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(data_dir)], check=True, capture_output=True, timeout=120)
    end = datetime.fromtimestamp(REPLAY_START_S + REPLAY_EVERY_S * (REPLAY_SCRAPES - 1) + 1,
                                 tz=UTC)
    with prometheus_server(tmp_path / "prom", data_dir=data_dir) as url, \
            PrometheusAPI(url) as api:
        return load_prometheus(api, since_s=300, now=end)


@pytest.mark.slow
def test_cadvisors_own_recorded_output_read_back(tmp_path: Path) -> None:
    """The label sets and values of cAdvisor's recording, through promtool, Prometheus and
    the reader: per-CPU counters summed, one NIC, two filesystems, the declared CPU quota."""
    from capacity._columns import DISK_READ, DISK_USAGE, DISK_WRITE, NET_TX

    data = _replayed(tmp_path, "cadvisor_testdata.prom")

    samples = data.samples
    assert list(samples["service"].unique()) == ["test"]  # the image: no Compose labels
    assert list(samples["container_name"].unique()) == ["testcontaineralias"]
    assert len(samples) == REPLAY_SCRAPES - 1
    assert samples["interval_s"].to_numpy() == pytest.approx(REPLAY_EVERY_S)
    per_s = {  # the recorded counter values, grown once per 15 s scrape
        CPU: (2e-9 + 3e-9 + 4e-9 + 5e-9) / REPLAY_EVERY_S,  # cpu00..cpu03 summed
        NET_RX: 14 / REPLAY_EVERY_S, NET_TX: 18 / REPLAY_EVERY_S,
        DISK_READ: 3 / REPLAY_EVERY_S, DISK_WRITE: 6 / REPLAY_EVERY_S,
    }
    for column, rate in per_s.items():
        assert samples[column].to_numpy() == pytest.approx(rate, rel=1e-9), column
    assert (samples[MEMORY] == 9).all()
    assert (samples[DISK_USAGE] == 23 + 38).all()  # sda1 + sda2
    containers = data.containers.set_index("container_id")
    assert containers.loc["testcontainer", "cpu_limit_cores"] == pytest.approx(0.1)
    assert not data.warnings


def _backfill(tmp_path: Path, fixture: str, shift_s: float = 0.0) -> Path:
    """promtool blocks from a fixture, its timestamps shifted by ``shift_s`` seconds."""
    promtool = require_binary("promtool")
    source = DATA / fixture
    if shift_s:
        lines = []
        for line in source.read_text().splitlines():
            if line.startswith("#"):
                lines.append(line)
            else:
                head, stamp = line.rsplit(" ", 1)
                lines.append(f"{head} {float(stamp) + shift_s:.3f}")
        source = tmp_path / fixture
        source.write_text("\n".join(lines) + "\n")
    data_dir = tmp_path / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(data_dir)], check=True, capture_output=True, timeout=120)
    return data_dir


@pytest.mark.slow
def test_host_capacities_from_node_exporter(tmp_path: Path) -> None:
    from capacity.sources._prometheus import host_kinds, read_node_hosts

    data_dir = _backfill(tmp_path, "node_exporter.om")
    with prometheus_server(tmp_path / "prom", data_dir=data_dir) as url, \
            PrometheusAPI(url) as api:
        hosts = read_node_hosts(api, now=END)
        only_c = read_node_hosts(api, now=END, selector='{instance="host-c:9100"}')
    by = {h.instance: h for h in hosts}
    assert sorted(by) == ["host-a:9100", "host-b:9100", "host-c:9100"]
    assert by["host-a:9100"].cpus == 8 and by["host-c:9100"].cpus == 32
    assert by["host-b:9100"].memory_bytes == 33_543_307_264
    assert by["host-a:9100"].disk_bytes == 499_963_174_912  # "/", not the tmpfs
    assert by["host-a:9100"].nic_bytes_per_second == 1.25e9  # eth0, not docker0
    assert by["host-c:9100"].nic_bytes_per_second == 3.125e9
    kinds = host_kinds(hosts)
    assert sorted(len(v) for v in kinds.values()) == [1, 2]  # a and b are one model
    assert [h.instance for h in only_c] == ["host-c:9100"]


@pytest.mark.slow
def test_size_per_host_kind_of_the_fleet(tmp_path: Path, capsys) -> None:
    import json
    import time

    from capacity.cli import main

    assert main(["fit", "--demo", "--out", str(tmp_path / "profiles.json")]) == 0
    profiles = json.loads((tmp_path / "profiles.json").read_text())
    service = sorted(profiles["services"])[0]
    capsys.readouterr()
    # the recording ends 1 min ago, so an instant query now finds it
    shift = time.time() - 60 - (END.timestamp() - 1)
    data_dir = _backfill(tmp_path, "node_exporter.om", shift_s=shift)
    with prometheus_server(tmp_path / "prom", data_dir=data_dir) as url:
        code = main(["size", "--profiles", str(tmp_path / "profiles.json"), "--machine",
                     "fleet", "--prometheus", url, "--replicas", f"{service}=40", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    kinds = {k["kind"]: k for k in json.loads(out)["kinds"]}
    assert len(kinds) == 2
    small = next(k for k in kinds.values() if k["in_fleet"] == 2)
    large = next(k for k in kinds.values() if k["in_fleet"] == 1)
    assert small["kind"].startswith("cpus=8,") and large["kind"].startswith("cpus=32,")
    # a host with 4x the CPUs and memory never needs more hosts for the same replicas
    assert large["size"]["hosts"] <= small["size"]["hosts"]


@pytest.mark.slow
def test_a_real_kubelet_recording_read_back(tmp_path: Path) -> None:
    """A real kubelet ``/metrics/cadvisor`` scrape (EKS, Kubernetes 1.21, Docker runtime;
    DataDog/datadog-agent's recording, lines verbatim): dockershim's ``container="POD"``
    sandboxes with the pause image hold each pod's network (two interfaces, summed), the
    node's root cgroup (no image) is left out, pods group by their owner within their
    namespace (a CronJob's runs under the CronJob), and a container whose pod has no
    sandbox network (aws-node runs on the host network) has no network rate, never 0."""
    import numpy as np

    data = _replayed(tmp_path, "kubelet_eks_testdata.prom")

    samples = data.samples
    # (service, container name) -> (recorded CPU counter, working set, sandbox rx bytes)
    expected = {
        ("workload-dogstatsd/dogstatsd-uds", "dogstatsd-uds-5d4b8cbd9c-qwclq/app"):
            (115740.637688915, 3.588096e6, 746 + 830),
        # two runs of one CronJob (a Job each, named by its scheduled minute): one service
        ("workload-stress-test-ad/hello", "hello-27442143-6sd7g/hello"):
            (0.015197473, 315392, 746 + 746),
        ("workload-stress-test-ad/hello", "hello-27442145-wmlfx/hello"):
            (0.016370712, 323584, 746 + 746),
        ("kube-system/aws-node", "aws-node-tf7nn/aws-node"): (5404.234968205, 4.15744e7, None),
    }
    got = {(str(s), str(n)) for s, n in
           samples[["service", "container_name"]].drop_duplicates().itertuples(index=False)}
    assert got == set(expected)  # no sandbox, no pod cgroup, no root cgroup as a replica
    for (_service, name), (cpu, memory, rx) in expected.items():
        rows = samples[samples["container_name"] == name]
        assert len(rows) == REPLAY_SCRAPES - 1, name
        assert rows[CPU].to_numpy() == pytest.approx(cpu / REPLAY_EVERY_S, rel=1e-9), name
        assert (rows[MEMORY] == memory).all(), name
        if rx is None:
            assert np.isnan(rows[NET_RX].to_numpy()).all(), name
        else:
            assert rows[NET_RX].to_numpy() == pytest.approx(rx / REPLAY_EVERY_S), name
    ids = set(data.containers["container_id"])
    assert "workload-dogstatsd/dogstatsd-uds-5d4b8cbd9c-qwclq/app" in ids
    assert not any(i.endswith("/POD") or i.endswith("/") for i in ids)
