"""The outcome table on the error classes, and the pure campaign core (options, summary, verdict)."""

from __future__ import annotations

import pytest

from airflow_provider_alta import bulk, exceptions
from airflow_provider_alta.campaign import (
    FAILED,
    RESUMABLE,
    SUCCEEDED,
    CampaignOptions,
    describe_wait,
    duration,
    first_problems,
    progress_line,
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


def test_by_default_a_campaign_fails_when_every_record_tried_failed_even_a_small_one():
    _, verdict = summarize(_result(invalid=2, skipped_suppressed=3), CampaignOptions())
    assert verdict.kind == FAILED
    assert "every record tried failed (2/2" in verdict.message
    assert "max_failure_ratio=0.5, None disables" in verdict.message


def test_by_default_more_than_half_failed_fails_from_ten_records_tried():
    _, verdict = summarize(_result(called=4, invalid=6), CampaignOptions())
    assert verdict.kind == FAILED
    assert "6/10 records tried failed" in verdict.message
    assert summarize(_result(called=5, invalid=5), CampaignOptions())[1].succeeded  # half is not more
    assert summarize(_result(called=3, invalid=6), CampaignOptions())[1].succeeded  # 9 tried: too few


def test_skipped_records_are_neither_failures_nor_tried():
    skipped = {state: 5 for state in ("skipped_suppressed", "skipped_duplicate", "skipped_outside_hours")}
    skipped |= {"skipped_recently_called": 5, "opted_out": 5}
    _, verdict = summarize(_result(called=1, **skipped), CampaignOptions())
    assert verdict.succeeded
    _, verdict = summarize(_result(called=4, rejected=6, **skipped), CampaignOptions())
    assert verdict.kind == FAILED
    assert "6/10 records tried failed" in verdict.message


def test_thresholds_can_be_relaxed_or_disabled():
    result = _result(invalid=20)
    assert summarize(result, CampaignOptions(max_failure_ratio=None))[1].succeeded
    assert summarize(_result(invalid=20), CampaignOptions(max_failure_ratio=1.0))[1].succeeded
    relaxed = CampaignOptions(max_failure_ratio=0.2, failure_ratio_min_records=1)
    assert summarize(_result(called=3, invalid=1), relaxed)[1].kind == FAILED
    for bad in ({"max_failure_ratio": 1.5}, {"max_failure_ratio": -0.1}, {"max_failures": -1}):
        with pytest.raises(ValueError, match="must be"):
            CampaignOptions(**bad)
    with pytest.raises(ValueError, match="failure_ratio_min_records"):
        CampaignOptions(failure_ratio_min_records=0)


def test_a_failure_names_the_first_problems_with_their_keys_masked():
    result = bulk.PassResult()
    result.record("L1", bulk.CALLED)
    for i in range(12):
        result.record(f"ada{i}@example.com", bulk.INVALID, f"phone_number: +120255501{i:02d} is not a number")
    _, verdict = summarize(result, CampaignOptions())
    problems = first_problems(result)
    assert len(problems) == 5
    assert problems[0] == "a***@example.com: invalid (phone_number: +1202***0100 is not a number)"
    assert problems[0] in verdict.message
    assert "2025550100" not in verdict.message
    assert "example.com" in verdict.message
    assert "ada0@" not in verdict.message


def test_the_key_column_keys_outcomes_and_stays_out_of_the_payload():
    options = CampaignOptions(record_key="lead_id")
    record = {"lead_id": "L7", "name": "Ada", "phone_number": "+12025550143"}
    assert options.payload_record(record, None) == {"name": "Ada", "phone_number": "+12025550143"}
    assert options.key_of(0, record) == "L7"
    assert options.payload_record(record, {"lead_id": "data.lead"}) == record  # mapped: it is data too
    assert CampaignOptions(record_key="phone_number").payload_record(record, None) == record
    assert CampaignOptions(record_key="phoneNumber").payload_record({"phoneNumber": "x"}, None) == {
        "phoneNumber": "x"
    }
    assert options.payload_record(["odd"], None) == ["odd"]


def test_a_wait_says_when_it_resumes_in_local_time_and_utc_and_how_to_run_now():
    import pendulum

    now = pendulum.datetime(2026, 11, 24, 12, 0, tz="UTC")
    result = _result(called=1)
    opens = pendulum.datetime(2026, 11, 24, 8, 0, tz="America/New_York")
    result.pending.update({"a": opens, "b": opens})
    line = describe_wait(result, opens, now)
    assert "2 record(s) wait for their calling window" in line
    assert "2026-11-24 08:00 America/New_York (13:00 UTC) (in 1 h 00 min)" in line
    assert 'calling_hours="off"' in line
    assert 'outside_calling_hours="skip"' in line
    rate = describe_wait(_result(), now.add(minutes=3), now)
    assert rate == "Alta's rate limit: resuming at 2026-11-24 12:03 UTC (in 3 min)"


def test_the_progress_line_has_a_total_and_an_eta_once_calls_were_sent():
    result = _result(called=10)
    result.sent, result.total, result.started = 10, 40, 0.0
    assert progress_line(result, 60.0) == "10/40 done, 10.0 calls/min, ETA 3 min"
    result.total = None
    assert progress_line(result, 60.0) == "10 done, 10.0 calls/min"
    assert [duration(s) for s in (5, 600, 3 * 3600 + 300)] == ["5 s", "10 min", "3 h 05 min"]


def test_a_plans_total_feeds_a_source_without_len_and_a_sized_source_wins():
    def plan(total):
        return bulk.Plan(
            prepare=lambda r: r, send=lambda c: {}, progress=bulk.MemoryProgress(), dry_run=True, total=total
        )

    assert bulk.run_pass(iter([]), plan(25)).total == 25
    assert bulk.run_pass([], plan(25)).total == 0
