"""Masking of personal data for logs, exception messages and XCom summaries."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_MASK = "***"
_PHONE_LIKE = re.compile(r"\+?\d[\d\s().\-]{6,}\d")
_EMAIL_LIKE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def mask_phone(value: object) -> str:
    """Mask a phone number, keeping its last four characters and its first five when it starts with
    ``+`` (the country and area code: ``+1202***0143``), else its first three (``202***0143``), so a
    national number keeps no more than its area code."""
    text = "" if value is None else str(value)
    if len(text) >= 10:
        keep = 5 if text.startswith("+") else 3
        return f"{text[:keep]}{_MASK}{text[-4:]}"
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


def mask_value(value: Any) -> Any:
    """``value`` with :func:`mask_text` applied to every string inside it (keys too), for display."""
    return _walk(value, mask_text)


def scrub_answer(value: Any, phone_e164: str | None, email: str | None) -> Any:
    """Alta's answer with one person's number and email masked wherever it echoes them.

    The number is found in any rendering that keeps its digits in order: E.164, national,
    spaced, dashed, bracketed or digits only; the email in any letter case. Other digits (a call
    id, a count) are left alone.
    """
    national = _national_digits(phone_e164)
    email_re = re.compile(re.escape(email), re.IGNORECASE) if email else None

    def scrub(text: str) -> str:
        if email_re is not None and email:
            text = email_re.sub(mask_email(email), text)
        if national:
            text = _NUMBER_RUN.sub(lambda m: _mask_if_theirs(m.group(0), national), text)
        return text

    return _walk(value, scrub, numbers=True)


_NUMBER_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]*\d")


def _mask_if_theirs(run: str, national: str) -> str:
    return mask_phone(run) if national in re.sub(r"\D", "", run) else run


def _national_digits(phone_e164: str | None) -> str:
    """The national significant number of an E.164 number (at least 6 digits), else ``""``."""
    if not phone_e164:
        return ""
    import phonenumbers

    try:
        national = str(phonenumbers.parse(phone_e164, None).national_number)
    except phonenumbers.NumberParseException:
        national = re.sub(r"\D", "", phone_e164)
    return national if len(national) >= 6 else ""


def _walk(value: Any, on_text: Callable[[str], str], depth: int = 0, numbers: bool = False) -> Any:
    """Apply ``on_text`` to every string (and, with ``numbers``, every integer's digits) inside."""
    if depth > _MAX_DEPTH:
        return _MASK
    if isinstance(value, str):
        return on_text(value)
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        return value if on_text(text) == text else on_text(text)
    if isinstance(value, Mapping):
        return {
            _walk(k, on_text, depth + 1, numbers): _walk(v, on_text, depth + 1, numbers)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(v, on_text, depth + 1, numbers) for v in value]
    return value


_MAX_DEPTH = 64
