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

from airflow_provider_alta.bulk import (
    CALLED,
    DRY_RUN,
    FAILURES,
    NOT_REACHED,
    OUTSIDE_HOURS,
    Decision,
    PassResult,
)
from airflow_provider_alta.masking import mask_phone, mask_text
from airflow_provider_alta.payload import AssistantCall

OUTSIDE_CALLING_HOURS = ("defer", "skip")
XCOM_OUTCOMES = ("all", "problems", "none")

#: A campaign fails when more than this share of the records it tried failed (see ``too_many``).
DEFAULT_MAX_FAILURE_RATIO = 0.5
#: ... judged once at least this many records were tried (or when every one failed).
DEFAULT_FAILURE_RATIO_MIN_RECORDS = 10
#: States that count as tried: a call was (or, in a dry run, would be) made, or it failed.
FAILED_STATES = tuple(s for s in FAILURES if s != NOT_REACHED)
TRIED_STATES = (CALLED, DRY_RUN, *FAILED_STATES)
#: A waiting campaign (in its process or deferred) logs at least this often (seconds).
WAIT_LOG_EVERY = 180.0
#: How many problems the log (and a failure's message) shows.
PROBLEMS_SHOWN = 5
RUN_NOW_HINT = (
    'To call now instead (e.g. under `airflow dags test`), set calling_hours="off"; '
    'or set outside_calling_hours="skip" to skip records outside their window.'
)

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
    max_failure_ratio: float | None = DEFAULT_MAX_FAILURE_RATIO
    failure_ratio_min_records: int = DEFAULT_FAILURE_RATIO_MIN_RECORDS
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
        if self.max_failures is not None and not self.max_failures >= 0:
            raise ValueError(f"max_failures must be 0 or more, or None, not {self.max_failures!r}")
        ratio = self.max_failure_ratio
        if ratio is not None and not 0 <= ratio <= 1:
            raise ValueError(f"max_failure_ratio must be between 0 and 1, or None, not {ratio!r}")
        if not self.failure_ratio_min_records >= 1:
            raise ValueError("failure_ratio_min_records must be at least 1")

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

    def payload_record(self, record: Any, field_map: Mapping[str, str] | None) -> Any:
        """``record`` without its ``record_key`` column when that column is no payload field
        (``field_map`` does not map it and it is not a call field): it keys outcomes only."""
        key = self.record_key
        if not key or not isinstance(record, Mapping) or key not in record:
            return record
        if key in (field_map or {}) or key in _call_fields():
            return record
        return {k: v for k, v in record.items() if k != key}

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

    def too_many(self, failures: int, tried: int) -> str | None:
        """Why the failures break a threshold, or ``None`` when they do not.

        ``tried``: records called (or dry-run) or failed; skipped records count for neither. The
        share is judged once ``failure_ratio_min_records`` were tried, or when every one failed.
        """
        if self.max_failures is not None and failures > self.max_failures:
            return (
                f"{failures} records failed (invalid, rejected or ambiguous), "
                f"more than max_failures={self.max_failures}"
            )
        ratio = self.max_failure_ratio
        if ratio is None or not tried or failures / tried <= ratio:
            return None
        if failures == tried:
            return (
                f"every record tried failed ({failures}/{tried} invalid, rejected or ambiguous; "
                f"max_failure_ratio={ratio}, None disables)"
            )
        if tried >= self.failure_ratio_min_records:
            return (
                f"{failures}/{tried} records tried failed (invalid, rejected or ambiguous), more than "
                f"max_failure_ratio={ratio} (None disables)"
            )
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
        eta = f", ETA {duration(max(0, result.total - result.done) / (result.sent / elapsed))}"
    return f"{result.done}{total} done, {rate:.1f} calls/min{eta}"


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``45 s``, ``12 min``, ``3 h 05 min``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def describe_moment(moment: Any) -> str:
    """An aware moment in its own zone and in UTC: ``2026-11-24 08:00 America/New_York (13:00 UTC)``."""
    from datetime import timezone

    utc = moment.astimezone(timezone.utc)
    zone = getattr(moment.tzinfo, "name", None) or getattr(moment.tzinfo, "key", None) or moment.tzname()
    if zone in ("UTC", "Etc/UTC", "+00:00", None):
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    return f"{moment:%Y-%m-%d %H:%M} {zone} ({utc:%H:%M} UTC)"


def in_local_time(decision: Any) -> Any:
    """A calling-window decision whose opening is shown in the record's zone (when it has one zone).

    Window openings are UTC moments; the same moment in the recipient's zone lets the log say
    "08:00 America/New_York". Comparisons between moments are unchanged.
    """
    zones: tuple[str, ...] = tuple(getattr(decision, "zones", ()))
    opens_at = decision.opens_at
    if decision.open or opens_at is None or len(zones) != 1 or not hasattr(opens_at, "in_timezone"):
        return decision
    return Decision(False, decision.reason, opens_at.in_timezone(zones[0]))


def describe_wait(result: PassResult, moment: Any, now: Any) -> str:
    """Why a campaign waits, until when (local time and UTC), and how many records wait.

    Records waiting for a calling window add :data:`RUN_NOW_HINT`.
    """
    left = duration((moment - now).total_seconds())
    waiting = len(result.pending)
    if not waiting:
        return f"Alta's rate limit: resuming at {describe_moment(moment)} (in {left})"
    return (
        f"{waiting} record(s) wait for their calling window; the first opens "
        f"{describe_moment(moment)} (in {left}). {RUN_NOW_HINT}"
    )


def first_problems(result: PassResult, limit: int = PROBLEMS_SHOWN) -> list[str]:
    """The first ``limit`` failed records, ``key: state (reason)``, masked."""
    lines = []
    for key, outcome in result.outcomes.items():
        if outcome["state"] in FAILED_STATES:
            reason = outcome.get("reason")
            lines.append(mask_text(f"{key}: {outcome['state']}" + (f" ({reason})" if reason else "")))
            if len(lines) >= limit:
                break
    return lines


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
    failures = sum(result.counts[s] for s in FAILED_STATES)
    problem = options.too_many(failures, sum(result.counts[s] for s in TRIED_STATES))
    if problem:
        shown = "; ".join(first_problems(result))
        return Verdict(FAILED, f"{problem}. First problems: {shown}. Summary in XCom 'summary'.")
    return Verdict(SUCCEEDED)


def _call_fields() -> frozenset[str]:
    """The payload's field names, snake_case and camelCase."""
    from dataclasses import fields

    from airflow_provider_alta.payload import to_camel

    names = [f.name for f in fields(AssistantCall)]
    return frozenset([*names, *(to_camel(n) for n in names)])
