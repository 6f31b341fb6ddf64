"""The block device behind a path, for the live disk I/O tests (blkio rules are per device).

A module of its own, importable by name from every test folder (pytest's pythonpath = tests).
"""

from __future__ import annotations

import os
from pathlib import Path


def whole_disk_of(path: str) -> str | None:
    """``/dev/<disk>`` holding ``path`` (the parent disk of a partition), or None."""
    st = os.stat(path)
    sysdir = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not sysdir.exists():
        return None
    sysdir = sysdir.resolve()
    if (sysdir / "partition").exists():
        sysdir = sysdir.parent
    dev = Path("/dev") / sysdir.name
    return str(dev) if dev.exists() else None
