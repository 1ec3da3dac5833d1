"""The rate budget without a server: RateLimit-* headers, the header budget, wait budgets, ceilings."""

from __future__ import annotations

import math
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_alta.exceptions import AltaRateLimitError
from airflow_provider_alta.pacing import Pacer, lowered
from airflow_provider_alta.rate_budget import (
    MAX_RESET,
    MIN_ROOM_WAIT,
    PROBE_WAIT,
    HeaderBudget,
    RateLimitHeaders,
    WaitBudget,
    budget_for,
)


class Clock:
    """A clock the test moves by hand; ``sleep`` moves it, so waits are recorded and instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def parse(**headers: str) -> RateLimitHeaders:
    return RateLimitHeaders.parse({f"RateLimit-{k.title()}": v for k, v in headers.items()})


# --- reading the headers ------------------------------------------------------------------------


def test_readable_headers_are_read():
    stated = parse(limit="100", remaining="7", reset="12", policy="100;w=60")
    assert stated == RateLimitHeaders(remaining=7, reset=12.0, calls_per_minute=100.0, window=60.0)


def test_no_headers_say_nothing():
    assert RateLimitHeaders.parse({}) == RateLimitHeaders()
    assert RateLimitHeaders.parse(None) == RateLimitHeaders()


@pytest.mark.parametrize(
    ("headers", "rate", "window"),
    [
        ({"limit": "50"}, 50.0, 60.0),  # no policy: Alta's one-minute window
        ({"limit": "20", "policy": "20;w=1"}, 1200.0, 1.0),  # the limit is the policy's quota
        ({"policy": "1000;w=3600"}, 1000 / 60, 3600.0),
        ({"policy": "100;w=60, 1000;w=3600"}, 1000 / 60, 3600.0),  # the lowest rate of several
        ({"policy": '"default";q=30;w=60'}, 30.0, 60.0),  # the newer draft's named policy
        ({"policy": "10;w=99999"}, 10 * 60 / MAX_RESET, MAX_RESET),  # window clamped to an hour
        ({"limit": "100, 60"}, 60.0, 60.0),  # a repeated header: the lower one
    ],
)
def test_the_stated_rate_is_per_minute_and_the_lowest_wins(headers, rate, window):
    stated = parse(**headers)
    assert stated.calls_per_minute == pytest.approx(rate)
    assert stated.window == window


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("remaining", "-1"),
        ("remaining", "NaN"),
        ("remaining", "3.5"),
        ("remaining", "lots"),
        ("remaining", "9" * 40),  # absurdly long numbers are garbage, never a slow conversion
        ("reset", "NaN"),
        ("reset", "soon"),
        ("reset", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("reset", ""),
        ("limit", "0"),  # would stop every request: ignored (Remaining says when there is no room)
        ("limit", "-100"),
        ("limit", "1e3"),
        ("policy", "abc;w=60"),
        ("policy", "100;w=-5"),
        ("policy", "100;w=nan"),
        ("policy", "0;w=60"),
    ],
)
def test_garbage_is_ignored(name, value):
    assert parse(**{name: value}) == RateLimitHeaders()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("-5", 0.0), ("0", 0.0), ("2", 2.0), ("0.25", 0.25), ("99999999", MAX_RESET), ("inf", MAX_RESET),
     ("1e309", MAX_RESET), ("-inf", 0.0), ("3, 30", 30.0)],
)  # fmt: skip
def test_reset_is_clamped_to_an_hour_and_never_negative(value, seconds):
    assert parse(reset=value).reset == seconds


def test_repeated_remaining_takes_the_smallest():
    assert parse(remaining="5, 0, 9").remaining == 0


def test_a_misbehaving_header_mapping_reads_as_no_headers():
    class Broken(dict):
        def get(self, *args, **kwargs):
            raise RuntimeError("boom")

    assert RateLimitHeaders.parse(Broken()) == RateLimitHeaders()


header_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-1", "0", "1e-320", "100;w=0", ";;;", "=,=", " , "]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=300, deadline=None)
@given(limit=header_text, remaining=header_text, reset=header_text, policy=header_text)
def test_any_header_values_are_read_without_a_crash_and_within_bounds(limit, remaining, reset, policy):
    stated = parse(limit=limit, remaining=remaining, reset=reset, policy=policy)
    if stated.reset is not None:
        assert 0.0 <= stated.reset <= MAX_RESET
    if stated.remaining is not None:
        assert stated.remaining >= 0
    if stated.calls_per_minute is not None:
        assert math.isfinite(stated.calls_per_minute)
        assert stated.calls_per_minute > 0
    budget = HeaderBudget(clock=Clock())
    assert budget.reserve() == 0.0
    budget.settle({"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset})
    wait = budget.reserve()
    assert 0.0 <= wait <= MAX_RESET  # never a negative, infinite or NaN wait


# --- the header budget ----------------------------------------------------------------------------


def test_a_spent_window_is_waited_for_until_its_reset():
    clock = Clock()
    budget = HeaderBudget("k", clock=clock)
    assert budget.reserve() == 0.0
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "2"})
    assert budget.reserve() == 2.0  # nothing counted
    clock.now += 0.5
    assert budget.reserve() == 1.5
    clock.now += 1.5
    assert budget.reserve() == 0.0  # the window reset: room again


def test_after_a_reset_one_request_goes_first_and_its_answer_says_how_much_room_came():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "2"})
    clock.now += 2
    assert budget.reserve() == 0.0  # the probe
    assert budget.reserve() == PROBE_WAIT  # the others wait for its answer
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "1"})  # a rolling window: one slot
    assert budget.reserve() == 1.0
    clock.now += 1
    assert budget.reserve() == 0.0
    assert budget.reserve() == PROBE_WAIT
    budget.settle({"Content-Type": "application/json"})  # no warning any more: room for all
    assert [budget.reserve() for _ in range(5)] == [0.0] * 5


def test_a_probe_that_got_no_answer_lets_another_request_probe():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "2"})
    clock.now += 2
    assert budget.reserve() == 0.0
    assert budget.reserve() == PROBE_WAIT
    budget.settle(None)  # reset, timeout: no answer
    assert budget.reserve() == 0.0
    assert budget.reserve() == PROBE_WAIT


def test_requests_sent_since_the_answer_count_against_its_remaining():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "2", "RateLimit-Reset": "30"})
    assert budget.reserve() == 0.0
    assert budget.reserve() == 0.0  # two sent since the answer: the window is spent
    assert budget.reserve() == 30.0


def test_requests_in_flight_when_an_answer_arrives_count_against_it():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()  # A
    budget.reserve()  # B, in flight while A's answer arrives
    budget.settle({"RateLimit-Remaining": "1", "RateLimit-Reset": "10"})
    assert budget.reserve() == 10.0  # B may not have been counted by Alta yet: no room


def test_a_cancelled_reservation_is_not_counted():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "1", "RateLimit-Reset": "10"})
    assert budget.reserve() == 0.0
    budget.cancel()  # a gate failed: it was never sent
    assert budget.reserve() == 0.0


def test_remaining_without_reset_lasts_one_window():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "0"})
    assert budget.reserve() == 60.0
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Policy": "5;w=10"})
    assert budget.reserve() == 10.0


def test_a_tiny_or_zero_reset_never_makes_a_caller_spin():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "0"})
    assert budget.reserve() == 0.0  # reset now: room
    budget.settle({"RateLimit-Remaining": "0", "RateLimit-Reset": "0.000001"})
    assert budget.reserve() == MIN_ROOM_WAIT  # waits are never shorter than this


def test_answers_without_headers_change_nothing():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "1", "RateLimit-Reset": "10"})
    budget.reserve()
    budget.settle({"Content-Type": "application/json"})
    budget.settle(None)  # a request that got no answer
    assert budget.reserve() == 10.0


def test_a_lower_stated_limit_wins_and_a_higher_one_never_raises_the_rate():
    budget = HeaderBudget(clock=Clock())
    assert budget.effective_calls_per_minute(100) == 100
    budget.reserve()
    budget.settle({"RateLimit-Limit": "60"})
    assert budget.stated_calls_per_minute == 60.0
    assert budget.effective_calls_per_minute(100) == 60.0
    assert budget.effective_calls_per_minute(30) == 30  # the configured rate is lower: it stays
    budget.settle({"RateLimit-Limit": "500"})
    assert budget.effective_calls_per_minute(100) == 100
    budget.settle({"RateLimit-Remaining": "3"})  # no Limit this time: the last stated stays
    assert budget.stated_calls_per_minute == 500.0


def test_threads_never_take_more_than_the_remaining():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    budget.reserve()
    budget.settle({"RateLimit-Remaining": "25", "RateLimit-Reset": "60"})
    granted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(20):
            wait = budget.reserve()
            with lock:
                granted.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(0.0) == 25
    assert len(granted) == 160


def test_one_budget_per_key_and_process():
    assert budget_for("api.altahq.com:443 account=acme") is budget_for("api.altahq.com:443 account=acme")
    assert budget_for("api.altahq.com:443 account=acme") is not budget_for("api.altahq.com:443")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_its_own_budgets():
    parent = budget_for("fork-test-key")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got a fresh budget, then leave at once
        os.write(write, b"1" if budget_for("fork-test-key") is not parent else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)


# --- one operation's wait budget --------------------------------------------------------------------


def test_room_waits_are_counted_until_the_budget_is_spent():
    waits = WaitBudget(10.0, resends=5)
    waits.room(4.0, "call to +1202***0143")
    waits.room(6.0, "call to +1202***0143")
    with pytest.raises(AltaRateLimitError, match=r"no room for 0\.5 s more") as info:
        waits.room(0.5, "call to +1202***0143")
    assert info.value.retry_after == 0.5
    assert info.value.status is None
    assert "Nothing was sent" in str(info.value)


def test_429_waits_share_the_budget_and_the_resends_are_bounded():
    waits = WaitBudget(10.0, resends=2)
    waits.room(5.0, "read of call c1")
    with pytest.raises(AltaRateLimitError, match="waited 5 s of a 10 s budget"):
        waits.rate_limited(6.0, "read of call c1", "Nothing was changed.", None)
    waits = WaitBudget(100.0, resends=2)
    waits.rate_limited(1.0, "x", "Nothing was placed.", None)
    waits.rate_limited(1.0, "x", "Nothing was placed.", None)
    with pytest.raises(
        AltaRateLimitError, match=r"resent 2 of at most 2 times\)\. Nothing was placed\."
    ) as info:
        waits.rate_limited(1.0, "x", "Nothing was placed.", "TooManyRequests")
    assert (info.value.status, info.value.error) == (429, "TooManyRequests")


# --- ceilings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "rate"),
    [
        (None, 100.0),
        (60.0, 60.0),
        (500.0, 100.0),
        (0.0, 100.0),
        (-1.0, 100.0),
        (math.nan, 100.0),
        (math.inf, 100.0),
    ],
)
def test_a_ceiling_only_ever_lowers_the_rate(cap, rate):
    assert lowered(100.0, lambda: cap) == rate
    assert lowered(100.0, None) == 100.0


def test_the_pacer_spaces_at_the_lowered_rate_while_alta_states_it():
    clock = Clock()
    budget = HeaderBudget(clock=clock)
    pacer = Pacer(
        120, margin=0, clock=clock, sleep=clock.sleep, ceiling=lambda: budget.stated_calls_per_minute
    )
    pacer.acquire()
    pacer.acquire()
    assert clock.slept == [0.5]  # 120 a minute
    budget.reserve()
    budget.settle({"RateLimit-Limit": "30"})  # Alta says 30 a minute
    pacer.acquire()  # this slot was booked at the old rate
    pacer.acquire()
    assert clock.slept == [0.5, 0.5, 2.0]
