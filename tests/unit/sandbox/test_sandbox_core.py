"""SandboxState: authentication, order of checks, stats and controls, without HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_alta.sandbox.core import SandboxState
from airflow_provider_alta.sandbox.faults import FaultPlan
from airflow_provider_alta.sandbox.journal import Journal, token_fingerprint
from airflow_provider_alta.sandbox.ratelimit import RateLimit

TOKEN = "unit-token"
AUTH = f"Bearer {TOKEN}"
JSON = "application/json"
BODY = json.dumps({"assistantId": "a", "name": "n", "phoneNumber": "+12025550143"}).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(**options: Any) -> SandboxState:
    options.setdefault("tokens", [TOKEN])
    return SandboxState(**options)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer {TOKEN}x",
        "Bearer ünï",
    ],
)
def test_unauthorized(authorization: str | None) -> None:
    reply = make().handle_call(authorization, JSON, BODY)
    assert reply.status == 401
    assert reply.body == {"error": "Unauthorized", "message": "Invalid API token"}


@pytest.mark.parametrize("authorization", [AUTH, f"bearer {TOKEN}", f"BEARER   {TOKEN} "])
def test_authorized(authorization: str) -> None:
    reply = make().handle_call(authorization, JSON, BODY)
    assert reply.status == 200
    assert reply.record is not None
    assert reply.body == {"id": reply.record["id"], "status": "queued"}
    assert reply.record["token_fingerprint"] == token_fingerprint(TOKEN)


def test_several_tokens() -> None:
    state = make(tokens=["one", "two"])
    assert state.handle_call("Bearer one", JSON, BODY).status == 200
    assert state.handle_call("Bearer two", JSON, BODY).status == 200
    assert state.handle_call("Bearer three", JSON, BODY).status == 401
    fingerprints = [record["token_fingerprint"] for record in state.journal.records()]
    assert fingerprints == [token_fingerprint("one"), token_fingerprint("two")]


def test_tokens_are_required() -> None:
    with pytest.raises(ValueError, match="token"):
        SandboxState(tokens=[])
    with pytest.raises(ValueError, match="token"):
        SandboxState(tokens=[""])


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
def test_wrong_content_type(content_type: str | None) -> None:
    reply = make().handle_call(AUTH, content_type, BODY)
    assert reply.status == 400
    assert reply.body["error"] == "ValidationError"
    assert "Content-Type" in reply.body["message"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_content_type_parameters_are_fine(content_type: str) -> None:
    assert make().handle_call(AUTH, content_type, BODY).status == 200


def test_order_auth_then_limit_then_validation() -> None:
    clock = FakeClock()
    state = make(rate_limit=RateLimit(2, 10.0), clock=clock)
    assert state.handle_call(AUTH, JSON, b"{").status == 400  # uses a slot
    assert state.handle_call(AUTH, JSON, BODY).status == 200
    assert state.handle_call("Bearer nope", JSON, BODY).status == 401  # auth first: no slot, no 429
    limited = state.handle_call(AUTH, JSON, b"{")
    assert limited.status == 429
    assert limited.headers == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "10",
        "RateLimit-Policy": "2;w=10",
        "Retry-After": "10",
    }
    assert limited.body == {
        "error": "TooManyRequests",
        "message": "Rate limit exceeded. Please retry after 10 seconds.",
    }
    clock.now = 10.0
    assert state.handle_call(AUTH, JSON, BODY).status == 200


def test_retry_after_header_switch() -> None:
    state = make(rate_limit=RateLimit(1, 60.0), retry_after_header=False, clock=FakeClock())
    state.handle_call(AUTH, JSON, BODY)
    limited = state.handle_call(AUTH, JSON, BODY)
    assert limited.status == 429
    assert "Retry-After" not in limited.headers
    assert limited.headers["RateLimit-Reset"] == "60"  # the other switch: still on
    assert limited.body["message"] == "Rate limit exceeded. Please retry after 60 seconds."
    state.configure(ratelimit_headers=False)
    assert state.handle_call(AUTH, JSON, BODY).headers == {}


def test_stats_and_reset() -> None:
    clock = FakeClock()
    state = make(rate_limit=RateLimit(5, 60.0), clock=clock, faults=FaultPlan(script=["5xx"]))
    state.request_started(True)
    state.request_started(True)
    assert state.stats()["in_flight"] == 2
    state.request_finished(True, 200)
    state.request_finished(True, None, "drop_before_body")
    state.request_started(False)
    state.request_finished(False, 404)
    state.handle_call(AUTH, JSON, BODY)
    stats = state.stats()
    assert stats["requests"] == 3
    assert stats["accepted"] == 1
    assert stats["responses"] == {"200": 1, "404": 1}
    assert stats["faults"]["drop_before_body"] == 1
    assert stats["faults"]["ok"] == 1
    assert stats["in_flight"] == 0
    assert stats["max_in_flight"] == 2
    assert stats["rate_limit"] == {"limit": 5, "window_seconds": 60.0}
    assert stats["window"] == {token_fingerprint(TOKEN): 1}
    assert stats["window_used"] == 1
    assert stats["token_fingerprint"] == token_fingerprint(TOKEN)
    assert TOKEN not in json.dumps(stats)
    assert state.faults.next().kind == "5xx"
    state.reset()
    stats = state.stats()
    assert [stats[key] for key in ("requests", "accepted", "max_in_flight", "window_used")] == [0, 0, 0, 0]
    assert stats["responses"] == {}
    assert state.faults.remaining_script == ["5xx:500"]  # back to the plan given at start


def test_configure() -> None:
    state = make()
    assert state.config() == {
        "rate_limit": "100/60",
        "retry_after_header": True,
        "ratelimit_headers": True,
        "call_id_field": "id",
        "call_start_delay": 2.0,
        "call_duration": 30.0,
    }
    assert state.configure(
        rate_limit="2/6",
        retry_after_header=False,
        ratelimit_headers=False,
        call_id_field="callId",
        call_start_delay=0,
        call_duration=0.5,
    ) == {
        "rate_limit": "2/6",
        "retry_after_header": False,
        "ratelimit_headers": False,
        "call_id_field": "callId",
        "call_start_delay": 0.0,
        "call_duration": 0.5,
    }
    assert state.configure(rate_limit=None)["rate_limit"] is None
    assert state.stats()["rate_limit"] is None
    with pytest.raises(ValueError, match="unknown settings"):
        state.configure(colour="red")
    with pytest.raises(ValueError, match="retry_after_header"):
        state.configure(retry_after_header="yes")
    with pytest.raises(ValueError, match="rate_limit"):
        state.configure(rate_limit=5)
    with pytest.raises(ValueError, match="invalid rate limit"):
        state.configure(rate_limit="fast")
    with pytest.raises(ValueError, match="call_id_field"):
        state.configure(call_id_field="call_id")
    with pytest.raises(ValueError, match="ratelimit_headers"):
        state.configure(ratelimit_headers=1)
    for bad in (-1, float("nan"), float("inf"), "soon", True, None, 86401):
        with pytest.raises(ValueError, match="call_duration"):
            state.configure(call_duration=bad)
    with pytest.raises(ValueError, match="call_start_delay"):
        state.configure(call_start_delay=-0.5, call_id_field="id")
    assert state.config()["call_id_field"] == "callId"  # a refused change changes nothing


def test_an_empty_file_journal_is_used(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")  # empty, so falsy: must still be the one used
    state = make(journal=journal)
    assert state.journal is journal
    state.handle_call(AUTH, JSON, BODY)
    journal.close()
    assert len((tmp_path / "j.jsonl").read_text("utf-8").splitlines()) == 1
