"""Workloads from Compose files, probes, and the refusals of ``capacity verify``."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.cli import main
from capacity.verify import CommandProbe, HttpProbe, Workload

COMPOSE = """
services:
  web:
    image: capacity-busybox:latest
    command: sh -c "dd if=/dev/zero of=/hold/x bs=1M count=8; sleep 600"
    environment: [MODE=fast, EMPTY]
    tmpfs: ["/hold:size=16m"]
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M}
  built:
    build: .
"""


def test_workload_from_compose(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    w = Workload.from_compose(path, "web")
    assert w.name == "web" and w.image == "capacity-busybox:latest"
    assert w.command == ("sh", "-c", "dd if=/dev/zero of=/hold/x bs=1M count=8; sleep 600")
    assert w.environment == {"MODE": "fast", "EMPTY": ""}
    assert w.tmpfs == {"/hold": "size=16m"}
    assert w.cpu_limit_cores == 0.5 and w.memory_limit_bytes == 64 * 2**20
    kw = w.run_kwargs()
    assert kw["nano_cpus"] == 500_000_000 and kw["mem_limit"] == 64 * 2**20
    with pytest.raises(ValueError, match="build it first"):
        Workload.from_compose(path, "built")
    with pytest.raises(ValueError, match="one of the services"):
        Workload.from_compose(path, "nope")


def test_command_probe_passes_ips_and_judges_exit_and_latency() -> None:
    ok = CommandProbe('test "$CAPACITY_VERIFY_IPS" = "10.0.0.1 10.0.0.2"')(["10.0.0.1",
                                                                          "10.0.0.2"])
    assert ok.ok
    assert not CommandProbe("exit 3")([]).ok
    slow = CommandProbe("sleep 0.3", max_latency_s=0.05)([])
    assert not slow.ok and "latency" in slow.detail


def test_http_probe_reports_a_refused_connection() -> None:
    r = HttpProbe("http://127.0.0.1:9/", timeout_s=1)([])
    assert not r.ok and "127.0.0.1:9" in r.detail


@pytest.mark.docker
def test_cli_refuses_a_target_larger_than_this_host(
    docker_client: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", "--image", "capacity-busybox:latest", "--command", "sleep 1",
                 "--machine", "cpus=512,memory=1GiB"])
    assert code == 3
    assert "512 CPUs but this host has" in capsys.readouterr().err


@pytest.mark.parametrize("body, field", [
    ("  web:\n    image: [1]\n", "services.web.image"),
    ("  web:\n    image: x\n    cpus: lots\n", "services.web.cpus"),
    ("  web:\n    image: x\n    deploy: fast\n", "services.web.deploy"),
    ("  web:\n    image: x\n    environment: 3\n", "services.web.environment"),
    ("  web:\n    image: x\n    command: {a: 1}\n", "services.web.command"),
    ("  web:\n    image: x\n    ports: ['1-2000000000:80']\n", "services.web.ports[0]"),
])
def test_a_bad_compose_service_is_exit_3_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, field: str
) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n" + body)
    code = main(["verify", "--compose-service", f"{path}:web", "--machine", "cpus=1"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("capacity: error:") and repr(field) in err
    assert "unexpected" not in err


@pytest.mark.docker
def test_replicas_that_exit_are_named_not_the_collectors_advice(
    docker_client: object, busybox_image: str,
) -> None:
    """Before: 'no running containers to sample on this engine: start some, or try
    capacity report --demo', about the replicas verify had started itself."""
    from docker_labels import SESSION_ID, TEST_LABEL

    from capacity import NoContainers
    from capacity.verify._predict import collect_profile

    w = Workload(name="ends", image=busybox_image, command=("sleep", "1"))
    with pytest.raises(NoContainers, match=r"sleep 1\) exited before they could be sampled"):
        collect_profile(docker_client, [w], replicas=1, duration_s=2.0, interval_s=0.5,
                        warmup_s=2.0, labels={TEST_LABEL: SESSION_ID})
