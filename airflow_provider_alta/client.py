"""The one request path to ``POST /assistant/calls``, and the resend rule. Pure Python: no Airflow.

Alta has no idempotency key, so a request that may have reached Alta is never sent again:
- 429 means nothing was placed: wait (``Retry-After``, else the seconds in the message, else 60 s,
  never less than 1 s nor more than an hour) and resend, within a wait budget and a bounded number
  of resends;
- a failure before the request left this machine (DNS, refused, connect timeout) is retried with
  exponential backoff and full jitter;
- anything else without a clear answer (read timeout, reset after sending, 5xx) raises
  :class:`AltaAmbiguousOutcomeError`.
"""

from __future__ import annotations

import email.utils
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


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait out 429s and how often to retry requests that never left the machine."""

    rate_limit_budget: float = 300.0
    rate_limit_resends: int = 10
    connect_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: Any
    raw: bytes


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
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        body_guard: Callable[[str], None] | None = None,
        success_log_level: int = logging.INFO,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.body_guard = body_guard  # sees the JSON text before it is sent; raises to refuse it
        self.success_log_level = success_log_level
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.session = requests.Session()
        # urllib3 must never resend on its own: every resend decision is made here.
        adapter = HTTPAdapter(max_retries=Retry(total=0, connect=0, read=0, redirect=0, status=0))
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
            try:
                raw = response.content
            except requests.RequestException:
                # The status line arrived, so the outcome is known; only the body was lost.
                log.warning("Alta answered %s but its body could not be read", response.status_code)
                raw = b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return _Answer(response.status_code, response.headers, parsed, raw)


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
    if status >= 500:
        return AltaAmbiguousOutcomeError(
            f"Alta answered {status} ({message or 'server error'}): the call may have been placed. "
            "It was not resent; check before calling this person again.",
            status=status,
            error=error,
        )
    return AltaAPIError(message or f"unexpected HTTP {status}", status=status, error=error)
