"""Fuzz the machine-file loader: whatever a hand edit leaves in the file, reading it gives a
Machine or one InvalidParameter line, never another exception (no "this is a bug")."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_machine_file import GOOD

from capacity._errors import InvalidParameter
from capacity.solver._machine import Machine
from capacity.solver._machinefile import dumps_toml

_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.lists(st.integers(max_value=9), max_size=3),
)
_paths = st.sampled_from([
    ("schema_version",), ("kind",), ("name",), ("written_at",), ("headroom",),
    ("cpu_saturation",), ("capacity", "memory_bytes"), ("capacity", "cpu_cores"),
    ("capacity", "measured_at"), ("capacity", "bogus"), ("host_cost", "memory_bytes"),
    ("host_cost", "method"), ("host_cost", "containers"), ("host_cost", "measured_at"),
    ("limits", 0, "capacity"), ("limits", 0, "resource"), ("limits", 0, "per_service"),
    ("disk_probe", "sequential_write_bytes_per_second"), ("filesystems",), ("reserve",),
])


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = doc
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
    if value is None:
        if isinstance(target, dict):
            target.pop(path[-1], None)
    else:
        target[path[-1]] = value


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(_paths, _values), min_size=1, max_size=3))
def test_edited_file_reads_or_fails_with_one_line(tmp_path: Path,
                                                  edits: list[tuple[Any, Any]]) -> None:
    doc = copy.deepcopy(GOOD)
    for path, value in edits:
        _set(doc, path, value)
    try:
        text = dumps_toml(doc)
    except InvalidParameter:
        return  # not even writable as TOML (a value TOML cannot hold)
    p = tmp_path / "m.toml"
    p.write_text(text)
    try:
        m = Machine.from_spec(str(p))
    except InvalidParameter as exc:
        assert "\n" not in str(exc)
        return
    # what was accepted is a usable machine
    assert all(v >= 0 for v in m.capacity.values())
    assert all(v >= 0 for v in m.host_cost.values())


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_reads_or_fails_with_one_line(tmp_path: Path, text: str) -> None:
    p = tmp_path / "m.toml"
    p.write_text("schema_version = 1\nkind = \"capacity.machine\"\n" + text)
    try:
        Machine.from_spec(str(p))
    except InvalidParameter as exc:
        assert "\n" not in str(exc)
