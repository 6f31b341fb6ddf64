"""``capacity fit``: samples (store, file or the demo) -> profiles.json."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .._output import check_output_path, head_of, is_stream, write_text_file
from ._common import DURATION, stderr
from ._prometheus import PrometheusSource, prometheus_options

#: a profiles file as capacity writes it: ``"kind": "capacity.profiles"`` near its top
_PROFILES_KIND = re.compile(r'"kind"\s*:\s*"capacity\.profiles"')


def _is_profiles_file(path: Path) -> bool:
    """Whether ``path`` is a profiles file capacity wrote, or an empty regular file (``out=$(
    mktemp)``: nothing to lose), so that ``--out`` may replace it."""
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
            return True
        return _PROFILES_KIND.search(head_of(path)) is not None
    except OSError:
        return False


@click.command()
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
              help="Read samples from this SQLite store (written by 'capacity collect').")
@click.option("--since", "since_s", type=DURATION, default=None,
              help="With --store: only the last DURATION (e.g. 24h). Default: everything. "
                   "With --prometheus: default 1d.")
@click.option("--samples", "samples_file", type=click.Path(path_type=Path), default=None,
              help="Read a samples table from a Parquet or CSV file.")
@click.option("--demo", is_flag=True, help="Fit the bundled real recording.")
@click.option("--out", "out_path", type=click.Path(path_type=Path),
              default=Path("profiles.json"), show_default=True,
              help="Where to write the versioned profiles JSON (an existing file is replaced "
                   "only when it is a profiles file capacity wrote).")
@prometheus_options
def fit(
    store_path: Path | None,
    since_s: float | None,
    samples_file: Path | None,
    demo: bool,
    out_path: Path,
    prometheus: PrometheusSource | None,
) -> int:
    """Fit one replica's demand profile per service and write profiles.json.

    Exactly one source: --store, --samples, --demo or --prometheus URL. Prints one line per
    service on stdout (samples, replicas, span, confidence); warnings about thin data and
    notes on what was done to the input (rows dropped for an outlying time, values clipped
    at a limit) go to stderr.
    """
    from .._pipeline import fit_profiles, load_samples
    from .._units import format_duration

    given = [flag for flag, v in (("--store", store_path), ("--samples", samples_file),
                                  ("--demo", demo), ("--prometheus", prometheus)) if v]
    if len(given) > 1:
        raise click.UsageError(f"give one source, not {' and '.join(given)}")
    if since_s is not None and given and given[0] not in ("--store", "--prometheus"):
        raise click.UsageError(f"--since filters the store; it does not apply to {given[0]}")
    if not given:
        from ..store._sqlite import default_store_path

        store_path = default_store_path()
    check_output_path(out_path, what="a profiles file", flag="--out",
                      is_ours=_is_profiles_file)
    if prometheus is not None:
        data = prometheus.load(since_s)
    else:
        data = load_samples(store=store_path, since_s=since_s, samples_file=samples_file,
                            demo=demo)
    profiles = fit_profiles(data)
    write_text_file(out_path, profiles.to_json() + "\n", what="a profiles file",
                    flag="--out", is_ours=_is_profiles_file)
    # with the profiles on stdout (--out /dev/stdout), the summary goes to stderr
    to_stderr = is_stream(out_path) and str(out_path) in ("/dev/stdout", "/dev/fd/1",
                                                           "/proc/self/fd/1")
    for name, sp in profiles.services.items():
        click.echo(
            f"{name}\t{sp.n_samples} samples\t{sp.replicas_seen} replica(s)\t"
            f"{format_duration(sp.span_s)}\tconfidence {getattr(sp, 'confidence', 'n/a')}",
            err=to_stderr,
        )
        for warning in sp.warnings:
            stderr(f"capacity: warning: {name}: {warning}")
        for note in sp.notes:
            stderr(f"capacity: note: {name}: {note}")
    stderr(f"capacity: {len(profiles)} profile(s) written to {out_path}")
    return 0
