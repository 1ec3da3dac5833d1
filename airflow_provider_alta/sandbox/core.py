"""The sandbox's behaviour, independent of HTTP: accounts, rate limit, validation, calls, stats.

Order of checks for ``POST /v1/assistant/calls`` (after any injected fault): 401 for a missing or
wrong bearer token, then 429 when the account's window is full, then 400 for the content type, the
JSON and the schema, then 200. ``GET /v1/calls/{callId}``: 401, 429, then 404 or 200. Every
authenticated request to ``/v1/`` uses a slot in its account's window (Alta: "every request
counts"), whatever its answer, and its answer carries the ``RateLimit-*`` headers (when the limit is
on and the headers are); unauthenticated requests count nowhere.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

from airflow_provider_alta.sandbox.accounts import Accounts, AccountsArg, Caller
from airflow_provider_alta.sandbox.calls import CallBook, PlacedCall
from airflow_provider_alta.sandbox.faults import FAULT_KINDS, OK, FaultPlan, seconds_value
from airflow_provider_alta.sandbox.journal import Journal, new_call_id
from airflow_provider_alta.sandbox.outside import OutsideClients
from airflow_provider_alta.sandbox.ratelimit import Clock, Decision, RateLimit, RollingWindowLimiter
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
#: What the 200 answer of ``POST /assistant/calls`` names the call's id ("none": no id at all).
CALL_ID_FIELDS = ("id", "callId", "none")
DEFAULT_CALL_START_DELAY = 2.0
DEFAULT_CALL_DURATION = 30.0
NOT_FOUND_MESSAGE = "Call not found"


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
    """Everything the server knows, shared by its request threads. Thread-safe.

    ``tokens`` each form an account of their own (named after their fingerprint); ``accounts`` maps
    account names to their tokens. With neither, the one token is ``DEFAULT_TOKEN``. ``clock``
    drives the rate windows, the calls' lifecycle and the outside clients.
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] | None = None,
        accounts: AccountsArg | None = None,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        retry_after_header: bool = True,
        ratelimit_headers: bool = True,
        call_id_field: str = "id",
        call_start_delay: float = DEFAULT_CALL_START_DELAY,
        call_duration: float = DEFAULT_CALL_DURATION,
        faults: FaultPlan | None = None,
        journal: Journal | None = None,
        clock: Clock = time.monotonic,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if tokens is None and accounts is None:
            tokens = (DEFAULT_TOKEN,)
        self.accounts = Accounts(accounts, tokens or ())
        self.clock = clock
        self.limiter = RollingWindowLimiter(rate_limit, clock)
        self.retry_after_header = retry_after_header
        self.ratelimit_headers = ratelimit_headers
        self.call_id_field = call_id_field
        self.call_start_delay = call_start_delay
        self.call_duration = call_duration
        self.configure(
            retry_after_header=retry_after_header,
            ratelimit_headers=ratelimit_headers,
            call_id_field=call_id_field,
            call_start_delay=call_start_delay,
            call_duration=call_duration,
        )
        self._initial_faults = faults.to_dict() if faults is not None else None
        self.faults = faults if faults is not None else FaultPlan()
        self.journal = journal if journal is not None else Journal()
        self.book = CallBook()
        self.outside = OutsideClients(self.limiter.spend, clock, self._window_seconds)
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._responses: Counter[str] = Counter()
        self._fault_counts: Counter[str] = Counter()
        self._requests = 0
        self._gets = 0
        self._in_flight = 0
        self._max_in_flight = 0

    # --- the API -------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The account and token fingerprint of ``authorization`` if it is accepted, else ``None``."""
        return self.accounts.authenticate(authorization)

    def handle_call(
        self,
        authorization: str | None,
        content_type: str | None,
        raw: bytes,
        received_at: datetime | None = None,
    ) -> Reply:
        """Answer one ``POST /assistant/calls`` whose body has been read in full."""
        gate = self._gate(authorization)
        if isinstance(gate, Reply):
            return gate
        caller, decision = gate
        return self._with_headers(self._place(caller, content_type, raw, received_at), decision)

    def handle_get_call(self, authorization: str | None, call_id: str) -> Reply:
        """Answer one ``GET /calls/{callId}``: another account's call is not found either."""
        with self._lock:
            self._gets += 1
        gate = self._gate(authorization)
        if isinstance(gate, Reply):
            return gate
        caller, decision = gate
        call = self.book.get(call_id, caller.account)
        if call is None:
            reply = error_reply(404, "NotFound", NOT_FOUND_MESSAGE)
        else:
            reply = Reply(200, call.to_api(self.clock()))
        return self._with_headers(reply, decision)

    def handle_other(self, authorization: str | None, reply: Reply) -> Reply:
        """Any other ``/v1/`` request, answered ``reply`` (404, 405): it counts when authenticated."""
        caller = self.authenticate(authorization)
        if caller is None:
            return reply
        gate = self._admit(caller)
        return gate if isinstance(gate, Reply) else self._with_headers(reply, gate[1])

    def _gate(self, authorization: str | None) -> tuple[Caller, Decision] | Reply:
        """401 or 429, or who is calling and the rate-limit decision that let them through."""
        caller = self.authenticate(authorization)
        if caller is None:
            return error_reply(401, "Unauthorized", UNAUTHORIZED_MESSAGE)
        return self._admit(caller)

    def _admit(self, caller: Caller) -> tuple[Caller, Decision] | Reply:
        decision = self.limiter.check(caller.account)
        if not decision.allowed:
            limited = rate_limited_reply(decision.retry_after, self.retry_after_header)
            return self._with_headers(limited, decision)
        return caller, decision

    def _with_headers(self, reply: Reply, decision: Decision) -> Reply:
        """``reply`` with the ``RateLimit-*`` headers of ``decision`` (before any ``Retry-After``)."""
        limit = decision.limit
        if not self.ratelimit_headers or limit is None:
            return reply
        reply.headers = {
            "RateLimit-Limit": str(limit.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset),
            "RateLimit-Policy": f"{limit.limit};w={limit.window:g}",
            **reply.headers,
        }
        return reply

    def _place(
        self, caller: Caller, content_type: str | None, raw: bytes, received_at: datetime | None
    ) -> Reply:
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
        arrival = received_at or datetime.now(timezone.utc)
        call = PlacedCall.from_body(
            new_call_id(),
            caller.account,
            body,
            arrival,
            self.clock(),
            self.call_start_delay,
            self.call_duration,
        )
        self.book.add(call)
        record = self.journal.append(body, caller.fingerprint, call.id, arrival, caller.account)
        answer = {} if self.call_id_field == "none" else {self.call_id_field: call.id}
        return Reply(200, {**answer, "status": "queued"}, record=record)

    # --- outside clients -----------------------------------------------------------------------

    def spend(self, requests: int, account: str | None = None) -> dict[str, Any]:
        """An outside client of ``account`` (default: the first) sends ``requests`` requests now."""
        return self.outside.spend(self.accounts.resolve(account), requests)

    def set_outside_rate(self, per_minute: float, account: str | None = None) -> dict[str, Any]:
        """An outside client of ``account`` sends ``per_minute`` requests per window (0 stops it)."""
        return self.outside.set_rate(self.accounts.resolve(account), per_minute)

    def _window_seconds(self) -> float:
        limit = self.limiter.limit
        return 60.0 if limit is None else limit.window

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

    def calls(self) -> list[dict[str, Any]]:
        """The journal's records, each with its call's lifecycle ``state`` now."""
        now = self.clock()
        records = []
        for record in self.journal.records():
            call = self.book.find(record["id"])
            records.append({**record, "state": call.state(now) if call is not None else "unknown"})
        return records

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot (what ``GET /_sandbox/stats`` returns)."""
        self.outside.tick()
        usage = self.limiter.usage()
        limit = self.limiter.limit
        windows = {name: usage.get(name, 0) for name in self.accounts.names}
        primary = self.accounts.primary
        with self._lock:
            return {
                "requests": self._requests,
                "accepted": len(self.journal),
                "gets": self._gets,
                "responses": dict(sorted(self._responses.items())),
                "faults": {kind: self._fault_counts[kind] for kind in (OK, *FAULT_KINDS)},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "rate_limit": None
                if limit is None
                else {"limit": limit.limit, "window_seconds": limit.window},
                "retry_after_header": self.retry_after_header,
                "windows": windows,
                "window": dict(windows),  # the name before accounts; kept for older tests and scripts
                "window_used": windows[primary],
                "account": primary,
                "token_fingerprint": self.accounts.fingerprint(primary),
                "outside": self.outside.stats(),
            }

    # --- control -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the state at start: no calls, zero counters, empty windows, no outside clients,
        the initial faults. The settings stay as they are."""
        self.outside.reset()
        self.journal.reset()
        self.book.clear()
        self.limiter.reset()
        self.faults = FaultPlan.from_dict(self._initial_faults) if self._initial_faults else FaultPlan()
        with self._lock:
            self._responses.clear()
            self._fault_counts.clear()
            self._requests = 0
            self._gets = 0
            self._max_in_flight = self._in_flight

    def close(self) -> None:
        """Stop the outside clients' thread."""
        self.outside.close()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time (the keys of ``config()``); all or nothing."""
        unknown = set(changes) - set(_SETTING_CHECKS) - {"rate_limit"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        checked = {name: _SETTING_CHECKS[name](v) for name, v in changes.items() if name != "rate_limit"}
        if "rate_limit" in changes:
            value = changes["rate_limit"]
            if value is not None and not isinstance(value, (str, RateLimit)):
                raise ValueError("rate_limit: must be a string such as '100/60', 'off' or null")
            self.limiter.set_limit(RateLimit.parse(value))
        for name, value in checked.items():
            setattr(self, name, value)
        return self.config()

    def config(self) -> dict[str, Any]:
        """The run-time settings (what ``GET /_sandbox/config`` returns)."""
        limit = self.limiter.limit
        return {
            "rate_limit": None if limit is None else str(limit),
            "retry_after_header": self.retry_after_header,
            "ratelimit_headers": self.ratelimit_headers,
            "call_id_field": self.call_id_field,
            "call_start_delay": self.call_start_delay,
            "call_duration": self.call_duration,
        }


def _boolean(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: must be a boolean")
        return value

    return check


def _call_id_field(value: Any) -> str:
    if value not in CALL_ID_FIELDS:
        raise ValueError(f"call_id_field: must be one of {', '.join(CALL_ID_FIELDS)}, got {value!r}")
    return str(value)


#: How each setting but ``rate_limit`` is checked (seconds: finite, 0 to a day).
_SETTING_CHECKS: dict[str, Callable[[Any], Any]] = {
    "retry_after_header": _boolean("retry_after_header"),
    "ratelimit_headers": _boolean("ratelimit_headers"),
    "call_id_field": _call_id_field,
    "call_start_delay": partial(seconds_value, "call_start_delay"),
    "call_duration": partial(seconds_value, "call_duration"),
}
