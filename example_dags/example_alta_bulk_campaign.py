"""A bulk campaign: stream a CSV of leads into one batch task that calls them all at the rate limit.

Every lead ends in one state (called, invalid, rejected, ambiguous, skipped or not reached) in the
task's XCom summary. On Airflow 3.3+ a retry or a re-run resumes without calling anyone twice.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator
from pathlib import Path

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

LEADS_CSV = Path(__file__).parent / "data" / "sample_leads.csv"
COLUMNS = ("lead_id", "full_name", "phone", "email", "timezone", "plan")


def consented_leads() -> Iterator[dict[str, str]]:
    """Stream the leads that agreed to be called, one row at a time, with only the columns we send."""
    with open(LEADS_CSV, newline="") as f:
        for row in csv.DictReader(f):
            if row["consent"].strip().lower() == "yes":
                yield {column: row[column] for column in COLUMNS}


with DAG(
    dag_id="example_alta_bulk_campaign",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
    params={"assistant_id": "asst_demo", "calling_hours": "08:00-21:00"},
) as dag:
    BatchTriggerAssistantCallsOperator(
        task_id="call_campaign",
        prospects=consented_leads,
        field_map={
            "lead_id": "data.lead_id",
            "full_name": "name",
            "phone": "phone_number",
            "plan": "data.plan",
        },
        record_key="lead_id",
        assistant_id="{{ params.assistant_id }}",
        data={"campaign": "sample", "run_id": "{{ run_id }}"},
        default_region="US",
        calling_hours="{{ params.calling_hours }}",
        max_failure_ratio=0.5,
        pool="alta_api",
    )
