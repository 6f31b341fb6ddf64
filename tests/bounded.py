"""A wall-clock bound for tests of things that must end (never a speed assertion).

``within(seconds)`` raises :class:`Hung` in the test when the block has not returned in time:
a search without a bound fails the test instead of hanging the suite. It uses SIGALRM, so it
interrupts Python loops (where capacity's searches run); the bound is generous (tens of
seconds) because the machine is shared, and a passing test never depends on it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Hung(AssertionError):
    """The block did not return within its bound: a loop without an upper bound?"""


@contextmanager
def within(seconds: float, what: str = "the block") -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"{what} did not return within {seconds:g} s: an unbounded loop?")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
