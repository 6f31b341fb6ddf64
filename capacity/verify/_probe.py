"""User probes: a command or an HTTP URL whose exit status and latency define the SLO.

A probe is any callable ``probe(ips) -> ProbeResult`` (:class:`Probe`); ``ips`` are the
running replicas' addresses. Two are built in:

- :class:`CommandProbe`: runs a shell command on this host with ``CAPACITY_VERIFY_IPS``
  (space-separated) and ``CAPACITY_VERIFY_REPLICAS`` in its environment; passes on exit 0
  within ``max_latency_s``.
- :class:`HttpProbe`: GETs a URL (``{ip}`` in it is replaced by each replica's address in
  turn); passes on a 2xx answer within ``max_latency_s``.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["CommandProbe", "HttpProbe", "Probe", "ProbeResult"]


@dataclass(frozen=True)
class ProbeResult:
    """One probe run: passed or not, how long it took (seconds), and why it failed."""

    ok: bool
    latency_s: float
    detail: str = ""


class Probe(Protocol):
    """Anything that checks the service's SLO once."""

    description: str

    def __call__(self, ips: Sequence[str]) -> ProbeResult: ...


class CommandProbe:
    """Run ``command`` with ``sh -c``; pass on exit 0 within ``max_latency_s`` seconds."""

    def __init__(self, command: str, *, max_latency_s: float = 1.0,
                 timeout_s: float | None = None) -> None:
        self.command = command
        self.max_latency_s = max_latency_s
        self.timeout_s = timeout_s if timeout_s is not None else max(5 * max_latency_s, 5.0)
        self.description = f"command {command!r}, exit 0 within {max_latency_s:g} s"

    def __call__(self, ips: Sequence[str]) -> ProbeResult:
        env = {**os.environ, "CAPACITY_VERIFY_IPS": " ".join(ips),
               "CAPACITY_VERIFY_REPLICAS": str(len(ips))}
        start = time.monotonic()
        try:
            done = subprocess.run(["sh", "-c", self.command], env=env, capture_output=True,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return ProbeResult(False, time.monotonic() - start, f"timed out ({self.timeout_s} s)")
        latency = time.monotonic() - start
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            return ProbeResult(False, latency, f"exit {done.returncode} {tail[0][:200]}")
        if latency > self.max_latency_s:
            return ProbeResult(False, latency, f"latency {latency:.3f} s > {self.max_latency_s} s")
        return ProbeResult(True, latency)


class HttpProbe:
    """GET ``url`` (each replica's when it holds ``{ip}``); pass on 2xx within the latency."""

    def __init__(self, url: str, *, max_latency_s: float = 1.0,
                 timeout_s: float | None = None) -> None:
        self.url = url
        self.max_latency_s = max_latency_s
        self.timeout_s = timeout_s if timeout_s is not None else max(5 * max_latency_s, 5.0)
        self.description = f"GET {url}, 2xx within {max_latency_s:g} s"

    def __call__(self, ips: Sequence[str]) -> ProbeResult:
        urls = [self.url.replace("{ip}", ip) for ip in ips] if "{ip}" in self.url else [self.url]
        worst = 0.0
        for url in urls:
            start = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:
                    answer.read()
                    status = answer.status
            except (urllib.error.URLError, OSError) as exc:
                return ProbeResult(False, time.monotonic() - start, f"{url}: {exc}")
            latency = time.monotonic() - start
            worst = max(worst, latency)
            if not 200 <= status < 300:
                return ProbeResult(False, latency, f"{url}: HTTP {status}")
            if latency > self.max_latency_s:
                return ProbeResult(False, latency,
                                   f"{url}: latency {latency:.3f} s > {self.max_latency_s} s")
        return ProbeResult(True, worst)
