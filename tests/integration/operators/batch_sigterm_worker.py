"""A batch in its own process, for the SIGTERM test: Airflow's task-runner SIGTERM handler, then the batch.

Before running, it installs the SIGTERM handler Airflow's task runner installs around ``execute``:
on Airflow 3 it calls ``on_kill``; on Airflow 2 it calls ``on_kill`` and raises
``AirflowTaskTerminated``. Progress goes to a durable SQLite store (the harness's), as with
Airflow 3.3's task state store. It prints ``SUMMARY <json>`` (the XCom summary, or the return
value), ``RAISED <class>: <message>`` when the batch raised, and ``RESTORED <bool>`` (whether
the runner's handler is back in place).
Usage: python batch_sigterm_worker.py STORE_PATH TRY_NUMBER COUNT
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

from alta_testing.state_store import FakeTI, SqliteStateStore  # the durable store of the test tooling


def airflow_sigterm_handler(task: Any) -> Any:
    """The handler Airflow's task runner installs for SIGTERM while a task executes."""
    from airflow import __version__

    def on_term(_signum: int, _frame: Any) -> None:
        task.on_kill()
        if int(__version__.split(".")[0]) < 3:
            from airflow.exceptions import AirflowTaskTerminated

            raise AirflowTaskTerminated("Task received SIGTERM signal")

    return on_term


def main() -> None:
    store_path, try_number, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

    prospects = [{"name": f"Lead {i}", "phone_number": f"+1202555{i:04d}"} for i in range(100, 100 + count)]
    task = BatchTriggerAssistantCallsOperator(
        task_id="campaign", prospects=prospects, assistant_id="asst_term", calling_hours=False
    )
    runner_handler = airflow_sigterm_handler(task)
    signal.signal(signal.SIGTERM, runner_handler)
    ti = FakeTI(try_number)
    try:
        summary = task.execute({"task_state_store": SqliteStateStore(store_path), "ti": ti})
    except BaseException as exc:
        print(f"RAISED {type(exc).__name__}: {exc}", flush=True)
        summary = ti.xcom.get("summary")
    print("SUMMARY " + json.dumps(summary), flush=True)
    print(f"RESTORED {signal.getsignal(signal.SIGTERM) is runner_handler}", flush=True)


if __name__ == "__main__":
    main()
