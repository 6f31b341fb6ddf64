"""Machine specs, TOML files, the local host through an injected psutil, and reserves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from capacity._columns import CPU, DISK_READ, DISK_USAGE, DISK_WRITE, MEMORY, NET_RX, NET_TX
from capacity._errors import InvalidParameter
from capacity.solver import Machine, parse_rate, plan
from capacity.solver._testing import constant_profiles


def test_full_spec_with_units() -> None:
    m = Machine.from_spec(
        "cpus=8,memory=32GiB,net=10Gbit,disk_bw=500MB/s,disk=400GB,cpu_saturation=1"
    )
    assert m.capacity == {
        CPU: 8.0,
        MEMORY: 32 * 2**30,
        NET_RX: 1.25e9,
        NET_TX: 1.25e9,
        DISK_READ: 5e8,
        DISK_WRITE: 5e8,
        DISK_USAGE: 4e11,
    }
    assert m.missing == ()


@pytest.mark.parametrize(
    ("text", "bytes_per_s"),
    [
        ("10Gbit", 1.25e9),
        ("1Gbit/s", 1.25e8),
        ("100Mbit", 1.25e7),
        ("500MB/s", 5e8),
        ("100MiB/s", 100 * 2**20),
        ("1000", 1000.0),
        # the network's per-second spellings (final review: refused with a garbled hint)
        ("10Gbps", 1.25e9),
        ("100Mbps", 1.25e7),
        ("500MBps", 5e8),
    ],
)
def test_rates(text: str, bytes_per_s: float) -> None:
    assert parse_rate(text) == pytest.approx(bytes_per_s)


@pytest.mark.parametrize(
    "spec",
    [
        "cpus=8,memory=32GB!",
        "cpus=eight",
        "cpu=8,gpus=1",
        "net=10Gbpx",
        "",
        "cpus",
        "cpus=8,headroom=1.5",
        "cpus=8,cpu_saturation=0",
        "cpus=8,cpu_saturation=1.5",
        "memory=-1GiB",
        # a duplicate or aliased key: the last one silently won (hostile review, issue 11)
        "cpus=8,cpus=4,memory=32GiB",
        "cpus=8,cpu=4,memory=32GiB",
        "cpus=8,net=10Gbit,net_rx=1Gbit",
        "cpus=8,reserve.cpus=1,reserve.cpu=2",
        # bits or bytes unsaid: 10G was 10 GB/s, a 10 Gbit/s NIC planned at 8 times its speed
        "cpus=8,net=10G",
        "cpus=8,net=10Gb",
        "cpus=8,disk_bw=500mb/s",
        "cpus=8,disk_bw=500M",
        "cpus=8,net=1GBPS",
    ],
)
def test_bad_specs_name_the_value(spec: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Machine.from_spec(spec)
    assert "must be" in str(info.value)


@pytest.mark.parametrize("given, binary, decimal", [
    ("32G", "32GiB", "32GB"), ("32g", "32GiB", "32GB"), ("32gb", "32GiB", "32GB"),
    ("512m", "512MiB", "512MB"), ("512Mb", "512MiB", "512MB"), ("2T", "2TiB", "2TB"),
])
def test_a_size_that_does_not_say_binary_or_decimal_is_refused(
        given: str, binary: str, decimal: str) -> None:
    """``memory=32G`` was 32e9 bytes while Compose's ``32g`` (Docker's meaning) is 32 GiB: the
    same text, two sizes 7 % apart. Both spellings are offered."""
    for spec in (f"cpus=8,memory={given}", f"cpus=8,disk={given}", f"cpus=8,host_cost={given}"):
        with pytest.raises(InvalidParameter) as info:
            Machine.from_spec(spec)
        text = str(info.value)
        assert f"give {binary} (binary) or {decimal} (decimal)" in text
        assert "Docker" in text and f"got '{given}'" in text


@pytest.mark.parametrize("given, want", [("32Mib", "32MiB"), ("2Gib", "2GiB")])
def test_a_binary_size_with_a_lower_case_b_is_refused_as_bits(given: str, want: str) -> None:
    # '32Mb' was refused (bits) while '32Mib' was read as MiB (review)
    with pytest.raises(InvalidParameter, match=f"lower-case b is bits.*give {want}"):
        Machine.from_spec(f"cpus=8,memory={given}")


def test_sizes_that_say_it_are_binary_or_decimal_as_written() -> None:
    m = Machine.from_spec("cpus=8,memory=32GiB,disk=400GB,host_cost=4Mi")
    assert m.capacity[MEMORY] == 32 * 2**30 and m.capacity[DISK_USAGE] == 400e9
    assert m.host_cost[MEMORY] == 4 * 2**20
    assert Machine.from_spec("cpus=8,memory=32GB").capacity[MEMORY] == 32e9
    assert Machine.from_spec("cpus=8,memory=1kB").capacity[MEMORY] == 1000


def test_a_compose_size_keeps_dockers_binary_meaning(tmp_path: Path) -> None:
    from capacity.solver import read_compose

    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n  web:\n    image: busybox\n    deploy:\n      resources:\n"
                    "        limits:\n          memory: 1g\n")
    stack = read_compose(path)
    assert 2**30 in [getattr(s, "memory_limit_bytes", None) for s in stack.services.values()]


def test_a_rate_without_bits_or_bytes_suggests_both_spellings() -> None:
    with pytest.raises(InvalidParameter, match=r"such as 1Gbit or 1GB/s"):
        parse_rate("1GBPS")
    with pytest.raises(InvalidParameter, match=r"such as 100Mbit or 100MB/s"):
        parse_rate("100mb")


def test_reserves_and_headroom() -> None:
    m = Machine.from_spec(
        "cpus=8,memory=32GiB,reserve.cpus=0.5,reserve.memory=1GiB,headroom=0.1,cpu_saturation=1"
    )
    assert m.reserved(CPU) == pytest.approx(0.5 + 0.8)
    assert m.reserved(MEMORY) == pytest.approx(2**30 + 0.1 * 32 * 2**30)
    assert m.with_reserve({CPU: 1.0}, headroom=0.0).reserved(CPU) == 1.0


def test_toml(tmp_path: Path) -> None:
    path = tmp_path / "std.toml"
    path.write_text(
        '[machine]\nname = "std"\ncpus = 8\nmemory = "32GiB"\nnet = "10Gbit"\n'
        "headroom = 0.05\n[machine.reserve]\ncpus = 0.5\n"
    )
    m = Machine.from_spec(str(path))
    assert m.name == "std" and m.capacity[NET_TX] == 1.25e9 and m.reserve[CPU] == 0.5
    assert Machine.from_dict(m.to_dict()) == m


class FakePsutil:
    def __init__(self, nics: dict[str, tuple[bool, int]], disk_free: float | None) -> None:
        self.nics, self.disk_free = nics, disk_free

    def cpu_count(self, logical: bool = True) -> int:
        return 16

    def virtual_memory(self) -> SimpleNamespace:
        return SimpleNamespace(total=64 * 2**30)

    def net_if_stats(self) -> dict[str, SimpleNamespace]:
        return {k: SimpleNamespace(isup=up, speed=s) for k, (up, s) in self.nics.items()}

    def disk_usage(self, path: str) -> SimpleNamespace:
        if self.disk_free is None:
            raise FileNotFoundError(path)
        return SimpleNamespace(free=self.disk_free)


def test_local_uses_the_fastest_physical_nic_and_names_what_is_missing() -> None:
    ps = FakePsutil(
        {
            "lo": (True, 0),
            "docker0": (True, 10000),
            "eth0": (True, 1000),
            "eth1": (False, 25000),
            "veth1": (True, 10000),
        },
        disk_free=1e11,
    )
    m = Machine.local(psutil_module=ps, disk_in_use_bytes=1e9, sys_root=None,
                      machine_file=False, measure=False)
    assert m.capacity[CPU] == 16 and m.capacity[MEMORY] == 64 * 2**30
    assert m.capacity[NET_RX] == 1000 * 1e6 / 8
    assert m.capacity[DISK_USAGE] == 1e11 + 1e9
    assert {s.split(":")[0] for s in m.missing} == {DISK_READ, DISK_WRITE}


def test_local_with_speed_zero_nic_names_net_as_missing() -> None:
    m = Machine.local(psutil_module=FakePsutil({"eth0": (True, 0)}, disk_free=None),
                      sys_root=None, machine_file=False, measure=False)
    assert NET_RX not in m.capacity and DISK_USAGE not in m.capacity
    missing = " ".join(m.missing)
    assert "eth0 reports speed 0" in missing and "net=10Gbit" in missing and "give disk=" in missing


def test_measured_reserve_is_host_minus_containers() -> None:
    import pandas as pd

    from capacity.solver import measured_reserve

    times = pd.date_range("2026-01-01", periods=100, freq="1s", tz="UTC")
    host = pd.DataFrame(
        {
            "time": times,
            "host_cpu_cores": 1.5 + 0.01 * (times.second % 10),
            "host_memory_used_bytes": 3e9,
        }
    )
    samples = pd.concat(
        [
            pd.DataFrame({"time": times, "container_id": c, CPU: 0.5, MEMORY: 5e8})
            for c in ("a", "b")
        ]
    )
    reserve = measured_reserve(host, samples, quantile=1.0)
    assert reserve[CPU] == pytest.approx(0.59)
    assert reserve[MEMORY] == pytest.approx(2e9)
    m = Machine.from_spec("cpus=8,memory=32GiB,cpu_saturation=1").with_reserve(reserve)
    assert m.reserved(CPU) == pytest.approx(0.59)


def test_cpu_saturation_keeps_a_tenth_of_the_cpus_back_by_default() -> None:
    """A quota or host filled to 100 % throttles: the accuracy benchmark measured every
    CPU-bound workload one replica over until 10 % of the CPUs were kept back."""
    m = Machine.from_spec("cpus=8,memory=32GiB")
    assert m.cpu_saturation == 0.9
    assert m.reserved(CPU) == pytest.approx(0.8)
    assert m.reserved(MEMORY) == 0.0  # memory has no such margin
    assert Machine.from_spec("cpus=8,cpu_saturation=1").reserved(CPU) == 0.0
    assert Machine.from_dict(m.to_dict()) == m
    # floor(7.2 / 0.5); memory measured too, as it must be for a count on a machine with memory
    assert plan(constant_profiles({CPU: 0.5, MEMORY: 1e6}), m, valid_for_s=None).safe_count == 14
