"""Every status of POST /v1/assistant/calls over real loopback HTTP, validated against the spec."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_alta.sandbox import AltaSandbox, token_fingerprint

pytestmark = pytest.mark.integration


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def raw_request(sandbox: AltaSandbox, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and read one answer (for requests ``requests`` cannot make)."""
    with socket.create_connection((sandbox.host, sandbox.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest


# --- 200 ---------------------------------------------------------------------------------------


def test_valid_call_is_accepted_and_journaled(sandbox, client, headers, body) -> None:
    response = client.post(sandbox.calls_url, json=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "queued"
    calls = sandbox.calls()
    assert [call["id"] for call in calls] == [answer["id"]]
    assert calls[0]["body"] == body


def test_full_body_with_unknown_keys_is_accepted_as_received(sandbox, client, headers, body) -> None:
    body.update(
        email="ada@example.com",
        timezone="Europe/London",
        data={"order": 42, "tags": ["a", "b"], "nested": {"ok": True}},
        callTransfer={
            "phoneNumber": "+442079460123",
            "description": "billing",
            "message": "One moment",
            "messageToReceiver": "Prospect on the line",
            "transferSummaryPrompt": "Summarise",
            "receiverMessageMode": "static",
            "showProspectPhoneOnTransfer": False,
        },
        futureField="kept",
    )
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
    assert sandbox.calls()[0]["body"] == body


def test_charset_parameter_is_fine(sandbox, client, headers, body) -> None:
    response = client.post(
        sandbox.calls_url,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


# --- 400 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"assistantId": None}, "assistantId"),
        ({"name": 5}, "name"),
        ({"phoneNumber": 12025550143}, "phoneNumber"),
        ({"data": "x"}, "data"),
        ({"callTransfer": {"phoneNumber": "1"}}, "callTransfer.phoneNumber: must be at least 2 characters"),
        ({"callTransfer": {}}, "callTransfer.phoneNumber: is required"),
        (
            {"callTransfer": {"phoneNumber": "+12025550199", "receiverMessageMode": "shout"}},
            "callTransfer.receiverMessageMode",
        ),
        (
            {"callTransfer": {"phoneNumber": "+12025550199", "showProspectPhoneOnTransfer": "no"}},
            "callTransfer.showProspectPhoneOnTransfer",
        ),
    ],
)
def test_schema_violation_names_the_field(sandbox, client, headers, body, patch, field) -> None:
    response = client.post(sandbox.calls_url, json={**body, **patch}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert field in response.json()["message"]
    assert sandbox.calls() == []


@pytest.mark.parametrize("missing", ["assistantId", "name", "phoneNumber"])
def test_missing_required_field(sandbox, client, headers, body, missing) -> None:
    del body[missing]
    response = client.post(sandbox.calls_url, json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["message"] == f"Invalid request body: {missing}: is required"


@pytest.mark.parametrize(
    ("data", "content_type", "fragment"),
    [
        (b'{"assistantId": ', "application/json", "malformed JSON"),
        (b"\xff\xfe", "application/json", "malformed JSON"),
        (b"", "application/json", "empty"),
        (b"[1, 2]", "application/json", "body: must be an object, got array"),
        (b'"text"', "application/json", "body: must be an object, got string"),
        (b"null", "application/json", "body: must be an object, got null"),
        (b'{"assistantId": "a"}', "text/plain", "Content-Type must be application/json"),
        (b"assistantId=a", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
    ],
)
def test_bad_bodies_get_400_and_the_server_keeps_running(
    sandbox, client, headers, body, data, content_type, fragment
) -> None:
    response = client.post(sandbox.calls_url, data=data, headers={**headers, "Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert fragment in response.json()["message"]
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


def test_missing_content_type_is_400(sandbox, client, headers, body) -> None:
    request = requests.Request("POST", sandbox.calls_url, data=json.dumps(body).encode(), headers=headers)
    prepared = client.prepare_request(request)
    prepared.headers.pop("Content-Type", None)
    response = client.send(prepared)
    assert response.status_code == 400
    assert "Content-Type" in response.json()["message"]


def test_oversized_body_gets_413_and_the_connection_stays_usable(tmp_path, client, headers, body) -> None:
    with AltaSandbox(token="integration-token", max_body_bytes=1024) as sandbox:
        big = {**body, "data": {"blob": "x" * 4096}}
        response = client.post(sandbox.calls_url, json=big, headers=headers)
        assert response.status_code == 413
        assert response.json()["error"] == "PayloadTooLarge"
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        assert len(sandbox.calls()) == 1


def test_invalid_content_length_is_400(sandbox, conformance, body) -> None:
    status, headers, payload = raw_request(
        sandbox,
        b"POST /v1/assistant/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer integration-token\r\n"
        b"Content-Type: application/json\r\nContent-Length: -5\r\n\r\n",
    )
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(payload)["error"] == "ValidationError"
    _check_raw(conformance, sandbox, status, headers, payload)


def test_chunked_body_is_refused_with_411(sandbox, client, headers, body) -> None:
    data = iter([json.dumps(body).encode()])  # a generator body makes requests send it chunked
    response = client.post(
        sandbox.calls_url, data=data, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 411
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"BREW /v1/assistant/calls HTTP/1.1", 405),  # any method token: 405, not http.server's 501
        (b"DELETE /v1/assistant/calls HTTP/1.1\r\nContent-Length: x", 405),
        (b"GET /v1/assistant/calls HTTP/9.9", 505),
    ],
)
def test_protocol_errors_get_json_and_the_server_keeps_running(
    sandbox, client, headers, body, head, expected
) -> None:
    status, _, payload = raw_request(sandbox, head + b"\r\nHost: x\r\n\r\n")
    assert status == expected
    assert set(json.loads(payload)) == {"error", "message"}
    assert sandbox.stats()["requests"] == (0 if expected == 505 else 1)  # 505: never reached a route
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


# --- 401 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth_headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic aW50ZWdyYXRpb24tdG9rZW4="},
        {"Authorization": "integration-token"},
    ],
)
def test_missing_or_wrong_token_is_401(sandbox, client, body, auth_headers) -> None:
    response = client.post(sandbox.calls_url, json=body, headers=auth_headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "message": "Invalid API token"}
    assert sandbox.calls() == []
    assert sandbox.stats()["window_used"] == 0


def test_401_comes_before_validation(sandbox, client) -> None:
    response = client.post(sandbox.calls_url, data=b"{", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401


# --- 404 / 405 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_get_405(sandbox, client, headers, method) -> None:
    response = client.request(method, sandbox.calls_url, headers=headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "MethodNotAllowed"


def test_head_gets_405_without_body(sandbox, client) -> None:
    response = client.head(sandbox.calls_url)
    assert response.status_code == 405
    assert response.content == b""


@pytest.mark.parametrize("path", ["/v2/assistant/calls", "/v1/assistant/calls/", "/assistant/calls", "/"])
def test_unknown_path_is_404(sandbox, client, headers, body, path) -> None:
    response = client.post(sandbox.base_url + path, json=body, headers=headers)
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


# --- 429 ---------------------------------------------------------------------------------------


def test_429_with_retry_after_then_allowed_after_that_wait(tmp_path, client, headers, body) -> None:
    with AltaSandbox(token="integration-token", rate_limit="3/2") as sandbox:
        for _ in range(3):
            assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        limited = client.post(sandbox.calls_url, json=body, headers=headers)
        assert limited.status_code == 429
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 2
        assert limited.json() == {
            "error": "TooManyRequests",
            "message": f"Rate limit exceeded. Please retry after {retry_after} seconds.",
        }
        assert len(sandbox.calls()) == 3
        time.sleep(retry_after)  # the server promised: after this wait the window has room
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        stats = sandbox.stats()
        assert stats["responses"] == {"200": 4, "429": 1}


def test_429_without_retry_after_header_names_the_wait(client, headers, body) -> None:
    with AltaSandbox(token="integration-token", rate_limit="1/60", retry_after_header=False) as sandbox:
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        limited = client.post(sandbox.calls_url, json=body, headers=headers)
        assert limited.status_code == 429
        assert "Retry-After" not in limited.headers
        assert limited.json()["message"] == "Rate limit exceeded. Please retry after 60 seconds."


def test_window_edge_with_injected_clock(client, headers, body) -> None:
    clock = FakeClock()
    with AltaSandbox(token="integration-token", rate_limit="100/60", clock=clock) as sandbox:
        for _ in range(100):
            assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        clock.now = 59.999
        edge = client.post(sandbox.calls_url, json=body, headers=headers)
        assert edge.status_code == 429
        assert edge.headers["Retry-After"] == "1"
        clock.now = 60.0
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        assert sandbox.stats()["window_used"] == 1


def test_limit_is_per_token(client, body) -> None:
    clock = FakeClock()
    with AltaSandbox(token=["token-a", "token-b"], rate_limit="2/60", clock=clock) as sandbox:
        for _ in range(2):
            assert client.post(sandbox.calls_url, json=body, headers={"Authorization": "Bearer token-a"}).ok
        assert (
            client.post(sandbox.calls_url, json=body, headers={"Authorization": "Bearer token-a"}).status_code
            == 429
        )
        assert client.post(sandbox.calls_url, json=body, headers={"Authorization": "Bearer token-b"}).ok
        window = sandbox.stats()["window"]
        assert window == {token_fingerprint("token-a"): 2, token_fingerprint("token-b"): 1}


def test_limit_off_and_runtime_configuration(client, headers, body) -> None:
    with AltaSandbox(token="integration-token", rate_limit=None) as sandbox:
        for _ in range(150):
            assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        answer = client.post(sandbox.base_url + "/_sandbox/config", json={"rate_limit": "1/60"}).json()
        assert answer == {**sandbox.configure(), "rate_limit": "1/60", "retry_after_header": True}
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 429
        sandbox.configure(retry_after_header=False)
        assert "Retry-After" not in client.post(sandbox.calls_url, json=body, headers=headers).headers
        bad = client.post(sandbox.base_url + "/_sandbox/config", json={"rate_limit": "soon"})
        assert bad.status_code == 400


def test_control_endpoints_need_no_token_and_do_not_count(client, headers, body) -> None:
    with AltaSandbox(token="integration-token", rate_limit="1/60") as sandbox:
        for _ in range(5):
            assert client.get(sandbox.base_url + "/_sandbox/stats").status_code == 200
            assert client.get(sandbox.base_url + "/_sandbox/health").json() == {"status": "ok"}
        assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
        assert sandbox.stats()["requests"] == 1
        assert client.get(sandbox.base_url + "/_sandbox/nothing").status_code == 404


# --- journal, stats, reset ------------------------------------------------------------------------


def test_journal_file_is_flushed_per_call_and_matches_calls(sandbox, client, headers, body, token) -> None:
    path = Path(str(sandbox.journal_path))
    sent = []
    for index in range(3):
        call = {**body, "name": f"Person {index} Zoë", "phoneNumber": f"+1202555014{index}"}
        sent.append(call)
        before = datetime.now(timezone.utc)
        answer = client.post(sandbox.calls_url, json=call, headers=headers).json()
        after = datetime.now(timezone.utc)
        assert before <= datetime.fromisoformat(sandbox.calls()[-1]["received_at"]) <= after
        lines = path.read_text("utf-8").splitlines()  # read while the server runs: already flushed
        assert len(lines) == index + 1
        assert json.loads(lines[-1])["id"] == answer["id"]
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    views = sandbox.calls()  # the records plus each call's state now
    assert [{k: v for k, v in view.items() if k != "state"} for view in views] == records
    assert [view["state"] for view in views] == ["queued"] * 3  # the default start delay is 2 s
    assert [record["body"] for record in records] == sent
    for record in records:
        assert set(record) == {"id", "received_at", "account", "token_fingerprint", "body"}
        assert record["token_fingerprint"] == record["account"] == token_fingerprint(token)
        assert record["received_at"].endswith("+00:00")
    assert token not in path.read_text("utf-8")
    over_http = client.get(sandbox.base_url + "/_sandbox/calls").json()
    assert over_http["count"] == 3
    assert [{k: v for k, v in view.items() if k != "state"} for view in over_http["calls"]] == records


def test_rejected_requests_are_not_journaled(sandbox, client, headers, body) -> None:
    client.post(sandbox.calls_url, json=body)
    client.post(sandbox.calls_url, json={**body, "name": 1}, headers=headers)
    assert sandbox.calls() == []
    assert Path(str(sandbox.journal_path)).read_text("utf-8") == ""


def test_stats_and_reset_over_http(sandbox, client, headers, body) -> None:
    client.post(sandbox.calls_url, json=body, headers=headers)
    client.post(sandbox.calls_url, json=body)
    client.post(sandbox.calls_url, data=b"{", headers={**headers, "Content-Type": "application/json"})
    stats = client.get(sandbox.base_url + "/_sandbox/stats").json()
    assert stats["requests"] == 3
    assert stats["accepted"] == 1
    assert stats["responses"] == {"200": 1, "400": 1, "401": 1}
    assert stats["window_used"] == 2  # the 400 used a slot; the 401 did not
    assert stats["rate_limit"] == {"limit": 100, "window_seconds": 60.0}
    assert stats["max_in_flight"] == 1
    assert stats == sandbox.stats()
    assert client.post(sandbox.base_url + "/_sandbox/reset").json() == {"reset": True}
    stats = sandbox.stats()
    assert (stats["requests"], stats["accepted"], stats["window_used"], stats["responses"]) == (0, 0, 0, {})
    assert sandbox.calls() == []
    assert Path(str(sandbox.journal_path)).read_text("utf-8") == ""
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
    assert len(Path(str(sandbox.journal_path)).read_text("utf-8").splitlines()) == 1


def test_max_in_flight_counts_concurrent_requests(sandbox, headers, body) -> None:
    workers = 4
    sandbox.set_faults(script=["latency:1.0"] * workers)
    barrier = threading.Barrier(workers)
    statuses: list[int] = []

    def call() -> None:
        barrier.wait()
        statuses.append(requests.post(sandbox.calls_url, json=body, headers=headers, timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * workers
    stats = sandbox.stats()
    assert stats["max_in_flight"] == workers
    assert stats["in_flight"] == 0
    assert stats["faults"]["latency"] == workers


def test_log_lines_mask_numbers_and_never_show_the_token(
    sandbox, client, headers, body, caplog, token
) -> None:
    body["callTransfer"] = {"phoneNumber": "+442079460123"}
    with caplog.at_level(logging.INFO, logger="airflow_provider_alta.sandbox"):
        client.post(sandbox.calls_url, json=body, headers=headers)
        client.post(sandbox.calls_url, json={**body, "name": 7}, headers=headers)
    lines = [
        record.getMessage() for record in caplog.records if record.name == "airflow_provider_alta.sandbox"
    ]
    assert len(lines) == 2
    assert "POST /v1/assistant/calls -> 200" in lines[0]
    assert "+1202***0143" in lines[0]
    assert "+4420***0123" in lines[0]
    assert "-> 400" in lines[1]
    text = "\n".join(lines)
    assert "+12025550143" not in text
    assert "+442079460123" not in text
    assert token not in text
    assert body["name"] not in text


def _check_raw(
    conformance: Any, sandbox: AltaSandbox, status: int, headers: dict[str, str], payload: bytes
) -> None:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response._content = payload
    response.request = requests.Request("POST", sandbox.calls_url).prepare()
    conformance.check(response)


# --- every method: 405 with Allow, never 501 -------------------------------------------------------


@pytest.mark.parametrize("method", [b"TRACE", b"CONNECT", b"PROPFIND", b"BREW", b"post"])
def test_any_other_method_on_the_endpoint_gets_405_with_allow(sandbox, client, headers, body, method) -> None:
    status, answer_headers, payload = raw_request(
        sandbox, method + b" /v1/assistant/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    )
    assert status == 405
    assert answer_headers["allow"] == "POST"
    assert json.loads(payload)["error"] == "MethodNotAllowed"
    assert sandbox.calls() == []
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("method", "name", "allow"),
    [
        ("DELETE", "faults", "GET, POST"),
        ("PUT", "config", "GET, POST"),
        ("GET", "reset", "POST"),
        ("POST", "calls", "GET"),
        ("TRACE", "stats", "GET"),
        ("BREW", "health", "GET"),
    ],
)
def test_controls_answer_other_methods_with_405_and_allow(sandbox, method, name, allow) -> None:
    request = f"{method} /_sandbox/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    status, answer_headers, payload = raw_request(sandbox, request)
    assert (status, answer_headers["allow"]) == (405, allow)
    assert json.loads(payload)["error"] == "MethodNotAllowed"


def test_unknown_control_is_still_404(sandbox) -> None:
    status, answer_headers, _ = raw_request(sandbox, b"TRACE /_sandbox/nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404
    assert "allow" not in answer_headers


# --- logs of unknown paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/v1/+12025550143",
        "/v1/assistant/calls/%2B12025550143",
        "/v1/lookup?to=%2B1%20202%20555%200143&email=ada.lovelace%40example.com",
        "/v1/lookup?to=+1+202+555+0143",
    ],
)
def test_unknown_paths_and_queries_are_logged_masked(sandbox, client, headers, caplog, target) -> None:
    with caplog.at_level(logging.DEBUG, logger="airflow_provider_alta.sandbox"):
        client.get(sandbox.base_url + target, headers=headers)
        client.request("TRACE", sandbox.base_url + target)
        raw_request(sandbox, f"BREW {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "-> 404" in text
    for secret in ("5550143", "555 0143", "555+0143", "lovelace", "2025550143"):
        assert secret not in text
    assert "***" in text


# --- non-finite fault settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"latency": Infinity}', "latency"),
        (b'{"latency": NaN}', "latency"),
        (b'{"retry_after": -Infinity}', "retry_after"),
        (b'{"retry_after": -1}', "retry_after"),
        (b'{"rates": {"429": NaN}}', "rates.429"),
        (b'{"script": ["latency:inf"]}', "latency"),
        (b'{"script": ["429:nan"]}', "429"),
    ],
)
def test_non_finite_fault_settings_are_refused_and_the_plan_stays_valid_json(
    sandbox, client, headers, body, raw, field
) -> None:
    response = client.post(
        sandbox.base_url + "/_sandbox/faults", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert field in response.json()["message"]
    plan = client.get(sandbox.base_url + "/_sandbox/faults")
    json.loads(plan.text, parse_constant=lambda name: pytest.fail(f"{name} in the fault plan"))
    assert plan.json()["script"] == []
    assert client.post(sandbox.calls_url, json=body, headers=headers).status_code == 200


@pytest.mark.parametrize("faults", [{"latency": float("inf")}, {"retry_after": float("nan")}])
def test_non_finite_fault_settings_are_refused_at_start(faults) -> None:
    with pytest.raises(ValueError, match="must be a finite number"):
        AltaSandbox(faults=faults)
