"""Asset-triggered calling: whenever the new-leads asset is updated, call the leads in it.

``example_alta_new_leads_producer`` stands in for the upstream pipeline that exports new leads
and marks the asset as updated; ``example_alta_call_new_leads`` runs on that update. On Airflow
2.11 the same code uses a Dataset. Calling hours come from the Variable ``alta_calling_hours``.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import Asset, dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

NEW_LEADS_FILE = (
    Path(os.environ.get("ALTA_EXAMPLE_DATA_DIR", tempfile.gettempdir())) / "alta-example" / "new_leads.json"
)
NEW_LEADS = Asset(NEW_LEADS_FILE.as_uri())
START = datetime.datetime(2026, 1, 1)


@dag(dag_id="example_alta_new_leads_producer", schedule=None, start_date=START, catchup=False, tags=["alta"])
def example_alta_new_leads_producer() -> None:
    @task(outlets=[NEW_LEADS])
    def export_new_leads() -> int:
        """Write the new leads and update the asset."""
        leads = [
            {"name": "Radia Perlman", "phone_number": "+12025550161", "timezone": "America/New_York"},
            {"name": "Tim Berners-Lee", "phone_number": "+442079460999", "timezone": "Europe/London"},
        ]
        NEW_LEADS_FILE.parent.mkdir(parents=True, exist_ok=True)
        NEW_LEADS_FILE.write_text(json.dumps(leads))
        return len(leads)

    export_new_leads()


@dag(
    dag_id="example_alta_call_new_leads", schedule=[NEW_LEADS], start_date=START, catchup=False, tags=["alta"]
)
def example_alta_call_new_leads() -> None:
    @task(show_return_value_in_logs=False)  # phone numbers stay out of the log
    def load_new_leads() -> list[dict[str, Any]]:
        return list(json.loads(NEW_LEADS_FILE.read_text()))

    TriggerAssistantCallOperator.partial(
        task_id="call_new_lead",
        assistant_id="asst_demo",
        data={"source": "new-leads asset", "run_id": "{{ run_id }}"},
        calling_hours="{{ var.value.get('alta_calling_hours', '08:00-21:00') }}",
        pool="alta_api",
    ).expand(prospect=load_new_leads())


example_alta_new_leads_producer()
example_alta_call_new_leads()
