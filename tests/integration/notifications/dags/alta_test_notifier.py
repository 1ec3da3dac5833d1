"""Test DAGs: failing tasks whose failure callbacks are AltaNotifiers (the test sets the connection)."""

from __future__ import annotations

import datetime
import os

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.notifications.alta import AltaNotifier, send_alta_notification

ON_CALL = "+12025550188"
START = datetime.datetime(2026, 1, 1)
RECORDS = os.environ.get("ALTA_TEST_NOTIFIER_RECORDS")


@task(retries=1, retry_delay=datetime.timedelta(seconds=0))
def boom() -> None:
    raise ValueError("disk full; ask +12025550177")


# One notifier at DAG and task level, a retry before the failure: one call, with templated data.
templated = AltaNotifier(
    assistant_id="asst_oncall",
    phone_number=ON_CALL,
    name="Grace",
    calling_hours="off",
    record_path=RECORDS,
    data={
        "dag": "{{ dag.dag_id }}",
        "task": "{{ ti.task_id }}",
        "run": "{{ run_id }}",
        "try": "{{ ti.try_number }}",
    },
)


@dag(
    schedule=None,
    start_date=START,
    catchup=False,
    on_failure_callback=templated,
    default_args={"on_failure_callback": templated},
)
def alta_test_notifier_both_levels() -> None:
    boom()


# The helper, with the default data, at DAG level only.
@dag(
    schedule=None,
    start_date=START,
    catchup=False,
    on_failure_callback=send_alta_notification(
        assistant_id="asst_oncall", phone_number=ON_CALL, calling_hours="off", record_path=RECORDS
    ),
)
def alta_test_notifier_dag_level() -> None:
    boom()


# Task level, default data, outside calling hours: no call, a warning.
_CLOSED_DAY = (datetime.datetime.now(datetime.timezone.utc).isoweekday() + 2) % 7 + 1
closed = AltaNotifier(
    assistant_id="asst_oncall",
    phone_number=ON_CALL,
    timezone="UTC",
    calling_hours={"start": "00:00", "end": "23:59", "days": [_CLOSED_DAY]},
    record_path=RECORDS,
)


@dag(schedule=None, start_date=START, catchup=False, default_args={"on_failure_callback": closed})
def alta_test_notifier_closed() -> None:
    boom()


alta_test_notifier_both_levels()
alta_test_notifier_dag_level()
alta_test_notifier_closed()
