"""The one request path to ``POST /assistant/calls``, and the resend rule. Pure Python: no Airflow.

Alta has no idempotency key, so a request that may have reached Alta is never sent again:
- 429 means nothing was placed: wait (``Retry-After``, else the seconds in the message, else 60 s,
  never less than 1 s nor more than an hour) and resend, within a wait budget and a bounded number
  of resends;
- a failure before the request left this machine (DNS, refused, connect timeout) is retried with
  exponential backoff and full jitter;
- anything else without a clear answer (read timeout, reset after sending, 5xx, an answer that
  does not arrive in full before the answer deadline) raises :class:`AltaAmbiguousOutcomeError`.

Reading an answer is bounded: the status line, headers and body must all arrive within
``ResendPolicy.answer_deadline`` (default twice the read timeout) of sending, however slowly the
bytes trickle in, and at most ``ResendPolicy.max_answer_bytes`` of body are read. Once a status line
has arrived its status decides: a ``2xx`` whose body is cut, too slow or too large is still a placed
call. Interim ``1xx`` answers are skipped and the final answer that follows them is read; a ``1xx``
that is not followed by a final answer in time is ambiguous (the request was received).
"""

from __future__ import annotations

import contextvars
import email.utils
import http.client
import io
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from airflow_provider_alta import __version__
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.masking import mask_phone, mask_text
from airflow_provider_alta.payload import AssistantCall

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-alta/{__version__}"
DEFAULT_RATE_LIMIT_WAIT = 60.0
MIN_RATE_LIMIT_WAIT = 1.0  # a 429 that says "now" (0, negative, a past date) is still waited out
MAX_RATE_LIMIT_WAIT = 3600.0  # an absurd wait (inf, 1e309) is taken as an hour, never as a crash
_RETRY_IN_MESSAGE = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
MAX_ANSWER_BYTES = 1024 * 1024  # a call's answer is tiny: read no more than this of any body
ANSWER_DEADLINE_FACTOR = 2.0  # default answer deadline: this many read timeouts after sending
_MAX_INTERIM_ANSWERS = 32  # 1xx answers skipped before the status is taken as it is (ambiguous)
_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ResendPolicy:
    """How long to wait out 429s, how often to retry requests that never left, how long to read answers.

    ``answer_deadline`` is the most seconds, counted from sending, that the whole answer (status
    line, headers and body) may take; ``None`` means :data:`ANSWER_DEADLINE_FACTOR` times the read
    timeout. ``max_answer_bytes`` is the most body bytes read.
    """

    rate_limit_budget: float = 300.0
    rate_limit_resends: int = 10
    connect_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    answer_deadline: float | None = None
    max_answer_bytes: int = MAX_ANSWER_BYTES

    def __post_init__(self) -> None:
        deadline = self.answer_deadline
        if deadline is not None and not (math.isfinite(deadline) and deadline > 0):
            raise ValueError(f"answer_deadline must be positive seconds or None, got {deadline!r}")
        if self.max_answer_bytes < 1:
            raise ValueError(f"max_answer_bytes must be at least 1, got {self.max_answer_bytes!r}")


@dataclass(frozen=True)
class _Answer:
    """A final answer: its status, headers, parsed JSON body (``None`` when absent, cut or not JSON)."""

    status: int
    headers: Mapping[str, str]
    body: Any
    raw: bytes


# --- bounded answers ---------------------------------------------------------------------------
#
# The answer deadline must hold however slowly the bytes come, so it is enforced where the bytes
# are read: the client's connections build their responses over a reader that shortens each
# socket read to the time left. The seconds come from a context variable set around each request,
# so the same connection classes serve every request of the session.

_ANSWER_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "alta_answer_deadline", default=None
)


class _DeadlineReader(io.RawIOBase):
    """A socket reader that raises ``TimeoutError`` once ``deadline`` (``time.monotonic``) has passed."""

    def __init__(self, sock: Any, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._io = sock.makefile("rb", buffering=0)  # holds a reference, like http.client's own reader
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._io.fileno())

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer did not arrive in full before the answer deadline")
        timeout = self._sock.gettimeout()
        self._sock.settimeout(left if timeout is None else min(timeout, left))
        try:
            read: int | None = self._io.readinto(buffer)
            return read
        finally:
            self._sock.settimeout(timeout)  # the connection may be reused: leave its timeout as it was

    def close(self) -> None:
        if not self.closed:
            self._io.close()
        super().close()


class _WithDeadline:
    """Hands ``http.client.HTTPResponse`` a deadline-bounded reader instead of the socket's own."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _BoundedResponse(http.client.HTTPResponse):
    """``http.client``'s response, read within the answer deadline, with interim (1xx) answers skipped."""

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        seconds = _ANSWER_DEADLINE.get()
        if seconds is not None:
            sock = _WithDeadline(sock, time.monotonic() + seconds)
        super().__init__(sock, debuglevel, method, url)

    def _read_status(self) -> tuple[str, int, str]:
        """The first non-interim status line. An interim answer (RFC 9110, 15.2) has headers, no body."""
        read_status: Callable[[], tuple[str, int, str]] = super()._read_status  # type: ignore[misc]
        for _ in range(_MAX_INTERIM_ANSWERS):
            version, status, reason = read_status()
            if not _is_interim(status):
                break
            http.client.parse_headers(self.fp)  # type: ignore[arg-type]
            log.debug("Alta sent an interim %s answer; reading the final one", status)
        return version, status, reason


def _is_interim(status: int) -> bool:
    """1xx but not 101: a protocol switch (never asked for) ends HTTP on the connection."""
    return 100 <= status < 200 and status != 101


class _BoundedHTTPConnection(HTTPConnection):
    response_class = _BoundedResponse


class _BoundedHTTPSConnection(HTTPSConnection):
    response_class = _BoundedResponse


class _BoundedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _BoundedHTTPConnection


class _BoundedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedHTTPSConnection


_BOUNDED_POOLS = {"http": _BoundedHTTPPool, "https": _BoundedHTTPSPool}


class _BoundedAdapter(HTTPAdapter):
    """An adapter whose connections read answers within the deadline (direct and through HTTP proxies)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_BOUNDED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # a SOCKS manager keeps its own pools
            manager.pool_classes_by_scheme = dict(_BOUNDED_POOLS)
        return manager


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


def never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have left this machine: DNS failure, refused, connect timeout."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


class AltaClient:
    """A reusable client for one Alta token and base URL, over one ``requests.Session``."""

    def __init__(
        self,
        settings: AltaSettings,
        *,
        retry: ResendPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        body_guard: Callable[[str], None] | None = None,
        success_log_level: int = logging.INFO,
    ) -> None:
        self.settings = settings
        self.retry = retry or ResendPolicy()
        self.body_guard = body_guard  # sees the JSON text before it is sent; raises to refuse it
        self.success_log_level = success_log_level
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.session = requests.Session()
        # urllib3 must never resend on its own: every resend decision is made here.
        adapter = _BoundedAdapter(max_retries=Retry(total=0, connect=0, read=0, redirect=0, status=0))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {
                "Authorization": f"Bearer {settings.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AltaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def trigger(self, call: AssistantCall) -> dict[str, Any]:
        """Place one call. Returns the JSON body of the 200 answer, or ``{}`` when it has none."""
        text = json.dumps(call.to_json(), separators=(",", ":"))
        if self.body_guard is not None:
            self.body_guard(text)
        body = text.encode()
        who = mask_phone(call.phone_number)
        waited = 0.0
        resends = 0
        start = time.monotonic()
        while True:
            answer = self._post_with_connect_retries(body, who)
            if answer.status != 429:
                break
            message = _field(answer.body, "message")
            wait = retry_after_seconds(answer.headers, message)
            if waited + wait > self.retry.rate_limit_budget or resends >= self.retry.rate_limit_resends:
                log.warning("Alta call to %s: 429, wait budget spent after %.1f s", who, waited)
                raise AltaRateLimitError(
                    f"rate limited; retry after {wait:g} s (waited {waited:g} s of a "
                    f"{self.retry.rate_limit_budget:g} s budget, resent {resends} of at most "
                    f"{self.retry.rate_limit_resends} times). Nothing was placed.",
                    retry_after=wait,
                    error=_field(answer.body, "error") or "TooManyRequests",
                )
            resends += 1
            log.info("Alta call to %s: 429, waiting %.1f s before resending (nothing was placed)", who, wait)
            self._sleep(wait)
            waited += wait
        elapsed_ms = (time.monotonic() - start) * 1000
        if 200 <= answer.status < 300:
            log.log(
                self.success_log_level,
                "Alta call to %s: placed (%s) in %.0f ms",
                who,
                answer.status,
                elapsed_ms,
            )
            if isinstance(answer.body, dict):
                return answer.body
            return {} if answer.body is None else {"body": answer.body}
        log.warning("Alta call to %s: failed (%s) in %.0f ms", who, answer.status, elapsed_ms)
        raise _error_for(answer)

    def check_token(self) -> tuple[bool, str]:
        """Check the token without placing a call: send ``{}``, which Alta must reject as invalid."""
        try:
            answer = self._post_once(b"{}")
        except AltaAPIError as exc:
            return False, f"could not reach Alta at {self.settings.base_url}: {exc}"
        if answer.status == 400:
            return True, "Token accepted: Alta rejected the empty test request as invalid, as expected."
        if answer.status == 401:
            return False, "Token rejected: Alta answered 401 Unauthorized."
        if answer.status == 429:
            return False, "Alta answered 429 (rate limited); the token could not be checked. Try again later."
        return False, f"Unexpected answer {answer.status} from {self.settings.calls_url}."

    def _post_with_connect_retries(self, body: bytes, who: str) -> _Answer:
        attempt = 0
        while True:
            try:
                return self._post_once(body)
            except AltaConnectionError as exc:
                if attempt >= self.retry.connect_retries:
                    raise
                cap = min(self.retry.backoff_max, self.retry.backoff_base * 2**attempt)
                delay = self._rng.uniform(0, cap)
                attempt += 1
                log.warning(
                    "Alta call to %s: request never left this machine (%s); retry %d/%d in %.2f s",
                    who, exc.message, attempt, self.retry.connect_retries, delay,
                )  # fmt: skip
                self._sleep(delay)

    def _post_once(self, body: bytes) -> _Answer:
        deadline = self.retry.answer_deadline
        if deadline is None:
            deadline = ANSWER_DEADLINE_FACTOR * self.settings.timeout[1]
        token = _ANSWER_DEADLINE.set(deadline)
        try:
            return self._exchange(body)
        finally:
            _ANSWER_DEADLINE.reset(token)

    def _exchange(self, body: bytes) -> _Answer:
        url = self.settings.calls_url
        try:
            response = self.session.post(
                url, data=body, timeout=self.settings.timeout, allow_redirects=False, stream=True
            )
        except requests.RequestException as exc:
            kind = type(exc).__name__
            if never_sent(exc):
                reason = getattr(exc.args[0], "reason", exc.args[0]) if exc.args else exc
                raise AltaConnectionError(f"could not connect to {url} ({kind}: {reason})") from None
            raise AltaAmbiguousOutcomeError(
                f"no answer from {url} after sending ({kind}): the call may have been placed. "
                "It was not resent; check before calling this person again."
            ) from None
        with response:
            raw, complete = _read_body(response, self.retry.max_answer_bytes)
        try:
            parsed = json.loads(raw) if raw and complete else None
        except ValueError:
            parsed = None
        return _Answer(response.status_code, response.headers, parsed, raw)


def _read_body(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that is all of it. Never raises.

    The status line arrived, so the outcome is known; a body that breaks off, stalls past the
    answer deadline or exceeds ``limit`` is left unread and its connection closed, never reused.
    """
    status = response.status_code
    if status < 200:  # a final answer may still be on its way: this connection is spent
        response.raw.close()
        return b"", True
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK_BYTES):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                log.warning(
                    "Alta answered %s with a body over %d bytes; the rest was not read", status, limit
                )
                return b"".join(chunks)[:limit], False
    except requests.RequestException as exc:
        log.warning(
            "Alta answered %s but its body could not be read in full (%s)", status, type(exc).__name__
        )
        return b"".join(chunks), False
    return b"".join(chunks), True


def _field(body: Any, name: str) -> str | None:
    value = body.get(name) if isinstance(body, dict) else None
    return mask_text(str(value)) if value is not None else None


def _error_for(answer: _Answer) -> AltaAPIError:
    status = answer.status
    error = _field(answer.body, "error")
    message = _field(answer.body, "message") or mask_text(answer.raw[:200].decode(errors="replace"))
    if status == 400:
        return AltaValidationError(message or "Invalid request body", status=status, error=error)
    if status == 401:
        return AltaAuthenticationError(message or "Invalid API token", status=status, error=error)
    if status < 200:  # an interim answer with no final one: the request was received, no more is known
        return AltaAmbiguousOutcomeError(
            f"Alta answered {status} (interim) and no final answer followed: the call may have been "
            "placed. It was not resent; check before calling this person again.",
            status=status,
            error=error,
        )
    if status >= 500:
        return AltaAmbiguousOutcomeError(
            f"Alta answered {status} ({message or 'server error'}): the call may have been placed. "
            "It was not resent; check before calling this person again.",
            status=status,
            error=error,
        )
    return AltaAPIError(message or f"unexpected HTTP {status}", status=status, error=error)
