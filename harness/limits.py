"""The limits every stage of untrusted input runs under: wall time and address space.

One case (per dtype), one file's loading, `harness show` of a case and one fuzz example each run
inside `time_limit(seconds)` and `memory_limit(megabytes)`; past either, the block raises
CaseTimeout or MemoryError, which that stage's boundary turns into an `error` with file:line.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import CaseTimeout


@contextmanager
def memory_limit(megabytes: float) -> Iterator[None]:
    """Cap the address space while the block runs: an allocation past it raises MemoryError."""
    try:
        import resource
    except ImportError:  # not on this platform: no limit
        yield
        return
    if megabytes <= 0:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    in_use = _address_space()
    cap = in_use + int(megabytes * 2**20)
    for outer in (soft, hard):  # nested in another limit: never above it
        if outer != resource.RLIM_INFINITY:
            cap = min(cap, outer)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


_DEADLINES: list[float] = []  # the time limits now in force, outermost first (they nest)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread only; elsewhere no limit is set). Limits
    nest: an inner one never extends an outer one, and an outer one that ran out while an inner
    block swallowed its CaseTimeout fires as soon as the inner block ends."""
    usable = seconds > 0 and threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not usable:
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    _DEADLINES.append(time.monotonic() + seconds)
    _arm()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _DEADLINES.pop()
        signal.signal(signal.SIGALRM, previous)
        if _DEADLINES:
            _arm()


def _arm() -> None:
    """The timer for the nearest deadline, and again every second after it: user code that
    swallows one CaseTimeout (an `except BaseException`) gets the next."""
    left = min(_DEADLINES) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), 1.0)
