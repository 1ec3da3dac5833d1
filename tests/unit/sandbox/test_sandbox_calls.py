"""GET /v1/calls/{callId} and the call lifecycle, driven by an injected clock (no HTTP)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_alta.sandbox.calls import (
    SANDBOX_FROM,
    SUMMARY_TEMPLATES,
    PlacedCall,
    prospect_id,
    summary_for,
)
from airflow_provider_alta.sandbox.core import SandboxState

JSON = "application/json"
ACME = "Bearer tok-a"
ACME_2 = "Bearer tok-b"
GLOBEX = "Bearer tok-g"
NUMBER = "+12025550143"
ARRIVAL = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock, **options: Any) -> SandboxState:
    options.setdefault("call_start_delay", 2.0)
    options.setdefault("call_duration", 30.0)
    return SandboxState(accounts={"acme": ["tok-a", "tok-b"], "globex": ["tok-g"]}, clock=clock, **options)


def place(state: SandboxState, authorization: str = ACME, **extra: Any) -> str:
    body = {"assistantId": "a", "name": "Ada Example", "phoneNumber": NUMBER, **extra}
    reply = state.handle_call(authorization, JSON, json.dumps(body).encode(), ARRIVAL)
    assert reply.status == 200
    assert reply.record is not None
    return str(reply.record["id"])


def get(state: SandboxState, call_id: str, authorization: str = ACME) -> tuple[int, dict[str, Any]]:
    reply = state.handle_get_call(authorization, call_id)
    return reply.status, reply.body


def test_a_call_is_queued_then_in_progress_then_ended() -> None:
    clock = FakeClock()
    state = make(clock)
    call_id = place(state, data={"sandbox_summary": "Asked for a follow-up call on Monday."})
    assert uuid.UUID(call_id).version == 4

    status, queued = get(state, call_id)
    assert status == 200
    assert queued == {
        "id": call_id,
        "objectType": "call",
        "createdAt": "2030-01-02T03:04:05.123Z",
        "updatedAt": "2030-01-02T03:04:05.123Z",
        "from": SANDBOX_FROM,
        "to": NUMBER,
        "callType": "outbound",
        "prospectId": prospect_id("acme", NUMBER),
    }
    assert [record["state"] for record in state.calls()] == ["queued"]

    clock.now += 2.0  # exactly the start delay
    _, started = get(state, call_id, ACME_2)  # any token of the account reads it
    assert started["startedAt"] == started["updatedAt"] == "2030-01-02T03:04:07.123Z"
    assert not {"endedAt", "duration", "summary"} & set(started)
    assert state.calls()[0]["state"] == "in_progress"

    clock.now += 29.999
    assert "endedAt" not in get(state, call_id)[1]
    clock.now += 0.001
    _, ended = get(state, call_id)
    assert ended["endedAt"] == ended["updatedAt"] == "2030-01-02T03:04:37.123Z"
    assert ended["duration"] == 30
    assert ended["summary"] == "Asked for a follow-up call on Monday."
    assert ended["startedAt"] == started["startedAt"]
    assert state.calls()[0]["state"] == "ended"
    clock.now += 1000
    assert get(state, call_id)[1] == ended  # nothing changes after the end


def test_delays_are_fixed_when_the_call_is_placed() -> None:
    clock = FakeClock()
    state = make(clock, call_start_delay=0, call_duration=0.25)
    call_id = place(state)
    state.configure(call_start_delay=60, call_duration=60)
    assert "startedAt" in get(state, call_id)[1]
    clock.now += 0.25
    _, ended = get(state, call_id)
    assert ended["duration"] == 0.25
    assert ended["endedAt"] == "2030-01-02T03:04:05.373Z"
    later = place(state)
    assert state.calls()[1]["id"] == later
    assert [record["state"] for record in state.calls()] == ["ended", "queued"]


@pytest.mark.parametrize(
    ("data", "duration"),
    [
        ({"sandbox_duration": 5}, 5),
        ({"sandbox_duration": 0}, 0),
        ({"sandbox_duration": 1.5}, 1.5),
        ({"sandbox_duration": "5"}, 30),  # not a number: ignored, the call is still accepted
        ({"sandbox_duration": True}, 30),
        ({"sandbox_duration": -1}, 30),
        ({"sandbox_duration": 10**9}, 30),
        ({}, 30),
    ],
)
def test_data_can_set_one_calls_duration(data: dict[str, Any], duration: float) -> None:
    clock = FakeClock()
    state = make(clock)
    call_id = place(state, data=data)
    clock.now += 2.0 + duration
    _, ended = get(state, call_id)
    assert ended["duration"] == duration
    clock.now -= 0.001
    assert "duration" not in get(state, call_id)[1]


def test_template_summaries_are_picked_by_the_call_id() -> None:
    ids = [str(uuid.UUID(int=n)) for n in range(200)]
    picked = {summary_for(call_id) for call_id in ids}
    assert picked == set(SUMMARY_TEMPLATES)  # every template is used
    assert all(summary_for(call_id) == summary_for(call_id) for call_id in ids)
    assert any("follow-up call next week" in template for template in SUMMARY_TEMPLATES)
    assert any("follow-up" not in template for template in SUMMARY_TEMPLATES)


def test_a_call_without_a_chosen_summary_gets_its_template() -> None:
    clock = FakeClock()
    state = make(clock, call_start_delay=0, call_duration=0)
    call_id = place(state, data={"sandbox_summary": 7})  # not a string: the template is used
    assert get(state, call_id)[1]["summary"] == summary_for(call_id)


def test_unknown_ids_and_other_accounts_calls_are_not_found() -> None:
    state = make(FakeClock())
    call_id = place(state)
    for authorization, target in [
        (GLOBEX, call_id),  # another account's call
        (ACME, str(uuid.uuid4())),
        (ACME, call_id.upper()),
        (ACME, "%2B12025550143"),
        (ACME, "+12025550143"),
        (ACME, ""),
    ]:
        status, body = get(state, target, authorization)
        assert status == 404
        assert body == {"error": "NotFound", "message": "Call not found"}  # never echoes the id
    assert get(state, call_id, "Bearer wrong") == (
        401,
        {"error": "Unauthorized", "message": "Invalid API token"},
    )
    assert state.stats()["gets"] == 7


def test_prospect_ids_are_stable_per_account_and_number() -> None:
    assert prospect_id("acme", NUMBER) == prospect_id("acme", NUMBER)
    assert prospect_id("acme", NUMBER) != prospect_id("globex", NUMBER)
    assert prospect_id("acme", NUMBER) != prospect_id("acme", "+12025550144")
    assert uuid.UUID(prospect_id("acme", NUMBER)).version == 5


@pytest.mark.parametrize(
    ("field", "expected"),
    [("id", {"id"}), ("callId", {"callId"}), ("none", set())],
)
def test_call_id_field(field: str, expected: set[str]) -> None:
    state = make(FakeClock(), call_id_field=field)
    body = {"assistantId": "a", "name": "n", "phoneNumber": NUMBER}
    reply = state.handle_call(ACME, JSON, json.dumps(body).encode())
    assert reply.status == 200
    assert reply.record is not None
    assert set(reply.body) == {"status", *expected}
    assert reply.body["status"] == "queued"
    for key in expected:
        assert reply.body[key] == reply.record["id"]


def test_reset_forgets_the_calls() -> None:
    state = make(FakeClock())
    call_id = place(state)
    assert get(state, call_id)[0] == 200
    state.reset()
    assert state.stats()["gets"] == 0
    assert state.calls() == []
    assert get(state, call_id)[0] == 404


def test_placed_call_to_api_without_a_sandbox() -> None:
    call = PlacedCall.from_body(
        "0b6f4a52-6c1e-4f57-9d0e-3c4a2b1d9e8f", "acme", {"phoneNumber": NUMBER}, ARRIVAL, 0.0, 1.0, 2.0
    )
    assert call.state(0.999) == "queued"
    assert call.state(1.0) == "in_progress"
    assert call.state(3.0) == "ended"
    ended = call.to_api(3.0)
    created = datetime.fromisoformat(ended["createdAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(ended["endedAt"].replace("Z", "+00:00"))
    assert finished - created == timedelta(seconds=3)
