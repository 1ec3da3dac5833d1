"""End to end: the contact ledger calls each person once per policy, across runs, paths and clears.

A real LocalExecutor deployment whose connection names a contact ledger (its own database on the
deployment's PostgreSQL) and the policy ``1/7d``. Runs on different logical days with overlapping
leads, a cleared and re-run day, opt-outs added through the ``ContactLedger`` API, and a mapped
single call and a batch calling the same people in one run: each is checked on the sandbox's
journal, on Airflow's task states and XComs (REST API), and on the ledger's own history.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.config import settings_from_fields
from airflow_provider_alta.ledger import CALLED, OPTED_OUT, SKIPPED_RECENTLY_CALLED, ContactLedger
from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.campaign_checks import called_numbers, calls_where, received_at
from alta_testing.data.numbers import NumberPool
from alta_testing.servers.deployment import AirflowStack

E2E_DAGS = Path(__file__).parent / "dags"
LIMIT, WINDOW = 50, 10.0
DAG = "e2e_contact_ledger"
POLICY = "1/7d"
EXTRAS = {"account": "e2e-ledger", "contact_ledger_secret": "e2e-ledger-pepper", "contact_policy": POLICY}
# Logical days in the past (the policy's window is measured on the wall clock, when the calls are made).
_TEN_DAYS_AGO = datetime.now(timezone.utc) - timedelta(days=10)
DAY_ZERO = _TEN_DAYS_AGO.replace(hour=6, minute=0, second=0, microsecond=0)

pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="a cleared re-run knows whom it called by Airflow 3.3's task state store"
)


@pytest.fixture(scope="module")
def stack(sandbox: AltaSandbox) -> Iterator[AirflowStack]:
    deployment = AirflowStack(
        dags=[E2E_DAGS / "e2e_contact_ledger.py"],
        executor="LocalExecutor",
        pool_slots=4,
        parallelism=8,
        keep_logs=Path(__file__).parents[2] / "artifacts" / "e2e" / "contact-ledger",
    )
    with deployment:  # as serving(), with the ledger's database made once PostgreSQL is up
        deployment.postgres.psql('CREATE DATABASE "ledger"')
        ledger_url = deployment.postgres.url("ledger")
        deployment.add_alta_connection(sandbox.base_url, sandbox.token, contact_ledger=ledger_url, **EXTRAS)
        deployment.wait_for_dags([DAG])
        yield deployment


@pytest.fixture(scope="module")
def ledger(stack: AirflowStack, sandbox: AltaSandbox) -> Iterator[ContactLedger]:
    """The ledger the tasks use, opened as the hook opens it (same account key and secret)."""
    url = stack.postgres.url("ledger")
    settings = settings_from_fields(
        host=sandbox.base_url, password=sandbox.token, extra={**EXTRAS, "contact_ledger": url}
    )
    with ContactLedger(url, settings.ledger_account, secret=settings.contact_ledger_secret) as opened:
        yield opened


# --- leads and runs ----------------------------------------------------------------------------

_LEAD_IDS: dict[str, str] = {}


def lead_id(number: str) -> str:
    """A lead id for the number (no digits of it), the same in every run."""
    return _LEAD_IDS.setdefault(number, f"lead-{len(_LEAD_IDS) + 1:03d}")


def _leads_file(stack: AirflowStack, name: str, numbers: Sequence[str]) -> str:
    if not numbers:
        return ""
    rows = [{"name": f"Lead {lead_id(n)}", "phone_number": n, "lead_id": lead_id(n)} for n in numbers]
    path = stack.home / f"{name}.json"
    path.write_text(json.dumps(rows))
    return str(path)


def run_day(stack: AirflowStack, run_id: str, day: int, mapped: Sequence[str], batch: Sequence[str]) -> str:
    """Trigger a run with logical date ``DAY_ZERO + day`` days and wait until it has finished."""
    conf = {
        "mapped_leads": _leads_file(stack, f"{run_id}-mapped", mapped),
        "batch_leads": _leads_file(stack, f"{run_id}-batch", batch),
    }
    logical_date = (DAY_ZERO + timedelta(days=day)).isoformat()
    body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
    status, answer = stack.api("POST", f"/api/v2/dags/{DAG}/dagRuns", body)
    assert status < 300, answer
    assert stack.wait_for_run(DAG, run_id) == "success"
    return run_id


# --- what happened -----------------------------------------------------------------------------


def journaled(sandbox: AltaSandbox, *run_ids: str, path: str | None = None) -> Counter[str]:
    """How often each number was called by these runs (and by one path, if given)."""
    extra = {} if path is None else {"path": path}
    return sum((called_numbers(calls_where(sandbox.calls(), run_id=r, **extra)) for r in run_ids), Counter())


def mapped_tasks(stack: AirflowStack, run_id: str) -> dict[int, tuple[str, int]]:
    """``map_index -> (state, try_number)`` of the mapped call task."""
    return {
        t["map_index"]: (t["state"], t["try_number"])
        for t in stack.task_instances(DAG, run_id)
        if t["task_id"] == "call_lead"
    }


def contact_state(stack: AirflowStack, run_id: str, map_index: int) -> dict[str, Any]:
    """The XCom ``contact`` a skipped mapped call task pushed."""
    quoted = urllib.parse.quote(run_id, safe="")
    path = (
        f"/api/v2/dags/{DAG}/dagRuns/{quoted}/taskInstances/call_lead/xcomEntries/contact"
        f"?map_index={map_index}&deserialize=true"
    )
    status, answer = stack.api("GET", path)
    assert status == 200, answer
    value = answer["value"]
    return dict(json.loads(value) if isinstance(value, str) else value)


def batch_summary(stack: AirflowStack, run_id: str) -> dict[str, Any]:
    return dict(stack.xcom(DAG, run_id, "call_batch"))


def counted_history(ledger: ContactLedger, number: str) -> list[str]:
    """The states of the person's attempts in the ledger, newest first."""
    return [attempt.state for attempt in ledger.history(number)]


def first_call_at(sandbox: AltaSandbox, number: str) -> datetime:
    return min(received_at(r) for r in sandbox.calls() if r["body"]["phoneNumber"] == number)


def assert_skipped_recently_called(
    sandbox: AltaSandbox, state: dict[str, Any], number: str, *, masked: bool = True
) -> None:
    """Blocked by ``1/7d``: next allowed 7 days after the reservation made just before the first call."""
    assert state["state"] == SKIPPED_RECENTLY_CALLED
    next_allowed = datetime.fromisoformat(state["next_allowed"])
    first = first_call_at(sandbox, number)
    assert first + timedelta(days=6) < next_allowed <= first + timedelta(days=7)
    if masked:
        assert number not in json.dumps(state)


# --- the tests ---------------------------------------------------------------------------------


def test_two_days_with_overlapping_leads_call_only_the_newcomers_and_cleared_runs_call_nobody(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool, ledger: ContactLedger
) -> None:
    mapped_1, batch_1 = numbers.take(3), numbers.take(3)
    day_1 = run_day(stack, "ledger-day-1", 0, mapped_1, batch_1)
    assert journaled(sandbox, day_1, path="mapped") == dict.fromkeys(mapped_1, 1)
    assert journaled(sandbox, day_1, path="batch") == dict.fromkeys(batch_1, 1)
    assert mapped_tasks(stack, day_1) == dict.fromkeys(range(3), ("success", 1))
    summary = batch_summary(stack, day_1)
    assert (summary["counts"], summary["sent"]) == ({CALLED: 3}, 3)

    # Day 2: the lists overlap day 1's, across the two paths too; two newcomers on each path.
    new_mapped, new_batch = numbers.take(2), numbers.take(2)
    mapped_2 = [mapped_1[0], mapped_1[1], batch_1[0], *new_mapped]
    batch_2 = [batch_1[1], batch_1[2], mapped_1[2], *new_batch]
    day_2 = run_day(stack, "ledger-day-2", 1, mapped_2, batch_2)
    assert journaled(sandbox, day_2, path="mapped") == dict.fromkeys(new_mapped, 1)
    assert journaled(sandbox, day_2, path="batch") == dict.fromkeys(new_batch, 1)
    everyone = [*mapped_1, *batch_1, *new_mapped, *new_batch]
    assert journaled(sandbox, day_1, day_2) == dict.fromkeys(everyone, 1)

    skipped, placed = ("skipped", 1), ("success", 1)
    assert mapped_tasks(stack, day_2) == {0: skipped, 1: skipped, 2: skipped, 3: placed, 4: placed}
    for index in range(3):
        assert_skipped_recently_called(sandbox, contact_state(stack, day_2, index), mapped_2[index])
    summary = batch_summary(stack, day_2)
    assert (summary["counts"], summary["sent"]) == ({CALLED: 2, SKIPPED_RECENTLY_CALLED: 3}, 2)
    for number in batch_2[:3]:
        assert_skipped_recently_called(sandbox, summary["outcomes"][lead_id(number)], number, masked=False)
    assert not [n for n in batch_2 if n in json.dumps(summary)]  # masked: +1201***01xx
    # A block writes nothing: each person has one attempt, the call.
    assert {n: counted_history(ledger, n) for n in everyone} == {n: [CALLED] for n in everyone}

    # Clear both days with their downstream (as the UI's "clear downstream" does) and let them re-run.
    calls_before = len(sandbox.calls())
    for run_id in (day_1, day_2):
        stack.clear(DAG, run_id, ["mapped_leads", "batch_leads"], downstream=True)
        assert stack.wait_for_run(DAG, run_id) == "success"
    assert len(sandbox.calls()) == calls_before
    assert journaled(sandbox, day_1, day_2) == dict.fromkeys(everyone, 1)
    assert mapped_tasks(stack, day_1) == dict.fromkeys(range(3), ("success", 2))
    assert mapped_tasks(stack, day_2) == {0: ("skipped", 2), 1: ("skipped", 2), 2: ("skipped", 2),
                                          3: ("success", 2), 4: ("success", 2)}  # fmt: skip
    for index in range(3):
        assert contact_state(stack, day_2, index)["state"] == SKIPPED_RECENTLY_CALLED
    summary = batch_summary(stack, day_1)  # replayed from the task state store: none sent
    assert (summary["counts"], summary["sent"]) == ({CALLED: 3}, 0)
    summary = batch_summary(stack, day_2)
    assert (summary["counts"], summary["sent"]) == ({CALLED: 2, SKIPPED_RECENTLY_CALLED: 3}, 0)
    assert {n: counted_history(ledger, n) for n in everyone} == {n: [CALLED] for n in everyone}


def test_an_opt_out_added_before_a_run_is_called_on_neither_path(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool, ledger: ContactLedger
) -> None:
    out_mapped, fresh_mapped, out_batch, fresh_batch = numbers.take(4)
    assert ledger.opt_out([out_mapped, out_batch], source="e2e: CRM export") == 2
    day_3 = run_day(stack, "ledger-day-3", 2, [out_mapped, fresh_mapped], [out_batch, fresh_batch])

    assert journaled(sandbox, day_3) == {fresh_mapped: 1, fresh_batch: 1}
    assert called_numbers(sandbox.calls())[out_mapped] == 0
    assert called_numbers(sandbox.calls())[out_batch] == 0
    assert mapped_tasks(stack, day_3) == {0: ("skipped", 1), 1: ("success", 1)}
    contact = contact_state(stack, day_3, 0)
    assert (contact["state"], contact["next_allowed"]) == (OPTED_OUT, None)
    assert out_mapped not in json.dumps(contact)
    summary = batch_summary(stack, day_3)
    assert (summary["counts"], summary["sent"]) == ({CALLED: 1, OPTED_OUT: 1}, 1)
    assert summary["outcomes"][lead_id(out_batch)]["state"] == OPTED_OUT
    # Never reserved: an opted-out person leaves no attempt; the callable ones one each.
    assert [counted_history(ledger, n) for n in (out_mapped, out_batch)] == [[], []]
    assert [counted_history(ledger, n) for n in (fresh_mapped, fresh_batch)] == [[CALLED], [CALLED]]


def test_a_mapped_call_and_a_batch_calling_the_same_people_in_one_run_call_each_once(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool, ledger: ContactLedger
) -> None:
    people = numbers.take(6)
    day_4 = run_day(stack, "ledger-day-4", 3, people, list(reversed(people)))

    assert journaled(sandbox, day_4) == dict.fromkeys(people, 1)
    by_mapped = journaled(sandbox, day_4, path="mapped")
    by_batch = journaled(sandbox, day_4, path="batch")
    tasks = mapped_tasks(stack, day_4)
    outcomes = batch_summary(stack, day_4)["outcomes"]
    for index, number in enumerate(people):
        batch_state = outcomes[lead_id(number)]["state"]
        seen = (tasks[index], batch_state, by_batch[number])
        if by_mapped[number]:  # the mapped task reserved the person first: the batch was refused
            assert seen == (("success", 1), SKIPPED_RECENTLY_CALLED, 0)
        else:
            assert seen == (("skipped", 1), CALLED, 1)
            assert contact_state(stack, day_4, index)["state"] == SKIPPED_RECENTLY_CALLED
        assert counted_history(ledger, number) == [CALLED]

    # The ledger holds hashes: no number handed out in this module appears in its tables.
    dump = "\n".join(
        stack.postgres.psql(f"SELECT * FROM {table}", "ledger")
        for table in ("alta_contact_attempts", "alta_opt_outs", "alta_contact_locks")
    )
    assert dump
    assert not [n for n in numbers.handed_out() if n.lstrip("+") in dump]
