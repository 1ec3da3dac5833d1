"""Pruning the contact ledger on a real PostgreSQL started here: old attempts go, opt-outs stay."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_alta.ledger import CALLED, RESERVED, ContactLedger, Reservation
from airflow_provider_alta.ledger_maintenance import URL_ENV, prune
from alta_testing.servers.postgres_server import PostgresServer, PostgresServerError, find_bindir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ANN, BOB = "+12025550143", "+12025550144"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    try:
        find_bindir()
    except PostgresServerError as exc:
        pytest.skip(str(exc))
    started = PostgresServer(databases=("ledger",)).start()
    try:
        yield started
    finally:
        started.stop()


def reserve(ledger: ContactLedger, number: str, at: datetime) -> Reservation:
    outcome = ledger.reserve(number, "100/1d", by="test", now=at)
    assert isinstance(outcome, Reservation), outcome
    return outcome


def test_prune_on_postgres_keeps_opt_outs_recent_attempts_and_other_accounts(server):
    url = server.url("ledger")
    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    account = f"acct-{uuid.uuid4().hex[:8]}"
    with ContactLedger(url, account) as ledger, ContactLedger(url, account + "-b") as other:
        for days in range(100, 107):  # seven old attempts, over several batches
            ledger.confirm(reserve(ledger, ANN, now - timedelta(days=days)), CALLED)
        recent = reserve(ledger, ANN, now - timedelta(days=2))  # still reserved: kept and confirmable
        reserve(other, ANN, now - timedelta(days=100))
        ledger.opt_out([BOB], "crm", now=now - timedelta(days=365))
        assert prune(ledger, timedelta(days=90), now=now, batch_size=3) == 7
        assert [(a.id, a.state) for a in ledger.history(ANN)] == [(recent.id, RESERVED)]
        ledger.confirm(recent, CALLED)
        assert ledger.is_opted_out(BOB)
        assert len(other.history(ANN)) == 1
        assert prune(ledger, timedelta(days=90), now=now, all_accounts=True) == 1
        assert other.history(ANN) == []
        assert ledger.is_opted_out(BOB)


def test_the_command_on_postgres_never_prints_the_password(server):
    account = f"acct-{uuid.uuid4().hex[:8]}"
    with ContactLedger(server.url("ledger"), account) as ledger:
        ledger.confirm(reserve(ledger, ANN, datetime.now(timezone.utc) - timedelta(days=200)), CALLED)
    # trust authentication ignores the password; the command must not show it anyway
    url = server.url("ledger").replace("postgres@", "postgres:hunter2-secret@")
    command = [sys.executable, "-m", "airflow_provider_alta.ledger_maintenance", "prune"]
    command += ["--older-than", "90d", "--account", account]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, URL_ENV: url},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"pruned 1 attempts older than 90d (account '{account}')" in result.stdout
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert "***" in result.stdout
