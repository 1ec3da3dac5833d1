"""wait_for_outcome over real HTTP: place, defer, poll GET /calls/{id} in the trigger, resume.

The sandbox's call lifecycle is compressed (a call starts and ends within a second or so).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
import uuid

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator
from airflow_provider_alta.send_record import progress_key
from airflow_provider_alta.triggers.alta import AltaCallOutcomeTrigger
from alta_testing.environment import alta_connection

pytestmark = pytest.mark.integration

TOKEN = "sandbox-outcome-token"
SANDBOX = {"rate_limit": None, "call_start_delay": 0.3, "call_duration": 0.4}
SUMMARY = "Ada (ada@example.com, +1 202 555 0143) asked for a follow-up call next week."
FIELDS = {
    "assistant_id": "asst_1",
    "name": "Ada",
    "phone_number": "+12025550143",
    "email": "ada@example.com",
    "calling_hours": False,
    "data": {"sandbox_summary": SUMMARY},
    "wait_for_outcome": True,
    "outcome_poll_interval": 0.1,
}
KEY = progress_key(("call", "asst_1", "+12025550143"))


def operator(**kwargs) -> TriggerAssistantCallOperator:
    return TriggerAssistantCallOperator(task_id="call", **{**FIELDS, **kwargs})


def first_event(trigger: AltaCallOutcomeTrigger) -> dict:
    """Run the trigger to its event, in a fresh thread (some suites leave an event loop in this one)."""

    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


class FakeClock:
    """The sandbox's clock, moved by hand: a call's life advances only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def defer(task: TriggerAssistantCallOperator, context: dict) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        task.execute(context)
    return info.value


def test_defers_polls_until_the_call_ends_and_returns_the_masked_outcome(sandbox, state_store, context):
    task = operator()
    ctx = context(state_store)
    deferred = defer(task, ctx)
    (call,) = sandbox.calls()
    # The call id is in the record before the wait, so a retry finds this call.
    record = state_store.get(KEY)
    assert record["state"] == "called"
    assert record["result"]["call_id"] == call["id"]
    assert "outcome" not in record["result"]
    path, kwargs = deferred.trigger.serialize()
    assert path == "airflow_provider_alta.triggers.alta.AltaCallOutcomeTrigger"
    assert kwargs["call_id"] == call["id"]
    assert deferred.method_name == "execute_outcome"

    event = first_event(deferred.trigger)
    assert event["status"] == "ended"

    result = task.execute_outcome(ctx, event=event, **deferred.kwargs)
    outcome = result["outcome"]
    assert result["status"] == "placed"
    assert result["call_id"] == outcome["id"] == call["id"]
    assert outcome["ended"] is True
    assert outcome["duration"] == pytest.approx(0.4)
    assert {"createdAt", "startedAt", "endedAt"} <= set(outcome)
    assert outcome["callType"] == "outbound"
    assert outcome["to"] == "+1202***0143"
    assert "follow-up call next week" in outcome["summary"]
    assert state_store.get(KEY)["result"] == result
    # No personal data in the trigger's kwargs, its event, the deferral kwargs, XCom or the store.
    for stored in (kwargs, event, deferred.kwargs, result, state_store.data):
        text = json.dumps(stored)
        assert "2025550143" not in text
        assert "555 0143" not in text
        assert "ada@example.com" not in text
    assert len(sandbox.calls()) == 1


def test_the_trigger_keeps_reading_while_the_call_has_not_ended(alta_sandbox_factory, monkeypatch, context):
    """On a hand-moved clock: the call stays queued until the test moves time past its end."""
    clock = FakeClock()
    held = alta_sandbox_factory(
        token=TOKEN, rate_limit=None, clock=clock, call_start_delay=10, call_duration=5
    )
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(held.url, TOKEN))
    task = operator()
    deferred = defer(task, context(None))

    async def run() -> dict:
        async for event in deferred.trigger.run():
            return event.payload
        raise AssertionError("no event")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(asyncio.run, run())
        wait_until(lambda: held.stats()["gets"] >= 3)
        assert not waiting.done()  # read three times, the call has not ended: still waiting
        clock.now = 16.0
        event = waiting.result(timeout=60)
    assert event["status"] == "ended"
    assert event["outcome"]["duration"] == 5
    assert len(held.calls()) == 1


def test_a_retry_after_the_outcome_returns_it_without_a_request(sandbox, state_store, context):
    task = operator()
    deferred = defer(task, context(state_store))
    event = first_event(deferred.trigger)
    result = task.execute_outcome(context(state_store), event=event, **deferred.kwargs)
    before = sandbox.stats()["requests"]
    assert operator().execute(context(state_store, try_number=2)) == result
    assert sandbox.stats()["requests"] == before


def test_a_timeout_fails_the_task_and_the_retry_waits_for_the_same_call(sandbox, state_store, context):
    sandbox.configure(call_duration=3600)
    task = operator(outcome_timeout=0.5)
    deferred = defer(task, context(state_store))
    event = first_event(deferred.trigger)
    assert event["status"] == "timeout"
    assert event["outcome"]["ended"] is False
    with pytest.raises(AirflowException, match="had not ended") as info:
        task.execute_outcome(context(state_store), event=event, **deferred.kwargs)
    assert not isinstance(info.value, AirflowFailException)  # Airflow's retries decide
    assert "never placed again" in str(info.value)
    retry = defer(operator(outcome_timeout=0.5), context(state_store, try_number=2))
    assert retry.trigger.call_id == deferred.trigger.call_id
    assert retry.trigger.deadline > deferred.trigger.deadline
    assert len(sandbox.calls()) == 1  # reconnected, never placed again


def test_without_a_call_id_the_call_succeeds_with_an_unavailable_outcome(
    sandbox, state_store, context, caplog, capsys
):
    sandbox.configure(call_id_field="none")
    caplog.set_level(logging.WARNING)
    result = operator().execute(context(state_store))  # no deferral: nothing to follow
    assert result["call_id"] is None
    assert result["outcome"]["status"] == "unavailable"
    assert "no call id" in result["outcome"]["reason"]
    assert "The call WAS placed" in caplog.text + capsys.readouterr().out
    assert operator().execute(context(state_store, try_number=2)) == result
    assert sandbox.stats()["requests"] == 1  # placed once, never read, never placed again


def test_a_call_id_named_callId_is_followed(sandbox, state_store, context):
    sandbox.configure(call_id_field="callId")
    task = operator()
    deferred = defer(task, context(state_store))
    event = first_event(deferred.trigger)
    result = task.execute_outcome(context(state_store), event=event, **deferred.kwargs)
    assert result["call_id"] == sandbox.calls()[0]["id"]
    assert result["outcome"]["status"] == "ended"


def test_a_call_alta_does_not_know_fails_clearly_without_a_new_call(sandbox, state_store, context):
    """The record names a call Alta answers 404 for: the task fails and places nothing."""
    missing = str(uuid.uuid4())
    placed = {"status": "placed", "assistant_id": "asst_1", "phone_number": "+1202***0143"}
    placed["call_id"] = missing
    state_store.set(KEY, {"state": "called", "by": "try 1", "result": placed})
    task = operator()
    deferred = defer(task, context(state_store, try_number=2))
    event = first_event(deferred.trigger)
    assert (event["status"], event["error"]) == ("error", "not_found")
    with pytest.raises(AirflowFailException, match=f"Could not read call {missing}.*not placed again"):
        task.execute_outcome(context(state_store, try_number=2), event=event, **deferred.kwargs)
    assert sandbox.calls() == []


def test_a_refused_token_while_waiting_fails_clearly(sandbox, state_store, context, monkeypatch):
    task = operator()
    deferred = defer(task, context(state_store))
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, "wrong-token"))
    event = first_event(deferred.trigger)
    assert (event["status"], event["error"]) == ("error", "unauthorized")
    with pytest.raises(AirflowFailException, match="not placed again"):
        task.execute_outcome(context(state_store), event=event, **deferred.kwargs)
    assert len(sandbox.calls()) == 1
    assert "wrong-token" not in json.dumps(event)


def test_without_a_store_the_call_id_rides_in_the_deferral(sandbox, context):
    """Airflow < 3.3: nothing durable; the deferral's kwargs and the event carry the call."""
    task = operator()
    deferred = defer(task, context(None))
    event = first_event(deferred.trigger)
    result = task.execute_outcome(context(None), event=event, **deferred.kwargs)
    assert result["response"]["status"] == "queued"
    assert result["outcome"]["status"] == "ended"
    # `dags test` keeps only the event: the result is rebuilt from it.
    rebuilt = operator().execute_outcome(context(None), event=event)
    assert rebuilt["call_id"] == result["call_id"]
    assert rebuilt["outcome"] == result["outcome"]
    assert len(sandbox.calls()) == 1
