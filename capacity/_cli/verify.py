"""``capacity verify``: run replicas for real in a sandbox sized like the target; measured vs
predicted.

Exit status: 0 when the default method's prediction is at or below the measured capacity and
within 10 % of it; 1 (warning) when it is more than 10 % below (safe, but wasteful); 2
(critical) when it is above (the plan would OOM or throttle); 3 when the run failed.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..reporting._status import CRITICAL, OK, WARNING
from ._common import DURATION, settings_options, stderr

#: a prediction more than this far below the measured capacity is a warning (exit 1)
UNDER_TOLERANCE = 0.10


@click.command()
@settings_options("epsilon")
@click.option("--image", default=None, help="Image of the service (with --command).")
@click.option("--command", "command", default=None,
              help="Command of each replica, shell-quoted (default: the image's).")
@click.option("--compose-service", default=None, metavar="FILE:SERVICE",
              help="Take image, command, tmpfs and limits from a Compose file's service.")
@click.option("--machine", "machine_spec", required=True,
              help="Target machine to emulate, e.g. cpus=1,memory=256MiB.")
@click.option("--hold", type=DURATION, default="20s", show_default=True,
              help="How long each replica count is held.")
@click.option("--warmup", type=DURATION, default="2s", show_default=True,
              help="Settling time before each hold.")
@click.option("--probe-url", default=None,
              help="SLO probe: GET this URL ({ip} = each replica's address).")
@click.option("--probe-cmd", default=None,
              help="SLO probe: run this shell command (CAPACITY_VERIFY_IPS in its env).")
@click.option("--probe-max-latency", type=DURATION, default="1s", show_default=True,
              help="Slowest passing probe.")
@click.option("--max-throttled", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Largest throttled fraction of the sandbox's CFS periods that passes.")
@click.option("--max-replicas", type=click.IntRange(1), default=64, show_default=True,
              help="The ramp stops here.")
@click.option("--profile-duration", type=DURATION, default="20s", show_default=True,
              help="Collection behind the prediction (replicas unconstrained).")
@click.option("--profile-replicas", type=click.IntRange(1), default=2, show_default=True,
              help="Replicas sampled for the prediction.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Extra label on every container started (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(
    image: str | None, command: str | None, compose_service: str | None, machine_spec: str,
    hold: float, warmup: float, probe_url: str | None, probe_cmd: str | None,
    probe_max_latency: float, max_throttled: float, max_replicas: int, settings: Any,
    profile_duration: float, profile_replicas: int, labels: tuple[str, ...], as_json: bool,
) -> int:
    """Measure how many replicas really fit a sandbox sized like --machine, and compare.

    The replica count is ramped (doubling, then bisection) in a parent cgroup with the
    target's CPU quota and memory limit; a count passes with no OOM kill, every replica
    running, the throttled fraction within --max-throttled and the probe passing.
    """
    from ..solver._machine import Machine
    from ..sources._docker import connect
    from ..verify import CommandProbe, HttpProbe, Workload
    from ..verify import verify as run_verify

    if (image is None) == (compose_service is None):
        raise click.UsageError("give --image (and --command) or --compose-service FILE:SERVICE")
    if probe_url and probe_cmd:
        raise click.UsageError("give at most one of --probe-url and --probe-cmd")
    if compose_service is not None:
        path, sep, service = compose_service.rpartition(":")
        if not sep or not path or not service:
            raise click.BadParameter("use FILE:SERVICE", param_hint="--compose-service")
        workload = Workload.from_compose(path, service)
    else:
        assert image is not None  # checked above; narrows the type
        workload = Workload.from_command(image, command)
    probe: Any = None
    if probe_url:
        probe = HttpProbe(probe_url, max_latency_s=probe_max_latency)
    elif probe_cmd:
        probe = CommandProbe(probe_cmd, max_latency_s=probe_max_latency)
    machine = Machine.from_spec(machine_spec)
    extra: dict[str, str] = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--label")
        extra[key] = value

    def progress(step: Any) -> None:
        verdict = "pass" if step.passed else f"FAIL ({step.reason})"
        stderr(f"capacity: verify: {step.count} replica(s): throttled "
               f"{step.throttled_fraction:.3f}, memory {step.memory_usage_bytes / 2**20:.0f} MiB"
               f", OOM kills {step.oom_kills}: {verdict}"
               + (" [host contended]" if step.contended else ""))

    stderr(f"capacity: verify: profiling {profile_replicas} replica(s) for "
           f"{profile_duration:g} s, then ramping in the sandbox")
    result = run_verify(
        connect(), workload, machine, hold_s=hold, warmup_s=warmup,
        max_throttled=max_throttled, probe=probe, max_count=max_replicas, epsilon=settings.epsilon,
        predict_replicas=profile_replicas, predict_duration_s=profile_duration,
        on_step=progress, labels=extra,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print(result)
    return _status(result)


def _status(result: Any) -> int:
    p = result.prediction
    n = p.safe_count if p is not None else None
    if n is None:
        return WARNING
    if n > result.measured_count:
        return CRITICAL
    if result.measured_count and (result.measured_count - n) / result.measured_count > \
            UNDER_TOLERANCE:
        return WARNING
    return OK


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, markup=False,
                      width=None if Console().is_terminal else 160)
    sb = result.sandbox
    measured = f"{result.measured_count}" + ("" if result.measured_exact else " (at least)")
    console.print(f"sandbox {sb['cpus']:g} CPUs / {sb['memory_bytes'] / 2**20:.0f} MiB "
                  f"(cgroup v{sb['cgroup_version']}): measured capacity {measured}"
                  + (f"; {result.measured_count + 1} failed: {result.failure}"
                     if result.measured_exact else ""))
    p = result.prediction
    if p is None:
        return
    table = Table(title=f"predicted vs measured (epsilon {p.epsilon:g}, memory "
                        f"{p.incompressible_epsilon:g})")
    for col in ("method", "predicted", "measured", "error", "binding", *p.claimed_risk):
        table.add_column(col, justify="left" if col in ("method", "binding") else "right")
    comparison = result.comparison()
    for m, mp in p.methods.items():
        c = comparison[m]
        err = "-" if c["relative_error"] is None else f"{c['relative_error']:+.0%}"
        per = [str(mp.per_resource.get(r, "-")) for r in p.claimed_risk]
        name = m + (" (default)" if m == p.default_method else "")
        table.add_row(name, "-" if mp.safe_count is None else str(mp.safe_count), measured,
                      err, mp.binding_resource or "-", *per)
    console.print(table)
    used = ", ".join(f"{r} by {m}" for r, m in p.plan_methods.items())
    console.print(f"plan ({p.default_method}{'; ' + used if used else ''}): "
                  f"{'-' if p.safe_count is None else p.safe_count}")
    console.print("claimed P(overload) at the default count: " + ", ".join(
        f"{r} {v:.2g}" if v is not None else f"{r} -" for r, v in p.claimed_risk.items()))
