"""How a placed call went: its id from Alta's answer, its outcome from ``GET /calls/{id}``. Pure Python.

Alta does not document the 200 answer of ``POST /assistant/calls``: a call id is taken when it has
one (``id`` or ``callId``). The call's JSON (``get-call.yaml``) is reduced to a masked outcome for
XCom, trigger events and the task state store: known fields only, in their documented form (times,
ids) or masked (numbers, the summary); anything else is dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_alta.masking import mask_phone, mask_text, scrub_answer

#: Outcome statuses: the call ended; it has not yet; its outcome cannot be followed (no call id).
ENDED = "ended"
NOT_ENDED = "not_ended"
UNAVAILABLE = "unavailable"

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")  # safe as one URL path segment
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)?")
_CALL_TYPE = re.compile(r"[a-z_]{1,32}")
#: Fields kept as they are when they have their documented form (times, a call type, an id).
_FORMS = {
    "createdAt": _TIME,
    "startedAt": _TIME,
    "endedAt": _TIME,
    "callType": _CALL_TYPE,
    "prospectId": _ID,
}
_MAX_SUMMARY = 4000


def call_id_from(answer: Any) -> str | None:
    """The call id in Alta's answer to placing a call (``id``, else ``callId``), or ``None``.

    Only a plain token (letters, digits, ``._:-``, at most 128) is an id: it goes into a URL path.
    """
    if not isinstance(answer, Mapping):
        return None
    for name in ("id", "callId"):
        value = answer.get(name)
        if isinstance(value, str) and _ID.fullmatch(value):
            return value
    return None


def valid_call_id(value: Any) -> str:
    """``value`` if it is a usable call id, else :class:`ValueError` (for a sensor's templated id)."""
    if isinstance(value, str) and _ID.fullmatch(value.strip()):
        return value.strip()
    raise ValueError(f"not a call id: {mask_text(str(value))[:80]!r}")


def has_ended(call: Any) -> bool:
    """Whether Alta's call JSON says the call ended (``endedAt`` is there)."""
    return isinstance(call, Mapping) and call.get("endedAt") not in (None, "")


def masked_outcome(
    call: Mapping[str, Any], *, phone_e164: str | None = None, email: str | None = None
) -> dict[str, Any]:
    """The call's outcome, fit to store: ``status`` (ended / not_ended), ``id``, ``ended`` and the known
    fields (``duration``, ``summary``, ``startedAt``, ``endedAt``, ``createdAt``, ``callType``,
    ``prospectId``, ``to``, ``from``), masked. ``phone_e164``/``email``: the person's, masked wherever
    the summary repeats them (any other number- or email-like text is masked too)."""
    ended = has_ended(call)
    out: dict[str, Any] = {"status": ENDED if ended else NOT_ENDED, "ended": ended}
    call_id = call.get("id")
    if isinstance(call_id, str) and _ID.fullmatch(call_id):
        out["id"] = call_id
    for name, form in _FORMS.items():
        value = call.get(name)
        if isinstance(value, str) and form.fullmatch(value):
            out[name] = value
    duration = call.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool) and math.isfinite(duration):
        out["duration"] = duration
    summary = call.get("summary")
    if isinstance(summary, str):
        if phone_e164 or email:
            summary = scrub_answer(summary, phone_e164, email)
        out["summary"] = mask_text(_shorten(summary, _MAX_SUMMARY))
    for name in ("to", "from"):
        value = call.get(name)
        if isinstance(value, str) and value:
            out[name] = mask_phone(value)
    return out


def unavailable(reason: str) -> dict[str, Any]:
    """The outcome of a call that was placed but cannot be followed."""
    return {"status": UNAVAILABLE, "ended": None, "reason": reason}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
