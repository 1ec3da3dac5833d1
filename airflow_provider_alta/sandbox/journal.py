"""The journal of accepted calls: kept in memory and, optionally, appended to a JSONL file."""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from airflow_provider_alta.shared_limiter import token_fingerprint as shared_fingerprint


def token_fingerprint(token: str) -> str:
    """How the sandbox shows a token: ``sha256:`` + the first 12 hex digits of the provider's one
    fingerprint (:func:`airflow_provider_alta.shared_limiter.token_fingerprint`)."""
    return "sha256:" + shared_fingerprint(token)[:12]


def new_call_id() -> str:
    """A fresh call id: a UUID, as Alta's ``get-call.yaml`` says (``format: uuid``)."""
    return str(uuid.uuid4())


class Journal:
    """Thread-safe record of every accepted call.

    Each record is ``{"id", "received_at", "account", "token_fingerprint", "body"}``;
    ``received_at`` is ISO-8601 UTC with microseconds, ``account`` the account whose token placed it
    and ``body`` the JSON exactly as received (phone numbers included: it is the user's own sandbox).
    With a ``path``, every record is also written as one JSON line and flushed at once (no fsync:
    the OS cache is enough for readers on this machine).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def append(
        self,
        body: Any,
        fingerprint: str,
        call_id: str | None = None,
        received_at: datetime | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Record one accepted call and return its record.

        ``received_at`` is its arrival (default now); ``account`` defaults to ``fingerprint`` (the
        account of a token given without one).
        """
        arrival = received_at or datetime.now(timezone.utc)
        record = {
            "id": call_id or new_call_id(),
            "received_at": arrival.astimezone(timezone.utc).isoformat(timespec="microseconds"),
            "account": account or fingerprint,
            "token_fingerprint": fingerprint,
            "body": body,
        }
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._records.append(record)
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
        return record

    def records(self) -> list[dict[str, Any]]:
        """A copy of every record, oldest first."""
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def reset(self) -> None:
        """Forget every record and empty the file."""
        with self._lock:
            self._records.clear()
            if self._file is not None:
                self._file.seek(0)
                self._file.truncate()
                self._file.flush()

    def close(self) -> None:
        """Close the file; the in-memory records stay readable."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
