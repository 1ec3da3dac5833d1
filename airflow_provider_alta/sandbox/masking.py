"""Masking of phone numbers and emails in the sandbox's log lines."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from airflow_provider_alta.masking import mask_phone, mask_text

#: Digits split by ``+`` too: a query string's encoded spaces (``?to=+1+202+555+0143``).
_PLUS_SPLIT_PHONE = re.compile(r"\+?\d[\d\s().\-+]{6,}\d")
_MAX_TARGET = 200


def describe_call(body: Any) -> str:
    """A log-safe summary of a call body: its phone numbers masked, no names, emails or data."""
    if not isinstance(body, dict):
        return f"body={type(body).__name__}"
    parts = [f"to={mask_phone(body['phoneNumber'])}" if "phoneNumber" in body else "to=?"]
    transfer = body.get("callTransfer")
    if isinstance(transfer, dict) and "phoneNumber" in transfer:
        parts.append(f"transfer={mask_phone(transfer['phoneNumber'])}")
    return " ".join(parts)


def mask_log_text(text: str) -> str:
    """``text`` made log-safe: percent-decoded, phone numbers and emails masked, control characters
    shown as ``?`` (no forged log lines), at most 200 characters."""
    decoded = "".join(ch if ch.isprintable() else "?" for ch in unquote(text, errors="replace"))
    masked = _PLUS_SPLIT_PHONE.sub(lambda m: mask_phone(m.group(0)), mask_text(decoded))
    return masked if len(masked) <= _MAX_TARGET else masked[:_MAX_TARGET] + "..."
