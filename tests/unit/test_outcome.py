"""A call's id from Alta's answer, and its masked outcome from GET /calls/{id}."""

from __future__ import annotations

import json

import pytest

from airflow_provider_alta.outcome import (
    call_id_from,
    has_ended,
    masked_outcome,
    unavailable,
    valid_call_id,
)

CALL_ID = "5ea5fca6-a387-49fc-9d78-8eb4440e3c79"
ENDED = {
    "id": CALL_ID,
    "objectType": "call",
    "createdAt": "2026-12-02T10:48:28.838Z",
    "updatedAt": "2026-12-02T10:48:29.538Z",
    "startedAt": "2026-12-02T10:48:29.038Z",
    "endedAt": "2026-12-02T10:48:29.538Z",
    "from": "+12025550100",
    "to": "+12025550143",
    "callType": "outbound",
    "prospectId": "34e4ab94-1d80-57e6-9af3-745e232ab6f1",
    "duration": 42.5,
    "summary": "Ada (ada@example.com) asked for a follow-up on (202) 555-0143 next week.",
}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"id": CALL_ID, "status": "queued"}, CALL_ID),
        ({"callId": "call_123"}, "call_123"),
        ({"id": "", "callId": "call_123"}, "call_123"),
        ({"status": "queued"}, None),
        ({"id": 12345}, None),
        ({"id": "../../admin"}, None),
        ({"id": "a b"}, None),
        ({"id": "x" * 200}, None),
        ({"id": None}, None),
        ([CALL_ID], None),
        ("queued", None),
        (None, None),
    ],
)
def test_the_call_id_is_a_plain_token_from_id_or_callId(answer, expected):
    assert call_id_from(answer) == expected


def test_a_templated_call_id_is_checked():
    assert valid_call_id(f" {CALL_ID} ") == CALL_ID
    with pytest.raises(ValueError, match="not a call id"):
        valid_call_id("None/../x")
    with pytest.raises(ValueError, match="not a call id") as info:
        valid_call_id("+1 202 555 0143")
    assert "555 0143" not in str(info.value)


def test_ended_means_endedAt_is_there():
    assert has_ended(ENDED)
    assert not has_ended({**ENDED, "endedAt": None})
    assert not has_ended({k: v for k, v in ENDED.items() if k != "endedAt"})
    assert not has_ended("ended")


def test_the_outcome_keeps_known_fields_and_masks_personal_data():
    outcome = masked_outcome(ENDED, phone_e164="+12025550143", email="ada@example.com")
    assert outcome == {
        "status": "ended",
        "ended": True,
        "id": CALL_ID,
        "createdAt": "2026-12-02T10:48:28.838Z",
        "startedAt": "2026-12-02T10:48:29.038Z",
        "endedAt": "2026-12-02T10:48:29.538Z",
        "callType": "outbound",
        "prospectId": "34e4ab94-1d80-57e6-9af3-745e232ab6f1",
        "duration": 42.5,
        "summary": outcome["summary"],
        "to": "+1202***0143",
        "from": "+1202***0100",
    }
    text = json.dumps(outcome)
    assert "555-0143" not in text
    assert "ada@example.com" not in text
    assert "asked for a follow-up" in outcome["summary"]


def test_without_the_person_the_summary_is_still_masked():
    outcome = masked_outcome(ENDED)
    assert "555-0143" not in outcome["summary"]
    assert "ada@example.com" not in outcome["summary"]


def test_a_call_still_under_way_is_not_ended():
    outcome = masked_outcome({"id": CALL_ID, "createdAt": "2026-12-02T10:48:28.838Z", "to": "+12025550143"})
    assert outcome["status"] == "not_ended"
    assert outcome["ended"] is False
    assert "summary" not in outcome


def test_unknown_or_odd_fields_are_dropped():
    odd = {
        **ENDED,
        "transcript": "Ada: my number is +1 202 555 0143",
        "callType": "call me at +12025550143",
        "createdAt": "+12025550143",
        "prospectId": {"phone": "+12025550143"},
        "duration": True,
        "id": "../x",
    }
    outcome = masked_outcome(odd)
    assert "transcript" not in outcome
    assert "id" not in outcome
    assert "callType" not in outcome
    assert "createdAt" not in outcome
    assert "prospectId" not in outcome
    assert "duration" not in outcome
    assert "2025550143" not in json.dumps(outcome)


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), "42", None])
def test_a_duration_must_be_a_finite_number(duration):
    assert "duration" not in masked_outcome({**ENDED, "duration": duration})


def test_a_long_summary_is_cut():
    outcome = masked_outcome({**ENDED, "summary": "word " * 5000})
    assert len(outcome["summary"]) == 4000
    assert outcome["summary"].endswith("\u2026")


def test_an_unavailable_outcome_says_why():
    assert unavailable("no call id") == {"status": "unavailable", "ended": None, "reason": "no call id"}
