"""Benchmark DAG: ``HttpOperator`` mapped the same way, posting the same JSON bodies to the sandbox.

The ``alta_http`` connection carries the sandbox's URL and the bearer header in its extras; the
bodies are built upstream (no validation, no calling hours: the raw cost of a mapped HTTP post).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from airflow.providers.common.compat.sdk import dag, task
from airflow.providers.http.operators.http import HttpOperator


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, params={"records": []})
def bench_mapped_http() -> None:
    @task(show_return_value_in_logs=False)
    def records(params: dict[str, Any] | None = None, run_id: str | None = None) -> list[str]:
        assert params is not None
        return [
            json.dumps(
                {
                    "assistantId": "asst_bench",
                    "name": r["full_name"],
                    "phoneNumber": r["phone"],
                    "timezone": r["tz"],
                    "data": {"run_id": run_id, "plan": r["plan"]},
                }
            )
            for r in params["records"]
        ]

    HttpOperator.partial(
        task_id="call",
        http_conn_id="alta_http",
        endpoint="assistant/calls",
        method="POST",
        pool="alta_api",
    ).expand(data=records())


bench_mapped_http()
