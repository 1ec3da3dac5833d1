"""Benchmark DAG: N mapped no-op tasks in the ``alta_api`` pool, the machine's ceiling for mapped tasks.

Shaped like the call DAGs (one upstream list from ``params.records``, then ``call`` mapped over it),
so the only difference is what a mapped task does.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.common.compat.sdk import dag, task


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, params={"records": []})
def bench_mapped_noop() -> None:
    @task(show_return_value_in_logs=False)
    def records(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return list(params["records"])

    @task(pool="alta_api")
    def call(prospect: dict[str, Any]) -> None:
        return None

    call.expand(prospect=records())


bench_mapped_noop()
