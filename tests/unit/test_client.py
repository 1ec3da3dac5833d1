"""Unit tests of the pure parts of the client; its HTTP behaviour is tested over loopback."""

from __future__ import annotations

import email.utils

import pytest

from airflow_provider_alta.client import DEFAULT_RATE_LIMIT_WAIT, retry_after_seconds


def test_retry_after_header_seconds_wins():
    assert retry_after_seconds({"Retry-After": "7"}, "Please retry after 60 seconds.") == 7.0


def test_retry_after_http_date():
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"Retry-After": when}, None, now=1_000_000) == pytest.approx(30.0)
    assert retry_after_seconds({"Retry-After": when}, None, now=2_000_000) == 0.0


def test_retry_after_from_message_then_default():
    assert retry_after_seconds({}, "Rate limit exceeded. Please retry after 12 seconds.") == 12.0
    assert retry_after_seconds({"Retry-After": "garbage"}, "retry after 1.5 second") == 1.5
    assert retry_after_seconds({}, "slow down") == DEFAULT_RATE_LIMIT_WAIT
    assert retry_after_seconds({}, None) == 60.0
