"""The call payload: one validated model, snake_case in Python, the spec's camelCase on the wire.

Pure Python: no Airflow import. Every problem is collected and reported at once, each with the
path of the field as the caller named it (``call_transfer.phone_number`` or ``callTransfer.phoneNumber``).
Not a pydantic model: its errors would still need this module's key checks, ``data`` checker and a
message table to keep the messages and their order, and importing it costs about 0.3 s on Airflow 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from airflow_provider_alta.exceptions import AltaValidationError, FieldError
from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.phone import PhoneNumberError, normalize_phone, validate_region

RECEIVER_MESSAGE_MODES = ("static", "summary")
MAX_DATA_DEPTH = 32  # objects and lists nested deeper than this inside ``data`` are refused
MAX_DATA_ERRORS = 10  # problems listed per ``data``; the rest are summed up in one line
MAX_INT_BITS = 64  # larger integers are refused (JSON readers lose them, Python cannot always print them)
_MAX_LABEL = 40
_PLAIN_NAME = re.compile(r"[\w\-]+")
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


def label(key: Any) -> str:
    """A key as it may appear in a field path: short, masked, never empty and never raising.

    A plain name (letters, digits, ``_``, ``-``) is shown as it is; anything else as its ``repr``.
    """
    try:
        text = key if isinstance(key, str) and _PLAIN_NAME.fullmatch(key) else repr(key)
    except Exception:
        text = f"<{type(key).__name__}>"
    if len(text) > _MAX_LABEL:
        text = text[: _MAX_LABEL - 1] + "\u2026"
    return mask_text(text)


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
        if name is None and not isinstance(key, str):
            errors.add(f"[{label(key)}]", f"field names must be strings, not {type(key).__name__}")
        elif name is None:
            errors.add(label(key), f"unknown field (allowed: {', '.join(allowed)}, or their camelCase forms)")
        elif name in out:
            errors.add(key, f"given twice (also as {out[name][0]!r})")
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


class _JSONChecker:
    """Checks that a value is JSON and copies it (objects -> dicts, tuples -> lists), collecting errors.

    Nesting is bounded by :data:`MAX_DATA_DEPTH` and cycles are reported, so no input can
    exhaust the stack; at most :data:`MAX_DATA_ERRORS` problems are listed. A path is kept as
    its segments and only written out for an error.
    """

    def __init__(self, errors: _Collector, root: str) -> None:
        self.errors = errors
        self.root = root
        self.found = 0
        self.open: set[int] = set()  # ids of the containers being checked (cycle detection)

    def add(self, path: tuple[str | int, ...], rule: str, last: str = "") -> None:
        self.found += 1
        if self.found <= MAX_DATA_ERRORS:
            parts = (f"[{p}]" if isinstance(p, int) else f".{label(p)}" for p in path)
            self.errors.add(self.root + "".join(parts) + last, rule)

    def check(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        if isinstance(value, Mapping | list | tuple):
            return self._container(value, path)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str):
            return str.__str__(value)  # a plain str, whatever subclass came in
        if isinstance(value, int):
            if value.bit_length() > MAX_INT_BITS:
                self.add(path, f"integer too large (at most {MAX_INT_BITS} bits)")
            return int.__int__(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.add(path, "must be a finite number (JSON has no NaN or Infinity)")
            return float.__float__(value)
        self.add(path, f"is not JSON-serialisable ({type(value).__name__})")
        return None

    def _container(
        self, value: Mapping[Any, Any] | list[Any] | tuple[Any, ...], path: tuple[str | int, ...]
    ) -> Any:
        if id(value) in self.open:
            self.add(path, "refers to itself (a cycle): JSON cannot hold it")
            return None
        if len(path) >= MAX_DATA_DEPTH:
            self.add(path, f"nested deeper than {MAX_DATA_DEPTH} levels")
            return None
        self.open.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self._object(value, path)
            return [self.check(v, (*path, i)) for i, v in enumerate(value)]
        finally:
            self.open.discard(id(value))

    def _object(self, value: Mapping[Any, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(k, str):
                k = str.__str__(k)
                out[k] = self.check(v, (*path, k))
            else:
                self.add(path, f"object keys must be strings, not {type(k).__name__}", f"[{label(k)}]")
        return out


def _data(given: dict[str, tuple[str, Any]], errors: _Collector) -> Mapping[str, Any] | None:
    key, value = given.get("data", ("data", None))
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errors.add(key, f"must be a JSON object (a dict), not {type(value).__name__}")
        return None
    checker = _JSONChecker(errors, key)
    copy = checker.check(value)
    if checker.found > MAX_DATA_ERRORS:
        errors.add(key, f"{checker.found - MAX_DATA_ERRORS} more problem(s) not listed")
    if checker.found:
        return None
    return dict(copy)


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
    shared: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    field_map: Mapping[str, str] | None = None,
    *,
    required: bool = False,
) -> dict[str, Any]:
    """Combine shared call fields with one upstream record, ready for :func:`build_call`.

    ``field_map`` maps record keys to payload fields (``"mobile": "phone_number"``) or into
    ``data`` (``"plan": "data.plan"``). Other record keys are taken as payload fields as they are
    (snake_case or camelCase), so an unexpected column fails validation as an unknown field.
    A field set both by ``shared`` and by the record, or twice by the record, is an error; ``data``
    is merged, the record's keys winning. Keys must be strings. Values are copied as they are:
    they are data, never templates. ``None`` means no record, unless ``required`` (a batch's
    records). Raises :class:`AltaValidationError` naming each ``prospect.*`` path.
    """
    fields_: dict[str, Any] = {k: v for k, v in shared.items() if v is not None}
    if record is None and not required:
        return fields_
    if not isinstance(record, Mapping):
        problem = FieldError("prospect", f"must be a dict (a record), not {type(record).__name__}")
        raise AltaValidationError.from_errors([problem])
    problems: list[FieldError] = []
    data: dict[str, Any] = {}
    set_by: dict[str, str] = {}  # payload field -> the record key that set it
    for key, value in record.items():
        target = _target(key, field_map, problems)
        if target is None:
            continue
        canonical = _CAMEL_TO_SNAKE.get(target, target)
        path = f"prospect.{label(key)}"
        if target.startswith("data."):
            data[target[5:]] = value
        elif canonical == "data" and isinstance(value, Mapping):
            data = {**value, **data}
        elif canonical in set_by:
            problems.append(
                FieldError(path, f"sets {canonical} again (also set by prospect.{set_by[canonical]})")
            )
        elif canonical in fields_ or target in fields_:
            problems.append(FieldError(path, f"sets {canonical}, which the operator already sets"))
        else:
            fields_[target] = value
            set_by[canonical] = label(key)
    if problems:
        raise AltaValidationError.from_errors(problems)
    if data:
        shared_data = fields_.get("data") or {}
        fields_["data"] = {**shared_data, **data} if isinstance(shared_data, Mapping) else shared_data
    return fields_


def _target(key: Any, field_map: Mapping[str, str] | None, problems: list[FieldError]) -> str | None:
    """The payload field (or ``data.<name>``) a record key feeds; ``None`` after reporting a problem."""
    if not isinstance(key, str):
        problems.append(
            FieldError(f"prospect[{label(key)}]", f"keys must be strings, not {type(key).__name__}")
        )
        return None
    target = (field_map or {}).get(key, key)
    if not isinstance(target, str):
        problems.append(
            FieldError(f"field_map.{label(key)}", f"must name a payload field, not {type(target).__name__}")
        )
        return None
    return target


_CAMEL_TO_SNAKE = {to_camel(n): n for n in _CALL_FIELDS}
