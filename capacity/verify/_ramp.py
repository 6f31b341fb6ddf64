"""Measure a sandbox's true capacity: ramp the replica count, hold each count, judge it.

The ramp doubles the count (1, 2, 4, ...) until a count fails or ``max_count`` passes, then
bisects between the largest count that passed and the smallest that failed. A count passes
when, over its warm-up and hold, no process in the sandbox was OOM-killed, every replica
started and is still running, the sandbox's throttled fraction stayed at or below
``max_throttled``, and every probe run passed. The measured capacity is the largest count that
passed.

Going up from a count that passed, replicas are added to the running ones (they passed, so
their state is sound); after a failure (or going down) every replica is removed and the count
is started afresh. A failure ends the hold at once (an OOM kill is not undone by waiting).

Traps
-----
- A hold of H seconds only sees overloads that happen within H seconds: a count whose
  P(overload) per second is 0.001 survives a 20 s hold 98 % of the time. The measured
  capacity is "survived the hold", an upper bound of the count that is safe at a small
  epsilon; for fluctuating demand a prediction below it is expected, not an error. Hold for
  about ``10 / epsilon`` sampling intervals to test a risk claim at ``epsilon``.
- A CPU quota filled to exactly 100 % (replicas at their own ``--cpus`` summing to the
  sandbox's CPUs) throttles a large share of periods, though no replica wants more than it
  gets: the replicas' CFS periods are not aligned with the sandbox's.
- Other processes on the host can starve the sandbox below its quota: it then cannot
  throttle, and a CPU count passes that should not. Such steps are flagged ``contended``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._columns import CPU, MEMORY
from .._errors import InvalidParameter
from .._settings import DEFAULTS
from ..solver._machine import Machine
from ._probe import Probe
from ._result import Prediction, Step, VerifyResult
from ._sandbox import SANDBOX_LABEL, Sandbox, SandboxCounters
from ._workload import Replicas, Workload, sweep_label

__all__ = ["DEFAULT_MAX_THROTTLED", "measure", "verify"]

#: default limit of the sandbox's throttled fraction (throttled CFS periods / periods)
DEFAULT_MAX_THROTTLED = 0.2
#: cores of slack before other processes on the host are said to starve the sandbox
CONTENTION_SLACK = 0.1
_HOST_CPUS = float(os.cpu_count() or 1)
#: a passing hold is repeated while contended if the sandbox used at least this share of
#: its CPUs (CPU matters to the verdict); at most ``contention_retries`` times
CPU_BOUND_SHARE = 0.5
#: how often a hold polls for failures and runs the probe, seconds
POLL_S = 1.0


def _host_busy_s() -> float:
    """CPU seconds the whole host has been busy (all CPUs), from psutil."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _as_ratio(workloads: Sequence[Workload], ratio: Mapping[str, int] | None) -> dict[str, int]:
    names = [w.name for w in workloads]
    if len(set(names)) != len(names):
        raise InvalidParameter("workloads", "verify", "workloads with distinct names", names)
    out = dict(ratio or dict.fromkeys(names, 1))
    if set(out) != set(names) or any(int(v) < 1 for v in out.values()):
        raise InvalidParameter("ratio", "verify", f"a count >= 1 for each of {names}", out)
    return {k: int(v) for k, v in out.items()}


@dataclass
class _Hold:
    """What one hold of a count saw (mutable while it runs)."""

    start: SandboxCounters
    end: SandboxCounters
    failure: tuple[str, str] | None
    held: float = 0.0
    throttled: float = 0.0
    cpu: float = 0.0
    other: float = 0.0
    contended: bool = False
    probe_runs: int = 0
    probe_failures: int = 0
    probe_max: float | None = None


class _Ramp:
    """One sandbox, its replicas, and the steps held so far."""

    def __init__(self, sandbox: Sandbox, replicas: Replicas, workloads: Sequence[Workload],
                 ratio: Mapping[str, int], *, hold_s: float, warmup_s: float,
                 max_throttled: float, probe: Probe | None,
                 on_step: Callable[[Step], None] | None,
                 sleep: Callable[[float], None], clock: Callable[[], float],
                 contention_retries: int = 2) -> None:
        self.contention_retries = contention_retries
        self.sandbox = sandbox
        self.replicas = replicas
        self.workloads = list(workloads)
        self.ratio = dict(ratio)
        self.hold_s = hold_s
        self.warmup_s = warmup_s
        self.max_throttled = max_throttled
        self.probe = probe
        self.on_step = on_step
        self.sleep = sleep
        self.clock = clock
        self.running = 0  # count (units of the ratio) currently up and sound
        self.steps: list[Step] = []

    def _reset(self) -> None:
        self.replicas.remove_all()
        self.running = 0
        # wait until the removed containers' charges leave the sandbox
        deadline = self.clock() + 10.0
        while self.clock() < deadline:
            try:
                if self.sandbox.read().memory_usage_bytes < 4 * 2**20:
                    break
            except OSError:
                break
            self.sleep(0.1)

    def step(self, count: int) -> Step:
        if count < self.running or self.running == 0 or (
                self.steps and not self.steps[-1].passed):
            self._reset()
        base = self.sandbox.read()
        start_errors: list[str] = []
        for w in self.workloads:
            start_errors += self.replicas.scale(w, count * self.ratio[w.name])
        self.running = count
        self.replicas.wait_running()
        counts = {w.name: count * self.ratio[w.name] for w in self.workloads}
        failure = self._failure(base, start_errors)
        if failure is None:
            self.sleep(self.warmup_s)
            failure = self._failure(base, [])
        hold = self._hold(base, failure)
        for _ in range(self.contention_retries):
            # a CPU verdict from a starved sandbox is void: hold again while it is contended
            if not (hold.failure is None and hold.contended
                    and hold.cpu >= CPU_BOUND_SHARE * self.sandbox.cpus):
                break
            hold = self._hold(base, None)
        failure, held = hold.failure, hold.held
        end, hold_base = hold.end, hold.start
        states = self.replicas.states()
        step = Step(
            count=count, counts=counts, passed=failure is None,
            reason="" if failure is None else failure[0],
            failed_resource=None if failure is None else failure[1],
            oom_kills=max(end.memory_oom_kills_total - base.memory_oom_kills_total,
                          sum(s.oom_killed for s in states)),
            failed_replicas=sum(not s.running for s in states),
            memory_failcnt=end.memory_failcnt_total - base.memory_failcnt_total,
            memory_usage_bytes=end.memory_usage_bytes, memory_peak_bytes=end.memory_peak_bytes,
            throttled_fraction=hold.throttled, cpu_cores=hold.cpu, held_s=held,
            cpu_throttled_seconds=end.cpu_throttled_seconds_total
            - hold_base.cpu_throttled_seconds_total,
            probe_runs=hold.probe_runs, probe_failures=hold.probe_failures,
            probe_latency_max_s=hold.probe_max, host_other_cores=hold.other,
            contended=hold.contended,
        )
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step

    def _hold(self, base: SandboxCounters, failure: tuple[str, str] | None) -> _Hold:
        """Hold the current count for ``hold_s`` (ends early on a failure) and judge it."""
        first = self.sandbox.read()
        hold = _Hold(start=first, end=first, failure=failure)
        host_base = _host_busy_s()
        t0 = self.clock()
        while hold.failure is None and hold.held < self.hold_s:
            self.sleep(min(POLL_S, self.hold_s - hold.held))
            if self.probe is not None:
                r = self.probe(self.replicas.ips())
                hold.probe_runs += 1
                hold.probe_max = max(hold.probe_max or 0.0, r.latency_s)
                if not r.ok:
                    hold.probe_failures += 1
                    hold.failure = (f"probe failed: {r.detail}", "probe")
            hold.failure = hold.failure or self._failure(base, [])
            hold.held = self.clock() - t0
        hold.end = self.sandbox.read()
        if hold.held > 0:
            hold.throttled = hold.end.throttled_fraction_since(hold.start)
            hold.cpu = (hold.end.cpu_usage_seconds_total
                        - hold.start.cpu_usage_seconds_total) / hold.held
            hold.other = max((_host_busy_s() - host_base) / hold.held - hold.cpu, 0.0)
            hold.contended = hold.other > _HOST_CPUS - self.sandbox.cpus + CONTENTION_SLACK
        if hold.failure is None and hold.throttled > self.max_throttled:
            hold.failure = (f"throttled fraction {hold.throttled:.3f} > "
                            f"{self.max_throttled:g}", CPU)
        return hold

    def _failure(self, base: SandboxCounters, start_errors: list[str]) -> tuple[str, str] | None:
        if start_errors:
            return (f"a replica failed to start: {start_errors[0]}", MEMORY)
        now = self.sandbox.read()
        if now.memory_oom_kills_total > base.memory_oom_kills_total:
            return (f"{now.memory_oom_kills_total - base.memory_oom_kills_total} OOM kill(s) "
                    "in the sandbox", MEMORY)
        for s in self.replicas.states():
            if s.oom_killed:
                return (f"replica {s.id[:12]} was OOM-killed", MEMORY)
            if not s.running:
                # exit 137 without OOMKilled is still a kill; any exit is a failed replica
                return (f"replica {s.id[:12]} is not running (exit {s.exit_code}"
                        f"{': ' + s.error if s.error else ''})",
                        MEMORY if s.exit_code == 137 or s.error else "replica")
        return None


def measure(
    client: Any,
    workloads: Sequence[Workload],
    sandbox: Sandbox,
    ratio: Mapping[str, int] | None = None,
    *,
    hold_s: float = 20.0,
    warmup_s: float = 2.0,
    max_throttled: float = DEFAULT_MAX_THROTTLED,
    probe: Probe | None = None,
    max_count: int = 64,
    start: int = 1,
    labels: Mapping[str, str] | None = None,
    on_step: Callable[[Step], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    contention_retries: int = 2,
) -> tuple[int, bool, str, list[Step]]:
    """Ramp replicas in a created ``sandbox``; return (measured, exact, failure, steps).

    ``exact`` is False when ``max_count`` passed (the capacity is at least that). A passing
    hold in which other processes starved the sandbox while CPU mattered is held again, at
    most ``contention_retries`` times (the step stays flagged ``contended`` if it never
    cleared).
    Replicas are always removed before this returns (also on an exception).
    """
    ratio = _as_ratio(workloads, ratio)
    if not 0 <= max_throttled <= 1:
        raise InvalidParameter("max_throttled", "verify", "in [0, 1]", max_throttled)
    if not (hold_s >= 0 and math.isfinite(hold_s)):
        raise InvalidParameter("hold_s", "verify", "a duration >= 0 seconds", hold_s)
    if not (isinstance(max_count, int) and max_count >= 1 and 1 <= start <= max_count):
        raise InvalidParameter("max_count", "verify", "an int >= start >= 1", max_count)
    all_labels = {**dict(labels or {}), SANDBOX_LABEL: sandbox.name}
    with Replicas(client, cgroup_parent=sandbox.cgroup_parent, labels=all_labels) as reps:
        ramp = _Ramp(sandbox, reps, workloads, ratio, hold_s=hold_s, warmup_s=warmup_s,
                     max_throttled=max_throttled, probe=probe, on_step=on_step,
                     sleep=sleep, clock=clock, contention_retries=contention_retries)
        good, bad = 0, None
        n = start
        while bad is None:
            if ramp.step(n).passed:
                good = n
                if n >= max_count:
                    break
                n = min(n * 2, max_count)
            else:
                bad = n
        while bad is not None and bad - good > 1:
            mid = (good + bad) // 2
            if ramp.step(mid).passed:
                good = mid
            else:
                bad = mid
        failure = next((s.reason for s in reversed(ramp.steps) if s.count == bad), "")
        return good, bad is not None, failure, ramp.steps


def _by_resource(steps: Sequence[Step], measured: int, exact: bool) -> dict[str, dict[str, Any]]:
    """Per resource, the largest count that did not fail on it (exact only for the binding one)."""
    out: dict[str, dict[str, Any]] = {}
    for r in (CPU, MEMORY):
        failed = [s.count for s in steps if not s.passed and s.failed_resource == r]
        out[r] = {"count": measured, "exact": bool(failed) and exact and
                  min(failed) == measured + 1}
    return out


def verify(
    client: Any,
    workloads: Workload | Sequence[Workload],
    machine: Machine,
    ratio: Mapping[str, int] | None = None,
    *,
    hold_s: float = 20.0,
    warmup_s: float = 2.0,
    max_throttled: float = DEFAULT_MAX_THROTTLED,
    probe: Probe | None = None,
    max_count: int = 64,
    epsilon: float = DEFAULTS.epsilon,
    prediction: Prediction | None = None,
    predict_replicas: int = 2,
    predict_duration_s: float = 20.0,
    predict_interval_s: float = 0.5,
    cgroup_root: Any = None,
    labels: Mapping[str, str] | None = None,
    on_step: Callable[[Step], None] | None = None,
    host_cpus: float | None = None,
    host_memory_bytes: int | None = None,
) -> VerifyResult:
    """Predict the count for ``machine`` and measure it in a sandbox sized like it.

    Parameters
    ----------
    client : docker.DockerClient
        A local engine using the ``cgroupfs`` cgroup driver.
    workloads : Workload or sequence of Workload
        One service, or a mix (then ``ratio`` gives replicas per unit of the count).
    machine : Machine
        The target: its CPU and memory capacity size the sandbox (other resources are not
        emulated). Reserves and headroom are planned, not emulated.
    hold_s, warmup_s : float
        Seconds each count is held (after ``warmup_s`` seconds of settling).
    max_throttled : float
        Largest throttled fraction of the sandbox (throttled CFS periods / periods) that passes.
    probe : Probe, optional
        A user check run every second of the hold (see :mod:`capacity.verify._probe`).
    max_count : int
        The ramp stops here (the result says "at least").
    epsilon : float
        Risk the prediction is made at (memory at ``epsilon * 0.1``, as the solver does).
    prediction : Prediction, optional
        Skip the profile collection and compare with this one. ``None``: collect
        ``predict_replicas`` replicas per service for ``predict_duration_s`` seconds.
    cgroup_root : Path, optional
        Where cgroupfs is mounted (default ``/sys/fs/cgroup``).
    labels : Mapping[str, str]
        Extra labels on every container (tests sweep by them).

    Returns
    -------
    VerifyResult

    Raises
    ------
    SandboxError
        The target is larger than this host can emulate, the engine uses the systemd cgroup
        driver, or the cgroup cannot be made.
    """
    from pathlib import Path

    from ._predict import predict as run_predict
    from ._sandbox import SandboxError

    wl = [workloads] if isinstance(workloads, Workload) else list(workloads)
    ratio = _as_ratio(wl, ratio)
    cpus = machine.capacity.get(CPU)
    memory = machine.capacity.get(MEMORY)
    if cpus is None or memory is None:
        raise InvalidParameter("machine", "verify", "a spec with cpus= and memory=",
                               dict(machine.capacity))
    driver = str((client.info() or {}).get("CgroupDriver", "cgroupfs"))
    if driver != "cgroupfs":
        raise SandboxError(
            f"the engine uses the {driver!r} cgroup driver; verify places replicas with "
            "--cgroup-parent=/<sandbox> and needs the cgroupfs driver "
            "(dockerd --exec-opt native.cgroupdriver=cgroupfs)"
        )
    sandbox = Sandbox(float(cpus), int(memory), cgroup_root=Path(cgroup_root or "/sys/fs/cgroup"),
                      host_cpus=host_cpus, host_memory_bytes=host_memory_bytes,
                      sweep=lambda name: sweep_label(client, SANDBOX_LABEL, name))
    sandbox.check()  # refuse before spending time on a profile
    t0 = time.monotonic()
    if prediction is None:
        prediction, _ = run_predict(client, wl, machine, ratio, epsilon=epsilon,
                                    replicas=predict_replicas, duration_s=predict_duration_s,
                                    interval_s=predict_interval_s, labels=labels)
    with sandbox:
        measured, exact, failure, steps = measure(
            client, wl, sandbox, ratio, hold_s=hold_s, warmup_s=warmup_s,
            max_throttled=max_throttled, probe=probe, max_count=max_count, labels=labels,
            on_step=on_step)
        version = sandbox.version
    return VerifyResult(
        workloads=tuple(w.to_dict() for w in wl), ratio=ratio,
        sandbox={"cpus": float(cpus), "memory_bytes": int(memory), "cgroup_version": version,
                 "name": sandbox.name},
        limits={"max_throttled": max_throttled, "hold_s": hold_s, "warmup_s": warmup_s,
                "probe": getattr(probe, "description", None), "max_count": max_count},
        steps=tuple(steps), measured_count=measured, measured_exact=exact, failure=failure,
        measured_by_resource=_by_resource(steps, measured, exact), prediction=prediction,
        elapsed_s=time.monotonic() - t0,
    )
