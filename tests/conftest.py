"""Shared fixtures: a real Docker Engine, a busybox test image built FROM scratch, and
labelled containers that are always removed, pass or fail.

Tests that need the engine carry ``@pytest.mark.docker``. When no engine answers they are
skipped with the reason, unless ``CAPACITY_REQUIRE_DOCKER=1`` (as in ``.ci/run``): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from docker_labels import REQUIRE_DOCKER, SESSION_ID, TEST_LABEL
from hypothesis import settings as hypothesis_settings

# CI is a gate, not a search: there (CI=true, as .ci/run runs) every property test draws the
# same examples each run, so a red run means a change broke something, not that a new random
# draw found an old defect. Local runs keep drawing new examples, which is where those are found.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    hypothesis_settings.load_profile("ci")

TEST_IMAGE = "capacity-test-busybox:latest"

_engine_error: str | None = None
_engine_client: Any = None


def _engine() -> Any:
    """Connect once per session; remember why it failed."""
    global _engine_client, _engine_error
    if _engine_client is None and _engine_error is None:
        from capacity._errors import DockerUnavailable
        from capacity.sources._docker import connect

        try:
            _engine_client = connect(timeout_s=30)
        except DockerUnavailable as exc:
            _engine_error = str(exc)
    return _engine_client


@pytest.fixture(autouse=True)
def _no_cached_machine_file(tmp_path_factory: pytest.TempPathFactory,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``--machine local`` reads a cached machine file (``capacity machine calibrate``/
    ``probe``) when one exists: point it at a path that does not, so a developer's own
    calibration never changes what a test sees. Tests that want a file set their own.
    Without a cached probe, ``--machine local`` probes the disk on first use and writes the
    file: turned off here (``CAPACITY_DISK_PROBE=off``), or every test planning on this host
    would write a probe file and share the result; tests/machine turns it on where shown."""
    missing = tmp_path_factory.getbasetemp() / "no-machine-file" / "machine.toml"
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(missing))
    monkeypatch.setenv("CAPACITY_DISK_PROBE", "off")


@pytest.fixture(autouse=True)
def _docker_marker_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is None:
        return
    if _engine() is None:
        reason = f"needs a Docker Engine: {_engine_error}"
        if REQUIRE_DOCKER:
            pytest.fail(f"CAPACITY_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A connected ``docker.DockerClient`` (use only from tests marked ``docker``)."""
    client = _engine()
    if client is None:
        if REQUIRE_DOCKER:
            pytest.fail(f"CAPACITY_REQUIRE_DOCKER=1 but {_engine_error}", pytrace=False)
        pytest.skip(f"needs a Docker Engine: {_engine_error}")
    return client


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    """Build ``capacity-test-busybox`` FROM scratch with the host's static busybox.

    No registry is reachable, so nothing is pulled; the layer cache makes a rebuild cheap.
    """
    from capacity._busybox import build_busybox_image

    return build_busybox_image(docker_client, TEST_IMAGE, labels={TEST_LABEL: "1"})


def remove_test_containers(client: Any, session_only: bool = True) -> None:
    """Remove every container this test session labelled (or every test container)."""
    label = f"{TEST_LABEL}={SESSION_ID}" if session_only else TEST_LABEL
    for c in client.containers.list(all=True, sparse=True, filters={"label": label}):
        with contextlib.suppress(Exception):  # best effort: it may already be gone
            c.remove(force=True, v=True)


@pytest.fixture(scope="session", autouse=True)
def _remove_leftovers_at_end() -> Iterator[None]:
    yield
    if _engine_client is not None:
        remove_test_containers(_engine_client, session_only=True)


RunContainer = Callable[..., Any]


@pytest.fixture
def run_container(docker_client: Any, busybox_image: str) -> Iterator[RunContainer]:
    """Factory: ``run_container("sh", "-c", "...", cpus=0.5, ...)`` -> running Container.

    Every container carries the ``capacity.test`` label and is removed after the test, pass or
    fail. Keyword arguments go to ``docker_client.containers.run`` (``nano_cpus``,
    ``mem_limit``, ``network``, ``cgroup_parent``, ...); ``cpus=0.5`` is a shorthand.
    """
    started: list[Any] = []

    def run(*command: str, image: str | None = None, **kwargs: Any) -> Any:
        labels = dict(kwargs.pop("labels", {}) or {})
        labels[TEST_LABEL] = SESSION_ID
        cpus = kwargs.pop("cpus", None)
        if cpus is not None:
            kwargs["nano_cpus"] = int(float(cpus) * 1e9)
        container = docker_client.containers.run(
            image or busybox_image,
            list(command) if command else None,
            detach=True,
            labels=labels,
            **kwargs,
        )
        started.append(container)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            container.reload()
            if container.status == "running":
                break
            if container.status in ("exited", "dead"):
                break
            time.sleep(0.05)
        return container

    try:
        yield run
    finally:
        for c in started:
            with contextlib.suppress(Exception):  # already removed by the test
                c.remove(force=True, v=True)
