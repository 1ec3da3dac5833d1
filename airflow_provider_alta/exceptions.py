"""Errors raised by the Alta provider.

Every error carries the HTTP ``status`` (``None`` when no answer came back or the
error was raised client-side), Alta's ``error`` type and its human ``message``.
Messages never contain a token, and phone numbers and emails in them are masked.

What each outcome means is written once, here, as class attributes of its error; the single-call
operator, the Airflow retry policy (``operators/retry.py``) and bulk calling (``bulk.py``) all read
them:

============================  ======  ==========  ==========  ============  ===========
error                         placed  task_retry  fails_task  batch_state   stops_batch
============================  ======  ==========  ==========  ============  ===========
AltaAPIError (other answers)  no      no          no          rejected      no
AltaConfigurationError        no      no          yes         rejected      no
AltaValidationError           no      no          yes         rejected      no
AltaAuthenticationError       no      no          yes         not_reached   yes
AltaRateLimitError            no      yes         no          not_reached   yes
AltaConnectionError           no      yes         no          not_reached   yes
AltaRateBudgetError           no      yes         no          not_reached   yes
AltaAmbiguousOutcomeError     maybe   no          yes         ambiguous     no
AltaNotFoundError             no      no          yes         rejected      no
AltaReadError                 no      yes         no          not_reached   yes
ContactLedgerUnavailable      no      yes         no          not_reached   yes
============================  ======  ==========  ==========  ============  ===========

``AltaNotFoundError`` and ``AltaReadError`` come only from reading a call back (``GET /calls/{id}``),
which changes nothing; ``ContactLedgerUnavailable``: the contact ledger could not be used before sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from airflow_provider_alta.masking import mask_text

#: Bulk record states an error can end a record in (the names :mod:`airflow_provider_alta.bulk` uses).
REJECTED = "rejected"
AMBIGUOUS = "ambiguous"
NOT_REACHED = "not_reached"


class AltaAPIError(Exception):
    """Base class of every error from the Alta provider.

    The class attributes say what the outcome means (see the table in the module docstring).
    """

    #: Whether the call was placed: ``False`` nothing was, ``None`` it may have been.
    placed: ClassVar[bool | None] = False
    #: Whether a later try of the task may help (Airflow 3.3+'s retry policy retries it, else fails).
    task_retry: ClassVar[bool] = False
    #: Whether the single-call task fails at once, without retries, on every Airflow version.
    fails_task: ClassVar[bool] = False
    #: The state a campaign record ends in. ``not_reached`` records were not sent: a later pass or
    #: try sends them; the others are final and never sent again.
    batch_state: ClassVar[str] = REJECTED
    #: Whether the campaign pass stops here (the next send would fail the same way).
    stops_batch: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.error) if p is not None)
        return f"{head}: {self.message}" if head else self.message

    @property
    def retry_reason(self) -> str:
        """Why a later try does, or does not, help: the retry policy's reason."""
        return f"Alta rejected the request ({type(self).__name__}); retrying cannot help"

    @property
    def record_reason(self) -> str:
        """The reason a campaign record that ended with this error is given (masked)."""
        return mask_text(str(self))

    @property
    def stop_reason(self) -> str:
        """Why a campaign pass stopped at this error (when :attr:`stops_batch`)."""
        return type(self).__name__


class AltaConfigurationError(AltaAPIError):
    """The Alta connection or client settings are unusable (for example plain http to a remote host)."""

    fails_task = True


@dataclass(frozen=True)
class FieldError:
    """One validation problem: the field path in wire (camelCase) form and the rule it broke."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class AltaValidationError(AltaAPIError):
    """Alta answered 400, or the payload failed client-side validation before any request."""

    fails_task = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = "ValidationError",
        errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(message, status=status, error=error)
        self.errors: tuple[FieldError, ...] = tuple(errors)

    @classmethod
    def from_errors(cls, errors: Sequence[FieldError]) -> AltaValidationError:
        """Build one error that lists every field problem."""
        listed = "; ".join(str(e) for e in errors)
        return cls(f"invalid call payload ({len(errors)} problem(s)): {listed}", errors=errors)


class AltaAuthenticationError(AltaAPIError):
    """Alta answered 401: the API token is missing or invalid."""

    fails_task = True
    batch_state = NOT_REACHED  # the records wait for a try with a working token
    stops_batch = True

    @property
    def record_reason(self) -> str:
        return f"token rejected: {self.message}"

    @property
    def stop_reason(self) -> str:
        return "the API token was rejected (401)"


class AltaRateLimitError(AltaAPIError):
    """Alta answered 429 and the configured wait budget is spent. Nothing was placed."""

    task_retry = True
    batch_state = NOT_REACHED
    stops_batch = True

    def __init__(
        self, message: str, *, retry_after: float, status: int | None = 429, error: str | None = None
    ) -> None:
        super().__init__(message, status=status, error=error)
        self.retry_after = retry_after

    @property
    def retry_reason(self) -> str:
        return "rate limited by Alta: nothing was placed"

    @property
    def record_reason(self) -> str:
        return f"rate limited: resume after {self.retry_after:g} s"

    @property
    def stop_reason(self) -> str:
        return "waiting out Alta's rate limit"


class AltaConnectionError(AltaAPIError):
    """The request never left this machine (DNS, refused, connect timeout), even after retries.

    Nothing was placed.
    """

    task_retry = True
    batch_state = NOT_REACHED
    stops_batch = True

    @property
    def retry_reason(self) -> str:
        return "Alta could not be reached: nothing was placed"

    @property
    def record_reason(self) -> str:
        return self.message

    @property
    def stop_reason(self) -> str:
        return f"Alta could not be reached ({self.message})"


class AltaRateBudgetError(AltaAPIError):
    """The account's shared rate limiter could not grant a request (e.g. Redis is down). Nothing was sent."""

    task_retry = True
    batch_state = NOT_REACHED
    stops_batch = True

    @property
    def retry_reason(self) -> str:
        return "the shared rate budget failed: nothing was sent"

    @property
    def record_reason(self) -> str:
        return f"not sent: {self.message}"

    @property
    def stop_reason(self) -> str:
        return f"the rate limiter failed ({self.message})"


class AltaAmbiguousOutcomeError(AltaAPIError):
    """The request may have reached Alta but no usable answer came back: the call may have been placed.

    It is never resent automatically, because Alta has no idempotency key.
    """

    placed = None
    fails_task = True
    batch_state = AMBIGUOUS

    @property
    def retry_reason(self) -> str:
        return NEVER_RESENT

    @property
    def record_reason(self) -> str:
        return self.message


class AltaNotFoundError(AltaAPIError):
    """Alta answered 404 to reading a call: no call with that id (for this account)."""

    fails_task = True


class AltaReadError(AltaAPIError):
    """Reading a call got no usable answer (timeouts, resets, 5xx), even after retries. Nothing changed."""

    task_retry = True
    batch_state = NOT_REACHED
    stops_batch = True

    @property
    def retry_reason(self) -> str:
        return "Alta did not answer a read; reading again changes nothing"

    @property
    def record_reason(self) -> str:
        return self.message

    @property
    def stop_reason(self) -> str:
        return f"Alta did not answer ({self.message})"


class ContactLedgerUnavailable(AltaAPIError):
    """The contact ledger could not be read or written before sending: nothing was sent; retryable."""

    task_retry = True
    batch_state = NOT_REACHED
    stops_batch = True

    @property
    def retry_reason(self) -> str:
        return "the contact ledger could not be reached: nothing was sent"

    @property
    def record_reason(self) -> str:
        return f"not sent: {self.message}"

    @property
    def stop_reason(self) -> str:
        return "the contact ledger could not be reached"


NEVER_RESENT = "the call may have been placed; Alta has no idempotency key, so it is never resent"
