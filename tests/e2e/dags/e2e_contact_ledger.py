"""End-to-end DAG: the same people called by a mapped single call and by a batch, under the contact ledger.

``dag_run.conf`` names two JSON files of leads (``mapped_leads``, ``batch_leads``; an empty path is
no leads), read when the upstream tasks run. The connection's ``contact_ledger`` and
``contact_policy`` extras decide who may be called; the two paths call with different assistants
and put their name in ``data.path``, so the sandbox's journal tells them apart.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator
from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator


def _read(path: str) -> list[dict[str, Any]]:
    return list(json.loads(Path(path).read_text())) if path else []


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"mapped_leads": "", "batch_leads": ""},
    default_args={"retries": 1, "retry_delay": datetime.timedelta(seconds=2)},
)
def e2e_contact_ledger() -> None:
    @task(show_return_value_in_logs=False)
    def mapped_leads(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return _read(params["mapped_leads"])

    @task(show_return_value_in_logs=False)
    def batch_leads(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        return _read(params["batch_leads"])

    TriggerAssistantCallOperator.partial(
        task_id="call_lead",
        assistant_id="asst_e2e_ledger_mapped",
        field_map={"lead_id": "data.lead_id"},
        data={"run_id": "{{ run_id }}", "path": "mapped"},
        calling_hours="off",
        pool="alta_api",
    ).expand(prospect=mapped_leads())

    BatchTriggerAssistantCallsOperator(
        task_id="call_batch",
        prospects=batch_leads(),
        field_map={"lead_id": "data.lead_id"},
        record_key="lead_id",
        assistant_id="asst_e2e_ledger_batch",
        data={"run_id": "{{ run_id }}", "path": "batch"},
        calling_hours="off",
        pool="alta_api",
    )


e2e_contact_ledger()
