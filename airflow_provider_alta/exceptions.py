"""Errors raised by the Alta provider.

Every error carries the HTTP ``status`` (``None`` when no answer came back or the
error was raised client-side), Alta's ``error`` type and its human ``message``.
Messages never contain a token, and phone numbers and emails in them are masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class AltaAPIError(Exception):
    """Base class of every error from the Alta provider."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.error) if p is not None)
        return f"{head}: {self.message}" if head else self.message


class AltaConfigurationError(AltaAPIError):
    """The Alta connection or client settings are unusable (for example plain http to a remote host)."""


@dataclass(frozen=True)
class FieldError:
    """One validation problem: the field path in wire (camelCase) form and the rule it broke."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class AltaValidationError(AltaAPIError):
    """Alta answered 400, or the payload failed client-side validation before any request."""

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


class AltaRateLimitError(AltaAPIError):
    """Alta answered 429 and the configured wait budget is spent. Nothing was placed."""

    def __init__(
        self, message: str, *, retry_after: float, status: int | None = 429, error: str | None = None
    ) -> None:
        super().__init__(message, status=status, error=error)
        self.retry_after = retry_after


class AltaConnectionError(AltaAPIError):
    """The request never left this machine (DNS, refused, connect timeout), even after retries.

    Nothing was placed.
    """


class AltaAmbiguousOutcomeError(AltaAPIError):
    """The request may have reached Alta but no usable answer came back: the call may have been placed.

    It is never resent automatically, because Alta has no idempotency key.
    """
