"""profiles.json is written compactly (a trace on one line) and exactly (the same values)."""

from __future__ import annotations

import json

from capacity._pipeline import fit_profiles, load_demo
from capacity.model._profile import Profiles, _json_default

#: one number a line (the old layout) against lists on one line: at least this much smaller
MAX_SIZE_RATIO = 0.8


def test_profiles_json_is_compact_and_exact() -> None:
    profiles = fit_profiles(load_demo())
    text = profiles.to_json()
    loose = json.dumps(profiles.to_dict(), indent=1, default=_json_default, allow_nan=False)
    assert json.loads(text) == json.loads(loose), "the same values, only laid out differently"
    assert Profiles.from_json(text) == profiles
    assert len(text) < MAX_SIZE_RATIO * len(loose), (len(text), len(loose))
    traces = [line for line in text.splitlines() if line.lstrip().startswith('"trace": [')]
    assert traces and all(line.rstrip().rstrip(",").endswith("]") for line in traces)
    # objects of objects stay indented, one key a line
    assert '\n "services": {\n' in text
