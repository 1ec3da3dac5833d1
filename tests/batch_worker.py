"""A batch worker process for the kill test: runs the batch operator with a durable state store.

The store is SQLite with a commit per write, like Airflow 3.3's database-backed task state store,
so that what one try wrote is there for the next try after a SIGKILL.
Usage: python batch_worker.py STORE_PATH TRY_NUMBER COUNT
"""

from __future__ import annotations

import json
import sqlite3
import sys
from types import SimpleNamespace
from typing import Any


class SqliteStateStore:
    """The task state store's ``get``/``set``, durable across processes."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(value)))


def main() -> None:
    store_path, try_number, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from airflow_provider_alta.operators.alta import BatchTriggerAssistantCallsOperator

    prospects = [{"name": f"Lead {i}", "phone_number": f"+1202555{i:04d}"} for i in range(100, 100 + count)]
    task = BatchTriggerAssistantCallsOperator(
        task_id="campaign", prospects=prospects, assistant_id="asst_kill", calling_hours=False
    )
    ti = SimpleNamespace(try_number=try_number, xcom_push=lambda **_: None)
    summary = task.execute({"task_state_store": SqliteStateStore(store_path), "ti": ti})
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
