"""End-to-end DAG: single calls outside their window defer, and the triggerer resumes them."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"leads": [], "calling_hours": "08:00-21:00"},
)
def e2e_deferred_calls() -> None:
    @task(show_return_value_in_logs=False)
    def leads(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return list(params["leads"])

    TriggerAssistantCallOperator.partial(
        task_id="call_lead",
        assistant_id="asst_e2e",
        calling_hours="{{ params.calling_hours }}",
        outside_calling_hours="defer",
        pool="alta_api",
    ).expand(prospect=leads())


e2e_deferred_calls()
