"""The one request path to Alta: the resend rule, and the rate budget's one gate. Pure Python: no Airflow.

Alta has no idempotency key, so a ``POST /assistant/calls`` that may have reached Alta is never sent
again:
- 429 means nothing was placed: wait (``Retry-After``, else the seconds in the message, else 60 s,
  never less than 1 s nor more than an hour) and resend, within a wait budget and a bounded number
  of resends;
- a failure before the request left this machine (DNS, refused, connect timeout) is retried with
  exponential backoff and full jitter;
- anything else without a clear answer (read timeout, reset after sending, 5xx, an answer that
  does not arrive in full before the answer deadline) raises :class:`AltaAmbiguousOutcomeError`.

Reading a call back (``GET /calls/{id}``, :meth:`AltaClient.get_call`) changes nothing, so connect
failures, timeouts, resets, cut bodies and 5xx are retried with the same backoff (at most
``ResendPolicy.read_retries`` times) and 429s are waited out within the same wait budget.

Every request (placing, reading, checking the token) passes one gate: first the account's
:class:`~airflow_provider_alta.rate_budget.HeaderBudget` (when Alta's ``RateLimit-*`` headers say
the window is spent, the request waits for the reset, within the wait budget, else
:class:`AltaRateLimitError` with nothing sent), then the client's ``gates`` (the account's shared
limiter, when configured) around the exchange. A gate that fails raises
:class:`AltaRateBudgetError`; nothing was sent. Waits use the client's ``sleep``, and whatever it
raises (a stop) propagates unchanged.

Answers are bounded in time and size (:mod:`airflow_provider_alta.transport`): status line,
headers and body within ``ResendPolicy.answer_deadline`` (default twice the read timeout) of
sending, at most ``ResendPolicy.max_answer_bytes`` of body. Once a status line has arrived its
status decides: a ``2xx`` whose body is cut, too slow or too large is still a placed call.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from airflow_provider_alta import __version__, answers, transport
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaConnectionError,
    AltaRateBudgetError,
    AltaRateLimitError,
    AltaReadError,
)
from airflow_provider_alta.masking import mask_phone, mask_text
from airflow_provider_alta.pacing import Gate, GateError
from airflow_provider_alta.payload import AssistantCall
from airflow_provider_alta.rate_budget import (
    DEFAULT_RATE_LIMIT_WAIT,
    MAX_RATE_LIMIT_WAIT,
    MIN_RATE_LIMIT_WAIT,
    HeaderBudget,
    WaitBudget,
    budget_for,
    retry_after_seconds,
)
from airflow_provider_alta.transport import MAX_ANSWER_BYTES, Answer, never_sent

__all__ = [
    "ANSWER_DEADLINE_FACTOR",
    "DEFAULT_RATE_LIMIT_WAIT",
    "MAX_ANSWER_BYTES",
    "MAX_RATE_LIMIT_WAIT",
    "MIN_RATE_LIMIT_WAIT",
    "USER_AGENT",
    "AltaClient",
    "ResendPolicy",
    "never_sent",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-alta/{__version__}"
ANSWER_DEADLINE_FACTOR = 2.0  # default answer deadline: this many read timeouts after sending
CHECK_TOKEN_MAX_WAIT = 10.0  # test connection waits at most this long for room in the window


@dataclass(frozen=True)
class ResendPolicy:
    """How long to wait out 429s, how often to retry requests that never left, how long to read answers.

    ``rate_limit_budget`` bounds the seconds one request spends waiting out 429s and full windows.
    ``read_retries`` is how often a read (``GET``) is retried after a failure. ``answer_deadline``
    is the most seconds, counted from sending, that the whole answer (status line, headers and
    body) may take; ``None`` means :data:`ANSWER_DEADLINE_FACTOR` times the read timeout.
    ``max_answer_bytes`` is the most body bytes read.
    """

    rate_limit_budget: float = 300.0
    rate_limit_resends: int = 10
    connect_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    answer_deadline: float | None = None
    max_answer_bytes: int = MAX_ANSWER_BYTES
    read_retries: int = 3

    def __post_init__(self) -> None:
        deadline = self.answer_deadline
        if deadline is not None and not (math.isfinite(deadline) and deadline > 0):
            raise ValueError(f"answer_deadline must be positive seconds or None, got {deadline!r}")
        if self.max_answer_bytes < 1:
            raise ValueError(f"max_answer_bytes must be at least 1, got {self.max_answer_bytes!r}")
        if self.read_retries < 0:
            raise ValueError(f"read_retries must be at least 0, got {self.read_retries!r}")


class AltaClient:
    """A reusable client for one Alta token and base URL, over one ``requests.Session``.

    ``gates`` (e.g. the account's shared limiter) are acquired around every request and closed
    with the client; ``budget`` is the account's header budget (default: this process's one for
    ``settings.budget_key``); ``sleep`` makes every wait.
    """

    def __init__(
        self,
        settings: AltaSettings,
        *,
        retry: ResendPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        body_guard: Callable[[str], None] | None = None,
        success_log_level: int = logging.INFO,
        gates: Sequence[Gate] = (),
        budget: HeaderBudget | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry or ResendPolicy()
        self.body_guard = body_guard  # sees the JSON text before it is sent; raises to refuse it
        self.success_log_level = success_log_level
        self.gates = tuple(gates)
        self.budget = budget if budget is not None else budget_for(settings.budget_key)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.session = transport.bounded_session(
            {
                "Authorization": f"Bearer {settings.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )

    def close(self) -> None:
        self.session.close()
        for gate in self.gates:
            close = getattr(gate, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> AltaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- placing a call ------------------------------------------------------------------------

    def trigger(self, call: AssistantCall) -> dict[str, Any]:
        """Place one call. Returns the JSON body of the 200 answer, or ``{}`` when it has none."""
        text = json.dumps(call.to_json(), separators=(",", ":"))
        if self.body_guard is not None:
            self.body_guard(text)
        body = text.encode()
        who = mask_phone(call.phone_number)
        waits = self._waits()
        start = time.monotonic()
        while True:
            answer = self._post_with_connect_retries(body, who, waits)
            if answer.status != 429:
                break
            wait = retry_after_seconds(answer.headers, answers.field(answer.body, "message"))
            waits.rate_limited(
                wait, f"call to {who}", "Nothing was placed.", answers.field(answer.body, "error")
            )
            log.info("Alta call to %s: 429, waiting %.1f s before resending (nothing was placed)", who, wait)
            self._sleep(wait)
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
        raise answers.error_for_call(answer)

    def check_token(self) -> tuple[bool, str]:
        """Check the token without placing a call: send ``{}``, which Alta must reject as invalid."""
        waits = self._waits(min(self.retry.rate_limit_budget, CHECK_TOKEN_MAX_WAIT))
        try:
            answer = self._post_once(b"{}", "token check", waits)
        except AltaRateLimitError as exc:
            return False, (
                "Alta's rate limit for this account is spent; the token could not be checked. "
                f"Try again in {exc.retry_after:.0f} s."
            )
        except AltaRateBudgetError as exc:
            return False, f"the shared rate limiter failed; nothing was sent: {exc.message}"
        except AltaAPIError as exc:
            return False, f"could not reach Alta at {self.settings.base_url}: {exc}"
        if answer.status == 400:
            return True, "Token accepted: Alta rejected the empty test request as invalid, as expected."
        if answer.status == 401:
            return False, "Token rejected: Alta answered 401 Unauthorized."
        if answer.status == 429:
            return False, "Alta answered 429 (rate limited); the token could not be checked. Try again later."
        return False, f"Unexpected answer {answer.status} from {self.settings.calls_url}."

    def _post_with_connect_retries(self, body: bytes, who: str, waits: WaitBudget) -> Answer:
        attempt = 0
        while True:
            try:
                return self._post_once(body, f"call to {who}", waits)
            except AltaConnectionError as exc:
                if attempt >= self.retry.connect_retries:
                    raise
                delay = self._backoff(attempt)
                attempt += 1
                log.warning(
                    "Alta call to %s: request never left this machine (%s); retry %d/%d in %.2f s",
                    who, exc.message, attempt, self.retry.connect_retries, delay,
                )  # fmt: skip
                self._sleep(delay)

    def _post_once(self, body: bytes, what: str, waits: WaitBudget) -> Answer:
        url = self.settings.calls_url
        try:
            return self._send("POST", url, body, what, waits)
        except requests.RequestException as exc:
            if never_sent(exc):
                raise AltaConnectionError(
                    f"could not connect to {url} ({transport.failure_reason(exc)})"
                ) from None
            raise AltaAmbiguousOutcomeError(
                f"no answer from {url} after sending ({type(exc).__name__}): the call may have been placed. "
                "It was not resent; check before calling this person again."
            ) from None

    # --- reading a call ------------------------------------------------------------------------

    def get_call(self, call_id: str) -> dict[str, Any]:
        """Alta's JSON object for one call (``GET /calls/{call_id}``), unmasked: callers mask it.

        Raises :class:`AltaValidationError` for an unusable id (nothing sent),
        :class:`AltaAuthenticationError` (401), :class:`AltaNotFoundError` (404),
        :class:`AltaRateLimitError` (429s past the wait budget), :class:`AltaConnectionError` /
        :class:`AltaReadError` (no usable answer after the retries), :class:`AltaAPIError` otherwise.
        """
        url = self.settings.call_url(call_id)
        what = f"read of call {mask_text(call_id)}"
        waits = self._waits()
        failures = 0
        start = time.monotonic()
        while True:
            try:
                answer = self._send("GET", url, None, what, waits)
            except requests.RequestException as exc:
                reason = transport.failure_reason(exc)
                if never_sent(exc):
                    failed: AltaAPIError = AltaConnectionError(f"could not connect to {url} ({reason})")
                else:
                    failed = AltaReadError(
                        f"no answer from {url} ({type(exc).__name__}); nothing was changed"
                    )
                failures = self._retry_read(failures, failed, what)
                continue
            if answer.status == 429:
                wait = retry_after_seconds(answer.headers, answers.field(answer.body, "message"))
                waits.rate_limited(wait, what, "Nothing was changed.", answers.field(answer.body, "error"))
                log.info("Alta %s: 429, waiting %.1f s before reading again", what, wait)
                self._sleep(wait)
                continue
            if answer.status >= 500 or (_is_success(answer.status) and _cut(answer, self.retry)):
                failures = self._retry_read(failures, answers.read_failure(answer, url), what)
                continue
            break
        log.debug("Alta %s: %s in %.0f ms", what, answer.status, (time.monotonic() - start) * 1000)
        if _is_success(answer.status):
            if isinstance(answer.body, dict):
                return answer.body
            problem = "too large" if not answer.complete else "not a JSON object"
            raise AltaAPIError(
                f"Alta answered {answer.status} to the {what} but its body is {problem}", status=answer.status
            )
        raise answers.error_for_read(answer, what)

    def _retry_read(self, failures: int, error: AltaAPIError, what: str) -> int:
        """Wait before reading again, or raise ``error`` once the read retries are spent."""
        if failures >= self.retry.read_retries:
            raise error
        delay = self._backoff(failures)
        log.warning(
            "Alta %s failed (%s); retry %d/%d in %.2f s",
            what,
            error,
            failures + 1,
            self.retry.read_retries,
            delay,
        )
        self._sleep(delay)
        return failures + 1

    # --- the gate around every request ---------------------------------------------------------

    def _send(self, method: str, url: str, body: bytes | None, what: str, waits: WaitBudget) -> Answer:
        """One request through the gate: room in the header budget, then the gates, then the exchange."""
        self._wait_for_room(what, waits)
        passed: list[Gate] = []
        try:
            for gate in self.gates:
                gate.acquire()
                passed.append(gate)
        except GateError as exc:
            _release(passed)
            self.budget.cancel()
            raise AltaRateBudgetError(mask_text(str(exc))) from None
        except BaseException:  # a stop (or anything) while waiting for a gate: nothing was sent
            _release(passed)
            self.budget.cancel()
            raise
        headers = None
        try:
            answer = transport.exchange(
                self.session,
                method,
                url,
                body=body,
                timeout=self.settings.timeout,
                deadline=self._answer_deadline(),
                max_bytes=self.retry.max_answer_bytes,
            )
            headers = answer.headers
            return answer
        finally:
            _release(passed)
            self.budget.settle(headers)

    def _wait_for_room(self, what: str, waits: WaitBudget) -> None:
        """Return once the header budget has counted this request; wait for the window's reset before."""
        while True:
            wait = self.budget.reserve()
            if wait <= 0:
                return
            waits.room(wait, what)
            log.info("Alta %s: the account's rate window is spent; waiting %.1f s for its reset", what, wait)
            self._sleep(wait)

    def _waits(self, seconds: float | None = None) -> WaitBudget:
        """One operation's wait budget: the policy's, or ``seconds``."""
        budget = self.retry.rate_limit_budget if seconds is None else seconds
        return WaitBudget(budget, self.retry.rate_limit_resends)

    def _answer_deadline(self) -> float:
        deadline = self.retry.answer_deadline
        return ANSWER_DEADLINE_FACTOR * self.settings.timeout[1] if deadline is None else deadline

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return self._rng.uniform(0, min(self.retry.backoff_max, self.retry.backoff_base * 2**attempt))


def _release(gates: list[Gate]) -> None:
    for gate in reversed(gates):
        gate.release()


def _is_success(status: int) -> bool:
    return 200 <= status < 300


def _cut(answer: Answer, policy: ResendPolicy) -> bool:
    """A body that broke off or stalled (worth reading again), not one that was too large."""
    return not answer.complete and len(answer.raw) < policy.max_answer_bytes
