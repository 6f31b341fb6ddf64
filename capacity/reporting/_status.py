"""Status and exit codes of every command: headroom, OK / WARNING / CRITICAL / UNKNOWN, and
the Nagios check line.

The one place the exit codes are defined (the Nagios convention): :data:`OK` 0,
:data:`WARNING` 1, :data:`CRITICAL` 2, :data:`UNKNOWN` 3. ``capacity plan``, ``report``,
``size``, ``backtest``, ``verify`` and ``capacity.cli.main`` return these; ``plan`` and
``report`` judge their plans with :func:`status`, so the same plans give the same exit status
whichever command made them.

Headroom
--------
For one service's plan, on its binding resource ``r`` (the resource that stops the count):

    usable   = capacity - reserve
    in use   = occupied (other services' containers running now)
               + running * demand_per_replica (this service's containers running now)
    headroom = (usable - in use) / usable

``occupied`` counts the other services' running containers at their per-replica sizing
figure plus the host cost of each (:func:`capacity.plan_all`); ``demand_per_replica`` is the
per-replica figure the plan sized with, host cost included (for the pooled methods,
``empirical`` and ``gaussian``, the total at the safe count divided by the count), so a
headroom of 0 means the running containers alone fill what the plan allows, and a negative one
that they exceed it. Both are for the period the plan is for: at the demand factor each
service's plan takes (drift over ``valid_for_s``, the allowance for a history under two days,
the sampling widening; not for the ``limits`` method), as the count is. When the binding
constraint is not a resource (a fixed host port) the headroom is counted in containers:
``(safe_count - running) / safe_count``. The host's headroom is the smallest over its
services.

Status
------
- CRITICAL: some service runs more containers than its safe count.
- WARNING: the host's headroom is below ``warn_headroom`` (default 20 %), or a service's
  safe count is undefined (its reason is given): the plan cannot vouch for it.
- UNKNOWN when what runs now is unknown (``stale``: the newest sample is too old,
  :func:`capacity._pipeline.stale_reason`): the running counts of an old last instant
  are not "now", so neither CRITICAL nor OK is vouched for; an on-call person is sent to
  the stopped collector, not to a capacity problem that may not exist. Safe counts
  still undefined are listed after it.
- OK otherwise. UNKNOWN (the run failed: no engine, bad input, nothing to plan) is decided
  by the caller: an error raised before any plan exists. :func:`status` of no plans at all
  raises :class:`~capacity.InsufficientData` (UNKNOWN), never OK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import InsufficientData
from .._settings import DEFAULTS
from ._format import format_percent

if TYPE_CHECKING:  # the exit codes are imported by every command: keep this module light
    from ..solver._plan import Plan, ResourcePlan

__all__ = [
    "CRITICAL",
    "DEFAULT_WARN_HEADROOM",
    "OK",
    "SHORT_REASONS_NAMED",
    "UNKNOWN",
    "WARNING",
    "Headroom",
    "Status",
    "check_line",
    "headroom",
    "nagios_text",
    "perfdata_labels",
    "resource_headroom",
    "resource_in_use",
    "short_reasons",
    "status",
]

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
#: declared once, in :class:`capacity._settings.Settings`
DEFAULT_WARN_HEADROOM = DEFAULTS.warn_headroom


@dataclass(frozen=True)
class Headroom:
    """The free share of one service's binding constraint after what runs now.

    ``share`` is None when the plan has no safe count; ``basis`` is the resource column, or
    ``"count"`` for a constraint that is not a resource.
    """

    service: str
    share: float | None
    basis: str | None


@dataclass(frozen=True)
class Status:
    """The status of a host's plans: ``code`` (0 ok, 1 warning, 2 critical, 3 when what runs
    now is unknown), why, and the smallest headroom."""

    code: int
    reasons: tuple[str, ...]
    least: Headroom | None
    headrooms: Mapping[str, Headroom]
    warn_headroom: float

    @property
    def name(self) -> str:
        return STATUS_NAMES[self.code]


def resource_in_use(rp: ResourcePlan, running: int) -> float:
    """What runs now takes of one resource, in its unit: ``occupied`` (the other services'
    running containers, their host cost included) plus ``running`` times the plan's
    ``demand_per_replica`` (0 when the plan has none: no demand measured)."""
    return float(rp.occupied) + running * float(rp.demand_per_replica or 0.0)


def resource_headroom(rp: ResourcePlan, running: int) -> float | None:
    """The free share of one resource's usable capacity after what runs now:
    ``(usable - in use) / usable`` with ``usable = capacity - reserve`` and ``in use`` from
    :func:`resource_in_use`; None when the capacity is unknown or nothing is usable.

    The one headroom formula: the status line's headroom (:func:`headroom`) and the host's
    answer (:func:`capacity.reporting._host.host_answer`) both call it, so the report's
    headline and its status line give the same figure.
    """
    if not rp.capacity:
        return None
    usable = float(rp.capacity) - float(rp.reserve)
    if usable <= 0:
        return None
    return (usable - resource_in_use(rp, running)) / usable


def headroom(plan: Plan) -> Headroom:
    """The headroom of one plan (see the module docstring)."""
    if plan.safe_count is None:
        return Headroom(plan.service, None, None)
    rp = plan.per_resource.get(plan.binding_resource or "")
    if rp is not None and rp.demand_per_replica is not None:
        share = resource_headroom(rp, plan.running)
        if share is not None:
            return Headroom(plan.service, share, rp.resource)
    if plan.safe_count > 0:
        return Headroom(plan.service, (plan.safe_count - plan.running) / plan.safe_count, "count")
    return Headroom(plan.service, 0.0 if plan.running == 0 else -1.0, "count")


def status(plans: Mapping[str, Plan], *, warn_headroom: float = DEFAULT_WARN_HEADROOM,
           stale: str | None = None) -> Status:
    """OK, WARNING or CRITICAL for a host's plans (see the module docstring); UNKNOWN with
    ``stale`` (why what runs now is unknown) first among the reasons, no headroom judged.

    Raises :class:`~capacity.InsufficientData` when there is no plan: nothing was planned, so
    nothing is vouched for (exit 3, never OK).
    """
    if not plans:
        raise InsufficientData("no service was planned, so nothing can be vouched for: the "
                               "profiles or the samples hold no service")
    if stale is not None:
        undefined = tuple(_undefined_reason(s, p) for s, p in plans.items()
                          if p.safe_count is None)
        unknown_rooms = {s: Headroom(s, None, None) for s in plans}
        return Status(UNKNOWN, (stale, *undefined), None, unknown_rooms, warn_headroom)
    rooms = {s: headroom(p) for s, p in plans.items()}
    known = [h for h in rooms.values() if h.share is not None]
    least = min(known, key=lambda h: (h.share, h.service)) if known else None
    reasons: list[str] = []
    code = OK
    for s, p in plans.items():
        if p.safe_count is not None and p.running > p.safe_count:
            code = CRITICAL
            reasons.append(_over_reason(s, p))
    if least is not None and least.share is not None and least.share < warn_headroom:
        code = max(code, WARNING)
        reasons.append(
            f"least headroom {format_percent(least.share, trim=True)} < "
            f"{format_percent(warn_headroom, trim=True)} ({least.service}, {least.basis})"
        )
    for s, p in plans.items():
        if p.safe_count is None:
            code = max(code, WARNING)
            reasons.append(_undefined_reason(s, p))
    return Status(code, tuple(reasons), least, rooms, warn_headroom)


def _over_reason(service: str, p: Plan) -> str:
    return f"{service}: {p.running} running, more than the safe count {p.safe_count}"


#: services over their safe count named one by one in a short status line
SHORT_REASONS_NAMED = 5


def short_reasons(plans: Mapping[str, Plan], st: Status,
                  order: Sequence[str] | None = None) -> tuple[str, ...]:
    """``st.reasons`` for one line on a console: when more than :data:`SHORT_REASONS_NAMED`
    services run over their safe count, their reasons become one (how many, the first of
    ``order``, "and N more"); the other reasons are kept. The report lists every one.
    """
    ordered = list(order if order is not None else plans)
    over = [s for s in ordered if plans[s].safe_count is not None
            and plans[s].running > (plans[s].safe_count or 0)]
    undefined = [s for s in ordered if plans[s].safe_count is None]
    out = list(st.reasons)
    for names, reason_of, what in (
            (over, lambda s: _over_reason(s, plans[s]),
             "run more containers than their safe count"),
            (undefined, lambda s: _undefined_reason(s, plans[s]), "have no safe count")):
        if len(names) <= SHORT_REASONS_NAMED:
            continue
        folded = {reason_of(s) for s in names}
        at = next(i for i, r in enumerate(out) if r in folded)
        named = ", ".join(names[:SHORT_REASONS_NAMED])
        summary = (f"{len(names)} services {what}: {named} and "
                   f"{len(names) - SHORT_REASONS_NAMED} more (each in the report)")
        out = [*out[:at], summary, *(r for r in out[at:] if r not in folded)]
    return tuple(out)


def _undefined_reason(service: str, p: Plan) -> str:
    return f"{service}: safe count undefined ({p.reason or 'no reason given'})"


#: characters never written raw in a plugin line: the perfdata separator and line breaks
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def nagios_text(text: str) -> str:
    """``text`` safe in the human part of a Nagios plugin line: on one line (line breaks
    and other control characters become a space) and without ``|``, which would start the
    performance data (it becomes ``/``). A service name from a Compose label can hold
    either, and would otherwise forge a second status line or its own perfdata."""
    return _CONTROL.sub(" ", str(text)).replace("|", "/")


def perfdata_labels(services: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A unique perfdata label stem per service, in order: the name reduced to
    ``[A-Za-z0-9_.-]`` (stable names for graphing tools), then ``_2``, ``_3``... on a
    collision (``a/b`` and ``a_b`` both reduce to ``a_b``), never taking a stem a later
    service reduces to exactly."""
    reduced = {s: re.sub(r"[^A-Za-z0-9_.-]", "_", s) or "_" for s in services}
    taken: set[str] = set()
    exact = set(reduced.values())
    stems: dict[str, str] = {}
    for s in services:
        stem = reduced[s]
        if stem in taken:
            n = 2
            while f"{stem}_{n}" in taken or f"{stem}_{n}" in exact:
                n += 1
            stem = f"{stem}_{n}"
        taken.add(stem)
        stems[s] = stem
    return stems


def _label(stem: str, what: str) -> str:
    """A quoted perfdata label (the guidelines: single quotes, a quote inside doubled; the
    stem holds neither quotes, ``=`` nor spaces, so the quoting is belt and braces)."""
    label = f"{stem}_{what}".replace("'", "''")
    return f"'{label}'"


def check_line(plans: Mapping[str, Plan], st: Status) -> str:
    """One Nagios plugin line: ``CAPACITY <STATUS> - <summary> | <performance data>``.

    Performance data per service: ``'<svc>_safe'``, ``'<svc>_running'`` (critical above the
    safe count), ``'<svc>_more'`` and ``'<svc>_headroom'`` in % (warning below
    ``warn_headroom``), labels in single quotes as the Nagios plugin guidelines write them.
    Service names are reduced to ``[A-Za-z0-9_.-]`` in labels, made unique with ``_2``,
    ``_3``... when two reduce alike (:func:`perfdata_labels`); in the text they keep their
    characters except line breaks and ``|`` (:func:`nagios_text`), so the line is always one
    line with one ``|``.

    Examples
    --------
    A line looks like ``CAPACITY OK - 12 more web fit (memory_working_set_bytes binds); least
    headroom 60 % | 'web_safe'=14;;;0 'web_running'=2;;14;0 'web_more'=12;;;0
    'web_headroom'=60.00%;20:;;``.
    """
    if st.reasons and st.code != OK:
        summary = "; ".join(short_reasons(plans, st))  # every service's reason: the report
    else:
        parts = []
        for s, p in plans.items():
            parts.append(f"{p.more} more {s} fit ({p.binding_resource} binds)")
        summary = "; ".join(parts) or "no service to plan"
        if st.least is not None and st.least.share is not None:
            summary += f"; least headroom {format_percent(st.least.share, trim=True)}"
    perf = []
    warn = f"{st.warn_headroom * 100:g}"
    stems = perfdata_labels(list(plans))
    for s, p in plans.items():
        if p.safe_count is None:
            continue
        stem = stems[s]
        perf.append(f"{_label(stem, 'safe')}={p.safe_count};;;0")
        if st.code == UNKNOWN:  # what runs now is unknown: no running, more or headroom
            continue
        perf.append(f"{_label(stem, 'running')}={p.running};;{p.safe_count};0")
        perf.append(f"{_label(stem, 'more')}={p.more};;;0")
        h = st.headrooms[s].share
        if h is not None:
            perf.append(f"{_label(stem, 'headroom')}={h * 100:.2f}%;{warn}:;;")
    line = nagios_text(f"CAPACITY {st.name} - {summary}")
    return line + (" | " + " ".join(perf) if perf else "")
