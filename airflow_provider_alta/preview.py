"""A campaign's preview, for a human to approve before anyone is called. Pure Python: no Airflow.

:func:`preview_campaign` runs the batch's own dry run (``bulk.run_pass`` with ``dry_run=True``:
the same validation, dedupe, suppression, calling windows and read-only contact-ledger check as
``BatchTriggerAssistantCallsOperator(dry_run=True)``) and counts what it found: the total, the
outcomes, the recipients' timezones and a small sample. :meth:`CampaignPreview.to_markdown` renders
it for a human-in-the-loop body. Nothing in a preview is unmasked: numbers, emails and every text
taken from a record go through :mod:`~airflow_provider_alta.masking`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_alta import bulk
from airflow_provider_alta.calling_hours import CallingHours, WindowDecision, decide, from_setting
from airflow_provider_alta.campaign import CampaignOptions
from airflow_provider_alta.contact_gate import ContactGate
from airflow_provider_alta.masking import mask_phone, mask_text
from airflow_provider_alta.payload import AssistantCall, build_call, merge_record
from airflow_provider_alta.phone import candidate_timezones

#: Preview outcomes besides the batch's states: called at once, or when the calling window opens.
WOULD_CALL = "would_call"
WOULD_WAIT = "would_wait_for_hours"
LABELS = {
    WOULD_CALL: "would be called now",
    WOULD_WAIT: "would be called when their calling window opens",
    bulk.INVALID: "invalid (not called)",
    bulk.SUPPRESSED: "suppressed (not called)",
    bulk.DUPLICATE: "duplicates (not called)",
    bulk.OUTSIDE_HOURS: "outside calling hours (skipped)",
    bulk.SKIPPED_RECENTLY_CALLED: "recently called (contact policy; not called)",
    bulk.OPTED_OUT: "opted out (not called)",
}
CALLED_LATER = (WOULD_CALL, WOULD_WAIT)
UNKNOWN_ZONE = "unknown"


@dataclass(frozen=True)
class SampleRow:
    """One record of the sample: its key, number (masked), timezone and preview outcome."""

    key: str
    phone: str
    timezone: str
    outcome: str


@dataclass(frozen=True)
class CampaignPreview:
    """What a campaign would do, masked; JSON-ready through :meth:`to_dict` (e.g. for XCom)."""

    total: int
    outcomes: dict[str, int]  # WOULD_CALL, WOULD_WAIT or a batch state -> records
    by_timezone: dict[str, int]  # recipient timezone -> records that would be called
    sample: list[SampleRow]
    problems: list[tuple[str, str]]  # the first (masked key, masked reason) not called
    ledger_checked: bool  # whether the contact ledger was read (recently called, opted out)
    as_of: str  # ISO time the calling windows were judged at
    fingerprint: str  # digest of the records as read: compare it before calling
    first_window: str | None = None  # when the first waiting record's window opens (ISO UTC)
    source_error: str | None = None  # the record source failed (masked): records after it unread

    @property
    def to_call(self) -> int:
        """Records that would be called (now, or when their window opens)."""
        return sum(self.outcomes.get(k, 0) for k in CALLED_LATER)

    def subject(self) -> str:
        """A one-line headline, e.g. ``Call 9 of 14 leads?``."""
        return f"Call {self.to_call} of {self.total} leads?"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, with ``to_call``, ``subject`` and ``markdown`` added."""
        out = asdict(self)
        out["problems"] = [list(p) for p in self.problems]
        return {**out, "to_call": self.to_call, "subject": self.subject(), "markdown": self.to_markdown()}

    def to_markdown(self) -> str:
        """The preview as Markdown for a reviewer: counts, outcomes, timezones, masked sample."""
        lines = [
            f"**{self.to_call}** of **{self.total}** records would be called.",
            "",
            f"Judged at {self.as_of} (UTC); calling windows and the ledger are checked again when calling.",
            "",
            "| Outcome | Records |",
            "| --- | ---: |",
            *(f"| {_md(LABELS.get(k, k))} | {n} |" for k, n in self.outcomes.items()),
        ]
        if self.first_window:
            lines += ["", f"The first waiting window opens at {self.first_window}."]
        if not self.ledger_checked:
            lines += ["", "Recently called and opted out: not checked (no contact ledger configured)."]
        if self.source_error:
            lines += ["", f"**The record source failed**: {_md(self.source_error)}; later records unread."]
        lines += ["", "**To call, by recipient timezone**", "", "| Timezone | Records |", "| --- | ---: |"]
        lines += [f"| {_md(zone)} | {n} |" for zone, n in self.by_timezone.items()] or ["| (none) | 0 |"]
        if self.problems:
            lines += ["", "**First records not called**", "", "| Record | Why |", "| --- | --- |"]
            lines += [f"| {_md(key)} | {_md(why)} |" for key, why in self.problems]
        lines += ["", f"**Sample** (first {len(self.sample)}, numbers masked)", ""]
        lines += ["| Record | Number | Timezone | Outcome |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {_md(r.key)} | {_md(r.phone)} | {_md(r.timezone)} | {_md(LABELS.get(r.outcome, r.outcome))} |"
            for r in self.sample
        ]
        return "\n".join(lines) + "\n"


def preview_campaign(
    records: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]],
    *,
    now: Any,
    field_map: Mapping[str, str] | None = None,
    assistant_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    call_transfer: Any = None,
    default_region: str | None = None,
    calling_hours: Any = None,
    options: CampaignOptions | None = None,
    contact: ContactGate | None = None,
    sample_size: int = 5,
    max_problems: int = 5,
) -> CampaignPreview:
    """Dry-run the campaign as the batch would (same arguments) and count what it found.

    ``now`` (an aware datetime) is when calling windows are judged; ``contact`` is the contact
    ledger read-only (``None``: recently called and opted out are not checked). Nothing is sent.
    """
    options = options or CampaignOptions()
    hours = from_setting(calling_hours)
    shared = {"assistant_id": assistant_id, "data": data, "call_transfer": call_transfer}
    seen: list[_Seen] = []
    digest = hashlib.sha256()

    def prepare(record: Any) -> AssistantCall:
        record = options.payload_record(record, field_map)  # as the batch: the key column keys only
        fields = merge_record(shared, record, field_map, required=True)
        call = build_call(fields, default_region=default_region)
        seen[-1].call = call
        return call

    def tapped() -> Iterator[Any]:
        for record in records() if callable(records) else records:
            digest.update(json.dumps(record, sort_keys=True, default=str).encode() + b"\n")
            seen.append(_Seen())
            yield record

    plan = bulk.Plan(
        prepare=prepare,
        send=_never_send,
        progress=bulk.MemoryProgress(),
        window=None if hours is None else _window(hours, now, seen),
        wait_for_window=options.wait_for_window,
        dedupe_key=options.dedupe(),
        suppressed=options.suppressed(default_region),
        record_key=options.key_of,
        dry_run=True,
        contact=contact,
    )
    result = bulk.run_pass(tapped(), plan)
    return _count(result, seen, now, digest.hexdigest(), contact is not None, sample_size, max_problems)


def records_fingerprint(records: Iterable[Mapping[str, Any]]) -> str:
    """The digest :attr:`CampaignPreview.fingerprint` holds for these records (same order)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, default=str).encode() + b"\n")
    return digest.hexdigest()


@dataclass
class _Seen:
    """What the dry run decided about one record, in the order read."""

    call: AssistantCall | None = None
    decision: WindowDecision | None = None


def _window(hours: CallingHours, now: Any, seen: list[_Seen]) -> Callable[[AssistantCall], WindowDecision]:
    """The batch's calling-window check, judged at ``now``; remembers each record's decision."""

    def window(call: AssistantCall) -> WindowDecision:
        decision = decide(hours, now=now, timezone=call.timezone, phone_e164=call.phone_number)
        seen[-1].decision = decision
        return decision

    return window


def _never_send(call: AssistantCall) -> dict[str, Any]:
    raise RuntimeError("a preview never sends")  # pragma: no cover - a dry run never sends


def _count(
    result: bulk.PassResult,
    seen: list[_Seen],
    now: Any,
    fingerprint: str,
    ledger_checked: bool,
    sample_size: int,
    max_problems: int,
) -> CampaignPreview:
    outcomes: Counter[str] = Counter()
    zones: Counter[str] = Counter()
    sample: list[SampleRow] = []
    problems: list[tuple[str, str]] = []
    opens: list[Any] = []
    # A dry run records exactly one outcome per record read, in order (nothing waits).
    for (key, outcome), record in zip(result.outcomes.items(), seen, strict=False):
        state = outcome["state"]
        if state == bulk.DRY_RUN:
            waiting = record.decision is not None and not record.decision.open
            state = WOULD_WAIT if waiting else WOULD_CALL
            if waiting and record.decision is not None and record.decision.opens_at is not None:
                opens.append(record.decision.opens_at)
        outcomes[state] += 1
        zone = _zone(record)
        if state in CALLED_LATER:
            zones[zone] += 1
        elif len(problems) < max_problems:
            problems.append((mask_text(key), mask_text(str(outcome.get("reason", state)))))
        if len(sample) < sample_size:
            phone = mask_phone(record.call.phone_number) if record.call is not None else "-"
            sample.append(SampleRow(mask_text(key), phone, zone, state))
    ordered = {k: outcomes[k] for k in (*CALLED_LATER, *LABELS) if outcomes[k]}
    ordered.update({k: n for k, n in outcomes.items() if k not in ordered})
    return CampaignPreview(
        total=result.done,
        outcomes=ordered,
        by_timezone=dict(sorted(zones.items(), key=lambda kv: (-kv[1], kv[0]))),
        sample=sample,
        problems=problems,
        ledger_checked=ledger_checked,
        as_of=_iso(now),
        fingerprint=fingerprint,
        first_window=_iso(min(opens)) if opens else None,
        source_error=None if result.source_error is None else mask_text(result.source_error),
    )


def _zone(record: _Seen) -> str:
    """The recipient's timezone as the calling-hours check sees it: the record's, else its number's."""
    if record.decision is not None:
        zones: tuple[str, ...] = record.decision.zones
    elif record.call is None:
        return UNKNOWN_ZONE
    elif record.call.timezone:
        zones = (record.call.timezone,)
    else:
        try:
            zones = candidate_timezones(record.call.phone_number)
        except Exception:  # an odd number: its zone is unknown, as for the calling-hours check
            zones = ()
    if not zones:
        return UNKNOWN_ZONE
    return zones[0] if len(zones) == 1 else f"{zones[0]} (+{len(zones) - 1} more)"


def _iso(moment: Any) -> str:
    text = moment.isoformat() if hasattr(moment, "isoformat") else str(moment)
    return str(text)


_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_{}[]<>()#+!|~"})


def _md(text: str) -> str:
    """``text`` safe inside a Markdown table cell: special characters escaped, one line."""
    return " ".join(str(text).split()).translate(_MD_SPECIAL)
