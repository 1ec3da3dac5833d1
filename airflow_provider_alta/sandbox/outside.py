"""Simulated outside clients: other programs on the same Alta account spending its rate window.

A one-shot ``spend`` counts N requests now. A background spender sends ``per_minute`` requests per
window (the window of the limit in force when it was set; 60 s when the limit is off), spread
evenly: the k-th goes out ``k * window / per_minute`` seconds after it was set, on the sandbox's
clock. ``tick`` sends whatever is due, so a test with an injected clock drives it by hand; the
sandbox also ticks it from a daemon thread that stops with the server.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta.sandbox.ratelimit import Clock

MAX_PER_MINUTE = 1_000_000.0
MAX_SPEND = 1_000_000
#: ``(account, requests) -> (allowed, refused)``: the account's limiter.
Spend = Callable[[str, int], tuple[int, int]]


@dataclass
class _Totals:
    per_minute: float = 0.0
    sent: int = 0
    counted: int = 0
    refused: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_minute": self.per_minute,
            "sent": self.sent,
            "counted": self.counted,
            "refused": self.refused,
        }


@dataclass
class _Spender:
    interval: float
    since: float
    issued: int = 0


def per_minute_value(value: Any) -> float:
    """``per_minute`` checked: a finite number from 0 to ``MAX_PER_MINUTE``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"per_minute: must be a number of requests, got {value!r}")
    if not 0 <= value <= MAX_PER_MINUTE:
        raise ValueError(f"per_minute: must be from 0 to {MAX_PER_MINUTE:g}, got {value!r}")
    return float(value)


def requests_value(value: Any) -> int:
    """``requests`` checked: a whole number from 0 to ``MAX_SPEND``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SPEND:
        raise ValueError(f"requests: must be a whole number from 0 to {MAX_SPEND}, got {value!r}")
    return value


class OutsideClients:
    """The outside clients of every account. Thread-safe."""

    def __init__(self, spend: Spend, clock: Clock, window: Callable[[], float]) -> None:
        self._spend = spend
        self._clock = clock
        self._window = window
        self._lock = threading.Lock()
        self._totals: dict[str, _Totals] = {}
        self._spenders: dict[str, _Spender] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def spend(self, account: str, requests: int) -> dict[str, Any]:
        """Count ``requests`` requests of ``account`` now; what the window took and refused."""
        with self._lock:
            allowed, refused = self._send(account, requests_value(requests))
            return {"account": account, "requests": requests, "counted": allowed, "refused": refused}

    def set_rate(self, account: str, per_minute: float) -> dict[str, Any]:
        """Start (or change, or with 0 stop) the background spender of ``account``."""
        rate = per_minute_value(per_minute)
        with self._lock:
            totals = self._totals.setdefault(account, _Totals())
            totals.per_minute = rate
            if rate:
                self._spenders[account] = _Spender(self._window() / rate, self._clock())
            else:
                self._spenders.pop(account, None)
            self._tick_locked()
            answer = {"account": account, **totals.to_dict()}
        if rate:
            self._ensure_thread()
        self._wake.set()
        return answer

    def tick(self) -> None:
        """Send every request the spenders owe by now."""
        with self._lock:
            self._tick_locked()

    def stats(self) -> dict[str, dict[str, Any]]:
        """What each account's outside client sent, was counted and was refused."""
        with self._lock:
            return {account: totals.to_dict() for account, totals in self._totals.items()}

    def reset(self) -> None:
        """Stop every spender and forget the totals."""
        with self._lock:
            self._spenders.clear()
            self._totals.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (the spenders stop with it)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _send(self, account: str, requests: int) -> tuple[int, int]:
        allowed, refused = self._spend(account, requests) if requests else (0, 0)
        totals = self._totals.setdefault(account, _Totals())
        totals.sent += requests
        totals.counted += allowed
        totals.refused += refused
        return allowed, refused

    def _tick_locked(self) -> None:
        now = self._clock()
        for account, spender in self._spenders.items():
            due = math.floor((now - spender.since) / spender.interval + 1e-9) + 1
            if due > spender.issued:
                self._send(account, due - spender.issued)
                spender.issued = due

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="alta-sandbox-outside", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before ticking: a change made after this wakes the wait below
            with self._lock:
                self._tick_locked()
                intervals = [spender.interval for spender in self._spenders.values()]
            self._wake.wait(min(0.05, max(0.002, min(intervals) / 4)) if intervals else None)
