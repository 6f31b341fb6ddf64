"""Build a tiny image FROM scratch with the host's static busybox (no registry needed).

Used by the tests, the demo recording and ``capacity verify``: busybox gives sh, dd, httpd,
wget, nc, head and sleep, enough for CPU, memory, disk and network workloads.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._errors import CapacityError

__all__ = ["BUSYBOX_IMAGE", "build_busybox_image", "find_static_busybox"]

BUSYBOX_IMAGE = "capacity-busybox:latest"


def find_static_busybox() -> Path:
    """The host's static busybox binary (Debian: package busybox-static, /bin/busybox)."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise CapacityError(
        "busybox is not installed: apt-get install -y busybox-static "
        "(the static build: a dynamic busybox cannot run in a FROM scratch image)"
    )


def build_busybox_image(
    client: Any, tag: str = BUSYBOX_IMAGE, *, labels: dict[str, str] | None = None
) -> str:
    """Build ``tag`` FROM scratch with busybox and its applet links; return the tag.

    Cheap to call again: the engine's layer cache makes an unchanged rebuild a no-op.
    """
    busybox = find_static_busybox()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy2(busybox, Path(tmp) / "busybox")
        (Path(tmp) / "Dockerfile").write_text(
            "FROM scratch\n"
            "COPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            'CMD ["/bin/sh"]\n'
        )
        client.images.build(path=tmp, tag=tag, rm=True, labels=labels or {})
    return tag
