"""AltaCallSensor against the sandbox over real loopback HTTP: poke and deferrable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import uuid

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_alta.sensors.alta import AltaCallSensor

pytestmark = pytest.mark.integration


def run_trigger(trigger) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def test_poke_is_false_until_the_call_ends_then_returns_the_masked_outcome(held_sandbox, place_call):
    call_id = place_call("Ada asked us to call back on +1 202 555 0143.")
    sensor = AltaCallSensor(task_id="wait", call_id=call_id, poke_interval=0.1, timeout=30)
    assert sensor.poke({}) is False  # queued
    held_sandbox.clock.now = 12.0
    assert sensor.poke({}) is False  # in progress
    held_sandbox.clock.now = 16.0
    done = sensor.poke({})
    assert isinstance(done, PokeReturnValue)
    outcome = done.xcom_value
    assert outcome["status"] == "ended"
    assert outcome["id"] == call_id
    assert outcome["duration"] == 5
    assert outcome["to"] == "+1202***0143"
    assert "call back on" in outcome["summary"]
    assert "2025550143" not in json.dumps(outcome)
    assert "555 0143" not in json.dumps(outcome)
    assert sensor.execute({}) == outcome  # poke mode returns it as XCom
    assert len(held_sandbox.calls()) == 1  # the sensor only reads


def test_deferrable_waits_in_the_trigger(held_sandbox, place_call):
    call_id = place_call()
    sensor = AltaCallSensor(task_id="wait", call_id=call_id, poke_interval=0.1, timeout=30, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})  # its first read finds the call queued
    deferred = info.value
    assert deferred.trigger.serialize()[1]["call_id"] == call_id
    held_sandbox.clock.now = 16.0
    outcome = sensor.execute_complete({}, event=run_trigger(deferred.trigger))
    assert outcome["status"] == "ended"
    assert outcome["summary"] == "The prospect booked a demo."


def test_deferrable_returns_at_once_when_the_call_has_already_ended(sandbox, place_call):
    sandbox.configure(call_start_delay=0, call_duration=0)
    call_id = place_call()
    outcome = AltaCallSensor(task_id="wait", call_id=call_id, deferrable=True).execute({})
    assert outcome["id"] == call_id


def test_a_call_that_does_not_exist_fails_the_sensor(sandbox):
    missing = str(uuid.uuid4())
    sensor = AltaCallSensor(task_id="wait", call_id=missing, poke_interval=0.1, timeout=5)
    with pytest.raises(AirflowFailException, match=f"Could not read call {missing}"):
        sensor.execute({})
    deferred_sensor = AltaCallSensor(task_id="wait", call_id=missing, deferrable=True)
    with pytest.raises(AirflowFailException, match="Could not read call"):
        deferred_sensor.execute({})  # its first read already fails


def test_the_trigger_reports_404_and_the_sensor_fails(sandbox):
    from airflow_provider_alta.triggers.alta import AltaCallOutcomeTrigger

    missing = str(uuid.uuid4())
    event = run_trigger(AltaCallOutcomeTrigger(missing, poll_interval=0.1))
    assert (event["status"], event["error"]) == ("error", "not_found")
    with pytest.raises(AirflowFailException, match="Could not read call"):
        AltaCallSensor(task_id="wait", call_id=missing).execute_complete({}, event=event)


def test_a_timeout_in_the_trigger_is_a_sensor_timeout(sandbox, place_call):
    sandbox.configure(call_duration=3600)
    call_id = place_call()
    sensor = AltaCallSensor(task_id="wait", call_id=call_id, poke_interval=0.1, timeout=0.5, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    event = run_trigger(info.value.trigger)
    assert event["status"] == "timeout"
    with pytest.raises(AirflowSensorTimeout, match="had not ended"):
        sensor.execute_complete({}, event=event)


def test_the_call_id_is_templated(sandbox, place_call):
    from airflow.providers.common.compat.sdk import DAG

    call_id = place_call()
    with DAG("alta_sensor_template", schedule=None) as dag:
        sensor = AltaCallSensor(task_id="wait", call_id="{{ params.call_id }}", poke_interval=0.1, timeout=30)
    sensor.render_template_fields({"params": {"call_id": call_id}, "dag": dag})
    assert sensor.execute({})["id"] == call_id
