"""Docker Engine discovery: connect, list running containers, read their metadata.

Only metadata goes through the Engine API here; per-container numbers come from a
:class:`~capacity.sources.CounterReader` (cgroup files, or the stats API as a fallback).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
import requests.exceptions

from .._errors import ContainerGone, DockerUnavailable
from ._types import COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL, ContainerInfo

__all__ = ["DEFAULT_DOCKER_URL", "connect", "container_info", "list_containers", "service_of"]

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"


def _describe_url(base_url: str | None) -> str:
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL


def connect(base_url: str | None = None, *, timeout_s: float = 10.0) -> docker.DockerClient:
    """Return a Docker client that has answered a ping.

    ``base_url`` defaults to ``$DOCKER_HOST``, else the local socket. CLI contexts are not
    consulted, so the engine used is the one named here. Raises :class:`DockerUnavailable`
    with the socket and the fix when no engine answers or access is denied.
    """
    url = _describe_url(base_url)
    # ssh://: through the system's ssh client, as the docker CLI does (~/.ssh/config, the
    # agent, known_hosts and ProxyJump apply), running `docker system dial-stdio` there
    ssh = url.startswith("ssh://")
    try:
        if base_url is None and os.environ.get("DOCKER_HOST"):
            client = docker.DockerClient.from_env(timeout=int(timeout_s), use_ssh_client=ssh)
        else:
            client = docker.DockerClient(base_url=url, timeout=int(timeout_s),
                                         use_ssh_client=ssh)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            hint = (
                "permission denied: run as root, or add your user to the 'docker' group "
                "(sudo usermod -aG docker $USER, then log in again)"
            )
        elif url.startswith("unix://") and not os.path.exists(url[len("unix://") :]):
            hint = (
                f"socket {url[len('unix://'):]} does not exist: start the engine "
                "(sudo systemctl start docker, or dockerd &), or set DOCKER_HOST"
            )
        elif ssh:
            target = urlsplit(url)
            port = f"-p {target.port} " if target.port else ""
            user = f"{target.username}@" if target.username else ""
            hint = (
                f"{text.splitlines()[0] if text else type(exc).__name__}; check that "
                f"'ssh {port}{user}{target.hostname} docker version' works without a prompt "
                "(key, known_hosts, the docker CLI on that host)"
            )
        else:
            hint = f"{text.splitlines()[0] if text else type(exc).__name__}; is dockerd running?"
        raise DockerUnavailable(f"no Docker Engine answers at {url}: {hint}", base_url=url) from exc
    return client


def service_of(labels: Mapping[str, str], image: str, name: str) -> str:
    """The default grouping key: Compose service label, else image, else container name.

    A label, image or name that is empty or only spaces counts as absent: an empty service
    would pool unrelated containers into one service ``""``.
    """
    service = (labels.get(COMPOSE_SERVICE_LABEL) or "").strip()
    if service:
        project = (labels.get(COMPOSE_PROJECT_LABEL) or "").strip()
        return f"{project}/{service}" if project else service
    return (image or "").strip() or name


def _parse_time(text: str) -> datetime:
    # Engine times look like 2026-11-27T21:17:29.123456789Z: trim to microseconds.
    text = text.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def container_info(attrs: Mapping[str, Any]) -> ContainerInfo:
    """Build :class:`ContainerInfo` from ``docker inspect`` attributes.

    Raises :class:`ContainerGone` when the container is not running (no pid).
    """
    state = attrs.get("State") or {}
    cid = str(attrs["Id"])
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        raise ContainerGone(cid, f"state {state.get('Status', 'unknown')}")
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    labels: dict[str, str] = dict(config.get("Labels") or {})
    image = str(config.get("Image") or "")
    name = str(attrs.get("Name") or "").lstrip("/")

    cpu_limit: float | None = None
    if host.get("NanoCpus"):
        cpu_limit = int(host["NanoCpus"]) / 1e9
    elif host.get("CpuQuota") and int(host["CpuQuota"]) > 0:
        cpu_limit = int(host["CpuQuota"]) / int(host.get("CpuPeriod") or 100_000)
    ports: list[str] = []
    for container_port, bindings in (host.get("PortBindings") or {}).items():
        for binding in bindings or []:
            if binding.get("HostPort"):
                ports.append(f"{binding['HostPort']}->{container_port}")
    return ContainerInfo(
        id=cid,
        name=name,
        image=image,
        service=service_of(labels, image, name),
        pid=pid,
        started_at=_parse_time(str(state.get("StartedAt") or "1970-01-01T00:00:00Z")),
        image_id=str(attrs.get("Image") or ""),
        compose_project=labels.get(COMPOSE_PROJECT_LABEL),
        compose_service=labels.get(COMPOSE_SERVICE_LABEL),
        labels=labels,
        restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or ""),
        network_mode=str(host.get("NetworkMode") or ""),
        cpu_limit_cores=cpu_limit,
        memory_limit_bytes=int(host["Memory"]) if host.get("Memory") else None,
        memory_reservation_bytes=(
            int(host["MemoryReservation"]) if host.get("MemoryReservation") else None
        ),
        published_host_ports=tuple(ports),
    )


def list_containers(
    client: docker.DockerClient, *, filters: Mapping[str, str | Iterable[str]] | None = None
) -> list[ContainerInfo]:
    """List running containers as :class:`ContainerInfo`, skipping any that vanish meanwhile.

    ``filters`` are the Engine's (``{"label": "app=web"}``); only running containers are listed.
    """
    api = client.api
    flt: dict[str, Any] = dict(filters or {})
    flt["status"] = "running"
    result: list[ContainerInfo] = []
    for summary in api.containers(filters=flt):
        try:
            attrs = api.inspect_container(summary["Id"])
            result.append(container_info(attrs))
        except docker.errors.NotFound:
            continue
        except ContainerGone:
            continue
    return result
