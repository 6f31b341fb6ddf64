"""The label every test container carries, and this session's value of it.

A module of its own (not ``conftest``): test files import it by name, and several folders have
a ``conftest.py``, so ``from conftest import ...`` would find whichever was imported last.
"""

from __future__ import annotations

import uuid

TEST_LABEL = "capacity.test"
#: one value per pytest session, so a session removes only what it started
SESSION_ID = uuid.uuid4().hex[:8]
