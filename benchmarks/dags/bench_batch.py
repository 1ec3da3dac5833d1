"""Benchmark DAG: the same records in one ``BatchTriggerAssistantCallsOperator`` task."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

FIELD_MAP = {"full_name": "name", "phone": "phone_number", "tz": "timezone", "plan": "data.plan"}


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"records": [], "calling_hours": "08:00-21:00"},
)
def bench_batch() -> None:
    @task(show_return_value_in_logs=False)
    def records(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return list(params["records"])

    BatchTriggerAssistantCallsOperator(
        task_id="call",
        prospects=records(),
        field_map=FIELD_MAP,
        assistant_id="asst_bench",
        data={"run_id": "{{ run_id }}"},
        calling_hours="{{ params.calling_hours }}",
        pool="alta_api",
    )


bench_batch()
