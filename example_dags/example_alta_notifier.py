"""An Alta assistant calls the on-call engineer when the nightly load fails (once per failure)."""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.notifications.alta import AltaNotifier, send_alta_notification

# The on-call number comes from a Variable at call time, so it is not in the DAG file; outside the
# on-call person's hours the notifier logs a warning and calls nobody (it never waits).
on_call = AltaNotifier(
    assistant_id="asst_oncall",
    phone_number="{{ var.value.get('alta_on_call_number', '+12025550100') }}",
    name="On-call engineer",
    timezone="America/New_York",
    calling_hours="07:00-22:00",
    data={
        "summary": "{{ ti.task_id }} failed in {{ dag.dag_id }} (try {{ ti.try_number }})",
        "run_id": "{{ run_id }}",
        "log_url": "{{ ti.log_url }}",
    },
)


@dag(
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
    # The DAG-level call (the default data: dag, task, run, masked error, log URL) is left to a
    # failed task that has its own notifier for the same person: one call per failure.
    on_failure_callback=send_alta_notification(
        assistant_id="asst_oncall",
        phone_number="{{ var.value.get('alta_on_call_number', '+12025550100') }}",
        timezone="America/New_York",
        calling_hours="07:00-22:00",
    ),
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=5)},
)
def example_alta_notifier() -> None:
    @task(on_failure_callback=on_call)  # called after the last retry fails, not on each retry
    def load_warehouse() -> None:
        raise RuntimeError("warehouse load failed: upstream file missing")

    load_warehouse()


example_alta_notifier()
