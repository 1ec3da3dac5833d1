"""Unit tests of the pure parts of the client; its HTTP behaviour is tested over loopback."""

from __future__ import annotations

import email.utils
import math

import pytest

from airflow_provider_alta.client import (
    DEFAULT_RATE_LIMIT_WAIT,
    MAX_RATE_LIMIT_WAIT,
    MIN_RATE_LIMIT_WAIT,
    retry_after_seconds,
)


def test_retry_after_header_seconds_wins():
    assert retry_after_seconds({"Retry-After": "7"}, "Please retry after 60 seconds.") == 7.0


def test_retry_after_http_date():
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"Retry-After": when}, None, now=1_000_000) == pytest.approx(30.0)
    # A date in the past means "now", which is still waited out for the minimum.
    assert retry_after_seconds({"Retry-After": when}, None, now=2_000_000) == MIN_RATE_LIMIT_WAIT


def test_retry_after_from_message_then_default():
    assert retry_after_seconds({}, "Rate limit exceeded. Please retry after 12 seconds.") == 12.0
    assert retry_after_seconds({"Retry-After": "garbage"}, "retry after 1.5 second") == 1.5
    assert retry_after_seconds({}, "slow down") == DEFAULT_RATE_LIMIT_WAIT
    assert retry_after_seconds({}, None) == 60.0


@pytest.mark.parametrize(
    ("header", "message", "wait"),
    [
        ("0", None, MIN_RATE_LIMIT_WAIT),
        ("0.0001", None, MIN_RATE_LIMIT_WAIT),
        ("-5", None, DEFAULT_RATE_LIMIT_WAIT),  # not a number of seconds: as if absent
        ("-5", "retry after 3 seconds", 3.0),
        ("nan", None, DEFAULT_RATE_LIMIT_WAIT),
        ("NaN", "retry after 0 seconds", MIN_RATE_LIMIT_WAIT),
        ("inf", None, MAX_RATE_LIMIT_WAIT),
        ("1e309", None, MAX_RATE_LIMIT_WAIT),
        ("-inf", None, DEFAULT_RATE_LIMIT_WAIT),
        ("99999999999", None, MAX_RATE_LIMIT_WAIT),
        (None, "Please retry after 0 seconds.", MIN_RATE_LIMIT_WAIT),
        (None, "retry after 1e400 seconds", DEFAULT_RATE_LIMIT_WAIT),
        ("Thu, 01 Jan 1970 00:00:00 GMT", None, MIN_RATE_LIMIT_WAIT),
        ("Fri, 31 Dec 9999 23:59:59 GMT", None, MAX_RATE_LIMIT_WAIT),
    ],
)
def test_every_wait_is_finite_and_bounded(header, message, wait):
    headers = {} if header is None else {"Retry-After": header}
    got = retry_after_seconds(headers, message)
    assert math.isfinite(got)
    assert got == wait
