"""Every plan and report setting, declared once: default, bounds and help in one place.

:class:`Settings` is a frozen dataclass; each field's ``metadata`` carries its help text, the
command-line flag that sets it and the constraint it is checked against. From these fields

- the CLI builds its options (:func:`capacity._cli._common.settings_options`), so
  ``capacity plan``, ``report``, ``size``, ``backtest`` and ``verify`` cannot disagree on a
  default or a bound;
- the Python API takes its defaults (:data:`DEFAULTS`), so ``capacity.plan(...)`` and
  ``capacity plan`` plan at the same risk when nothing is given;
- a :class:`capacity.solver.Plan` keeps the settings it was planned with (``plan.settings``,
  and ``"settings"`` in plan.json), so :func:`capacity.what_if` changes one field and keeps the
  others, without guessing what the first plan used.

Constructing a :class:`Settings` validates every field (one error text for the CLI and the
API: "The 'epsilon' parameter of plan must be in [1e-12, 0.5); got 0.7 instead."). Fields are kept
*as given*: ``incompressible_epsilon=None`` means "``epsilon`` times
:data:`INCOMPRESSIBLE_EPSILON_FACTOR`", resolved by :attr:`Settings.memory_epsilon`, so a
what-if at another ``epsilon`` moves the memory risk with it unless it was set explicitly.

:func:`settings_table` prints them as the table in docs/plan-json.md.

This module imports nothing from the pipeline stages: the solver and the CLI import it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ._errors import InvalidParameter
from ._units import MAX_DURATION_S, MAX_DURATION_TEXT

__all__ = [
    "DEFAULTS",
    "DEFAULT_HORIZON_S",
    "DEFAULT_METHOD",
    "INCOMPRESSIBLE_EPSILON_FACTOR",
    "MAX_DEFAULT_DRAWS",
    "METHODS",
    "MIN_EPSILON",
    "Settings",
    "check_risk",
    "settings_table",
    "whole_count",
    "whole_counts",
]

#: the solver's methods, in the order they are shown side by side
METHODS: tuple[str, ...] = ("limits", "peak", "quantile", "gaussian", "empirical")
#: ``empirical``: demand is skewed and bursty, a normal tail underestimates it
#: (benchmarks/RESULTS.md, section Plan)
DEFAULT_METHOD = "empirical"
#: memory and disk space (an overload kills) are planned at ``epsilon`` times this
INCOMPRESSIBLE_EPSILON_FACTOR = 0.1
#: the smallest risk a setting takes: below it no method resolves the risk, and
#: ``--epsilon 5e-324`` made the memory risk (x 0.1) underflow to 0 and blamed a parameter the
#: user never gave ("epsilon of memory_working_set_bytes ... got 0.0")
MIN_EPSILON = 1e-12
#: the empirical method's most draws by default (:func:`capacity.solver._plan.default_n_draws`)
MAX_DEFAULT_DRAWS = 200_000
#: memory and disk space: the risk is of exceeding at any moment within this many seconds
#: (an OOM kill within 5 min), not at one instant (issues 13 and 14)
DEFAULT_HORIZON_S = 300.0


def _setting(default: Any, *, help: str, flag: str, check: str, kind: str = "value",
             show: str | None = None) -> Any:
    """A dataclass field with its CLI flag, help text and constraint in the metadata.

    ``check`` names the constraint (a key of :data:`_CHECKS`); ``kind`` how the CLI parses the
    value (``value`` a float, ``int``, ``duration``, ``percent``, ``flag``, ``choice``);
    ``show`` the default as the help shows it.
    """
    return field(default=default, metadata={"help": help, "flag": flag, "check": check,
                                            "kind": kind, "show": show})


def _open_risk(v: Any) -> bool:
    return _is_number(v) and MIN_EPSILON <= v < 0.5


def _risk_text(v: Any) -> str:
    """The constraint of a risk, with the reason for the floor when ``v`` is under it."""
    text = f"in [{MIN_EPSILON:g}, 0.5)"
    if _is_number(v) and 0 <= v < MIN_EPSILON:
        text += (f": a smaller risk is resolved by no method (the empirical method's draws, "
                 f"{MAX_DEFAULT_DRAWS:,} at most by default, bound it only to about "
                 f"{-math.log(0.025) / MAX_DEFAULT_DRAWS:.2g}; at 1 s instants "
                 f"{MIN_EPSILON:g} is one overload in 31,700 years); give a risk of at least "
                 f"{MIN_EPSILON:g}")
    return text


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _is_duration(v: Any) -> bool:
    """Seconds from 0 to :data:`~capacity._units.MAX_DURATION_S` (100 years): the one bound
    every duration setting shares with :func:`~capacity._units.parse_duration`."""
    return _is_number(v) and 0 <= v <= MAX_DURATION_S


#: constraint name -> (text in the error, or a function of the value giving it; test)
_CHECKS: dict[str, tuple[Any, Any]] = {
    "risk": (_risk_text, _open_risk),
    "risk_or_none": (lambda v: _risk_text(v) + ", or None for epsilon x 0.1",
                     lambda v: v is None or _open_risk(v)),
    "method": (f"one of {METHODS}", lambda v: v in METHODS),
    "seed_or_none": ("an int >= 0, or None", lambda v: v is None or (
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 0)),
    "duration_or_none": (f"a duration > 0 seconds and {MAX_DURATION_TEXT}, or None",
                         lambda v: v is None or (_is_duration(v) and v > 0)),
    "horizon": (f"a duration >= 0 seconds and {MAX_DURATION_TEXT} (0 or None: the risk at an "
                "instant)", lambda v: v is None or _is_duration(v)),
    "duration_or_zero_or_none": (f"a duration >= 0 seconds and {MAX_DURATION_TEXT}, or None "
                                 "for no drift", lambda v: v is None or _is_duration(v)),
    "level_or_none": ("in (0, 1], or None", lambda v: v is None or (_is_number(v) and 0 < v <= 1)),
    "bool": ("True or False", lambda v: isinstance(v, bool)),
    "share": ("in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
}


@dataclass(frozen=True)
class Settings:
    """How a plan is made and judged; every field has a default, a bound and a help text.

    Attributes
    ----------
    epsilon : float
        Allowed P(overload) at a random instant for CPU, network and disk I/O, in
        [:data:`MIN_EPSILON`, 0.5) (1e-12: below it no method resolves the risk).
    incompressible_epsilon : float or None
        The same for memory and disk space; None: ``epsilon * 0.1``
        (:attr:`memory_epsilon` is the value used).
    method : str
        The solver method that chooses the count (every method is computed side by side).
    seed : int or None
        Seed of the empirical method's Monte Carlo draws; None only in a plan made with a
        caller's own random generator.
    horizon_s : float or None
        Memory and disk space: bound P(max over this many seconds > capacity) instead of the
        risk at an instant (default :data:`DEFAULT_HORIZON_S`, 5 min: at an instant's risk
        1e-3 the chance of an OOM kill within five minutes was 2.4 %; benchmarks/RESULTS.md,
        section Plan); 0 or None: at an instant.
    quantile_level : float or None
        Level of the ``quantile`` method; None: the profile's sizing statistic.
    independent_offsets : bool
        Treat replicas as independent (random time offsets): opt-in, it lowers the risk.
    require_confidence : bool
        No count from a profile flagged low confidence.
    accept_unseen_hours : bool
        Plan a profile whose history missed some hours of the day on most days (its warning
        "hours of the day not seen") from the hours it saw; by default its count is
        undefined, since the daily peak may be in the hours not seen.
    valid_for_s : float or None
        Planning horizon in seconds after the history ends (default 7 days): drift measured
        inside the history scales each resource's demand (:mod:`capacity.solver._drift`);
        None: demand as recorded.
    warn_headroom : float
        Status WARNING (exit 1) when the least headroom is below this share, in [0, 1].
    """

    epsilon: float = _setting(
        0.01, flag="--epsilon", check="risk",
        help="Allowed P(overload) at a random instant for CPU, network and disk I/O.")
    incompressible_epsilon: float | None = _setting(
        None, flag="--memory-epsilon", check="risk_or_none", show="epsilon x 0.1",
        help="The same for memory and disk space (incompressible: an overload kills).")
    method: str = _setting(
        DEFAULT_METHOD, flag="--method", check="method", kind="choice",
        help="How the safe count is chosen (every method is shown side by side).")
    seed: int | None = _setting(
        0, flag="--seed", check="seed_or_none", kind="int",
        help="Seed of the empirical method's random draws.")
    horizon_s: float | None = _setting(
        DEFAULT_HORIZON_S, flag="--horizon", check="horizon", kind="duration", show="5m",
        help="Memory/disk space: bound P(max over this horizon > capacity); 0: at an "
             "instant.")
    quantile_level: float | None = _setting(
        None, flag="--quantile-level", check="level_or_none", show="CPU p95, others max",
        help="Level of the quantile method.")
    independent_offsets: bool = _setting(
        False, flag="--independent-offsets", check="bool", kind="flag",
        help="Assume replicas independent (random time offsets). Opt-in.")
    require_confidence: bool = _setting(
        False, flag="--require-confidence", check="bool", kind="flag",
        help="No count from a profile flagged low confidence.")
    accept_unseen_hours: bool = _setting(
        False, flag="--accept-unseen-hours", check="bool", kind="flag",
        help="Plan a history that missed some hours of the day on most days from the hours "
             "it saw (by default no count: the daily peak may be in them).")
    valid_for_s: float | None = _setting(
        7 * 86_400.0, flag="--valid-for", check="duration_or_zero_or_none", kind="duration",
        show="7d",
        help="Planning horizon after the history ends: drift measured inside the history "
             "(significant trend of the daily levels, busiest day) is carried this far (a "
             "trend at most 3x the days that measured it, said); the margin it took is in "
             "the assumptions. One whole day or less: not measured, a "
             "stated x1.10 allowance (the daily peak may not have been seen). Single-service "
             "plans only.")
    warn_headroom: float = _setting(
        0.2, flag="--warn-headroom", check="share", kind="percent", show="20%",
        help="Exit 1 (warning) when the least headroom is below this share.")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            text, ok = _CHECKS[f.metadata["check"]]
            if not ok(value):
                raise InvalidParameter(f.name, "plan", _said(text, value), value)
            # numpy scalars and ints become plain floats (ints for the seed): JSON-ready
            if isinstance(value, numbers.Integral) and f.name == "seed":
                object.__setattr__(self, f.name, int(value))
            elif isinstance(value, numbers.Real) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))

    @property
    def memory_epsilon(self) -> float:
        """The risk memory and disk space are planned at (``incompressible_epsilon``, else
        ``epsilon * INCOMPRESSIBLE_EPSILON_FACTOR``)."""
        if self.incompressible_epsilon is not None:
            return self.incompressible_epsilon
        return self.epsilon * INCOMPRESSIBLE_EPSILON_FACTOR

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (validated); an unknown field name is an error."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InvalidParameter("settings", "plan", f"fields of Settings {sorted(names)}",
                                   unknown)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as given, plus ``memory_epsilon`` (the value used): plan.json's
        ``settings`` object."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["memory_epsilon"] = self.memory_epsilon
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Settings:
        """Inverse of :meth:`to_dict` (unknown keys, such as ``memory_epsilon``, ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def check_risk(value: Any, name: str, owner: str = "plan") -> float:
    """``value`` as a risk in [:data:`MIN_EPSILON`, 0.5), the bound of ``epsilon`` and
    ``incompressible_epsilon`` (for a risk given another way, such as per resource)."""
    if not _open_risk(value):
        raise InvalidParameter(name, owner, _risk_text(value), value)
    return float(value)


def whole_count(value: Any, name: str, owner: str) -> int:
    """``value`` as a container count: an int >= 0 (a numpy integer, or a float holding a
    whole number such as 3.0 from a pandas column, is taken). True/False, 1.5, NaN and
    negatives are refused: ``running=1.5`` made "53750.5 more fit" and ``True`` one
    replica, silently.
    """
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and float(value) >= 0 and float(value).is_integer())
    if not ok:
        raise InvalidParameter(name, owner, "a whole number of containers >= 0", value)
    return int(value)


def whole_counts(counts: Mapping[Any, Any], name: str, owner: str) -> dict[Any, int]:
    """Every value of ``counts`` checked by :func:`whole_count` (the field named
    ``name[key]``)."""
    return {k: whole_count(v, f"{name}[{k!r}]", owner) for k, v in counts.items()}


def _said(text: Any, value: Any) -> str:
    """A constraint's text: a string, or a function of the value seen (the reason for a
    bound, said only when the value is past it)."""
    return str(text(value)) if callable(text) else str(text)


#: the defaults, for signatures: ``epsilon: float = DEFAULTS.epsilon``
DEFAULTS = Settings()


def settings_table() -> str:
    """The settings as a Markdown table (flag, default, constraint, help): docs are made
    from this, so they cannot drift from the code."""
    rows = ["| setting | flag | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in fields(Settings):
        m = f.metadata
        default = m["show"] or repr(f.default)
        rows.append(f"| `{f.name}` | `{m['flag']}` | {default} | "
                    f"{_said(_CHECKS[m['check']][0], None)} "
                    f"| {m['help']} |")
    return "\n".join(rows)

