"""Write cadvisor_kubelet.om (and node_exporter.om): 10 minutes of cAdvisor (Docker) and
kubelet (Kubernetes) container series in OpenMetrics text, for
``promtool tsdb create-blocks-from openmetrics``.

The label sets are the ones real exporters emit (see README.md in this folder for where
they were taken from); the values are generated here, so the rates the test expects are
known exactly. Run ``python make_cadvisor_fixture.py`` to rewrite the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

START_S = 1_793_491_200  # 2026-11-01T00:00:00Z
SCRAPE_S = 15
N_SCRAPES = 41  # 10 minutes
MIB = 2**20

#: made-up container ids (64 hex, as Docker's)
DOCKER_ID = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("web", "db", "legacy")}
KIND_NODE = "6b7c234cfe92a0924e54e2a51d9607a5893a38ed14c7161f324863eeaa2fb985"
ETCD_POD = "poda4a6a8d4c9c0100deb8dc3a1d3adfa32"
ETCD_CID = "0cd86529af0ca0e389ed657b2c0a20f03275cf6d9e0cd52fe4c1f90b96037de7"
PAUSE_CID = "a84ce063fb5cab82bb938151e9fa1e98ad875c3cf5dad88d797d4c65c6229c13"
FRONT_POD = "pod5b3c2d1e-8f7a-4b6c-9d0e-1f2a3b4c5d6e"
FRONT_CID = "4026cf5500d96c6e274a2607b507891abc21f7b1577e29c9400cfb0f0ce5d8aa"
PAUSE_IMAGE = "sha256:0184c1613d92931126feb4c548e5da11015513b9e4c104e7305ee8b53b50a9da"
#: the dockershim flavour of a sandbox: container="POD", the pause image by tag (made-up id)
FRONT_PAUSE_CID = hashlib.sha256(b"frontend-pause").hexdigest()


def _docker(name: str, service: str | None, image: str, cid: str) -> dict[str, str]:
    return {
        "container_label_com_docker_compose_project": "shop" if service else "",
        "container_label_com_docker_compose_service": service or "",
        "id": f"/docker/{cid}", "image": image, "name": name,
        "instance": "host-a:8080", "job": "cadvisor",
    }


def _kube(container: str, cid: str, pod: str, pod_uid: str, image: str, namespace: str,
          nested: bool = False) -> dict[str, str]:
    path = f"/kubelet/kubepods/burstable/{pod_uid}/{cid}"
    return {
        "container": container, "id": f"/docker/{KIND_NODE}{path}" if nested else path,
        "image": image, "name": cid, "namespace": namespace, "pod": pod,
        "instance": "kind-control-plane:10250", "job": "kubelet",
        "metrics_path": "/metrics/cadvisor",
    }


# (labels, cpu cores, memory bytes, {interface: rx bytes/s}, per-cpu split, ts offset s)
DOCKER_ROOT = {"container_label_com_docker_compose_project": "",
               "container_label_com_docker_compose_service": "", "id": "/", "image": "",
               "name": "", "instance": "host-a:8080", "job": "cadvisor"}
SERIES = [
    (DOCKER_ROOT, 1.7, 3000 * MIB, {"eth0": 9000.0}, None, 0.0),
    (_docker("shop-web-1", "web", "python:3.13-alpine", DOCKER_ID["web"]), 0.25, 64 * MIB,
     {"eth0": 600.0, "eth1": 400.0}, None, 0.1),
    (_docker("shop-db-1", "db", "postgres:16", DOCKER_ID["db"]), 0.05, 200 * MIB,
     {"eth0": 50.0}, None, 0.2),
    (_docker("legacy", None, "busybox", DOCKER_ID["legacy"]), 0.2, 8 * MIB, {}, 2, 0.3),
    (_kube("etcd", ETCD_CID, "etcd-kind-control-plane", ETCD_POD, "k8s.gcr.io/etcd:3.4.13-0",
           "kube-system"), 0.15, 40 * MIB, {}, None, 0.493),
    (_kube("etcd", ETCD_CID, "etcd-kind-control-plane", ETCD_POD, "k8s.gcr.io/etcd:3.4.13-0",
           "kube-system", nested=True), 0.15, 40 * MIB, {}, None, 0.493),
    (_kube("", PAUSE_CID, "etcd-kind-control-plane", ETCD_POD, PAUSE_IMAGE, "kube-system"),
     0.001, 1 * MIB, {"eth0": 700.0}, None, 0.216),
    (_kube("frontend", FRONT_CID, "frontend-7d4b9c8f6b-x2x9k", FRONT_POD,
           "registry.local/frontend:2.1", "shop"), 0.1, 120 * MIB, {}, None, 0.919),
    (_kube("POD", FRONT_PAUSE_CID, "frontend-7d4b9c8f6b-x2x9k", FRONT_POD,
           "k8s.gcr.io/pause:3.2", "shop"), 0.0005, 1 * MIB, {"eth0": 300.0, "eth1": 20.0},
     None, 7.5),
]


def _labels(labels: dict[str, str], **extra: str) -> str:
    merged = {**labels, **extra}
    return ",".join(f'{k}="{v}"' for k, v in sorted(merged.items()))


def main() -> None:
    lines: list[str] = []
    families = [
        ("container_cpu_usage_seconds", "counter", "Cumulative cpu time consumed in seconds."),
        ("container_memory_working_set_bytes", "gauge", "Current working set in bytes."),
        ("container_network_receive_bytes", "counter", "Cumulative count of bytes received"),
    ]
    for family, kind, doc in families:
        lines += [f"# HELP {family} {doc}", f"# TYPE {family} {kind}"]
        sample = family + ("_total" if kind == "counter" else "")
        for labels, cores, memory, rx, per_cpu, offset in SERIES:
            if family == "container_cpu_usage_seconds":
                splits = ([(f"cpu{i:02d}", cores / per_cpu) for i in range(per_cpu)]
                          if per_cpu else [("total", cores)])
                streams = [({"cpu": cpu}, lambda k, r=rate: 1000.0 + r * SCRAPE_S * k)
                           for cpu, rate in splits]
            elif family == "container_memory_working_set_bytes":
                streams = [({}, lambda k, m=memory: float(m))]
            else:
                streams = [({"interface": nic}, lambda k, r=rate: 5e6 + r * SCRAPE_S * k)
                           for nic, rate in rx.items()]
            for extra, value in streams:
                for k in range(N_SCRAPES):
                    t = START_S + k * SCRAPE_S + offset
                    lines.append(f"{sample}{{{_labels(labels, **extra)}}} {value(k)!r} {t:.3f}")
    # declared limits as cAdvisor reports them: quota/period in microseconds, memory in
    # bytes, 0 for "none" (shop-web-1 has --cpus 0.5 -m 256m, the others none)
    for family in ("container_spec_cpu_quota", "container_spec_cpu_period",
                   "container_spec_memory_limit_bytes"):
        lines.append(f"# TYPE {family} gauge")
        for labels, *_ in SERIES:
            web = labels.get("name") == "shop-web-1"
            value = {"container_spec_cpu_quota": 50_000.0 if web else 0.0,
                     "container_spec_cpu_period": 100_000.0,
                     "container_spec_memory_limit_bytes": 256.0 * MIB if web else 0.0}[family]
            for k in range(N_SCRAPES):
                lines.append(f"{family}{{{_labels(labels)}}} {value!r} "
                             f"{START_S + k * SCRAPE_S}")
    lines.append("# EOF")
    Path(__file__).with_name("cadvisor_kubelet.om").write_text("\n".join(lines) + "\n")




# node_exporter on three hosts: two of one model (a few MiB of memory apart, as firmware
# reservations make them), one larger; label sets as node_exporter 1.x emits them.
NODES = [
    ("host-a:9100", 8, 33_546_452_992, 499_963_174_912, {"eth0": 1.25e9, "docker0": 1.25e10}),
    ("host-b:9100", 8, 33_543_307_264, 499_963_174_912, {"eth0": 1.25e9, "lo": 0.0}),
    ("host-c:9100", 32, 135_089_799_168, 1_999_844_147_200, {"eno1": 3.125e9, "eno2": 3.125e9}),
]


def nodes() -> None:
    lines: list[str] = []
    stamps = [START_S + k * SCRAPE_S for k in range(N_SCRAPES)]

    def family(name: str, kind: str, rows: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# TYPE {name} {kind}")
        sample = name + ("_total" if kind == "counter" else "")
        for labels, value in rows:
            for k, t in enumerate(stamps):
                v = value + (k * SCRAPE_S * 0.9 if kind == "counter" else 0.0)
                lines.append(f"{sample}{{{_labels(labels)}}} {v!r} {t}")

    job = {"job": "node"}
    family("node_cpu_seconds", "counter", [
        ({**job, "instance": inst, "cpu": str(c), "mode": mode}, 1000.0)
        for inst, cpus, *_ in NODES for c in range(cpus) for mode in ("idle", "user")])
    family("node_memory_MemTotal_bytes", "gauge", [
        ({**job, "instance": inst}, float(mem)) for inst, _, mem, *_ in NODES])
    family("node_filesystem_size_bytes", "gauge", [
        ({**job, "instance": inst, "device": dev, "fstype": fs, "mountpoint": mnt}, size)
        for inst, _, _, disk, _ in NODES
        for dev, fs, mnt, size in (("/dev/sda1", "ext4", "/", float(disk)),
                                   ("tmpfs", "tmpfs", "/run", 3.3e9))])
    family("node_network_speed_bytes", "gauge", [
        ({**job, "instance": inst, "device": dev}, speed)
        for inst, *_, nics in NODES for dev, speed in nics.items()])
    lines.append("# EOF")
    Path(__file__).with_name("node_exporter.om").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
    nodes()
