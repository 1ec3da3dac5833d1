"""The client's request path and resend rule, over real loopback HTTP."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import threading
import time

import pytest
from loopback import RawServer, read_request, reset
from ports import free_port
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from airflow_provider_alta import __version__
from airflow_provider_alta.client import AltaClient, RetryPolicy
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.payload import build_call

pytestmark = pytest.mark.integration

TOKEN = "tok_live_Zx81_secret"
CALL = build_call({"assistant_id": "asst_1", "name": "Ada", "phone_number": "+12025550143"})
PATH = "/v1/assistant/calls"


class Sleeps(list[float]):
    """Records requested waits and sleeps a token amount, so tests stay fast."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.01))


def client_for(url: str, *, timeout=(2.0, 5.0), sleeps: Sleeps | None = None, **policy) -> AltaClient:
    settings = AltaSettings(base_url=url, token=TOKEN, timeout=timeout)
    return AltaClient(settings, retry=RetryPolicy(**policy), sleep=sleeps if sleeps is not None else Sleeps())


def calls_to(httpserver: HTTPServer) -> list[Request]:
    return [req for req, _ in httpserver.log if req.path == PATH]


@pytest.fixture
def url(httpserver: HTTPServer) -> str:
    return httpserver.url_for("/v1")


def test_success_sends_exact_wire_format_and_returns_json(httpserver: HTTPServer, url: str):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_json(
        {"id": "call_1", "status": "queued"}
    )
    assert client_for(url).trigger(CALL) == {"id": "call_1", "status": "queued"}
    (req,) = calls_to(httpserver)
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == f"airflow-provider-alta/{__version__}"
    assert json.loads(req.get_data()) == {
        "assistantId": "asst_1",
        "name": "Ada",
        "phoneNumber": "+12025550143",
    }


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (Response(b"", status=200), {}),
        (Response(b"OK", status=200, content_type="text/plain"), {}),
        (Response(b'["a"]', status=200, content_type="application/json"), {"body": ["a"]}),
    ],
)
def test_success_without_a_json_object(httpserver: HTTPServer, url: str, response, expected):
    httpserver.expect_oneshot_request(PATH).respond_with_response(response)
    assert client_for(url).trigger(CALL) == expected


@pytest.mark.parametrize(
    ("status", "body", "exc", "error"),
    [
        (
            400,
            {"error": "ValidationError", "message": "Invalid request body"},
            AltaValidationError,
            "ValidationError",
        ),
        (
            401,
            {"error": "Unauthorized", "message": "Invalid API token"},
            AltaAuthenticationError,
            "Unauthorized",
        ),
        (404, {"error": "NotFound", "message": "No such route"}, AltaAPIError, "NotFound"),
        (500, {"error": "Internal", "message": "boom"}, AltaAmbiguousOutcomeError, "Internal"),
        (502, {"error": "BadGateway", "message": "upstream"}, AltaAmbiguousOutcomeError, "BadGateway"),
        (503, {"error": "Unavailable", "message": "later"}, AltaAmbiguousOutcomeError, "Unavailable"),
    ],
)
def test_error_statuses_are_raised_once_never_resent(httpserver: HTTPServer, url, status, body, exc, error):
    httpserver.expect_request(PATH).respond_with_json(body, status=status)
    with pytest.raises(exc) as info:
        client_for(url).trigger(CALL)
    assert type(info.value) is exc
    assert (info.value.status, info.value.error) == (status, error)
    assert body["message"] in info.value.message
    assert len(calls_to(httpserver)) == 1
    if status >= 500:
        assert "may have been placed" in str(info.value)


def test_5xx_without_json_body_is_ambiguous(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_data("<html>bad gateway</html>", status=502)
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(url).trigger(CALL)
    assert len(calls_to(httpserver)) == 1


def test_redirect_is_not_followed(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_data("", status=307, headers={"Location": "/elsewhere"})
    with pytest.raises(AltaAPIError) as info:
        client_for(url).trigger(CALL)
    assert info.value.status == 307
    assert [r.path for r, _ in httpserver.log] == [PATH]


def _rate_limited(headers: dict[str, str] | None = None, message: str = "Please retry after 60 seconds."):
    body = {"error": "TooManyRequests", "message": f"Rate limit exceeded. {message}"}
    return Response(json.dumps(body), status=429, headers=headers or {}, content_type="application/json")


@pytest.mark.parametrize(
    ("response", "wait"),
    [
        (_rate_limited({"Retry-After": "3"}), 3.0),
        (_rate_limited(message="Please retry after 7 seconds."), 7.0),
        (_rate_limited(message="Slow down."), 60.0),
    ],
)
def test_429_waits_then_resends(httpserver: HTTPServer, url: str, response, wait):
    httpserver.expect_ordered_request(PATH).respond_with_response(response)
    httpserver.expect_ordered_request(PATH).respond_with_json({"id": "c2"})
    sleeps = Sleeps()
    assert client_for(url, sleeps=sleeps).trigger(CALL) == {"id": "c2"}
    assert sleeps == [wait]
    assert len(calls_to(httpserver)) == 2


def test_429_retry_after_http_date(httpserver: HTTPServer, url: str):
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    httpserver.expect_ordered_request(PATH).respond_with_response(_rate_limited({"Retry-After": when}))
    httpserver.expect_ordered_request(PATH).respond_with_json({})
    sleeps = Sleeps()
    client_for(url, sleeps=sleeps).trigger(CALL)
    assert 17 <= sleeps[0] <= 20


def test_429_budget_spent_raises_without_placing(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_response(_rate_limited({"Retry-After": "1"}))
    sleeps = Sleeps()
    with pytest.raises(AltaRateLimitError) as info:
        client_for(url, sleeps=sleeps, rate_limit_budget=2.5).trigger(CALL)
    assert sleeps == [1.0, 1.0]
    assert len(calls_to(httpserver)) == 3
    assert info.value.retry_after == 1.0
    assert info.value.status == 429
    assert "Nothing was placed" in str(info.value)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Retry-After": "0"}, "Please retry after 60 seconds."),
        ({"Retry-After": "-1"}, "Please retry after 0 seconds."),
        ({"Retry-After": "nan"}, "Please retry after 0 seconds."),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, "Please retry."),
        ({}, "Please retry after 0 seconds."),
    ],
)
def test_a_429_that_says_now_is_waited_out_and_resent_a_bounded_number_of_times(
    httpserver: HTTPServer, url: str, headers, message
):
    """A server that keeps answering "retry now" cannot make the client spin."""
    httpserver.expect_request(PATH).respond_with_response(_rate_limited(headers, message))
    sleeps = Sleeps()
    with pytest.raises(AltaRateLimitError, match="resent 4 of at most 4 times") as info:
        client_for(url, sleeps=sleeps, rate_limit_resends=4).trigger(CALL)
    assert len(calls_to(httpserver)) == 5
    assert sleeps == [1.0] * 4
    assert info.value.retry_after == 1.0


@pytest.mark.parametrize("value", ["inf", "1e309", "Infinity"])
def test_an_infinite_retry_after_is_an_hour_and_spends_the_budget(httpserver: HTTPServer, url: str, value):
    httpserver.expect_request(PATH).respond_with_response(_rate_limited({"Retry-After": value}))
    sleeps = Sleeps()
    with pytest.raises(AltaRateLimitError) as info:
        client_for(url, sleeps=sleeps).trigger(CALL)
    assert info.value.retry_after == 3600.0
    assert sleeps == []
    assert len(calls_to(httpserver)) == 1


def test_zero_budget_raises_at_once_with_the_wait(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_response(_rate_limited())
    with pytest.raises(AltaRateLimitError) as info:
        client_for(url, rate_limit_budget=0).trigger(CALL)
    assert info.value.retry_after == 60.0
    assert len(calls_to(httpserver)) == 1


def test_read_timeout_is_ambiguous_and_not_resent(httpserver: HTTPServer, url: str):
    def slow(_: Request) -> Response:
        time.sleep(1.0)
        return Response("{}", status=200)

    httpserver.expect_request(PATH).respond_with_handler(slow)
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(url, timeout=(2.0, 0.2)).trigger(CALL)
    time.sleep(1.0)
    assert len(calls_to(httpserver)) == 1


def _ok_after_read(conn: socket.socket) -> None:
    read_request(conn)
    body = b'{"id":"late"}'
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def test_refused_connection_is_retried_until_the_server_comes_up(raw_server):
    port = free_port()
    started: list[RawServer] = []

    class StartOnSecondWait(Sleeps):
        def __call__(self, seconds: float) -> None:
            super().__call__(seconds)
            if len(self) == 2:
                started.append(raw_server(_ok_after_read, port=port))

    sleeps = StartOnSecondWait()
    client = client_for(f"http://127.0.0.1:{port}/v1", sleeps=sleeps, connect_retries=3, backoff_base=0.2)
    assert client.trigger(CALL) == {"id": "late"}
    assert len(sleeps) == 2
    assert all(0 <= s <= 0.2 * 2**i for i, s in enumerate(sleeps))
    assert len(started) == 1


def test_refused_every_time_raises_connection_error_after_retries():
    sleeps = Sleeps()
    client = client_for(f"http://127.0.0.1:{free_port()}/v1", sleeps=sleeps, connect_retries=2)
    with pytest.raises(AltaConnectionError, match="could not connect"):
        client.trigger(CALL)
    assert len(sleeps) == 2


def test_connect_timeout_is_retried():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        # Fill the accept queue of a server that never accepts: further SYNs go unanswered.
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        sleeps = Sleeps()
        port = listener.getsockname()[1]
        client = client_for(
            f"http://127.0.0.1:{port}/v1", timeout=(0.2, 1.0), sleeps=sleeps, connect_retries=1
        )
        with pytest.raises(AltaConnectionError):
            client.trigger(CALL)
        assert len(sleeps) == 1
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_reset_after_the_body_was_read_is_ambiguous_and_not_resent(raw_server):
    server = raw_server(lambda conn: (server.requests.append(read_request(conn)), reset(conn)))
    sleeps = Sleeps()
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(server.url, sleeps=sleeps).trigger(CALL)
    assert len(server.requests) == 1
    assert b'"phoneNumber":"+12025550143"' in server.requests[0]
    assert sleeps == []


def test_reset_before_reading_the_body_is_ambiguous_too(raw_server):
    """The client cannot know how far the server got, so it never resends."""
    seen: list[bytes] = []

    def headers_then_reset(conn: socket.socket) -> None:
        seen.append(conn.recv(16))
        reset(conn)

    server = raw_server(headers_then_reset)
    with pytest.raises(AltaAmbiguousOutcomeError):
        client_for(server.url).trigger(CALL)
    assert seen == [b"POST /v1/assista"]


def test_truncated_body_after_200_is_still_a_placed_call(raw_server):
    def truncated(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id"')
        conn.close()

    assert client_for(raw_server(truncated).url).trigger(CALL) == {}


def test_session_is_reused_across_calls(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_json({})
    client = client_for(url)
    session = client.session
    for _ in range(3):
        client.trigger(CALL)
    assert client.session is session
    assert len(calls_to(httpserver)) == 3


def test_check_token_places_no_call(httpserver: HTTPServer, url: str):
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": "ValidationError", "message": "assistantId is required"}, status=400
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": "Unauthorized", "message": "Invalid API token"}, status=401
    )
    client = client_for(url)
    ok, message = client.check_token()
    assert ok
    assert "Token accepted" in message
    ok, message = client.check_token()
    assert not ok
    assert "401" in message
    assert [json.loads(r.get_data()) for r in calls_to(httpserver)] == [{}, {}]


def test_logs_never_contain_the_token_or_the_number(httpserver: HTTPServer, url: str, caplog):
    caplog.set_level(logging.DEBUG)
    httpserver.expect_ordered_request(PATH).respond_with_response(_rate_limited({"Retry-After": "0"}))
    httpserver.expect_ordered_request(PATH).respond_with_json({"id": "x"})
    httpserver.expect_ordered_request(PATH).respond_with_json({"message": "bad +12025550143"}, status=400)
    client = client_for(url)
    client.trigger(CALL)
    with pytest.raises(AltaValidationError) as info:
        client.trigger(CALL)
    text = caplog.text + str(info.value)
    assert "+1202***0143" in caplog.text
    assert TOKEN not in text
    assert "5550143" not in text


def test_concurrent_use_is_safe(httpserver: HTTPServer, url: str):
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    client = client_for(url)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(client.trigger(CALL))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"ok": True}] * 8
