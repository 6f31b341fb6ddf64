"""The exception tree of ``capacity``.

Every error the library raises on purpose derives from :class:`CapacityError`; the CLI turns
each into one line on stderr and exit status 3 ("unknown": the run itself failed)::

    CapacityError
    ├── DockerUnavailable      no engine answers, or the socket refuses us
    ├── ContainerGone          a container vanished between listing and reading it
    ├── NoContainers           nothing is running to sample
    ├── InvalidSamples         samples with NaN, negative, unsorted or missing values
    ├── InvalidFile            an input file (profiles JSON, Compose YAML, store cell) that
    │                          breaks its schema: names the file, the field and the value
    ├── InsufficientData       too few samples, or a span too short, to trust a result
    ├── NotFittedError         a model used before ``fit``
    ├── ProfileVersionError    a profiles/plan file of another schema version
    ├── InvalidParameter       a parameter out of its range (also a ValueError)
    ├── StoreError             the sample store is missing, corrupt or not writable
    │   └── StoreLocked        another process holds a lock on it past the busy timeout
    └── PrometheusError        a Prometheus server is down, slow, or answered an error

A message says what was wrong, the value seen, and what to do.
"""

from __future__ import annotations

__all__ = [
    "CapacityError",
    "ContainerGone",
    "DockerUnavailable",
    "InsufficientData",
    "InvalidFile",
    "InvalidParameter",
    "InvalidSamples",
    "NoContainers",
    "NotFittedError",
    "ProfileVersionError",
    "PrometheusError",
    "StoreError",
    "StoreLocked",
]


class CapacityError(Exception):
    """Base class of every error ``capacity`` raises on purpose."""


class DockerUnavailable(CapacityError):
    """No Docker Engine answers at ``base_url``, or access to its socket is denied."""

    def __init__(self, message: str, *, base_url: str | None = None) -> None:
        super().__init__(message)
        self.base_url = base_url


class ContainerGone(CapacityError):
    """A container disappeared (removed, exited, OOM-killed) while it was being read."""

    def __init__(self, container_id: str, reason: str = "") -> None:
        msg = f"container {container_id[:12]} is gone"
        if reason:
            msg += f": {reason}"
        super().__init__(msg)
        self.container_id = container_id
        self.reason = reason


class NoContainers(CapacityError):
    """The engine answered, but no running container matched."""


class InvalidSamples(CapacityError, ValueError):
    """Samples that cannot be used as they are: NaN, inf, negative, unsorted, empty."""

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        service: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.column = column
        self.service = service
        self.value = value


class InvalidFile(CapacityError, ValueError):
    """An input file that breaks its schema, found when it is loaded.

    The message names the file, the field (a dotted path such as
    ``services.web.resources.cpu_cores.mean``), the value seen and what to do.

    Attributes
    ----------
    file : str or None
        The file (or ``"profiles text"``, ``"compose text"`` for text given directly).
    field : str or None
        Dotted path of the offending field; None when the whole file is at fault.
    value : object
        The value seen (shortened in the message when long).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.field = field
        self.value = value


class InsufficientData(CapacityError):
    """Too few samples, or too short a span, for a result that can be trusted."""


class NotFittedError(CapacityError, AttributeError):
    """An estimator was used before ``fit`` was called."""


class ProfileVersionError(CapacityError, ValueError):
    """A JSON file written with another schema version than this release reads."""


class InvalidParameter(CapacityError, ValueError):
    """A parameter outside its valid range.

    The message follows one pattern: "The 'epsilon' parameter of plan must be in [1e-12, 0.5);
    got 0.7 instead."
    """

    def __init__(self, name: str, owner: str, constraint: str, value: object) -> None:
        super().__init__(
            f"The {name!r} parameter of {owner} must be {constraint}; got {value!r} instead."
        )
        self.name = name
        self.owner = owner
        self.constraint = constraint
        self.value = value


class StoreError(CapacityError):
    """The sample store is missing, corrupt, or not writable."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreLocked(StoreError):
    """Another process held a lock on the sample store for longer than the busy timeout.

    Locked is not corrupt: the file is intact and nothing was changed. ``holders`` lists the
    processes seen holding a lock on the file (``"pid 1234 (capacity collect ...)"``), empty
    when they cannot be seen (another PID namespace, or ``/proc/locks`` unreadable);
    ``waited_s`` is how long it waited, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        holders: tuple[str, ...] = (),
        waited_s: float = 0.0,
    ) -> None:
        super().__init__(message, path=path)
        self.holders = holders
        self.waited_s = waited_s


class PrometheusError(CapacityError):
    """A Prometheus server did not answer, answered too slowly, or answered an error.

    ``url`` is the server's base URL; ``status`` the HTTP status when there was one.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
