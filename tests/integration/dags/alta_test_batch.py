"""Test DAG: a batch that must wait out a long 429 by deferring, then resume without resending."""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

with DAG(
    dag_id="alta_test_batch_defer",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
) as dag:
    BatchTriggerAssistantCallsOperator(
        task_id="campaign",
        prospects=[{"name": f"Lead {i}", "phone_number": f"+1202555{i:04d}"} for i in range(100, 110)],
        assistant_id="asst_batch",
        calling_hours=False,
        defer_threshold=5,
        calls_per_minute=600,
    )
