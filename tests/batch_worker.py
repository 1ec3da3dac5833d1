"""A batch worker process for the kill test: runs the batch operator with a durable state store.

The store (the harness's ``SqliteStateStore``) is SQLite with a commit per write, like Airflow
3.3's database-backed task state store, so what one try wrote is there for the next try after a SIGKILL.
Usage: python batch_worker.py STORE_PATH TRY_NUMBER COUNT
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

from alta_testing.state_store import SqliteStateStore  # the one durable store of the test tooling


def main() -> None:
    store_path, try_number, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

    prospects = [{"name": f"Lead {i}", "phone_number": f"+1202555{i:04d}"} for i in range(100, 100 + count)]
    task = BatchTriggerAssistantCallsOperator(
        task_id="campaign", prospects=prospects, assistant_id="asst_kill", calling_hours=False
    )
    ti = SimpleNamespace(try_number=try_number, xcom_push=lambda **_: None)
    summary = task.execute({"task_state_store": SqliteStateStore(store_path), "ti": ti})
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
