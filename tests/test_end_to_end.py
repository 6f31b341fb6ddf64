"""End to end on real containers: collect -> samples -> fit -> plan -> report.

Two CPU burners under ``--cpus 0.25`` and two holders of 48 MiB (a tmpfs file, charged to the
container's memory cgroup) are sampled for about 10 s; the measured numbers and the plan are
checked against what the workloads are known to use and against the machine's real capacity.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
from sources.source_live_helpers import idle_cpu_seconds, wait_for_log

from capacity._columns import CPU, MEMORY
from capacity._pipeline import collect_samples, fit_profiles, plan_all, running_counts
from capacity.reporting._render import write_report
from capacity.solver._drift import UNMEASURED_DRIFT_FACTOR
from capacity.solver._machine import Machine
from capacity.solver._plan import plan

BURNER_CPUS = 0.25
#: a busy loop under --cpus 0.25 averages its quota within this over ~10 s (the quota is
#: granted per 100 ms period: a window's edges move the mean by at most 25 ms / 10 s, 0.003
#: cores; the rest leaves room for when each reading is taken on a busy host)
CPU_TOLERANCE_CORES = 0.05
#: below this many idle cores during the collection, the shared 2-core host starved the
#: burners (as in tests/sources/test_cgroup_v1_live.py): only the quota's upper bound holds
HOST_IDLE_MIN_CORES = 0.2
#: bound on the wait for the holders to hold their memory (reached in well under a second)
READY_TIMEOUT_S = 60.0
HOLD_MIB = 48
MEMORY_TOLERANCE = 0.20
COLLECT_S = 10.0
INTERVAL_S = 1.0


@pytest.fixture
def workload(run_container):
    tag = uuid.uuid4().hex[:8]
    labels = {"capacity.e2e": tag, "com.docker.compose.project": f"e2e{tag}"}
    for _ in range(2):
        run_container(
            "sh", "-c", "while :; do :; done",
            cpus=BURNER_CPUS, labels={**labels, "com.docker.compose.service": "burner"},
        )
    holders = [
        run_container(
            "sh", "-c",
            f"dd if=/dev/zero of=/hold/data bs=1M count={HOLD_MIB} 2>/dev/null; echo ready;"
            " sleep 3600",
            tmpfs={"/hold": "size=64m"},
            labels={**labels, "com.docker.compose.service": "holder"},
        )
        for _ in range(2)
    ]
    # the collection must not begin while dd still writes (on a loaded host a round or two
    # could see a holder below its 48 MiB, and its mean would measure the start, not the hold)
    for holder in holders:
        wait_for_log(holder, "ready", timeout_s=READY_TIMEOUT_S)
    return tag


@pytest.mark.docker
@pytest.mark.slow
def test_collect_fit_plan_on_real_containers(docker_client, workload, tmp_path: Path) -> None:
    idle_from, t_from = idle_cpu_seconds(), time.monotonic()
    data = collect_samples(
        docker_client,
        interval_s=INTERVAL_S,
        duration_s=COLLECT_S,
        filters={"label": [f"capacity.e2e={workload}"]},
    )
    idle_cores = (idle_cpu_seconds() - idle_from) / (time.monotonic() - t_from)
    samples = data.samples
    services = sorted(samples["service"].unique())
    burner = next(s for s in services if s.endswith("/burner"))
    holder = next(s for s in services if s.endswith("/holder"))
    assert samples["container_id"].nunique() == 4

    # Measured: each burner averages its quota, each holder holds its 48 MiB. A burner never
    # gets more than its quota; it gets all of it unless other work left the host no idle CPU
    # (contention, not a defect: then only the upper bound is asserted, and said).
    per_container = samples.groupby(["service", "container_id"])[[CPU, MEMORY]].mean()
    for cpu in per_container.loc[burner, CPU]:
        assert cpu <= BURNER_CPUS + CPU_TOLERANCE_CORES
        if idle_cores >= HOST_IDLE_MIN_CORES:
            assert cpu == pytest.approx(BURNER_CPUS, abs=CPU_TOLERANCE_CORES)
        else:
            print(f"host saturated ({idle_cores:.2f} idle cores): burner at {cpu:.3f} cores, "
                  "only its quota's upper bound asserted")
    for mem in per_container.loc[holder, MEMORY]:
        assert mem == pytest.approx(HOLD_MIB * 2**20, rel=MEMORY_TOLERANCE)

    # Profiles: p95 CPU and max memory of one replica, pooled over replicas.
    profiles = fit_profiles(samples)
    burner_cpu = samples.loc[samples["service"] == burner, CPU].to_numpy(dtype=float)
    holder_mem = samples.loc[samples["service"] == holder, MEMORY].to_numpy(dtype=float)
    assert profiles[burner].resources[CPU].demand == pytest.approx(np.quantile(burner_cpu, 0.95))
    assert profiles[holder].resources[MEMORY].demand == pytest.approx(holder_mem.max())

    # Plan on this machine's real capacity: the quantile method is
    # floor((capacity - reserve) / demand), and the CPU reserve is the 10 % saturation margin.
    # capacities only: the host cost, limits and baseline reserve are tested in tests/machine/
    machine = Machine.local(machine_file=False, measure=False)
    cpus = psutil.cpu_count(logical=True)
    total = psutil.virtual_memory().total
    assert machine.capacity[CPU] == cpus and machine.capacity[MEMORY] == total
    assert machine.reserved(CPU) == pytest.approx(0.1 * cpus)
    # A recording of seconds has not seen the daily cycle: the plan takes the stated x1.10
    # allowance (issue 13) and says what it cost; without it, the count is the floor above.
    p = plan(profiles, machine, service=burner, method="quantile")
    cpu_demand = profiles[burner].resources[CPU].demand
    widened = p.meta["widening"][CPU]
    assert widened["allowance"] == UNMEASURED_DRIFT_FACTOR
    assert widened["count_without"] == math.floor(0.9 * cpus / cpu_demand)
    assert p.per_resource[CPU].safe_count == widened["count"] <= widened["count_without"]
    assert p.binding_resource == CPU
    assert any(a.startswith(f"{CPU}: widened for the daily cycle") for a in p.assumptions)
    q = plan(profiles, machine, service=holder, method="quantile", valid_for_s=None)
    assert q.per_resource[MEMORY].safe_count == math.floor(
        total / profiles[holder].resources[MEMORY].demand
    )

    # The report folder holds the three artefacts.
    running = running_counts(samples)
    assert running == {burner: 2, holder: 2}
    plans = plan_all(profiles, machine, running=running)
    paths = write_report(plans, profiles, out_dir=tmp_path, source=data.source)
    for name in ("plan.json", "report.md", "demand_vs_count.svg"):
        assert (paths.folder / name).stat().st_size > 0
