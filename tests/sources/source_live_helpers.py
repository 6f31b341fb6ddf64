"""Helpers shared by the live (real engine) source tests."""

from __future__ import annotations

import time
from typing import Any

from capacity.sources._docker import container_info
from capacity.sources._types import ContainerInfo

MiB = 1024 * 1024


def info_of(client: Any, container: Any) -> ContainerInfo:
    """The ContainerInfo of a running test container."""
    return container_info(client.api.inspect_container(container.id))


def wait_for_log(container: Any, text: str, timeout_s: float = 10.0) -> None:
    """Poll the container's output until ``text`` appears (or fail after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in container.logs().decode(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the output of {container.name} after {timeout_s} s")


def idle_cpu_seconds() -> float:
    """Idle + iowait seconds of the whole host, summed over CPUs (from psutil)."""
    import psutil

    times = psutil.cpu_times()
    return float(times.idle + getattr(times, "iowait", 0.0))


def delta(after: float | None, before: float | None) -> float:
    """``after - before`` of a counter both readings must have (a ``None`` fails the test)."""
    assert after is not None and before is not None, f"counter missing: {before} -> {after}"
    return after - before
