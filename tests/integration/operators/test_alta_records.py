"""Never twice on the single path: the operator's records in the task state store, over real HTTP.

Each test looks at the sandbox's journal and counters: a try that must not call sends no request.
"""

from __future__ import annotations

import json
import logging

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.exceptions import AltaRateLimitError
from airflow_provider_alta.operators import _state_store
from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator
from airflow_provider_alta.send_record import progress_key

pytestmark = pytest.mark.integration

TOKEN = "sandbox-records-token"
ADA = {"name": "Ada", "phone_number": "+12025550143", "email": "ada@example.com"}
GRACE = {"name": "Grace", "phone_number": "+12025550178"}
FIELDS = {"assistant_id": "asst_1", "calling_hours": False}


def operator(person=ADA, **kwargs) -> TriggerAssistantCallOperator:
    return TriggerAssistantCallOperator(task_id="call", **{**FIELDS, **person, **kwargs})


def key_of(phone: str, assistant: str = "asst_1") -> str:
    return progress_key(("call", assistant, phone))


def never_expire():
    if not AIRFLOW_V_3_3_PLUS:
        return None
    from airflow.sdk.execution_time.context import NEVER_EXPIRE

    return NEVER_EXPIRE


def test_sending_is_recorded_before_the_request_and_the_masked_result_after(sandbox, state_store, context):
    result = operator().execute(context(state_store))
    assert len(sandbox.calls()) == 1
    key = key_of("+12025550143")
    assert [(k, w["state"]) for k, w, _ in state_store.writes] == [(key, "sending"), (key, "called")]
    assert {retention for _, _, retention in state_store.writes} == {never_expire()}
    record = state_store.get(key)
    assert record["by"] == "try 1"
    assert record["result"] == result
    assert result["call_id"] == sandbox.calls()[0]["id"]
    stored = state_store.text()
    assert "2025550143" not in stored
    assert "ada@example.com" not in stored
    assert "2025550143" not in key


def test_a_later_try_that_finds_the_call_placed_returns_it_without_a_request(sandbox, state_store, context):
    first = operator().execute(context(state_store))
    again = operator().execute(context(state_store, try_number=2))
    assert again == first
    assert sandbox.stats()["requests"] == 1  # the second try sent nothing
    raw = operator(include_phone_in_xcom=True).execute(context(state_store, try_number=3))
    assert raw["phone_number"] == "+12025550143"  # shown as asked; the store keeps it masked
    assert "2025550143" not in state_store.text()


@pytest.mark.parametrize(
    "record",
    [
        {"state": "sending", "by": "try 1"},
        {"state": "ambiguous", "by": "try 1", "reason": "read timeout"},
        {"state": "mystery"},
        "not a record",
    ],
)
def test_a_record_that_says_it_may_have_been_placed_fails_without_a_request(
    sandbox, state_store, context, record
):
    state_store.set(key_of("+12025550143"), record)
    with pytest.raises(AirflowFailException, match="may have been placed"):
        operator().execute(context(state_store, try_number=2))
    assert sandbox.stats()["requests"] == 0


def test_an_ambiguous_send_is_recorded_and_its_retry_sends_nothing(sandbox, state_store, context):
    sandbox.set_faults(script=["5xx:503"])
    with pytest.raises(AirflowFailException, match="may have been placed"):
        operator().execute(context(state_store))
    assert state_store.get(key_of("+12025550143"))["state"] == "ambiguous"
    with pytest.raises(AirflowFailException, match="may have been placed"):
        operator().execute(context(state_store, try_number=2))
    assert sandbox.stats()["requests"] == 1


def test_a_send_that_placed_nothing_is_recorded_unsent_and_the_retry_sends(sandbox, state_store, context):
    sandbox.set_faults(script=["429:3600"])  # a wait longer than the hook's budget: nothing placed
    with pytest.raises(AltaRateLimitError):
        operator().execute(context(state_store))
    assert state_store.get(key_of("+12025550143"))["state"] == "unsent"
    assert sandbox.calls() == []
    result = operator().execute(context(state_store, try_number=2))
    assert result["status"] == "placed"
    assert len(sandbox.calls()) == 1


def test_a_rejected_record_placed_nothing_so_a_rerun_sends(sandbox, state_store, context):
    state_store.set(key_of("+12025550143"), {"state": "rejected", "by": "try 1", "reason": "400"})
    assert operator().execute(context(state_store, try_number=2))["status"] == "placed"
    assert len(sandbox.calls()) == 1


def test_records_are_per_person_so_a_reused_index_still_calls_the_new_person(sandbox, state_store, context):
    """Map index 3 called Ada; upstream data changed and index 3 is now Grace: she is called."""
    operator().execute(context(state_store))
    grace = operator(GRACE).execute(context(state_store, try_number=2))
    assert grace["status"] == "placed"
    assert sorted(c["body"]["phoneNumber"] for c in sandbox.calls()) == ["+12025550143", "+12025550178"]
    operator().execute(context(state_store, try_number=3))  # Ada again: her record answers
    operator(GRACE).execute(context(state_store, try_number=3))
    assert len(sandbox.calls()) == 2
    assert set(state_store.data) == {key_of("+12025550143"), key_of("+12025550178")}


def test_the_same_number_for_another_assistant_is_another_call(sandbox, state_store, context):
    operator().execute(context(state_store))
    operator(assistant_id="asst_2").execute(context(state_store, try_number=2))
    assert [c["body"]["assistantId"] for c in sandbox.calls()] == ["asst_1", "asst_2"]


def test_a_dry_run_never_touches_the_store(sandbox, context):
    class Untouchable:
        def get(self, *args, **kwargs):
            raise AssertionError("a dry run read the store")

        def set(self, *args, **kwargs):
            raise AssertionError("a dry run wrote the store")

    result = operator(dry_run=True).execute(context(Untouchable(), try_number=2))
    assert result["status"] == "dry_run"
    assert sandbox.stats()["requests"] == 0


def test_without_a_store_a_later_try_refuses_to_call(sandbox, context):
    """Airflow 2.11 to 3.2: no task state store, so try 2 cannot know what try 1 did."""
    with pytest.raises(AirflowFailException, match="Refusing to call: this is try 2") as info:
        operator().execute(context(None, try_number=2))
    assert "allow_rerun_without_progress=True" in str(info.value)
    assert sandbox.stats()["requests"] == 0
    assert operator().execute(context(None, try_number=1))["status"] == "placed"
    again = operator(allow_rerun_without_progress=True).execute(context(None, try_number=2))
    assert again["status"] == "placed"
    assert len(sandbox.calls()) == 2  # as asked: called twice


def test_clear_on_success_falls_back_to_refusing_unknown_reruns(
    sandbox, state_store, context, monkeypatch, caplog, capsys
):
    """Airflow erases a task's records when it succeeds: a later try without one cannot trust that."""
    monkeypatch.setenv("AIRFLOW__STATE_STORE__CLEAR_ON_SUCCESS", "True")
    monkeypatch.setattr(_state_store, "_warned_clear_on_success", False)
    caplog.set_level(logging.WARNING)
    with pytest.raises(AirflowFailException, match="clear_on_success erased"):
        operator().execute(context(state_store, try_number=2))
    assert sandbox.stats()["requests"] == 0
    # Airflow 3 task loggers write to stdout, Airflow 2's to logging (and stdout): once in each at most.
    warned = [
        caplog.text.count("clear_on_success is on"),
        capsys.readouterr().out.count("clear_on_success is on"),
    ]
    assert max(warned) == 1
    caplog.clear()
    # The records it does find still count: a placed call is never placed again.
    operator().execute(context(state_store, try_number=1))
    operator().execute(context(state_store, try_number=2))
    assert len(sandbox.calls()) == 1
    assert "clear_on_success is on" not in caplog.text + capsys.readouterr().out  # once per process


def test_a_store_that_fails_before_the_send_sends_nothing(sandbox, context):
    class Broken:
        def get(self, key, default=None):
            return default

        def set(self, key, value, *, retention=None):
            raise RuntimeError("state store unavailable")

    with pytest.raises(AirflowException, match="nothing was sent") as info:
        operator().execute(context(Broken()))
    assert not isinstance(info.value, AirflowFailException)  # Airflow may retry it
    assert sandbox.stats()["requests"] == 0


def test_the_record_is_written_through_a_durable_store_without_a_retention(sandbox, tmp_path, context):
    from alta_testing.state_store import SqliteStateStore

    store = SqliteStateStore(str(tmp_path / "state.sqlite"))
    first = operator().execute(context(store))
    again = operator().execute(context(SqliteStateStore(str(tmp_path / "state.sqlite")), try_number=2))
    assert again == first
    assert sandbox.stats()["requests"] == 1
    assert json.loads(json.dumps(store.get(key_of("+12025550143"))))["state"] == "called"


def test_the_record_key_is_in_the_result_the_store_and_a_later_tries_result(sandbox, state_store, context):
    placed = operator(record_key="lead-0001").execute(context(state_store))
    assert placed["record_key"] == "lead-0001"
    assert state_store.get(key_of("+12025550143"))["result"]["record_key"] == "lead-0001"
    # A later try finds the call placed: its result carries that try's record key, with no request.
    again = operator(record_key="lead-0001b").execute(context(state_store, try_number=2))
    assert again == {**placed, "record_key": "lead-0001b"}
    assert sandbox.stats()["requests"] == 1
