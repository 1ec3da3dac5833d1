"""Pacing calls under Alta's rate limit. Pure Python: no Airflow.

A :class:`Pacer` spreads one task's calls evenly (no bursts that draw 429s); a shared limiter
(:mod:`airflow_provider_alta.shared_limiter`) caps the aggregate over every process on one
account. Both satisfy :class:`Gate`, and both take a ``ceiling``: a rate Alta stated
(:mod:`airflow_provider_alta.rate_budget`) lowers them when it is below their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_MARGIN = 0.01


class GateError(RuntimeError):
    """A gate cannot decide (for example its shared store is down). Nothing has been sent."""


class Gate(Protocol):
    """Something a call must pass before it is sent, and hear about when it has ended."""

    def acquire(self) -> float:
        """Block until the next call may go; return the seconds waited."""
        ...

    def release(self) -> None:
        """The call this thread's last :meth:`acquire` let through has ended (answered or failed)."""
        ...


Ceiling = Callable[[], float | None]
"""Calls per minute a gate must not exceed, read at each acquire; ``None`` (or not positive): no ceiling."""


def lowered(calls_per_minute: float, ceiling: Ceiling | None) -> float:
    """``calls_per_minute``, or the ceiling when it is a lower positive rate."""
    cap = None if ceiling is None else ceiling()
    if cap is None or not (0 < cap < calls_per_minute and math.isfinite(cap)):
        return calls_per_minute
    return float(cap)


class Pacer:
    """Even spacing at ``calls_per_minute``, slowed by ``margin`` so jitter never tips a window over.

    Slots are scheduled from the previous slot, not from when ``acquire`` returned, so a slow
    call does not lower the rate, and an idle pacer does not save up a burst. ``ceiling`` lowers
    the rate while it returns less (see :func:`lowered`).
    """

    def __init__(
        self,
        calls_per_minute: float,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        ceiling: Ceiling | None = None,
    ) -> None:
        if calls_per_minute <= 0:
            raise ValueError(f"calls_per_minute must be positive, got {calls_per_minute!r}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {margin!r}")
        self.calls_per_minute = calls_per_minute
        self.margin = margin
        self.ceiling = ceiling
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        """Seconds between slots at the current (possibly lowered) rate."""
        return 60.0 / lowered(self.calls_per_minute, self.ceiling) / (1 - self.margin)

    def acquire(self) -> float:
        interval = self.interval
        with self._lock:
            now = self._clock()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def release(self) -> None:
        """Nothing to do: the spacing counts from each slot."""
