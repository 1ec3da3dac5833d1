from __future__ import annotations

import math

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.payload import AssistantCall, CallTransfer, build_call

VALID = {"assistant_id": "asst_1", "name": "Ada Lovelace", "phone_number": "+12025550143"}


def errors_of(fields, **kw) -> dict[str, str]:
    with pytest.raises(AltaValidationError) as info:
        build_call(fields, **kw)
    return {e.field: e.rule for e in info.value.errors}


def test_minimal_call_is_exactly_the_required_camel_case_fields():
    assert build_call(VALID).to_json() == {
        "assistantId": "asst_1",
        "name": "Ada Lovelace",
        "phoneNumber": "+12025550143",
    }


def test_full_call_maps_every_field_to_the_spec_names():
    call = build_call(
        {
            **VALID,
            "email": "ada@example.com",
            "timezone": "Europe/London",
            "data": {"plan": "pro", "seats": 3, "tags": ["a", None, 1.5], "nested": {"ok": True}},
            "call_transfer": {
                "phone_number": "+44 20 7946 0123",
                "description": "when they ask for sales",
                "message": "Transferring you now",
                "message_to_receiver": "Hot lead",
                "transfer_summary_prompt": "Summarise the call",
                "receiver_message_mode": "summary",
                "show_prospect_phone_on_transfer": False,
            },
        }
    )
    assert call.to_json() == {
        "assistantId": "asst_1",
        "name": "Ada Lovelace",
        "phoneNumber": "+12025550143",
        "email": "ada@example.com",
        "timezone": "Europe/London",
        "data": {"plan": "pro", "seats": 3, "tags": ["a", None, 1.5], "nested": {"ok": True}},
        "callTransfer": {
            "phoneNumber": "+442079460123",
            "description": "when they ask for sales",
            "message": "Transferring you now",
            "messageToReceiver": "Hot lead",
            "transferSummaryPrompt": "Summarise the call",
            "receiverMessageMode": "summary",
            "showProspectPhoneOnTransfer": False,
        },
    }


def test_unset_optionals_are_omitted_never_null():
    body = build_call({**VALID, "email": None, "timezone": "", "data": None, "call_transfer": None}).to_json()
    assert set(body) == {"assistantId", "name", "phoneNumber"}
    transfer = build_call({**VALID, "call_transfer": {"phoneNumber": "+12025550199"}}).to_json()
    assert transfer["callTransfer"] == {"phoneNumber": "+12025550199"}


@pytest.mark.parametrize(
    "transfer",
    [
        CallTransfer(phone_number="+12025550199", receiver_message_mode="static"),
        {"phone_number": "+12025550199", "receiver_message_mode": "static"},
        {"phoneNumber": "+12025550199", "receiverMessageMode": "static"},
    ],
)
def test_call_transfer_accepts_model_snake_or_camel(transfer):
    body = build_call({**VALID, "call_transfer": transfer}).to_json()
    assert body["callTransfer"] == {"phoneNumber": "+12025550199", "receiverMessageMode": "static"}


def test_camel_case_top_level_keys_are_accepted():
    call = build_call({"assistantId": "a", "name": "B", "phoneNumber": "+12025550143"})
    assert call == AssistantCall(assistant_id="a", name="B", phone_number="+12025550143")


def test_national_number_is_normalised_with_default_region():
    call = build_call({**VALID, "phone_number": "(202) 555-0143"}, default_region="US")
    assert call.phone_number == "+12025550143"
    assert build_call({**VALID, "phone_number": "020 7946 0123"}, default_region="gb").phone_number == (
        "+442079460123"
    )


def test_every_problem_is_reported_at_once_with_its_path():
    errs = errors_of(
        {
            "assistant_id": " ",
            "name": 7,
            "phone_number": "555",
            "email": "not-an-email",
            "timezone": "Mars/Olympus",
            "data": {"ok": 1, "bad": float("nan"), 3: "x", "obj": object()},
            "call_transfer": {
                "phoneNumber": "1",
                "receiverMessageMode": "loud",
                "showProspectPhoneOnTransfer": "true",
                "colour": "red",
            },
            "phone": "+12025550143",
        }
    )
    assert errs == {
        "assistant_id": "is required and must not be empty",
        "name": "must be a string, not int",
        "phone_number": errs["phone_number"],
        "email": "must look like an email address (name@domain.tld)",
        "timezone": "must be an IANA timezone name such as 'America/New_York'",
        "data.bad": "must be a finite number (JSON has no NaN or Infinity)",
        "data[3]": "object keys must be strings, not int",
        "data.obj": "is not JSON-serialisable (object)",
        "call_transfer.phoneNumber": "must be at least 2 characters",
        "call_transfer.receiverMessageMode": "must be one of static, summary",
        "call_transfer.showProspectPhoneOnTransfer": "must be a boolean (true or false), not str",
        "call_transfer.colour": errs["call_transfer.colour"],
        "phone": errs["phone"],
    }
    assert "country code" in errs["phone_number"]
    assert errs["phone"].startswith("unknown field")
    assert errs["call_transfer.colour"].startswith("unknown field")


def test_missing_required_fields():
    assert errors_of({}) == {
        "assistant_id": "is required and must not be empty",
        "name": "is required and must not be empty",
        "phone_number": "is required and must not be empty",
    }


def test_call_transfer_requires_its_phone_number():
    errs = errors_of({**VALID, "call_transfer": {"message": "hi"}})
    assert errs == {"call_transfer.phone_number": "is required and must not be empty"}


@pytest.mark.parametrize("number", ["+1 202 555 01", "+99912345678", "hello", "+1202555014355555"])
def test_invalid_numbers_are_rejected_and_never_echoed(number):
    with pytest.raises(AltaValidationError) as info:
        build_call({**VALID, "phone_number": number})
    assert [e.field for e in info.value.errors] == ["phone_number"]
    assert number not in str(info.value)


def test_the_same_field_twice_is_an_error():
    errs = errors_of({**VALID, "phoneNumber": "+12025550144"})
    assert list(errs) == ["phoneNumber"]
    assert "given twice" in errs["phoneNumber"]


def test_bad_default_region_is_reported():
    assert "unknown region" in errors_of(VALID, default_region="ZZ")["default_region"]


def test_data_must_be_an_object():
    assert errors_of({**VALID, "data": ["a"]}) == {"data": "must be a JSON object (a dict), not list"}
    assert "finite" in errors_of({**VALID, "data": {"x": [math.inf]}})["data.x[0]"]


def test_data_is_copied_so_later_mutation_does_not_change_the_call():
    data = {"a": [1]}
    call = build_call({**VALID, "data": data})
    data["a"].append(2)
    assert call.to_json()["data"] == {"a": [1]}


def test_integer_phone_numbers_are_refused_because_they_lost_their_plus():
    errs = errors_of({**VALID, "phone_number": 12025550143})
    assert errs["phone_number"].startswith("must be a string, not int")
    assert "quote" in errs["phone_number"]


def test_booleans_are_not_phone_numbers_or_strings():
    errs = errors_of({**VALID, "phone_number": True, "email": False})
    assert errs == {"phone_number": "must be a string, not bool", "email": "must be a string, not bool"}
