"""BatchTriggerAssistantCallsOperator against the sandbox over real loopback HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_alta.operators import _common as common
from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
from alta_testing.data.campaign_checks import arrival_times
from alta_testing.data.campaign_checks import max_in_window as most_in_window

pytestmark = pytest.mark.integration

TOKEN = "sandbox-batch-token-7"


def leads(n: int, start: int = 100, **extra) -> list[dict]:
    return [
        {"lead": f"L{i}", "name": f"Lead {i}", "phone": f"+1202555{i:04d}", **extra}
        for i in range(start, start + n)
    ]


SANDBOX = {"rate_limit": "20/1", "retry_after_header": True}
CONNECTION_EXTRA = {"calls_per_minute": 1200}


def batch(prospects, **kwargs) -> BatchTriggerAssistantCallsOperator:
    options = {
        "task_id": "campaign",
        "prospects": prospects,
        "assistant_id": "asst_1",
        "field_map": {"lead": "data.lead_id", "phone": "phone_number"},
        "record_key": "lead",
        "calling_hours": False,
        **kwargs,
    }
    return BatchTriggerAssistantCallsOperator(**options)


def journaled(sandbox) -> Counter:
    return Counter(c["body"]["phoneNumber"] for c in sandbox.calls())


def max_in_window(sandbox, window: float) -> int:
    return most_in_window(arrival_times(sandbox.calls()), window)


def test_a_batch_calls_each_valid_unique_record_once_and_reports_the_rest(sandbox):
    records = [
        *leads(30),
        {"lead": "BAD1", "name": "", "phone": "+12025550199"},
        {"lead": "BAD2", "phone": "12"},
    ]
    records.append({"lead": "DUP", "name": "Again", "phone": "(202) 555-0100"})
    summary = batch(records, default_region="US").execute({})
    assert journaled(sandbox) == Counter({f"+1202555{i:04d}": 1 for i in range(100, 130)})
    assert summary["counts"] == {"called": 30, "invalid": 2, "skipped_duplicate": 1}
    assert summary["total"] == 33
    assert summary["outcomes"]["L100"] == {"state": "called", "phone_number": "+1202***0100"}
    assert summary["outcomes"]["BAD1"]["reason"] == "name: is required and must not be empty"
    assert summary["outcomes"]["DUP"]["reason"] == "same dedupe key as record L100"
    assert sandbox.calls()[0]["body"]["data"] == {"lead_id": "L100"}
    assert "2025550100" not in json.dumps(summary)


def test_pacing_keeps_every_rolling_window_under_the_limit(sandbox):
    summary = batch(leads(60)).execute({})
    assert summary["counts"] == {"called": 60}
    assert sandbox.stats()["responses"] == {"200": 60}  # not a single 429
    assert max_in_window(sandbox, 1.0) <= 20


def test_faults_never_cause_a_duplicate_and_every_record_is_accounted_for(sandbox):
    sandbox.configure(rate_limit="off")
    sandbox.set_faults(
        rates={"429": 0.2, "5xx": 0.1, "reset_after_accept": 0.1, "drop_before_body": 0.05},
        retry_after=0,
        seed=7,
    )
    records = leads(80)
    summary = batch(records, calls_per_minute=6000).execute({})
    counts = journaled(sandbox)
    assert all(n == 1 for n in counts.values())  # nobody called twice
    assert summary["total"] == len(records)
    states = {k: v["state"] for k, v in summary["outcomes"].items()}
    assert set(states.values()) <= {"called", "ambiguous"}
    called = {f"+1202555{int(k[1:]):04d}" for k, s in states.items() if s == "called"}
    assert called <= set(counts)  # every "called" record reached Alta
    assert sandbox.stats()["responses"].get("429", 0) > 0
    assert summary["counts"]["ambiguous"] > 0


def test_suppression_list_and_custom_dedupe(sandbox):
    summary = batch(leads(5), suppression={"(202) 555-0101", "+12025550103"}, default_region="US").execute({})
    assert summary["counts"] == {"called": 3, "skipped_suppressed": 2}
    assert set(journaled(sandbox)) == {"+12025550100", "+12025550102", "+12025550104"}


def test_a_suppressed_number_written_with_an_extension_still_blocks_the_number(sandbox):
    """A do-not-call entry from a CRM export may carry an extension: it still names the line."""
    summary = batch(leads(3), suppression={"+1 202-555-0101 ext. 12"}, default_region="US").execute({})
    assert summary["counts"] == {"called": 2, "skipped_suppressed": 1}
    assert set(journaled(sandbox)) == {"+12025550100", "+12025550102"}


def test_outside_the_window_defers_and_resumes_without_resending(sandbox, monkeypatch):
    now = pendulum.datetime(2026, 11, 24, 12, 0, tz="UTC")  # 07:00 in New York, 12:00 in London
    monkeypatch.setattr(common, "now_utc", lambda: now)
    records = [*leads(2, timezone="Europe/London"), *leads(2, start=200, timezone="America/New_York")]
    task = batch(records, calling_hours="08:00-21:00")
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    assert info.value.trigger.moment == pendulum.datetime(2026, 11, 24, 13, 0, tz="UTC")
    assert set(journaled(sandbox)) == {"+12025550100", "+12025550101"}
    monkeypatch.setattr(common, "now_utc", lambda: now.add(hours=1))
    summary = task.execute_complete({}, event=None, **info.value.kwargs)
    assert journaled(sandbox) == Counter(
        {n: 1 for n in ("+12025550100", "+12025550101", "+12025550200", "+12025550201")}
    )
    assert summary["counts"] == {"called": 4}
    assert summary["outcomes"]["L100"]["reason"] == "an earlier pass of this try"
    assert summary["sent"] == 4


def test_skip_mode_reports_records_outside_their_window(sandbox, monkeypatch):
    monkeypatch.setattr(common, "now_utc", lambda: pendulum.datetime(2026, 11, 24, 12, 0, tz="UTC"))
    records = [*leads(1, timezone="Europe/London"), *leads(1, start=200, timezone="America/New_York")]
    summary = batch(records, calling_hours="08:00-21:00", outside_calling_hours="skip").execute({})
    assert summary["counts"] == {"called": 1, "skipped_outside_hours": 1}
    assert "outside calling hours" in summary["outcomes"]["L200"]["reason"]


def test_a_long_rate_limit_defers_instead_of_holding_the_worker(sandbox):
    sandbox.configure(rate_limit="off")
    sandbox.set_faults(script=["ok", "429:120"])
    task = batch(leads(3), defer_threshold=1)
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    wait = (info.value.trigger.moment - pendulum.now("UTC")).total_seconds()
    assert 100 < wait <= 120
    summary = task.execute_complete({}, **info.value.kwargs)
    assert summary["counts"] == {"called": 3}
    assert journaled(sandbox) == Counter({f"+1202555{i:04d}": 1 for i in range(100, 103)})


def test_unreachable_alta_fails_for_a_retry_and_keeps_the_summary(monkeypatch):
    conn = {"conn_type": "alta", "password": TOKEN, "host": "http://127.0.0.1:9/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    pushed: dict = {}
    ti = SimpleNamespace(try_number=1, xcom_push=lambda key, value: pushed.update({key: value}))
    with pytest.raises(AirflowException, match="not reached") as info:
        batch(leads(3)).execute({"ti": ti})
    assert not isinstance(info.value, AirflowFailException)
    assert pushed["summary"]["counts"] == {"not_reached": 3}


def test_failure_thresholds(sandbox):
    records = [*leads(3), {"lead": "BAD", "phone": "x", "name": "N"}]
    with pytest.raises(AirflowFailException, match="max_failures=0"):
        batch(records, max_failures=0).execute({})
    assert batch(records, max_failure_ratio=0.5).execute({})["counts"]["invalid"] == 1


def test_without_a_state_store_a_retry_refuses_unless_allowed(sandbox):
    ti = SimpleNamespace(try_number=2, xcom_push=lambda **_: None)
    with pytest.raises(AirflowFailException, match="Refusing to re-run"):
        batch(leads(2)).execute({"ti": ti})
    assert sandbox.calls() == []
    assert batch(leads(2), allow_rerun_without_progress=True).execute({"ti": ti})["counts"] == {"called": 2}


def test_dry_run_streams_a_generator_and_sends_nothing(sandbox):
    summary = batch(lambda: iter(leads(50)), dry_run=True).execute({})
    assert summary["counts"] == {"dry_run": 50}
    assert sandbox.calls() == []


def test_a_one_shot_iterator_is_refused():
    with pytest.raises(TypeError, match="callable"):
        batch(iter(leads(2)))


def test_resuming_without_progress_and_without_a_store_refuses(sandbox):
    with pytest.raises(AirflowFailException, match="Refusing to resume"):
        batch(leads(2)).execute_complete({}, event={"moment": "x"})
    assert sandbox.calls() == []


def test_progress_also_rides_in_the_trigger_event(sandbox, monkeypatch):
    now = pendulum.datetime(2026, 11, 24, 12, 0, tz="UTC")
    monkeypatch.setattr(common, "now_utc", lambda: now)
    task = batch([*leads(1, timezone="Europe/London"), *leads(1, start=200, timezone="America/New_York")])
    task.calling_hours = "08:00-21:00"
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    monkeypatch.setattr(common, "now_utc", lambda: now.add(hours=1))
    _, trigger_kwargs = info.value.trigger.serialize()
    summary = task.execute_complete({}, event={"progress": trigger_kwargs["progress"]})
    assert summary["counts"] == {"called": 2}
    assert journaled(sandbox) == Counter({"+12025550100": 1, "+12025550200": 1})


class Store:
    """A task state store in memory: ``get``/``set``, shared by the tries of one test."""

    def __init__(self) -> None:
        self.data: dict = {}

    def get(self, key, default=None):
        return self.data.get(key, default)

    def set(self, key, value):
        self.data[key] = value


class TI:
    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict = {}

    def xcom_push(self, key, value, **_):
        self.xcom[key] = value


def when(condition, then) -> threading.Thread:
    """Run ``then`` on another thread as soon as ``condition()`` holds (give up after a minute)."""

    def watch():
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_on_kill_stops_the_batch_after_the_send_in_flight_and_a_retry_resumes(sandbox):
    sandbox.configure(rate_limit="off")
    sandbox.set_faults(rates={"latency": 1.0}, latency=0.2)
    records, store = leads(30), Store()
    task = batch(records, calls_per_minute=6000)
    when(lambda: len(sandbox.calls()) >= 4, task.on_kill)
    ti = TI()
    with pytest.raises(AirflowException, match="not reached") as info:
        task.execute({"ti": ti, "task_state_store": store})
    assert not isinstance(info.value, AirflowFailException)
    summary = ti.xcom["summary"]
    placed = journaled(sandbox)
    assert 4 <= len(placed) < len(records)
    assert max(placed.values()) == 1
    assert summary["total"] == len(records)
    assert summary["counts"] == {"called": len(placed), "not_reached": len(records) - len(placed)}
    assert summary["stopped"] == "asked to stop (on_kill)"

    resumed = batch(records, calls_per_minute=6000).execute({"ti": TI(2), "task_state_store": store})
    assert resumed["counts"] == {"called": len(records)}
    assert journaled(sandbox) == Counter({f"+1202555{i:04d}": 1 for i in range(100, 130)})


@pytest.mark.timeout(120)  # without the stop, the hook would wait the 429 out for ten minutes
def test_a_stop_ends_the_hooks_429_wait_and_that_record_is_not_reached(sandbox):
    sandbox.configure(rate_limit="off")
    sandbox.set_faults(script=["ok", "429:600"])  # the second call is told to wait ten minutes
    records, store = leads(3), Store()
    task = batch(records, defer_threshold=3600)  # waited inside the hook, not deferred
    when(lambda: sandbox.stats()["responses"].get("429", 0) >= 1, task.on_kill)
    ti = TI()
    with pytest.raises(AirflowException, match="not reached"):
        task.execute({"ti": ti, "task_state_store": store})
    outcomes = ti.xcom["summary"]["outcomes"]
    assert [outcomes[f"L{i}"]["state"] for i in (100, 101, 102)] == ["called", "not_reached", "not_reached"]
    assert outcomes["L101"]["reason"] == "asked to stop (on_kill) before it was sent"
    assert journaled(sandbox) == Counter({"+12025550100": 1})
    assert [v["state"] for v in store.data.values()] == ["called", "unsent"]  # a retry sends it


def test_with_clear_on_success_a_retry_after_a_failure_resumes_but_a_rerun_after_success_refuses(
    sandbox, state_store, monkeypatch
):
    """Airflow erases a succeeded task's records: a marker tells a retry (records kept) from a re-run."""
    monkeypatch.setenv("AIRFLOW__STATE_STORE__CLEAR_ON_SUCCESS", "True")

    def ti(n: int) -> SimpleNamespace:
        return SimpleNamespace(try_number=n, xcom_push=lambda **_: None)

    assert batch(leads(2)).execute({"ti": ti(1), "task_state_store": state_store})["counts"] == {"called": 2}
    # The records were kept (as after a failed try): the retry finds them and calls nobody again.
    again = batch(leads(2)).execute({"ti": ti(2), "task_state_store": state_store})
    assert again["counts"] == {"called": 2}
    assert again["sent"] == 0
    # After a success Airflow erased them (an empty store): the cleared re-run cannot know, and refuses.
    with pytest.raises(AirflowFailException, match="clear_on_success erased"):
        batch(leads(2)).execute({"ti": ti(3), "task_state_store": type(state_store)()})
    assert len(sandbox.calls()) == 2
