"""Every fault mode, observed from a real ``requests`` client, with what the journal says happened."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

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


# --- interim, trickled and huge answers; a zero wait -----------------------------------------------
# Over raw sockets: ``requests`` would take an interim answer as final, and the spec checks of this
# directory would read a huge body whole.


def _send_call(sandbox: AltaSandbox, body: dict) -> socket.socket:
    payload = json.dumps(body).encode()
    sock = socket.create_connection((sandbox.host, sandbox.port), timeout=10)
    sock.sendall(
        b"POST /v1/assistant/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer integration-token\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    return sock


def _read_until(sock: socket.socket, done: Callable[[bytes], bool]) -> bytes:
    data = b""
    while not done(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize(
    ("fault", "interim"), [("interim", b"102 Processing"), ("interim:103", b"103 Early Hints")]
)
def test_interim_answer_then_the_final_one_and_the_call_is_placed(sandbox, body, fault, interim) -> None:
    sandbox.set_faults(script=[fault])
    with _send_call(sandbox, body) as sock:
        data = _read_until(sock, lambda data: data.count(b"\r\n\r\n") >= 2 and data.endswith(b"}"))
    first, _, final = data.partition(b"\r\n\r\n")
    assert first == b"HTTP/1.1 " + interim
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(final.partition(b"\r\n\r\n")[2])["status"] == "queued"
    assert len(sandbox.calls()) == 1
    assert sandbox.stats()["faults"]["interim"] == 1


def test_trickle_sends_the_whole_answer_one_byte_at_a_time(sandbox, body) -> None:
    sandbox.set_faults(script=["trickle:0.01"])
    with _send_call(sandbox, body) as sock:
        first = sock.recv(65536)
        rest = _read_until_closed(sock)
    assert first == b"H"  # one byte, then the next one 10 ms later
    assert (first + rest).startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads((first + rest).partition(b"\r\n\r\n")[2])["status"] == "queued"
    assert len(sandbox.calls()) == 1  # journaled before the first byte


def test_trickle_body_sends_the_head_at_once(sandbox, body) -> None:
    sandbox.set_faults(script=["trickle_body:0.01"])
    with _send_call(sandbox, body) as sock:
        data = _read_until(sock, lambda data: b"\r\n\r\n" in data)
        head, _, start = data.partition(b"\r\n\r\n")
        rest = _read_until_closed(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(start) <= 1
    assert json.loads(start + rest)["status"] == "queued"
    assert len(sandbox.calls()) == 1


def test_trickle_stops_when_the_client_leaves(sandbox, body) -> None:
    sandbox.set_faults(script=["trickle:0.05"])
    with _send_call(sandbox, body) as sock:
        assert sock.recv(1) == b"H"
    deadline = time.monotonic() + 30
    while sandbox.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.stats()["in_flight"] == 0
    assert len(sandbox.calls()) == 1


@pytest.mark.parametrize(("mib", "status"), [(0.5, 200), (2, 200)])
def test_huge_body_is_valid_json_of_the_size_asked_for(sandbox, body, mib, status) -> None:
    sandbox.set_faults(script=[f"huge_body:{mib}"])
    with _send_call(sandbox, body) as sock:
        data = _read_until_closed(sock, limit=8 << 20)
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert b"Content-Length: %d" % int(mib * 1024 * 1024) in head
    assert len(payload) == int(mib * 1024 * 1024)
    answer = json.loads(payload)
    assert answer["status"] == "queued"
    assert len(sandbox.calls()) == 1


def test_huge_body_keeps_the_status_of_a_rejected_call(sandbox, body) -> None:
    sandbox.set_faults(script=["huge_body:0.1"])
    with _send_call(sandbox, {**body, "name": 7}) as sock:
        data = _read_until_closed(sock)
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(payload)["error"] == "ValidationError"
    assert sandbox.calls() == []


def test_huge_body_stops_when_the_client_stops_reading(sandbox, body) -> None:
    sandbox.set_faults(script=["huge_body"])  # 50 MiB
    with _send_call(sandbox, body) as sock:
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    deadline = time.monotonic() + 30
    while sandbox.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.stats()["in_flight"] == 0
    assert len(sandbox.calls()) == 1


def test_429_with_a_zero_wait(client, headers, body) -> None:
    with AltaSandbox(token="integration-token", faults={"script": ["429:0"], "retry_after": 0}) as sandbox:
        response = client.post(sandbox.calls_url, json=body, headers=headers)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "0"
        assert response.json()["message"] == "Rate limit exceeded. Please retry after 0 seconds."
        assert sandbox.calls() == []
