from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal
from types import MappingProxyType

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.payload import (
    MAX_DATA_DEPTH,
    MAX_DATA_ERRORS,
    AssistantCall,
    CallTransfer,
    build_call,
    merge_record,
)
from alta_testing.data.odd_records import Unprintable

VALID = {"assistant_id": "asst_1", "name": "Ada Lovelace", "phone_number": "+12025550143"}
LEAD = {"name": "Ada Lovelace", "phone_number": "+12025550143"}


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


@pytest.mark.parametrize("number", ["+1 202-555-0143 ext. 12", "+1 202-555-0143 x12", "+12025550143;ext=12"])
def test_a_number_with_an_extension_is_reported_with_its_field_path(number):
    transfer = {"phoneNumber": number}
    with pytest.raises(AltaValidationError) as info:
        build_call({**VALID, "phone_number": number, "callTransfer": transfer})
    errors = {e.field: e.rule for e in info.value.errors}
    assert set(errors) == {"phone_number", "callTransfer.phoneNumber"}
    assert all(rule.startswith("must not have an extension") for rule in errors.values())
    assert "2025550143" not in str(info.value)


# --- odd shapes: every one is a field error with its path, never a crash ---------------------


def nested(depth: int, leaf=None, kind=dict):
    value = leaf
    for _ in range(depth):
        value = {"x": value} if kind is dict else [value]
    return value


@pytest.mark.parametrize("kind", [dict, list])
def test_data_nested_thousands_deep_is_refused_with_its_path(kind):
    errs = errors_of({**VALID, "data": {"a": nested(5000, kind=kind)}})
    ((path, rule),) = errs.items()
    assert rule == f"nested deeper than {MAX_DATA_DEPTH} levels"
    assert path.startswith("data.a")


def test_data_may_nest_up_to_the_limit():
    data = {"a": nested(MAX_DATA_DEPTH - 1, leaf=1)}  # data's object and 31 below it: 32 levels
    assert build_call({**VALID, "data": data}).data == data
    errs = errors_of({**VALID, "data": {"a": nested(MAX_DATA_DEPTH, leaf=1)}})
    assert list(errs.values()) == [f"nested deeper than {MAX_DATA_DEPTH} levels"]


def test_self_referencing_data_is_refused_with_its_path():
    loop: dict = {"ok": 1}
    loop["me"] = loop
    assert errors_of({**VALID, "data": loop}) == {
        "data.me": "refers to itself (a cycle): JSON cannot hold it"
    }
    items: list = [1]
    items.append(items)
    assert errors_of({**VALID, "data": {"items": items}}) == {
        "data.items[1]": "refers to itself (a cycle): JSON cannot hold it"
    }


def test_the_same_object_twice_is_not_a_cycle():
    shared = {"k": [1, 2]}
    assert build_call({**VALID, "data": {"a": shared, "b": shared}}).data == {"a": shared, "b": shared}


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (b"bytes", "is not JSON-serialisable (bytes)"),
        ({1, 2}, "is not JSON-serialisable (set)"),
        (Decimal("1.5"), "is not JSON-serialisable (Decimal)"),
        (datetime(2026, 1, 1, tzinfo=timezone.utc), "is not JSON-serialisable (datetime)"),
        (Unprintable(), "is not JSON-serialisable (Unprintable)"),
        (float("-inf"), "must be a finite number (JSON has no NaN or Infinity)"),
        (10**5000, "integer too large (at most 64 bits)"),
    ],
    ids=["bytes", "set", "decimal", "datetime", "unprintable", "inf", "huge-int"],
)
def test_odd_data_values_are_refused_with_their_path(value, rule):
    assert errors_of({**VALID, "data": {"v": value}}) == {"data.v": rule}


def test_odd_data_keys_are_refused_and_never_echoed_in_full():
    errs = errors_of(
        {**VALID, "data": {None: 1, (1, 2): 2, Unprintable(): 3, 12025550143: 4, "x" * 500: {1: 5}}}
    )
    assert errs == {
        "data[None]": "object keys must be strings, not NoneType",
        "data[(1, 2)]": "object keys must be strings, not tuple",
        "data[<Unprintable>]": "object keys must be strings, not Unprintable",
        "data[120***0143]": "object keys must be strings, not int",
        f"data.{'x' * 39}\u2026[1]": "object keys must be strings, not int",
    }


def test_a_phone_number_as_a_data_key_is_masked_in_the_path():
    errs = errors_of({**VALID, "data": {"+12025550143": float("nan")}})
    assert list(errs) == ["data.'+1202***0143'"]


def test_data_problems_are_capped():
    errs = errors_of({**VALID, "data": {f"k{i}": float("nan") for i in range(100)}})
    assert len(errs) == MAX_DATA_ERRORS + 1
    assert errs["data"] == f"{100 - MAX_DATA_ERRORS} more problem(s) not listed"


def test_data_is_copied_to_plain_json_types():
    class Text(str):
        pass

    data = MappingProxyType({Text("a"): (1, Text("b")), "n": True})
    call = build_call({**VALID, "data": data})
    assert call.data == {"a": [1, "b"], "n": True}
    assert type(call.data["a"][1]) is str
    assert type(next(iter(call.data))) is str


@pytest.mark.parametrize("key", [1, None, (1, 2), Unprintable()])
def test_top_level_keys_that_are_not_strings_are_field_errors(key):
    errs = errors_of({**VALID, key: "x"})
    ((path, rule),) = errs.items()
    assert path.startswith("[")
    assert rule.startswith("field names must be strings")


def test_merge_record_refuses_keys_that_are_not_strings():
    with pytest.raises(AltaValidationError) as info:
        merge_record({"assistant_id": "a"}, {**LEAD, 7: "x", None: "y"})
    assert [str(e) for e in info.value.errors] == [
        "prospect[7]: keys must be strings, not int",
        "prospect[None]: keys must be strings, not NoneType",
    ]


def test_merge_record_reports_a_field_the_record_sets_twice():
    with pytest.raises(AltaValidationError) as info:
        merge_record({}, {**LEAD, "phoneNumber": "+12025550199"})
    assert [str(e) for e in info.value.errors] == [
        "prospect.phoneNumber: sets phone_number again (also set by prospect.phone_number)"
    ]
    with pytest.raises(AltaValidationError) as info:
        merge_record({}, {**LEAD, "mobile": "+12025550199"}, {"mobile": "phone_number"})
    assert "sets phone_number again" in str(info.value)


def test_merge_record_still_reports_fields_the_operator_sets():
    with pytest.raises(AltaValidationError) as info:
        merge_record({"assistant_id": "a"}, {**LEAD, "assistantId": "b"})
    assert [str(e) for e in info.value.errors] == [
        "prospect.assistantId: sets assistant_id, which the operator already sets"
    ]


def test_merge_record_refuses_a_field_map_target_that_is_not_a_name():
    with pytest.raises(AltaValidationError) as info:
        merge_record({}, {**LEAD, "plan": "pro"}, {"plan": 3})  # type: ignore[dict-item]
    assert [str(e) for e in info.value.errors] == ["field_map.plan: must name a payload field, not int"]


def test_merge_record_with_deep_data_then_build_call_reports_the_path():
    record = {**LEAD, "data": {"deep": nested(3000)}}
    with pytest.raises(AltaValidationError) as info:
        build_call(merge_record({"assistant_id": "a"}, record))
    assert [e.field.split(".x")[0] for e in info.value.errors] == ["data.deep"]


def test_a_missing_record_is_an_error_only_where_a_record_is_required():
    assert merge_record({"assistant_id": "a"}, None) == {"assistant_id": "a"}
    with pytest.raises(AltaValidationError) as info:
        merge_record({"assistant_id": "a"}, None, required=True)
    assert [str(e) for e in info.value.errors] == ["prospect: must be a dict (a record), not NoneType"]
