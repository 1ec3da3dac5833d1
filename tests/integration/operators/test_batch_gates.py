"""The batch paces itself, lowered by the rate Alta states; the account's limiter is in the hook's client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from airflow_provider_alta.bulk import Stopper
from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
from airflow_provider_alta.pacing import DEFAULT_MARGIN, Pacer
from airflow_provider_alta.rate_budget import budget_for
from airflow_provider_alta.shared_limiter import SharedLimiter, budget_bucket_key
from alta_testing.environment import alta_connection
from alta_testing.servers import redis_server

pytestmark = pytest.mark.integration

TOKEN = "sandbox-batch-gates-token"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = redis_server.RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


def batch(**kwargs) -> BatchTriggerAssistantCallsOperator:
    options = {
        "task_id": "campaign",
        "prospects": [],
        "assistant_id": "asst_1",
        "field_map": {"lead": "data.lead_id", "phone": "phone_number"},
        "record_key": "lead",
        "calling_hours": False,
        **kwargs,
    }
    return BatchTriggerAssistantCallsOperator(**options)


def test_the_batch_paces_itself_and_the_hooks_client_holds_the_accounts_limiter(
    alta_sandbox_factory, monkeypatch, redis_url
):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    account = f"acme-{uuid.uuid4().hex[:8]}"
    extra = {"account": account, "calls_per_minute": 600, "rate_limiter_url": redis_url}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, TOKEN, **extra))
    task, stopper = batch(concurrent_tasks=2), Stopper()
    hook = task._hook(stopper)
    (pacer,) = task._gates(hook.settings, stopper)  # no SharedLimiter among the batch's gates
    assert isinstance(pacer, Pacer)
    assert pacer.interval == pytest.approx(60 / 300 / (1 - DEFAULT_MARGIN))  # its half of 600 a minute
    (limiter,) = hook.client.gates
    assert isinstance(limiter, SharedLimiter)
    assert limiter.key == budget_bucket_key(hook.settings.budget_key)
    assert limiter.limit == 600
    budget = budget_for(hook.settings.budget_key)
    budget.reserve()
    budget.settle({"RateLimit-Limit": "100", "RateLimit-Policy": "100;w=60"})  # Alta states 100 a minute
    assert pacer.interval == pytest.approx(60 / 50 / (1 - DEFAULT_MARGIN))  # half of the stated rate
    assert limiter.limit == 100
    hook.close()


def test_the_batchs_own_redis_url_reaches_the_hook(alta_sandbox_factory, monkeypatch, redis_url):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, TOKEN))
    hook = batch(rate_limiter_url=redis_url)._hook(Stopper())
    assert [type(gate) for gate in hook.client.gates] == [SharedLimiter]
    hook.close()
    assert batch()._hook(Stopper()).client.gates == ()


def test_a_batch_slows_to_the_lower_limit_alta_states_and_draws_no_429(alta_sandbox_factory, monkeypatch):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit="10/1")  # 600 a minute, said in every answer
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, TOKEN, calls_per_minute=1200)
    )
    records = [{"lead": f"L{i}", "name": f"Lead {i}", "phone": f"+1202555{i:04d}"} for i in range(100, 130)]
    summary = batch(prospects=records).execute({})
    assert summary["counts"] == {"called": 30}
    assert sandbox.stats()["responses"] == {"200": 30}
