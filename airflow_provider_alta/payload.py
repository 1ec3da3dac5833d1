"""The call payload: one validated model, snake_case in Python, the spec's camelCase on the wire.

Pure Python: no Airflow import. Every problem is collected and reported at once, each with the
path of the field as the caller named it (``call_transfer.phone_number`` or ``callTransfer.phoneNumber``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from airflow_provider_alta.exceptions import AltaValidationError, FieldError
from airflow_provider_alta.phone import PhoneNumberError, normalize_phone, validate_region

RECEIVER_MESSAGE_MODES = ("static", "summary")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CAMEL_BOUNDARY = re.compile(r"_([a-z])")


@lru_cache(maxsize=256)
def to_camel(name: str) -> str:
    """``message_to_receiver`` -> ``messageToReceiver``."""
    return _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), name)


@lru_cache(maxsize=8)
def _aliases(allowed: tuple[str, ...]) -> dict[str, str]:
    """Each field's snake_case and camelCase names, mapped to its snake_case name."""
    return {name: name for name in allowed} | {to_camel(name): name for name in allowed}


@lru_cache(maxsize=1024)
def _is_timezone(name: str) -> bool:
    import pendulum

    try:
        pendulum.timezone(name)
    except Exception:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class CallTransfer:
    """Where and how Alta's assistant transfers the call (``callTransfer``)."""

    phone_number: str
    description: str | None = None
    message: str | None = None
    message_to_receiver: str | None = None
    transfer_summary_prompt: str | None = None
    receiver_message_mode: str | None = None
    show_prospect_phone_on_transfer: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset fields omitted."""
        return {to_camel(f.name): v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True, kw_only=True)
class AssistantCall:
    """One validated request to ``POST /assistant/calls``. Build it with :func:`build_call`."""

    assistant_id: str
    name: str
    phone_number: str
    email: str | None = None
    timezone: str | None = None
    data: Mapping[str, Any] | None = None
    call_transfer: CallTransfer | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset fields omitted (never ``null``)."""
        body: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            body[to_camel(f.name)] = value.to_json() if isinstance(value, CallTransfer) else value
        return body


class _Collector:
    """Collects field errors under a path prefix."""

    def __init__(self, errors: list[FieldError], prefix: str = "") -> None:
        self.errors = errors
        self.prefix = prefix

    def add(self, key: str, rule: str) -> None:
        self.errors.append(FieldError(f"{self.prefix}{key}", rule))

    def child(self, key: str) -> _Collector:
        return _Collector(self.errors, f"{self.prefix}{key}.")


def _canonical_keys(
    raw: Mapping[Any, Any], allowed: tuple[str, ...], errors: _Collector
) -> dict[str, tuple[str, Any]]:
    """Map snake_case or camelCase keys to ``{snake: (key as given, value)}``; reject unknown keys."""
    by_alias = _aliases(allowed)
    out: dict[str, tuple[str, Any]] = {}
    for key, value in raw.items():
        name = by_alias.get(key) if isinstance(key, str) else None
        if name is None:
            errors.add(str(key), f"unknown field (allowed: {', '.join(allowed)}, or their camelCase forms)")
        elif name in out:
            errors.add(str(key), f"given twice (also as {out[name][0]!r})")
        else:
            out[name] = (key, value)
    return out


def _text(given: dict[str, tuple[str, Any]], name: str, errors: _Collector, *, required: bool) -> str | None:
    key, value = given.get(name, (name, None))
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if required:
            errors.add(key, "is required and must not be empty")
        return None
    if not isinstance(value, str):
        errors.add(key, f"must be a string, not {type(value).__name__}")
        return None
    return value


def _phone(
    given: dict[str, tuple[str, Any]], name: str, errors: _Collector, region: str | None
) -> str | None:
    key, value = given.get(name, (name, None))
    if isinstance(value, int | float) and not isinstance(value, bool):
        errors.add(
            key,
            f"must be a string, not {type(value).__name__} (a number loses its + and leading 0s: quote it)",
        )
        return None
    text = _text(given, name, errors, required=True)
    if text is None:
        return None
    if len(text) < 2:
        errors.add(key, "must be at least 2 characters")
        return None
    try:
        return normalize_phone(text, region)
    except PhoneNumberError as exc:
        errors.add(key, str(exc))
        return None


def _check_json(value: Any, path: str, errors: _Collector) -> None:
    """Check that ``value`` is JSON: objects with string keys, finite numbers, no other types."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                errors.add(f"{path}[{k!r}]", f"object keys must be strings, not {type(k).__name__}")
            else:
                _check_json(v, f"{path}.{k}", errors)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]", errors)
    elif isinstance(value, float) and not math.isfinite(value):
        errors.add(path, "must be a finite number (JSON has no NaN or Infinity)")
    elif not (value is None or isinstance(value, str | int | float | bool)):
        errors.add(path, f"is not JSON-serialisable ({type(value).__name__})")


def _data(given: dict[str, tuple[str, Any]], errors: _Collector) -> Mapping[str, Any] | None:
    key, value = given.get("data", ("data", None))
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errors.add(key, f"must be a JSON object (a dict), not {type(value).__name__}")
        return None
    before = len(errors.errors)
    _check_json(value, key, errors)
    if len(errors.errors) > before:
        return None
    return dict(json.loads(json.dumps(value)))


def _timezone(given: dict[str, tuple[str, Any]], errors: _Collector) -> str | None:
    zone = _text(given, "timezone", errors, required=False)
    if zone is None:
        return None
    if not _is_timezone(zone):
        errors.add(given["timezone"][0], "must be an IANA timezone name such as 'America/New_York'")
        return None
    return zone


_TRANSFER_FIELDS = tuple(f.name for f in fields(CallTransfer))
_TRANSFER_TEXTS = ("description", "message", "message_to_receiver", "transfer_summary_prompt")
_CALL_FIELDS = tuple(f.name for f in fields(AssistantCall))


def _transfer(
    given: dict[str, tuple[str, Any]], errors: _Collector, region: str | None
) -> CallTransfer | None:
    key, value = given.get("call_transfer", ("call_transfer", None))
    if value is None:
        return None
    if isinstance(value, CallTransfer):
        value = {f: getattr(value, f) for f in _TRANSFER_FIELDS}
    if not isinstance(value, Mapping):
        errors.add(key, f"must be a CallTransfer or a dict, not {type(value).__name__}")
        return None
    sub = errors.child(key)
    before = len(errors.errors)
    t = _canonical_keys(value, _TRANSFER_FIELDS, sub)
    texts = {n: _text(t, n, sub, required=False) for n in _TRANSFER_TEXTS}
    mode = _text(t, "receiver_message_mode", sub, required=False)
    if mode is not None and mode not in RECEIVER_MESSAGE_MODES:
        sub.add(t["receiver_message_mode"][0], f"must be one of {', '.join(RECEIVER_MESSAGE_MODES)}")
    show_key, show = t.get("show_prospect_phone_on_transfer", ("show_prospect_phone_on_transfer", None))
    if show is not None and not isinstance(show, bool):
        sub.add(show_key, f"must be a boolean (true or false), not {type(show).__name__}")
    phone = _phone(t, "phone_number", sub, region)
    if len(errors.errors) > before or phone is None:
        return None
    return CallTransfer(
        phone_number=phone,
        receiver_message_mode=mode,
        show_prospect_phone_on_transfer=show,
        **texts,
    )


def build_call(fields_: Mapping[str, Any], *, default_region: str | None = None) -> AssistantCall:
    """Validate and normalise one call from snake_case or camelCase fields.

    Raises :class:`AltaValidationError` listing every problem, each with its field path.
    """
    problems: list[FieldError] = []
    errors = _Collector(problems)
    region: str | None = None
    try:
        region = validate_region(default_region)
    except PhoneNumberError as exc:
        errors.add("default_region", str(exc))
    given = _canonical_keys(fields_, _CALL_FIELDS, errors)
    assistant_id = _text(given, "assistant_id", errors, required=True)
    name = _text(given, "name", errors, required=True)
    phone = _phone(given, "phone_number", errors, region)
    email = _text(given, "email", errors, required=False)
    if email is not None and not _EMAIL.match(email):
        errors.add(given["email"][0], "must look like an email address (name@domain.tld)")
    zone = _timezone(given, errors)
    data = _data(given, errors)
    transfer = _transfer(given, errors, region)
    if problems:
        raise AltaValidationError.from_errors(problems)
    assert assistant_id is not None
    assert name is not None
    assert phone is not None
    return AssistantCall(
        assistant_id=assistant_id,
        name=name,
        phone_number=phone,
        email=email,
        timezone=zone,
        data=data,
        call_transfer=transfer,
    )


def merge_record(
    shared: Mapping[str, Any], record: Mapping[str, Any] | None, field_map: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Combine shared call fields with one upstream record, ready for :func:`build_call`.

    ``field_map`` maps record keys to payload fields (``"mobile": "phone_number"``) or into
    ``data`` (``"plan": "data.plan"``). Other record keys are taken as payload fields as they are
    (snake_case or camelCase), so an unexpected column fails validation as an unknown field.
    A field set both by ``shared`` and by the record is an error; ``data`` is merged, the record's
    keys winning. Values are copied as they are: they are data, never templates.
    """
    fields_: dict[str, Any] = {k: v for k, v in shared.items() if v is not None}
    if record is None:
        return fields_
    if not isinstance(record, Mapping):
        problem = FieldError("prospect", f"must be a dict (a record), not {type(record).__name__}")
        raise AltaValidationError.from_errors([problem])
    problems: list[FieldError] = []
    data: dict[str, Any] = {}
    for key, value in record.items():
        target = (field_map or {}).get(key, key)
        canonical = _CAMEL_TO_SNAKE.get(target, target)
        if target.startswith("data."):
            data[target[5:]] = value
        elif canonical == "data" and isinstance(value, Mapping):
            data = {**value, **data}
        elif canonical in fields_:
            problems.append(
                FieldError(f"prospect.{key}", f"sets {canonical}, which the operator already sets")
            )
        else:
            fields_[target] = value
    if problems:
        raise AltaValidationError.from_errors(problems)
    if data:
        shared_data = fields_.get("data") or {}
        fields_["data"] = {**shared_data, **data} if isinstance(shared_data, Mapping) else shared_data
    return fields_


_CAMEL_TO_SNAKE = {to_camel(n): n for n in _CALL_FIELDS}
