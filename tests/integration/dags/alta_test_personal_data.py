"""Test DAG: personal data reaches Alta, and nothing Airflow keeps holds it unmasked.

The people arrive as run configuration, as a pipeline's upstream data would; the test scans what
Airflow stored for the Alta tasks (rendered fields, XCom, task state, triggers) and every log line.
"""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator
from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def alta_test_personal_data() -> None:
    TriggerAssistantCallOperator(
        task_id="single",
        assistant_id="asst_pii",
        name="Grace Hopper",
        phone_number="{{ dag_run.conf['people'][0]['phone_number'] }}",
        email="{{ dag_run.conf['people'][0]['email'] }}",
        data={"note": "call back on {{ dag_run.conf['people'][0]['phone_number'] }}"},
        call_transfer={"phone_number": "{{ dag_run.conf['transfer'] }}"},
        calling_hours=False,
    )

    @task(show_return_value_in_logs=False)
    def people(**context: object) -> list[dict[str, str]]:
        return context["dag_run"].conf["people"]  # type: ignore[attr-defined,no-any-return]

    records = people()
    TriggerAssistantCallOperator.partial(
        task_id="mapped", assistant_id="asst_pii", calling_hours=False
    ).expand(prospect=records)
    BatchTriggerAssistantCallsOperator(
        task_id="batch",
        prospects=records,
        assistant_id="asst_pii",
        data={"campaign": "pii", "contact": "{{ dag_run.conf['people'][1]['email'] }}"},
        calling_hours=False,
        calls_per_minute=6000,
        dedupe_key=None,
    )


alta_test_personal_data()
