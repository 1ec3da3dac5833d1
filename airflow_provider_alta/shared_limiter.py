"""One rate budget per Alta account, shared by every process and worker, kept in Redis. No Airflow.

Alta allows ``calls_per_minute`` requests per account (every token of the account, every endpoint)
in a rolling window. A :class:`Pacer` only spaces one task's calls; when several tasks, DAGs or
workers use one account, a :class:`SharedLimiter` caps their sum. It satisfies
:class:`~airflow_provider_alta.pacing.Gate`; :class:`~airflow_provider_alta.client.AltaClient`
applies it to every request it sends when the connection names a ``rate_limiter_url``::

    limiter = SharedLimiter("redis://127.0.0.1:6379/0", budget_key=settings.budget_key, calls_per_minute=100)
    limiter.acquire()  # blocks until this request fits in the account's window
    try:
        client.trigger(call)
    finally:
        limiter.release()  # the request has ended: it counts from now for one window

Semantics:

- **Budget.** The window is named by the budget key (Alta's host and the connection's account,
  :attr:`~airflow_provider_alta.config.AltaSettings.budget_key`), so two tokens of one account
  share it. ``token=`` instead names it by the token (as before accounts existed).
- **Limit.** ``limit = floor(calls_per_minute * window_seconds / 60)`` calls in any
  ``window_seconds``, rounded down so the limiter never allows more than the configured rate
  (``window_seconds`` other than 60 is for time-compressed tests). A ``ceiling`` (the rate Alta's
  ``RateLimit-*`` headers state, :mod:`airflow_provider_alta.rate_budget`) lowers it while lower,
  never below one call per window.
- **Admission that cannot be tipped over by jitter.** Alta counts a call when it *arrives*,
  somewhere between the permit and the answer. A permit is therefore held in Redis as *in
  flight* until :meth:`release` stamps it with the time the answer came back, and it counts for
  one whole window from that stamp. A new permit is granted only when fewer than ``limit``
  calls are in flight or ended less than a window ago; so any two calls ``limit`` apart arrive
  at least a window apart however late the first one reached Alta (a slow network, a starved
  CPU, a paused process). A permit never released (the process died mid-call) counts as in
  flight for ``hold_seconds`` and then for one more window.
- **Margin.** The window is stretched by ``margin`` (1 % by default) for clock-rate differences.
- **Storage.** One Lua script checks and inserts atomically in a sorted set keyed by a
  fingerprint (``sha256(...)[:16]``) of the budget key or token; the token itself never reaches
  Redis or a log.
- **Clock.** Timestamps come from Redis (``TIME``) inside the scripts, so every process on
  every host shares one clock: the hosts' clocks need not be synchronised.
- **Blocking.** ``acquire`` waits (with ``sleep``, so a stop can cut it short) until the oldest
  counted call leaves the window, then tries again. ``timeout`` bounds the wait; when the next
  free slot is already known to be past it, :class:`SharedLimiterTimeout` is raised at once.
- **Failures.** An unreachable Redis raises :class:`SharedLimiterUnavailable` within about
  ``redis_timeout`` seconds; it never hangs and never lets a call through unlimited.

Every process using one budget should use the same ``calls_per_minute``, ``window_seconds`` and
``margin``. Redis holds the window only in memory: after a Redis restart the budget starts
empty, and the client's 429 handling covers the overlap.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_alta.pacing import DEFAULT_MARGIN, Ceiling, GateError, lowered

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "alta:ratelimit"
DEFAULT_REDIS_TIMEOUT = 5.0
DEFAULT_HOLD_SECONDS = 300.0
EXTRA_HINT = "pip install 'airflow-provider-alta[redis]'"
URL_SCHEMES = ("redis", "rediss", "unix")
_RETRY_BUFFER = 0.001  # seconds added to each computed wait (clock granularity)

# KEYS[1] the window; ARGV: limit, window ms, hold ms, member. Entries are scored with the time they
# stop being in flight (the answer's time, or now + hold while the call is out); an entry counts
# while its score is within one window of now. Returns {1, 0} when admitted, else {0, wait ms}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
    redis.call('ZADD', KEYS[1], now + hold, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], hold + 2 * window)
    return {1, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')[2])
return {0, math.min(oldest, now) + window - now + 1}
"""
# KEYS[1] the window; ARGV[1] the member: the call has ended, it counts one window from now.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'LT', now, ARGV[1])
"""


class SharedLimiterError(GateError):
    """The shared limiter could not grant a permit. Nothing was sent."""


class SharedLimiterTimeout(SharedLimiterError, TimeoutError):
    """No permit within ``timeout`` seconds."""


class SharedLimiterUnavailable(SharedLimiterError, ConnectionError):
    """Redis could not be reached or answered with an error."""


def token_fingerprint(token: str) -> str:
    """A short, stable, non-reversible name for a token: the first 16 hex digits of its SHA-256.

    The provider's one token fingerprint: Redis keys use it, and the sandbox shows a prefix of it.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def bucket_key(token: str, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """The Redis key of a token's window: ``PREFIX:FINGERPRINT`` (never the token)."""
    return f"{prefix}:{token_fingerprint(token)}"


def budget_bucket_key(budget_key: str, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """The Redis key of an account's window: ``PREFIX:budget:FINGERPRINT`` of the budget key."""
    return f"{prefix}:budget:{token_fingerprint(budget_key)}"


def derive_limit(calls_per_minute: float, window_seconds: float = 60.0) -> int:
    """Acquisitions allowed per window: ``floor(calls_per_minute * window_seconds / 60)``, at least 1."""
    _check_positive("calls_per_minute", calls_per_minute)
    _check_positive("window_seconds", window_seconds)
    limit = math.floor(calls_per_minute * window_seconds / 60.0 + 1e-9)
    if limit < 1:
        raise ValueError(
            f"{calls_per_minute:g} calls per minute allows no call in a {window_seconds:g} s window; "
            "use a longer window"
        )
    return limit


def enforced_window_ms(window_seconds: float, margin: float = DEFAULT_MARGIN) -> int:
    """The window the limiter enforces, in milliseconds: ``window_seconds / (1 - margin)``, rounded up."""
    _check_positive("window_seconds", window_seconds)
    _check_margin(margin)
    return math.ceil(window_seconds * 1000.0 / (1.0 - margin))


def safe_url(url: str) -> str:
    """``url`` without user name or password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def check_url(url: str) -> str:
    """Accept ``redis://``, ``rediss://`` and ``unix://`` URLs; raise ``ValueError`` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the shared limiter needs a Redis URL such as redis://127.0.0.1:6379/0")
    scheme = urlsplit(url.strip()).scheme
    if scheme not in URL_SCHEMES:
        raise ValueError(
            f"the shared limiter needs a redis://, rediss:// or unix:// URL, got {safe_url(url)!r}"
        )
    return url.strip()


class SharedLimiter:
    """At most ``limit`` calls per rolling window across every process on one Redis and budget.

    The budget is ``budget_key`` (an account: see the module docstring) or, if not given, ``token``.
    ``timeout`` (seconds, ``None`` for no bound) limits how long :meth:`acquire` blocks;
    ``redis_timeout`` bounds each Redis round trip and connection attempt; ``hold_seconds`` is
    how long a permit that is never released counts as in flight (longer than any call lasts);
    ``sleep`` is how :meth:`acquire` waits; ``ceiling`` may lower the rate (calls per minute).
    Each thread releases the permits it acquired, last first.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        budget_key: str | None = None,
        calls_per_minute: float,
        window_seconds: float = 60.0,
        timeout: float | None = None,
        margin: float = DEFAULT_MARGIN,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        ceiling: Ceiling | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = check_url(url)
        if budget_key is not None:
            if not isinstance(budget_key, str) or not budget_key:
                raise ValueError("budget_key must be a non-empty string")
        elif not isinstance(token, str) or not token:
            raise ValueError("the shared limiter needs a budget_key or the API token (to name its budget)")
        self.configured_limit = derive_limit(calls_per_minute, window_seconds)
        self.interval_ms = enforced_window_ms(window_seconds, margin)
        if timeout is not None and not (timeout >= 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be None or a finite number of seconds >= 0, got {timeout!r}")
        _check_positive("redis_timeout", redis_timeout)
        _check_positive("hold_seconds", hold_seconds)
        if not key_prefix:
            raise ValueError("key_prefix must not be empty")
        self.calls_per_minute = calls_per_minute
        self.window_seconds = window_seconds
        self.margin = margin
        self.timeout = timeout
        self.hold_ms = math.ceil(hold_seconds * 1000)
        self.ceiling = ceiling
        self._sleep = sleep
        if budget_key is not None:
            self.key = budget_bucket_key(budget_key, key_prefix)
            self.budget = f"budget {budget_key!r}"
        else:
            assert token is not None
            self.key = bucket_key(token, key_prefix)
            self.budget = f"token sha256:{token_fingerprint(token)}"
        self.url = safe_url(url)
        self._held = threading.local()
        self._redis: Redis = _connect(url, redis_timeout)
        self._acquire: Script = self._redis.register_script(_ACQUIRE)
        self._release: Script = self._redis.register_script(_RELEASE)
        from redis.exceptions import RedisError

        try:
            self._redis.ping()
        except RedisError as exc:
            self._redis.close()
            raise self._unavailable(exc) from None

    def __repr__(self) -> str:
        return (
            f"SharedLimiter(url={self.url!r}, {self.budget}, limit={self.limit}, "
            f"window_ms={self.interval_ms})"
        )

    @property
    def limit(self) -> int:
        """Calls allowed per window now: the configured limit, lowered by the ceiling (at least 1)."""
        rate = lowered(self.calls_per_minute, self.ceiling)
        if rate >= self.calls_per_minute:
            return self.configured_limit
        return max(1, min(self.configured_limit, math.floor(rate * self.window_seconds / 60.0 + 1e-9)))

    # --- Gate ----------------------------------------------------------------------------------

    def acquire(self) -> float:
        """Block until one more call fits in the token's window; return the seconds spent.

        Raises :class:`SharedLimiterTimeout` when ``timeout`` would be exceeded and
        :class:`SharedLimiterUnavailable` when Redis fails.
        """
        from redis.exceptions import RedisError

        start = time.monotonic()
        deadline = None if self.timeout is None else start + self.timeout
        member = uuid.uuid4().hex
        try:
            while True:
                limit = self.limit
                wait = self._attempt(member, limit)
                if wait is None:
                    self._members().append(member)
                    return time.monotonic() - start
                wait += _RETRY_BUFFER
                if deadline is not None and time.monotonic() + wait > deadline:
                    raise SharedLimiterTimeout(
                        f"no permit within {self.timeout:g} s: the next free slot for {self.budget} is "
                        f"{wait:.3f} s away ({limit} calls per {self.interval_ms / 1000:g} s, shared "
                        f"through {self.url})"
                    )
                self._sleep(wait)
        except RedisError as exc:
            raise self._unavailable(exc) from None

    def release(self) -> None:
        """The call of this thread's last permit has ended: from now it counts for one window.

        Never raises: a permit Redis could not stamp stays in flight until ``hold_seconds`` pass.
        """
        from redis.exceptions import RedisError

        members = self._members()
        if not members:
            return
        member = members.pop()
        try:
            self._release(keys=[self.key], args=[member])
        except RedisError as exc:
            log.warning(
                "shared limiter: could not release a permit in Redis (%s); it counts for %g s more",
                type(exc).__name__,
                self.hold_ms / 1000,
            )

    def close(self) -> None:
        """Close the Redis connections. The window in Redis is kept for the other processes."""
        self._redis.close()

    def __enter__(self) -> SharedLimiter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    def _members(self) -> list[str]:
        members: list[str] | None = getattr(self._held, "members", None)
        if members is None:
            members = self._held.members = []
        return members

    def _attempt(self, member: str, limit: int) -> float | None:
        """One atomic check-and-insert: ``None`` when admitted, else seconds to wait."""
        answer = self._acquire(keys=[self.key], args=[limit, self.interval_ms, self.hold_ms, member])
        if not isinstance(answer, list) or len(answer) != 2:
            raise TypeError("the shared limiter needs a synchronous Redis client")
        admitted, wait_ms = (int(value) for value in answer)
        return None if admitted else wait_ms / 1000.0

    def _unavailable(self, exc: Exception) -> SharedLimiterUnavailable:
        return SharedLimiterUnavailable(
            f"shared rate limiter: Redis at {self.url} failed ({type(exc).__name__}: {exc}); no call was sent"
        )


def _connect(url: str, timeout: float) -> Redis:
    """A Redis client with bounded connect/read times and a short retry (about one second)."""
    try:
        from redis import Redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ImportError(f"the shared limiter needs redis: {EXTRA_HINT}") from exc
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.1), 2),
    }
    return Redis.from_url(url, **options)


def _check_positive(name: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_margin(margin: float) -> None:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
