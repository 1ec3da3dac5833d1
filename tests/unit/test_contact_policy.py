"""Contact policies ("1/7d", "3/24h"): parsing, and when the next call is allowed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_alta.contact_policy import MAX_CALLS, ContactPolicy, parse_contact_policy

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("rule", "calls", "window"),
    [
        ("1/7d", 1, timedelta(days=7)),
        ("3/24h", 3, timedelta(hours=24)),
        ("2/30m", 2, timedelta(minutes=30)),
        ("5/90s", 5, timedelta(seconds=90)),
        (" 1 / 7d ", 1, timedelta(days=7)),
    ],
)
def test_parse(rule, calls, window):
    assert parse_contact_policy(rule) == ContactPolicy(calls, window)


@pytest.mark.parametrize(
    "rule", ["", "1", "7d", "0/7d", "1/0d", "1/7w", "1/7", "-1/7d", "x/7d", "1/7d/2", f"{MAX_CALLS + 1}/1d"]
)
def test_a_bad_rule_is_a_value_error_naming_it(rule):
    with pytest.raises(ValueError, match="contact policy") as caught:
        ContactPolicy.parse(rule)
    assert repr(rule) in str(caught.value) or str(MAX_CALLS) in str(caught.value)


def test_a_non_string_rule_is_a_value_error():
    with pytest.raises(ValueError, match="contact policy 7"):
        ContactPolicy.parse(7)  # type: ignore[arg-type]


def test_a_policy_parses_to_itself_and_prints_as_its_rule():
    policy = ContactPolicy.parse("3/24h")
    assert ContactPolicy.parse(policy) is policy
    assert str(policy) == "3/1d"
    assert str(ContactPolicy.parse("1/90s")) == "1/90s"
    assert ContactPolicy.parse(str(ContactPolicy.parse("2/36h"))) == ContactPolicy.parse("2/36h")


def test_no_history_allows_a_call():
    assert ContactPolicy.parse("1/7d").next_allowed([], NOW) is None


def test_one_call_in_the_window_blocks_until_it_leaves_it():
    policy = ContactPolicy.parse("1/7d")
    called = NOW - timedelta(days=2)
    assert policy.next_allowed([called], NOW) == called + timedelta(days=7)
    # exactly one window later the call no longer counts
    assert policy.next_allowed([called], called + timedelta(days=7)) is None
    assert policy.next_allowed([called], called + timedelta(days=7) - timedelta(microseconds=1)) is not None


def test_three_per_day_counts_only_calls_inside_the_window():
    policy = ContactPolicy.parse("3/24h")
    calls = [NOW - timedelta(hours=h) for h in (30, 20, 5, 1)]  # the 30 h one is outside
    # three inside: the oldest of them (20 h ago) leaves first
    assert policy.next_allowed(calls, NOW) == NOW - timedelta(hours=20) + timedelta(hours=24)
    assert policy.next_allowed(calls[:3], NOW) is None


def test_more_calls_than_allowed_wait_until_enough_have_left():
    policy = ContactPolicy.parse("2/10h")
    calls = [NOW - timedelta(hours=h) for h in (9, 8, 7, 1)]  # four in the window, two allowed
    # one more is allowed once three have left: the one 7 h ago leaves in 3 h
    assert policy.next_allowed(reversed(calls), NOW) == NOW + timedelta(hours=3)


def test_naive_datetimes_are_refused():
    policy = ContactPolicy.parse("1/7d")
    with pytest.raises(ValueError, match="timezone-aware"):
        policy.next_allowed([], datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        policy.next_allowed([datetime(2026, 1, 1)], NOW)


def test_a_policy_must_allow_at_least_one_call_in_a_positive_window():
    with pytest.raises(ValueError, match="max_calls"):
        ContactPolicy(0, timedelta(days=1))
    with pytest.raises(ValueError, match="window"):
        ContactPolicy(1, timedelta(0))
