"""The bounded HTTP transport under :class:`~airflow_provider_alta.client.AltaClient`. Pure Python.

One exchange with Alta is bounded in time and size: the status line, headers and body must all
arrive within an answer deadline counted from sending, however slowly the bytes trickle in, and at
most ``max_bytes`` of body are read. Interim ``1xx`` answers are skipped to the final one. The
deadline is enforced where the bytes are read: the session's connections build their responses
over a reader that shortens each socket read to the time left; the seconds come from a context
variable set around each request, so the same connection classes serve every request.

Nothing here decides anything about resending: :func:`exchange` raises ``requests``' own errors
and the client maps them (:func:`never_sent` says whether a request can have left this machine).
"""

from __future__ import annotations

import contextvars
import http.client
import io
import json
import logging
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

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024  # a call's answer is tiny: read no more than this of any body
_MAX_INTERIM_ANSWERS = 32  # 1xx answers skipped before the status is taken as it is
_CHUNK_BYTES = 64 * 1024

_ANSWER_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "alta_answer_deadline", default=None
)


@dataclass(frozen=True)
class Answer:
    """A final answer: status, headers, parsed JSON body (``None`` when absent, cut or not JSON), raw bytes.

    ``complete`` is False when the body broke off, stalled past the deadline or exceeded the limit.
    """

    status: int
    headers: Mapping[str, str]
    body: Any
    raw: bytes
    complete: bool = True


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
            if not is_interim(status):
                break
            http.client.parse_headers(self.fp)  # type: ignore[arg-type]
            log.debug("Alta sent an interim %s answer; reading the final one", status)
        return version, status, reason


def is_interim(status: int) -> bool:
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


def bounded_session(headers: Mapping[str, str]) -> requests.Session:
    """A session over bounded connections that never resends on its own, with ``headers`` set."""
    session = requests.Session()
    # urllib3 must never resend on its own: every resend decision is made by the client.
    adapter = _BoundedAdapter(max_retries=Retry(total=0, connect=0, read=0, redirect=0, status=0))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(headers)
    return session


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    body: bytes | None,
    timeout: tuple[float, float],
    deadline: float,
    max_bytes: int,
) -> Answer:
    """One request and its bounded answer; redirects are not followed. Raises ``requests`` errors."""
    token = _ANSWER_DEADLINE.set(deadline)
    try:
        response = session.request(
            method, url, data=body, timeout=timeout, allow_redirects=False, stream=True
        )
        with response:
            raw, complete = read_body(response, max_bytes)
    finally:
        _ANSWER_DEADLINE.reset(token)
    try:
        parsed = json.loads(raw) if raw and complete else None
    except ValueError:
        parsed = None
    return Answer(response.status_code, response.headers, parsed, raw, complete)


def read_body(response: requests.Response, limit: int) -> tuple[bytes, bool]:
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


def failure_reason(exc: requests.RequestException) -> str:
    """``Kind: reason`` of a request that failed before an answer, for messages (no URL credentials)."""
    reason = getattr(exc.args[0], "reason", exc.args[0]) if exc.args else exc
    return f"{type(exc).__name__}: {reason}"
