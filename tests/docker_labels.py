"""The label every test container carries, and this session's value of it.

A module of its own (not ``conftest``): test files import it by name, and several folders have
a ``conftest.py``, so ``from conftest import ...`` would find whichever was imported last.
"""

from __future__ import annotations

import os
import uuid

TEST_LABEL = "capacity.test"
#: one value per pytest session, so a session removes only what it started
SESSION_ID = uuid.uuid4().hex[:8]

#: set by ``.ci/run``: tests that need the engine (or another real part such as Prometheus)
#: fail instead of skipping when it is missing
REQUIRE_DOCKER = os.environ.get("CAPACITY_REQUIRE_DOCKER", "") not in ("", "0", "false", "no")
