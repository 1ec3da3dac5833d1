from __future__ import annotations

import asyncio
import concurrent.futures
import datetime

import pytest

from airflow_provider_alta.triggers.alta import AltaCallOutcomeTrigger, ResumeAtTrigger

UTC = datetime.timezone.utc


def test_serialize_round_trip():
    moment = datetime.datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    path, kwargs = ResumeAtTrigger(moment, {"alta:abc": {"state": "called"}}).serialize()
    assert path == "airflow_provider_alta.triggers.alta.ResumeAtTrigger"
    again = ResumeAtTrigger(**kwargs)
    assert again.moment == moment
    assert again.progress == {"alta:abc": {"state": "called"}}


def test_fires_with_the_progress_once_the_moment_has_passed():
    moment = datetime.datetime.now(UTC) + datetime.timedelta(milliseconds=200)
    trigger = ResumeAtTrigger(moment, {"k": {"state": "called"}})

    async def first_event():
        return await trigger.run().__anext__()

    # A fresh thread: some suites (Playwright's sync API) leave an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        event = pool.submit(asyncio.run, first_event()).result(timeout=10)
    assert datetime.datetime.now(UTC) >= moment
    assert event.payload == {"moment": moment.isoformat(), "progress": {"k": {"state": "called"}}}


def test_naive_moments_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        ResumeAtTrigger(datetime.datetime(2026, 1, 1))


def test_outcome_trigger_serializes_ids_and_times_only():
    deadline = datetime.datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    trigger = AltaCallOutcomeTrigger("c-1", "alta_eu", poll_interval=15, deadline=deadline)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_alta.triggers.alta.AltaCallOutcomeTrigger"
    assert kwargs == {
        "call_id": "c-1",
        "alta_conn_id": "alta_eu",
        "poll_interval": 15.0,
        "deadline": "2026-11-24T14:00:00+00:00",
    }
    again = AltaCallOutcomeTrigger(**kwargs)
    assert (again.call_id, again.deadline, again.poll_interval) == ("c-1", deadline, 15.0)
    assert AltaCallOutcomeTrigger("c-1").serialize()[1]["deadline"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"deadline": datetime.datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_outcome_trigger_refuses_odd_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AltaCallOutcomeTrigger("c-1", **kwargs)
