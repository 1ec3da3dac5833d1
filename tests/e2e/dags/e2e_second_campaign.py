"""End-to-end DAG: a second bulk campaign on the same token and pool as the example campaign."""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator
from pathlib import Path

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

LEADS_CSV = Path(__file__).parent / "data" / "second_leads.csv"


def leads() -> Iterator[dict[str, str]]:
    with open(LEADS_CSV, newline="") as f:
        for row in csv.DictReader(f):
            yield {"lead_id": row["lead_id"], "name": row["full_name"], "phone_number": row["phone"],
                   "timezone": row["timezone"]}  # fmt: skip


with DAG(
    dag_id="e2e_second_campaign",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"calling_hours": "off"},
) as dag:
    BatchTriggerAssistantCallsOperator(
        task_id="call_campaign",
        prospects=leads,
        field_map={"lead_id": "data.lead_id"},
        record_key="lead_id",
        assistant_id="asst_e2e_second",
        data={"campaign": "second", "run_id": "{{ run_id }}"},
        calling_hours="{{ params.calling_hours }}",
        pool="alta_api",
    )
