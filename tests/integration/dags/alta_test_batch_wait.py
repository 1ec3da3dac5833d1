"""Test DAG: a batch whose records wait for their calling window (conf ``calling_hours``), deferring."""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

with DAG(
    dag_id="alta_test_batch_wait",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
) as dag:
    BatchTriggerAssistantCallsOperator(
        task_id="campaign",
        prospects=[
            {"lead_id": f"L{i}", "name": f"Lead {i}", "phone_number": f"+1202555{i:04d}", "timezone": "UTC"}
            for i in range(100, 103)
        ],
        record_key="lead_id",
        assistant_id="asst_batch",
        calling_hours="{{ dag_run.conf.get('calling_hours', 'off') }}",
    )
