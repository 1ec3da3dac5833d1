"""Outside clients spending an account's window, driven by an injected clock (no HTTP)."""

from __future__ import annotations

import json
import threading

import pytest

from airflow_provider_alta.sandbox.core import SandboxState
from airflow_provider_alta.sandbox.outside import OutsideClients
from airflow_provider_alta.sandbox.ratelimit import RateLimit, RollingWindowLimiter

JSON = "application/json"
BODY = json.dumps({"assistantId": "a", "name": "n", "phoneNumber": "+12025550143"}).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock, limit: str = "10/60") -> SandboxState:
    return SandboxState(
        accounts={"acme": ["tok-a"], "globex": ["tok-g"]}, rate_limit=RateLimit.parse(limit), clock=clock
    )


def test_one_shot_spend_fills_the_window() -> None:
    state = make(FakeClock())
    assert state.spend(4) == {"account": "acme", "requests": 4, "counted": 4, "refused": 0}
    reply = state.handle_call("Bearer tok-a", JSON, BODY)
    assert reply.headers["RateLimit-Remaining"] == "5"
    assert state.spend(9, "acme") == {"account": "acme", "requests": 9, "counted": 5, "refused": 4}
    assert state.handle_call("Bearer tok-a", JSON, BODY).status == 429
    assert state.handle_call("Bearer tok-g", JSON, BODY).status == 200  # globex's window is its own
    stats = state.stats()
    assert stats["windows"] == {"acme": 10, "globex": 1}
    assert stats["outside"] == {"acme": {"per_minute": 0.0, "sent": 13, "counted": 9, "refused": 4}}
    assert stats["requests"] == 0  # the outside client's requests are not the sandbox's HTTP requests


def test_a_background_spender_spreads_its_requests_evenly() -> None:
    clock = FakeClock()
    state = make(clock, "100/60")
    try:
        state.set_outside_rate(6, "globex")  # one request every 10 s of the clock, the first at once
        assert state.stats()["windows"]["globex"] == 1
        for now, expected in [(9.999, 1), (10.0, 2), (35.0, 4), (59.0, 6)]:
            clock.now = now
            state.outside.tick()
            assert state.stats()["windows"]["globex"] == expected, now
        clock.now = 60.0  # the first one leaves the window as the 7th arrives
        assert state.stats()["windows"]["globex"] == 6
        assert state.stats()["outside"]["globex"] == {
            "per_minute": 6.0,
            "sent": 7,
            "counted": 7,
            "refused": 0,
        }
        answer = state.set_outside_rate(0, "globex")
        assert answer == {"account": "globex", "per_minute": 0.0, "sent": 7, "counted": 7, "refused": 0}
        clock.now = 600.0
        assert state.stats()["outside"]["globex"]["sent"] == 7  # stopped
        assert state.stats()["windows"] == {"acme": 0, "globex": 0}
    finally:
        state.close()


def test_a_spender_faster_than_the_limit_is_refused_like_any_client() -> None:
    clock = FakeClock()
    state = make(clock, "10/60")
    try:
        state.set_outside_rate(30)  # the first account
        clock.now = 30.0
        stats = state.stats()
        assert stats["windows"]["acme"] == 10
        assert stats["outside"]["acme"]["sent"] == 16
        assert stats["outside"]["acme"]["refused"] == 6
        limited = state.handle_call("Bearer tok-a", JSON, BODY)
        assert limited.status == 429
    finally:
        state.close()


def test_reset_stops_the_spenders_and_close_stops_the_thread() -> None:
    clock = FakeClock()
    state = make(clock)
    state.set_outside_rate(60)
    state.reset()
    clock.now = 120.0
    assert state.stats()["outside"] == {}
    assert state.stats()["window_used"] == 0
    state.set_outside_rate(60)
    assert any(thread.name == "alta-sandbox-outside" for thread in threading.enumerate())
    state.close()
    assert not any(thread.name == "alta-sandbox-outside" for thread in threading.enumerate())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.spend(-1), "requests"),
        (lambda s: s.spend(1.5), "requests"),
        (lambda s: s.spend(True), "requests"),
        (lambda s: s.spend(10**7), "requests"),
        (lambda s: s.spend(1, "nobody"), "unknown account 'nobody'"),
        (lambda s: s.set_outside_rate(-1), "per_minute"),
        (lambda s: s.set_outside_rate(float("inf")), "per_minute"),
        (lambda s: s.set_outside_rate(float("nan")), "per_minute"),
        (lambda s: s.set_outside_rate("5"), "per_minute"),
        (lambda s: s.set_outside_rate(5, "nobody"), "unknown account"),
    ],
)
def test_bad_outside_settings_are_refused(call, message) -> None:
    state = make(FakeClock())
    with pytest.raises(ValueError, match=message):
        call(state)
    assert state.stats()["outside"] == {}


def test_limit_off_counts_nothing_but_reports_what_was_sent() -> None:
    clock = FakeClock()
    outside = OutsideClients(RollingWindowLimiter(None, clock).spend, clock, lambda: 60.0)
    assert outside.spend("acme", 3) == {"account": "acme", "requests": 3, "counted": 3, "refused": 0}
    outside.set_rate("acme", 120)  # the limit is off: per minute of 60 s
    clock.now = 1.0
    outside.tick()
    assert outside.stats()["acme"]["sent"] == 3 + 3
    outside.close()
