"""BatchWaitTrigger: the batch's wait, with its count and resume time in the log, never silent."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging

import pytest

from airflow_provider_alta.triggers.alta import ResumeAtTrigger
from airflow_provider_alta.triggers.batch import BatchWaitTrigger

UTC = datetime.timezone.utc


def test_serialize_round_trip_holds_a_count_and_a_time_only():
    moment = datetime.datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    trigger = BatchWaitTrigger(
        moment, {"alta:abc": {"state": "called"}}, 12, "2026-11-24 08:00 America/New_York"
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_alta.triggers.batch.BatchWaitTrigger"
    assert kwargs == {
        "moment": moment.isoformat(),
        "progress": {"alta:abc": {"state": "called"}},
        "waiting": 12,
        "resumes": "2026-11-24 08:00 America/New_York",
        "log_every": 180.0,
    }
    again = BatchWaitTrigger(**kwargs)
    assert isinstance(again, ResumeAtTrigger)
    assert (again.moment, again.waiting, again.resumes) == (moment, 12, trigger.resumes)
    with pytest.raises(ValueError, match="log_every"):
        BatchWaitTrigger(moment, log_every=0)


def test_it_logs_when_it_starts_while_it_waits_and_when_it_fires(caplog, capsys):
    moment = datetime.datetime.now(UTC) + datetime.timedelta(seconds=1)
    trigger = BatchWaitTrigger(moment, {"k": {"state": "called"}}, 3, "soon", log_every=0.1)

    async def first_event():
        return await trigger.run().__anext__()

    with caplog.at_level(logging.INFO), concurrent.futures.ThreadPoolExecutor(1) as pool:
        event = pool.submit(asyncio.run, first_event()).result(timeout=30)
    assert event.payload == {
        "moment": moment.isoformat(),
        "progress": {"k": {"state": "called"}},
        "waiting": 3,
    }
    captured = capsys.readouterr()  # Airflow 3 logs a trigger's lines through structlog
    text = caplog.text + captured.out + captured.err
    messages = [line[line.index("Alta batch") :] for line in text.splitlines() if "Alta batch" in line]
    assert messages[0].startswith("Alta batch deferred: 3 record(s) waiting; resumes soon (in ")
    assert any(m.startswith("Alta batch still deferred: 3 record(s) waiting; resumes soon") for m in messages)
    assert messages[-1].startswith("Alta batch: resuming now (3 record(s) waiting)")
