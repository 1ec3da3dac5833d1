"""Log masking and the journal (no network)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_alta.sandbox.journal import Journal, new_call_id, token_fingerprint
from airflow_provider_alta.sandbox.masking import describe_call, mask_log_text, mask_phone


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+12025550143", "+1202***0143"),
        ("+442079460123", "+4420***0123"),
        ("2025550143", "202***0143"),
        ("12345", "***45"),
        ("1234", "***"),
        ("", "***"),
        (None, "***"),
    ],
)
def test_mask_phone(number: str | None, masked: str) -> None:
    assert mask_phone(number) == masked


def test_describe_call_masks_numbers_and_leaves_out_personal_data() -> None:
    body = {
        "assistantId": "a",
        "name": "Ada Example",
        "email": "ada@example.com",
        "phoneNumber": "+12025550143",
        "callTransfer": {"phoneNumber": "+442079460123"},
        "data": {"secret": "x"},
    }
    text = describe_call(body)
    assert text == "to=+1202***0143 transfer=+4420***0123"
    assert describe_call([1]) == "body=list"
    assert describe_call({}) == "to=?"


def test_token_fingerprint_is_stable_and_hides_the_token() -> None:
    fingerprint = token_fingerprint("s3cret-token")
    assert fingerprint == token_fingerprint("s3cret-token")
    assert fingerprint != token_fingerprint("other")
    assert fingerprint.startswith("sha256:")
    assert len(fingerprint) == len("sha256:") + 12
    assert "s3cret" not in fingerprint


def test_call_ids_are_unique_uuids() -> None:
    ids = {new_call_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(str(uuid.UUID(call_id)) == call_id for call_id in ids)


def test_memory_journal() -> None:
    journal = Journal()
    record = journal.append({"phoneNumber": "+12025550143"}, "sha256:abc")
    assert set(record) == {"id", "received_at", "account", "token_fingerprint", "body"}
    assert record["account"] == "sha256:abc"  # a token given alone is its own account
    assert uuid.UUID(record["id"]).version == 4
    assert Journal().append({}, "sha256:abc", account="acme")["account"] == "acme"
    received = datetime.fromisoformat(record["received_at"])
    assert received.utcoffset() == timedelta(0)
    assert "." in record["received_at"]  # microseconds
    assert journal.records() == [record]
    assert len(journal) == 1
    journal.reset()
    assert journal.records() == []


def test_file_journal_writes_and_flushes_each_line(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.jsonl"
    journal = Journal(path)
    try:
        first = journal.append({"name": "Zoë", "phoneNumber": "+12025550143"}, "sha256:1")
        assert [json.loads(line) for line in path.read_text("utf-8").splitlines()] == [first]
        given = "0b6f4a52-6c1e-4f57-9d0e-3c4a2b1d9e8f"
        second = journal.append({"name": "B", "phoneNumber": "+12025550144"}, "sha256:1", call_id=given)
        assert second["id"] == given
        lines = path.read_text("utf-8").splitlines()
        assert [json.loads(line) for line in lines] == [first, second]
        assert "Zoë" in lines[0]  # stored as received, not escaped
        journal.reset()
        assert path.read_text("utf-8") == ""
        third = journal.append({"n": 3}, "sha256:1")
        assert [json.loads(line) for line in path.read_text("utf-8").splitlines()] == [third]
    finally:
        journal.close()
    journal.close()  # idempotent
    assert journal.records() == [third]


def test_received_at_is_the_given_arrival_in_utc() -> None:
    arrival = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    record = Journal().append({}, "sha256:1", received_at=arrival)
    assert record["received_at"] == "2030-01-02T01:04:05.000006+00:00"


def test_file_journal_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"old": true}\n', "utf-8")
    journal = Journal(path)
    journal.append({"n": 1}, "sha256:1")
    journal.close()
    assert len(path.read_text("utf-8").splitlines()) == 2


@pytest.mark.parametrize(
    ("target", "masked", "hidden"),
    [
        ("/v1/+12025550143", "/v1/+1202***0143", "5550143"),
        ("/v1/calls/12025550143", "/v1/calls/120***0143", "5550143"),
        ("/v1/%2B12025550143", "/v1/+1202***0143", "5550143"),
        ("/x?to=%2B1%20202%20555%200143", "/x?to=+1 20***0143", "555"),
        ("/x?to=+1+202+555+0143", "/x?to=+1+20***0143", "555"),
        ("/x?to=1-202-555-0143", "/x?to=1-2***0143", "555"),
        ("/x?email=ada.lovelace%40example.com", "/x?email=a***@example.com", "lovelace"),
        ("/x/ada@example.com", "/x/a***@example.com", "ada@"),
    ],
)
def test_mask_log_text_masks_numbers_and_emails_in_paths_and_queries(
    target: str, masked: str, hidden: str
) -> None:
    text = mask_log_text(target)
    assert text == masked
    assert hidden not in text


def test_mask_log_text_keeps_plain_paths_and_neutralises_control_characters() -> None:
    assert mask_log_text("/v1/assistant/calls") == "/v1/assistant/calls"
    assert mask_log_text("/_sandbox/faults") == "/_sandbox/faults"
    assert mask_log_text("/a%0D%0Afake log line") == "/a??fake log line"
    assert len(mask_log_text("/" + "a" * 5000)) <= 203
