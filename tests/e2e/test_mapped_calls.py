"""End to end: a mapped single call never calls anyone twice, on a real LocalExecutor deployment.

A worker killed while its call is in flight, a finished run cleared with its downstream, and a
cleared run whose upstream list changed: each is checked against the sandbox's journal. And a call
whose outcome is awaited in the real triggerer, then acted on (``example_alta_call_outcome``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.campaign_checks import called_numbers, calls_where
from alta_testing.data.numbers import NumberPool
from alta_testing.servers.deployment import AirflowStack

E2E_DAGS = Path(__file__).parent / "dags"
LIMIT, WINDOW = 50, 10.0
DAG = "e2e_mapped_calls"
OUTCOME_DAG = "example_alta_call_outcome"
EXAMPLES = Path(__file__).parents[2] / "example_dags"

pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="a later try knows whom it called through Airflow 3.3's task state store"
)


@pytest.fixture(scope="module")
def stack(sandbox: AltaSandbox) -> Iterator[AirflowStack]:
    deployment = AirflowStack(
        dags=[E2E_DAGS / "e2e_mapped_calls.py", EXAMPLES / "example_alta_call_outcome.py"],
        executor="LocalExecutor",
        pool_slots=3,
        parallelism=8,
        keep_logs=Path(__file__).parents[2] / "artifacts" / "e2e" / "mapped-calls",
    )
    with deployment.serving(sandbox.base_url, sandbox.token, [DAG, OUTCOME_DAG]):
        yield deployment


def _leads(stack: AirflowStack, name: str, numbers: list[str]) -> Path:
    path = stack.home / f"{name}.json"
    path.write_text(json.dumps([{"name": f"M{i}", "phone_number": n} for i, n in enumerate(numbers)]))
    return path


def _calls(sandbox: AltaSandbox, run: str) -> list[dict[str, Any]]:
    return calls_where(sandbox.calls(), run_id=run)


def _call_tasks(stack: AirflowStack, run: str) -> dict[int, tuple[str, int]]:
    return {
        t["map_index"]: (t["state"], t["try_number"])
        for t in stack.task_instances(DAG, run)
        if t["task_id"] == "call_lead"
    }


def test_a_call_task_killed_mid_send_is_not_called_again_by_its_retry(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    [number] = numbers.take(1)
    sandbox.set_faults(script=["latency:60"])  # the sandbox holds its answer: the call is in flight
    try:
        run = stack.trigger(DAG, {"leads_file": str(_leads(stack, "killed", [number]))})
        deadline = time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, "the call did not reach the sandbox"
            running = [
                t
                for t in stack.task_instances(DAG, run)
                if t["task_id"] == "call_lead" and t["state"] == "running" and t["pid"]
            ]
            if _calls(sandbox, run) and running:
                break
            time.sleep(0.2)
        os.kill(running[0]["pid"], signal.SIGKILL)
        state = stack.wait_for_run(DAG, run)
    finally:
        sandbox.set_faults(None)
    assert state == "failed"  # the retry found the call in flight and refused to place it again
    assert called_numbers(_calls(sandbox, run)) == {number: 1}
    assert _call_tasks(stack, run) == {0: ("failed", 2)}


def test_clearing_a_finished_mapped_run_calls_nobody_again_and_a_changed_list_calls_only_the_newcomer(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    first = numbers.take(4)
    leads_file = _leads(stack, "cleared", first)
    run = stack.trigger(DAG, {"leads_file": str(leads_file)})
    assert stack.wait_for_run(DAG, run) == "success"
    assert called_numbers(_calls(sandbox, run)) == dict.fromkeys(first, 1)

    # Clear the upstream task with its downstream, as "clear downstream" in the UI does.
    stack.clear(DAG, run, ["leads"], downstream=True)
    assert stack.wait_for_run(DAG, run) == "success"
    assert called_numbers(_calls(sandbox, run)) == dict.fromkeys(first, 1)
    assert set(_call_tasks(stack, run).values()) == {("success", 2)}
    assert stack.xcom(DAG, run, "summary") == {"placed": 4}

    # The upstream list changes (index 1 is now someone else) and the run is cleared again.
    [newcomer] = numbers.take(1)
    changed = [first[0], newcomer, first[2], first[3]]
    _leads(stack, "cleared", changed)
    stack.clear(DAG, run, ["leads"], downstream=True)
    assert stack.wait_for_run(DAG, run) == "success"
    assert called_numbers(_calls(sandbox, run)) == {**dict.fromkeys(first, 1), newcomer: 1}
    assert set(_call_tasks(stack, run).values()) == {("success", 3)}


def test_the_outcome_is_awaited_in_the_triggerer_and_a_follow_up_becomes_a_crm_task(
    stack: AirflowStack, sandbox: AltaSandbox, numbers: NumberPool
) -> None:
    [number] = numbers.take(1)
    sandbox.configure(call_start_delay=0.5, call_duration=1.0)
    summary = "Asked for a follow-up call next week about the pro plan."
    conf = {
        "phone_number": number,
        "calling_hours": "off",
        "data": {"sandbox_summary": summary, "run_id": "outcome"},
    }
    run = stack.trigger(OUTCOME_DAG, conf)
    deferred = False
    deadline = time.monotonic() + 600
    while (state := stack.run_state(OUTCOME_DAG, run)) not in ("success", "failed"):
        assert time.monotonic() < deadline, "the run did not finish"
        tis = {t["task_id"]: t["state"] for t in stack.task_instances(OUTCOME_DAG, run)}
        deferred = deferred or tis.get("call") == "deferred"
        time.sleep(0.5)
    assert state == "success"
    assert deferred, "the call task never waited in the triggerer"
    states = {t["task_id"]: (t["state"], t["try_number"]) for t in stack.task_instances(OUTCOME_DAG, run)}
    assert states["call"] == ("success", 1)
    assert states["create_crm_task"][0] == "success"
    assert states["log_outcome"][0] == "skipped"
    assert called_numbers(calls_where(sandbox.calls(), run_id="outcome")) == {number: 1}
    result = stack.xcom(OUTCOME_DAG, run, "call")
    outcome = result["outcome"]
    assert outcome["ended"] is True
    assert outcome["summary"] == summary
    assert outcome["id"] == result["call_id"]
    assert number not in json.dumps(result)  # masked: +1202***01xx
    assert sandbox.stats()["gets"] >= 1
