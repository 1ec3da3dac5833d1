"""The contact ledger across processes: a real PostgreSQL (started here) and a shared SQLite file.

Worker processes are real OS processes (``spawn``: nothing inherited but the arguments), each with
its own ledger and connections; a barrier releases them together to reserve the same person.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_alta.ledger import (
    AMBIGUOUS,
    CALLED,
    OPTED_OUT,
    RESERVED,
    SKIPPED_RECENTLY_CALLED,
    Blocked,
    ContactLedger,
    Reservation,
)
from alta_testing.servers.postgres_server import PostgresServer, PostgresServerError, find_bindir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SPAWN = multiprocessing.get_context("spawn")
WORKERS = 8
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
ANN, BOB = "+12025550143", "+12025550144"


def reserve_in_worker(url: str, account: str, numbers: list[str], barrier: Any, results: Any) -> None:
    """One worker: a fresh ledger; for each number, wait at the barrier, then reserve it under "1/7d"."""
    with ContactLedger(url, account) as ledger:
        for round_number, number in enumerate(numbers):
            barrier.wait()
            outcome = ledger.reserve(number, "1/7d", by=f"pid {os.getpid()}", now=NOW)
            won = isinstance(outcome, Reservation)
            if won:
                ledger.confirm(outcome, CALLED)
            results.put((round_number, number, won, None if won else outcome.reason))


def race(url: str, account: str, numbers: list[str]) -> list[tuple[int, str, bool, str | None]]:
    """``WORKERS`` processes reserve ``numbers`` in lockstep; every outcome (round, number, won, reason)."""
    barrier = SPAWN.Barrier(WORKERS, timeout=60)  # a worker that dies breaks it instead of hanging the rest
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=reserve_in_worker, args=(url, account, numbers, barrier, results), daemon=True)
        for _ in range(WORKERS)
    ]
    try:
        for worker in workers:
            worker.start()
        collected = [results.get(timeout=120) for _ in range(WORKERS * len(numbers))]
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0] * WORKERS
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(10)
    return collected


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    try:
        find_bindir()
    except PostgresServerError as exc:
        pytest.skip(str(exc))
    server = PostgresServer(databases=("ledger",)).start()
    try:
        yield server.url("ledger")
    finally:
        server.stop()


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_concurrent_processes_reserving_one_person_exactly_one_wins(url):
    account = f"acct-{uuid.uuid4().hex[:8]}"
    # round 0: Ann, all at once; round 1: Ann again (same instant: blocked); round 2: Bob, all at once
    outcomes = race(url, account, [ANN, ANN, BOB])
    assert len(outcomes) == WORKERS * 3
    winners = sorted((o[0], o[1]) for o in outcomes if o[2])
    assert winners == [(0, ANN), (2, BOB)]
    assert {o[3] for o in outcomes if not o[2]} == {SKIPPED_RECENTLY_CALLED}
    with ContactLedger(url, account) as ledger:
        assert [a.state for a in ledger.history(ANN)] == [CALLED]
        assert [a.state for a in ledger.history(BOB)] == [CALLED]


def test_the_ledger_on_postgres(postgres_url):
    account = f"acct-{uuid.uuid4().hex[:8]}"
    with ContactLedger(postgres_url, account) as ledger, ContactLedger(postgres_url, account + "-b") as other:
        first = ledger.reserve(ANN, "3/24h", by="a", now=NOW)
        assert isinstance(first, Reservation)
        ledger.confirm(first, AMBIGUOUS)
        released = ledger.reserve(ANN, "3/24h", by="b", now=NOW + timedelta(hours=1))
        assert isinstance(released, Reservation)
        ledger.release(released)
        ledger.reserve(ANN, "3/24h", by="c", now=NOW + timedelta(hours=2))
        ledger.reserve(ANN, "3/24h", by="d", now=NOW + timedelta(hours=3))
        blocked = ledger.reserve(ANN, "3/24h", by="e", now=NOW + timedelta(hours=4))
        assert blocked == Blocked(SKIPPED_RECENTLY_CALLED, ledger.person_key(ANN), NOW + timedelta(hours=24))
        assert [a.state for a in ledger.history(ANN, limit=2)] == [RESERVED, RESERVED]
        assert ledger.opt_out([ANN, BOB], source="crm") == 2
        assert ledger.opt_out([ANN], source="crm") == 0
        assert isinstance(other.reserve(ANN, "3/24h", by="x", now=NOW), Reservation)
        outcome = ledger.reserve(ANN, "3/24h", by="f", now=NOW + timedelta(days=30))
        assert isinstance(outcome, Blocked)
        assert outcome.reason == OPTED_OUT
        assert ledger.remove_opt_out([ANN]) == 1
        assert ledger.is_opted_out(BOB)
        assert not ledger.is_opted_out(ANN)
