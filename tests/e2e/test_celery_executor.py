"""End to end, distributed: CeleryExecutor with two workers, PostgreSQL as the metadata database and
Redis as the broker and as the shared rate limiter, all started here. Two bulk DAGs share one token
and one pool; the leads pipeline's mapped calls spread over both workers.

Every assertion about calls reads the sandbox's journal (what Alta would have received).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.campaign_checks import called_numbers, calls_where, overlap_seconds
from alta_testing.data.leads import leads, write_leads
from alta_testing.data.numbers import NumberPool
from alta_testing.servers.deployment import AirflowStack
from alta_testing.servers.redis_server import RedisServer

E2E = Path(__file__).parent
# Alta's rule is 100 per rolling 60 s per token; the sandbox keeps the 60 s window and allows 300, so
# two campaigns that each pace at 300 a minute need the shared limiter to stay within it
LIMIT, WINDOW = 300, 60.0
POOL = 3
BULK = "example_alta_bulk_campaign"
SECOND = "e2e_second_campaign"
PIPELINE = "example_alta_leads_pipeline"
WORKERS = ("worker1", "worker2")
CAMPAIGN_RUNS: dict[str, str] = {}  # the campaigns' run ids, for the clear-and-re-run test


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(sandbox: AltaSandbox, redis: RedisServer) -> Iterator[AirflowStack]:
    deployment = AirflowStack.of_examples(
        "celery-executor",
        E2E / "dags" / "e2e_second_campaign.py",
        executor="CeleryExecutor",
        pool_slots=POOL,
        parallelism=8,
        redis_url=redis.url,  # database 0: Celery's broker
        celery_workers=len(WORKERS),
        worker_concurrency=2,
        # Airflow's own option for telling processes on one machine apart: each worker names itself
        env={"AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_identity.hostname", "PYTHONPATH": str(E2E)},
        component_env={w: {"ALTA_E2E_HOSTNAME": w} for w in WORKERS},
    )
    limiter_url = redis.url.rsplit("/", 1)[0] + "/1"  # database 1: the shared rate limiter
    extra = {"calls_per_minute": LIMIT * 60 / WINDOW, "rate_limiter_url": limiter_url}
    with deployment.serving(sandbox.base_url, sandbox.token, [BULK, SECOND, PIPELINE], **extra):
        yield deployment


def test_two_campaigns_on_two_workers_share_the_limit_and_call_everyone_once(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    first = leads("A", numbers.take(300), "America/New_York")
    second = leads("S", numbers.take(300), "America/Chicago")
    write_leads(stack.dags / "data" / "sample_leads.csv", first)
    write_leads(stack.dags / "data" / "second_leads.csv", second)
    sandbox.reset()
    runs = {BULK: stack.trigger(BULK, {"calling_hours": "off"}), SECOND: stack.trigger(SECOND)}
    assert {dag: stack.wait_for_run(dag, run) for dag, run in runs.items()} == dict.fromkeys(runs, "success")

    tis = {dag: stack.task_instances(dag, run)[0] for dag, run in runs.items()}
    assert {(t["state"], t["try_number"]) for t in tis.values()} == {("success", 1)}
    assert {t["hostname"] for t in tis.values()} <= set(WORKERS)  # Celery picks the worker
    assert len({t["pid"] for t in tis.values()}) == 2  # two processes, one limit between them
    journal = sandbox.calls()
    calls = {dag: calls_where(journal, run_id=run) for dag, run in runs.items()}
    assert called_numbers(calls[BULK]) == {lead["phone"]: 1 for lead in first}
    assert called_numbers(calls[SECOND]) == {lead["phone"]: 1 for lead in second}
    assert len(journal) == 600
    # they really ran at the same time, each pacing at the whole limit on its own ...
    assert overlap_seconds(calls[BULK], calls[SECOND]) >= WINDOW / 2
    # ... and the shared limiter kept the aggregate under the limit: not one call was refused
    assert sandbox.stats()["responses"] == {"200": 600}
    CAMPAIGN_RUNS.update(runs)


def test_clearing_a_finished_campaign_calls_nobody_again(stack: AirflowStack, sandbox: AltaSandbox) -> None:
    run = CAMPAIGN_RUNS[BULK]
    before = len(sandbox.calls())
    state, ti = stack.rerun_task(BULK, run, "call_campaign")
    assert state == "success"
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    assert len(sandbox.calls()) == before
    assert stack.xcom(BULK, run, "call_campaign")["sent"] == 0


def test_leads_pipeline_spreads_over_both_workers_within_the_pool(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    pipeline_leads = leads("P", numbers.take(64), "America/New_York")
    csv_path = write_leads(stack.home / "pipeline_leads.csv", pipeline_leads)
    sandbox.reset()
    sandbox.set_faults(rates={"latency": 1.0}, latency=1.0)
    try:
        run = stack.trigger(PIPELINE, {"leads_csv": str(csv_path), "calling_hours": "off"})
        state = stack.wait_for_run(PIPELINE, run)
    finally:
        sandbox.set_faults(None)
    assert state == "success"
    assert 2 <= sandbox.stats()["max_in_flight"] <= POOL
    journal = sandbox.calls()
    assert called_numbers(journal) == {lead["phone"]: 1 for lead in pipeline_leads}
    calls = [t for t in stack.task_instances(PIPELINE, run) if t["task_id"] == "call_lead"]
    assert len(calls) == 64
    assert {(t["state"], t["try_number"]) for t in calls} == {("success", 1)}
    assert {t["hostname"] for t in calls} == set(WORKERS)


def test_no_log_holds_a_full_phone_number_or_the_token(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    """Every log the deployment wrote (components, workers, every task try) shows numbers masked only."""
    assert len(numbers.handed_out()) >= 600
    assert stack.logs_containing([*numbers.handed_out(), sandbox.token]) == {}
