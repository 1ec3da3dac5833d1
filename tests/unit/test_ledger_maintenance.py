"""Pruning the contact ledger on a SQLite file: old attempts go, opt-outs and recent attempts stay."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_alta.ledger import (
    CALLED,
    OPTED_OUT,
    SKIPPED_RECENTLY_CALLED,
    Blocked,
    ContactLedger,
    Reservation,
)
from airflow_provider_alta.ledger_maintenance import MIN_AGE, longest_window, parse_age, prune

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
ANN, BOB, CID = "+12025550143", "+12025550144", "+442079460123"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def call(ledger: ContactLedger, number: str, at: datetime, policy: str = "100/1d") -> None:
    outcome = ledger.reserve(number, policy, by="test", now=at)
    assert isinstance(outcome, Reservation), outcome
    ledger.confirm(outcome, CALLED, now=at)


def seed(ledger: ContactLedger) -> None:
    """Ann: called 200 and 100 days ago and 3 days ago; Bob: 120 days ago, opted out 400 days ago."""
    for days in (200, 100, 3):
        call(ledger, ANN, NOW - timedelta(days=days))
    call(ledger, BOB, NOW - timedelta(days=120))
    assert ledger.opt_out([BOB], "crm", now=NOW - timedelta(days=400)) == 1


def test_prune_deletes_old_attempts_and_never_opt_outs(db_url):
    with ContactLedger(db_url, "acme") as ledger:
        seed(ledger)
        assert prune(ledger, timedelta(days=90), now=NOW, batch_size=1) == 3
        assert [a.reserved_at for a in ledger.history(ANN)] == [NOW - timedelta(days=3)]
        assert ledger.history(BOB) == []
        assert ledger.is_opted_out(BOB)
        assert ledger.reserve(BOB, "1/7d", by="t", now=NOW) == Blocked(
            OPTED_OUT, ledger.person_key(BOB), None
        )
        # the attempt that still counts for "1/7d" is kept, so the decision is the same
        blocked = ledger.reserve(ANN, "1/7d", by="t", now=NOW)
        assert isinstance(blocked, Blocked)
        assert blocked.reason == SKIPPED_RECENTLY_CALLED
        assert blocked.next_allowed == NOW + timedelta(days=4)
        assert prune(ledger, timedelta(days=90), now=NOW) == 0


def test_prune_keeps_other_accounts_unless_asked(db_url):
    with ContactLedger(db_url, "acme") as acme, ContactLedger(db_url, "globex") as globex:
        call(acme, ANN, NOW - timedelta(days=100))
        call(globex, ANN, NOW - timedelta(days=100))
        call(globex, CID, NOW - timedelta(days=100))
        assert prune(acme, timedelta(days=30), now=NOW) == 1
        assert len(globex.history(ANN)) == 1
        assert prune(acme, timedelta(days=30), now=NOW, all_accounts=True) == 2
        assert globex.history(ANN) == []
        assert globex.history(CID) == []


def test_prune_refuses_an_age_that_would_delete_attempts_that_still_count(db_url):
    with ContactLedger(db_url, "acme") as ledger:
        call(ledger, ANN, NOW - timedelta(days=10))
        with pytest.raises(ValueError, match="longest policy window 30 days"):
            prune(ledger, timedelta(days=7), policies=["3/24h", "1/30d"], now=NOW)
        with pytest.raises(ValueError, match="at least 1 day"):
            prune(ledger, MIN_AGE - timedelta(seconds=1), now=NOW)
        with pytest.raises(ValueError, match="timezone-aware"):
            prune(ledger, timedelta(days=7), now=NOW.replace(tzinfo=None))
        assert len(ledger.history(ANN)) == 1
        assert prune(ledger, timedelta(days=30), policies=["3/24h", "1/30d"], now=NOW) == 0


def test_durations_and_windows():
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age(" 36h ") == timedelta(hours=36)
    with pytest.raises(ValueError, match=r"e\.g\. 90d"):
        parse_age("ninety days")
    assert longest_window(["3/24h", "1/7d"]) == timedelta(days=7)
    assert longest_window([]) is None


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "airflow_provider_alta.ledger_maintenance", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False, timeout=120)


def test_the_command_prunes_every_account(db_url):
    with ContactLedger(db_url, "acme") as ledger:
        old = datetime.now(timezone.utc) - timedelta(days=100)
        call(ledger, ANN, old)
        call(ledger, BOB, datetime.now(timezone.utc))
        ledger.opt_out([ANN], "crm", now=old)
    result = run_cli("prune", "--url", db_url, "--older-than", "90d", "--policy", "1/7d")
    assert result.returncode == 0, result.stderr
    assert "pruned 1 attempts older than 90d (every account)" in result.stdout
    with ContactLedger(db_url, "acme") as ledger:
        assert ledger.history(ANN) == []
        assert len(ledger.history(BOB)) == 1
        assert ledger.is_opted_out(ANN)


def test_the_command_explains_what_it_refuses(db_url, tmp_path):
    refused = run_cli("prune", "--url", db_url, "--older-than", "1d", "--policy", "1/7d")
    assert refused.returncode == 2
    assert "shorter than the longest policy window" in refused.stderr
    missing = run_cli("prune", "--url", f"sqlite:///{tmp_path / 'empty.db'}", "--older-than", "90d")
    assert missing.returncode == 2
    assert "no such table" in missing.stderr
    bad_age = run_cli("prune", "--url", db_url, "--older-than", "soon")
    assert bad_age.returncode == 2
    assert "e.g. 90d" in bad_age.stderr
