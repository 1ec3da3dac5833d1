"""The rolling window, driven by an injected clock."""

from __future__ import annotations

import pytest

from airflow_provider_alta.sandbox.ratelimit import RateLimit, RollingWindowLimiter


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/60", RateLimit(100, 60.0)),
        ("100/6", RateLimit(100, 6.0)),
        (" 5 / 0.5s ", RateLimit(5, 0.5)),
        ("3/2seconds", RateLimit(3, 2.0)),
        ("off", None),
        ("OFF", None),
        ("none", None),
        ("0", None),
        (None, None),
    ],
)
def test_parse(text: str | None, expected: RateLimit | None) -> None:
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["100", "a/b", "100/0", "0/60", "-1/60", "100/-5", "100/60/2"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit.parse(text)


def test_str_round_trips() -> None:
    assert str(RateLimit(100, 60.0)) == "100/60"
    assert RateLimit.parse(str(RateLimit(5, 0.5))) == RateLimit(5, 0.5)


def test_window_edge_is_exact() -> None:
    clock = FakeClock(0.0)
    limiter = RollingWindowLimiter(RateLimit(100, 60.0), clock)
    for _ in range(100):
        assert limiter.check("t").allowed
    clock.now = 59.999
    refused = limiter.check("t")
    assert not refused.allowed
    assert refused.retry_after == 1
    assert refused.used == 100
    clock.now = 60.0  # the first 100 expire exactly one window after they were allowed
    decision = limiter.check("t")
    assert decision.allowed
    assert decision.used == 1


def test_window_rolls_entry_by_entry() -> None:
    clock = FakeClock(0.0)
    limiter = RollingWindowLimiter(RateLimit(3, 10.0), clock)
    for now in (0.0, 4.0, 8.0):
        clock.now = now
        assert limiter.check("t").allowed
    clock.now = 9.0
    assert limiter.check("t").retry_after == 1  # the entry from t=0 leaves at t=10
    clock.now = 10.0
    assert limiter.check("t").allowed  # t=0 expired; window now holds 4, 8, 10
    clock.now = 13.5
    refused = limiter.check("t")
    assert not refused.allowed
    assert refused.retry_after == 1  # the entry from t=4 leaves at t=14: 0.5 s, rounded up
    clock.now = 14.0
    assert limiter.check("t").allowed


def test_retry_after_rounds_up_and_is_at_least_one() -> None:
    clock = FakeClock(0.0)
    limiter = RollingWindowLimiter(RateLimit(1, 60.0), clock)
    assert limiter.check("t").allowed
    clock.now = 0.5
    assert limiter.check("t").retry_after == 60  # 59.5 s rounded up
    clock.now = 59.9999
    assert limiter.check("t").retry_after == 1


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = FakeClock(0.0)
    limiter = RollingWindowLimiter(RateLimit(2, 5.0), clock)
    assert limiter.check("t").allowed
    assert limiter.check("t").allowed
    for step in range(1, 50):
        clock.now = step * 0.1
        assert not limiter.check("t").allowed
    clock.now = 5.0
    assert limiter.check("t").allowed


def test_keys_have_separate_windows() -> None:
    clock = FakeClock()
    limiter = RollingWindowLimiter(RateLimit(1, 60.0), clock)
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed
    assert limiter.usage() == {"a": 1, "b": 1}


def test_usage_drops_expired_entries() -> None:
    clock = FakeClock(0.0)
    limiter = RollingWindowLimiter(RateLimit(5, 10.0), clock)
    limiter.check("a")
    clock.now = 5.0
    limiter.check("a")
    assert limiter.usage() == {"a": 2}
    clock.now = 10.0
    assert limiter.usage() == {"a": 1}


def test_off_allows_everything_and_counts_nothing() -> None:
    limiter = RollingWindowLimiter(None, FakeClock())
    assert all(limiter.check("t").allowed for _ in range(10_000))
    assert limiter.usage() == {}


def test_set_limit_and_reset() -> None:
    clock = FakeClock()
    limiter = RollingWindowLimiter(RateLimit(1, 60.0), clock)
    assert limiter.check("t").allowed
    assert not limiter.check("t").allowed
    limiter.set_limit(RateLimit(2, 60.0))
    assert limiter.limit == RateLimit(2, 60.0)
    assert limiter.check("t").allowed
    assert not limiter.check("t").allowed
    limiter.reset()
    assert limiter.check("t").allowed


def test_decisions_carry_remaining_and_reset() -> None:
    clock = FakeClock(0.0)
    limit = RateLimit(3, 10.0)
    limiter = RollingWindowLimiter(limit, clock)
    first = limiter.check("t")
    assert (first.limit, first.used, first.remaining, first.reset) == (limit, 1, 2, 10)
    clock.now = 4.5
    second = limiter.check("t")
    assert (second.remaining, second.reset) == (1, 6)  # the t=0 entry leaves at 10: 5.5 s, rounded up
    third = limiter.check("t")
    assert (third.remaining, third.reset) == (0, 6)
    refused = limiter.check("t")
    assert (refused.allowed, refused.remaining, refused.reset, refused.retry_after) == (False, 0, 6, 6)
    off = RollingWindowLimiter(None, clock).check("t")
    assert (off.allowed, off.limit, off.remaining) == (True, None, 0)


def test_spend_counts_what_the_window_has_room_for() -> None:
    clock = FakeClock(0.0)
    limiter = RollingWindowLimiter(RateLimit(5, 10.0), clock)
    assert limiter.spend("t", 3) == (3, 0)
    assert limiter.spend("t", 4) == (2, 2)
    assert limiter.spend("t", 0) == (0, 0)
    assert not limiter.check("t").allowed
    clock.now = 10.0
    assert limiter.usage() == {"t": 0}
    assert limiter.check("t").remaining == 4
    with pytest.raises(ValueError, match="requests"):
        limiter.spend("t", -1)
    assert RollingWindowLimiter(None, clock).spend("t", 7) == (7, 0)
