"""The batch's protective defaults, its key column, its ETA and its wait lines, against the sandbox."""

from __future__ import annotations

import logging
from collections import Counter

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_alta.operators import _common as common
from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
from airflow_provider_alta.triggers.batch import BatchWaitTrigger
from alta_testing.state_store import FakeTI

pytestmark = pytest.mark.integration

TOKEN = "sandbox-batch-defaults-token"


def leads(n: int, start: int = 100, **extra) -> list[dict]:
    return [
        {"lead_id": f"L{i}", "name": f"Lead {i}", "phone": f"+1202555{i:04d}", **extra}
        for i in range(start, start + n)
    ]


def batch(prospects, **kwargs) -> BatchTriggerAssistantCallsOperator:
    options = {
        "task_id": "campaign",
        "prospects": prospects,
        "assistant_id": "asst_1",
        "field_map": {"phone": "phone_number"},  # lead_id is not mapped: it only keys the outcomes
        "record_key": "lead_id",
        "calling_hours": False,
        **kwargs,
    }
    return BatchTriggerAssistantCallsOperator(**options)


@pytest.fixture
def logged(caplog, capsys):
    """Everything the task logged so far (Airflow 3 task loggers write through structlog to stdout)."""
    caplog.set_level(logging.INFO)

    def text() -> str:
        captured = capsys.readouterr()
        return caplog.text + captured.out + captured.err

    return text


def test_a_key_column_that_is_no_payload_field_keys_the_outcomes_and_is_not_sent(sandbox):
    summary = batch(leads(3)).execute({"ti": FakeTI(1)})
    assert summary["counts"] == {"called": 3}
    assert set(summary["outcomes"]) == {"L100", "L101", "L102"}
    bodies = [c["body"] for c in sandbox.calls()]
    assert all("lead_id" not in b and "leadId" not in b and "data" not in b for b in bodies)


def test_a_batch_whose_every_record_is_invalid_fails_and_names_the_first_problems(sandbox, logged):
    records = [{**lead, "company": "Acme"} for lead in leads(3)]  # an unmapped column: unknown field
    ti = FakeTI(1)
    with pytest.raises(AirflowFailException, match=r"every record tried failed \(3/3") as info:
        batch(records).execute({"ti": ti})
    assert "L100: invalid (company: unknown field" in str(info.value)
    assert ti.xcom["summary"]["counts"] == {"invalid": 3}  # accounted for, then failed
    assert sandbox.calls() == []
    text = logged()
    assert "Alta batch: first problems (record key: state (reason))" in text
    assert "L102: invalid (company: unknown field" in text
    assert "2025550100" not in text


def test_more_than_half_failed_fails_after_calling_the_valid_ones_and_none_disables_it(sandbox):
    records = [*leads(5), *({**lead, "phone": "12"} for lead in leads(7, start=200))]
    ti = FakeTI(1)
    with pytest.raises(AirflowFailException, match=r"7/12 records tried failed .*max_failure_ratio=0.5"):
        batch(records).execute({"ti": ti})
    assert ti.xcom["summary"]["counts"] == {"called": 5, "invalid": 7}
    assert len(sandbox.calls()) == 5
    summary = batch(leads(7, start=200), max_failure_ratio=None).execute({"ti": FakeTI(1)})
    assert summary["counts"] == {"called": 7}  # the second run: one call each, nothing failed


def test_skipped_records_are_not_failures(sandbox):
    records = leads(12)
    suppression = {lead["phone"] for lead in records[:10]}
    summary = batch(records, suppression=suppression).execute({"ti": FakeTI(1)})
    assert summary["counts"] == {"called": 2, "skipped_suppressed": 10}


def test_a_generator_with_total_and_a_list_show_the_total_and_an_eta(sandbox, logged):
    records = leads(6)
    batch(lambda: iter(records), total=6, progress_interval=0).execute({"ti": FakeTI(1)})
    lines = [line for line in logged().splitlines() if "calls/min" in line]
    assert any("/6 done" in line and "ETA" in line for line in lines), lines
    batch(leads(4, start=300), progress_interval=0).execute({"ti": FakeTI(1)})
    assert any("/4 done" in line for line in logged().splitlines())
    with pytest.raises(ValueError, match="total"):
        batch(records, total=-1)


def test_a_deferral_says_when_it_resumes_in_local_time_and_utc_how_many_wait_and_how_to_run_now(
    sandbox, monkeypatch, logged
):
    now = pendulum.datetime(2026, 11, 24, 12, 0, tz="UTC")  # 07:00 in New York, 12:00 in London
    monkeypatch.setattr(common, "now_utc", lambda: now)
    records = [*leads(1, timezone="Europe/London"), *leads(2, start=200, timezone="America/New_York")]
    task = batch(records, calling_hours="08:00-21:00")
    with pytest.raises(TaskDeferred) as info:
        task.execute({"ti": FakeTI(1)})
    trigger = info.value.trigger
    assert isinstance(trigger, BatchWaitTrigger)
    assert (trigger.waiting, trigger.resumes) == (2, "2026-11-24 08:00 America/New_York (13:00 UTC)")
    text = logged()
    assert (
        "2 record(s) wait for their calling window; the first opens 2026-11-24 08:00 America/New_York" in text
    )
    assert 'calling_hours="off"' in text
    assert 'outside_calling_hours="skip"' in text
    monkeypatch.setattr(common, "now_utc", lambda: now.add(hours=1))
    summary = task.execute_complete({"ti": FakeTI(1)}, event={"waiting": 2}, **info.value.kwargs)
    assert summary["counts"] == {"called": 3}
    assert "resuming after its wait (2 record(s) waited)" in logged()
    assert Counter(c["body"]["phoneNumber"] for c in sandbox.calls()) == Counter(
        {"+12025550100": 1, "+12025550200": 1, "+12025550201": 1}
    )


def test_on_kill_ends_a_wait_that_runs_in_this_process_after_a_deferral(sandbox, monkeypatch):
    """``airflow dags test`` runs the trigger in the task's process; Airflow 3's SIGTERM handler
    only calls ``on_kill``, which must end that wait (as Airflow 2's handler does)."""
    monkeypatch.setattr(common, "now_utc", lambda: pendulum.datetime(2026, 11, 24, 12, 0, tz="UTC"))
    task = batch(leads(1, timezone="America/New_York"), calling_hours="08:00-21:00")
    task.on_kill()  # harmless before it runs
    with pytest.raises(TaskDeferred):
        task.execute({"ti": FakeTI(1)})
    with pytest.raises(BaseException, match="stopped while deferred") as info:
        task.on_kill()
    assert type(info.value).__name__ == "AirflowTaskTerminated"
    assert not isinstance(info.value, Exception)  # not caught as a task failure: it ends the process
    task.on_kill()  # once only
