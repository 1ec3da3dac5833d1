"""Test DAG: upstream values that look like Jinja must reach Alta as literal text."""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

EVIL = "{{ conn.alta_default.password }}"


@dag(
    schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, params={"assistant": "asst_param"}
)
def alta_test_literal_mapping() -> None:
    @task
    def kwargs_rows() -> list[dict[str, object]]:
        return [{"name": EVIL, "phone_number": "+12025550101", "data": {"note": "{{ 6 * 7 }}"}}]

    @task
    def prospects() -> list[dict[str, object]]:
        return [{"name": EVIL, "phone_number": "+12025550102", "email": "{{ds}}@example.com"}]

    common = {"assistant_id": "{{ params.assistant }}", "calling_hours": False}
    TriggerAssistantCallOperator.partial(task_id="by_expand_kwargs", **common).expand_kwargs(kwargs_rows())
    TriggerAssistantCallOperator.partial(task_id="by_prospect", **common).expand(prospect=prospects())
    TriggerAssistantCallOperator.partial(task_id="by_expand", **common, name="Plain").expand(
        phone_number=["+12025550103"], data=[{"note": "{{ 6 * 7 }}"}]
    )


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def alta_test_secret_guard() -> None:
    TriggerAssistantCallOperator(
        task_id="leaky",
        assistant_id="asst_1",
        name="Leaky Template",
        phone_number="+12025550104",
        data={"oops": "{{ conn.alta_default.password }}"},
        calling_hours=False,
    )


alta_test_literal_mapping()
alta_test_secret_guard()


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"calling_hours": "08:00-21:00", "timezone": "UTC"},
)
def alta_test_deferral() -> None:
    TriggerAssistantCallOperator(
        task_id="deferred_call",
        assistant_id="asst_1",
        name="Deferred Until Open",
        phone_number="+12025550105",
        timezone="{{ params.timezone }}",
        calling_hours="{{ params.calling_hours }}",
    )


alta_test_deferral()
