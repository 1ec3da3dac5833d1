"""Every fault mode, observed from a real ``requests`` client, with what the journal says happened."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_alta.sandbox import AltaSandbox, FaultPlan

pytestmark = pytest.mark.integration


def test_drop_before_body_is_a_connection_error_and_nothing_is_placed(sandbox, client, headers, body) -> None:
    sandbox.set_faults(script=["drop_before_body"])
    with pytest.raises(requests.exceptions.ConnectionError):
        client.post(sandbox.calls_url, json=body, headers=headers, timeout=10)
    assert sandbox.calls() == []
    stats = sandbox.stats()
    assert stats["faults"]["drop_before_body"] == 1
    assert stats["responses"] == {}
    assert stats["window_used"] == 0  # never reached the limiter
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200  # next one is fine


def test_reset_after_accept_is_a_reset_but_the_call_was_placed(sandbox, client, headers, body) -> None:
    sandbox.set_faults(script=["reset_after_accept"])
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        client.post(sandbox.calls_url, json=body, headers=headers, timeout=10)
    assert isinstance(excinfo.value.__context__ or excinfo.value.args[0], Exception)
    assert "reset" in str(excinfo.value).lower() or "aborted" in str(excinfo.value).lower()
    calls = sandbox.calls()
    assert len(calls) == 1
    assert calls[0]["body"] == body
    assert sandbox.stats()["faults"]["reset_after_accept"] == 1
    assert sandbox.stats()["responses"] == {}


def test_reset_after_accept_on_an_invalid_call_places_nothing(sandbox, client, headers, body) -> None:
    sandbox.set_faults(script=["reset_after_accept"])
    with pytest.raises(requests.exceptions.ConnectionError):
        client.post(sandbox.calls_url, json={**body, "name": 1}, headers=headers, timeout=10)
    assert sandbox.calls() == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_answers_with_an_error_body_and_places_nothing(sandbox, client, headers, body, status) -> None:
    sandbox.set_faults(script=[f"5xx:{status}"])
    response = client.post(sandbox.calls_url, json=body, headers=headers)
    assert response.status_code == status
    assert set(response.json()) == {"error", "message"}
    assert sandbox.calls() == []
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200  # keep-alive intact


@pytest.mark.parametrize("header", [True, False])
def test_429_storm_in_both_styles(client, headers, body, header) -> None:
    with AltaSandbox(
        token="integration-token",
        retry_after_header=header,
        faults={"script": ["429", "429:30"]},
    ) as sandbox:
        first = client.post(sandbox.calls_url, json=body, headers=headers)
        second = client.post(sandbox.calls_url, json=body, headers=headers)
        assert [first.status_code, second.status_code] == [429, 429]
        assert first.json()["message"] == "Rate limit exceeded. Please retry after 1 seconds."
        assert second.json()["message"] == "Rate limit exceeded. Please retry after 30 seconds."
        if header:
            assert [first.headers["Retry-After"], second.headers["Retry-After"]] == ["1", "30"]
        else:
            assert "Retry-After" not in first.headers
        assert sandbox.calls() == []
        assert sandbox.stats()["window_used"] == 0  # a storm is not the token's own limit
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


def test_latency_delays_the_answer_of_a_placed_call(sandbox, client, headers, body) -> None:
    sandbox.set_faults(script=["latency:0.3"])
    response = client.post(sandbox.calls_url, json=body, headers=headers)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3
    assert len(sandbox.calls()) == 1


def test_latency_past_the_read_timeout_leaves_a_placed_call(sandbox, client, headers, body) -> None:
    sandbox.set_faults(script=["latency:5"])
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.post(sandbox.calls_url, json=body, headers=headers, timeout=(5, 0.2))
    assert len(sandbox.calls()) == 1  # journaled before the delay: an ambiguous outcome


def test_latency_on_a_rejected_call_still_rejects(sandbox, client, body) -> None:
    sandbox.set_faults(script=["latency:0.1"])
    assert client.post(sandbox.calls_url, json=body).status_code == 401


def test_script_over_http_then_falls_back_to_rates(sandbox, client, headers, body) -> None:
    plan = {"script": ["ok", "5xx:502", "429"], "rates": {"5xx": 1.0}, "seed": 1}
    answer = client.post(sandbox.base_url + "/_sandbox/faults", json=plan)
    assert answer.status_code == 200
    assert answer.json()["script"] == ["ok", "5xx:502", "429:1"]
    statuses = [client.post(sandbox.calls_url, json=body, headers=headers).status_code for _ in range(6)]
    assert statuses[:3] == [200, 502, 429]
    assert all(status in (500, 502, 503) for status in statuses[3:])
    assert client.get(sandbox.base_url + "/_sandbox/faults").json()["script"] == []
    assert client.post(sandbox.base_url + "/_sandbox/faults", json={}).json()["rates"] == {}
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


def test_bad_fault_plans_are_refused_over_http(sandbox, client) -> None:
    for plan in ({"script": ["explode"]}, {"rates": {"5xx": 2}}, {"nope": 1}):
        response = client.post(sandbox.base_url + "/_sandbox/faults", json=plan)
        assert response.status_code == 400
        assert response.json()["error"] == "ValidationError"
    response = client.post(sandbox.base_url + "/_sandbox/faults", data=b"[", headers={"Content-Type": "x"})
    assert response.status_code == 400


def test_seeded_rates_are_reproducible_end_to_end(client, headers, body) -> None:
    rates = {"5xx": 0.3, "429": 0.2, "latency": 0.1}
    outcomes = []
    for _ in range(2):
        with AltaSandbox(
            token="integration-token", rate_limit=None, faults=FaultPlan(rates, latency=0.01, seed=7)
        ) as sandbox:
            outcomes.append(
                [client.post(sandbox.calls_url, json=body, headers=headers).status_code for _ in range(60)]
            )
            stats = sandbox.stats()
            assert stats["accepted"] == outcomes[-1].count(200)
            assert stats["faults"]["latency"] > 0
    assert outcomes[0] == outcomes[1]
    assert {200, 429} <= set(outcomes[0])
    assert set(outcomes[0]) & {500, 502, 503}


def test_mixed_rates_every_outcome_is_accounted_for(client, headers, body) -> None:
    rates = {"drop_before_body": 0.2, "reset_after_accept": 0.2, "5xx": 0.2}
    with AltaSandbox(token="integration-token", rate_limit=None, faults=FaultPlan(rates, seed=3)) as sandbox:
        answered = errors = 0
        for _ in range(50):
            try:
                response = client.post(sandbox.calls_url, json=body, headers=headers, timeout=10)
            except requests.exceptions.ConnectionError:
                errors += 1
            else:
                answered += 1
                assert response.status_code in (200, 500, 502, 503)
        stats = sandbox.stats()
        faults = stats["faults"]
        assert errors == faults["drop_before_body"] + faults["reset_after_accept"]
        assert answered == faults["ok"] + faults["5xx"]
        assert stats["accepted"] == faults["ok"] + faults["reset_after_accept"]
        assert len(sandbox.calls()) == stats["accepted"]


def test_reset_restores_the_start_plan(client, headers, body) -> None:
    with AltaSandbox(token="integration-token", faults={"script": ["5xx:503"]}) as sandbox:
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 503
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        sandbox.reset()
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 503
