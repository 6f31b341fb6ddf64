"""A recorded fixture of cAdvisor (Docker) and kubelet (Kubernetes) series, loaded into a
real Prometheus with ``promtool tsdb create-blocks-from openmetrics``, read back.

tests/data/prometheus/cadvisor_kubelet.om has the label sets real exporters emit (see the
README there): the host's root cgroup without an image, Compose labels, per-CPU counters of
an old cAdvisor, several interfaces, the kubelet's pod sandbox (pause image), and kind's
nested cgroup path that shows one container twice. Its values are generated with known
rates, so the expected profile inputs are exact.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

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
    assert samples["interval_s"].to_numpy() == pytest.approx(15.0)
    assert data.interval_s == pytest.approx(15.0)
    assert len(by_service.get_group("shop/web")) == 40  # 41 scrapes, 40 intervals
    assert data.containers.set_index("service").loc["shop/web", "name"] == "shop-web-1"
    etcd = data.warnings["kube-system/etcd-kind-control-plane"]
    assert any(w.startswith("1 duplicate series") for w in etcd), etcd
    assert "shop/web" not in data.warnings  # a clean series has no warnings

    assert sorted(kube_only.samples["service"].unique()) == ["kube-system", "shop"]
