"""Masking of personal data for logs, exception messages and XCom summaries."""

from __future__ import annotations

import re

_MASK = "***"
_PHONE_LIKE = re.compile(r"\+?\d[\d\s().\-]{6,}\d")
_EMAIL_LIKE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def mask_phone(value: object) -> str:
    """Mask a phone number, keeping its first five and last four characters (``+1202***0143``)."""
    text = "" if value is None else str(value)
    if len(text) >= 10:
        return f"{text[:5]}{_MASK}{text[-4:]}"
    if len(text) > 4:
        return f"{_MASK}{text[-2:]}"
    return _MASK


def mask_email(value: object) -> str:
    """Mask an email's local part, keeping its first character and the domain (``j***@example.com``)."""
    text = "" if value is None else str(value)
    local, at, domain = text.rpartition("@")
    if not at:
        return _MASK
    return f"{local[:1]}{_MASK}@{domain}"


def mask_text(text: str) -> str:
    """Mask every phone-number-like and email-like run inside free text."""
    text = _EMAIL_LIKE.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)
