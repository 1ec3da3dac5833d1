"""Send records: the durable marker that keeps a person from being called twice. Pure Python.

Before a call is sent its record is set to ``sending``; after, to how it ended: ``called`` (placed,
with whatever the caller keeps, e.g. the masked result), ``unsent`` (nothing was placed: a later try
sends it) or a final state (``rejected``, ``ambiguous``). Before sending anything, a later try (or
pass) reads the record into an :class:`Earlier` decision. A death between the two writes leaves
``sending``, which is read as "may have been placed": never sent again.

The batch (``bulk.py``) keeps one record per person of a campaign, the single-call operator one per
person it calls. The store is Airflow 3.3+'s task state store, or anything with ``get``/``set``;
keys are hashes (:func:`progress_key`), so no phone number is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from airflow_provider_alta import exceptions
from airflow_provider_alta.exceptions import AltaAPIError
from airflow_provider_alta.masking import mask_text

#: Record states: the send is under way, or how it ended.
SENDING = "sending"
UNSENT = "unsent"
CALLED = "called"
REJECTED = exceptions.REJECTED
AMBIGUOUS = exceptions.AMBIGUOUS

#: What a later try does about an earlier record (:attr:`Earlier.decision`).
SEND = "send"  # no record, or nothing was placed (unsent): send
PLACED = "placed"  # placed: report what the record kept, send nothing
MAYBE_PLACED = "maybe_placed"  # interrupted mid-send, ambiguous, or unreadable: never send
FINAL = "final"  # ended in a final state with nothing placed (rejected)

T = TypeVar("T")


class ProgressStore(Protocol):
    """Durable records that outlive a try (Airflow 3.3+: the task state store)."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class MemoryProgress:
    """Records kept in a dict, e.g. carried through a deferral on Airflow versions without a store."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


def progress_key(value: Hashable) -> str:
    """The store key of a person (or record): a hash, so no phone number is stored in Airflow's DB."""
    return "alta:" + hashlib.sha256(repr(value).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Earlier:
    """An earlier record, read: the :attr:`decision`, the state and reason it holds, and whether this
    same try (``attempt``) wrote it."""

    decision: str
    state: str | None = None
    reason: str = ""
    this_try: bool = False
    record: Mapping[str, Any] = field(default_factory=dict)

    @property
    def when(self) -> str:
        return "an earlier pass of this try" if self.this_try else "an earlier try"


_DECISIONS = {
    UNSENT: SEND,
    SENDING: MAYBE_PLACED,
    CALLED: PLACED,
    AMBIGUOUS: MAYBE_PLACED,
    REJECTED: FINAL,
}


def read_record(value: Any, attempt: str) -> Earlier:
    """What an earlier record means for a try labelled ``attempt``; see the module docstring.

    A record this module did not write (not a mapping, an unknown state) may hide a placed call:
    it is read as :data:`MAYBE_PLACED`.
    """
    if value is None:
        return Earlier(SEND)
    state = value.get("state") if isinstance(value, Mapping) else None
    if not isinstance(state, str) or state not in _DECISIONS:
        return Earlier(MAYBE_PLACED, reason="its earlier record is unreadable")
    reason = value.get("reason")
    return Earlier(
        _DECISIONS[state],
        state=state,
        reason=reason if isinstance(reason, str) else "",
        this_try=value.get("by") == attempt,
        record=value,
    )


def record(state: str, attempt: str, reason: str = "", **extra: Any) -> dict[str, Any]:
    """A record: ``state``, who wrote it (``by``), and a reason and extras when given."""
    return {"state": state, "by": attempt, **({"reason": reason} if reason else {}), **extra}


def after_failure(exc: BaseException, unsent: tuple[type[BaseException], ...] = ()) -> tuple[str, str]:
    """The ``(state, reason)`` a send that raised ``exc`` leaves, read from the error's class.

    Errors in ``unsent`` (raised only before anything left) and errors whose ``batch_state`` is
    ``not_reached`` leave :data:`UNSENT`, which a later try sends; any other failure here may
    have come after the request left: :data:`AMBIGUOUS`, never sent again.
    """
    if isinstance(exc, unsent):
        return UNSENT, ""
    if isinstance(exc, AltaAPIError):
        if exc.batch_state == exceptions.NOT_REACHED:
            return UNSENT, ""
        return exc.batch_state, exc.record_reason
    why = describe_error(exc)
    return AMBIGUOUS, f"unexpected error while sending ({why}): it may have been placed; not resent"


def send_once(
    progress: ProgressStore,
    key: str,
    attempt: str,
    send: Callable[[], T],
    *,
    keep: Callable[[T], Mapping[str, Any]] | None = None,
    unsent: tuple[type[BaseException], ...] = (),
) -> T:
    """Write ``sending``, run ``send``, write how it ended, and return its answer (or re-raise).

    ``keep`` adds to the ``called`` record what a later try reports instead of sending
    (no personal data: the store is Airflow's database). A store that fails raises
    :class:`RecordWriteError`: before sending, nothing is sent; a death or a failed write after
    it leaves ``sending``, never sent again.
    """
    _write(progress, key, record(SENDING, attempt), sent=False)
    try:
        answer = send()
    except Exception as exc:
        state, reason = after_failure(exc, unsent)
        _write(progress, key, record(state, attempt, reason), sent=state != UNSENT)
        raise
    _write(progress, key, record(CALLED, attempt, **(keep(answer) if keep is not None else {})), sent=True)
    return answer


class RecordWriteError(Exception):
    """The store failed to write a record. ``sent``: whether the request had (or may have) left."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


def _write(progress: ProgressStore, key: str, value: dict[str, Any], *, sent: bool) -> None:
    try:
        progress.set(key, value)
    except Exception as exc:
        when = "after the call was sent" if sent else "before sending: nothing was sent"
        raise RecordWriteError(
            f"could not record {value['state']!r} {when} ({describe_error(exc)})", sent=sent
        ) from exc


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an error, masked, short, and never raising."""
    try:
        text = str(exc)
    except Exception:
        text = "<message could not be read>"
    if len(text) > 200:
        text = text[:199] + "\u2026"
    return f"{type(exc).__name__}: {mask_text(text)}" if text else type(exc).__name__
