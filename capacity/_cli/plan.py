"""``capacity plan``: profiles + machine + risk -> the safe count (a table, or ``--json``).

Exit status (:mod:`capacity.reporting._status`, as ``capacity report``): 0 ok; 1 when a
service's safe count is undefined (its reason is printed: an unknown CPU or memory capacity or
demand, thin data) or the least headroom beside ``--running`` is below ``--warn-headroom``; 2
when a service runs more replicas (``--running``) than its safe count, (``--compose``/
``--ratio``) not even one copy fits, or (``--more``/``--maximise``) what runs now already
exceeds the risk; 3 on bad input, a ``--running`` service without a profile, empty profiles,
or a Compose service without a profile. The JSON forms are documented in docs/plan-json.md.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import click

from .._units import resource_name
from ..reporting._status import CRITICAL, OK, UNKNOWN, WARNING
from ._common import settings_options

#: the settings every planning command takes (``capacity plan`` takes more)
RISK_SETTINGS = ("epsilon", "incompressible_epsilon", "method", "seed")


def _items(values: tuple[str, ...]) -> list[str]:
    """Repeated options and comma-separated lists alike: ``("web=3,worker=1", "db=1")`` ->
    ``["web=3", "worker=1", "db=1"]`` (service names hold no comma: Compose and Kubernetes
    names cannot)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_counts(values: tuple[str, ...], option: str) -> dict[str, int]:
    """``("web=3", "worker=1")`` or ``("web=3,worker=1",)`` -> ``{"web": 3, "worker": 1}``."""
    out: dict[str, int] = {}
    for value in _items(values):
        name, sep, count = value.rpartition("=")
        try:
            n = int(count)
        except ValueError:
            n = -1
        if not sep or not name or n < 0:
            raise click.BadParameter(f"{value!r}: use SERVICE=COUNT, e.g. web=3",
                                     param_hint=option)
        if name in out:  # web=5 then web=7: which one? (the last silently won)
            raise click.BadParameter(f"{name!r} given twice ({name}={out[name]} and {value}): "
                                     "give each service once", param_hint=option)
        out[name] = n
    return out


def parse_ports(values: tuple[str, ...]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for value in _items(values):
        name, sep, port = value.rpartition("=")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.BadParameter(f"{value!r}: use SERVICE=HOSTPORT, e.g. web=8080",
                                     param_hint="--port")
        out.setdefault(name, []).append(int(port))
    return out


def _parse_weights(values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in _items(values):
        name, sep, weight = value.rpartition("=")
        try:
            w = float(weight)
        except ValueError:
            w = -1.0
        if not sep or not name or not (w >= 0 and math.isfinite(w)):
            raise click.BadParameter(f"{value!r}: use SERVICE=WEIGHT, e.g. web=2",
                                     param_hint="--maximise")
        if name in out:
            raise click.BadParameter(f"{name!r} given twice: give each service once",
                                     param_hint="--maximise")
        out[name] = w
    return out


def load_inputs(profiles_path: Path, machine_spec: str) -> tuple[Any, Any]:
    from ..model._profile import Profiles
    from ..solver._machine import Machine

    return Profiles.from_json(profiles_path), Machine.from_spec(machine_spec)


def risk_options(f: Any) -> Any:
    """The input options every planning command shares (the settings come from
    :func:`capacity._cli._common.settings_options`)."""
    for decorator in reversed([
        click.option("--profiles", "profiles_path", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="profiles.json from 'capacity fit'."),
        click.option("--machine", "machine_spec", required=True,
                     help="cpus=8,memory=32GiB,net=10Gbit,disk_bw=500MB/s,disk=400GB "
                          "[,reserve.cpus=0.5,headroom=0.1], a .toml file, or 'local'."),
        click.option("--json", "as_json", is_flag=True, help="Versioned JSON on stdout."),
    ]):
        f = decorator(f)
    return f


def _kwargs(settings: Any) -> dict:
    """The mix and fleet solvers' keyword arguments from the settings."""
    import numpy as np

    return {"epsilon": settings.epsilon,
            "incompressible_epsilon": settings.incompressible_epsilon,
            "method": settings.method, "rng": np.random.default_rng(settings.seed),
            "valid_for_s": settings.valid_for_s, "horizon_s": settings.horizon_s,
            "accept_unseen_hours": settings.accept_unseen_hours}


@click.command()
@risk_options
@settings_options(*RISK_SETTINGS, "horizon_s", "valid_for_s", "quantile_level",
                  "independent_offsets", "require_confidence", "accept_unseen_hours",
                  "warn_headroom")
@click.option("--service", "services", multiple=True,
              help="Plan only this service (repeatable). Default: every service.")
@click.option("--running", "running_opt", multiple=True,
              help="SERVICE=COUNT running now (repeatable, or comma-separated): others' use "
                   "is left out, 'more' is counted beside them, exit 2 when over the safe "
                   "count. A SERVICE without a profile is an error.")
@click.option("--port", "ports_opt", multiple=True,
              help="SERVICE=HOSTPORT published on a fixed host port: one replica per host "
                   "(repeatable, or comma-separated).")
@click.option("--compose", "compose_path", type=click.Path(exists=True, dir_okay=False,
                                                           path_type=Path),
              help="How many copies of this docker-compose.yml fit.")
@click.option("--limits-for-unprofiled", is_flag=True,
              help="With --compose: plan services without a profile by declared limits.")
@click.option("--ratio", "ratio_opt", multiple=True,
              help="SERVICE=N (repeatable, or comma-separated): the largest multiple of this "
                   "ratio that fits.")
@click.option("--more", "more_service", default=None,
              help="How many more of SERVICE fit beside --running, every service's demand "
                   "drawn with its correlation (a mix).")
@click.option("--maximise", "weights_opt", multiple=True,
              help="SERVICE=WEIGHT (repeatable, or comma-separated): the counts maximising "
                   "the weighted sum (scipy milp), at least the --running counts, checked by "
                   "simulation.")
def plan(
    profiles_path: Path, machine_spec: str, settings: Any, as_json: bool,
    services: tuple[str, ...], running_opt: tuple[str, ...], ports_opt: tuple[str, ...],
    compose_path: Path | None, limits_for_unprofiled: bool, ratio_opt: tuple[str, ...],
    more_service: str | None, weights_opt: tuple[str, ...],
) -> int:
    """How many replicas fit on the machine at risk EPSILON, per service and resource.

    Every method is computed and shown side by side; --method picks the answer.
    """
    from .._pipeline import plan_all
    from ..reporting._status import status

    profiles, machine = load_inputs(profiles_path, machine_spec)
    kwargs = _kwargs(settings)
    running = parse_counts(running_opt, "--running")
    ports = parse_ports(ports_opt)
    if compose_path is not None or ratio_opt or more_service or weights_opt:
        from ..solver._compose import plan_stack, read_compose
        from ..solver._mix import more_of, ratio, weighted

        kwargs.update(independent_offsets=settings.independent_offsets,
                      quantile_level=settings.quantile_level)
        if compose_path is not None:
            mix = plan_stack(profiles, machine, read_compose(compose_path),
                             limits_for_unprofiled=limits_for_unprofiled, **kwargs)
        elif ratio_opt:
            mix = ratio(profiles, machine, parse_counts(ratio_opt, "--ratio"), ports=ports,
                        **kwargs)
        elif more_service:
            mix = more_of(profiles, machine, more_service, running, ports=ports, **kwargs)
        else:
            weights = _parse_weights(weights_opt)
            mix = weighted(profiles, machine, weights, minimum=running, ports=ports, **kwargs)
        if as_json:
            click.echo(json.dumps(mix.to_dict(), indent=2, allow_nan=False))
        else:
            _print_mix(mix)
        if mix.unknown or mix.refused or mix.unbounded:
            # CPU or memory unknown while it could bind, a service refused (hours of the day
            # not seen), or no resource limits the mix (demand 0): undefined, as a
            # single-service plan is (exit 1); not critical: nothing runs over anything
            return WARNING
        if not mix.safe and mix.kind in ("stack", "weighted"):
            # unknown (3) only when the answer could not be computed (services without a
            # profile); a stack that does not fit is a real answer: critical (2)
            return UNKNOWN if mix.unprofiled else CRITICAL
        if mix.kind in ("stack", "ratio"):
            return OK if (mix.multiple or 0) >= 1 else CRITICAL
        return OK if mix.safe else CRITICAL
    # the one planning loop, as capacity report and capacity.plan_all call it
    plans = plan_all(profiles, machine, running=running, settings=settings,
                     services=list(dict.fromkeys(services)) or None, ports=ports)
    st = status(plans, warn_headroom=settings.warn_headroom)
    if as_json:
        from ..reporting._render import plans_to_dict

        click.echo(json.dumps(plans_to_dict(plans, source=str(profiles_path),
                                            settings=settings), indent=2, allow_nan=False))
    else:
        _print_plans(plans)
        click.echo(f"status: {st.name}" + (f" ({'; '.join(st.reasons)})" if st.reasons
                                            else ""))
    return st.code


def _console() -> Any:
    from rich.console import Console

    # markup off: names from the user and the machine ("disk_usage_bytes[/]" for volumes on
    # /, a service "web[prod]") are text, never rich markup (was: MarkupError on "[/]")
    probe = Console()  # a pipe or a cron mail gets whole names, not "resou…"
    return Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False, markup=False,
                   width=None if probe.is_terminal else 200)


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _print_plans(plans: dict[str, Any]) -> None:
    from rich.table import Table

    from ..reporting._render import format_value
    from ..solver._plan import METHODS

    console = _console()
    for plan in plans.values():
        title = (f"{plan.service}: {plan.safe_count} fit ({plan.more} more beside "
                 f"{plan.running}), {resource_name(plan.binding_resource)} binds"
                 if plan.safe_count is not None else f"{plan.service}: undefined: {plan.reason}")
        table = Table(title=title, title_justify="left")
        for column in ("resource", "safe N", "capacity", "reserve+others", "demand at N",
                       "util", "P(over) N", "N+1", "by method"):
            table.add_column(column, justify="left" if column == "resource" else "right")
        for r, rp in plan.per_resource.items():
            if rp.safe_count is None and not rp.methods:
                continue
            table.add_row(
                r.removesuffix("_bytes_per_second").removesuffix("_bytes"),
                "-" if rp.safe_count is None else str(rp.safe_count),
                format_value(r, rp.capacity), format_value(r, rp.reserve + rp.occupied),
                format_value(r, rp.demand_at_safe_count),
                "-" if rp.utilisation_at_safe_count is None
                else f"{rp.utilisation_at_safe_count:.0%}",
                _p(rp.p_overload_at_safe_count), _p(rp.p_overload_at_next),
                " ".join(f"{m[0].upper()}{'-' if rp.methods.get(m) is None else rp.methods[m]}"
                         for m in METHODS),
            )
        console.print(table)
        console.print("  by method: L limits, P peak, Q quantile, G gaussian, E empirical")
        undefined = [f"{r}: {rp.reason}" for r, rp in plan.per_resource.items()
                     if rp.safe_count is None and rp.reason]
        for line in (*undefined, *plan.assumptions):
            console.print(f"  - {line}")


def _print_mix(mix: Any) -> None:
    console = _console()
    if not mix.safe:
        console.print(f"undefined: {mix.reason}")
        return
    if mix.kind in ("stack", "ratio"):
        what = "copies of the stack" if mix.kind == "stack" else "multiples of the ratio"
        console.print(f"{mix.multiple} {what} fit; {resource_name(mix.binding_resource)} binds")
    elif mix.kind == "more":
        console.print(f"{mix.more} more fit; {resource_name(mix.binding_resource)} binds")
    else:
        console.print(f"best weighted counts; {resource_name(mix.binding_resource)} binds")
    for s, n in mix.counts.items():
        console.print(f"  {s}: {n}")
    for r, m in mix.per_resource.items():
        util = "-" if m.utilisation is None else f"{m.utilisation:.0%}"
        if m.method == "count":  # a structural count (PIDs, files): slots, not a risk
            console.print(f"  {resource_name(r)}: the mix takes {util} of the slots left")
        else:
            console.print(f"  {resource_name(r)}: utilisation {util}, P(overload) "
                          f"{_p(m.p_overload)} (epsilon {m.epsilon:g})")
    for a in mix.assumptions:
        console.print(f"  - {a}")
