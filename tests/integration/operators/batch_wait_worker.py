"""A batch in its own process that waits in-process for a calling window, for the SIGTERM test.

Airflow's task-runner SIGTERM handler is installed first (as ``batch_sigterm_worker.py`` does).
Every record is outside its window (it opens in about two hours) and ``defer_threshold`` is longer,
so the batch waits in this process. Prints ``SUMMARY <json>`` and ``RAISED <class>: <message>``.
Usage: python batch_wait_worker.py STORE_PATH TRY_NUMBER COUNT
"""

from __future__ import annotations

import datetime
import json
import signal
import sys

from batch_sigterm_worker import airflow_sigterm_handler  # beside this script (sys.path[0])

from alta_testing.state_store import FakeTI, SqliteStateStore


def closed_window() -> str:
    """A daily UTC window that opens in about two hours (never wrapping past midnight)."""
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
    if start.hour == 23 and start.minute > 28:
        start = start.replace(hour=0, minute=30)
    end = start + datetime.timedelta(minutes=30)
    return f"{start:%H:%M}-{end:%H:%M}"


def main() -> None:
    store_path, try_number, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

    prospects = [
        {"name": f"Lead {i}", "phone_number": f"+1202555{i:04d}", "timezone": "UTC"}
        for i in range(100, 100 + count)
    ]
    task = BatchTriggerAssistantCallsOperator(
        task_id="campaign",
        prospects=prospects,
        assistant_id="asst_wait",
        calling_hours=closed_window(),
        defer_threshold=6 * 3600,
    )
    signal.signal(signal.SIGTERM, airflow_sigterm_handler(task))
    ti = FakeTI(try_number)
    try:
        summary = task.execute({"task_state_store": SqliteStateStore(store_path), "ti": ti})
    except BaseException as exc:
        print(f"RAISED {type(exc).__name__}: {exc}", flush=True)
        summary = ti.xcom.get("summary")
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
