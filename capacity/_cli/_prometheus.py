"""The Prometheus source options, shared by ``fit``, ``report`` and ``backtest``.

One decorator adds the options and hands the command one ``prometheus`` argument: None
when ``--prometheus`` is not given, else a :class:`PrometheusSource` that loads the samples.
Secrets are never taken on the command line (``ps`` shows it to every user): the basic-auth
password comes from ``$CAPACITY_PROMETHEUS_PASSWORD``, the bearer token from a file or
``$CAPACITY_PROMETHEUS_TOKEN``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ._common import DURATION

#: how far back --prometheus reads when --since is not given, seconds
DEFAULT_PROMETHEUS_SINCE_S = 86400.0

#: parameter name -> its flag
_OPTIONS = {
    "prometheus_url": "--prometheus", "step_s": "--step", "selector": "--selector",
    "group_by": "--group-by", "prometheus_user": "--prometheus-user",
    "prometheus_token_file": "--prometheus-token-file", "prometheus_ca": "--prometheus-ca",
    "prometheus_insecure": "--prometheus-insecure", "prometheus_cert": "--prometheus-cert",
    "prometheus_key": "--prometheus-key", "prometheus_timeout_s": "--prometheus-timeout",
}
_DEFAULT_GROUP_BY = "compose,pod-owner,image,name"
_DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PrometheusSource:
    """What the ``--prometheus`` options asked for; :meth:`load` reads the samples."""

    url: str
    step_s: float | None
    selector: str | None
    group_by: str
    user: str | None
    token_file: Path | None
    ca_file: Path | None
    insecure: bool
    cert_file: Path | None
    key_file: Path | None
    timeout_s: float

    def api(self) -> Any:
        from ..sources._prometheus import PrometheusAPI

        token = os.environ.get("CAPACITY_PROMETHEUS_TOKEN") or None
        if self.token_file is not None:
            try:
                token = self.token_file.read_text().strip()
            except OSError as exc:
                raise click.BadParameter(f"{self.token_file}: {exc.strerror or exc}",
                                         param_hint="--prometheus-token-file") from exc
        return PrometheusAPI(
            self.url,
            username=self.user,
            password=os.environ.get("CAPACITY_PROMETHEUS_PASSWORD") if self.user else None,
            bearer_token=token,
            ca_file=str(self.ca_file) if self.ca_file else None,
            verify=not self.insecure,
            cert_file=str(self.cert_file) if self.cert_file else None,
            key_file=str(self.key_file) if self.key_file else None,
            timeout_s=self.timeout_s,
        )

    def load(self, since_s: float | None) -> Any:
        """The samples of the last ``since_s`` seconds (default one day)."""
        from .._pipeline import load_prometheus
        from ..sources._prometheus import parse_group_by

        with self.api() as api:
            return load_prometheus(
                api, since_s=since_s or DEFAULT_PROMETHEUS_SINCE_S, step_s=self.step_s,
                selector=self.selector, group_by=parse_group_by(self.group_by),
            )


def prometheus_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the ``--prometheus`` options; the command receives ``prometheus`` instead."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _OPTIONS}
        url = values["prometheus_url"]
        if url is None:
            defaults = {"group_by": _DEFAULT_GROUP_BY,
                        "prometheus_timeout_s": _DEFAULT_TIMEOUT_S}
            given = [flag for n, flag in _OPTIONS.items()
                     if values[n] not in (None, False, defaults.get(n))]
            if given:
                raise click.UsageError(f"{given[0]} needs --prometheus URL")
            kwargs["prometheus"] = None
        else:
            kwargs["prometheus"] = PrometheusSource(
                url=url, step_s=values["step_s"], selector=values["selector"],
                group_by=values["group_by"], user=values["prometheus_user"],
                token_file=values["prometheus_token_file"], ca_file=values["prometheus_ca"],
                insecure=values["prometheus_insecure"], cert_file=values["prometheus_cert"],
                key_file=values["prometheus_key"], timeout_s=values["prometheus_timeout_s"],
            )
        return command(**kwargs)

    path = click.Path(path_type=Path, dir_okay=False)
    options = [
        click.option("--prometheus", "prometheus_url", metavar="URL", default=None,
                     help="Read cAdvisor/kubelet container series from this Prometheus server "
                          "(e.g. http://prometheus:9090); --since says how far back "
                          "(default 1d)."),
        click.option("--step", "step_s", type=DURATION, default=None,
                     help="With --prometheus: keep at most one scrape per STEP (rates average "
                          "over the longer intervals; fewer rows after the read). Every raw "
                          "sample is still downloaded. Default: every scrape."),
        click.option("--selector", default=None,
                     help="With --prometheus: a label selector, e.g. '{job=\"cadvisor\"}'."),
        click.option("--group-by", default=_DEFAULT_GROUP_BY, show_default=True,
                     help="With --prometheus: service grouping rules, first match wins: "
                          "compose, pod-owner, image, name, label:NAME."),
        click.option("--prometheus-user", default=None,
                     help="Basic auth user; the password is read from "
                          "$CAPACITY_PROMETHEUS_PASSWORD."),
        click.option("--prometheus-token-file", type=path, default=None,
                     help="A file holding a bearer token (or set $CAPACITY_PROMETHEUS_TOKEN)."),
        click.option("--prometheus-ca", type=path, default=None,
                     help="CA bundle to verify the server's TLS certificate."),
        click.option("--prometheus-insecure", is_flag=True,
                     help="Do not verify the server's TLS certificate (test servers only)."),
        click.option("--prometheus-cert", type=path, default=None,
                     help="Client certificate (mutual TLS)."),
        click.option("--prometheus-key", type=path, default=None,
                     help="Key of --prometheus-cert."),
        click.option("--prometheus-timeout", "prometheus_timeout_s", type=DURATION,
                     default=f"{_DEFAULT_TIMEOUT_S:g}s", show_default=True,
                     help="Bound on each request; failed requests are retried 3 times."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper

