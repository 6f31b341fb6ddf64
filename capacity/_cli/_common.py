"""Shared pieces of the CLI: exit codes, parameter types, console output."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import click

from .._errors import CapacityError
from .._units import parse_duration
from ..reporting._status import CRITICAL as EXIT_CRITICAL
from ..reporting._status import OK as EXIT_OK
from ..reporting._status import UNKNOWN as EXIT_UNKNOWN
from ..reporting._status import WARNING as EXIT_WARNING

# The exit codes are defined once, in capacity/reporting/_status.py; the names are kept here
# for the commands that import them from the CLI's shared module.
__all__ = [
    "DURATION", "EXIT_CRITICAL", "EXIT_OK", "EXIT_UNKNOWN", "EXIT_WARNING", "PERCENT",
    "check_report_name", "parse_filters", "print_summary", "settings_options", "stderr",
]


def stderr(message: str) -> None:
    click.echo(message, err=True)


class _Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value, name=param.name if param and param.name else "duration")
        except CapacityError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _Duration()


class _Percent(click.ParamType):
    """A share as ``20%``, ``20`` (percent) -> 0.2.

    A bare number in (0, 1] is refused: ``0.2`` may be the share the API and plan.json use
    (20 %) or 0.2 %, and reading it as 0.2 % silenced every warning of a user who meant 20 %.
    """

    name = "percent"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        given = str(value).strip()
        text = given.removesuffix("%").strip()
        try:
            share = float(text) / 100.0
        except ValueError:
            self.fail(f"{value!r}: give a percentage such as 20% or 20", param, ctx)
        if not given.endswith("%") and 0.0 < share <= 0.01:
            self.fail(f"{value!r} is ambiguous: a share ({float(text):.0%}) or a percentage "
                      f"({float(text):g}%)? Give it with the sign: "
                      f"{float(text) * 100:g}% or {float(text):g}%", param, ctx)
        if not 0.0 <= share <= 1.0:
            self.fail(f"{value!r}: give a percentage from 0% to 100%", param, ctx)
        return share


PERCENT = _Percent()


def settings_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Click options for these fields of :class:`capacity.Settings`, built from the
    fields (flag, default, help), and one :class:`Settings` passed to the command as
    ``settings`` instead of the separate values.

    Values are checked by :class:`Settings` itself, so a bad ``--epsilon 0.7`` says what the
    API says: "The 'epsilon' parameter of plan must be in [1e-12, 0.5); got 0.7 instead." (exit 3).
    """
    from .._settings import METHODS, Settings

    by_name = {f.name: f for f in fields(Settings)}
    unknown = [n for n in names if n not in by_name]
    if unknown:  # a programming error in a command's declaration, caught by the CLI tests
        raise ValueError(f"not fields of Settings: {unknown}")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {n: kwargs.pop(n) for n in names}
            return command(*args, settings=Settings(**given), **kwargs)

        for name in reversed(names):
            f = by_name[name]
            meta = f.metadata
            extra: dict[str, Any] = {}
            if meta["kind"] == "flag":
                extra = {"is_flag": True, "default": False}
            elif meta["kind"] == "choice":
                extra = {"type": click.Choice(METHODS), "default": f.default,
                         "show_default": True}
            else:
                types = {"duration": DURATION, "percent": PERCENT, "int": int}
                value_type = types.get(meta["kind"], float)
                extra = {"type": value_type, "default": f.default,
                         "show_default": (meta["show"] if meta["show"] is not None
                                          else f.default is not None)}
            wrapper = click.option(meta["flag"], name, help=meta["help"], **extra)(wrapper)
        return wrapper

    return decorate


def check_report_name(name: str | None) -> None:
    """``--name`` of a report folder: a plain folder name (no ``/``, not hidden), or None."""
    if name is not None and (not name or "/" in name or name.startswith(".")):
        raise click.BadParameter(f"{name!r}: a plain folder name", param_hint="--name")


def parse_filters(values: Sequence[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or key not in ("label", "name", "ancestor", "id"):
            raise click.BadParameter(
                f"{value!r}: use label=KEY[=VALUE], name=NAME, ancestor=IMAGE or id=ID",
                param_hint="--filter",
            )
        filters.setdefault(key, []).append(rest)
    return filters


def print_summary(plans: Mapping[str, Any], status: Any = None) -> None:
    """The summary table on stdout: one row per service (rich; plain when ``NO_COLOR`` is
    set or stdout is not a terminal), and the ops status line under it when given.

    With a status the rows are in the report's order, most urgent first (over the safe
    count, then no safe count, then least headroom; names in natural order on ties); without
    one, in natural name order."""
    from rich.console import Console
    from rich.table import Table

    from ..reporting._format import format_count, format_percent, format_value
    from ..reporting._host import natural_key, resource_name, urgency_order
    from ..reporting._status import short_reasons

    probe = Console()
    # A pipe or a cron mail gets the whole table: never cut names to the 80-column default.
    console = Console(
        no_color=bool(os.environ.get("NO_COLOR")),
        highlight=False,
        markup=False,  # a service named "web[/]" is text, not rich markup
        width=None if probe.is_terminal else 200,
    )
    table = Table(title="capacity: safe container count per service")
    columns = ("service", "running", "safe count", "more", "binding", "per replica",
               "headroom")
    for column in columns:
        table.add_column(
            column,
            justify="left" if column in ("service", "binding") else "right",
            overflow="fold",
        )
    order = (urgency_order(plans, status) if status is not None
             else sorted(plans, key=natural_key))
    for service in order:
        plan = plans[service]
        binding = plan.binding_resource
        per = plan.per_resource.get(binding) if binding else None
        room = status.headrooms.get(service) if status is not None else None
        style = "bold red" if plan.safe_count is not None and plan.running > plan.safe_count \
            else None
        table.add_row(
            service,
            format_count(plan.running),
            format_count(plan.safe_count),
            format_count(plan.more),
            resource_name(binding),
            format_value(binding, per.demand_per_replica) if per and binding else "-",
            format_percent(room.share) if room is not None and room.share is not None else "-",
            style=style,
        )
    console.print(table)
    if status is not None:
        why = "; ".join(short_reasons(plans, status, order))
        console.print(f"status: {status.name}" + (f" ({why})" if why else ""), markup=False)
