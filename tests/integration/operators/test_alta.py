"""TriggerAssistantCallOperator against the sandbox over real loopback HTTP."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_alta.exceptions import AltaAmbiguousOutcomeError
from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

pytestmark = pytest.mark.integration

TOKEN = "sandbox-op-token-42"
FIELDS = {
    "assistant_id": "asst_1",
    "name": "Ada",
    "phone_number": "+12025550143",
    "email": "ada@example.com",
    "calling_hours": False,
}


def run(**kwargs):
    return TriggerAssistantCallOperator(task_id="call", **{**FIELDS, **kwargs}).execute({})


def test_places_the_call_and_returns_a_masked_result(sandbox):
    result = run()
    (call,) = sandbox.calls()
    assert call["body"] == {
        "assistantId": "asst_1",
        "name": "Ada",
        "phoneNumber": "+12025550143",
        "email": "ada@example.com",
    }
    assert result["status"] == "placed"
    assert result["phone_number"] == "+1202***0143"
    assert result["response"]["status"] == "queued"
    assert "2025550143" not in json.dumps(result)


def test_raw_number_in_xcom_only_on_request(sandbox):
    assert run(include_phone_in_xcom=True)["phone_number"] == "+12025550143"


def test_wrong_token_fails_without_retry(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        json.dumps({"conn_type": "alta", "password": "wrong-token", "host": sandbox.url}),
    )
    with pytest.raises(AirflowFailException, match="Invalid API token"):
        run()
    assert sandbox.calls() == []


def test_ambiguous_outcome_fails_without_retry_and_is_sent_once(sandbox):
    sandbox.set_faults(script=["reset_after_accept"])
    with pytest.raises(AirflowFailException, match="may have been placed") as info:
        run()
    assert isinstance(info.value.__cause__, AltaAmbiguousOutcomeError)
    assert len(sandbox.calls()) == 1
    assert sandbox.stats()["requests"] == 1


@pytest.mark.parametrize("fault", ["drop_before_body", "5xx:503"])
def test_other_ambiguous_faults_are_never_resent(sandbox, fault):
    sandbox.set_faults(script=[fault])
    with pytest.raises(AirflowFailException, match="may have been placed"):
        run()
    assert sandbox.stats()["requests"] == 1


def test_429_storm_is_waited_out_inside_the_hook(sandbox):
    sandbox.set_faults(script=["429:1", "429:1"])
    result = run()
    assert result["status"] == "placed"
    assert len(sandbox.calls()) == 1
    assert sandbox.stats()["responses"] == {"200": 1, "429": 2}


def test_every_echo_of_the_person_in_the_answer_is_masked(httpserver, monkeypatch):
    """Alta's answer may echo the number in any rendering and the email in any case: XCom masks all."""
    echo = {
        "id": "call_123456789",
        "status": "queued",
        "customer": {"phone": "(202) 555-0143", "digits": "12025550143", "email": "ADA@EXAMPLE.COM"},
        "note": "calling +1 202 555 0143 now",
    }
    httpserver.expect_request("/v1/assistant/calls").respond_with_json(echo)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        json.dumps({"conn_type": "alta", "password": TOKEN, "host": httpserver.url_for("/v1")}),
    )
    result = run()
    text = json.dumps(result)
    assert "555-0143" not in text
    assert "5550143" not in text
    assert "555 0143" not in text
    assert "ada@example.com" not in text.lower()
    assert result["response"]["id"] == "call_123456789"


def test_rendered_fields_show_only_masked_personal_data():
    """After Airflow renders the fields, what it stores and shows is masked; the call uses the real data."""
    from airflow.providers.common.compat.sdk import DAG

    with DAG("pii_render", schedule=None) as dag:
        op = TriggerAssistantCallOperator(
            task_id="call",
            **{**FIELDS, "phone_number": "{{ params.phone }}"},
            data={"who": "{{ params.email }}"},
            default_region="US",
            params={"phone": "+12025550143", "email": "ada@example.com"},
        )
    context = {"params": {"phone": "+12025550143", "email": "ada@example.com"}, "dag": dag}
    op.render_template_fields(context)
    shown = json.dumps({field: getattr(op, field) for field in op.template_fields}, default=str)
    assert "2025550143" not in shown
    assert "ada@example.com" not in shown
    assert op.phone_number == "+1202***0143"
    call = op.build_call()
    assert call.phone_number == "+12025550143"
    assert call.data == {"who": "ada@example.com"}
    op.render_template_fields(context)  # rendered twice (e.g. after a deferral): still the real values
    assert op.build_call().phone_number == "+12025550143"
