"""AltaCallSensor without a server: its settings, and what it does with a trigger's events."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout

from airflow_provider_alta.sensors.alta import AltaCallSensor


@pytest.fixture(autouse=True)
def unreachable_connection(monkeypatch):
    """A connection no request can reach: these tests must never send anything."""
    conn = {"conn_type": "alta", "password": "tok_unit_sensor_1", "host": "http://127.0.0.1:9/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))


def sensor(**kwargs) -> AltaCallSensor:
    return AltaCallSensor(task_id="wait", **{"call_id": "c-1", **kwargs})


def test_call_id_and_connection_are_templated():
    assert set(AltaCallSensor.template_fields) == {"call_id", "alta_conn_id"}


def test_defaults():
    task = sensor()
    assert task.poke_interval == 30
    assert task.deferrable is False  # [operators] default_deferrable is off by default
    assert sensor(deferrable=True, poke_interval=5).poke_interval == 5


@pytest.mark.parametrize("call_id", ["", "None/../calls", "+1 202 555 0143", None])
def test_an_unusable_call_id_fails_before_any_request(call_id):
    with pytest.raises(AirflowFailException, match="not a call id") as info:
        sensor(call_id=call_id).poke({})
    assert "555 0143" not in str(info.value)


def test_an_ended_event_returns_its_outcome():
    outcome = {"status": "ended", "ended": True, "id": "c-1", "duration": 12}
    assert sensor().execute_complete({}, {"status": "ended", "call_id": "c-1", "outcome": outcome}) == outcome


def test_a_timeout_event_is_a_sensor_timeout():
    with pytest.raises(AirflowSensorTimeout, match="c-1 had not ended"):
        sensor(timeout=60).execute_complete({}, {"status": "timeout", "call_id": "c-1", "outcome": None})


@pytest.mark.parametrize(
    "event",
    [
        {"status": "error", "call_id": "c-1", "error": "not_found", "message": "404 NotFound: no call"},
        {"status": "ended", "call_id": "c-1"},
        None,
        "ended",
    ],
)
def test_other_events_fail_the_sensor(event):
    with pytest.raises(AirflowFailException):
        sensor().execute_complete({}, event)
