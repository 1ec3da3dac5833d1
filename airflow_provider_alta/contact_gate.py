"""The contact rule, in one place: every path that calls a person (single, mapped, batch) passes here.

:func:`guarded_send` wraps one send (the caller's ``send_record.send_once``) in the contact ledger::

    reserve -> Blocked: returned, nothing sent
            -> Reservation: send -> placed: confirm CALLED
                                 -> raised: nothing placed (unsent, rejected): release
                                            anything else: confirm AMBIGUOUS (counts as a call)

A ledger that cannot be reached before sending raises :class:`ContactLedgerUnavailable` (retryable,
nothing sent). A ledger write that fails after sending is logged as a warning and the placed call
stands: its ``RESERVED`` row keeps counting, which is safe. Pure Python: no Airflow, and SQLAlchemy
is only imported by the ledger itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from airflow_provider_alta import send_record
from airflow_provider_alta.contact_policy import ContactPolicy
from airflow_provider_alta.exceptions import ContactLedgerUnavailable
from airflow_provider_alta.ledger import AMBIGUOUS, CALLED, OPTED_OUT, Blocked, Reservation
from airflow_provider_alta.masking import mask_phone

if TYPE_CHECKING:
    from airflow_provider_alta.ledger import ContactLedger

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = [
    "Blocked",
    "ContactGate",
    "ContactLedgerUnavailable",
    "blocked_reason",
    "guarded_send",
    "ledger_problem",
    "next_allowed_iso",
]


def ledger_problem(exc: BaseException, secret: str | None = None) -> str:
    """``Type: message`` of a database error, short and masked, without SQL or the URL's password."""
    inner = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error: its text has no SQL
    text = send_record.describe_error(inner if isinstance(inner, BaseException) else exc)
    if secret:
        text = text.replace(secret, "***")
    return text.split("\n[SQL:")[0].splitlines()[0] if text else text


@dataclass(frozen=True)
class ContactGate:
    """One account's ledger and the policy a task applies (``None``: opt-outs only, no cap)."""

    ledger: ContactLedger
    policy: ContactPolicy | None = None

    @property
    def where(self) -> str:
        """The ledger as errors show it: ``contact_ledger (URL with the password masked)``."""
        url = self.ledger.engine.url
        return f"contact_ledger ({url.render_as_string(hide_password=True)})"

    def _unavailable(self, doing: str, exc: BaseException) -> ContactLedgerUnavailable:
        problem = ledger_problem(exc, self.ledger.engine.url.password)
        return ContactLedgerUnavailable(f"{self.where}: could not {doing} ({problem}); nothing was sent")

    def reserve(self, e164: str, *, by: str, resume: bool = False) -> Reservation | Blocked:
        """The ledger's reservation; :class:`ContactLedgerUnavailable` when it cannot be made."""
        try:
            return self.ledger.reserve(e164, self.policy, by=by, resume=resume)
        except Exception as exc:
            raise self._unavailable(f"reserve a call to {mask_phone(e164)}", exc) from None

    def check(self, e164: str) -> Blocked | None:
        """Read-only (dry runs): what :meth:`reserve` would refuse now, or ``None``."""
        try:
            return self.ledger.check(e164, self.policy)
        except Exception as exc:
            raise self._unavailable(f"check {mask_phone(e164)}", exc) from None

    def settle(self, reservation: Reservation, state: str | None, e164: str) -> None:
        """Confirm ``state`` (``CALLED``/``AMBIGUOUS``) or release (``None``); a failure only warns."""
        try:
            if state is None:
                self.ledger.release(reservation)
            else:
                self.ledger.confirm(reservation, state)
        except Exception as exc:
            log.warning(
                "%s: could not record %s for the call to %s (%s); its reservation keeps counting as a call",
                self.where,
                state or "released",
                mask_phone(e164),
                ledger_problem(exc, self.ledger.engine.url.password),
            )

    def settle_maybe_placed(self, e164: str, by: str) -> None:
        """An earlier try may have placed this call: its ``RESERVED`` rows labelled ``by`` turn ambiguous."""
        try:
            self.ledger.confirm_reserved(e164, by, AMBIGUOUS)
        except Exception as exc:
            log.warning(
                "%s: could not mark the earlier attempt to call %s ambiguous (%s); it keeps counting",
                self.where,
                mask_phone(e164),
                ledger_problem(exc, self.ledger.engine.url.password),
            )


def _ended(exc: Exception, unsent: tuple[type[BaseException], ...]) -> str | None:
    """What a send that raised ``exc`` means for its reservation: ``None`` (release) or ``AMBIGUOUS``."""
    if isinstance(exc, send_record.RecordWriteError):
        return AMBIGUOUS if exc.sent else None
    state, _reason = send_record.after_failure(exc, unsent)
    return None if state in (send_record.UNSENT, send_record.REJECTED) else AMBIGUOUS


def guarded_send(
    gate: ContactGate | None,
    e164: str,
    *,
    by: str,
    send: Callable[[], T],
    resume: bool = False,
    unsent: tuple[type[BaseException], ...] = (),
) -> T | Blocked:
    """Run ``send`` under the contact rule (see the module docstring); ``gate`` ``None``: just send.

    ``by`` labels the reservation (stable across tries of one task instance, no personal data);
    ``resume`` only when the caller's durable record proves nothing was sent under that label.
    ``unsent``: errors ``send`` raises only before anything left. Errors from ``send`` are re-raised.
    """
    if gate is None:
        return send()
    outcome = gate.reserve(e164, by=by, resume=resume)
    if isinstance(outcome, Blocked):
        return outcome
    try:
        answer = send()
    except Exception as exc:
        gate.settle(outcome, _ended(exc, unsent), e164)
        raise
    gate.settle(outcome, CALLED, e164)
    return answer


def blocked_reason(blocked: Blocked, e164: str, policy: ContactPolicy | None) -> str:
    """Why the ledger refused a call, and when the person may be called next (number masked)."""
    who = mask_phone(e164)
    if blocked.reason == OPTED_OUT:
        return f"{who} opted out of calls; not called"
    rule = f" under contact policy {policy}" if policy is not None else ""
    return f"{who} was called recently{rule}; may be called again from {_iso(blocked.next_allowed)}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def next_allowed_iso(blocked: Blocked) -> str | None:
    """``blocked.next_allowed`` as ISO 8601 (``None`` when opted out)."""
    return _iso(blocked.next_allowed)
