"""One Alta call, driven by DAG params: trigger it from the UI with the person's details."""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

with DAG(
    dag_id="example_alta_single_call",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
    params={
        "assistant_id": Param("asst_demo", type="string", description="Alta assistant that calls"),
        "name": Param("Ada Lovelace", type="string"),
        "phone_number": Param("+12025550143", type="string", description="E.164, or national US"),
        "timezone": Param("America/New_York", type="string", description="IANA zone; empty: from number"),
        "notes": Param("Asked for a demo", type="string"),
        "calling_hours": Param("08:00-21:00", type="string"),
    },
) as dag:
    TriggerAssistantCallOperator(
        task_id="call",
        assistant_id="{{ params.assistant_id }}",
        name="{{ params.name }}",
        phone_number="{{ params.phone_number }}",
        timezone="{{ params.timezone }}",
        data={"notes": "{{ params.notes }}", "source": "airflow", "run_id": "{{ run_id }}"},
        calling_hours="{{ params.calling_hours }}",
        default_region="US",
        pool="alta_api",
    )
