"""Test DAGs: mapped single calls show their record key (or masked number) as their map index.

``alta_test_mapped_labels`` calls at once; ``alta_test_mapped_wait`` waits for a calling window
given as run configuration (the test stops it with SIGTERM while it waits).
"""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

LEADS = [
    {"lead_id": "lead-0001", "name": "Ada", "mobile": "+12025550143"},
    {"lead_id": "lead-0002", "name": "Grace", "mobile": "(202) 555-0178"},
]


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def alta_test_mapped_labels() -> None:
    @task(show_return_value_in_logs=False)
    def keyed_calls() -> list[dict[str, object]]:
        return [
            {"prospect": {"name": lead["name"], "mobile": lead["mobile"]}, "record_key": lead["lead_id"]}
            for lead in LEADS
        ]

    @task(show_return_value_in_logs=False)
    def prospects() -> list[dict[str, object]]:
        return [{"name": lead["name"], "mobile": lead["mobile"]} for lead in LEADS]

    common = {
        "assistant_id": "asst_map",
        "field_map": {"mobile": "phone_number"},
        "default_region": "US",
        "calling_hours": False,
    }
    TriggerAssistantCallOperator.partial(task_id="keyed", **common).expand_kwargs(keyed_calls())
    TriggerAssistantCallOperator.partial(task_id="unkeyed", **common).expand(prospect=prospects())


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, params={"calling_hours": "off"})
def alta_test_mapped_wait() -> None:
    TriggerAssistantCallOperator.partial(
        task_id="waiting",
        assistant_id="asst_map",
        timezone="America/New_York",
        calling_hours="{{ params.calling_hours }}",
    ).expand(prospect=[{"name": "Ada", "phone_number": "+12025550143"}])


alta_test_mapped_labels()
alta_test_mapped_wait()
