"""The four capacities found without flags (issue 12): the first-use disk probe and its cache,
the network named once where unknown, the engine's limits in every local plan, the space of
each filesystem, and one headroom for the headline and the status line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sources.source_live_helpers import wait_for_log

from capacity._columns import DISK_READ, DISK_WRITE, MEMORY, NET_RX, NET_TX
from capacity._errors import CapacityError, InvalidParameter
from capacity._pipeline import fit_profiles, load_demo, plan_all, resolve_machine, running_counts
from capacity.solver._machine import Machine, machine_lines
from capacity.solver._machinefile import read_machine_file
from capacity.sources._probe import DiskProbe, nic_speeds

MIB = 2**20
EXAMPLE_MACHINE = Path(__file__).parents[2] / "docs" / "example-machine.toml"


def _fake_probe(path: str) -> DiskProbe:
    return DiskProbe(path=path, sequential_write_bytes_per_second=4e8,
                     sequential_read_bytes_per_second=5e8, random_write_bytes_per_second=2e7,
                     random_read_bytes_per_second=3e7, size_bytes=16 * MIB, block_bytes=MIB,
                     random_block_bytes=4096, duration_s=0.5,
                     measured_at="2026-11-30T22:00:00+00:00")


def _probe_leftovers(root: str) -> set[str]:
    return {n for n in os.listdir(root) if n.startswith(".capacity-probe-")}


@pytest.mark.docker
def test_first_use_probe_measures_caches_and_a_later_run_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real probe, through the path ``capacity report`` takes: once, then from the file."""
    path = tmp_path / "state" / "machine.toml"
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(path))
    monkeypatch.setenv("CAPACITY_DISK_PROBE", "auto")
    first = resolve_machine("local")
    assert path.is_file()  # written on first use
    probe = read_machine_file(path)["disk_probe"]
    assert first.capacity[DISK_WRITE] == probe["sequential_write_bytes_per_second"] > 0
    assert first.capacity[DISK_READ] == probe["sequential_read_bytes_per_second"] > 0
    assert not any(m.startswith((DISK_READ, DISK_WRITE)) for m in first.missing)
    said = [n for n in machine_lines(first) if n.startswith("disk bandwidth")]
    assert said and "first use: measured now" in said[0] and probe["measured_at"] in said[0]
    assert not _probe_leftovers(probe["path"])  # its temporary file is gone
    written = path.read_bytes()
    second = resolve_machine("local")  # a later (scheduled) run
    assert path.read_bytes() == written  # not probed again
    assert second.capacity[DISK_WRITE] == first.capacity[DISK_WRITE]
    said = [n for n in machine_lines(second) if n.startswith("disk bandwidth")]
    assert said and "first use" not in said[0] and probe["measured_at"] in said[0]


def test_first_use_probe_keeps_what_the_machine_file_holds(tmp_path: Path) -> None:
    from test_machine_file import GOOD

    from capacity.solver._machinefile import write_machine_file

    path = write_machine_file(tmp_path / "m.toml", GOOD)
    calls: list[str] = []
    m = Machine.local(machine_file=path, measure=False, docker_root=tmp_path,
                      disk_probe=lambda root: calls.append(root) or _fake_probe(root))
    assert calls == [str(tmp_path)] and m.capacity[DISK_WRITE] == 4e8
    doc = read_machine_file(path)
    assert doc["host_cost"] == GOOD["host_cost"]  # the calibration is kept
    assert doc["disk_probe"]["sequential_read_bytes_per_second"] == 5e8
    Machine.local(machine_file=path, measure=False, docker_root=tmp_path,
                  disk_probe=lambda root: calls.append(root) or _fake_probe(root))
    assert len(calls) == 1  # cached: never twice


def test_a_failed_probe_names_what_is_unknown_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(root: str) -> DiskProbe:
        raise CapacityError(f"disk probe refused: {root} has 200 MiB free, the probe needs "
                            "1,280 MiB")

    path = tmp_path / "m.toml"
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(path))  # the default file: created
    m = Machine.local(measure=False, docker_root=tmp_path, disk_probe=refused)
    assert DISK_READ not in m.capacity and DISK_WRITE not in m.capacity
    why = [s for s in m.missing if s.startswith((DISK_READ, DISK_WRITE))]
    assert len(why) == 2 and all("first-use probe" in s and "200 MiB free" in s
                                 and "disk_bw=" in s for s in why)
    assert not path.exists()  # nothing cached: the next run tries again


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Any:
    """A read-only bind mount of an empty directory (needs root and mount(8))."""
    import shutil
    import subprocess

    source, target = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) to make a read-only filesystem")
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)],
                            capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.decode().strip()}")
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_the_real_probe_on_a_read_only_filesystem_is_named_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, read_only_dir: Path
) -> None:
    monkeypatch.setenv("CAPACITY_DISK_PROBE", "auto")
    path = tmp_path / "m.toml"
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(path))
    m = Machine.local(measure=False, docker_root=read_only_dir)
    why = [s for s in m.missing if s.startswith((DISK_READ, DISK_WRITE))]
    assert len(why) == 2
    assert all("first-use probe" in s and "Read-only file system" in s for s in why)
    assert not path.exists() and list(read_only_dir.iterdir()) == []


def test_a_machine_file_that_cannot_be_written_still_plans_with_the_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(blocker / "m.toml"))
    m = Machine.local(measure=False, docker_root=tmp_path, disk_probe=_fake_probe)
    assert m.capacity[DISK_WRITE] == 4e8
    note = next(n for n in m.notes if n.startswith("disk bandwidth"))
    assert "not cached, the next run probes again" in note
    assert "capacity machine probe --file" in note and "CAPACITY_DISK_PROBE=off" in note
    assert sum("not cached" in line for line in machine_lines(m)) == 1  # said once


def test_an_explicit_machine_file_that_does_not_exist_is_an_error_not_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = tmp_path / "machne.toml"
    calls: list[str] = []
    with pytest.raises(InvalidParameter) as err:
        Machine.local(machine_file=typo, measure=False, docker_root=tmp_path,
                      disk_probe=lambda root: calls.append(root) or _fake_probe(root))
    said = str(err.value)
    assert str(typo) in said and "does not exist" in said
    assert f"capacity machine probe --file {typo}" in said and "calibrate" in said
    assert not typo.exists() and calls == []  # not created, not probed
    default = tmp_path / "state" / "machine.toml"
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(default))
    Machine.local(measure=False, docker_root=tmp_path, disk_probe=_fake_probe)
    assert default.is_file()  # the default file is created on first use


def test_the_probe_is_off_where_the_environment_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPACITY_DISK_PROBE", "off")  # as in every other test
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(tmp_path / "m.toml"))
    m = Machine.local(measure=False, docker_root=tmp_path)
    assert any("CAPACITY_DISK_PROBE=off" in s for s in m.missing)
    monkeypatch.setenv("CAPACITY_DISK_PROBE", "sometimes")
    with pytest.raises(InvalidParameter, match="CAPACITY_DISK_PROBE"):
        Machine.local(measure=False, docker_root=tmp_path)


def test_local_with_given_keys_sets_what_the_host_cannot_report(tmp_path: Path) -> None:
    from capacity.solver._machine import local_spec_keys

    assert local_spec_keys(None) == {} and local_spec_keys("local") == {}
    assert local_spec_keys("cpus=2") is None
    assert local_spec_keys("local,net=10Gbit") == {"net": "10Gbit"}
    with pytest.raises(InvalidParameter, match="bogus"):
        local_spec_keys("local,bogus=1")
    base = Machine("local", {MEMORY: 8.0 * 2**30}, missing=(
        f"{NET_RX}: NIC eth0 reports no speed; give --machine local,net=10Gbit",
        f"{NET_TX}: NIC eth0 reports no speed; give --machine local,net=10Gbit"))
    m = base.with_given({"net": "10Gbit"})
    assert m.capacity[NET_RX] == m.capacity[NET_TX] == 1.25e9
    assert m.missing == () and m.capacity[MEMORY] == 8.0 * 2**30
    assert m.name == "local,net=10Gbit"


def _demo_plans(machine: Machine) -> tuple[Any, Any]:
    data = load_demo()
    profiles = fit_profiles(data)
    return plan_all(profiles, machine, running=running_counts(data.samples)), profiles


def test_the_headline_and_the_status_line_give_one_headroom() -> None:
    from capacity.reporting._host import host_answer
    from capacity.reporting._status import status

    for machine in (Machine.from_toml(EXAMPLE_MACHINE),
                    Machine.from_spec("cpus=2,memory=24GiB,host_cost=4MiB"),
                    Machine.from_spec("cpus=8,memory=2GiB,host_cost=4MiB,host_cost.cpus=0.01")):
        plans, profiles = _demo_plans(machine)
        st = status(plans)
        answer = host_answer(plans, profiles, st)
        bind = next(h for h in answer.resources if h.resource == answer.binding)
        assert st.least is not None and st.least.basis == answer.binding
        assert bind.headroom == pytest.approx(st.least.share, abs=1e-12), machine.name


def test_unknown_capacities_are_rows_and_one_line_in_the_host_section() -> None:
    from capacity.reporting._host import host_answer
    from capacity.reporting._status import status

    plans, profiles = _demo_plans(Machine.from_toml(EXAMPLE_MACHINE))
    answer = host_answer(plans, profiles, status(plans))
    labels = [label for label, _ in answer.unknown]
    assert "network in and out" in labels  # the example's NIC reports no speed
    said = [line for line in answer.lines if line.startswith("Not planned, capacity unknown")]
    assert len(said) == 1 and said[0].count("give net=") == 1  # once, with the flag


@pytest.mark.docker
def test_report_on_this_host_plans_or_names_all_four_capacities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``capacity report --machine local`` without flags: CPU, memory, disk bandwidth (the
    cached probe) and disk space planned; the network planned where sysfs gives a speed, else
    a row 'unknown' and one line naming why and the flag; the engine's address limits in."""
    from capacity.cli import main
    from capacity.solver._machinefile import cache_disk_probe

    path = tmp_path / "machine.toml"
    cache_disk_probe(path, _fake_probe("/var/lib/docker"))  # the probe is shown above
    monkeypatch.setenv("CAPACITY_MACHINE_FILE", str(path))
    code = main(["report", "--demo", "--machine", "local", "--out", str(tmp_path),
                 "--name", "r", "--quiet"])
    assert code in (0, 1, 2)
    text = (tmp_path / "r" / "report.md").read_text()
    host = text[text.index("## The host"):text.index("## Services")]
    for row in ("| CPU", "| memory", "| disk read", "| disk write", "| disk space",
                "| addresses in bridge"):
        assert row in host, row
    assert "disk bandwidth: probed on /var/lib/docker at 2026-11-30T22:00:00+00:00" in text
    speeds = [n for n in nic_speeds() if n.bits_per_second]
    if speeds:
        assert "| network in" in host and "network" not in host.split("Not planned")[-1]
    else:
        assert "| network in and out | unknown |" in host
        assert host.count("give --machine local,net=10Gbit") == 1


@pytest.mark.docker
def test_plan_and_report_build_the_local_machine_with_the_engine(docker_client: Any) -> None:
    m = resolve_machine("local")
    assert any(lim.resource == "addresses_count[bridge]" for lim in m.limits)
    assert Machine.from_spec("local").limits  # what 'capacity plan --machine local' uses


@pytest.mark.docker
def test_a_filesystem_holding_volumes_is_its_own_resource_and_binds(
    docker_client: Any, run_container: Any
) -> None:
    """A 64 MiB tmpfs volume (a filesystem apart from the data root) holding 8 MiB of one
    replica's data allows 8 replicas: planned as disk_usage_bytes[<its mount>], binding."""
    from docker_labels import SESSION_ID, TEST_LABEL

    from capacity.solver._plan import plan
    from capacity.solver._testing import constant_profiles

    name = f"capacity-test-tmpfs-{SESSION_ID}-{os.getpid()}"
    volume = docker_client.volumes.create(
        name=name, driver="local", labels={TEST_LABEL: SESSION_ID},
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=64m"})
    try:
        holder = run_container(
            "sh", "-c", "dd if=/dev/zero of=/data/blob bs=1M count=8 && echo ready && sleep 600",
            labels={"com.docker.compose.service": "vol-svc"},
            volumes={name: {"bind": "/data", "mode": "rw"}})
        # dd writes 8 MiB: read the host once it is all there (a bounded wait on what the
        # container says; 50 back-to-back readings were the bound before, however fast)
        wait_for_log(holder, "ready", timeout_s=60)
        m = Machine.local(machine_file=False, client=docker_client)
        fs = [lim for lim in m.limits if lim.resource.startswith("disk_usage_bytes[")]
        assert len(fs) == 1 and fs[0].capacity == 64 * MIB
        assert fs[0].demand_of("vol-svc") == 8 * MIB and fs[0].demand_of("other") == 0
        assert any(line.startswith("disk space: volumes on") for line in machine_lines(m))
        # the limits read from this host, on a machine of memory only (this host's busy CPUs
        # would need a CPU profile, beside the point here)
        machine = Machine("m", {MEMORY: 16.0 * 2**30}, limits=m.limits)
        p = plan(constant_profiles({MEMORY: 1 * MIB}, service="vol-svc"), machine, running=1)
        assert p.binding_resource == fs[0].resource
        assert p.safe_count == 8  # 64 MiB / 8 MiB, its own running replica included
    finally:
        for c in docker_client.api.containers(all=True, filters={"volume": name}):
            docker_client.api.remove_container(c["Id"], force=True)
        volume.remove(force=True)
