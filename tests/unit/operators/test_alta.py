from __future__ import annotations

import json
import logging

import pendulum
import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    TaskDeferred,
)
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.operators import _common as common
from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator
from airflow_provider_alta.operators.retry import decide_retry

BASE = {
    "assistant_id": "asst_1",
    "name": "Ada",
    "phone_number": "+12025550143",
    "timezone": "America/New_York",
}


@pytest.fixture(autouse=True)
def unreachable_connection(monkeypatch):
    """A connection no request can reach: these tests must never send anything."""
    conn = {"conn_type": "alta", "password": "tok_unit_op_1234", "host": "http://127.0.0.1:9/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))


def at(local: str, zone: str = "America/New_York"):
    return pendulum.parse(local, tz=zone).in_timezone("UTC")


@pytest.fixture
def clock(monkeypatch):
    def set_now(moment):
        monkeypatch.setattr(common, "now_utc", lambda: moment)

    return set_now


def op(**kwargs) -> TriggerAssistantCallOperator:
    return TriggerAssistantCallOperator(task_id="call", **{**BASE, **kwargs})


def test_template_fields_cover_payload_and_connection():
    fields = set(TriggerAssistantCallOperator.template_fields)
    assert {"assistant_id", "name", "phone_number", "email", "timezone", "data", "call_transfer"} <= fields
    assert "alta_conn_id" in fields
    assert TriggerAssistantCallOperator.template_fields_renderers["data"] == "json"
    assert TriggerAssistantCallOperator.template_fields_renderers["call_transfer"] == "json"


def test_base_operator_dry_run_method_is_not_shadowed():
    task = op(dry_run=True)
    assert callable(task.dry_run)
    assert task.is_dry_run is True


def test_unknown_outside_calling_hours_mode_is_refused_at_parse_time():
    with pytest.raises(ValueError, match="outside_calling_hours must be one of defer, skip, fail"):
        op(outside_calling_hours="later")


def test_validation_error_fails_without_retry_naming_the_fields():
    with pytest.raises(AirflowFailException) as info:
        op(phone_number="555", email="nope", calling_hours=False).execute({})
    assert "phone_number" in str(info.value)
    assert "email" in str(info.value)
    assert isinstance(info.value.__cause__, AltaValidationError)


def test_prospect_and_field_map(clock):
    clock(at("2026-11-24 10:00"))
    task = TriggerAssistantCallOperator(
        task_id="call",
        assistant_id="asst_1",
        data={"campaign": "q4"},
        prospect={
            "full_name": "Grace",
            "mobile": "(202) 555-0178",
            "plan": "pro",
            "timezone": "America/New_York",
        },
        field_map={"full_name": "name", "mobile": "phone_number", "plan": "data.plan"},
        default_region="US",
        dry_run=True,
    )
    assert task.build_call().to_json() == {
        "assistantId": "asst_1",
        "name": "Grace",
        "phoneNumber": "+12025550178",
        "timezone": "America/New_York",
        "data": {"campaign": "q4", "plan": "pro"},
    }


def test_prospect_cannot_override_operator_fields():
    task = TriggerAssistantCallOperator(
        task_id="c", assistant_id="a", prospect={"assistant_id": "b"}, dry_run=True
    )
    with pytest.raises(AirflowFailException, match=r"prospect.assistant_id: sets assistant_id"):
        task.build_call()


def test_unknown_record_column_is_rejected_not_dropped():
    task = TriggerAssistantCallOperator(
        task_id="c", assistant_id="a", prospect={"name": "N", "phone_number": "+12025550143", "company": "X"}
    )
    with pytest.raises(AirflowFailException, match="company: unknown field"):
        task.build_call()


def test_dry_run_places_nothing_and_logs_masked(clock, caplog, capsys):
    clock(at("2026-11-24 10:00"))
    caplog.set_level(logging.INFO)
    result = op(dry_run=True, email="ada@example.com").execute({})
    assert result == {"status": "dry_run", "assistant_id": "asst_1", "phone_number": "+1202***0143"}
    logged = caplog.text + capsys.readouterr().out  # Airflow 3 task loggers write to stdout
    assert "Dry run: payload is valid" in logged
    assert "+1202***0143" in logged
    assert "a***@example.com" in logged
    assert "2025550143" not in logged
    assert "ada@example.com" not in logged


def test_dry_run_needs_no_connection(monkeypatch, clock):
    clock(at("2026-11-24 10:00"))
    monkeypatch.delenv("AIRFLOW_CONN_ALTA_DEFAULT")
    assert op(dry_run=True).execute({})["status"] == "dry_run"


def test_dry_run_outside_hours_reports_the_window(clock):
    clock(at("2026-11-24 22:00"))
    result = op(dry_run=True).execute({})
    assert result["status"] == "dry_run"
    assert "outside calling hours" in result["window"]


def test_outside_hours_defers_until_the_window_opens(clock):
    clock(at("2026-11-24 06:30"))
    with pytest.raises(TaskDeferred) as info:
        op().execute({})
    assert info.value.method_name == "execute_complete"
    assert info.value.trigger.moment == at("2026-11-24 08:00")


def test_deferral_crosses_dst_correctly(clock):
    # 2026-11-01 is the US fall-back day: 21:30 EDT Saturday, the window opens 08:00 EST Sunday.
    clock(at("2026-10-31 21:30"))
    with pytest.raises(TaskDeferred) as info:
        op().execute({})
    assert info.value.trigger.moment == pendulum.datetime(2026, 11, 1, 13, 0, tz="UTC")


def test_outside_hours_skip_and_fail(clock):
    clock(at("2026-11-24 22:00"))
    with pytest.raises(AirflowSkipException, match="outside calling hours"):
        op(outside_calling_hours="skip").execute({})
    with pytest.raises(AirflowFailException, match="outside calling hours"):
        op(outside_calling_hours="fail").execute({})


def test_custom_weekday_window(clock):
    clock(at("2026-11-27 18:00"))  # a Friday, after 17:00
    with pytest.raises(TaskDeferred) as info:
        op(calling_hours="09:00-17:00 mon-fri").execute({})
    assert info.value.trigger.moment == at("2026-11-30 09:00")


def test_zones_from_the_number_when_timezone_is_missing(clock):
    clock(at("2026-11-24 06:00", "Europe/London"))
    with pytest.raises(TaskDeferred) as info:
        op(timezone=None, phone_number="+442079460123").execute({})
    assert info.value.trigger.moment == at("2026-11-24 08:00", "Europe/London")


def test_resume_checks_the_window_again(clock):
    clock(at("2026-11-24 07:59"))
    with pytest.raises(TaskDeferred):
        op().execute_complete({}, event=None)


def test_bad_calling_hours_fail_clearly():
    with pytest.raises(AirflowFailException, match=r"calling_hours"):
        op(calling_hours="late-night").execute({})


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (AltaAmbiguousOutcomeError("x"), "fail"),
        (AltaValidationError("x", status=400), "fail"),
        (AltaAuthenticationError("x", status=401), "fail"),
        (AltaRateLimitError("x", retry_after=42.0), "retry"),
        (AltaConnectionError("x"), "retry"),
    ],
)
def test_retry_decisions(exc, expected):
    action, delay, reason = decide_retry(exc)
    assert action == expected
    assert reason
    if isinstance(exc, AltaRateLimitError):
        assert delay == 42.0
    assert decide_retry(RuntimeError("other")) is None


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="retry_policy exists from Airflow 3.3")
def test_operator_carries_the_alta_retry_policy_on_3_3():
    from datetime import timedelta

    from airflow.providers.common.compat.sdk import RetryAction

    from airflow_provider_alta.operators.retry import AltaRetryPolicy

    task = op()
    assert isinstance(task.retry_policy, AltaRetryPolicy)
    assert task.retry_policy.evaluate(AltaAmbiguousOutcomeError("x"), 1, 3).action == RetryAction.FAIL
    decision = task.retry_policy.evaluate(AltaRateLimitError("x", retry_after=30), 1, 3)
    assert (decision.action, decision.retry_delay) == (RetryAction.RETRY, timedelta(seconds=30))
    assert task.retry_policy.evaluate(RuntimeError(), 1, 3).action == RetryAction.DEFAULT


# --- never twice and wait_for_outcome, without a server ----------------------------------------

PLACED = {"status": "placed", "assistant_id": "asst_1", "phone_number": "+1202***0143", "call_id": "c-1"}
OUTCOME = {"status": "ended", "ended": True, "id": "c-1", "duration": 30, "summary": "Booked a demo."}


def ti(try_number: int):
    import types

    return types.SimpleNamespace(try_number=try_number)


def test_outcome_settings_are_checked_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="outcome_poll_interval"):
        op(outcome_poll_interval=0)
    with pytest.raises(ValueError, match="outcome_timeout"):
        op(outcome_timeout=-1)
    with pytest.raises(ValueError, match="outcome_timeout"):
        op(outcome_timeout=float("inf"))
    assert op(outcome_timeout=90).outcome_timeout.total_seconds() == 90


def test_without_a_task_state_store_a_later_try_refuses_before_any_request():
    """Airflow < 3.3: try 2 cannot know whether try 1 placed the call (the connection is unreachable:
    a request would fail differently)."""
    with pytest.raises(AirflowFailException, match="Refusing to call: this is try 2"):
        op(calling_hours=False).execute({"ti": ti(2)})


def test_a_resumed_wait_returns_the_placed_result_with_the_outcome():
    event = {"status": "ended", "call_id": "c-1", "outcome": OUTCOME}
    result = op(wait_for_outcome=True).execute_outcome({}, event=event, placed=PLACED)
    assert result == {**PLACED, "outcome": OUTCOME}


def test_a_resumed_wait_that_timed_out_fails_for_airflow_to_retry():
    event = {"status": "timeout", "call_id": "c-1", "outcome": {"status": "not_ended", "ended": False}}
    with pytest.raises(AirflowException, match="Call c-1 was placed but had not ended after 0:10:00") as info:
        op(wait_for_outcome=True, outcome_timeout=600).execute_outcome({}, event=event, placed=PLACED)
    assert not isinstance(info.value, AirflowFailException)
    assert "never placed again" in str(info.value)


@pytest.mark.parametrize("error", ["not_found", "unauthorized", "failed"])
def test_a_resumed_wait_that_could_not_read_the_call_fails_without_retries(error):
    event = {"status": "error", "call_id": "c-1", "error": error, "message": "404 NotFound: no such call"}
    with pytest.raises(AirflowFailException, match=r"Could not read call c-1.*not placed again"):
        op(wait_for_outcome=True).execute_outcome({}, event=event, placed=PLACED)


@pytest.mark.parametrize("event", [None, {}, {"status": "ended"}, "ended"])
def test_a_resumed_wait_without_an_event_fails(event):
    with pytest.raises(AirflowException, match="without an event"):
        op(wait_for_outcome=True).execute_outcome({}, event=event, placed=PLACED)


# --- waiting for the calling window: never silent, stopped by SIGTERM ---------------------------


def test_the_wait_for_the_window_says_when_it_resumes_and_how_not_to_wait(clock, caplog, capsys):
    from airflow_provider_alta.triggers.calling_window import CallingWindowTrigger

    clock(at("2026-11-24 06:30"))
    caplog.set_level(logging.INFO)
    with pytest.raises(TaskDeferred) as info:
        op().execute({})
    trigger = info.value.trigger
    assert isinstance(trigger, CallingWindowTrigger)
    assert trigger.who == "+1202***0143"
    assert trigger.opens == "2026-11-24 08:00 America/New_York (2026-11-24 13:00 UTC)"
    logged = caplog.text + capsys.readouterr().out
    assert (
        "The call to +1202***0143 resumes 2026-11-24 08:00 America/New_York (2026-11-24 13:00 UTC), "
        'in 1 h 30 min (to call now, set calling_hours="off"; not to wait, set outside_calling_hours="skip")'
    ) in logged
    assert "2025550143" not in logged + json.dumps(trigger.serialize()[1])


def test_the_wait_names_the_record_key_when_given(clock):
    clock(at("2026-11-24 06:30"))
    with pytest.raises(TaskDeferred) as info:
        op(record_key="lead-0001").execute({})
    assert info.value.trigger.who == "lead-0001"


def test_sigterm_while_the_wait_runs_in_this_process_ends_it(clock):
    """Under `airflow dags test` the trigger runs in the task's process; Airflow 3's SIGTERM handler
    calls on_kill there (tests/integration/operators/test_alta_mapped_dags.py sends a real one)."""
    clock(at("2026-11-24 06:30"))
    task = op()
    task.on_kill()  # not waiting: nothing to stop
    with pytest.raises(TaskDeferred):
        task.execute({})
    with pytest.raises(SystemExit) as info:
        task.on_kill()
    assert info.value.code == 143
