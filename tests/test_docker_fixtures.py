import pytest

from capacity._errors import ContainerGone
from capacity.sources._docker import container_info, list_containers


@pytest.mark.docker
def test_run_container_labels_and_lists(docker_client, run_container):
    c = run_container("sleep", "30", cpus=0.5, mem_limit="64m")
    infos = {i.id: i for i in list_containers(docker_client, filters={"label": "capacity.test"})}
    info = infos[c.id]
    assert info.pid > 0
    assert info.cpu_limit_cores == pytest.approx(0.5)
    assert info.memory_limit_bytes == 64 * 1024 * 1024
    assert info.service == "capacity-test-busybox:latest"


def test_container_info_rejects_stopped():
    attrs = {"Id": "abc" * 20, "State": {"Running": False, "Pid": 0, "Status": "exited"}}
    with pytest.raises(ContainerGone, match="exited"):
        container_info(attrs)


def test_service_prefers_compose_label():
    attrs = {
        "Id": "f" * 64,
        "Name": "/stack-web-1",
        "State": {"Running": True, "Pid": 42, "StartedAt": "2026-11-27T21:17:29.123456789Z"},
        "Config": {
            "Image": "nginx:1",
            "Labels": {"com.docker.compose.service": "web", "com.docker.compose.project": "stack"},
        },
        "HostConfig": {"NanoCpus": 250_000_000, "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
    }
    info = container_info(attrs)
    assert info.service == "stack/web"
    assert info.cpu_limit_cores == 0.25
    assert info.published_host_ports == ("8080->80/tcp",)
    assert info.started_at.microsecond == 123456
