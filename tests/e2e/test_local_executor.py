"""End to end on one machine: a real scheduler, dag-processor, triggerer and api-server, LocalExecutor,
PostgreSQL, the ``alta_api`` pool, and the example DAGs against the sandbox.

Every assertion about calls reads the sandbox's journal (what Alta would have received), not Airflow.
The sandbox's limit is scaled down from 100 a minute to 50 per 10 s so the suite takes minutes.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.campaign_checks import called_numbers, calls_where, received_at, twice
from alta_testing.data.leads import leads, window_opening_in, write_leads
from alta_testing.data.numbers import NumberPool
from alta_testing.servers.deployment import AirflowStack

E2E_DAGS = Path(__file__).parent / "dags"
LIMIT, WINDOW = 50, 10.0
PACE = 240  # calls a minute the batches pace at: 40 per 10 s, leaving room for the six single calls
POOL = 3
BULK = "example_alta_bulk_campaign"
PIPELINE = "example_alta_leads_pipeline"
DEFERRED = "e2e_deferred_calls"


NEEDS_STATE_STORE = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="resuming without a second call needs Airflow 3.3's task state store"
)


@pytest.fixture(scope="module")
def stack(sandbox: AltaSandbox) -> Iterator[AirflowStack]:
    deployment = AirflowStack.of_examples(
        "local-executor",
        E2E_DAGS / "e2e_deferred_calls.py",
        executor="LocalExecutor",
        pool_slots=POOL,
        parallelism=8,  # above the pool: the pool, not the executor, must be what caps the calls
        env={"AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "1", "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5"},
    )
    dag_ids = [BULK, PIPELINE, DEFERRED]
    with deployment.serving(sandbox.base_url, sandbox.token, dag_ids, calls_per_minute=PACE):
        yield deployment


@dataclass
class DeferredCampaign:
    opens: dt.datetime
    bulk_run: str
    single_run: str
    bulk_numbers: list[str]
    single_numbers: list[str]
    deferred_seen: set[tuple[str, int]]
    calls_before_open: int
    states: tuple[str, str]
    stats: dict[str, Any]


@pytest.fixture(scope="module")
def deferred_campaign(stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool) -> DeferredCampaign:
    """A bulk run of 320 and six single calls whose window opens 120-180 s after the trigger."""
    zone, window, opens = window_opening_in(120)
    bulk_leads = leads("B", numbers.take(320), zone)
    write_leads(stack.dags / "data" / "sample_leads.csv", bulk_leads)
    singles = [{"name": f"D{i}", "phone_number": n, "timezone": zone} for i, n in enumerate(numbers.take(6))]
    bulk_run = stack.trigger(BULK, {"calling_hours": window})
    single_run = stack.trigger(DEFERRED, {"leads": singles, "calling_hours": window})

    deferred_seen: set[tuple[str, int]] = set()
    while dt.datetime.now(dt.timezone.utc) < opens and len(deferred_seen) < 7:
        tis = stack.task_instances(BULK, bulk_run) + stack.task_instances(DEFERRED, single_run)
        deferred_seen |= {(t["task_id"], t["map_index"]) for t in tis if t["state"] == "deferred"}
        time.sleep(1)
    time.sleep(max(0.0, (opens - dt.datetime.now(dt.timezone.utc)).total_seconds() - 2))
    calls_before_open = len(sandbox.calls())  # two seconds before the window opens
    states = (stack.wait_for_run(BULK, bulk_run), stack.wait_for_run(DEFERRED, single_run))
    return DeferredCampaign(
        opens,
        bulk_run,
        single_run,
        [lead["phone"] for lead in bulk_leads],
        [s["phone_number"] for s in singles],
        deferred_seen,
        calls_before_open,
        states,
        sandbox.stats(),
    )


def test_calls_outside_their_window_wait_in_the_triggerer_and_are_placed_once_it_opens(
    stack: AirflowStack, sandbox: AltaSandbox, deferred_campaign: DeferredCampaign
) -> None:
    c = deferred_campaign
    assert c.states == ("success", "success")
    # every task waited as a deferred task (in the triggerer, holding no worker and no pool slot)
    assert ("call_campaign", -1) in c.deferred_seen, "the batch did not defer before the window opened"
    assert {t for t in c.deferred_seen if t[0] == "call_lead"} == {("call_lead", i) for i in range(6)}, (
        "not every single call was deferred before the window opened (infrastructure too slow?)"
    )
    assert c.calls_before_open == 0
    journal = sandbox.calls()
    bulk = calls_where(journal, run_id=c.bulk_run)
    assert called_numbers(bulk) == dict.fromkeys(c.bulk_numbers, 1)
    singles = [r for r in journal if r["body"]["phoneNumber"] in c.single_numbers]
    assert called_numbers(singles) == dict.fromkeys(c.single_numbers, 1)
    assert min(received_at(r) for r in bulk + singles) >= c.opens
    # the batch's pacing kept the rate under the limit: the sandbox never had to refuse a call
    assert c.stats["responses"] == {"200": 326}
    assert c.stats["max_in_flight"] <= POOL
    for dag_id, run in ((BULK, c.bulk_run), (DEFERRED, c.single_run)):
        finished = {
            (t["task_id"], t["map_index"]): (t["state"], t["try_number"])
            for t in stack.task_instances(dag_id, run)
        }
        assert set(finished.values()) == {("success", 1)}, finished


@NEEDS_STATE_STORE
def test_clearing_a_finished_bulk_task_calls_nobody_again(
    stack: AirflowStack, sandbox: AltaSandbox, deferred_campaign: DeferredCampaign
) -> None:
    run = deferred_campaign.bulk_run
    before = len(calls_where(sandbox.calls(), run_id=run))
    state, ti = stack.rerun_task(BULK, run, "call_campaign")
    assert state == "success"
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    assert len(calls_where(sandbox.calls(), run_id=run)) == before == 320
    summary = stack.xcom(BULK, run, "call_campaign")
    assert summary["sent"] == 0
    assert summary["counts"] == {"called": 320}


FORCED_429S = 6


def test_leads_pipeline_pool_caps_in_flight_and_429s_fail_no_task(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    pipeline_leads = leads("P", numbers.take(64), "America/New_York")
    csv_path = write_leads(stack.home / "pipeline_leads.csv", pipeline_leads)
    sandbox.reset()
    # Every answer takes a second, so calls overlap; the first six requests are refused with a 429
    # whatever the machine's speed (a slow machine may never outrun a rate limit by itself).
    sandbox.set_faults(rates={"latency": 1.0}, latency=1.0, script=["429:1"] * FORCED_429S)
    sandbox.configure(rate_limit="10/10")  # below what 3 slots send: more 429s may follow
    try:
        run = stack.trigger(PIPELINE, {"leads_csv": str(csv_path), "calling_hours": "off"})
        state = stack.wait_for_run(PIPELINE, run)
    finally:
        sandbox.set_faults(None)
        sandbox.configure(rate_limit=f"{LIMIT}/{WINDOW:g}")
    stats = sandbox.stats()
    assert state == "success"
    assert 2 <= stats["max_in_flight"] <= POOL
    assert stats["responses"].get("429", 0) >= FORCED_429S  # the sandbox refused calls, and yet:
    journal = sandbox.calls()
    assert called_numbers(journal) == {lead["phone"]: 1 for lead in pipeline_leads}
    calls = [t for t in stack.task_instances(PIPELINE, run) if t["task_id"] == "call_lead"]
    assert len(calls) == 64
    assert {(t["state"], t["try_number"]) for t in calls} == {("success", 1)}
    assert stack.xcom(PIPELINE, run, "summary")["placed"] == 64


@NEEDS_STATE_STORE
def test_worker_killed_mid_batch_is_retried_without_calling_anyone_twice(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    sandbox.reset()
    kill_leads = leads("K", numbers.take(320), "America/New_York")
    write_leads(stack.dags / "data" / "sample_leads.csv", kill_leads)
    run = stack.trigger(BULK, {"calling_hours": "off"})
    deadline = time.monotonic() + 300
    while len(calls_where(sandbox.calls(), run_id=run)) < 60:
        assert time.monotonic() < deadline, "the batch did not start calling"
        time.sleep(0.2)
    [ti] = stack.task_instances(BULK, run)
    assert ti["state"] == "running"
    assert ti["pid"]
    os.kill(ti["pid"], signal.SIGKILL)
    killed_at = len(calls_where(sandbox.calls(), run_id=run))

    assert stack.wait_for_run(BULK, run) == "success"
    [ti] = stack.task_instances(BULK, run)
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    calls = calls_where(sandbox.calls(), run_id=run)
    assert twice(calls) == {}
    assert sandbox.stats()["responses"] == {"200": len(calls)}  # the retry kept the pace too
    assert 60 <= killed_at < 320
    outcomes = stack.xcom(BULK, run, "call_campaign")["outcomes"]
    assert set(outcomes) == {lead["lead_id"] for lead in kill_leads}
    journaled = called_numbers(calls)
    for lead in kill_leads:
        state = outcomes[lead["lead_id"]]["state"]
        assert state in ("called", "ambiguous")
        assert journaled[lead["phone"]] == 1 if state == "called" else journaled[lead["phone"]] <= 1
    assert sum(o["state"] == "ambiguous" for o in outcomes.values()) <= 1


def test_no_log_holds_a_full_phone_number_or_the_token(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    """Every log the deployment wrote (components and every task try) shows numbers masked only."""
    assert len(numbers.handed_out()) >= 700
    assert stack.logs_containing([*numbers.handed_out(), sandbox.token]) == {}
