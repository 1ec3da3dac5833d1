"""Validation of ``POST /assistant/calls`` bodies against the Alta spec, without a schema library.

``REQUEST_SCHEMA`` is a copy of ``TriggerAssistantCallRequest`` from ``openapi.yaml`` (descriptions
left out); a unit test checks that the two stay identical. Only what the spec says is enforced:
types, required properties, ``enum`` and ``minLength``. Unknown properties are accepted, because
the spec does not forbid them.

Not ``jsonschema`` over ``openapi.yaml``: the sandbox needs nothing beyond the standard library
(no ``yaml``, no ``jsonschema``), and this walk is about 15 times faster per request.
"""

from __future__ import annotations

import json
from typing import Any, Final

REQUEST_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["assistantId", "name", "phoneNumber"],
    "properties": {
        "assistantId": {"type": "string"},
        "name": {"type": "string"},
        "phoneNumber": {"type": "string"},
        "email": {"type": "string"},
        "timezone": {"type": "string"},
        "data": {"type": "object", "additionalProperties": True},
        "callTransfer": {
            "type": "object",
            "required": ["phoneNumber"],
            "properties": {
                "phoneNumber": {"type": "string", "minLength": 2},
                "description": {"type": "string"},
                "message": {"type": "string"},
                "messageToReceiver": {"type": "string"},
                "transferSummaryPrompt": {"type": "string"},
                "receiverMessageMode": {"type": "string", "enum": ["static", "summary"]},
                "showProspectPhoneOnTransfer": {"type": "boolean"},
            },
        },
    },
}

_TYPE_NAMES: Final[dict[str, str]] = {
    "string": "a string",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "integer": "an integer",
    "number": "a number",
}


class InvalidBody(ValueError):
    """The body is not a valid request; ``str()`` is the message for the 400 answer."""


def parse_body(raw: bytes) -> Any:
    """Decode a UTF-8 JSON document strictly (no ``NaN``/``Infinity``), or raise ``InvalidBody``."""
    if not raw.strip():
        raise InvalidBody("Invalid request body: the body is empty, expected a JSON object")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidBody("Invalid request body: malformed JSON") from None


def validate_call(body: Any) -> list[str]:
    """Return every violation of ``REQUEST_SCHEMA`` as ``"<field path>: <problem>"`` (empty when valid)."""
    errors: list[str] = []
    _validate(body, REQUEST_SCHEMA, "", errors)
    return errors


def validation_message(errors: list[str]) -> str:
    """The 400 message for a list of violations: it names every offending field."""
    return "Invalid request body: " + "; ".join(errors)


def _validate(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    expected = schema.get("type")
    if isinstance(expected, str) and not _is_type(value, expected):
        errors.append(
            f"{path or 'body'}: must be {_TYPE_NAMES.get(expected, expected)}, got {_json_type(value)}"
        )
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(choice) for choice in schema["enum"])
        errors.append(f"{path}: must be one of {choices}")
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and isinstance(value, str) and len(value) < min_length:
        errors.append(f"{path}: must be at least {min_length} characters")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{_join(path, name)}: is required")
        for name, child in schema.get("properties", {}).items():
            if name in value:
                _validate(value[name], child, _join(path, name), errors)


def _is_type(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
