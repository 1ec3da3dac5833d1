"""Benchmark DAG: one mapped ``TriggerAssistantCallOperator`` per record, in the ``alta_api`` pool.

As the README shows it: templates in ``partial()``, the records from upstream through ``field_map``,
calling hours checked in each record's timezone.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

FIELD_MAP = {"full_name": "name", "phone": "phone_number", "tz": "timezone", "plan": "data.plan"}


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"records": [], "calling_hours": "08:00-21:00"},
)
def bench_mapped_alta() -> None:
    @task(show_return_value_in_logs=False)
    def records(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return list(params["records"])

    TriggerAssistantCallOperator.partial(
        task_id="call",
        assistant_id="asst_bench",
        field_map=FIELD_MAP,
        data={"run_id": "{{ run_id }}"},
        calling_hours="{{ params.calling_hours }}",
        pool="alta_api",
    ).expand(prospect=records())


bench_mapped_alta()
