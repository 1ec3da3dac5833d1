"""Accounts: tokens grouped by account, one rate window per account, RateLimit headers (no HTTP)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from airflow_provider_alta.sandbox.accounts import Accounts, Caller, parse_account
from airflow_provider_alta.sandbox.core import SandboxState
from airflow_provider_alta.sandbox.journal import token_fingerprint
from airflow_provider_alta.sandbox.ratelimit import RateLimit

JSON = "application/json"
BODY = json.dumps({"assistantId": "a", "name": "n", "phoneNumber": "+12025550143"}).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> str:
    return f"Bearer {token}"


THREE_A_MINUTE = RateLimit(3, 60.0)


def make(clock: FakeClock, limit: RateLimit | None = THREE_A_MINUTE, **options: Any) -> SandboxState:
    options.setdefault("accounts", {"acme": ["tok-a", "tok-b"], "globex": "tok-g"})
    return SandboxState(rate_limit=limit, clock=clock, **options)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme=tok-a", ("acme", ["tok-a"])),
        (" acme = tok-a , tok-b ", ("acme", ["tok-a", "tok-b"])),
        ("a=b=c", ("a", ["b=c"])),  # a token may hold "="
    ],
)
def test_parse_account(text: str, expected: tuple[str, list[str]]) -> None:
    assert parse_account(text) == expected


@pytest.mark.parametrize("text", ["acme", "=tok", "acme=", "acme=a,,b", "acme=a,"])
def test_parse_account_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="NAME=TOKEN"):
        parse_account(text)


def test_authenticate_names_the_account_and_the_token() -> None:
    accounts = Accounts({"acme": ["tok-a", "tok-b"]}, ["loner"])
    assert accounts.authenticate("Bearer tok-b") == Caller("acme", token_fingerprint("tok-b"))
    assert accounts.authenticate("bearer  loner ") == Caller(
        token_fingerprint("loner"), token_fingerprint("loner")
    )
    assert accounts.authenticate("Bearer tok-c") is None
    assert accounts.authenticate("Basic tok-a") is None
    assert accounts.names == ["acme", token_fingerprint("loner")]
    assert accounts.tokens == ["tok-a", "tok-b", "loner"]
    assert accounts.primary == "acme"
    assert accounts.first_token("acme") == "tok-a"
    assert accounts.resolve(None) == "acme"
    with pytest.raises(ValueError, match="unknown account 'nope'"):
        accounts.resolve("nope")


@pytest.mark.parametrize(
    ("accounts", "tokens", "message"),
    [
        ({"acme": ["t"], "globex": ["t"]}, [], "given twice"),
        ({"acme": ["t"]}, ["t"], "given twice"),
        ({"acme": []}, [], "at least one token"),
        ({"": ["t"]}, [], "non-empty name"),
        ({"acme": [""]}, [], "non-empty tokens"),
        ({}, [], "at least one non-empty token"),
    ],
)
def test_bad_accounts_are_refused(accounts: dict[str, list[str]], tokens: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Accounts(accounts, tokens)


def test_tokens_of_one_account_share_its_window() -> None:
    state = make(FakeClock())
    assert state.handle_call(bearer("tok-a"), JSON, BODY).status == 200
    assert state.handle_call(bearer("tok-b"), JSON, BODY).status == 200
    assert state.handle_call(bearer("tok-a"), JSON, BODY).status == 200
    assert state.handle_call(bearer("tok-b"), JSON, BODY).status == 429  # the account's 4th request
    assert state.handle_call(bearer("tok-g"), JSON, BODY).status == 200  # another account
    stats = state.stats()
    assert stats["windows"] == stats["window"] == {"acme": 3, "globex": 1}
    assert stats["window_used"] == 3
    assert stats["account"] == "acme"
    assert stats["token_fingerprint"] == token_fingerprint("tok-a")
    records = state.journal.records()
    assert [r["account"] for r in records] == ["acme", "acme", "acme", "globex"]
    assert [r["token_fingerprint"] for r in records][:2] == [
        token_fingerprint("tok-a"),
        token_fingerprint("tok-b"),
    ]
    assert "tok-" not in json.dumps(stats) + json.dumps(records)


def test_tokens_given_alone_keep_a_window_each() -> None:
    state = SandboxState(tokens=["one", "two"], rate_limit=RateLimit(1, 60.0), clock=FakeClock())
    assert state.handle_call(bearer("one"), JSON, BODY).status == 200
    assert state.handle_call(bearer("one"), JSON, BODY).status == 429
    assert state.handle_call(bearer("two"), JSON, BODY).status == 200
    assert state.stats()["windows"] == {token_fingerprint("one"): 1, token_fingerprint("two"): 1}


def test_every_authenticated_request_counts_and_unauthenticated_ones_do_not() -> None:
    state = make(FakeClock())
    assert state.handle_call(bearer("tok-a"), JSON, b"{").status == 400
    assert state.handle_get_call(bearer("tok-b"), "0b6f4a52-6c1e-4f57-9d0e-3c4a2b1d9e8f").status == 404
    for _ in range(5):
        assert state.handle_get_call("Bearer wrong", "x").status == 401
        assert state.handle_call(None, JSON, BODY).status == 401
    assert state.stats()["window_used"] == 2
    assert state.stats()["gets"] == 6
    assert state.handle_call(bearer("tok-a"), JSON, BODY).status == 200
    assert state.handle_call(bearer("tok-a"), JSON, BODY).status == 429


def test_ratelimit_headers_count_down_and_match_the_refusal() -> None:
    clock = FakeClock()
    state = make(clock)
    seen = []
    for second in (0.0, 10.0, 25.5):
        clock.now = second
        reply = state.handle_call(bearer("tok-a"), JSON, BODY)
        seen.append((reply.headers["RateLimit-Remaining"], reply.headers["RateLimit-Reset"]))
        assert reply.headers["RateLimit-Limit"] == "3"
        assert reply.headers["RateLimit-Policy"] == "3;w=60"
    assert seen == [("2", "60"), ("1", "50"), ("0", "35")]  # the oldest entry (t=0) leaves at t=60
    clock.now = 59.5
    limited = state.handle_get_call(bearer("tok-b"), "nope")
    assert limited.status == 429
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert limited.headers["RateLimit-Reset"] == limited.headers["Retry-After"] == "1"
    clock.now = 60.0
    assert state.handle_call(bearer("tok-a"), JSON, BODY).headers["RateLimit-Remaining"] == "0"


@pytest.mark.parametrize("seed", range(5))
def test_headers_are_consistent_with_the_429_decision(seed: int) -> None:
    """After "Remaining: 0", requests are refused until the window has room, which is within the last
    second before Reset (whole seconds, rounded up); from Reset on the first one is allowed (random
    traffic on both tokens of one account, injected clock)."""
    rng = random.Random(seed)
    clock = FakeClock()
    state = make(clock, RateLimit(5, 10.0))
    promise: float | None = None  # when the last "Remaining: 0" said the window has room again
    statuses = []
    for _ in range(400):
        clock.now += rng.choice([0.0, 0.1, 0.7, 1.3, 3.0])
        reply = state.handle_call(bearer(rng.choice(["tok-a", "tok-b"])), JSON, BODY)
        statuses.append(reply.status)
        if promise is not None and clock.now >= promise:
            assert reply.status == 200
        elif promise is not None and clock.now < promise - 1:
            assert reply.status == 429
        headers = reply.headers
        if reply.status == 429:
            assert headers["RateLimit-Remaining"] == "0"
            assert headers["RateLimit-Reset"] == headers["Retry-After"]
        if headers["RateLimit-Remaining"] == "0":
            reset = clock.now + int(headers["RateLimit-Reset"])
            promise = reset if promise is None or reply.status == 200 else min(promise, reset)
        else:
            promise = None
    assert {200, 429} <= set(statuses)


def test_headers_switch_and_limit_off() -> None:
    clock = FakeClock()
    state = make(clock, ratelimit_headers=False)
    assert state.handle_call(bearer("tok-a"), JSON, BODY).headers == {}
    state.configure(ratelimit_headers=True, rate_limit=None)
    assert state.handle_call(bearer("tok-a"), JSON, BODY).headers == {}  # no limit, nothing to report
    assert state.config()["ratelimit_headers"] is True
