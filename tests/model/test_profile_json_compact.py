"""profiles.json is written compactly (long lists packed, a list on one line) and exactly
(the same values: the profile read back is equal to the one written)."""

from __future__ import annotations

import json
from typing import Any

from capacity._pipeline import fit_profiles, load_demo
from capacity.model._packed import is_packed, unpack
from capacity.model._profile import Profiles, _json_default

#: one number a line with every list as JSON text (the version 3 layout) against this one:
#: at least this much smaller
MAX_SIZE_RATIO = 0.5


def _unpacked(obj: Any) -> Any:
    if is_packed(obj):
        return unpack(obj)
    if isinstance(obj, dict):
        return {k: _unpacked(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpacked(v) for v in obj]
    return obj


def test_profiles_json_is_compact_and_exact() -> None:
    profiles = fit_profiles(load_demo())
    text = profiles.to_json()
    loose = json.dumps(
        _unpacked(profiles.to_dict()), indent=1, default=_json_default, allow_nan=False
    )
    assert _unpacked(json.loads(text)) == json.loads(loose), "the same values, laid out otherwise"
    assert Profiles.from_json(text) == profiles
    assert len(text) < MAX_SIZE_RATIO * len(loose), (len(text), len(loose))
    traces = [line for line in text.splitlines() if line.lstrip().startswith('"trace": ')]
    assert traces and all(line.rstrip().rstrip(",").endswith(("]", "}")) for line in traces)
    assert any('"packed": "uint16"' in line for line in traces)
    # objects of objects stay indented, one key a line
    assert '\n "services": {\n' in text
