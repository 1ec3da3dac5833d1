"""The rate budget inside the client, over real loopback HTTP: RateLimit-* headers and the one gate.

Raw answers (``alta_testing.servers.loopback``) carry exactly the header lines each test needs,
hostile ones included. Most tests move a hand clock with the client's sleeps, so waits are
recorded, not waited; one test lets a server enforce the account's window in real time.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from airflow_provider_alta.bulk import Stopper, StopRequested
from airflow_provider_alta.client import AltaClient, ResendPolicy
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.exceptions import AltaRateBudgetError, AltaRateLimitError
from airflow_provider_alta.pacing import GateError, Pacer
from airflow_provider_alta.payload import build_call
from airflow_provider_alta.rate_budget import HeaderBudget
from alta_testing.servers.loopback import read_request

pytestmark = pytest.mark.integration

TOKEN = "tok_budget_Rt51_secret"
CALL = build_call({"assistant_id": "asst_1", "name": "Ada", "phone_number": "+12025550143"})
OK = b'{"id":"call_1","status":"queued"}'
INVALID = b'{"error":"ValidationError","message":"Invalid request body"}'
LIMITED = b'{"error":"TooManyRequests","message":"Rate limit exceeded. Please retry after 60 seconds."}'


def raw(status: bytes, body: bytes, *headers: str) -> bytes:
    """An HTTP/1.1 answer with exactly these extra header lines; the connection closes after it."""
    lines = [b"HTTP/1.1 " + status, b"Content-Type: application/json", b"Connection: close"]
    lines += [h.encode("latin-1") for h in headers]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Script:
    """A raw server behaviour: answers requests in order (the last answer repeats), recording them."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []

    def __call__(self, conn: socket.socket) -> None:
        request = read_request(conn)
        if not request:
            return
        self.requests.append(request)
        conn.sendall(self.answers.pop(0) if len(self.answers) > 1 else self.answers[0])

    def lines(self) -> list[str]:
        return [r.split(b"\r\n", 1)[0].decode() for r in self.requests]


class Clock:
    """A hand clock: the client's sleeps move it, so the header budget sees the time pass."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client_for(url: str, clock: Clock | None = None, *, account: str | None = None, token: str = TOKEN,
               gates=(), **policy) -> AltaClient:  # fmt: skip
    settings = AltaSettings(base_url=url, token=token, timeout=(2.0, 5.0), account=account)
    if clock is None:
        return AltaClient(settings, retry=ResendPolicy(**policy), gates=gates)
    budget = HeaderBudget(settings.budget_key, clock=clock)
    return AltaClient(settings, retry=ResendPolicy(**policy), sleep=clock.sleep, budget=budget, gates=gates)


# --- headers are read and honoured --------------------------------------------------------------


def test_a_spent_window_makes_the_next_request_wait_for_its_reset(raw_server):
    script = Script(raw(b"200 OK", OK, "RateLimit-Remaining: 0", "RateLimit-Reset: 2"), raw(b"200 OK", OK))
    clock = Clock()
    client = client_for(raw_server(script).url, clock)
    assert client.trigger(CALL)["id"] == "call_1"
    assert client.trigger(CALL)["id"] == "call_1"
    assert clock.slept == [2.0]  # waited for the reset before the second request left
    assert len(script.requests) == 2


def test_remaining_counts_down_with_the_requests_sent_since(raw_server):
    script = Script(raw(b"200 OK", OK, "RateLimit-Remaining: 2", "RateLimit-Reset: 30"), raw(b"200 OK", OK))
    clock = Clock()
    client = client_for(raw_server(script).url, clock)
    for _ in range(4):
        client.trigger(CALL)
    assert clock.slept == [30.0]  # 1 + the 2 remaining went at once; the 4th waited for the reset
    assert len(script.requests) == 4


def test_a_429_and_its_headers_are_one_wait_not_two(raw_server):
    limited = raw(
        b"429 Too Many Requests", LIMITED, "Retry-After: 3", "RateLimit-Remaining: 0", "RateLimit-Reset: 3"
    )
    script = Script(limited, raw(b"200 OK", OK))
    clock = Clock()
    assert client_for(raw_server(script).url, clock).trigger(CALL)["id"] == "call_1"
    assert clock.slept == [3.0]
    assert len(script.requests) == 2


def test_no_429_storm_when_alta_enforces_the_window_in_real_time(raw_server):
    """The server refuses (429) any request before the reset it announced; the client never draws one."""
    served: list[int] = []
    spent_at: list[float] = []

    def account_window(conn: socket.socket) -> None:
        if not read_request(conn):
            return
        if spent_at and time.monotonic() - spent_at[0] < 1.0:
            served.append(429)
            conn.sendall(raw(b"429 Too Many Requests", LIMITED, "Retry-After: 1"))
            return
        served.append(200)
        if not spent_at:
            spent_at.append(time.monotonic())
            conn.sendall(raw(b"200 OK", OK, "RateLimit-Remaining: 0", "RateLimit-Reset: 1"))
        else:
            conn.sendall(raw(b"200 OK", OK))

    url = raw_server(account_window).url
    settings = AltaSettings(base_url=url, token=TOKEN, timeout=(2.0, 5.0))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = AltaClient(settings, sleep=sleep, budget=HeaderBudget())
    for _ in range(3):
        client.trigger(CALL)
    assert served == [200, 200, 200]
    assert len(waits) == 1


def test_two_tokens_of_one_account_share_one_budget_in_a_process(raw_server):
    """Another token of the account spent the window: this client hears of it and waits too."""
    served: list[int] = []
    spent_at: list[float] = []

    def account_window(conn: socket.socket) -> None:
        if not read_request(conn):
            return
        if spent_at and time.monotonic() - spent_at[0] < 1.0:
            served.append(429)
            conn.sendall(raw(b"429 Too Many Requests", LIMITED, "Retry-After: 1"))
            return
        served.append(200)
        spent_at.append(time.monotonic())
        conn.sendall(raw(b"200 OK", OK, "RateLimit-Remaining: 0", "RateLimit-Reset: 1"))

    url = raw_server(account_window).url
    account = f"acme-{uuid.uuid4().hex[:8]}"
    first = client_for(url, account=account, token="tok_first_A1")
    second = client_for(url, account=account.upper(), token="tok_second_B2")
    other = client_for(url, account="someone-else", token="tok_third_C3")
    assert first.budget is second.budget  # this process's one budget for the account
    assert other.budget is not first.budget
    first.trigger(CALL)
    second.trigger(CALL)  # waits for the reset the first token's answer announced
    assert served == [200, 200]


# --- hostile header values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "slept"),
    [
        (["RateLimit-Remaining: -1", "RateLimit-Reset: 5"], []),  # not a count: ignored
        (["RateLimit-Remaining: lots", "RateLimit-Reset: soon"], []),
        (["RateLimit-Remaining: NaN", "RateLimit-Reset: NaN"], []),
        (["RateLimit-Remaining: 0", "RateLimit-Reset: -5"], []),  # reset in the past: room now
        (["RateLimit-Remaining: 0", "RateLimit-Reset: NaN"], [60.0]),  # no readable reset: one window
        (["RateLimit-Remaining: 0", "RateLimit-Reset: 1.5e1"], [15.0]),
        (
            ["RateLimit-Remaining: 5", "RateLimit-Remaining: 0", "RateLimit-Reset: 2", "RateLimit-Reset: 7"],
            [7.0],
        ),
        (["RateLimit-Remaining: 0, 3", "RateLimit-Reset: 4"], [4.0]),
        (["RateLimit-Remaining: " + "9" * 5000, "RateLimit-Reset: " + "9" * 5000], []),
        (["RateLimit-Limit: abc", "RateLimit-Policy: ;;w=;q=,=", "RateLimit-Remaining: "], []),
        (["RateLimit-Remaining: 0", "RateLimit-Reset: 99999999"], [3600.0]),  # clamped to an hour
        (["RateLimit-Remaining: 0", "RateLimit-Reset: inf"], [3600.0]),
    ],
)
def test_hostile_header_values_never_crash_or_loop(raw_server, headers, slept):
    script = Script(raw(b"200 OK", OK, *headers), raw(b"200 OK", OK))
    clock = Clock()
    client = client_for(raw_server(script).url, clock, rate_limit_budget=4000)
    assert client.trigger(CALL)["id"] == "call_1"
    assert client.trigger(CALL)["id"] == "call_1"
    assert clock.slept == slept
    assert len(script.requests) == 2


def test_a_reset_past_the_wait_budget_sends_nothing_and_says_when(raw_server):
    script = Script(raw(b"200 OK", OK, "RateLimit-Remaining: 0", "RateLimit-Reset: 1e309"))
    clock = Clock()
    client = client_for(raw_server(script).url, clock)  # the default budget: 300 s
    client.trigger(CALL)
    with pytest.raises(AltaRateLimitError, match="Nothing was sent") as info:
        client.trigger(CALL)
    assert info.value.retry_after == 3600.0
    assert clock.slept == []
    assert len(script.requests) == 1


def test_a_lower_ratelimit_limit_wins_over_the_configured_rate(raw_server):
    script = Script(raw(b"200 OK", OK, "RateLimit-Limit: 30", "RateLimit-Policy: 30;w=60"))
    clock = Clock()
    client = client_for(raw_server(script).url, clock)
    pacer = Pacer(
        100, margin=0, clock=clock, sleep=clock.sleep, ceiling=lambda: client.budget.stated_calls_per_minute
    )
    assert client.budget.effective_calls_per_minute(100) == 100
    client.trigger(CALL)
    assert client.budget.effective_calls_per_minute(100) == 30.0
    assert pacer.interval == 2.0  # 30 a minute, not the configured 100


# --- one gate for every request -----------------------------------------------------------------


class RecordingGate:
    """A gate that lets everything through and records its use (and, optionally, fails)."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.events: list[str] = []
        self.fail = fail
        self.closed = False

    def acquire(self) -> float:
        self.events.append("acquire")
        if self.fail is not None:
            raise self.fail
        return 0.0

    def release(self) -> None:
        self.events.append("release")

    def close(self) -> None:
        self.closed = True


def test_calls_reads_and_the_token_check_all_pass_the_gates(raw_server):
    script = Script(
        raw(b"200 OK", OK),
        raw(b"200 OK", b'{"id":"c1","objectType":"call"}'),
        raw(b"400 Bad Request", INVALID),
    )
    gates = [RecordingGate(), RecordingGate()]
    with client_for(raw_server(script).url, Clock(), gates=gates) as client:
        client.trigger(CALL)
        assert client.get_call("c1") == {"id": "c1", "objectType": "call"}
        assert client.check_token()[0] is True
    assert script.lines() == ["POST /v1/assistant/calls HTTP/1.1", "GET /v1/calls/c1 HTTP/1.1",
                              "POST /v1/assistant/calls HTTP/1.1"]  # fmt: skip
    for gate in gates:
        assert gate.events == ["acquire", "release"] * 3
        assert gate.closed  # the client closes the gates it was given


@pytest.mark.parametrize("operation", ["trigger", "get_call", "check_token"])
def test_a_failing_gate_is_a_rate_budget_error_and_nothing_is_sent(raw_server, operation):
    script = Script(raw(b"200 OK", OK))
    first, failing = (
        RecordingGate(),
        RecordingGate(GateError("shared rate limiter: Redis at redis://x/0 failed")),
    )
    clock = Clock()
    client = client_for(raw_server(script).url, clock, gates=[first, failing])
    if operation == "check_token":
        ok, message = client.check_token()
        assert not ok
        assert "the shared rate limiter failed; nothing was sent" in message
    else:
        with pytest.raises(AltaRateBudgetError, match="Redis at redis://x/0 failed") as info:
            client.trigger(CALL) if operation == "trigger" else client.get_call("c1")
        assert info.value.placed is False
    assert script.requests == []
    assert first.events == ["acquire", "release"]  # what was acquired is released
    assert client.budget.reserve() == 0.0  # and the header budget did not count it


def test_a_stop_while_waiting_for_a_gate_or_a_window_propagates_unchanged(raw_server):
    script = Script(raw(b"200 OK", OK, "RateLimit-Remaining: 0", "RateLimit-Reset: 5"))
    url = raw_server(script).url
    stopper = Stopper()
    stopper.request("on_kill")
    gated = client_for(url, Clock(), gates=[RecordingGate(StopRequested("on_kill"))])
    with pytest.raises(StopRequested):
        gated.trigger(CALL)
    settings = AltaSettings(base_url=url, token=TOKEN)
    client = AltaClient(settings, sleep=stopper.sleep, budget=HeaderBudget())
    client.budget.reserve()
    client.budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "5"})
    with pytest.raises(StopRequested):  # the wait for the window's reset is cut short
        client.trigger(CALL)
    assert script.requests == []


def test_concurrent_clients_of_one_account_never_exceed_the_stated_remaining(raw_server):
    lock = threading.Lock()
    served: list[bytes] = []

    def behaviour(conn: socket.socket) -> None:
        if not read_request(conn):
            return
        with lock:
            served.append(b"x")
            first = len(served) == 1
        headers = ["RateLimit-Remaining: 3", "RateLimit-Reset: 60"] if first else []
        conn.sendall(raw(b"200 OK", OK, *headers))

    clock = Clock()
    url = raw_server(behaviour).url
    budget = HeaderBudget(clock=clock)
    settings = AltaSettings(base_url=url, token=TOKEN)
    client = AltaClient(settings, sleep=clock.sleep, budget=budget, retry=ResendPolicy(rate_limit_budget=0))
    client.trigger(CALL)
    outcomes: list[str] = []

    def send() -> None:
        try:
            client.trigger(CALL)
            outcomes.append("sent")
        except AltaRateLimitError:
            outcomes.append("held back")

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["held back"] * 5 + ["sent"] * 3
    assert len(served) == 4


# --- against the sandbox, which sends the RateLimit-* headers per account --------------------------


def real_sleeps() -> tuple[list[float], object]:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    return waits, sleep


def call(number: int):
    return build_call({"assistant_id": "asst_1", "name": "Ada", "phone_number": f"+1202555{number:04d}"})


def test_a_window_another_client_spent_is_waited_for_without_a_429(alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit="3/2")
    sandbox.spend(2)  # another program on the account
    waits, sleep = real_sleeps()
    client = AltaClient(AltaSettings(base_url=sandbox.url, token=TOKEN), sleep=sleep, budget=HeaderBudget())
    client.trigger(call(100))  # the window's last request: Remaining 0
    client.trigger(call(101))  # waits for the reset the sandbox announced
    assert sandbox.stats()["responses"] == {"200": 2}
    assert len(waits) == 1


def test_two_tokens_of_one_sandbox_account_share_the_budget(alta_sandbox_factory):
    sandbox = alta_sandbox_factory(accounts={"acme": ["tok_acme_one", "tok_acme_two"]}, rate_limit="2/1")
    _, sleep = real_sleeps()
    clients = [
        AltaClient(AltaSettings(base_url=sandbox.url, token=token, account="acme"), sleep=sleep)
        for token in ("tok_acme_one", "tok_acme_two")
    ]
    assert clients[0].budget is clients[1].budget
    for number in range(6):
        clients[number % 2].trigger(call(100 + number))
    assert sandbox.stats()["responses"] == {"200": 6}


def test_the_sandboxs_lower_limit_wins(alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit="30/60")
    client = AltaClient(
        AltaSettings(base_url=sandbox.url, token=TOKEN, calls_per_minute=100), budget=HeaderBudget()
    )
    client.trigger(call(100))
    assert client.budget.effective_calls_per_minute(client.settings.calls_per_minute) == 30.0


def test_reads_spend_the_same_window_and_wait_for_it(alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit="2/2")
    waits, sleep = real_sleeps()
    client = AltaClient(AltaSettings(base_url=sandbox.url, token=TOKEN), sleep=sleep, budget=HeaderBudget())
    placed = client.trigger(call(100))
    assert client.get_call(placed["id"])["id"] == placed["id"]  # the window's last request
    assert client.get_call(placed["id"])["objectType"] == "call"  # waited for the reset
    assert sandbox.stats()["responses"] == {"200": 3}
    assert len(waits) == 1


def test_the_token_check_reports_a_spent_window_without_sending(alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit="1/30")
    client = AltaClient(AltaSettings(base_url=sandbox.url, token=TOKEN), budget=HeaderBudget())
    client.trigger(call(100))
    ok, message = client.check_token()
    assert not ok
    assert "rate limit for this account is spent" in message
    assert sandbox.stats()["requests"] == 1
