"""Placed calls and their simulated life, for ``GET /v1/calls/{callId}`` (Alta's ``get-call.yaml``).

A call is ``queued`` when placed, ``in_progress`` ``start_delay`` seconds later and ``ended``
``duration`` seconds after that, measured on the sandbox's clock (injectable, so tests can compress
time). The times it reports are wall-clock: ``startedAt`` is ``createdAt + start_delay``, and so on.
Both delays are fixed when the call is placed. A call's ``data`` can choose its outcome:
``sandbox_summary`` (a string: the summary, verbatim) and ``sandbox_duration`` (seconds).
"""

from __future__ import annotations

import hashlib
import math
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

#: The number every sandbox call is made from (fictional).
SANDBOX_FROM: Final = "+12025550100"
QUEUED: Final = "queued"
IN_PROGRESS: Final = "in_progress"
ENDED: Final = "ended"
MAX_CALL_SECONDS: Final = 86400.0  # as faults.MAX_SECONDS: longer is surely a typo
#: Summaries of calls whose data names none, picked by a hash of the call id.
SUMMARY_TEMPLATES: Final[tuple[str, ...]] = (
    "The prospect answered, listened to the offer and asked for a follow-up call next week.",
    "The prospect answered and said they are not interested; no follow-up is needed.",
    "The call reached voicemail; the assistant left a short message with a callback number.",
    "The prospect answered, confirmed their details and booked a demo for Thursday.",
)
_PROSPECTS = uuid.UUID("6f1c3c1e-4d6b-4a59-9a43-0d7e5b0a1a7e")  # namespace of sandbox prospect ids


def summary_for(call_id: str) -> str:
    """The template summary of ``call_id`` (the same id always gets the same one)."""
    digest = hashlib.sha256(call_id.encode("utf-8")).digest()
    return SUMMARY_TEMPLATES[int.from_bytes(digest[:4], "big") % len(SUMMARY_TEMPLATES)]


def prospect_id(account: str, phone_number: str) -> str:
    """A stable prospect id: the same number called from the same account is the same prospect."""
    return str(uuid.uuid5(_PROSPECTS, f"{account}\n{phone_number}"))


def _data_duration(data: Any) -> float | None:
    value = data.get("sandbox_duration") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and 0 <= value <= MAX_CALL_SECONDS else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


@dataclass(frozen=True)
class PlacedCall:
    """One accepted call: what ``GET /v1/calls/{id}`` needs to describe it at any time."""

    id: str
    account: str
    to: str
    created: datetime
    placed_at: float
    start_delay: float
    duration: float
    summary: str

    @classmethod
    def from_body(
        cls,
        call_id: str,
        account: str,
        body: dict[str, Any],
        created: datetime,
        placed_at: float,
        start_delay: float,
        duration: float,
    ) -> PlacedCall:
        """The call placed by an accepted ``body`` (valid: ``phoneNumber`` is a string)."""
        data = body.get("data")
        chosen = data.get("sandbox_summary") if isinstance(data, dict) else None
        return cls(
            id=call_id,
            account=account,
            to=str(body.get("phoneNumber", "")),
            created=created,
            placed_at=placed_at,
            start_delay=start_delay,
            duration=d if (d := _data_duration(data)) is not None else duration,
            summary=chosen if isinstance(chosen, str) else summary_for(call_id),
        )

    def state(self, now: float) -> str:
        """``queued``, ``in_progress`` or ``ended`` at clock time ``now``."""
        elapsed = now - self.placed_at
        if elapsed < self.start_delay:
            return QUEUED
        return IN_PROGRESS if elapsed < self.start_delay + self.duration else ENDED

    def to_api(self, now: float) -> dict[str, Any]:
        """The Call object at clock time ``now`` (``get-call.yaml``'s schema)."""
        state = self.state(now)
        started = self.created + timedelta(seconds=self.start_delay)
        ended = started + timedelta(seconds=self.duration)
        updated = {QUEUED: self.created, IN_PROGRESS: started, ENDED: ended}[state]
        answer: dict[str, Any] = {
            "id": self.id,
            "objectType": "call",
            "createdAt": _iso(self.created),
            "updatedAt": _iso(updated),
            "from": SANDBOX_FROM,
            "to": self.to,
            "callType": "outbound",
            "prospectId": prospect_id(self.account, self.to),
        }
        if state != QUEUED:
            answer["startedAt"] = _iso(started)
        if state == ENDED:
            answer.update(endedAt=_iso(ended), duration=_number(self.duration), summary=self.summary)
        return answer


class CallBook:
    """Every placed call by id. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, PlacedCall] = {}

    def add(self, call: PlacedCall) -> None:
        """Remember ``call``."""
        with self._lock:
            self._calls[call.id] = call

    def get(self, call_id: str, account: str) -> PlacedCall | None:
        """The call ``call_id`` if ``account`` placed it (another account's call is not found)."""
        with self._lock:
            call = self._calls.get(call_id)
        return call if call is not None and call.account == account else None

    def find(self, call_id: str) -> PlacedCall | None:
        """The call ``call_id``, whoever placed it."""
        with self._lock:
            return self._calls.get(call_id)

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._calls.clear()
