"""Run a snippet under another checkout of capacity (the baseline) or this one, in a child.

The benchmarks of issue 14 compare this tree with the branch point side by side in one run:
``git worktree add /tmp/base d51daf9`` and ``--baseline /tmp/base``. The child prints one
JSON object on its last line of stdout; :func:`run` returns it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def run(code: str, tree: Path | None = None, timeout_s: float = 3600) -> dict[str, Any]:
    """Run ``code`` with ``tree`` (default: this checkout) first on PYTHONPATH."""
    root = str((tree or HERE).resolve())
    env = {**os.environ, "PYTHONPATH": root, "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                         text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"child failed under {root}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def trees(baseline: Path | None) -> list[tuple[str, Path | None]]:
    """[("baseline", path), ("this tree", None)], or only this tree without a baseline."""
    return ([("baseline", baseline)] if baseline else []) + [("this tree", None)]
