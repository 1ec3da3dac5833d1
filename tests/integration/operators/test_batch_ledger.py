"""The batch under the contact ledger (SQLite file), over real HTTP to the sandbox.

Each "day" is a run with its own ``run_id`` and task state store; the sandbox's journal says who was called.
"""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_alta.contact_gate import ContactLedgerUnavailable
from airflow_provider_alta.ledger import AMBIGUOUS, CALLED, ContactLedger
from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
from alta_testing.environment import alta_connection

from .conftest import StateStore

pytestmark = pytest.mark.integration

TOKEN = "sandbox-batch-ledger-token"
DAG = "daily_campaign"


def lead(i: int) -> dict:
    return {"lead": f"L{i}", "name": f"Lead {i}", "phone": f"+1202555{i:04d}"}


def phone(i: int) -> str:
    return f"+1202555{i:04d}"


class TaskInstance:
    """What the batch reads of a task instance, and the XComs it pushes."""

    def __init__(self, run_id: str, try_number: int = 1) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = DAG, "campaign", run_id, -1
        self.try_number = try_number
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def run_context(run_id: str, store: StateStore | None, try_number: int = 1) -> dict:
    context: dict = {"ti": TaskInstance(run_id, try_number), "run_id": run_id}
    if store is not None:
        context["task_state_store"] = store
    return context


def batch(records: list[dict], **kwargs) -> BatchTriggerAssistantCallsOperator:
    return BatchTriggerAssistantCallsOperator(
        task_id="campaign",
        prospects=records,
        assistant_id="asst_1",
        field_map={"lead": "data.lead_id", "phone": "phone_number"},
        record_key="lead",
        calling_hours=False,
        **kwargs,
    )


def journaled(sandbox) -> Counter:
    return Counter(c["body"]["phoneNumber"] for c in sandbox.calls())


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def connect(sandbox, monkeypatch, ledger_url):
    def set_extras(**extra: object) -> None:
        extra = {"account": "acme", "calls_per_minute": 6000, "contact_ledger": ledger_url, **extra}
        monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, TOKEN, **extra))

    set_extras()
    return set_extras


@pytest.fixture
def ledger(ledger_url):
    with ContactLedger(ledger_url, "acme") as opened:
        yield opened


def test_a_second_day_with_overlapping_leads_calls_only_the_new_ones(sandbox, connect, ledger):
    day_1 = batch([lead(i) for i in (100, 101, 102)], contact_policy="1/7d").execute(
        run_context("day-1", StateStore())
    )
    assert day_1["counts"] == {"called": 3}
    day_2 = batch([lead(i) for i in (101, 102, 103)], contact_policy="1/7d", max_failures=0).execute(
        run_context("day-2", StateStore())
    )
    assert day_2["counts"] == {"called": 1, "skipped_recently_called": 2}
    assert journaled(sandbox) == Counter({phone(i): 1 for i in (100, 101, 102, 103)})
    skipped = day_2["outcomes"]["L101"]
    (first,) = ledger.history(phone(101))
    assert skipped["state"] == "skipped_recently_called"
    assert skipped["next_allowed"] == (first.reserved_at + ledger_window()).isoformat()
    assert "2025550101" not in str(day_2)


def ledger_window():
    from airflow_provider_alta.contact_policy import ContactPolicy

    return ContactPolicy.parse("1/7d").window


def test_an_opt_out_wins_without_a_policy_and_is_no_failure(sandbox, connect, ledger):
    ledger.opt_out([phone(101)], source="crm export")
    summary = batch([lead(i) for i in (100, 101, 102)], max_failures=0).execute(
        run_context("day-1", StateStore())
    )
    assert summary["counts"] == {"called": 2, "opted_out": 1}
    assert summary["outcomes"]["L101"]["state"] == "opted_out"
    assert "next_allowed" not in summary["outcomes"]["L101"]
    assert phone(101) not in journaled(sandbox)


def test_an_ambiguous_record_counts_as_a_call_for_the_next_run(sandbox, connect, ledger):
    sandbox.set_faults(script=["reset_after_accept"])  # the first call is placed, its answer lost
    day_1 = batch([lead(100), lead(101)], contact_policy="1/7d").execute(run_context("day-1", StateStore()))
    assert day_1["counts"] == {"ambiguous": 1, "called": 1}
    assert [a.state for a in ledger.history(phone(100))] == [AMBIGUOUS]
    day_2 = batch([lead(100), lead(101)], contact_policy="1/7d").execute(run_context("day-2", StateStore()))
    assert day_2["counts"] == {"skipped_recently_called": 2}
    assert journaled(sandbox) == Counter({phone(100): 1, phone(101): 1})


def test_a_reservation_left_by_a_crash_is_reused_by_the_retry(sandbox, connect, ledger):
    ledger.reserve(phone(100), "1/7d", by=f"{DAG}/day-1/campaign/-1")  # died before writing "sending"
    summary = batch([lead(100), lead(101)], contact_policy="1/7d").execute(
        run_context("day-1", StateStore(), try_number=2)
    )
    assert summary["counts"] == {"called": 2}
    assert [a.state for a in ledger.history(phone(100))] == [CALLED]


def test_a_dry_run_reports_what_the_ledger_would_do_without_reserving(sandbox, connect, ledger):
    batch([lead(100)], contact_policy="1/7d").execute(run_context("day-1", StateStore()))
    ledger.opt_out([phone(102)], source="crm")
    summary = batch([lead(i) for i in (100, 101, 102)], contact_policy="1/7d", dry_run=True).execute(
        run_context("day-2", StateStore())
    )
    assert summary["counts"] == {"skipped_recently_called": 1, "opted_out": 1, "dry_run": 1}
    assert len(sandbox.calls()) == 1
    assert ledger.history(phone(101)) == []  # nothing reserved
    assert len(ledger.history(phone(100))) == 1


def test_an_unreachable_ledger_sends_nothing_and_names_it_without_its_password(sandbox, connect):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connect(contact_ledger=f"postgresql+psycopg2://alta:L3dgerPw-b@127.0.0.1:{port}/ledger")
    store = StateStore()
    with pytest.raises(ContactLedgerUnavailable, match=r"^contact_ledger \(") as raised:
        batch([lead(100), lead(101)], contact_policy="1/7d").execute(run_context("day-1", store))
    assert "L3dgerPw-b" not in str(raised.value)
    assert sandbox.stats()["requests"] == 0
    assert store.writes == []


def test_a_ledger_lost_mid_batch_stops_it_with_the_rest_not_reached(sandbox, connect, tmp_path):
    database = tmp_path / "ledger.db"

    def records():
        yield lead(100)
        database.unlink()  # the ledger's database goes away before the second record
        database.mkdir()
        yield lead(101)
        yield lead(102)

    context = run_context("day-1", StateStore())
    with pytest.raises(
        AirflowException, match=r"2 record\(s\) not reached.*contact ledger could not be reached"
    ):
        batch(records, contact_policy="1/7d").execute(context)
    summary = context["ti"].xcom["summary"]
    assert summary["counts"] == {"called": 1, "not_reached": 2}
    reason = summary["outcomes"]["L101"]["reason"]
    assert reason.startswith("not sent: contact_ledger (sqlite:///")
    assert "nothing was sent" in reason
    assert journaled(sandbox) == Counter({phone(100): 1})


def test_a_policy_without_a_ledger_fails_before_any_request(sandbox, connect):
    connect(contact_ledger=None)
    with pytest.raises(AirflowFailException, match=r"contact_policy '1/7d'.*contact_ledger extra"):
        batch([lead(100)], contact_policy="1/7d").execute(run_context("day-1", StateStore()))
    with pytest.raises(ValueError, match=r"^contact_policy: "):
        batch([lead(100)], contact_policy="weekly")
    assert sandbox.stats()["requests"] == 0
