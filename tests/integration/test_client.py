"""The client's request path and resend rule, over real loopback HTTP."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from airflow_provider_alta import __version__
from airflow_provider_alta.client import AltaClient, ResendPolicy
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
from airflow_provider_alta.rate_budget import HeaderBudget
from alta_testing.servers.loopback import (
    RawServer,
    answer,
    read_request,
    reset,
    self_signed_tls,
    send_padded_json,
    send_slowly,
)
from alta_testing.servers.ports import free_port

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
    """A client with its own header budget: the session's one test server is not one account."""
    settings = AltaSettings(base_url=url, token=TOKEN, timeout=timeout)
    return AltaClient(
        settings,
        retry=ResendPolicy(**policy),
        sleep=sleeps if sleeps is not None else Sleeps(),
        budget=HeaderBudget(),
    )


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


# --- interim answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
    ],
)
def test_interim_answers_are_skipped_and_the_final_200_is_a_placed_call(raw_server, interim):
    def interim_then_200(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        conn.sendall(interim + answer(b"HTTP/1.1 200 OK", b'{"id":"call_1"}'))

    server = raw_server(interim_then_200)
    sleeps = Sleeps()
    assert client_for(server.url, sleeps=sleeps).trigger(CALL) == {"id": "call_1"}
    assert len(server.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 102 Processing\r\n\r\n",  # then the connection closes: the final answer never came
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    ],
)
def test_an_interim_answer_without_a_final_one_is_ambiguous_never_rejected(raw_server, interim):
    def interim_only(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        conn.sendall(interim)

    server = raw_server(interim_only)
    sleeps = Sleeps()
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(server.url, sleeps=sleeps).trigger(CALL)
    assert len(server.requests) == 1
    assert sleeps == []


def test_an_interim_answer_followed_by_silence_is_ambiguous(raw_server):
    def interim_then_nothing(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
        conn.recv(1)  # until the client gives up and closes

    server = raw_server(interim_then_nothing)
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(server.url, timeout=(2.0, 0.3)).trigger(CALL)
    assert len(server.requests) == 1


def test_a_stray_final_answer_after_an_unexpected_1xx_never_answers_the_next_call(raw_server):
    """A 101 ends the exchange; what follows on that connection must not be read as the next answer."""
    served: list[int] = []

    def behaviour(conn: socket.socket) -> None:
        served.append(len(served))
        read_request(conn)
        if len(served) == 1:
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + answer(b"HTTP/1.1 200 OK", b'{"id":"stray"}')
            )
            read_request(conn)  # a second request on this connection would get the stray answer
        else:
            conn.sendall(answer(b"HTTP/1.1 200 OK", b'{"id":"fresh"}'))

    client = client_for(raw_server(behaviour).url)
    with pytest.raises(AltaAmbiguousOutcomeError):
        client.trigger(CALL)
    assert client.trigger(CALL) == {"id": "fresh"}


# --- the answer deadline -----------------------------------------------------------------------

SLOW_ANSWER = answer(b"HTTP/1.1 200 OK", b'{"id":"call_slow","status":"queued"}')


def _wait_for(items: list, count: int = 1, timeout: float = 60.0) -> None:
    """Wait until the server thread has reported ``count`` results (it notices a client leave late)."""
    deadline = time.monotonic() + timeout
    while len(items) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_an_answer_trickled_from_its_status_line_is_ambiguous_at_the_deadline(raw_server):
    """One byte every 0.1 s never trips the 5 s read timeout; the 0.5 s answer deadline ends it."""
    sent: list[int] = []

    def trickle(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        sent.append(send_slowly(conn, SLOW_ANSWER, 0.1))

    server = raw_server(trickle)
    sleeps = Sleeps()
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(server.url, timeout=(2.0, 5.0), sleeps=sleeps, answer_deadline=0.5).trigger(CALL)
    _wait_for(sent)
    assert sent[0] < len(SLOW_ANSWER)  # the client left before the answer was complete
    assert len(server.requests) == 1
    assert sleeps == []


def test_headers_trickled_after_the_status_line_are_ambiguous_too(raw_server):
    sent: list[int] = []
    status_line, rest = SLOW_ANSWER[:17], SLOW_ANSWER[17:]

    def trickle_headers(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(status_line)
        sent.append(send_slowly(conn, rest, 0.1))

    with pytest.raises(AltaAmbiguousOutcomeError):
        client_for(raw_server(trickle_headers).url, answer_deadline=0.5).trigger(CALL)
    _wait_for(sent)
    assert sent[0] < len(rest)


def test_the_default_deadline_is_twice_the_read_timeout(raw_server):
    sent: list[int] = []

    def trickle(conn: socket.socket) -> None:
        read_request(conn)
        sent.append(send_slowly(conn, SLOW_ANSWER, 0.1))  # about 6 s in all, never 0.4 s without a byte

    with pytest.raises(AltaAmbiguousOutcomeError):
        client_for(raw_server(trickle).url, timeout=(2.0, 0.4)).trigger(CALL)
    _wait_for(sent)
    assert sent[0] < len(SLOW_ANSWER)


PADDED = b'{"id":"call_slow","status":"queued","padding":"' + b"x" * 60 + b'"}'


@pytest.mark.parametrize(
    ("status_line", "outcome"),
    [
        (b"HTTP/1.1 200 OK", {}),  # placed: the status line said so; the body is unknown
        (b"HTTP/1.1 201 Created", {}),
        (b"HTTP/1.1 400 Bad Request", AltaValidationError),  # still a rejection
        (b"HTTP/1.1 503 Service Unavailable", AltaAmbiguousOutcomeError),
    ],
)
def test_a_trickled_body_keeps_what_the_status_line_said(raw_server, status_line, outcome):
    sent: list[int] = []

    def trickle_body(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        conn.sendall(answer(status_line, b"", length=len(PADDED)))
        sent.append(send_slowly(conn, PADDED, 0.1))

    server = raw_server(trickle_body)
    sleeps = Sleeps()
    client = client_for(server.url, sleeps=sleeps, answer_deadline=0.5)
    if isinstance(outcome, dict):
        assert client.trigger(CALL) == outcome
    else:
        with pytest.raises(outcome):
            client.trigger(CALL)
    _wait_for(sent)
    assert sent[0] < len(PADDED)  # not read whole
    assert len(server.requests) == 1
    assert sleeps == []


# --- the body limit ----------------------------------------------------------------------------

HUGE = 50 * 1024 * 1024


@pytest.mark.parametrize(
    ("status_line", "outcome"),
    [
        (b"HTTP/1.1 200 OK", {}),
        (b"HTTP/1.1 400 Bad Request", AltaValidationError),
        (b"HTTP/1.1 500 Internal Server Error", AltaAmbiguousOutcomeError),
    ],
)
def test_a_50_mb_answer_is_not_read_whole_and_keeps_its_status(raw_server, status_line, outcome):
    sent: list[int] = []

    def huge_then_normal(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        if len(server.requests) == 1:
            sent.append(send_padded_json(conn, status_line, HUGE))
        else:
            conn.sendall(answer(b"HTTP/1.1 200 OK", b'{"id":"next"}'))

    server = raw_server(huge_then_normal)
    sleeps = Sleeps()
    client = client_for(server.url, sleeps=sleeps)
    if isinstance(outcome, dict):
        assert client.trigger(CALL) == outcome
    else:
        with pytest.raises(outcome) as info:
            client.trigger(CALL)
        assert len(str(info.value)) < 1000
    _wait_for(sent)
    assert sent[0] < HUGE // 2  # the client stopped reading at its limit (the rest is kernel buffers)
    assert client.trigger(CALL) == {"id": "next"}  # a fresh connection, not the rest of the huge body
    assert len(server.requests) == 2
    assert sleeps == []


def test_the_body_limit_is_a_policy_setting(raw_server):
    body = b'{"id":"call_1","padding":"' + b"x" * 5000 + b'"}'

    def big(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(answer(b"HTTP/1.1 200 OK", body))

    server = raw_server(big)
    assert client_for(server.url, max_answer_bytes=1000).trigger(CALL) == {}
    assert client_for(server.url, max_answer_bytes=10_000).trigger(CALL)["id"] == "call_1"


# --- the same answers from the sandbox's faults ------------------------------------------------


@pytest.fixture
def sandbox():
    from airflow_provider_alta.sandbox import AltaSandbox

    with AltaSandbox(token=TOKEN, rate_limit=None) as running:
        yield running


@pytest.mark.parametrize(
    ("fault", "placed_answer"),
    [
        ("interim", True),  # the final 200 after the interim 102 is read
        ("interim:103", True),
        ("trickle_body:0.1", False),  # placed; the body is unknown
        ("huge_body", False),  # placed; 50 MiB are not read
    ],
)
def test_sandbox_answers_that_are_placed_calls(sandbox, fault, placed_answer):
    sandbox.set_faults(script=[fault])
    sleeps = Sleeps()
    result = client_for(sandbox.url, sleeps=sleeps, answer_deadline=0.5).trigger(CALL)
    (call,) = sandbox.calls()
    assert result == ({"id": call["id"], "status": "queued"} if placed_answer else {})
    assert sandbox.stats()["requests"] == 1
    assert sleeps == []


def test_sandbox_trickle_is_ambiguous_and_not_resent(sandbox):
    sandbox.set_faults(script=["trickle:0.1"])
    sleeps = Sleeps()
    with pytest.raises(AltaAmbiguousOutcomeError, match="may have been placed"):
        client_for(sandbox.url, sleeps=sleeps, answer_deadline=0.5).trigger(CALL)
    assert len(sandbox.calls()) == 1  # it was placed: the client could not know
    assert sandbox.stats()["requests"] == 1
    assert sleeps == []


def test_sandbox_zero_waits_are_waited_out_for_the_minimum(sandbox):
    from airflow_provider_alta.client import MIN_RATE_LIMIT_WAIT

    sandbox.set_faults(script=["429:0"] * 3, retry_after=0)
    sleeps = Sleeps()
    assert client_for(sandbox.url, sleeps=sleeps).trigger(CALL)["status"] == "queued"
    assert sleeps == [MIN_RATE_LIMIT_WAIT] * 3
    assert sandbox.stats()["responses"] == {"200": 1, "429": 3}
    assert len(sandbox.calls()) == 1


# --- the same bounds over TLS (Alta's real transport) ------------------------------------------


def test_interim_deadline_and_limit_hold_over_tls(raw_server, tmp_path, monkeypatch):
    context, ca = self_signed_tls(str(tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    sent: list[int] = []

    def interim(tls: socket.socket) -> None:
        read_request(tls)
        tls.sendall(b"HTTP/1.1 102 Processing\r\n\r\n" + answer(b"HTTP/1.1 200 OK", b'{"id":"tls"}'))

    def trickle(tls: socket.socket) -> None:
        read_request(tls)
        sent.append(send_slowly(tls, SLOW_ANSWER, 0.1))

    def huge(tls: socket.socket) -> None:
        read_request(tls)
        sent.append(send_padded_json(tls, b"HTTP/1.1 200 OK", HUGE))

    behaviours = [interim, trickle, huge]

    def over_tls(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            behaviours.pop(0)(tls)

    server = raw_server(over_tls)
    client = client_for(f"https://localhost:{server.port}/v1", answer_deadline=0.5)
    assert client.trigger(CALL) == {"id": "tls"}
    with pytest.raises(AltaAmbiguousOutcomeError):
        client.trigger(CALL)
    _wait_for(sent)
    assert sent[0] < len(SLOW_ANSWER)
    assert client.trigger(CALL) == {}
    _wait_for(sent, count=2)
    assert sent[1] < HUGE // 2
