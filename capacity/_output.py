"""Writing one output file of ours without losing a file of the user's.

:func:`write_text_file` is how the commands write a single file (``capacity fit --out``,
the machine file of ``capacity machine probe|calibrate``):

- the text goes to a temporary file beside the target, renamed over it: an interrupted write
  leaves the old file whole, and the temporary name is unique (never ``<target>.tmp``, which
  may be a file of the user's);
- an existing target is replaced only when ``is_ours`` says it is a file capacity wrote (a
  profiles file, a machine file); anything else is refused before anything is written;
- a symbolic link is followed: the file it names is replaced, the link is kept (a
  ``profiles.json`` linked into a config repository stays a link);
- a target that is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO) is written
  in place: renaming over it would replace the device node itself;
- the file keeps its permission bits (a new one gets 0644 less the umask, not the 0600 of a
  temporary file).

Errors are :class:`~capacity.CapacityError` whose message names the path and the fix.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from ._errors import CapacityError

__all__ = ["check_output_path", "head_of", "is_stream", "write_text_file"]

#: how much of an existing file :func:`head_of` reads to tell whether it is ours
HEAD_BYTES = 64 * 1024


def head_of(path: Path) -> str:
    """The first :data:`HEAD_BYTES` of ``path`` as text (undecodable bytes replaced)."""
    with path.open("rb") as fh:
        return fh.read(HEAD_BYTES).decode("utf-8", errors="replace")


def is_stream(path: Path) -> bool:
    """Whether ``path`` names a stream rather than a file of the user's: anything under
    ``/dev`` or ``/proc`` (``/dev/stdout``, ``/dev/null``, ``/proc/self/fd/1``)."""
    parts = Path(os.path.abspath(path)).parts
    return len(parts) > 2 and parts[1] in ("dev", "proc")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target(given: Path, *, what: str, flag: str,
            is_ours: Callable[[Path], bool]) -> tuple[Path, os.stat_result | None]:
    """The file to write for ``given`` (a link's target) and its stat (None: none yet);
    refuses a folder and a regular file that is not ours. A path under ``/dev`` or
    ``/proc`` (``/dev/stdout``, ``/dev/fd/3``) is a stream the caller opened: it is written
    in place whatever it leads to (a pipe, a terminal, a file the shell redirected to)."""
    if is_stream(given):
        return given, given.stat() if given.exists() else None
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        st = target.stat()
    except FileNotFoundError:
        return target, None
    except OSError as exc:
        raise CapacityError(f"cannot write {given}: {exc.strerror or exc}; pick another path "
                            f"with {flag}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise CapacityError(f"cannot write {given}: it is a folder; give a file path with "
                            f"{flag}")
    if stat.S_ISREG(st.st_mode) and not is_ours(target):
        raise CapacityError(
            f"{given} exists and is not {what} written by capacity; nothing was changed. "
            f"Pick another path with {flag}, or move it away yourself if it may go")
    return target, st


def check_output_path(path: str | Path, *, what: str, flag: str,
                      is_ours: Callable[[Path], bool]) -> None:
    """Refuse ``path`` now, before any long work, when :func:`write_text_file` would."""
    _target(Path(path), what=what, flag=flag, is_ours=is_ours)


def write_text_file(path: str | Path, text: str, *, what: str, flag: str,
                    is_ours: Callable[[Path], bool], parents: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically, never over a file that is not ours.

    Parameters
    ----------
    path : str or Path
        The target.
    text : str
        The whole content.
    what : str
        What the file is, for messages (``"a profiles file"``).
    flag : str
        The option that chose the path, for messages (``"--out"``).
    is_ours : Callable[[Path], bool]
        Whether an existing regular file at the target is one capacity wrote (and may be
        replaced); it must not raise on a file of any content.
    parents : bool
        Create the folder when missing (else a missing folder is an error).

    Returns
    -------
    Path
        The path written (the link's target for a symbolic link).

    Raises
    ------
    CapacityError
        The target exists and is not ours (nothing is changed), is a folder, or cannot be
        written.
    """
    given = Path(path)
    target, st = _target(given, what=what, flag=flag, is_ours=is_ours)
    if is_stream(given) or (st is not None and not stat.S_ISREG(st.st_mode)):
        # a device or a FIFO (/dev/stdout, /dev/null): write into it, never rename over it
        try:
            with target.open("w") as fh:
                fh.write(text)
        except OSError as exc:
            raise CapacityError(f"cannot write {given}: {exc.strerror or exc}; pick another "
                                f"path with {flag}") from exc
        return target
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    tmp: str | None = None
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise CapacityError(f"cannot write {given}: {exc.strerror or exc}; pick another path "
                            f"with {flag}") from exc
    finally:  # any failure, Ctrl-C included: no temporary file left behind
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target
