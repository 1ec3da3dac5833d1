"""guarded_send over a real SQLite ledger: reserve, send, confirm or release, and its failures."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from airflow_provider_alta.contact_gate import (
    ContactGate,
    ContactLedgerUnavailable,
    blocked_reason,
    guarded_send,
)
from airflow_provider_alta.contact_policy import ContactPolicy
from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.ledger import (
    AMBIGUOUS,
    CALLED,
    OPTED_OUT,
    RELEASED,
    RESERVED,
    SKIPPED_RECENTLY_CALLED,
    Blocked,
    ContactLedger,
)
from airflow_provider_alta.ledger_schema import make_engine
from airflow_provider_alta.send_record import RecordWriteError

ANN, BOB = "+12025550143", "+12025550144"  # fictional (555-01xx)
WEEK = ContactPolicy.parse("1/7d")
BY = "daily/run-1/call/-1"


class Sends:
    """The send a gate wraps: counts its runs, answers, or raises what it is given."""

    def __init__(self, raises: BaseException | None = None) -> None:
        self.runs = 0
        self.raises = raises

    def __call__(self) -> dict[str, str]:
        self.runs += 1
        if self.raises is not None:
            raise self.raises
        return {"id": f"call-{self.runs}"}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(db_path: Path):
    url = f"sqlite:///{db_path}"
    # No pool: every transaction opens the file again, so a test can take the database away.
    with ContactLedger(url, "acme", engine=make_engine(url, poolclass=_null_pool())) as opened:
        yield opened


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool


def states(ledger: ContactLedger, number: str) -> list[str]:
    return [attempt.state for attempt in reversed(ledger.history(number))]


def take_database_away(path: Path) -> None:
    """The ledger's file becomes a directory: SQLite cannot open it any more."""
    path.unlink()
    path.mkdir()


def test_a_placed_call_is_confirmed_and_blocks_the_next_inside_the_policy(ledger):
    gate, send = ContactGate(ledger, WEEK), Sends()
    assert guarded_send(gate, ANN, by=BY, send=send) == {"id": "call-1"}
    assert states(ledger, ANN) == [CALLED]
    blocked = guarded_send(gate, ANN, by="daily/run-2/call/-1", send=send)
    assert isinstance(blocked, Blocked)
    assert blocked.reason == SKIPPED_RECENTLY_CALLED
    assert blocked.next_allowed == ledger.history(ANN)[0].reserved_at + WEEK.window
    assert send.runs == 1  # blocked: nothing sent
    assert guarded_send(gate, BOB, by="daily/run-2/call/-1", send=send) == {"id": "call-2"}


def test_without_a_policy_only_opt_outs_block_and_every_call_is_recorded(ledger):
    gate, send = ContactGate(ledger, None), Sends()
    guarded_send(gate, ANN, by=BY, send=send)
    guarded_send(gate, ANN, by="daily/run-2/call/-1", send=send)
    assert send.runs == 2
    assert states(ledger, ANN) == [CALLED, CALLED]
    ledger.opt_out([ANN], source="crm")
    blocked = guarded_send(gate, ANN, by="daily/run-3/call/-1", send=send)
    assert isinstance(blocked, Blocked)
    assert (blocked.reason, blocked.next_allowed) == (OPTED_OUT, None)
    assert send.runs == 2


def test_an_opt_out_wins_over_a_policy_that_would_allow_the_call(ledger):
    ledger.opt_out([ANN], source="crm")
    send = Sends()
    blocked = guarded_send(ContactGate(ledger, ContactPolicy.parse("1000/1s")), ANN, by=BY, send=send)
    assert isinstance(blocked, Blocked)
    assert blocked.reason == OPTED_OUT
    assert send.runs == 0
    assert ledger.history(ANN) == []


@pytest.mark.parametrize(
    "error",
    [
        AltaConnectionError("connection refused"),
        AltaRateLimitError("429", retry_after=60),
        AltaValidationError("400 bad phone"),
        RecordWriteError("could not record 'sending' before sending", sent=False),
    ],
    ids=["not-reached", "rate-limited", "rejected", "record-not-written"],
)
def test_a_send_that_placed_nothing_releases_its_reservation(ledger, error):
    gate = ContactGate(ledger, WEEK)
    with pytest.raises(type(error)):
        guarded_send(gate, ANN, by=BY, send=Sends(error))
    assert states(ledger, ANN) == [RELEASED]
    assert guarded_send(gate, ANN, by=BY, send=Sends()) == {"id": "call-1"}  # not counted


@pytest.mark.parametrize(
    "error",
    [
        AltaAmbiguousOutcomeError("read timeout after sending"),
        RuntimeError("unexpected"),
        RecordWriteError("could not record 'called' after the call was sent", sent=True),
    ],
    ids=["ambiguous", "unexpected", "record-after-sending"],
)
def test_an_ambiguous_send_counts_as_a_call(ledger, error):
    gate = ContactGate(ledger, WEEK)
    with pytest.raises(type(error)):
        guarded_send(gate, ANN, by=BY, send=Sends(error))
    assert states(ledger, ANN) == [AMBIGUOUS]
    send = Sends()
    assert isinstance(guarded_send(gate, ANN, by="daily/run-2/call/-1", send=send), Blocked)
    assert send.runs == 0


def test_errors_the_caller_names_unsent_release(ledger):
    class Stopped(Exception):
        pass

    with pytest.raises(Stopped):
        guarded_send(ContactGate(ledger, WEEK), ANN, by=BY, send=Sends(Stopped()), unsent=(Stopped,))
    assert states(ledger, ANN) == [RELEASED]


def test_a_reservation_left_by_a_crash_is_reused_only_with_proof_and_the_same_label(ledger):
    ledger.reserve(ANN, WEEK, by=BY)  # a try died between reserving and writing "sending"
    gate, send = ContactGate(ledger, WEEK), Sends()
    assert isinstance(guarded_send(gate, ANN, by=BY, send=send), Blocked)  # no proof: it counts
    assert isinstance(guarded_send(gate, ANN, by="other/run/call/-1", send=send, resume=True), Blocked)
    assert send.runs == 0
    assert guarded_send(gate, ANN, by=BY, send=send, resume=True) == {"id": "call-1"}
    assert states(ledger, ANN) == [CALLED]  # the same row, now confirmed: one call counted


def test_an_opt_out_wins_over_a_reservation_to_resume(ledger):
    ledger.reserve(ANN, WEEK, by=BY)
    ledger.opt_out([ANN], source="crm")
    send = Sends()
    blocked = guarded_send(ContactGate(ledger, WEEK), ANN, by=BY, send=send, resume=True)
    assert isinstance(blocked, Blocked)
    assert blocked.reason == OPTED_OUT
    assert send.runs == 0


def test_a_maybe_placed_attempt_turns_its_reservation_ambiguous(ledger):
    ledger.reserve(ANN, WEEK, by=BY)
    ledger.reserve(ANN, None, by="someone else")
    ContactGate(ledger, WEEK).settle_maybe_placed(ANN, BY)
    assert sorted(states(ledger, ANN)) == [AMBIGUOUS, RESERVED]


def test_an_unreachable_ledger_sends_nothing_and_says_so(ledger, db_path):
    take_database_away(db_path)
    send = Sends()
    with pytest.raises(ContactLedgerUnavailable) as raised:
        guarded_send(ContactGate(ledger, WEEK), ANN, by=BY, send=send)
    assert send.runs == 0
    message = str(raised.value)
    assert "contact_ledger" in message
    assert "nothing was sent" in message
    assert "2025550143" not in message
    assert raised.value.task_retry
    assert raised.value.batch_state == "not_reached"


def test_an_unreachable_postgresql_error_masks_the_password():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg2://alta:S3cretLedgerPw@127.0.0.1:{port}/ledger"
    ledger = ContactLedger(url, "acme", engine=make_engine(url, connect_timeout=5), create=False)
    send = Sends()
    with pytest.raises(ContactLedgerUnavailable) as raised:
        guarded_send(ContactGate(ledger, WEEK), ANN, by=BY, send=send)
    assert send.runs == 0
    assert "S3cretLedgerPw" not in str(raised.value)
    assert "contact_ledger (postgresql+psycopg2://alta:***@127.0.0.1" in str(raised.value)
    with pytest.raises(ContactLedgerUnavailable):
        ContactGate(ledger, WEEK).check(ANN)


def test_a_ledger_that_fails_after_sending_only_warns(ledger, db_path, caplog):
    def send_then_lose_the_database() -> dict[str, str]:
        take_database_away(db_path)
        return {"id": "placed"}

    with caplog.at_level(logging.WARNING, logger="airflow_provider_alta.contact_gate"):
        answer = guarded_send(ContactGate(ledger, WEEK), ANN, by=BY, send=send_then_lose_the_database)
    assert answer == {"id": "placed"}
    assert "keeps counting as a call" in caplog.text
    assert "2025550143" not in caplog.text


def test_check_is_read_only(ledger):
    gate = ContactGate(ledger, WEEK)
    assert gate.check(ANN) is None
    assert ledger.history(ANN) == []
    guarded_send(gate, ANN, by=BY, send=Sends())
    blocked = gate.check(ANN)
    assert blocked is not None
    assert blocked.reason == SKIPPED_RECENTLY_CALLED
    assert states(ledger, ANN) == [CALLED]
    ledger.opt_out([BOB], source="crm")
    assert ContactGate(ledger, None).check(BOB) == Blocked(OPTED_OUT, ledger.person_key(BOB), None)


def test_without_a_gate_the_send_just_runs():
    send = Sends()
    assert guarded_send(None, ANN, by=BY, send=send) == {"id": "call-1"}


def test_blocked_reasons_mask_the_number_and_say_when(ledger):
    gate = ContactGate(ledger, WEEK)
    guarded_send(gate, ANN, by=BY, send=Sends())
    blocked = gate.check(ANN)
    assert blocked is not None
    text = blocked_reason(blocked, ANN, WEEK)
    assert "2025550143" not in text
    assert "1/7d" in text
    assert blocked.next_allowed is not None
    assert blocked.next_allowed.isoformat() in text
