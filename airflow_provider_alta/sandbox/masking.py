"""Masking of phone numbers in the sandbox's log lines."""

from __future__ import annotations

from typing import Any

from airflow_provider_alta.masking import mask_phone


def describe_call(body: Any) -> str:
    """A log-safe summary of a call body: its phone numbers masked, no names, emails or data."""
    if not isinstance(body, dict):
        return f"body={type(body).__name__}"
    parts = [f"to={mask_phone(body['phoneNumber'])}" if "phoneNumber" in body else "to=?"]
    transfer = body.get("callTransfer")
    if isinstance(transfer, dict) and "phoneNumber" in transfer:
        parts.append(f"transfer={mask_phone(transfer['phoneNumber'])}")
    return " ".join(parts)
