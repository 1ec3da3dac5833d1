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


# --- interim answers, the answer deadline, the body limit ----------------------------------------


def test_an_interim_status_that_reaches_the_client_is_ambiguous_never_a_rejection():
    from airflow_provider_alta.answers import error_for_call
    from airflow_provider_alta.exceptions import AltaAmbiguousOutcomeError
    from airflow_provider_alta.transport import Answer

    for status in (100, 101, 102, 103, 199):
        error = error_for_call(Answer(status, {}, None, b""))
        assert isinstance(error, AltaAmbiguousOutcomeError), status
        assert "may have been placed" in error.message
        assert error.status == status


@pytest.mark.parametrize(
    ("status", "interim"), [(100, True), (102, True), (103, True), (101, False), (200, False)]
)
def test_which_statuses_are_skipped_as_interim(status, interim):
    from airflow_provider_alta.transport import is_interim

    assert is_interim(status) is interim


def test_answers_are_bounded_by_default():
    from airflow_provider_alta.client import ANSWER_DEADLINE_FACTOR, MAX_ANSWER_BYTES, ResendPolicy

    policy = ResendPolicy()
    assert policy.answer_deadline is None  # then ANSWER_DEADLINE_FACTOR read timeouts
    assert ANSWER_DEADLINE_FACTOR == 2.0
    assert policy.max_answer_bytes == MAX_ANSWER_BYTES == 1024 * 1024


def test_the_deadline_reader_gives_up_once_the_deadline_passed_and_restores_the_timeout():
    import socket
    import time

    from airflow_provider_alta.transport import _DeadlineReader

    left, right = socket.socketpair()
    with left, right:
        left.settimeout(7.0)
        right.sendall(b"ab")
        reader = _DeadlineReader(left, time.monotonic() + 60)
        buffer = bytearray(1)
        assert reader.readinto(buffer) == 1
        assert left.gettimeout() == 7.0  # the connection's own timeout is left as it was
        expired = _DeadlineReader(left, time.monotonic() - 1)
        with pytest.raises(TimeoutError, match="answer deadline"):
            expired.readinto(buffer)
        reader.close()
        expired.close()
        assert left.fileno() != -1  # closing a reader never closes the connection


def test_the_deadline_shortens_a_read_that_would_wait_for_the_read_timeout():
    import socket
    import time

    from airflow_provider_alta.transport import _DeadlineReader

    left, right = socket.socketpair()
    with left, right:
        left.settimeout(600.0)  # a read timeout that would never fire in this test
        reader = _DeadlineReader(left, time.monotonic() + 0.2)
        with pytest.raises(TimeoutError):
            reader.readinto(bytearray(1))  # nothing is ever sent: only the deadline can end this
        assert left.gettimeout() == 600.0
        reader.close()


@pytest.mark.parametrize(
    "policy",
    [
        {"answer_deadline": 0},
        {"answer_deadline": -1.0},
        {"answer_deadline": math.nan},
        {"answer_deadline": math.inf},
        {"max_answer_bytes": 0},
        {"read_retries": -1},
    ],
)
def test_answer_bounds_must_be_usable(policy):
    from airflow_provider_alta.client import ResendPolicy

    with pytest.raises(ValueError, match=next(iter(policy))):
        ResendPolicy(**policy)


# --- what a read's answer means, and the new outcomes ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, "AltaAuthenticationError"),
        (404, "AltaNotFoundError"),
        (403, "AltaAPIError"),
        (418, "AltaAPIError"),
    ],
)
def test_a_read_answer_maps_to_one_error(status, error):
    from airflow_provider_alta.answers import error_for_read
    from airflow_provider_alta.transport import Answer

    body = {"error": "E", "message": "about +12025550143"}
    got = error_for_read(Answer(status, {}, body, b"{}"), "read of call c1")
    assert type(got).__name__ == error
    assert (got.status, got.error) == (status, "E")
    assert "5550143" not in str(got)  # masked


@pytest.mark.parametrize("name", ["AltaRateBudgetError", "AltaNotFoundError", "AltaReadError"])
def test_the_new_outcomes_follow_the_table_rules(name):
    from airflow_provider_alta import bulk, exceptions

    error = getattr(exceptions, name)("x")
    assert error.placed is False
    assert error.batch_state in bulk.FAILURES
    if error.task_retry:
        assert error.batch_state == exceptions.NOT_REACHED
        assert not error.fails_task
    if error.stops_batch:
        assert error.stop_reason
    assert name in exceptions.__doc__  # listed in the module's table


def test_a_rate_budget_failure_is_a_retryable_not_reached_stop():
    from airflow_provider_alta.exceptions import NOT_REACHED, AltaRateBudgetError

    error = AltaRateBudgetError("shared rate limiter: Redis at redis://127.0.0.1:1/0 failed")
    assert (error.task_retry, error.fails_task, error.batch_state, error.stops_batch) == (
        True,
        False,
        NOT_REACHED,
        True,
    )
    assert "rate limiter failed" in error.stop_reason


def test_the_client_module_keeps_its_public_names():
    """Moved to rate_budget / transport; still importable from client (the fault suite uses them)."""
    from airflow_provider_alta import client, rate_budget, transport

    assert client.MIN_RATE_LIMIT_WAIT is rate_budget.MIN_RATE_LIMIT_WAIT
    assert client.retry_after_seconds is rate_budget.retry_after_seconds
    assert client.never_sent is transport.never_sent
    assert client.MAX_ANSWER_BYTES == transport.MAX_ANSWER_BYTES
