"""Masking of phone numbers in the sandbox's log lines."""

from __future__ import annotations

from typing import Any


def mask_phone(value: object) -> str:
    """Keep the first five and last four characters of a number: ``+12025550143`` -> ``+1202***0143``."""
    text = "" if value is None else str(value)
    if len(text) >= 10:
        return f"{text[:5]}***{text[-4:]}"
    if len(text) > 4:
        return f"***{text[-2:]}"
    return "***"


def describe_call(body: Any) -> str:
    """A log-safe summary of a call body: its phone numbers masked, no names, emails or data."""
    if not isinstance(body, dict):
        return f"body={type(body).__name__}"
    parts = [f"to={mask_phone(body['phoneNumber'])}" if "phoneNumber" in body else "to=?"]
    transfer = body.get("callTransfer")
    if isinstance(transfer, dict) and "phoneNumber" in transfer:
        parts.append(f"transfer={mask_phone(transfer['phoneNumber'])}")
    return " ".join(parts)
