"""The versioned machine file: round trip, the Machine it gives, and bad files (one clear
line naming the field and the value, exit 3 from the CLI, nothing half-written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capacity._columns import CPU, DISK_READ, DISK_WRITE, MEMORY, NET_RX
from capacity._errors import InvalidParameter
from capacity.cli import main
from capacity.solver._machine import Machine
from capacity.solver._machinefile import (
    MACHINE_SCHEMA_VERSION,
    dumps_toml,
    read_machine_file,
    write_machine_file,
)

GOOD: dict[str, Any] = {
    "schema_version": MACHINE_SCHEMA_VERSION,
    "kind": "capacity.machine",
    "name": "std-2x24",
    "written_at": "2026-11-30T22:00:00+00:00",
    "capacity": {"cpu_cores": 2.0, "memory_bytes": 24.0 * 2**30,
                 "disk_read_bytes_per_second": 5e8, "disk_write_bytes_per_second": 4e8,
                 "measured_at": "2026-11-30T22:00:00+00:00"},
    "host_cost": {"memory_bytes": 3.8 * 2**20, "cpu_cores": 0.0, "method": "calibrated",
                  "measured_at": "2026-11-30T22:00:00+00:00", "containers": 50,
                  "shim_bytes": 2.6 * 2**20, "kernel_bytes": 1.2 * 2**20},
    "limits": [{"resource": "addresses_count[small]", "capacity": 253.0, "used": 3.0,
                "per_replica": 1.0, "per_service": {"web": 1.0}}],
}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "machine.toml"
    p.write_text(text)
    return p


def test_round_trip_gives_the_machine_with_host_cost_and_limits(tmp_path: Path) -> None:
    path = write_machine_file(tmp_path / "m.toml", GOOD)
    assert read_machine_file(path)["host_cost"]["memory_bytes"] == GOOD["host_cost"][
        "memory_bytes"]
    m = Machine.from_spec(str(path))
    assert m.name == "std-2x24" and m.capacity[CPU] == 2.0
    assert m.capacity[DISK_READ] == 5e8 and m.capacity[DISK_WRITE] == 4e8
    assert m.host_cost[MEMORY] == pytest.approx(3.8 * 2**20)
    assert [lim.resource for lim in m.limits] == ["addresses_count[small]"]
    # what the file does not hold is named, not guessed
    assert any(s.startswith(NET_RX + ":") for s in m.missing)
    assert Machine.from_dict(m.to_dict()) == m


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(schema_version=MACHINE_SCHEMA_VERSION + 1), "schema_version"),
        (lambda d: d.update(schema_version="one"), "schema_version"),
        (lambda d: d.update(kind="capacity.profiles"), "kind"),
        (lambda d: d["capacity"].update(memory_bytes="lots"), "capacity.memory_bytes"),
        (lambda d: d["capacity"].update(memory_bytes=-1.0), "capacity.memory_bytes"),
        (lambda d: d["capacity"].update(cpu_cores=0), "capacity.cpu_cores"),
        (lambda d: d["capacity"].update(cpus=8), "capacity.cpus"),
        (lambda d: d["host_cost"].pop("memory_bytes"), "host_cost.memory_bytes"),
        (lambda d: d["host_cost"].update(method="guessed"), "host_cost.method"),
        (lambda d: d["host_cost"].update(measured_at="yesterday"), "host_cost.measured_at"),
        (lambda d: d["limits"][0].update(capacity="many"), "limits[0].capacity"),
        (lambda d: d.update(headroom=1.5), "headroom"),
        (lambda d: d.update(extra=1), "extra"),
    ],
)
def test_a_bad_field_is_named_with_its_value(tmp_path: Path, edit: Any, field: str) -> None:
    import copy

    data = copy.deepcopy(GOOD)
    edit(data)
    path = _write(tmp_path, dumps_toml(data))
    with pytest.raises(InvalidParameter) as info:
        Machine.from_spec(str(path))
    assert f"'{field}'" in str(info.value) and "\n" not in str(info.value)


def test_newer_schema_says_upgrade(tmp_path: Path) -> None:
    path = _write(tmp_path, dumps_toml({**GOOD, "schema_version": 99}))
    with pytest.raises(InvalidParameter, match="newer capacity"):
        read_machine_file(path)


@pytest.mark.parametrize("text", [
    "schema_version = 1\nkind = \"capacity.machine\"\n[capacity\n",  # not TOML
    "\x00\xff\xfe",  # not text
])
def test_unreadable_file_is_one_line(tmp_path: Path, text: str) -> None:
    p = tmp_path / "machine.toml"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(InvalidParameter):
        Machine.from_spec(str(p))


def test_cli_exits_3_with_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, dumps_toml({**GOOD, "capacity": {"memory_bytes": "lots"}}))
    code = main(["machine", "show", "--file", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and err[0].startswith("capacity: error:")
    assert "capacity.memory_bytes" in err[0] and "lots" in err[0]


def test_write_is_atomic_a_bad_document_leaves_the_old_file(tmp_path: Path) -> None:
    path = write_machine_file(tmp_path / "m.toml", GOOD)
    before = path.read_bytes()
    with pytest.raises(InvalidParameter):
        write_machine_file(path, {**GOOD, "capacity": {"memory_bytes": float("nan")}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.toml"]


def test_plain_spec_toml_still_reads(tmp_path: Path) -> None:
    path = _write(tmp_path, '[machine]\ncpus = 4\nmemory = "8GiB"\nhost_cost = "4MiB"\n')
    m = Machine.from_spec(str(path))
    assert m.capacity[CPU] == 4 and m.host_cost[MEMORY] == 4 * 2**20


def test_a_cached_probe_carries_its_own_time_not_the_older_capacity_time(
    tmp_path: Path
) -> None:
    """An older file (capacity.measured_at of its CPU/memory figures) plus a new probe: the
    disk figures carry the probe's time; the other figures keep theirs."""
    from capacity.solver._machinefile import cache_disk_probe
    from capacity.sources._probe import DiskProbe

    old = dict(GOOD)
    old["capacity"] = {"cpu_cores": 2.0, "measured_at": "2026-01-01T00:00:00+00:00"}
    path = write_machine_file(tmp_path / "m.toml", old)  # an older file: no disk time
    probe = DiskProbe(path=str(tmp_path), sequential_write_bytes_per_second=4e8,
                      sequential_read_bytes_per_second=5e8, random_write_bytes_per_second=2e7,
                      random_read_bytes_per_second=3e7, size_bytes=2**24, block_bytes=2**20,
                      random_block_bytes=4096, duration_s=0.5,
                      measured_at="2026-11-30T22:00:00+00:00")
    cache_disk_probe(path, probe)
    cap = read_machine_file(path)["capacity"]
    assert cap["disk_write_bytes_per_second"] == 4e8
    assert cap["disk_bandwidth_measured_at"] == "2026-11-30T22:00:00+00:00"
    assert cap["measured_at"] == "2026-01-01T00:00:00+00:00"  # the CPU figure's time
    fresh = cache_disk_probe(tmp_path / "new.toml", probe)
    assert read_machine_file(fresh)["capacity"]["disk_bandwidth_measured_at"] == (
        "2026-11-30T22:00:00+00:00")
