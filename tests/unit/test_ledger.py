"""The contact ledger on a SQLite file: policy windows, opt-outs, confirm/release, hashing, no raw numbers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_alta.ledger import (
    AMBIGUOUS,
    CALLED,
    OPTED_OUT,
    RELEASED,
    RESERVED,
    SKIPPED_RECENTLY_CALLED,
    Blocked,
    ContactLedger,
    LedgerStateError,
    Reservation,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
ANN, BOB, CID = "+12025550143", "+12025550144", "+442079460123"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(db_url: str):
    with ContactLedger(db_url, "acme") as opened:
        yield opened


def reserved(outcome: Reservation | Blocked) -> Reservation:
    assert isinstance(outcome, Reservation), outcome
    return outcome


def test_importing_the_ledger_loads_no_sqlalchemy():
    code = "import sys, airflow_provider_alta.ledger; print('sqlalchemy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.strip() == "False"


def test_a_second_call_inside_the_window_is_skipped_until_it_ends(ledger):
    first = reserved(ledger.reserve(ANN, "1/7d", by="daily/2026-03-10/call", now=NOW))
    ledger.confirm(first, CALLED, now=NOW)
    blocked = ledger.reserve(ANN, "1/7d", by="daily/2026-03-11/call", now=NOW + timedelta(days=1))
    assert blocked == Blocked(SKIPPED_RECENTLY_CALLED, ledger.person_key(ANN), NOW + timedelta(days=7))
    # someone else is not affected
    reserved(ledger.reserve(BOB, "1/7d", by="daily/2026-03-11/call", now=NOW + timedelta(days=1)))
    # a week later Ann may be called again
    reserved(ledger.reserve(ANN, "1/7d", by="daily/2026-03-17/call", now=NOW + timedelta(days=7)))


def test_three_per_day(ledger):
    for hour in range(3):
        reserved(ledger.reserve(ANN, "3/24h", by="batch", now=NOW + timedelta(hours=hour)))
    blocked = ledger.reserve(ANN, "3/24h", by="batch", now=NOW + timedelta(hours=5))
    assert isinstance(blocked, Blocked)
    assert (blocked.reason, blocked.next_allowed) == (SKIPPED_RECENTLY_CALLED, NOW + timedelta(hours=24))
    reserved(ledger.reserve(ANN, "3/24h", by="batch", now=NOW + timedelta(hours=24)))


def test_a_reservation_never_confirmed_still_counts(ledger):
    reserved(ledger.reserve(ANN, "1/7d", by="worker that died", now=NOW))
    assert isinstance(ledger.reserve(ANN, "1/7d", by="next run", now=NOW + timedelta(hours=1)), Blocked)


def test_ambiguous_counts_as_a_call(ledger):
    ledger.confirm(reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW)), AMBIGUOUS, now=NOW)
    outcome = ledger.reserve(ANN, "1/7d", by="b", now=NOW + timedelta(days=3))
    assert isinstance(outcome, Blocked)
    assert outcome.reason == SKIPPED_RECENTLY_CALLED


def test_release_frees_the_slot(ledger):
    first = reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW))
    ledger.release(first, now=NOW)
    second = reserved(ledger.reserve(ANN, "1/7d", by="b", now=NOW + timedelta(minutes=1)))
    assert [(a.state, a.by) for a in ledger.history(ANN)] == [(RESERVED, "b"), (RELEASED, "a")]
    assert second.id != first.id


def test_a_confirmed_call_cannot_be_released_and_a_released_one_cannot_be_confirmed(ledger):
    called = reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW))
    ledger.confirm(called, AMBIGUOUS)
    ledger.confirm(called, CALLED)  # ambiguous may later turn out to be placed
    with pytest.raises(LedgerStateError, match="'called', cannot become 'released'"):
        ledger.release(called)
    freed = reserved(ledger.reserve(BOB, "1/7d", by="a", now=NOW))
    ledger.release(freed)
    ledger.release(freed)  # idempotent
    with pytest.raises(LedgerStateError, match="'released', cannot become 'called'"):
        ledger.confirm(freed, CALLED)
    with pytest.raises(ValueError, match="confirm takes"):
        ledger.confirm(called, RELEASED)


def test_opt_out_wins_over_everything_and_can_be_removed(ledger):
    assert ledger.opt_out([ANN, BOB, ANN], source="sms STOP", now=NOW) == 2
    assert ledger.opt_out([ANN], source="again") == 0
    assert ledger.is_opted_out(ANN)
    assert not ledger.is_opted_out(CID)
    # never called, generous policy, far in the future: still opted out
    assert ledger.reserve(ANN, "1000/1s", by="a", now=NOW + timedelta(days=400)) == Blocked(
        OPTED_OUT, ledger.person_key(ANN), None
    )
    assert ledger.history(ANN) == []
    assert ledger.remove_opt_out([ANN, CID]) == 1
    assert not ledger.is_opted_out(ANN)
    reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW))
    assert ledger.is_opted_out(BOB)


def test_an_opt_out_after_a_call_blocks_with_opted_out_not_the_policy(ledger):
    reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW))
    ledger.opt_out([ANN], source="crm")
    outcome = ledger.reserve(ANN, "1/7d", by="b", now=NOW + timedelta(days=1))
    assert isinstance(outcome, Blocked)
    assert (outcome.reason, outcome.next_allowed) == (OPTED_OUT, None)


def test_accounts_are_separate_and_hash_differently(db_url, ledger):
    with ContactLedger(db_url, "other-account") as other:
        assert other.person_key(ANN) != ledger.person_key(ANN)
        reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW))
        ledger.opt_out([BOB], source="crm")
        reserved(other.reserve(ANN, "1/7d", by="a", now=NOW))
        assert not other.is_opted_out(BOB)
        assert len(other.history(ANN)) == 1


def test_the_person_key_is_hmac_sha256_of_the_number_keyed_by_the_account(db_url, ledger):
    import hashlib
    import hmac

    key = ledger.person_key(ANN)
    assert key == hmac.new(b"acme", ANN.encode(), hashlib.sha256).hexdigest()
    assert key == ContactLedger(db_url, "acme", create=False).person_key(ANN)
    with ContactLedger(db_url, "acme", secret="pepper", create=False) as peppered:
        assert peppered.person_key(ANN) not in (key, hashlib.sha256(ANN.encode()).hexdigest())


@pytest.mark.parametrize("bad", ["2025550143", "+0123456", "+1 202 555 0143", "", "+1202555014300000"])
def test_a_number_not_in_e164_is_refused_masked(ledger, bad):
    with pytest.raises(ValueError, match=r"not an E\.164 number") as caught:
        ledger.person_key(bad)
    if len(bad) >= 10:
        assert bad not in str(caught.value)


def test_no_raw_number_is_stored(db_url, ledger, tmp_path):
    numbers = [ANN, BOB, CID]
    for number in numbers:
        ledger.confirm(reserved(ledger.reserve(number, "1/7d", by="dag/run/task", now=NOW)), CALLED)
    ledger.opt_out(numbers, source="crm")
    ledger.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"acme" in raw  # the account is there, so the file was read
    for number in numbers:
        for form in (number, number.lstrip("+"), number[-10:], number[-7:]):
            assert form.encode() not in raw, form
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"alta_contact_attempts", "alta_opt_outs", "alta_contact_locks"}


def test_history_is_bounded_and_newest_first(ledger):
    for minute in range(5):
        ledger.release(
            reserved(ledger.reserve(ANN, "1/7d", by=f"try {minute}", now=NOW + timedelta(minutes=minute)))
        )
    assert [a.by for a in ledger.history(ANN, limit=3)] == ["try 4", "try 3", "try 2"]
    assert [a.reserved_at for a in ledger.history(ANN, limit=1)] == [NOW + timedelta(minutes=4)]


def test_the_ledger_outlives_the_process_that_wrote_it(db_url):
    with ContactLedger(db_url, "acme") as first:
        reserved(first.reserve(ANN, "1/7d", by="yesterday", now=NOW))
    with ContactLedger(db_url, "acme") as second:
        assert isinstance(second.reserve(ANN, "1/7d", by="today", now=NOW + timedelta(days=1)), Blocked)


def test_unsupported_or_in_memory_databases_are_refused():
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        ContactLedger("mysql://u@localhost/db", "acme")
    with pytest.raises(ValueError, match="file path"):
        ContactLedger("sqlite://", "acme")


def test_a_reservation_of_another_account_is_refused(db_url, ledger):
    with ContactLedger(db_url, "other", create=False) as other:
        mine = reserved(ledger.reserve(ANN, "1/7d", by="a", now=NOW))
        with pytest.raises(LedgerStateError, match="another account"):
            other.confirm(mine, CALLED)


def test_naive_now_is_refused(ledger):
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.reserve(ANN, "1/7d", by="a", now=datetime(2026, 1, 1))


def test_resume_returns_the_same_reserved_row_of_the_same_label_only(ledger):
    first = reserved(ledger.reserve(ANN, "1/7d", by="dag/run/call/3", now=NOW))
    again = reserved(
        ledger.reserve(ANN, "1/7d", by="dag/run/call/3", now=NOW + timedelta(hours=1), resume=True)
    )
    assert again == first
    assert isinstance(ledger.reserve(ANN, "1/7d", by="dag/run/call/4", resume=True, now=NOW), Blocked)
    ledger.confirm(first, CALLED, now=NOW)
    # a confirmed row is not a reservation to resume: the policy decides
    blocked = ledger.reserve(ANN, "1/7d", by="dag/run/call/3", now=NOW + timedelta(hours=2), resume=True)
    assert isinstance(blocked, Blocked)
    assert [a.state for a in ledger.history(ANN)] == [CALLED]


def test_no_policy_records_every_call_and_only_opt_outs_block(ledger):
    for hour in range(3):
        reserved(ledger.reserve(ANN, None, by="batch", now=NOW + timedelta(hours=hour)))
    assert ledger.check(ANN, None) is None
    ledger.opt_out([ANN], "crm", now=NOW)
    assert ledger.reserve(ANN, None, by="batch") == Blocked(OPTED_OUT, ledger.person_key(ANN), None)
    assert len(ledger.history(ANN)) == 3


def test_check_reads_without_reserving_and_confirm_reserved_settles_one_label(ledger):
    reserved(ledger.reserve(ANN, "1/7d", by="dag/run/call/1", now=NOW))
    reserved(ledger.reserve(ANN, None, by="dag/run/call/2", now=NOW))
    blocked = ledger.check(ANN, "1/7d", now=NOW + timedelta(days=1))
    assert blocked is not None
    assert blocked.next_allowed == NOW + timedelta(days=7)
    assert len(ledger.history(ANN)) == 2
    assert ledger.confirm_reserved(ANN, "dag/run/call/1", AMBIGUOUS) == 1
    assert ledger.confirm_reserved(ANN, "dag/run/call/1", AMBIGUOUS) == 0
    assert sorted(a.state for a in ledger.history(ANN)) == [AMBIGUOUS, RESERVED]
    with pytest.raises(ValueError, match="confirm takes"):
        ledger.confirm_reserved(ANN, "dag/run/call/2", RELEASED)
