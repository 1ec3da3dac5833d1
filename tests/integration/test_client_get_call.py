"""Reading a call back (``GET /v1/calls/{id}``) over real loopback HTTP: answers, and the safe retries."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from airflow_provider_alta.client import AltaClient, ResendPolicy
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.exceptions import (
    AltaAPIError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaNotFoundError,
    AltaRateLimitError,
    AltaReadError,
    AltaValidationError,
)
from airflow_provider_alta.rate_budget import HeaderBudget
from alta_testing.servers.loopback import answer, read_request, reset
from alta_testing.servers.ports import free_port

pytestmark = pytest.mark.integration

TOKEN = "tok_read_Gc72_secret"
CALL_ID = "0b7c1f9e-2d3a-4c5b-8e6f-7a8b9c0d1e2f"
PATH = f"/v1/calls/{CALL_ID}"
THE_CALL = {
    "id": CALL_ID,
    "objectType": "call",
    "createdAt": "2025-01-02T15:04:05Z",
    "updatedAt": "2025-01-02T15:09:05Z",
    "from": "+12025550100",
    "to": "+12025550143",
    "callType": "outbound",
    "duration": 300,
    "summary": "Spoke with Ada.",
}


class Sleeps(list[float]):
    """Records requested waits and sleeps a token amount, so tests stay fast."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.01))


def client_for(url: str, *, sleeps: Sleeps | None = None, timeout=(2.0, 5.0), **policy) -> AltaClient:
    settings = AltaSettings(base_url=url, token=TOKEN, timeout=timeout)
    return AltaClient(
        settings,
        retry=ResendPolicy(**policy),
        sleep=Sleeps() if sleeps is None else sleeps,
        budget=HeaderBudget(),
    )


def reads(httpserver: HTTPServer) -> list[Request]:
    return [req for req, _ in httpserver.log if req.path.startswith("/v1/calls/")]


@pytest.fixture
def url(httpserver: HTTPServer) -> str:
    return httpserver.url_for("/v1")


def test_a_read_returns_altas_json_unmasked_with_the_bearer_token(httpserver: HTTPServer, url: str):
    httpserver.expect_oneshot_request(PATH, method="GET").respond_with_json(THE_CALL)
    assert client_for(url).get_call(CALL_ID) == THE_CALL  # callers mask what they keep
    (req,) = reads(httpserver)
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.get_data() == b""


@pytest.mark.parametrize(
    ("call_id", "raw_path"),
    [("a/b", b"/v1/calls/a%2Fb"), ("../assistant/calls", b"/v1/calls/..%2Fassistant%2Fcalls"),
     ("x?y#z", b"/v1/calls/x%3Fy%23z"), ("id with space", b"/v1/calls/id%20with%20space")],
)  # fmt: skip
def test_the_id_is_one_quoted_path_segment(raw_server, call_id, raw_path):
    seen: list[bytes] = []

    def behaviour(conn: socket.socket) -> None:
        seen.append(read_request(conn).split(b"\r\n", 1)[0])
        conn.sendall(answer(b"HTTP/1.1 200 OK", b'{"id":"x"}'))

    assert client_for(raw_server(behaviour).url).get_call(call_id) == {"id": "x"}
    assert seen == [b"GET " + raw_path + b" HTTP/1.1"]


@pytest.mark.parametrize("call_id", ["", "a\nb", "x" * 201, ".", ".."])
def test_an_unusable_id_sends_nothing(httpserver: HTTPServer, url: str, call_id):
    with pytest.raises(AltaValidationError, match="call_id"):
        client_for(url).get_call(call_id)
    assert reads(httpserver) == []


@pytest.mark.parametrize(
    ("status", "exc"),
    [(401, AltaAuthenticationError), (404, AltaNotFoundError), (400, AltaAPIError), (403, AltaAPIError),
     (410, AltaAPIError)],
)  # fmt: skip
def test_client_errors_are_not_retried(httpserver: HTTPServer, url: str, status, exc):
    httpserver.expect_request(PATH).respond_with_json(
        {"error": "E", "message": f"said {status}"}, status=status
    )
    sleeps = Sleeps()
    with pytest.raises(exc) as info:
        client_for(url, sleeps=sleeps).get_call(CALL_ID)
    assert type(info.value) is exc
    assert (info.value.status, info.value.error) == (status, "E")
    assert f"said {status}" in info.value.message
    assert len(reads(httpserver)) == 1
    assert sleeps == []


def test_a_404_fails_the_task(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_json(
        {"error": "NotFound", "message": "No such call"}, status=404
    )
    with pytest.raises(AltaNotFoundError) as info:
        client_for(url).get_call(CALL_ID)
    assert info.value.fails_task
    assert not info.value.task_retry


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_read_again_and_the_next_answer_wins(httpserver: HTTPServer, url: str, status):
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": "Busy", "message": "x"}, status=status
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(THE_CALL)
    sleeps = Sleeps()
    assert client_for(url, sleeps=sleeps, backoff_base=0.2).get_call(CALL_ID) == THE_CALL
    assert len(reads(httpserver)) == 2
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.2  # backoff with full jitter


def test_5xx_every_time_is_a_read_error_after_a_bounded_number_of_tries(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_data("<html>bad gateway</html>", status=502)
    sleeps = Sleeps()
    with pytest.raises(AltaReadError, match="502") as info:
        client_for(url, sleeps=sleeps, read_retries=2).get_call(CALL_ID)
    assert len(reads(httpserver)) == 3
    assert len(sleeps) == 2
    assert info.value.task_retry
    assert info.value.placed is False


def test_a_429_is_waited_out_and_read_again(httpserver: HTTPServer, url: str):
    limited = Response(
        json.dumps({"error": "TooManyRequests", "message": "Rate limit exceeded."}),
        status=429,
        headers={"Retry-After": "4"},
        content_type="application/json",
    )
    httpserver.expect_ordered_request(PATH).respond_with_response(limited)
    httpserver.expect_ordered_request(PATH).respond_with_json(THE_CALL)
    sleeps = Sleeps()
    assert client_for(url, sleeps=sleeps).get_call(CALL_ID) == THE_CALL
    assert sleeps == [4.0]


def test_429s_past_the_wait_budget_raise(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_json(
        {"error": "TooManyRequests", "message": "x"}, status=429
    )
    with pytest.raises(AltaRateLimitError, match="Nothing was changed") as info:
        client_for(url, rate_limit_budget=0).get_call(CALL_ID)
    assert info.value.retry_after == 60.0
    assert len(reads(httpserver)) == 1


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (Response(b"[1, 2]", status=200, content_type="application/json"), "not a JSON object"),
        (Response(b'"a string"', status=200, content_type="application/json"), "not a JSON object"),
        (Response(b"<html>ok</html>", status=200, content_type="text/html"), "not a JSON object"),
        (Response(b"", status=200), "not a JSON object"),
    ],
)
def test_a_200_without_a_json_object_is_a_clear_error(httpserver: HTTPServer, url: str, response, problem):
    httpserver.expect_request(PATH).respond_with_response(response)
    with pytest.raises(AltaAPIError, match=problem) as info:
        client_for(url).get_call(CALL_ID)
    assert type(info.value) is AltaAPIError
    assert info.value.status == 200
    assert len(reads(httpserver)) == 1


def test_a_body_over_the_limit_is_not_read_whole_and_not_retried(raw_server):
    body = b'{"id":"c","padding":"' + b"x" * 5000 + b'"}'
    requests: list[bytes] = []

    def big(conn: socket.socket) -> None:
        requests.append(read_request(conn))
        conn.sendall(answer(b"HTTP/1.1 200 OK", body))

    with pytest.raises(AltaAPIError, match="too large"):
        client_for(raw_server(big).url, max_answer_bytes=1000).get_call(CALL_ID)
    assert len(requests) == 1


@pytest.mark.parametrize("failure", ["reset", "cut", "timeout"])
def test_a_reset_a_cut_body_or_a_read_timeout_is_read_again(raw_server, failure):
    requests: list[bytes] = []

    def flaky(conn: socket.socket) -> None:
        requests.append(read_request(conn))
        if len(requests) > 1:
            conn.sendall(answer(b"HTTP/1.1 200 OK", json.dumps(THE_CALL).encode()))
        elif failure == "reset":
            reset(conn)
        elif failure == "cut":
            conn.sendall(answer(b"HTTP/1.1 200 OK", b'{"id":', length=500))
        else:
            conn.recv(1)  # says nothing until the client gives up

    sleeps = Sleeps()
    client = client_for(raw_server(flaky).url, sleeps=sleeps, timeout=(2.0, 0.3))
    assert client.get_call(CALL_ID) == THE_CALL
    assert len(requests) == 2
    assert len(sleeps) == 1


def test_a_reset_every_time_is_a_read_error(raw_server):
    requests: list[bytes] = []
    server = raw_server(lambda conn: (requests.append(read_request(conn)), reset(conn)))
    with pytest.raises(AltaReadError, match="nothing was changed"):
        client_for(server.url, read_retries=3).get_call(CALL_ID)
    assert len(requests) == 4


def test_a_refused_connection_is_retried_then_a_connection_error():
    sleeps = Sleeps()
    with pytest.raises(AltaConnectionError, match="could not connect"):
        client_for(f"http://127.0.0.1:{free_port()}/v1", sleeps=sleeps, read_retries=2).get_call(CALL_ID)
    assert len(sleeps) == 2


def test_a_read_answer_trickled_past_the_deadline_is_read_again(raw_server):
    requests: list[bytes] = []
    whole = answer(b"HTTP/1.1 200 OK", json.dumps(THE_CALL).encode())

    def trickle_once(conn: socket.socket) -> None:
        requests.append(read_request(conn))
        if len(requests) > 1:
            conn.sendall(whole)
            return
        for index in range(len(whole)):
            try:
                conn.sendall(whole[index : index + 1])
            except OSError:
                return
            time.sleep(0.1)

    assert client_for(raw_server(trickle_once).url, answer_deadline=0.5).get_call(CALL_ID) == THE_CALL
    assert len(requests) == 2


def test_read_logs_hold_neither_the_token_nor_the_calls_numbers(httpserver: HTTPServer, url: str, caplog):
    caplog.set_level(logging.DEBUG)
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"message": "oops for +12025550143"}, status=503
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(THE_CALL)
    client_for(url).get_call(CALL_ID)
    assert "retry 1/3" in caplog.text
    assert TOKEN not in caplog.text
    assert "5550143" not in caplog.text
    assert "5550100" not in caplog.text
