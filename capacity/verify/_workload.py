"""What ``capacity verify`` runs: a workload (image and command) and a set of its replicas.

:class:`Workload` is the container spec of one service; :class:`Replicas` starts and stops
labelled copies of it (in a sandbox, or unconstrained for the profile collection) and always
removes them on exit.
"""

from __future__ import annotations

import contextlib
import shlex
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .._errors import CapacityError, InvalidParameter
from ..sources._types import COMPOSE_SERVICE_LABEL

__all__ = ["VERIFY_LABEL", "ContainerState", "Replicas", "Workload"]

#: every container verify starts carries this label (value: the run id)
VERIFY_LABEL = "capacity.verify"


@dataclass(frozen=True)
class Workload:
    """One service's container spec.

    Attributes
    ----------
    name : str
        The service name; replicas carry it as their Compose service label, so profiles are
        grouped by it (two workloads of one image stay apart).
    image : str
    command : tuple of str, optional
        ``None``: the image's own command.
    environment : Mapping[str, str]
    tmpfs : Mapping[str, str]
        Mount point -> options (``{"/hold": "size=64m"}``); tmpfs pages count as memory.
    cpu_limit_cores : float, optional
        ``docker run --cpus`` of each replica (a declared limit: the ``limits`` method uses it).
    memory_limit_bytes : int, optional
        ``docker run -m`` of each replica.
    description : str
        The demand pattern, for reports.
    """

    name: str
    image: str
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    cpu_limit_cores: float | None = None
    memory_limit_bytes: int | None = None
    description: str = ""

    @classmethod
    def from_command(cls, image: str, command: str | Sequence[str] | None, *,
                     name: str | None = None, **kwargs: Any) -> Workload:
        """A workload from an image and a shell-quoted command string (or argv)."""
        argv = tuple(shlex.split(command)) if isinstance(command, str) else (
            tuple(command) if command is not None else None)
        return cls(name=name or image.rsplit("/", 1)[-1].split(":")[0], image=image,
                   command=argv, **kwargs)

    @classmethod
    def from_compose(cls, path: str | Path, service: str) -> Workload:
        """Read ``service`` of a Compose file: image, command, environment, tmpfs, limits.

        Limits come from ``deploy.resources.limits`` (or the v2 keys ``cpus``/``mem_limit``).
        ``build:`` is not supported: build the image first and name it in ``image:``.
        """
        from ..solver._compose import compose_service, read_document

        data, ck, _ = read_document(Path(path))
        if not isinstance(data, Mapping):
            raise ck.fail("", "a Compose file: a mapping with a services: key", data)
        services = ck.mapping(data, "services", "services")
        if service not in services:
            raise InvalidParameter("compose_service", "verify",
                                   f"one of the services {sorted(services)}", service)
        where = f"services.{service}"
        svc = ck.as_mapping(services[service] or {}, where)
        declared = compose_service(ck, service, svc)  # limits and ports, every field checked
        image = svc.get("image")
        if not isinstance(image, str) or not image.strip():
            raise ck.fail(f"{where}.image", "an image name (build: is not supported: build it "
                          "first and name it in image:)", image)
        command = svc.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if command is not None and (not isinstance(command, list) or not all(
                isinstance(c, str | int | float) and not isinstance(c, bool) for c in command)):
            raise ck.fail(f"{where}.command", "a string or a list of strings", command)
        env = svc.get("environment") or {}
        if isinstance(env, list):
            if not all(isinstance(item, str) for item in env):
                raise ck.fail(f"{where}.environment", "a mapping or a list of NAME=VALUE",
                              env)
            env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        if not isinstance(env, Mapping):
            raise ck.fail(f"{where}.environment", "a mapping or a list of NAME=VALUE", env)
        tmpfs_spec = svc.get("tmpfs") or {}
        if isinstance(tmpfs_spec, str):
            tmpfs_spec = [tmpfs_spec]
        if not isinstance(tmpfs_spec, list | Mapping):
            raise ck.fail(f"{where}.tmpfs", "a path or a list of paths", tmpfs_spec)
        tmpfs = {}
        if isinstance(tmpfs_spec, list):
            for item in tmpfs_spec:
                mount, _, opts = str(item).partition(":")
                tmpfs[mount] = opts
        memory = declared.memory_limit_bytes
        return cls(
            name=service, image=image,
            command=tuple(str(c) for c in command) if command else None,
            environment={str(k): str(v) for k, v in env.items()}, tmpfs=tmpfs,
            cpu_limit_cores=declared.cpu_limit_cores,
            memory_limit_bytes=int(memory) if memory else None,
        )

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``client.containers.create`` (without labels and parent)."""
        kw: dict[str, Any] = {}
        if self.environment:
            kw["environment"] = dict(self.environment)
        if self.tmpfs:
            kw["tmpfs"] = dict(self.tmpfs)
        if self.cpu_limit_cores:
            kw["nano_cpus"] = int(self.cpu_limit_cores * 1e9)
        if self.memory_limit_bytes:
            kw["mem_limit"] = int(self.memory_limit_bytes)
        return kw

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "image": self.image,
            "command": list(self.command) if self.command is not None else None,
            "environment": dict(self.environment), "tmpfs": dict(self.tmpfs),
            "cpu_limit_cores": self.cpu_limit_cores,
            "memory_limit_bytes": self.memory_limit_bytes, "description": self.description,
        }


@dataclass(frozen=True)
class ContainerState:
    """What became of one replica: still running, or how it ended."""

    id: str
    running: bool
    oom_killed: bool
    exit_code: int | None
    error: str = ""


class Replicas:
    """Labelled copies of one or more workloads, started and removed on demand.

    Parameters
    ----------
    client : docker.DockerClient
    cgroup_parent : str, optional
        ``--cgroup-parent`` of every replica (the sandbox); None: the engine's default.
    labels : Mapping[str, str]
        Extra labels (tests add their own, so leftovers can be swept).
    run_id : str, optional
        Value of the ``capacity.verify`` label; default a new random id.

    Notes
    -----
    A replica that fails to *start* (``runc init`` OOM-killed near the memory limit: "cannot
    start a stopped process") is kept in the list as failed, not raised: it is a measurement.
    Every container is removed on :meth:`remove_all` and on exit of the ``with`` block.
    """

    def __init__(self, client: Any, *, cgroup_parent: str | None = None,
                 labels: Mapping[str, str] | None = None, run_id: str | None = None) -> None:
        self.client = client
        self.cgroup_parent = cgroup_parent
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.labels = {**dict(labels or {}), VERIFY_LABEL: self.run_id}
        self.containers: list[tuple[Workload, Any, str]] = []  # (workload, container, error)

    @property
    def filters(self) -> dict[str, list[str]]:
        """Engine filters selecting these replicas (for the collector)."""
        return {"label": [f"{VERIFY_LABEL}={self.run_id}"]}

    def count(self, workload: Workload | None = None) -> int:
        return sum(1 for w, _, _ in self.containers if workload is None or w == workload)

    def start(self, workload: Workload, n: int = 1) -> list[str]:
        """Start ``n`` more replicas of ``workload``; return the start errors (empty: all ran)."""
        errors: list[str] = []
        for _ in range(n):
            labels = {**self.labels, COMPOSE_SERVICE_LABEL: workload.name}
            kwargs = workload.run_kwargs()
            if self.cgroup_parent:
                kwargs["cgroup_parent"] = self.cgroup_parent
            try:
                container = self.client.containers.create(
                    workload.image, list(workload.command) if workload.command else None,
                    labels=labels, **kwargs)
            except Exception as exc:  # image missing, bad spec: not a capacity measurement
                raise CapacityError(
                    f"cannot create a replica of {workload.name} ({workload.image}): {exc}"
                ) from exc
            error = ""
            try:
                container.start()
            except Exception as exc:  # the engine's APIError: the replica failed to start
                error = str(getattr(exc, "explanation", None) or exc).splitlines()[0][:300]
                errors.append(error)
            self.containers.append((workload, container, error))
        return errors

    def scale(self, workload: Workload, n: int) -> list[str]:
        """Start or remove replicas of ``workload`` until ``n`` exist."""
        have = self.count(workload)
        if n > have:
            return self.start(workload, n - have)
        for item in [c for c in self.containers if c[0] == workload][n:]:
            self._remove(item[1])
            self.containers.remove(item)
        return []

    def states(self) -> list[ContainerState]:
        """Reload every replica: running, OOM-killed, exited (and its exit code)."""
        out: list[ContainerState] = []
        for _, container, error in self.containers:
            try:
                container.reload()
                state = container.attrs.get("State", {})
                out.append(ContainerState(
                    id=container.id, running=bool(state.get("Running")),
                    oom_killed=bool(state.get("OOMKilled")),
                    exit_code=None if state.get("Running") else state.get("ExitCode"),
                    error=error or str(state.get("Error") or "")))
            except Exception as exc:  # removed behind our back: a failed replica
                out.append(ContainerState(id=container.id, running=False, oom_killed=False,
                                          exit_code=None, error=f"gone: {exc}"))
        return out

    def ips(self) -> list[str]:
        """IP addresses of the running replicas on their networks (for probes)."""
        found: list[str] = []
        for _, container, _ in self.containers:
            with contextlib.suppress(Exception):
                container.reload()
                for net in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}
                            ).values():
                    if net.get("IPAddress"):
                        found.append(net["IPAddress"])
        return found

    def wait_running(self, timeout_s: float = 10.0) -> None:
        """Wait until every started replica is running (or has ended)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = self.states()
            if all(s.running or s.exit_code is not None or s.error for s in states):
                return
            time.sleep(0.1)

    def _remove(self, container: Any) -> None:
        with contextlib.suppress(Exception):  # already gone
            container.remove(force=True, v=True)

    def remove_all(self) -> None:
        """Remove every replica (and any straggler carrying this run's label)."""
        for _, container, _ in self.containers:
            self._remove(container)
        self.containers = []
        with contextlib.suppress(Exception):
            for c in self.client.containers.list(all=True, sparse=True, filters=self.filters):
                self._remove(c)

    def __iter__(self) -> Iterator[Any]:
        return (c for _, c, _ in self.containers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove_all()


def sweep_label(client: Any, label: str, value: str) -> None:
    """Remove every container carrying ``label=value`` (best effort)."""
    for c in client.containers.list(all=True, sparse=True,  # sparse: no inspect each
                                    filters={"label": f"{label}={value}"}):
        with contextlib.suppress(Exception):
            c.remove(force=True, v=True)
