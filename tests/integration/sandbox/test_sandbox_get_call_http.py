"""GET /v1/calls/{callId} and the POST answer's id field over real loopback HTTP (checked against
get-call.yaml by the conformance fixture)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
import requests
from openapi_core.validation.response.exceptions import InvalidData

from airflow_provider_alta.sandbox import SANDBOX_FROM, SUMMARY_TEMPLATES, AltaSandbox

pytestmark = pytest.mark.integration

ACCOUNTS = {"acme": ["tok-a", "tok-b"], "globex": ["tok-g"]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def poll_until_ended(client: requests.Session, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every answer until the call has ended (states are observed, never timed)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if "endedAt" in seen[-1]:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"the call never ended: {seen[-1]}")


def test_a_call_runs_its_course_with_short_durations(client, body) -> None:
    with AltaSandbox(accounts=ACCOUNTS, call_start_delay=0.2, call_duration=0.3) as sandbox:
        body["data"] = {"sandbox_summary": "Ada asked for a follow-up call next week."}
        placed = client.post(sandbox.calls_url, json=body, headers=auth("tok-a"))
        call_id = placed.json()["id"]
        assert str(uuid.UUID(call_id)) == call_id
        seen = poll_until_ended(client, sandbox.call_url(call_id), auth("tok-b"))
        first, last = seen[0], seen[-1]
        assert {k: first[k] for k in ("id", "objectType", "from", "to", "callType")} == {
            "id": call_id,
            "objectType": "call",
            "from": SANDBOX_FROM,
            "to": body["phoneNumber"],
            "callType": "outbound",
        }
        assert last["summary"] == "Ada asked for a follow-up call next week."
        assert last["duration"] == 0.3
        assert (
            when(last["createdAt"])
            < when(last["startedAt"])
            < when(last["endedAt"])
            == when(last["updatedAt"])
        )
        assert last["prospectId"] == first["prospectId"]
        assert uuid.UUID(last["prospectId"])
        keys = [frozenset(answer) for answer in seen]
        assert keys == sorted(keys, key=len)  # fields only ever appear: queued, in progress, ended
        assert [call["state"] for call in sandbox.calls()] == ["ended"]


def test_lifecycle_with_an_injected_clock(client, body) -> None:
    clock = FakeClock()
    with AltaSandbox(accounts=ACCOUNTS, clock=clock) as sandbox:  # defaults: starts at 2 s, lasts 30 s
        call_id = client.post(sandbox.calls_url, json=body, headers=auth("tok-a")).json()["id"]
        url, states = sandbox.call_url(call_id), []
        for now in (0.0, 1.999, 2.0, 31.999, 32.0):
            clock.now = now
            answer = client.get(url, headers=auth("tok-a")).json()
            listed = client.get(sandbox.base_url + "/_sandbox/calls").json()["calls"][0]
            states.append((listed["state"], "startedAt" in answer, "endedAt" in answer))
        assert states == [
            ("queued", False, False),
            ("queued", False, False),
            ("in_progress", True, False),
            ("in_progress", True, False),
            ("ended", True, True),
        ]
        ended = client.get(url, headers=auth("tok-a")).json()
        assert ended["duration"] == 30
        assert ended["summary"] in SUMMARY_TEMPLATES


def test_sandbox_duration_in_data_overrides_one_call(client, body) -> None:
    clock = FakeClock()
    with AltaSandbox(accounts=ACCOUNTS, clock=clock, call_start_delay=0) as sandbox:
        short = client.post(
            sandbox.calls_url, json={**body, "data": {"sandbox_duration": 5}}, headers=auth("tok-a")
        ).json()["id"]
        default = client.post(sandbox.calls_url, json=body, headers=auth("tok-a")).json()["id"]
        clock.now = 5.0
        assert client.get(sandbox.call_url(short), headers=auth("tok-a")).json()["duration"] == 5
        assert "duration" not in client.get(sandbox.call_url(default), headers=auth("tok-a")).json()


def test_another_accounts_call_and_unknown_ids_are_404(client, body, caplog) -> None:
    with AltaSandbox(accounts=ACCOUNTS) as sandbox:
        call_id = client.post(sandbox.calls_url, json=body, headers=auth("tok-a")).json()["id"]
        assert client.get(sandbox.call_url(call_id), headers=auth("tok-b")).status_code == 200
        with caplog.at_level(logging.DEBUG, logger="airflow_provider_alta.sandbox"):
            answers = [
                client.get(sandbox.call_url(target), headers=auth(token))
                for token, target in [
                    ("tok-g", call_id),
                    ("tok-a", str(uuid.uuid4())),
                    ("tok-a", "%2B12025550143"),
                    ("tok-a", "+1%20202%20555%200143"),
                    ("tok-a", "ada.lovelace%40example.com"),
                ]
            ]
        for answer in answers:
            assert answer.status_code == 404
            assert answer.json() == {"error": "NotFound", "message": "Call not found"}
            assert "RateLimit-Remaining" in answer.headers
        text = "\n".join(record.getMessage() for record in caplog.records)
        for secret in ("5550143", "555 0143", "lovelace"):
            assert secret not in text
        assert "GET /v1/calls/" in text
        nested = client.get(sandbox.call_url(call_id) + "/summary", headers=auth("tok-a"))
        assert (nested.status_code, nested.json()["error"]) == (404, "NotFound")


def test_a_wrong_token_is_401(sandbox, client, body, headers) -> None:
    call_id = client.post(sandbox.calls_url, json=body, headers=headers).json()["id"]
    for wrong in ({}, auth("nope"), {"Authorization": "Basic abc"}):
        response = client.get(sandbox.call_url(call_id), headers=wrong)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "message": "Invalid API token"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
def test_other_methods_on_a_call_get_405_with_allow(sandbox, client, headers, body, method) -> None:
    call_id = client.post(sandbox.calls_url, json=body, headers=headers).json()["id"]
    response = client.request(method, sandbox.call_url(call_id), headers=headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.headers["RateLimit-Remaining"] == "98"  # counted: the token is valid
    anonymous = client.request(method, sandbox.call_url(call_id))
    assert anonymous.status_code == 405
    assert "RateLimit-Remaining" not in anonymous.headers


@pytest.mark.parametrize(("field", "keys"), [("id", {"id"}), ("callId", {"callId"}), ("none", set())])
def test_call_id_field_variants(client, body, field, keys) -> None:
    with AltaSandbox(token="integration-token", call_id_field=field) as sandbox:
        answer = client.post(sandbox.calls_url, json=body, headers=auth("integration-token")).json()
        assert set(answer) == {"status", *keys}
        assert all(answer[key] == sandbox.calls()[0]["id"] for key in keys)
        changed = client.post(sandbox.base_url + "/_sandbox/config", json={"call_id_field": "callId"})
        assert changed.json()["call_id_field"] == "callId"
        assert "callId" in client.post(sandbox.calls_url, json=body, headers=auth("integration-token")).json()
        bad = client.post(sandbox.base_url + "/_sandbox/config", json={"call_id_field": "call_id"})
        assert bad.status_code == 400


def test_config_shows_and_changes_the_call_settings(sandbox, client) -> None:
    config = client.get(sandbox.base_url + "/_sandbox/config").json()
    assert config == {
        "rate_limit": "100/60",
        "retry_after_header": True,
        "ratelimit_headers": True,
        "call_id_field": "id",
        "call_start_delay": 2.0,
        "call_duration": 30.0,
    }
    changed = client.post(
        sandbox.base_url + "/_sandbox/config", json={"call_start_delay": 0, "call_duration": 1}
    )
    assert (changed.json()["call_start_delay"], changed.json()["call_duration"]) == (0.0, 1.0)
    for bad in ({"call_duration": -1}, {"call_start_delay": "soon"}, {"call_duration": None}):
        assert client.post(sandbox.base_url + "/_sandbox/config", json=bad).status_code == 400


def test_the_get_validator_is_not_vacuous(sandbox, client, conformance, headers, body) -> None:
    call_id = client.post(sandbox.calls_url, json=body, headers=headers).json()["id"]
    response = client.get(sandbox.call_url(call_id), headers=headers)
    assert response.status_code == 200
    response._content = response.content.replace(b'"outbound"', b'"carrier-pigeon"')
    with pytest.raises(InvalidData):
        conformance.check(response)
