"""The campaign preview: the batch's dry run counted, by outcome and timezone, with a masked sample."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_alta.campaign import CampaignOptions
from airflow_provider_alta.contact_gate import ContactGate
from airflow_provider_alta.contact_policy import ContactPolicy
from airflow_provider_alta.ledger import ContactLedger
from airflow_provider_alta.preview import (
    UNKNOWN_ZONE,
    WOULD_CALL,
    WOULD_WAIT,
    CampaignPreview,
    preview_campaign,
    records_fingerprint,
)

# Wednesday 2026-03-04 15:00 UTC: 10:00 in New York, 15:00 in London, 07:00 in Los Angeles.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=timezone.utc)
DC = ["+12025550143", "+12025550144", "+12025550145"]  # America/New_York by number
LA = "+12135550100"  # America/Los_Angeles by number
LONDON = "+442079460123"  # Europe/London by number
FIELD_MAP = {"lead_id": "data.lead_id", "phone": "phone_number", "full_name": "name"}
BATCH = {"field_map": FIELD_MAP, "assistant_id": "asst_demo", "default_region": "US"}


def lead(lead_id: str, phone: str, **extra: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, "phone": phone, "full_name": f"Person {lead_id}", **extra}


def campaign() -> list[dict[str, Any]]:
    """Three callable now, one waiting (LA), a duplicate, an invalid number and a missing name."""
    return [
        lead("L1", DC[0], email="ann@example.com"),
        lead("L2", "(202) 555-0144"),
        lead("L3", "+44 20 7946 0123"),
        lead("L4", LA),
        lead("L5", "+1 202 555 0143"),  # L1 again
        lead("L6", "555-01"),
        {"lead_id": "L7", "phone": DC[2], "full_name": ""},
    ]


def run(records: Any = None, **options: Any) -> CampaignPreview:
    kwargs: dict[str, Any] = {**BATCH, "calling_hours": "08:00-21:00", **options}
    kwargs.setdefault("options", CampaignOptions(record_key="lead_id"))
    return preview_campaign(campaign() if records is None else records, now=NOW, **kwargs)


def digits_forms(e164: str) -> list[str]:
    """The renderings of a number a page could show: E.164, national digits, spaced and dashed."""
    national = e164[2:] if e164.startswith("+1") else e164[3:]
    return [e164, e164[1:], national, f"{national[:3]} {national[3:6]} {national[6:]}", "555-01" + e164[-2:]]


def test_counts_every_outcome_of_the_dry_run() -> None:
    preview = run()
    assert preview.total == 7
    assert preview.outcomes == {WOULD_CALL: 3, WOULD_WAIT: 1, "invalid": 2, "skipped_duplicate": 1}
    assert preview.to_call == 4
    assert preview.subject() == "Call 4 of 7 leads?"
    assert preview.first_window == "2026-03-04T16:00:00+00:00"  # 08:00 in Los Angeles
    assert not preview.ledger_checked


def test_counts_the_recipients_to_call_by_timezone() -> None:
    records = [
        lead("A", DC[0]),
        lead("B", DC[1], timezone="Europe/London"),  # the record's timezone wins over its number's
        lead("C", LONDON),
        lead("D", LA),
        lead("E", "555-01"),  # invalid: not a recipient
    ]
    preview = run(records, calling_hours="off")
    assert preview.by_timezone == {"Europe/London": 2, "America/Los_Angeles": 1, "America/New_York": 1}
    assert preview.outcomes == {WOULD_CALL: 4, "invalid": 1}
    assert preview.sample[4].timezone == UNKNOWN_ZONE


def test_suppression_skip_and_dedupe_options_are_the_batchs() -> None:
    records = [lead("A", DC[0]), lead("B", DC[1]), lead("C", LA), lead("D", DC[1])]
    options = CampaignOptions(
        record_key="lead_id", suppression=["(202) 555-0143"], outside_calling_hours="skip", dedupe_key=None
    )
    preview = run(records, options=options)
    assert preview.outcomes == {WOULD_CALL: 2, "skipped_suppressed": 1, "skipped_outside_hours": 1}
    assert [key for key, _ in preview.problems] == ["A", "C"]
    assert preview.first_window is None


def test_reads_the_contact_ledger_without_writing_to_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with ContactLedger(url, "acme") as ledger:
        ledger.opt_out([DC[0]], "test")
        earlier = ledger.reserve(
            DC[1], None, by="yesterday", now=datetime.now(timezone.utc) - timedelta(days=1)
        )
        ledger.confirm(earlier)  # type: ignore[arg-type]
        before = {n: ledger.history(n) for n in DC}
        gate = ContactGate(ledger, ContactPolicy.parse("1/7d"))
        records = [lead("A", DC[0]), lead("B", DC[1]), lead("C", DC[2])]
        preview = run(records, contact=gate)
        assert {n: ledger.history(n) for n in DC} == before
    assert preview.ledger_checked
    assert preview.outcomes == {WOULD_CALL: 1, "skipped_recently_called": 1, "opted_out": 1}
    assert "Recently called and opted out: not checked" not in preview.to_markdown()
    assert "Recently called and opted out: not checked" in run(records).to_markdown()


def test_nothing_personal_appears_unmasked() -> None:
    records = [*campaign(), {"lead_id": "eve@example.com", "phone": DC[1], "full_name": "Eve Example"}]
    preview = run(records, options=CampaignOptions(record_key="lead_id", dedupe_key=None), sample_size=50)
    shown = json.dumps(preview.to_dict()) + preview.to_markdown()
    for number in (*DC, LA, LONDON):
        for form in digits_forms(number):
            assert form not in shown, form
    for personal in ("ann@example.com", "eve@example.com", "Person L1", "Eve Example"):
        assert personal not in shown
    assert "+1202\\*\\*\\*0143" in preview.to_markdown()  # masked, escaped for Markdown
    assert {row.phone for row in preview.sample} >= {"+1202***0143", "+1213***0100", "+4420***0123"}
    assert preview.sample[-1].key == "e***@example.com"


def test_the_sample_is_the_first_records_with_their_outcome() -> None:
    preview = run(sample_size=5)
    assert [(r.key, r.outcome) for r in preview.sample] == [
        ("L1", WOULD_CALL),
        ("L2", WOULD_CALL),
        ("L3", WOULD_CALL),
        ("L4", WOULD_WAIT),
        ("L5", "skipped_duplicate"),
    ]
    assert [r.timezone for r in preview.sample[:4]] == [
        "America/New_York",
        "America/New_York",
        "Europe/London",
        "America/Los_Angeles",
    ]


def test_markdown_has_the_counts_timezones_and_sample_as_tables() -> None:
    markdown = run().to_markdown()
    assert markdown.startswith("**4** of **7** records would be called.")
    assert "| would be called now | 3 |" in markdown
    assert "| would be called when their calling window opens | 1 |" in markdown
    assert "| America/New\\_York | 2 |" in markdown
    assert "| L6 | phone\\_number: is not a valid phone number for its country |" in markdown
    assert "The first waiting window opens at 2026-03-04T16:00:00+00:00." in markdown


def test_record_text_cannot_break_the_markdown() -> None:
    records = [lead("a|b *c* <script>", DC[0]), lead("[x](http://evil)", DC[1])]
    markdown = run(records, calling_hours="off").to_markdown()
    rows = [line for line in markdown.splitlines() if line.startswith("| a")]
    assert rows == [
        "| a\\|b \\*c\\* \\<script\\> | \\+1202\\*\\*\\*0143 | America/New\\_York | would be called now |"
    ]
    assert "<script>" not in markdown
    assert "](" not in markdown


def test_the_fingerprint_is_the_records_digest() -> None:
    records = campaign()
    preview = run(records)
    assert preview.fingerprint == records_fingerprint(records)
    assert run(lambda: iter(campaign())).fingerprint == preview.fingerprint  # a callable source
    changed = campaign()
    changed[1]["phone"] = DC[2]
    assert records_fingerprint(changed) != preview.fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", preview.fingerprint)


def test_a_failing_source_is_reported_masked() -> None:
    def source() -> Iterator[dict[str, Any]]:
        yield lead("A", DC[0])
        raise OSError(f"cannot read row 2 ({DC[1]})")

    preview = run(source)
    assert preview.total == 1
    assert preview.source_error is not None
    assert DC[1] not in preview.source_error
    assert "+1202***0144" in preview.source_error
    assert "The record source failed" in preview.to_markdown()


def test_every_record_invalid_calls_nobody() -> None:
    preview = run([lead("A", "555-01"), {"lead_id": "B", "phone": DC[0], "unknown": 1}])
    assert preview.to_call == 0
    assert preview.outcomes == {"invalid": 2}
    assert preview.by_timezone == {}
    assert "| (none) | 0 |" in preview.to_markdown()
    assert dict(preview.problems)["B"].startswith("unknown: unknown field")


def test_to_dict_is_json_with_subject_and_markdown() -> None:
    preview = run()
    data = json.loads(json.dumps(preview.to_dict()))
    assert data["to_call"] == 4
    assert data["subject"] == preview.subject()
    assert data["markdown"] == preview.to_markdown()
    assert data["outcomes"] == preview.outcomes


def test_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        preview_campaign([lead("A", DC[0])], now=datetime(2026, 3, 4, 15), **BATCH)


def test_record_key_may_name_a_column_that_is_not_a_payload_field() -> None:
    records = [{"crm_id": "C-1", "phone_number": DC[0], "name": "Ann"}]
    preview = preview_campaign(
        records, now=NOW, assistant_id="asst_demo", options=CampaignOptions(record_key="crm_id")
    )
    assert preview.outcomes == {WOULD_CALL: 1}
    assert preview.sample[0].key == "C-1"
