"""``verify`` on real containers in a real sandbox cgroup (cgroup v1 here), small and fast.

Every container carries the session's ``capacity.test`` label and is removed pass or fail;
every test checks that no sandbox cgroup and no container of its run is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_labels import SESSION_ID, TEST_LABEL

from capacity.solver._machine import Machine
from capacity.sources._cgroup import cgroup_version
from capacity.verify import (
    SANDBOX_LABEL,
    CommandProbe,
    Sandbox,
    Workload,
    leftover_sandboxes,
    measure,
    verify,
)

pytestmark = pytest.mark.docker

MiB = 2**20
CGROUP_ROOT = Path("/sys/fs/cgroup")
LABELS = {TEST_LABEL: SESSION_ID}
#: seconds each count is held in these tests (the CLI default is 20 s)
HOLD_S = 2.0
WARMUP_S = 1.0
#: a step's replicas got less than they wanted by more than this (cores), on a host whose
#: CPUs were busy within this of all of them: starved by other processes, no CPU verdict
STARVED_SLACK_CORES = 0.05
HOST_CPUS = float(os.cpu_count() or 1)


def _mine(sandbox_names: set[str]) -> list[Path]:
    return [p for p in leftover_sandboxes(CGROUP_ROOT) if p.name in sandbox_names]


@pytest.fixture
def cgroup_v1_writable() -> None:
    if cgroup_version(CGROUP_ROOT) is None or not os_access(CGROUP_ROOT / "memory"):
        pytest.skip("needs a writable cgroupfs at /sys/fs/cgroup (run as root)")


def os_access(path: Path) -> bool:
    import os

    return path.exists() and os.access(path, os.W_OK)


@pytest.fixture
def no_leftovers(docker_client: Any) -> Iterator[set[str]]:
    """Yield a set to record sandbox names in; afterwards assert nothing of them is left."""
    names: set[str] = set()
    yield names
    left = _mine(names)
    for name in names:
        containers = docker_client.containers.list(
            all=True, filters={"label": f"{SANDBOX_LABEL}={name}"})
        assert not containers, f"containers left in sandbox {name}: {containers}"
    assert not left, f"sandbox cgroups left behind: {left}"


def memory_holder(image: str, mib: int) -> Workload:
    """Holds ``mib`` MiB in a tmpfs (charged to the container, not reclaimable without swap)."""
    return Workload.from_command(
        image,
        ["sh", "-c", f"dd if=/dev/zero of=/hold/x bs=1M count={mib} 2>/dev/null; "
                     "exec sleep 600"],
        name=f"hold{mib}", tmpfs={"/hold": f"size={2 * mib}m"},
    )


def test_memory_holders_measured_3_and_predicted_3(
    docker_client: Any, busybox_image: str, cgroup_v1_writable: None, no_leftovers: set[str]
) -> None:
    """32 MiB holders in a 100 MiB sandbox: 3 fit, the 4th OOMs or fails to start."""
    result = verify(
        docker_client, memory_holder(busybox_image, 32),
        Machine.from_spec("cpus=1,memory=100MiB"), hold_s=HOLD_S, warmup_s=WARMUP_S,
        predict_duration_s=8.0, predict_interval_s=0.25, labels=LABELS,
    )
    no_leftovers.add(result.sandbox["name"])
    assert result.measured_count == 3
    assert result.measured_exact
    assert [s.count for s in result.steps] == [1, 2, 4, 3]
    failed = result.steps[2]
    assert not failed.passed and failed.failed_resource == "memory_working_set_bytes"
    assert result.measured_by_resource["memory_working_set_bytes"]["exact"]
    p = result.prediction
    assert p is not None
    for method in ("peak", "quantile", "gaussian", "empirical"):
        assert p.methods[method].safe_count == 3, method
        assert p.methods[method].binding_resource == "memory_working_set_bytes"
    assert p.methods["limits"].safe_count is None  # no -m declared
    d = result.to_dict()
    assert d["comparison"]["empirical"] == {
        "predicted": 3, "measured": 3, "relative_error": 0.0, "over": False,
        "measured_is_lower_bound": False}
    assert d["kind"] == "capacity.verify"


def test_cpu_burners_throttle_limit(
    docker_client: Any, busybox_image: str, cgroup_v1_writable: None, no_leftovers: set[str]
) -> None:
    """Busy loops capped at 0.2 core each in a 0.5-core sandbox: 2 fit, the 3rd throttles it."""
    burner = Workload.from_command(busybox_image, ["sh", "-c", "while :; do :; done"],
                                   name="burn", cpu_limit_cores=0.2)
    with Sandbox(0.5, 256 * MiB) as sandbox:
        no_leftovers.add(sandbox.name)
        measured, exact, failure, steps = measure(
            docker_client, [burner], sandbox, hold_s=HOLD_S, warmup_s=WARMUP_S,
            max_throttled=0.2, labels=LABELS)
    # A starved step's CPU figures are void: past 2 its pass is the wrong verdict (burners
    # that get less than the quota are never throttled), at 2 its cpu_cores (asserted below)
    # reads the starvation. Starved: verify's own flag, or the step's replicas got less than
    # they wanted and the quota allowed while the host had no idle CPU left. The flag alone
    # missed it on this host under load (~10): 4 replicas passed at 0.43 cores, 10 % of
    # periods throttled, others 1.57 cores (under its 1.6) -> "8 fit". A defect that lets
    # replicas past the quota still fails: they would read above it, not below.
    def starved(s: Any) -> bool:
        wanted = min(s.count * 0.2, sandbox.cpus)
        busy = s.cpu_cores + s.host_other_cores
        return s.contended or (s.cpu_cores < wanted - STARVED_SLACK_CORES
                               and busy >= HOST_CPUS - STARVED_SLACK_CORES)

    if any(starved(s) for s in steps if s.passed and s.count >= 2):
        pytest.skip("other processes starved the sandbox (host contended): no CPU verdict: "
                    + "; ".join(f"{s.count}: {s.cpu_cores:.2f} cores, others "
                                f"{s.host_other_cores:.2f}" for s in steps))
    assert (measured, exact) == (2, True)
    assert "throttled fraction" in failure
    by_count = {s.count: s for s in steps}
    assert by_count[2].throttled_fraction < 0.2
    assert by_count[3].throttled_fraction > 0.2  # 0.6 cores wanted under a 0.5 quota
    assert by_count[3].failed_resource == "cpu_cores"
    assert by_count[2].cpu_cores == pytest.approx(0.4, abs=0.08)


def test_probe_failure_bounds_the_count_and_interrupt_cleans_up(
    docker_client: Any, busybox_image: str, cgroup_v1_writable: None, no_leftovers: set[str]
) -> None:
    """A probe that fails from 2 replicas on gives 1; Ctrl-C in the middle leaves nothing."""
    idle = Workload.from_command(busybox_image, ["sleep", "600"], name="idle")
    probe = CommandProbe('test "$CAPACITY_VERIFY_REPLICAS" -lt 2')
    with Sandbox(1, 128 * MiB) as sandbox:
        no_leftovers.add(sandbox.name)
        measured, exact, failure, _ = measure(
            docker_client, [idle], sandbox, hold_s=1.0, warmup_s=0.2, probe=probe,
            labels=LABELS)
    assert (measured, exact) == (1, True)
    assert failure.startswith("probe failed")

    def interrupt(step: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), Sandbox(1, 128 * MiB) as sandbox:
        no_leftovers.add(sandbox.name)
        measure(docker_client, [idle], sandbox, hold_s=0.2, warmup_s=0.0, labels=LABELS,
                on_step=interrupt)


COMPOSE = """
services:
  web:
    image: {image}
    command: >-
      sh -c "dd if=/dev/zero of=/hold/x bs=1M count=24 2>/dev/null;
      mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"
    tmpfs: ["/hold:size=48m"]
"""


def test_cli_verify_compose_service_with_http_probe(
    docker_client: Any, busybox_image: str, cgroup_v1_writable: None, no_leftovers: set[str],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """24 MiB web servers in a 64 MiB sandbox, probed over HTTP: 2 fit; JSON and exit 0."""
    import json

    from capacity.cli import main

    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE.format(image=busybox_image))
    code = main(["verify", "--compose-service", f"{compose}:web",
                 "--machine", "cpus=1,memory=64MiB", "--hold", "1s", "--warmup", "0.5s",
                 "--probe-url", "http://{ip}:8080/", "--profile-duration", "6s",
                 "--profile-replicas", "1", "--label", f"{TEST_LABEL}={SESSION_ID}", "--json"])
    out = json.loads(capsys.readouterr().out)
    no_leftovers.add(out["sandbox"]["name"])
    assert out["measured_count"] == 2
    assert out["steps"][0]["probe_runs"] >= 1 and out["steps"][0]["probe_failures"] == 0
    assert out["limits"]["probe"].startswith("GET http://{ip}:8080/")
    assert out["prediction"]["methods"]["peak"]["safe_count"] == 2
    assert code == (2 if out["prediction"]["safe_count"] > 2 else 0 if
                    out["prediction"]["safe_count"] == 2 else 1)
