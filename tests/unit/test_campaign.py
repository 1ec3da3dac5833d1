"""The outcome table on the error classes, and the pure campaign core (options, summary, verdict)."""

from __future__ import annotations

import pytest

from airflow_provider_alta import bulk, exceptions
from airflow_provider_alta.campaign import (
    FAILED,
    RESUMABLE,
    SUCCEEDED,
    CampaignOptions,
    summarize,
)
from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaAuthenticationError,
    AltaConfigurationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)

ERRORS = [
    AltaAPIError("x"),
    AltaConfigurationError("x"),
    AltaValidationError("x"),
    AltaAuthenticationError("x", status=401),
    AltaRateLimitError("x", retry_after=5),
    AltaConnectionError("x"),
    AltaAmbiguousOutcomeError("x"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_outcome_is_a_bulk_state_and_consistent(error):
    assert error.batch_state in bulk.STATES
    assert error.batch_state in bulk.FAILURES
    if error.placed is None:  # maybe placed: never sent again, by any path
        assert error.batch_state == exceptions.AMBIGUOUS
        assert not error.task_retry
        assert error.fails_task
    if error.task_retry:  # a later try may help only when nothing was placed
        assert error.placed is False
        assert error.batch_state == exceptions.NOT_REACHED
    if error.stops_batch:
        assert error.stop_reason


def test_options_are_checked():
    with pytest.raises(ValueError, match="outside_calling_hours must be 'defer' or 'skip'"):
        CampaignOptions(outside_calling_hours="fail")
    with pytest.raises(ValueError, match="xcom_outcomes must be"):
        CampaignOptions(xcom_outcomes="some")


def _result(**counts: int) -> bulk.PassResult:
    result = bulk.PassResult()
    n = 0
    for state, count in counts.items():
        for _ in range(count):
            result.record(str(n), state)
            n += 1
    return result


def test_summarize_returns_the_verdict_instead_of_raising():
    summary, verdict = summarize(_result(called=2), CampaignOptions())
    assert verdict.kind == SUCCEEDED
    assert verdict.succeeded
    assert summary["counts"] == {"called": 2}
    assert summary["total"] == 2

    _, verdict = summarize(_result(called=1, invalid=1), CampaignOptions(max_failures=0))
    assert verdict.kind == FAILED
    assert "max_failures=0" in verdict.message

    result = _result(called=1)
    result.pending["9"] = object()
    summary, verdict = summarize(result, CampaignOptions(), stop_reason="on_kill")
    assert verdict.kind == RESUMABLE
    assert summary["stopped"] == "asked to stop (on_kill)"
    assert result.outcomes["9"]["state"] == bulk.NOT_REACHED


def test_waiting_records_are_outside_hours_when_the_campaign_ran_to_its_end():
    result = _result()
    result.pending["0"] = object()
    summary, verdict = summarize(result, CampaignOptions(xcom_outcomes="problems"))
    assert verdict.succeeded
    expected = {"state": bulk.OUTSIDE_HOURS, "reason": "still outside calling hours"}
    assert summary["outcomes"] == {"0": expected}
