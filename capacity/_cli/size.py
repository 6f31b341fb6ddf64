"""``capacity size``: profiles + target machine + replicas -> hosts needed (N + k spare).

With ``--report`` (or ``--out``/``--name``) it also writes a report folder
``<out>/<host>-<UTC time>-size/`` (fleet.json, profiles.json, report.md, report.html, charts).

Exit status: 0 with an answer; 1 when the answer is undefined because CPU or memory is
unknown while it could bind (a machine spec without ``cpus``/``memory``, a service never
measured on it) or a service's history is refused (hours of the day not seen on most days:
the hours and ``--accept-unseen-hours`` are named, as ``capacity plan`` does); 2 when the
replicas cannot be placed at all (one replica of each service together does not fit on the
machine); 3 on bad input or a report folder that cannot be written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .._units import resource_name
from ..reporting._status import CRITICAL, OK, WARNING
from ._common import check_report_name, settings_options, stderr
from ._prometheus import PrometheusSource, prometheus_options
from .plan import RISK_SETTINGS, _kwargs, load_inputs, parse_counts, parse_ports, risk_options


@click.command()
@risk_options
@settings_options(*RISK_SETTINGS, "horizon_s", "valid_for_s", "accept_unseen_hours")
@click.option("--replicas", "replicas_opt", multiple=True, required=True,
              help="COUNT (with --service or one profiled service) or SERVICE=COUNT "
                   "(repeatable or comma-separated, a mix).")
@click.option("--service", default=None, help="The service a bare --replicas COUNT is of.")
@click.option("--spare", type=click.IntRange(min=0), default=0, show_default=True,
              help="Spare hosts on top (N+k).")
@click.option("--port", "ports_opt", multiple=True,
              help="SERVICE=HOSTPORT on a fixed host port: one replica per host "
                   "(repeatable, or comma-separated).")
@click.option("--report", "want_report", is_flag=True,
              help="Also write a report folder (HTML, Markdown, fleet.json, charts).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder the report folder is written into (implies --report). "
                   "Default: reports.")
@click.option("--name", "name", default=None,
              help="Report folder name (implies --report; default <host>-<UTC time>-size); "
                   "an earlier report of that name is replaced, anything else of that name "
                   "refused (exit 3).")
@prometheus_options
def size(
    profiles_path: Path, machine_spec: str, settings: Any, as_json: bool,
    replicas_opt: tuple[str, ...],
    service: str | None, spare: int, ports_opt: tuple[str, ...], want_report: bool,
    out_dir: Path | None, name: str | None, prometheus: PrometheusSource | None,
) -> int:
    """How many hosts of the machine type hold the replicas, with --spare hosts on top.

    With --report, --out or --name, also write a report folder under --out (default
    reports/): fleet.json, profiles.json, report.md, a self-contained report.html and the
    charts as PNG.

    With --prometheus URL --machine fleet: one answer per host kind of the fleet, the kinds
    read from node_exporter (CPUs, memory, disk, NIC speed; --selector narrows the hosts).
    """
    check_report_name(name)
    if name is not None:  # refuse a NAME that is not ours before sizing anything
        from ..reporting._render import refuse_unless_report_folder

        refuse_unless_report_folder((out_dir or Path("reports")) / name)
    from ..solver._mix import size_fleet

    if (machine_spec.strip() == "fleet") != (prometheus is not None):
        raise click.UsageError("--machine fleet and --prometheus URL go together: the host "
                               "kinds are read from the fleet's node_exporter series")
    if prometheus is not None:
        return _size_fleet_kinds(profiles_path, prometheus, replicas_opt, service, spare,
                                 ports_opt, as_json, settings)
    profiles, machine = load_inputs(profiles_path, machine_spec)
    replicas = _replicas(replicas_opt, profiles, service)
    fleet = size_fleet(profiles, machine, replicas, spare=spare, ports=parse_ports(ports_opt),
                       **_kwargs(settings))
    if as_json:
        click.echo(json.dumps(fleet.to_dict(), indent=2, allow_nan=False))
    elif fleet.hosts is None:
        click.echo(f"undefined: {fleet.reason}")
    else:
        binds = (f"{resource_name(fleet.binding_resource)} binds" if fleet.binding_resource
                 else "one host holds them all")
        click.echo(f"{fleet.hosts} host(s) of {machine.name} ({fleet.hosts_needed} needed + "
                   f"{fleet.spare} spare); {binds}")
        for s, n in fleet.per_host.items():
            click.echo(f"  {s}: at most {n} per host")
        for a in fleet.assumptions:
            click.echo(f"  - {a}")
    if want_report or out_dir is not None or name is not None:
        from ..reporting._fleet import write_fleet_report

        paths = write_fleet_report(fleet, profiles, out_dir=out_dir or Path("reports"),
                                   name=name, source=f"profiles {profiles_path}")
        stderr(f"capacity: report written to {paths.folder}")
    if fleet.unknown or fleet.refused:
        # CPU or memory unknown while it could bind, or a service refused (hours of the day
        # not seen): undefined, not "too big", as a single-service plan (exit 1)
        return WARNING
    return OK if fleet.hosts is not None else CRITICAL


def _size_fleet_kinds(
    profiles_path: Path, prometheus: PrometheusSource, replicas_opt: tuple[str, ...],
    service: str | None, spare: int, ports_opt: tuple[str, ...], as_json: bool,
    settings: Any,
) -> int:
    """``size --prometheus URL --machine fleet``: hosts needed of each kind in the fleet."""
    from ..model._profile import Profiles
    from ..solver._machine import Machine
    from ..solver._mix import size_fleet
    from ..sources._prometheus import host_kinds, read_node_hosts

    profiles = Profiles.from_json(profiles_path)
    with prometheus.api() as api:
        hosts = read_node_hosts(api, selector=prometheus.selector)
    if not hosts:
        from .._errors import CapacityError

        raise CapacityError(
            f"Prometheus at {prometheus.url} has no node_exporter hosts (node_cpu_seconds_total "
            "and node_memory_MemTotal_bytes by instance): scrape node_exporter, or give "
            "--machine SPEC without --prometheus")
    replicas = _replicas(replicas_opt, profiles, service)
    answers = []
    placeable = unknown = False
    for spec, instances in host_kinds(hosts).items():
        machine = Machine.from_spec(spec)
        fleet = size_fleet(profiles, machine, replicas, spare=spare,
                           ports=parse_ports(ports_opt),
                           **_kwargs(settings))
        placeable |= fleet.hosts is not None
        unknown |= bool(fleet.unknown or fleet.refused)
        answers.append({"kind": spec, "in_fleet": len(instances), "instances": instances,
                        "size": fleet.to_dict()})
        if as_json:
            continue
        if fleet.hosts is None:
            click.echo(f"{spec} ({len(instances)} in the fleet): undefined: {fleet.reason}")
        else:
            binds = (f"{resource_name(fleet.binding_resource)} binds" if fleet.binding_resource
                     else "one host holds them all")
            click.echo(f"{spec} ({len(instances)} in the fleet): {fleet.hosts} host(s) "
                       f"({fleet.hosts_needed} needed + {fleet.spare} spare); {binds}")
    if as_json:
        click.echo(json.dumps({"kinds": answers}, indent=2, allow_nan=False))
    if not placeable and unknown:  # undefined (CPU or memory unknown), not "too big": as above
        return WARNING
    return OK if placeable else CRITICAL


def _replicas(replicas_opt: tuple[str, ...], profiles: Any,
              service: str | None) -> dict[str, int]:
    """``--replicas 120`` (of --service, or of the one profiled service) or
    ``--replicas SERVICE=N ...`` -> ``{service: N}``."""
    from ..solver._plan import pick_service

    if len(replicas_opt) == 1 and "=" not in replicas_opt[0]:
        try:
            count = int(replicas_opt[0])
        except ValueError:
            count = -1
        if count < 0:
            raise click.BadParameter(f"{replicas_opt[0]!r}: a count such as 120",
                                     param_hint="--replicas")
        if service is None and len(profiles.services) != 1:
            raise click.BadParameter(
                f"{replicas_opt[0]!r} is of which service? The profiles hold "
                f"{len(profiles.services)}: give --replicas SERVICE={count} (services: "
                f"{', '.join(sorted(profiles.services))}) or --service",
                param_hint="--replicas")
        return {pick_service(profiles, service).service: count}
    return parse_counts(replicas_opt, "--replicas")
