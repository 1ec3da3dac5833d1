"""The single-call operator under the contact ledger (SQLite file), over real HTTP to the sandbox.

Runs on different "days" are different ``run_id`` s with their own task state stores; what was
called is read from the sandbox's journal.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_provider_alta.contact_gate import ContactLedgerUnavailable
from airflow_provider_alta.ledger import AMBIGUOUS, CALLED, ContactLedger
from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator
from airflow_provider_alta.send_record import progress_key
from alta_testing.environment import alta_connection

from .conftest import StateStore

pytestmark = pytest.mark.integration

TOKEN = "sandbox-ledger-token"
ADA, GRACE = "+12025550143", "+12025550178"
FIELDS = {"assistant_id": "asst_1", "name": "Ada", "calling_hours": False}
DAG = "daily_calls"


class TaskInstance:
    """What the operator reads of a task instance, and the XComs it pushes."""

    def __init__(self, run_id: str, try_number: int = 1, map_index: int = -1) -> None:
        self.dag_id, self.task_id, self.run_id = DAG, "call", run_id
        self.try_number, self.map_index = try_number, map_index
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def run_context(run_id: str, store: StateStore | None, try_number: int = 1) -> dict:
    context: dict = {"ti": TaskInstance(run_id, try_number), "run_id": run_id}
    if store is not None:
        context["task_state_store"] = store
    return context


def label(run_id: str) -> str:
    return f"{DAG}/{run_id}/call/-1"


def operator(phone: str = ADA, **kwargs) -> TriggerAssistantCallOperator:
    return TriggerAssistantCallOperator(task_id="call", phone_number=phone, **{**FIELDS, **kwargs})


def called(sandbox) -> list[str]:
    return [c["body"]["phoneNumber"] for c in sandbox.calls()]


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def connect(sandbox, monkeypatch, ledger_url):
    """Point ``alta_default`` at the sandbox with these extras (the ledger by default)."""

    def set_extras(**extra: object) -> None:
        extra = {"account": "acme", "contact_ledger": ledger_url, **extra}
        monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, TOKEN, **extra))

    set_extras()
    return set_extras


@pytest.fixture
def ledger(ledger_url):
    with ContactLedger(ledger_url, "acme") as opened:
        yield opened


def test_a_second_day_under_one_a_week_calls_only_the_new_person(sandbox, connect, ledger):
    operator(contact_policy="1/7d").execute(run_context("day-1", StateStore()))
    day_2 = StateStore()
    context = run_context("day-2", day_2)
    with pytest.raises(AirflowSkipException, match="skipped_recently_called") as skipped:
        operator(contact_policy="1/7d").execute(context)
    message = str(skipped.value)
    assert "2025550143" not in message
    assert "may be called again from" in message
    pushed = context["ti"].xcom["contact"]
    (first,) = ledger.history(ADA)
    assert pushed == {
        "state": "skipped_recently_called",
        "next_allowed": (first.reserved_at + timedelta(days=7)).isoformat(),
        "assistant_id": "asst_1",
        "phone_number": pushed["phone_number"],
    }
    assert "2025550143" not in pushed["phone_number"]
    assert day_2.writes == []  # nothing was sent, so nothing recorded
    operator(GRACE, contact_policy="1/7d").execute(run_context("day-2", StateStore()))
    assert called(sandbox) == [ADA, GRACE]
    assert [a.state for a in ledger.history(ADA)] == [CALLED]


def test_the_connection_policy_applies_when_the_task_gives_none(sandbox, connect):
    connect(contact_policy="1/7d")
    operator().execute(run_context("day-1", StateStore()))
    with pytest.raises(AirflowSkipException, match="skipped_recently_called"):
        operator().execute(run_context("day-2", StateStore()))
    assert called(sandbox) == [ADA]


def test_an_opt_out_wins_with_or_without_a_policy(sandbox, connect, ledger):
    ledger.opt_out([ADA], source="crm export")
    for policy in (None, "1000/1m"):
        context = run_context(f"run-{policy}", StateStore())
        with pytest.raises(AirflowSkipException, match=r"^opted_out: "):
            operator(contact_policy=policy).execute(context)
        assert context["ti"].xcom["contact"]["state"] == "opted_out"
        assert context["ti"].xcom["contact"]["next_allowed"] is None
    assert sandbox.stats()["requests"] == 0


def test_without_a_policy_calls_are_recorded_but_not_capped(sandbox, connect, ledger):
    operator().execute(run_context("day-1", StateStore()))
    operator().execute(run_context("day-2", StateStore()))
    assert called(sandbox) == [ADA, ADA]
    assert [a.state for a in ledger.history(ADA)] == [CALLED, CALLED]


def test_an_ambiguous_outcome_counts_so_the_next_run_skips_the_person(sandbox, connect, ledger):
    sandbox.set_faults(script=["reset_after_accept"])  # placed, then the connection is reset
    with pytest.raises(AirflowFailException, match="may have been placed"):
        operator(contact_policy="1/7d").execute(run_context("day-1", StateStore()))
    assert [a.state for a in ledger.history(ADA)] == [AMBIGUOUS]
    with pytest.raises(AirflowSkipException, match="skipped_recently_called"):
        operator(contact_policy="1/7d").execute(run_context("day-2", StateStore()))
    assert called(sandbox) == [ADA]


def test_a_reservation_left_by_a_crash_is_reused_by_the_retry_with_an_empty_store(sandbox, connect, ledger):
    ledger.reserve(ADA, "1/7d", by=label("day-1"))  # try 1 died after reserving, before "sending"
    operator(contact_policy="1/7d").execute(run_context("day-1", StateStore(), try_number=2))
    assert called(sandbox) == [ADA]
    assert [a.state for a in ledger.history(ADA)] == [CALLED]  # one row: the reservation, confirmed


def test_without_a_task_state_store_a_left_reservation_still_counts(sandbox, connect, ledger):
    ledger.reserve(ADA, "1/7d", by=label("day-1"))
    with pytest.raises(AirflowSkipException, match="skipped_recently_called"):
        operator(contact_policy="1/7d").execute(run_context("day-1", None))
    assert sandbox.stats()["requests"] == 0


def test_a_maybe_placed_record_sends_nothing_and_marks_its_reservation_ambiguous(sandbox, connect, ledger):
    ledger.reserve(ADA, "1/7d", by=label("day-1"))
    store = StateStore()
    store.set(progress_key(("call", "asst_1", ADA)), {"state": "sending", "by": "try 1"})
    with pytest.raises(AirflowFailException, match="may have been placed"):
        operator(contact_policy="1/7d").execute(run_context("day-1", store, try_number=2))
    assert sandbox.stats()["requests"] == 0
    assert [a.state for a in ledger.history(ADA)] == [AMBIGUOUS]


def test_the_retry_of_an_outcome_wait_never_reserves_again(sandbox, connect, ledger):
    store = StateStore()
    with pytest.raises(TaskDeferred):
        operator(contact_policy="1/7d", wait_for_outcome=True).execute(run_context("day-1", store))
    with pytest.raises(TaskDeferred):  # try 2 waits for the same call: not skipped by its own call
        operator(contact_policy="1/7d", wait_for_outcome=True).execute(run_context("day-1", store, 2))
    assert called(sandbox) == [ADA]
    assert [a.state for a in ledger.history(ADA)] == [CALLED]


def test_an_unreachable_ledger_sends_nothing_and_names_it_without_its_password(sandbox, connect):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connect(contact_ledger=f"postgresql+psycopg2://alta:L3dgerPw-it@127.0.0.1:{port}/ledger")
    store = StateStore()
    with pytest.raises(ContactLedgerUnavailable, match=r"^contact_ledger \(") as raised:
        operator(contact_policy="1/7d").execute(run_context("day-1", store))
    assert "L3dgerPw-it" not in str(raised.value)
    assert raised.value.task_retry  # a later try may reach it
    assert sandbox.stats()["requests"] == 0
    assert store.writes == []


def test_a_bad_ledger_url_fails_before_any_request(sandbox, connect):
    connect(contact_ledger="mysql://alta:L3dgerPw-it@db/ledger")
    with pytest.raises(AirflowFailException, match=r"^contact_ledger \(mysql://alta:\*\*\*@db") as raised:
        operator().execute(run_context("day-1", StateStore()))
    assert "L3dgerPw-it" not in str(raised.value)
    assert sandbox.stats()["requests"] == 0


def test_a_policy_without_a_ledger_fails_before_any_request(sandbox, connect):
    connect(contact_ledger=None)
    with pytest.raises(AirflowFailException, match=r"contact_policy '1/7d'.*contact_ledger extra"):
        operator(contact_policy="1/7d").execute(run_context("day-1", StateStore()))
    connect(contact_ledger=None, contact_policy="3/24h")
    with pytest.raises(AirflowFailException, match="connection's contact_policy extra"):
        operator().execute(run_context("day-1", StateStore()))
    assert sandbox.stats()["requests"] == 0


def test_a_bad_contact_policy_is_refused_naming_the_field(sandbox, connect):
    with pytest.raises(ValueError, match=r"^contact_policy: "):
        operator(contact_policy="once a week")
    rendered = operator(contact_policy="{{ params.policy }}")  # checked once rendered
    rendered.contact_policy = "1/0d"
    with pytest.raises(AirflowFailException, match=r"^contact_policy: "):
        rendered.execute(run_context("day-1", StateStore()))
    assert sandbox.stats()["requests"] == 0


def test_the_contact_xcom_of_a_skipped_call_carries_its_record_key(sandbox, connect, ledger):
    ledger.opt_out([ADA], source="crm export")
    context = run_context("run-1", StateStore())
    with pytest.raises(AirflowSkipException, match=r"^opted_out: "):
        operator(record_key="lead-0001").execute(context)
    contact = context["ti"].xcom["contact"]
    assert (contact["state"], contact["record_key"]) == ("opted_out", "lead-0001")
    assert contact["phone_number"] == "+1202***0143"
    assert sandbox.stats()["requests"] == 0
