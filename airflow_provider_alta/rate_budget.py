"""The rate budget: one rule, one place. Pure Python: no Airflow.

Alta allows 100 requests a minute **per account**, for every endpoint together, shared by every
token of the account; every request counts. One budget is named by
:attr:`~airflow_provider_alta.config.AltaSettings.budget_key` (Alta's host and the connection's
``account``), and everything that sends a request consults it:

- :class:`HeaderBudget` reads what Alta says about the window: after each answer its
  ``RateLimit-Remaining`` / ``RateLimit-Reset`` (and ``RateLimit-Limit`` / ``RateLimit-Policy``)
  when present and parseable; before each request, when the window has no room left (Remaining
  spent, counting the requests sent since that answer), the request waits for the reset. One
  instance per budget key and process (:func:`budget_for`), so every hook, client and trigger of a
  process on one account shares it. Headers are read defensively: garbage is ignored, Reset is
  clamped to [0, 3600] s, nothing here raises or loops.
- A stated limit lower than the configured ``calls_per_minute`` wins
  (:meth:`HeaderBudget.effective_calls_per_minute`): the shared limiter and the batch's pacer
  read it as their ceiling.
- A 429's wait comes from ``Retry-After`` (seconds or HTTP-date), else the seconds named in the
  message, else 60 s, always within [1 s, 1 h] (:func:`retry_after_seconds`).
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from airflow_provider_alta.exceptions import AltaRateLimitError

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT_WAIT = 60.0
MIN_RATE_LIMIT_WAIT = 1.0  # a 429 that says "now" (0, negative, a past date) is still waited out
MAX_RATE_LIMIT_WAIT = 3600.0  # an absurd wait (inf, 1e309) is taken as an hour, never as a crash
DEFAULT_WINDOW = 60.0  # Alta's documented window, when a header does not name one
MAX_RESET = 3600.0  # RateLimit-Reset and policy windows are clamped to this many seconds
MIN_ROOM_WAIT = 0.01  # the shortest wait for room: a tiny Reset cannot make a caller spin
PROBE_WAIT = 0.05  # after a reset, how often the others look whether the first request's answer came
_RETRY_IN_MESSAGE = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_COUNT = re.compile(r"[0-9]{1,12}")  # a whole number of requests; longer runs are garbage


# --- 429 waits -----------------------------------------------------------------------------------


def retry_after_seconds(headers: Mapping[str, str], message: str | None, now: float | None = None) -> float:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP-date), the message, else 60.

    Always finite and within [:data:`MIN_RATE_LIMIT_WAIT`, :data:`MAX_RATE_LIMIT_WAIT`]: a value that
    is not a number of seconds (``nan``, ``-5``) counts as absent.
    """
    return _bounded(_stated_wait(headers, message, now))


def _stated_wait(headers: Mapping[str, str], message: str | None, now: float | None) -> float:
    value = (headers.get("Retry-After") or "").strip()
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                return email.utils.parsedate_to_datetime(value).timestamp() - (
                    time.time() if now is None else now
                )
            except (TypeError, ValueError, OverflowError):
                pass
        else:
            if seconds >= 0:  # False for nan
                return seconds
    match = _RETRY_IN_MESSAGE.search(message or "")
    return float(match.group(1)) if match else DEFAULT_RATE_LIMIT_WAIT


def _bounded(seconds: float) -> float:
    if math.isnan(seconds):
        return DEFAULT_RATE_LIMIT_WAIT
    return min(MAX_RATE_LIMIT_WAIT, max(MIN_RATE_LIMIT_WAIT, seconds))


class WaitBudget:
    """One operation's waits for rate limits (429s and full windows): at most ``seconds`` in all.

    Each method either counts the wait (the caller then waits it) or raises
    :class:`AltaRateLimitError` with ``retry_after`` set: nothing was sent.
    """

    def __init__(self, seconds: float, resends: int) -> None:
        self.seconds = seconds
        self.resends_allowed = resends
        self.waited = 0.0
        self.resends = 0

    def room(self, wait: float, what: str) -> None:
        """Wait ``wait`` s for the window's reset (nothing sent yet), within the budget."""
        if self.waited + wait > self.seconds:
            log.warning(
                "Alta %s: the account's window is full; wait budget spent after %.1f s", what, self.waited
            )
            raise AltaRateLimitError(
                f"Alta's RateLimit headers say this account's window has no room for {wait:g} s more "
                f"(waited {self.waited:g} s of a {self.seconds:g} s budget). Nothing was sent.",
                retry_after=wait,
                status=None,
            )
        self.waited += wait

    def rate_limited(self, wait: float, what: str, nothing: str, error: str | None) -> None:
        """Wait ``wait`` s after a 429 and resend, within the budget and the resends allowed."""
        if self.waited + wait > self.seconds or self.resends >= self.resends_allowed:
            log.warning("Alta %s: 429, wait budget spent after %.1f s", what, self.waited)
            raise AltaRateLimitError(
                f"rate limited; retry after {wait:g} s (waited {self.waited:g} s of a "
                f"{self.seconds:g} s budget, resent {self.resends} of at most "
                f"{self.resends_allowed} times). {nothing}",
                retry_after=wait,
                error=error or "TooManyRequests",
            )
        self.resends += 1
        self.waited += wait


# --- RateLimit-* headers -------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitHeaders:
    """What an answer's ``RateLimit-*`` headers say; ``None`` for a header absent or unreadable.

    ``remaining`` is the smallest Remaining stated, ``reset`` the largest Reset (seconds, clamped to
    [0, :data:`MAX_RESET`]), ``calls_per_minute`` the lowest rate stated by Limit and Policy.
    """

    remaining: int | None = None
    reset: float | None = None
    calls_per_minute: float | None = None
    window: float | None = None  # seconds, of the policy that states the lowest rate

    @classmethod
    def parse(cls, headers: Mapping[str, str] | None) -> RateLimitHeaders:
        """Read the headers; never raises, whatever they hold."""
        if headers is None:
            return cls()
        try:
            return _parse(headers)
        except Exception:  # defensive: a header mapping that misbehaves is as good as none
            return cls()


def _parse(headers: Mapping[str, str]) -> RateLimitHeaders:
    remaining = _smallest(_counts(headers.get("RateLimit-Remaining")))
    resets = [s for s in map(_seconds, _items(headers.get("RateLimit-Reset"))) if s is not None]
    policies = list(_policies(headers.get("RateLimit-Policy")))
    rates = [(quota * 60.0 / window, window) for quota, window in policies]
    for limit in _counts(headers.get("RateLimit-Limit")):
        if limit >= 1:  # "0" would stop every request: not a limit but garbage; Remaining says "no room"
            window = next((w for q, w in policies if q == limit), DEFAULT_WINDOW)
            rates.append((limit * 60.0 / window, window))
    lowest = min(rates, default=None)
    return RateLimitHeaders(
        remaining=remaining,
        reset=max(resets, default=None),
        calls_per_minute=None if lowest is None else lowest[0],
        window=None if lowest is None else lowest[1],
    )


def _items(value: object) -> Iterator[str]:
    """The comma-separated items of a header value (a repeated header arrives joined by commas)."""
    if not isinstance(value, str) or len(value) > 1000:
        return
    for item in value.split(",")[:20]:
        item = item.strip()
        if item:
            yield item


def _counts(value: object) -> list[int]:
    return [int(item) for item in _items(value) if _COUNT.fullmatch(item)]


def _smallest(values: list[int]) -> int | None:
    return min(values, default=None)


def _seconds(text: str) -> float | None:
    """Seconds clamped to [0, :data:`MAX_RESET`] (``inf``: the most, ``-5``: 0); ``None`` if not a number."""
    try:
        value = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        return None
    return None if math.isnan(value) else min(MAX_RESET, max(0.0, value))


def _policies(value: object) -> Iterator[tuple[int, float]]:
    """``(quota, window seconds)`` of each readable policy: ``100;w=60`` or ``"name";q=100;w=60``."""
    for item in _items(value):
        head, *params = (part.strip() for part in item.split(";"))
        named = dict(p.split("=", 1) for p in params if "=" in p)
        quota_text = head if _COUNT.fullmatch(head) else named.get("q", "").strip()
        window = _seconds(named.get("w", "").strip() or f"{DEFAULT_WINDOW:g}")
        if not _COUNT.fullmatch(quota_text) or window is None or window <= 0:
            continue
        quota = int(quota_text)
        if quota >= 1:
            yield quota, max(1.0, window)


# --- the budget ----------------------------------------------------------------------------------


class HeaderBudget:
    """The window of one budget as Alta's answers describe it; thread-safe, never blocks itself.

    A sender calls :meth:`reserve` before each request (``0.0``: go, the request is counted; else
    the seconds to wait, nothing counted), then :meth:`settle` with the answer's headers (``None``
    when no answer came), or :meth:`cancel` when the reserved request was never sent. The latest
    readable Remaining wins; requests still in flight when it arrived count against it. A Remaining
    without a Reset lasts one window (the policy's, else 60 s). When the reset comes, how much room
    it brought is unknown (in a rolling window, perhaps one request), so one request goes first and
    the others wait for its answer: Remaining again, or no headers at all (Alta sends them only near
    the limit), which frees the budget.
    """

    def __init__(self, key: str = "", *, clock: Callable[[], float] = time.monotonic) -> None:
        self.key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._remaining: int | None = None  # as of the last answer that stated it
        self._used = 0  # requests counted against ``_remaining`` since
        self._reset_at: float | None = None  # None with a Remaining: probing after a reset
        self._stated: float | None = None  # calls per minute stated by Limit / Policy

    def __repr__(self) -> str:
        return f"HeaderBudget({self.key!r}, remaining={self._remaining}, stated={self._stated})"

    def reserve(self) -> float:
        """``0.0`` and the request is counted when the window has room; else the seconds until it resets."""
        with self._lock:
            now = self._clock()
            if self._reset_at is not None and now >= self._reset_at:
                self._remaining, self._reset_at, self._used = 1, None, 0  # one request probes the room
            if self._remaining is not None and self._used >= self._remaining:
                if self._reset_at is None:
                    return PROBE_WAIT
                return max(MIN_ROOM_WAIT, self._reset_at - now)
            self._in_flight += 1
            if self._remaining is not None:
                self._used += 1
            return 0.0

    def cancel(self) -> None:
        """A reserved request was not sent after all (a gate failed or a stop came): uncount it."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._used = max(0, self._used - 1)

    def settle(self, headers: Mapping[str, str] | None) -> None:
        """A reserved request ended: learn what its answer's headers say (``None``: no answer)."""
        stated = RateLimitHeaders.parse(headers)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if stated.calls_per_minute is not None:
                self._stated = stated.calls_per_minute
            probing = self._remaining is not None and self._reset_at is None
            if stated.remaining is None:
                if probing and headers is not None:  # answered after the reset without a warning: room
                    self._remaining, self._used = None, 0
                elif probing:  # the probe got no answer: another request may probe
                    self._used = max(0, self._used - 1)
                return
            reset = stated.reset
            if reset is None:
                reset = stated.window or DEFAULT_WINDOW
            self._remaining = stated.remaining
            self._used = self._in_flight  # sent before this answer, perhaps not counted in it
            self._reset_at = self._clock() + reset

    @property
    def stated_calls_per_minute(self) -> float | None:
        """The lowest rate per minute the latest ``RateLimit-Limit`` / ``-Policy`` stated, else ``None``."""
        with self._lock:
            return self._stated

    def effective_calls_per_minute(self, configured: float) -> float:
        """``configured``, or the stated rate when Alta stated a lower one."""
        stated = self.stated_calls_per_minute
        return configured if stated is None else min(configured, stated)


_BUDGETS: dict[str, HeaderBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(key: str) -> HeaderBudget:
    """This process's one :class:`HeaderBudget` for ``key`` (a settings' ``budget_key``)."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = _BUDGETS[key] = HeaderBudget(key)
        return budget


def _forget_after_fork() -> None:
    """A forked child is another process: it starts with no budgets (and no lock held by a parent thread)."""
    global _BUDGETS_LOCK
    _BUDGETS_LOCK = threading.Lock()
    _BUDGETS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
