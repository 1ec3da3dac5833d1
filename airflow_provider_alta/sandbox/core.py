"""The sandbox's behaviour, independent of HTTP: authentication, rate limit, validation, journal, stats.

Order of checks for ``POST /v1/assistant/calls`` (after any injected fault):
401 for a missing or wrong bearer token, then 429 when the token's window is full, then 400 for
the content type, the JSON and the schema, then 200. A request that passes the rate limit uses a
slot in the window even if it then fails validation, as on most real gateways.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_alta.sandbox.faults import FAULT_KINDS, OK, FaultPlan
from airflow_provider_alta.sandbox.journal import Journal, new_call_id, token_fingerprint
from airflow_provider_alta.sandbox.ratelimit import Clock, RateLimit, RollingWindowLimiter
from airflow_provider_alta.sandbox.validation import (
    InvalidBody,
    parse_body,
    validate_call,
    validation_message,
)

DEFAULT_TOKEN = "sandbox-token"  # noqa: S105 - a well-known placeholder, not a secret
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
UNAUTHORIZED_MESSAGE = "Invalid API token"
DEFAULT_RATE_LIMIT = RateLimit(100, 60.0)


@dataclass
class Reply:
    """An answer to send: status, JSON body, extra headers, and the journal record if accepted."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] | None = None


def error_reply(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error answer in Alta's shape ``{"error", "message"}``."""
    return Reply(status, {"error": error, "message": message}, dict(headers or {}))


def rate_limited_reply(retry_after: int, header: bool) -> Reply:
    """A 429 whose message names the wait, with ``Retry-After`` only when ``header`` is on."""
    message = f"Rate limit exceeded. Please retry after {retry_after} seconds."
    return error_reply(429, "TooManyRequests", message, {"Retry-After": str(retry_after)} if header else None)


def storm_reply(seconds: float, header: bool) -> Reply:
    """The 429 of an injected storm."""
    return rate_limited_reply(max(0, math.ceil(seconds)), header)


class SandboxState:
    """Everything the server knows, shared by its request threads. Thread-safe."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        retry_after_header: bool = True,
        faults: FaultPlan | None = None,
        journal: Journal | None = None,
        clock: Clock = time.monotonic,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._tokens = [token.encode("utf-8") for token in tokens]
        if not self._tokens or not all(self._tokens):
            raise ValueError("the sandbox needs at least one non-empty token")
        self._fingerprints = {token: token_fingerprint(token.decode("utf-8")) for token in self._tokens}
        self.limiter = RollingWindowLimiter(rate_limit, clock)
        self.retry_after_header = retry_after_header
        self._initial_faults = faults.to_dict() if faults is not None else None
        self.faults = faults if faults is not None else FaultPlan()
        self.journal = journal if journal is not None else Journal()
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._responses: Counter[str] = Counter()
        self._fault_counts: Counter[str] = Counter()
        self._requests = 0
        self._in_flight = 0
        self._max_in_flight = 0

    # --- the endpoint --------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str | None:
        """The fingerprint of the bearer token in ``authorization`` if it is accepted, else ``None``."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = credentials.strip().encode("utf-8", "surrogateescape")
        for token in self._tokens:
            if hmac.compare_digest(given, token):
                return self._fingerprints[token]
        return None

    def handle_call(
        self,
        authorization: str | None,
        content_type: str | None,
        raw: bytes,
        received_at: datetime | None = None,
    ) -> Reply:
        """Answer one ``POST /assistant/calls`` whose body has been read in full."""
        fingerprint = self.authenticate(authorization)
        if fingerprint is None:
            return error_reply(401, "Unauthorized", UNAUTHORIZED_MESSAGE)
        decision = self.limiter.check(fingerprint)
        if not decision.allowed:
            return rate_limited_reply(decision.retry_after, self.retry_after_header)
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return error_reply(
                400, "ValidationError", "Invalid request body: Content-Type must be application/json"
            )
        try:
            body = parse_body(raw)
        except InvalidBody as exc:
            return error_reply(400, "ValidationError", str(exc))
        errors = validate_call(body)
        if errors:
            return error_reply(400, "ValidationError", validation_message(errors))
        record = self.journal.append(body, fingerprint, new_call_id(), received_at)
        return Reply(200, {"id": record["id"], "status": "queued"}, record=record)

    # --- statistics ----------------------------------------------------------------------------

    def request_started(self, api: bool) -> None:
        """Count a request; ``api`` requests also count as in flight until ``request_finished``."""
        with self._lock:
            self._requests += 1
            if api:
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def request_finished(self, api: bool, status: int | None, fault: str = OK) -> None:
        """Count the outcome: ``status`` is ``None`` when the connection was dropped unanswered."""
        with self._lock:
            if api:
                self._in_flight -= 1
                self._fault_counts[fault] += 1
            if status is not None:
                self._responses[str(status)] += 1

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot (what ``GET /_sandbox/stats`` returns)."""
        usage = self.limiter.usage()
        limit = self.limiter.limit
        primary = self._fingerprints[self._tokens[0]]
        with self._lock:
            return {
                "requests": self._requests,
                "accepted": len(self.journal),
                "responses": dict(sorted(self._responses.items())),
                "faults": {kind: self._fault_counts[kind] for kind in (OK, *FAULT_KINDS)},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "rate_limit": None
                if limit is None
                else {"limit": limit.limit, "window_seconds": limit.window},
                "retry_after_header": self.retry_after_header,
                "window": {fp: usage.get(fp, 0) for fp in self._fingerprints.values()},
                "window_used": usage.get(primary, 0),
                "token_fingerprint": primary,
            }

    # --- control -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the state at start: empty journal, zero counters, empty windows, initial faults."""
        self.journal.reset()
        self.limiter.reset()
        self.faults = FaultPlan.from_dict(self._initial_faults) if self._initial_faults else FaultPlan()
        with self._lock:
            self._responses.clear()
            self._fault_counts.clear()
            self._requests = 0
            self._max_in_flight = self._in_flight

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change ``rate_limit`` (``"N/S"`` or ``None``) and/or ``retry_after_header`` at run time."""
        unknown = set(changes) - {"rate_limit", "retry_after_header"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "rate_limit" in changes:
            value = changes["rate_limit"]
            if value is not None and not isinstance(value, (str, RateLimit)):
                raise ValueError("rate_limit: must be a string such as '100/60', 'off' or null")
            self.limiter.set_limit(RateLimit.parse(value))
        if "retry_after_header" in changes:
            if not isinstance(changes["retry_after_header"], bool):
                raise ValueError("retry_after_header: must be a boolean")
            self.retry_after_header = changes["retry_after_header"]
        return self.config()

    def config(self) -> dict[str, Any]:
        """The run-time settings (what ``GET /_sandbox/config`` returns)."""
        limit = self.limiter.limit
        return {
            "rate_limit": None if limit is None else str(limit),
            "retry_after_header": self.retry_after_header,
        }
