"""Rolling-window rate limiting per key (the sandbox keys by account), with an injectable clock.

Semantics (Alta documents 100 requests a minute per account and no window shape, so the sandbox
picks the strictest reading a client must survive): a request is *allowed* when fewer than
``limit`` requests of the same key were allowed during the last ``window`` seconds. Only allowed
requests are remembered; a 429 does not extend the wait. An entry allowed at ``t`` stops counting
at exactly ``t + window``. ``Retry-After`` and ``reset`` are the whole number of seconds until the
oldest entry in the window expires, rounded up and at least 1: after ``remaining`` reaches 0, every
request is refused until then, and the first one after it is allowed.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?)?\s*$")
_OFF = frozenset({"", "off", "none", "unlimited", "0"})


@dataclass(frozen=True)
class RateLimit:
    """``limit`` requests per ``window`` seconds."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("rate limit must allow at least 1 request")
        if not self.window > 0:
            raise ValueError("rate limit window must be positive")

    @classmethod
    def parse(cls, text: str | RateLimit | None) -> RateLimit | None:
        """Parse ``"100/60"`` (requests/seconds); ``None``, ``"off"`` or ``"0"`` disable the limit."""
        if text is None or isinstance(text, RateLimit):
            return text
        if text.strip().lower() in _OFF:
            return None
        match = _SPEC.match(text)
        if match is None:
            raise ValueError(
                f"invalid rate limit {text!r}: expected REQUESTS/SECONDS such as '100/60' or 'off'"
            )
        return cls(int(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one rate-limit check.

    ``used`` counts the window's entries after the check; ``reset`` is the seconds until its oldest
    entry expires (``retry_after`` when refused); ``limit`` is ``None`` when limiting is off.
    """

    allowed: bool
    retry_after: int = 0
    used: int = 0
    limit: RateLimit | None = None
    reset: int = 0

    @property
    def remaining(self) -> int:
        """Requests left in the window after this one (0 when refused)."""
        return 0 if self.limit is None or not self.allowed else max(0, self.limit.limit - self.used)


class RollingWindowLimiter:
    """A rolling-window limiter keyed by token fingerprint. Thread-safe."""

    def __init__(self, limit: RateLimit | None, clock: Clock = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    @property
    def limit(self) -> RateLimit | None:
        """The limit in force, or ``None`` when limiting is off."""
        return self._limit

    def set_limit(self, limit: RateLimit | None) -> None:
        """Change the limit; the remembered requests are kept."""
        with self._lock:
            self._limit = limit

    def check(self, key: str) -> Decision:
        """Record and allow one request for ``key``, or refuse it with a retry delay."""
        with self._lock:
            limit = self._limit
            if limit is None:
                return Decision(allowed=True)
            now = self._clock()
            hits = self._hits.setdefault(key, deque())
            self._expire(hits, now, limit.window)
            if len(hits) >= limit.limit:
                wait = _seconds_until(hits[0] + limit.window, now)
                return Decision(False, retry_after=wait, used=len(hits), limit=limit, reset=wait)
            hits.append(now)
            reset = _seconds_until(hits[0] + limit.window, now)
            return Decision(True, used=len(hits), limit=limit, reset=reset)

    def spend(self, key: str, requests: int) -> tuple[int, int]:
        """``requests`` requests for ``key`` now, as ``check`` would see them: ``(allowed, refused)``."""
        if requests < 0:
            raise ValueError("requests: must be 0 or more")
        with self._lock:
            limit = self._limit
            if limit is None:
                return requests, 0
            now = self._clock()
            hits = self._hits.setdefault(key, deque())
            self._expire(hits, now, limit.window)
            allowed = min(requests, max(0, limit.limit - len(hits)))
            hits.extend([now] * allowed)
            return allowed, requests - allowed

    def usage(self) -> dict[str, int]:
        """How many allowed requests each key has inside the current window."""
        with self._lock:
            if self._limit is None:
                return {key: 0 for key in self._hits}
            now = self._clock()
            for hits in self._hits.values():
                self._expire(hits, now, self._limit.window)
            return {key: len(hits) for key, hits in self._hits.items()}

    def reset(self) -> None:
        """Forget every remembered request."""
        with self._lock:
            self._hits.clear()

    @staticmethod
    def _expire(hits: deque[float], now: float, window: float) -> None:
        horizon = now - window
        while hits and hits[0] <= horizon:
            hits.popleft()


def _seconds_until(moment: float, now: float) -> int:
    return max(1, math.ceil(moment - now))
