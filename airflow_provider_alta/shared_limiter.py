"""One rate budget per Alta token, shared by every process and worker, kept in Redis. No Airflow.

Alta allows ``calls_per_minute`` calls per token in a rolling window. A :class:`Pacer` only
spaces one task's calls; when several tasks, DAGs or workers use one token, a
:class:`SharedLimiter` caps their sum. It satisfies :class:`~airflow_provider_alta.pacing.Gate`::

    limiter = SharedLimiter("redis://127.0.0.1:6379/0", token=token, calls_per_minute=100)
    limiter.acquire()  # blocks until this call fits in the token's window
    client.trigger(call)

Semantics:

- **Limit.** ``limit = floor(calls_per_minute * window_seconds / 60)`` acquisitions in any
  ``window_seconds``, rounded down so the limiter never allows more than the configured rate
  (``window_seconds`` other than 60 is for time-compressed tests, e.g. ``1000`` per minute over
  a 6 s window is 100 per 6 s).
- **Margin.** The window the limiter enforces is ``window_seconds / (1 - margin)`` (60.6 s for
  60 s and the default 1 %), so the aggregate is at most ``(1 - margin)`` of the limit and a
  call may reach Alta up to ``margin * window_seconds`` (0.6 s) after its permit without
  Alta's own arrival-time window ever seeing more than ``limit``.
- **Storage.** pyrate-limiter's :class:`RedisBucket` with its sliding-window log: one Lua
  script counts and inserts atomically in a sorted set keyed by the token's fingerprint
  (``sha256(token)[:16]``; the token itself never reaches Redis or a log).
- **Clock.** Timestamps come from Redis (``TIME``), read under a short Redis lock together with
  the check, so every process on every host shares one clock and the log stays in order: the
  hosts' clocks need not be synchronised. Only the durations the processes sleep are local.
- **Blocking.** ``acquire`` sleeps exactly until the oldest entry leaves the window, then
  retries with a fresh timestamp (pyrate-limiter's own blocking loop is not used: it retries
  with its first timestamp advanced by the sleep, which lags the real time and can let two
  processes take one freed slot). ``timeout`` bounds the wait; when the next free slot is
  already known to be past it, :class:`SharedLimiterTimeout` is raised at once.
- **Failures.** An unreachable Redis raises :class:`SharedLimiterUnavailable` within about
  ``redis_timeout`` seconds; it never hangs and never lets a call through unlimited.

Every process using one token must use the same ``calls_per_minute``, ``window_seconds`` and
``margin``. Redis holds the window only in memory: after a Redis restart the budget starts
empty, and the client's 429 handling covers the overlap.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_alta.pacing import DEFAULT_MARGIN, GateError

if TYPE_CHECKING:
    from pyrate_limiter import RedisBucket
    from redis import Redis

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "alta:ratelimit"
DEFAULT_REDIS_TIMEOUT = 5.0
EXTRA_HINT = "pip install 'airflow-provider-alta[redis]'"
URL_SCHEMES = ("redis", "rediss", "unix")
_LOCK_TTL = 5.0  # seconds a crashed holder can block the others; the lock is held for two round trips
_LOCK_POLL = 0.002  # seconds between tries for a lock another process holds
_RETRY_BUFFER = 0.001  # seconds added to each computed wait (clock granularity)
_ITEM_NAME = "call"


class SharedLimiterError(GateError):
    """The shared limiter could not grant a permit. Nothing was sent."""


class SharedLimiterTimeout(SharedLimiterError, TimeoutError):
    """No permit within ``timeout`` seconds."""


class SharedLimiterUnavailable(SharedLimiterError, ConnectionError):
    """Redis could not be reached or answered with an error."""


def token_fingerprint(token: str) -> str:
    """A short, stable, non-reversible name for a token: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def bucket_key(token: str, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """The Redis key of a token's window: ``PREFIX:FINGERPRINT`` (never the token)."""
    return f"{prefix}:{token_fingerprint(token)}"


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
    """At most ``limit`` acquisitions per rolling window across every process on one Redis and token.

    ``timeout`` (seconds, ``None`` for no bound) limits how long :meth:`acquire` blocks;
    ``redis_timeout`` bounds each Redis round trip and connection attempt. See the module
    docstring for the limit, the margin and the clock.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str,
        calls_per_minute: float,
        window_seconds: float = 60.0,
        timeout: float | None = None,
        margin: float = DEFAULT_MARGIN,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
    ) -> None:
        url = check_url(url)
        if not isinstance(token, str) or not token:
            raise ValueError("the shared limiter needs the API token (to name its budget)")
        self.limit = derive_limit(calls_per_minute, window_seconds)
        self.interval_ms = enforced_window_ms(window_seconds, margin)
        if timeout is not None and not (timeout >= 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be None or a finite number of seconds >= 0, got {timeout!r}")
        _check_positive("redis_timeout", redis_timeout)
        if not key_prefix:
            raise ValueError("key_prefix must not be empty")
        self.calls_per_minute = calls_per_minute
        self.window_seconds = window_seconds
        self.margin = margin
        self.timeout = timeout
        self.key = bucket_key(token, key_prefix)
        self.fingerprint = token_fingerprint(token)
        self.url = safe_url(url)
        self._local = threading.Lock()
        self._redis: Redis = _connect(url, redis_timeout)
        self._lock_key = self.key + ":lock"
        try:
            self._bucket: RedisBucket = self._new_bucket()
        except BaseException:
            self._redis.close()
            raise

    def __repr__(self) -> str:
        return (
            f"SharedLimiter(url={self.url!r}, token=sha256:{self.fingerprint}, limit={self.limit}, "
            f"window_ms={self.interval_ms})"
        )

    # --- Gate ----------------------------------------------------------------------------------

    def acquire(self) -> float:
        """Block until one more call fits in the token's window; return the seconds spent.

        Raises :class:`SharedLimiterTimeout` when ``timeout`` would be exceeded and
        :class:`SharedLimiterUnavailable` when Redis fails.
        """
        from redis.exceptions import RedisError

        start = time.monotonic()
        deadline = None if self.timeout is None else start + self.timeout
        try:
            while True:
                wait = self._attempt(deadline)
                if wait is None:
                    return time.monotonic() - start
                wait += _RETRY_BUFFER
                if deadline is not None and time.monotonic() + wait > deadline:
                    raise SharedLimiterTimeout(
                        f"no permit within {self.timeout:g} s: the next free slot for token "
                        f"sha256:{self.fingerprint} is {wait:.3f} s away ({self.limit} calls per "
                        f"{self.interval_ms / 1000:g} s, shared through {self.url})"
                    )
                time.sleep(wait)
        except RedisError as exc:
            raise self._unavailable(exc) from None

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

    def _new_bucket(self) -> RedisBucket:
        from pyrate_limiter import Rate, RedisBucket
        from redis.exceptions import RedisError

        try:
            bucket = RedisBucket.init([Rate(self.limit, self.interval_ms)], self._redis, self.key)
        except RedisError as exc:
            raise self._unavailable(exc) from None
        assert isinstance(bucket, RedisBucket)
        return bucket

    def _attempt(self, deadline: float | None) -> float | None:
        """One check-and-insert under the Redis lock: ``None`` when admitted, else seconds to wait."""
        from pyrate_limiter import RateItem
        from redis.exceptions import LockError, NoScriptError

        with self._local:
            lock = self._redis.lock(self._lock_key, timeout=_LOCK_TTL, sleep=_LOCK_POLL, thread_local=False)
            blocking_timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not lock.acquire(blocking_timeout=blocking_timeout):
                raise SharedLimiterTimeout(
                    f"no permit within {self.timeout:g} s: another process held the limiter's lock "
                    f"for token sha256:{self.fingerprint}"
                )
            try:
                seconds, micros = self._redis.time()
                now_ms = int(seconds) * 1000 + int(micros) // 1000
                item = RateItem(_ITEM_NAME, now_ms)
                try:
                    admitted = self._bucket.put(item)
                except NoScriptError:  # Redis restarted and forgot the script: load it again
                    self._bucket = self._new_bucket()
                    admitted = self._bucket.put(item)
                wait_ms = 0 if admitted else self._bucket.waiting(item)
            finally:
                try:
                    lock.release()
                except LockError:
                    log.warning(
                        "shared limiter lock for token sha256:%s expired before release (held > %g s)",
                        self.fingerprint,
                        _LOCK_TTL,
                    )
        if not isinstance(admitted, bool) or not isinstance(wait_ms, int):
            raise TypeError("the shared limiter needs a synchronous Redis client")
        if admitted:
            self._tidy(now_ms)
            return None
        if wait_ms < 0:  # pyrate-limiter: the item can never fit (cannot happen with weight 1)
            raise SharedLimiterError(f"a call can never fit in {self.limit} per {self.interval_ms} ms")
        return wait_ms / 1000.0

    def _tidy(self, now_ms: int) -> None:
        """Drop entries no later check can count, and let an idle window expire on its own."""
        from redis.exceptions import RedisError

        pipe = self._redis.pipeline(transaction=False)
        # Later checks have timestamps >= now_ms, so entries before now_ms - interval never count again.
        pipe.zremrangebyscore(self.key, 0, now_ms - self.interval_ms - 1)
        pipe.pexpire(self.key, 2 * self.interval_ms)
        try:
            pipe.execute()
        except RedisError as exc:  # the permit stands; the next acquire reports a lasting failure
            log.warning("shared limiter: could not tidy the window in Redis (%s)", type(exc).__name__)

    def _unavailable(self, exc: Exception) -> SharedLimiterUnavailable:
        return SharedLimiterUnavailable(
            f"shared rate limiter: Redis at {self.url} failed ({type(exc).__name__}: {exc}); no call was sent"
        )


def shared_limiter_from_url(
    url: str | None,
    *,
    token: str,
    calls_per_minute: float,
    window_seconds: float = 60.0,
    timeout: float | None = None,
    margin: float = DEFAULT_MARGIN,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
) -> SharedLimiter | None:
    """A :class:`SharedLimiter` on ``url``, or ``None`` when ``url`` is empty (no shared limit)."""
    if url is None or not url.strip():
        return None
    return SharedLimiter(
        url,
        token=token,
        calls_per_minute=calls_per_minute,
        window_seconds=window_seconds,
        timeout=timeout,
        margin=margin,
        key_prefix=key_prefix,
        redis_timeout=redis_timeout,
    )


def _connect(url: str, timeout: float) -> Redis:
    """A Redis client with bounded connect/read times and a short retry (about one second)."""
    try:
        import pyrate_limiter  # noqa: F401
        from redis import Redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ImportError(f"the shared limiter needs redis and pyrate-limiter: {EXTRA_HINT}") from exc
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
