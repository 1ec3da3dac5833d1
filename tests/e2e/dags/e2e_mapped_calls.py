"""End-to-end DAG: a mapped single call over an upstream list read from a file, then a summary.

The list is read when the upstream task runs, so a test can change it and clear the run.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"leads_file": ""},
    default_args={"retries": 1, "retry_delay": datetime.timedelta(seconds=2)},
)
def e2e_mapped_calls() -> None:
    @task(show_return_value_in_logs=False)
    def leads(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return list(json.loads(Path(params["leads_file"]).read_text()))

    calls = TriggerAssistantCallOperator.partial(
        task_id="call_lead",
        assistant_id="asst_e2e",
        data={"run_id": "{{ run_id }}"},
        calling_hours="off",
        pool="alta_api",
    ).expand(prospect=leads())

    @task
    def summary(results: list[dict[str, Any]]) -> dict[str, int]:
        return {"placed": sum(1 for r in results if r["status"] == "placed")}

    summary(calls.output)


e2e_mapped_calls()
