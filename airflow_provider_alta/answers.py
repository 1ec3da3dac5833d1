"""What an answer from Alta means: the error for each status, for placing and for reading a call.

Pure Python: no Airflow. Texts taken from answers are masked (phone numbers, emails).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaAuthenticationError,
    AltaNotFoundError,
    AltaReadError,
    AltaValidationError,
)
from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.transport import Answer


def field(body: Any, name: str) -> str | None:
    """A masked top-level field of a JSON body (``error``, ``message``), if present."""
    value = body.get(name) if isinstance(body, dict) else None
    return mask_text(str(value)) if value is not None else None


def message(answer: Answer) -> str | None:
    """Alta's ``message``, else the first 200 bytes of the body, masked."""
    return field(answer.body, "message") or mask_text(answer.raw[:200].decode(errors="replace"))


def error_for_call(answer: Answer) -> AltaAPIError:
    """The error for a final answer (not 2xx, not 429) to placing a call."""
    status = answer.status
    error = field(answer.body, "error")
    text = message(answer)
    if status == 400:
        return AltaValidationError(text or "Invalid request body", status=status, error=error)
    if status == 401:
        return AltaAuthenticationError(text or "Invalid API token", status=status, error=error)
    if status < 200:  # an interim answer with no final one: the request was received, no more is known
        return AltaAmbiguousOutcomeError(
            f"Alta answered {status} (interim) and no final answer followed: the call may have been "
            "placed. It was not resent; check before calling this person again.",
            status=status,
            error=error,
        )
    if status >= 500:
        return AltaAmbiguousOutcomeError(
            f"Alta answered {status} ({text or 'server error'}): the call may have been placed. "
            "It was not resent; check before calling this person again.",
            status=status,
            error=error,
        )
    return AltaAPIError(text or f"unexpected HTTP {status}", status=status, error=error)


def error_for_read(answer: Answer, what: str) -> AltaAPIError:
    """The error for a final answer (not 2xx, 429 or 5xx) to reading a call."""
    status, error, text = answer.status, field(answer.body, "error"), message(answer)
    if status == 401:
        return AltaAuthenticationError(text or "Invalid API token", status=status, error=error)
    if status == 404:
        return AltaNotFoundError(text or f"no such call ({what})", status=status, error=error)
    return AltaAPIError(text or f"unexpected HTTP {status} to the {what}", status=status, error=error)


def read_failure(answer: Answer, url: str) -> AltaReadError:
    """A 5xx or a broken-off body in answer to a read: worth reading again."""
    if answer.status >= 500:
        return AltaReadError(
            f"Alta answered {answer.status} ({message(answer) or 'server error'}) to {url}",
            status=answer.status,
            error=field(answer.body, "error"),
        )
    return AltaReadError(
        f"Alta answered {answer.status} to {url} but the body broke off", status=answer.status
    )
