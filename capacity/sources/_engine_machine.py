"""The size of the machine behind a Docker Engine, local or remote, from ``docker info``.

``Machine.from_spec("engine")`` uses it, so ``DOCKER_HOST=ssh://user@host-b capacity plan
--machine engine ...`` plans for host B without logging in to it. Only what the engine
reports is given: ``NCPU`` (logical CPUs) and ``MemTotal`` (bytes); NIC speed, disk bandwidth
and disk space are not in ``docker info`` and stay unknown unless added to the spec
(``engine,net=10Gbit``).

Trust boundary: the Docker API is root-equivalent on the engine's host. This reads
``/info`` only; still, give ``capacity`` a socket or TLS identity you would give a root shell.
"""

from __future__ import annotations

from typing import Any

from .._errors import DockerUnavailable

__all__ = ["engine_capacity"]


def engine_capacity(client: Any = None) -> tuple[str, dict[str, str]]:
    """``(engine url, {"cpus": NCPU, "memory": "<MemTotal>B"})`` from ``docker info``.

    ``client`` defaults to :func:`capacity.sources.connect` (``$DOCKER_HOST``, else the
    local socket). Raises :class:`DockerUnavailable` when no engine answers, or when it does
    not report a CPU count or memory size.
    """
    from ._docker import _describe_url, connect

    if client is None:
        client, url = connect(), _describe_url(None)  # named as the user gave it
    else:
        url = str(getattr(getattr(client, "api", None), "base_url", "") or "")
        if not url or url.startswith("http+docker://"):  # the SDK's name for a unix socket
            url = _describe_url(None)
    info = client.info()
    cpus, memory = info.get("NCPU"), info.get("MemTotal")
    if not (isinstance(cpus, int) and cpus > 0 and isinstance(memory, int) and memory > 0):
        raise DockerUnavailable(
            f"the Docker Engine at {url} reports no usable size (NCPU={cpus!r}, "
            f"MemTotal={memory!r}): give the machine as a spec, e.g. cpus=8,memory=32GiB",
            base_url=url,
        )
    return url, {"cpus": str(cpus), "memory": f"{memory}B"}
