"""The durable task state store of the test tooling, and the bits of a task instance the batch uses.

:class:`SqliteStateStore` is SQLite with a commit per write, like Airflow 3.3's database-backed task
state store, so what one try wrote is there for the next try, even after a SIGKILL.
:func:`start_batch_worker` runs one try of a batch in its own process with such a store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from alta_testing.environment import CONN_ENV, alta_connection


class SqliteStateStore:
    """The task state store's ``get``/``set``, durable across processes (a commit per write)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value of ``key``, or ``default``."""
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, durably."""
        self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(value)))


class FakeTI:
    """The bits of a task instance the batch operator uses: ``try_number`` and ``xcom_push``."""

    def __init__(self, try_number: int) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        """Keep the pushed value (the operator pushes its summary before failing)."""
        self.xcom[key] = value


def start_batch_worker(
    script: Path, store: Path, try_number: int, count: int, *, url: str, token: str, home: Path
) -> subprocess.Popen[str]:
    """Start ``python SCRIPT STORE TRY COUNT``: one try of a batch in its own process, resuming ``store``.

    The worker's ``alta_default`` points at the sandbox ``url`` (600 calls a minute), its Airflow
    home is ``home``; its output (stdout and stderr) is piped as text.
    """
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        CONN_ENV: alta_connection(url, token, calls_per_minute=600),
    }
    args = [sys.executable, str(script), str(store), str(try_number), str(count)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
