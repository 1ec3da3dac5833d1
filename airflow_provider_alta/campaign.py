"""A campaign's options and its verdict. Pure Python: no Airflow.

:class:`CampaignOptions` holds what a campaign decides besides the calls themselves (dedupe,
suppression, record keys, which outcomes to report, failure thresholds) and turns them into the
pieces of a :class:`~airflow_provider_alta.bulk.Plan`. :func:`summarize` closes a campaign: it
accounts for the records still waiting, builds the summary and returns the :class:`Verdict`, which
the batch operator maps to Airflow's outcome instead of this module raising.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta.bulk import CALLED, DRY_RUN, FAILURES, NOT_REACHED, OUTSIDE_HOURS, PassResult
from airflow_provider_alta.masking import mask_phone
from airflow_provider_alta.payload import AssistantCall

OUTSIDE_CALLING_HOURS = ("defer", "skip")
XCOM_OUTCOMES = ("all", "problems", "none")

#: Verdict kinds: the campaign succeeded; it ended early and a retry resumes it; it failed for good.
SUCCEEDED = "succeeded"
RESUMABLE = "resumable"
FAILED = "failed"


@dataclass(frozen=True)
class CampaignOptions:
    """How a campaign treats its records; see ``BatchTriggerAssistantCallsOperator`` for each option."""

    dedupe_key: str | Callable[[Mapping[str, Any]], Hashable] | None = "phone_number"
    suppression: Collection[str] | Callable[[Mapping[str, Any]], bool] | None = None
    record_key: str | None = None
    outside_calling_hours: str = "defer"
    max_failures: int | None = None
    max_failure_ratio: float | None = None
    xcom_outcomes: str = "all"
    include_phone: bool = False
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.outside_calling_hours not in OUTSIDE_CALLING_HOURS:
            raise ValueError(
                f"outside_calling_hours must be 'defer' or 'skip', not {self.outside_calling_hours!r}"
            )
        if self.xcom_outcomes not in XCOM_OUTCOMES:
            raise ValueError(f"xcom_outcomes must be 'all', 'problems' or 'none', not {self.xcom_outcomes!r}")

    @property
    def wait_for_window(self) -> bool:
        """Whether a record outside its calling window waits for it (else it is skipped)."""
        return self.outside_calling_hours == "defer"

    def dedupe(self) -> Callable[[Any, AssistantCall], Hashable] | None:
        """The dedupe key of a record and its call, or ``None`` to keep duplicates."""
        key = self.dedupe_key
        if key is None:
            return None
        if callable(key):
            return lambda record, _call: key(record)
        if key in ("phone_number", "phoneNumber"):
            return lambda _record, call: call.phone_number
        return lambda record, call: record.get(key, getattr(call, key, None))

    def suppressed(self, region: str | None) -> Callable[[Any, AssistantCall], bool] | None:
        """Whether a record is on the suppression list (numbers normalised with ``region``)."""
        suppression = self.suppression
        if suppression is None:
            return None
        if callable(suppression):
            return lambda record, _call: bool(suppression(record))
        from airflow_provider_alta.phone import PhoneNumberError, normalize_phone

        numbers = set()
        for number in suppression:
            try:
                numbers.add(normalize_phone(str(number), region, allow_extension=True))
            except PhoneNumberError:
                numbers.add(str(number))
        return lambda _record, call: call.phone_number in numbers

    def key_of(self, index: int, record: Any) -> str:
        """The key of a record's outcome: its ``record_key`` field, else its index."""
        if self.record_key and isinstance(record, Mapping) and record.get(self.record_key) is not None:
            return str(record[self.record_key])
        return str(index)

    def show_phone(self, number: str) -> str:
        """A record's number as its outcome shows it: masked unless ``include_phone``."""
        return number if self.include_phone else mask_phone(number)

    def outcomes_for_xcom(self, result: PassResult) -> dict[str, dict[str, Any]]:
        """The per-record outcomes the summary carries, as ``xcom_outcomes`` selects."""
        if self.xcom_outcomes == "none":
            return {}
        if self.xcom_outcomes == "problems":
            return {k: v for k, v in result.outcomes.items() if v["state"] not in (CALLED, DRY_RUN)}
        return result.outcomes

    def too_many(self, failures: int, total: int) -> str | None:
        """Why the failures break a threshold, or ``None`` when they do not."""
        if self.max_failures is not None and failures > self.max_failures:
            return (
                f"{failures} records failed (invalid, rejected or ambiguous), "
                f"more than max_failures={self.max_failures}"
            )
        if self.max_failure_ratio is not None and total and failures / total > self.max_failure_ratio:
            return f"{failures}/{total} records failed, more than max_failure_ratio={self.max_failure_ratio}"
        return None


@dataclass(frozen=True)
class Verdict:
    """How a campaign ended: :data:`SUCCEEDED`, :data:`RESUMABLE` (a retry resumes it) or :data:`FAILED`."""

    kind: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.kind == SUCCEEDED


def next_pass(result: PassResult, now: Any) -> tuple[float, Any]:
    """Seconds until another pass can make progress, and when (``None``: no record is waiting).

    ``now`` is an aware ``pendulum`` moment; the records' window openings are compared with it.
    """
    moments = [m for m in result.pending.values() if m is not None]
    if result.retry_after is not None:
        moments.append(now.add(seconds=result.retry_after))
    if not moments:
        return 0.0, None
    moment = min(moments)
    return max(0.0, (moment - now).total_seconds()), moment


def progress_line(result: PassResult, now: float) -> str:
    """``done/total done, rate calls/min, ETA`` of a running pass; ``now`` on the pass's clock."""
    elapsed = max(now - result.started, 1e-9)
    rate = result.sent / elapsed * 60
    total = f"/{result.total}" if result.total is not None else ""
    eta = ""
    if result.total is not None and result.sent:
        eta = f", ETA {max(0, result.total - result.done) / (result.sent / elapsed):.0f} s"
    return f"{result.done}{total} done, {rate:.1f} calls/min{eta}"


def describe_counts(result: PassResult) -> str:
    """The non-zero counts of a pass so far, and how many records wait for their window."""
    counts = {k: v for k, v in result.counts.items() if v}
    return f"{result.done} done {counts}, {len(result.pending)} waiting"


def summarize(
    result: PassResult, options: CampaignOptions, stop_reason: str | None = None
) -> tuple[dict[str, Any], Verdict]:
    """Close the campaign: account for every waiting record, and return the summary and verdict.

    ``stop_reason`` is why the campaign was asked to stop, if it was. Records still waiting for
    their window are not reached when the campaign ended early, else outside calling hours.
    """
    ended = result.source_error or stop_reason is not None
    for key in list(result.pending):  # only left when the batch ended early: never drop a record
        if ended:
            why = (
                f"the record source failed ({result.source_error})"
                if result.source_error
                else f"asked to stop ({stop_reason})"
            )
            result.record(key, NOT_REACHED, f"{why}, before its window opened")
        else:
            result.record(key, OUTSIDE_HOURS, "still outside calling hours")
    if stop_reason is not None and result.counts[NOT_REACHED]:
        result.stopped = f"asked to stop ({stop_reason})"
    summary: dict[str, Any] = {
        "total": result.done,
        "counts": {k: v for k, v in result.counts.items() if v},
        "sent": result.sent,
        "dry_run": options.dry_run,
        "outcomes": options.outcomes_for_xcom(result),
    }
    if result.stopped:
        summary["stopped"] = result.stopped
    if result.source_error:
        summary["source_error"] = result.source_error
    return summary, _verdict(result, options)


def _verdict(result: PassResult, options: CampaignOptions) -> Verdict:
    if result.source_error:
        return Verdict(
            RESUMABLE,
            f"The record source failed after {result.done} record(s) ({result.source_error}); the "
            "records read were processed and a retry reads the source again, never calling anyone "
            "already called. Summary in XCom 'summary'.",
        )
    if result.counts[NOT_REACHED]:
        return Verdict(
            RESUMABLE,
            f"{result.counts[NOT_REACHED]} record(s) not reached ({result.stopped}); a retry resumes "
            "with them and never calls anyone already called. Summary in XCom 'summary'.",
        )
    failures = sum(result.counts[s] for s in FAILURES if s != NOT_REACHED)
    problem = options.too_many(failures, result.done)
    if problem:
        return Verdict(FAILED, f"{problem}. Summary in XCom 'summary'.")
    return Verdict(SUCCEEDED)
