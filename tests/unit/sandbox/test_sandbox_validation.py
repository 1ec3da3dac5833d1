"""The hand-written validator against the spec's TriggerAssistantCallRequest schema."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from airflow_provider_alta.sandbox import spec_path
from airflow_provider_alta.sandbox.validation import (
    REQUEST_SCHEMA,
    InvalidBody,
    parse_body,
    validate_call,
    validation_message,
)

VALID: dict[str, Any] = {"assistantId": "asst_1", "name": "Ada Example", "phoneNumber": "+12025550143"}


def _strip_descriptions(schema: Any) -> Any:
    """The schema without its ``description`` annotations (property *names* are kept)."""
    if not isinstance(schema, dict):
        return schema
    stripped = {key: _strip_descriptions(value) for key, value in schema.items() if key != "description"}
    if "properties" in schema:
        stripped["properties"] = {
            name: _strip_descriptions(sub) for name, sub in schema["properties"].items()
        }
    return stripped


def test_schema_is_the_spec_schema() -> None:
    with open(spec_path(), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    from_spec = spec["components"]["schemas"]["TriggerAssistantCallRequest"]
    assert _strip_descriptions(from_spec) == REQUEST_SCHEMA


def test_minimal_and_full_bodies_are_valid() -> None:
    full = {
        **VALID,
        "email": "ada@example.com",
        "timezone": "America/New_York",
        "data": {"anything": [1, {"nested": None}]},
        "callTransfer": {
            "phoneNumber": "+442079460123",
            "description": "d",
            "message": "m",
            "messageToReceiver": "r",
            "transferSummaryPrompt": "p",
            "receiverMessageMode": "summary",
            "showProspectPhoneOnTransfer": True,
        },
    }
    assert validate_call(VALID) == []
    assert validate_call(full) == []


def test_unknown_properties_are_accepted_like_the_spec_allows() -> None:
    assert validate_call({**VALID, "extra": 1, "callTransfer": {"phoneNumber": "12", "x": 2}}) == []


@pytest.mark.parametrize("field", ["assistantId", "name", "phoneNumber"])
def test_missing_required_field_is_named(field: str) -> None:
    body = {key: value for key, value in VALID.items() if key != field}
    assert validate_call(body) == [f"{field}: is required"]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"assistantId": 7}, "assistantId: must be a string, got number"),
        ({"name": None}, "name: must be a string, got null"),
        ({"phoneNumber": ["+12025550143"]}, "phoneNumber: must be a string, got array"),
        ({"email": True}, "email: must be a string, got boolean"),
        ({"timezone": {}}, "timezone: must be a string, got object"),
        ({"data": "x"}, "data: must be an object, got string"),
        ({"data": []}, "data: must be an object, got array"),
        ({"callTransfer": "+12025550199"}, "callTransfer: must be an object, got string"),
        ({"callTransfer": {}}, "callTransfer.phoneNumber: is required"),
        ({"callTransfer": {"phoneNumber": "1"}}, "callTransfer.phoneNumber: must be at least 2 characters"),
        ({"callTransfer": {"phoneNumber": ""}}, "callTransfer.phoneNumber: must be at least 2 characters"),
        ({"callTransfer": {"phoneNumber": 12}}, "callTransfer.phoneNumber: must be a string, got number"),
        (
            {"callTransfer": {"phoneNumber": "+12025550199", "receiverMessageMode": "loud"}},
            "callTransfer.receiverMessageMode: must be one of 'static', 'summary'",
        ),
        (
            {"callTransfer": {"phoneNumber": "+12025550199", "showProspectPhoneOnTransfer": "yes"}},
            "callTransfer.showProspectPhoneOnTransfer: must be a boolean, got string",
        ),
        (
            {"callTransfer": {"phoneNumber": "+12025550199", "message": 1.5}},
            "callTransfer.message: must be a string, got number",
        ),
    ],
)
def test_each_violation_names_its_field(patch: dict[str, Any], expected: str) -> None:
    assert validate_call({**VALID, **patch}) == [expected]


def test_min_length_counts_characters_not_bytes() -> None:
    assert validate_call({**VALID, "callTransfer": {"phoneNumber": "é1"}}) == []


def test_every_violation_is_reported() -> None:
    errors = validate_call({"name": 1, "callTransfer": {"phoneNumber": "1", "receiverMessageMode": "x"}})
    assert errors == [
        "assistantId: is required",
        "phoneNumber: is required",
        "name: must be a string, got number",
        "callTransfer.phoneNumber: must be at least 2 characters",
        "callTransfer.receiverMessageMode: must be one of 'static', 'summary'",
    ]
    message = validation_message(errors)
    assert message.startswith("Invalid request body: ")
    assert "callTransfer.phoneNumber" in message


@pytest.mark.parametrize("body", [[], "text", 3, None, True])
def test_non_object_body(body: Any) -> None:
    errors = validate_call(body)
    assert len(errors) == 1
    assert errors[0].startswith("body: must be an object, got ")


def test_parse_body_accepts_utf8_json() -> None:
    assert parse_body('{"name": "Zoë"}'.encode()) == {"name": "Zoë"}


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"{", b'{"a": 1,}', b"\xff\xfe{}", b'{"a": NaN}', b"[Infinity]", b"[" * 100_000],
)
def test_parse_body_rejects_malformed_json(raw: bytes) -> None:
    with pytest.raises(InvalidBody, match=r"^Invalid request body: "):
        parse_body(raw)
