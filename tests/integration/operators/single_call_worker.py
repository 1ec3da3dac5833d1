"""A single-call worker for the kill test: one try of TriggerAssistantCallOperator with a durable store.

The store is the harness's ``SqliteStateStore`` (a commit per write, like Airflow 3.3's task state
store), so what one try wrote is there for the next try after a SIGKILL.
Usage: python single_call_worker.py STORE_PATH TRY_NUMBER [IGNORED]
Prints ``RESULT <json>``, or ``FAILED <message>`` and exits 1.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

from alta_testing.state_store import SqliteStateStore


def main() -> None:
    store_path, try_number = sys.argv[1], int(sys.argv[2])
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

    task = TriggerAssistantCallOperator(
        task_id="call", assistant_id="asst_kill", name="Ada", phone_number="+12025550143", calling_hours=False
    )
    context = {"task_state_store": SqliteStateStore(store_path), "ti": SimpleNamespace(try_number=try_number)}
    try:
        result = task.execute(context)
    except AirflowFailException as exc:
        print(f"FAILED {exc}", flush=True)
        sys.exit(1)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
