from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging

import pytest

from airflow_provider_alta.triggers.calling_window import CallingWindowTrigger

UTC = datetime.timezone.utc
OPENS = "2026-11-24 08:00 America/New_York (2026-11-24 13:00 UTC)"


def test_serialize_round_trip_holds_no_full_number():
    moment = datetime.datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    path, kwargs = CallingWindowTrigger(moment, who="+1202***0143", opens=OPENS).serialize()
    assert path == "airflow_provider_alta.triggers.calling_window.CallingWindowTrigger"
    assert kwargs == {
        "moment": "2026-11-24T13:00:00+00:00",
        "who": "+1202***0143",
        "opens": OPENS,
        "log_every": 600.0,
    }
    again = CallingWindowTrigger(**kwargs)
    assert (again.moment, again.who, again.opens) == (moment, "+1202***0143", OPENS)


def test_without_a_description_the_moment_shows_in_utc():
    moment = datetime.datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert CallingWindowTrigger(moment).opens == "2026-11-24 13:00 UTC"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"moment": datetime.datetime(2026, 1, 1)}, "timezone-aware"),
        ({"moment": datetime.datetime(2026, 1, 1, tzinfo=UTC), "log_every": 0}, "log_every"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CallingWindowTrigger(**kwargs)


def test_logs_while_it_waits_then_fires_once_the_window_opens(caplog, capsys):
    caplog.set_level(logging.INFO)
    moment = datetime.datetime.now(UTC) + datetime.timedelta(milliseconds=400)
    trigger = CallingWindowTrigger(moment, who="lead-7", opens=OPENS, log_every=0.05)

    async def first_event():
        return await trigger.run().__anext__()

    # A fresh thread: some suites (Playwright's sync API) leave an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        event = pool.submit(asyncio.run, first_event()).result(timeout=30)
    assert datetime.datetime.now(UTC) >= moment
    assert event.payload == {"moment": moment.isoformat()}
    logged = caplog.text + capsys.readouterr().out  # Airflow 3 loggers may write to stdout
    assert f"Waiting for the calling window of lead-7: opens {OPENS}, in " in logged
    assert 'to call now, set calling_hours="off"; not to wait, set outside_calling_hours="skip"' in logged
    assert f"Still waiting for the calling window of lead-7: opens {OPENS}" in logged
    assert "The calling window of lead-7 is open: resuming the task" in logged
