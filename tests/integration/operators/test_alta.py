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


@pytest.fixture
def sandbox(alta_sandbox_factory, monkeypatch):
    sb = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT", json.dumps({"conn_type": "alta", "password": TOKEN, "host": sb.url})
    )
    return sb


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
