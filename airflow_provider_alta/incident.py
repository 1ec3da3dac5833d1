"""A failure an on-call call is about: its key (one call per failure and person), the call's default
``data``, and a durable record of it on this machine. Pure Python: no Airflow.

The notifier keeps its send records (:mod:`~airflow_provider_alta.send_record`) in Airflow 3.3's task
state store when a task callback has one, else in :class:`IncidentRecords`: an SQLite file whose
:meth:`~IncidentRecords.claim` is atomic, so two callbacks of one failure running at once (two
processes) place one call.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.send_record import UNSENT, describe_error, progress_key

#: The ``task_id`` part of the key of a DAG run's own failure (no failed task named).
DAG_SCOPE = "dag"
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class Incident:
    """One failure: a task instance's try, or a DAG run (``task_id`` ``None``)."""

    dag_id: str
    run_id: str
    task_id: str | None = None
    map_index: int = -1
    try_number: int | None = None
    error: str | None = None
    log_url: str | None = None
    reason: str | None = None

    def key(self, assistant_id: str, phone_e164: str) -> str:
        """The record key: one call per failure and person (a hash: no number is stored)."""
        occurrence: Any = self.try_number if self.task_id is not None else "dag_run_failed"
        return progress_key(
            (
                "alta-notifier",
                self.dag_id,
                self.run_id,
                self.task_id if self.task_id is not None else DAG_SCOPE,
                self.map_index,
                occurrence,
                assistant_id,
                phone_e164,
            )
        )

    def describe(self) -> str:
        """``dag_id.task_id[map_index] (run run_id, try n)``, for logs."""
        where = self.dag_id if self.task_id is None else f"{self.dag_id}.{self.task_id}"
        if self.map_index >= 0:
            where += f"[{self.map_index}]"
        try_part = f", try {self.try_number}" if self.task_id is not None and self.try_number else ""
        return f"{where} (run {self.run_id}{try_part})"

    def data(self) -> dict[str, Any]:
        """The call's default ``data``: what failed, where, why (masked), and the log's URL."""
        values: dict[str, Any] = {
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "run_id": self.run_id,
            "map_index": self.map_index if self.map_index >= 0 else None,
            "try_number": self.try_number if self.task_id is not None else None,
            "error": self.error,
            "reason": self.reason,
            "log_url": self.log_url,
        }
        return {k: v for k, v in values.items() if v is not None}


def short_error(error: BaseException | str | None) -> str | None:
    """An error as one short line, phone numbers and emails masked (``None`` stays ``None``)."""
    if error is None:
        return None
    if isinstance(error, BaseException):
        return describe_error(error)
    text = mask_text(str(error))
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "\u2026"


class IncidentRecords:
    """Send records in an SQLite file: durable, shared by every process on this machine.

    A record is claimed atomically (``BEGIN IMMEDIATE``): of two processes claiming one key, one
    gets to send. ``get``/``set`` make it a :class:`~airflow_provider_alta.send_record.ProgressStore`.
    """

    def __init__(self, path: str, *, timeout: float = 30.0) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS alta_incident (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )

    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM alta_incident WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO alta_incident (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def claim(self, key: str, value: Any) -> Any:
        """Write ``value`` unless a record other than ``unsent`` is there; return that record, or
        ``None`` when this caller claimed the key (and may send)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            earlier = self.get(key)
            state = earlier.get("state") if isinstance(earlier, dict) else None
            if earlier is not None and state != UNSENT:
                self.db.execute("COMMIT")
                return earlier
            self.set(key, value)
            self.db.execute("COMMIT")
            return None
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()


__all__ = ["DAG_SCOPE", "Incident", "IncidentRecords", "short_error"]
