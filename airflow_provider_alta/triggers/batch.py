"""BatchWaitTrigger: a batch's wait for its calling windows (or Alta's rate limit), never silent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_alta.campaign import WAIT_LOG_EVERY, duration
from airflow_provider_alta.triggers.alta import ResumeAtTrigger

LOG_EVERY = WAIT_LOG_EVERY  # while it waits, the trigger logs at least this often (seconds)


class BatchWaitTrigger(ResumeAtTrigger):
    """A :class:`ResumeAtTrigger` that logs when it starts, every ``log_every`` seconds and when it fires.

    ``waiting`` (how many records wait) and ``resumes`` (the moment, described in local time and
    UTC) are for the log only: a count and a time, never personal data.
    """

    def __init__(
        self,
        moment: datetime | str,
        progress: Mapping[str, Any] | None = None,
        waiting: int = 0,
        resumes: str = "",
        log_every: float = LOG_EVERY,
    ) -> None:
        super().__init__(moment, progress)
        self.waiting = int(waiting)
        self.resumes = resumes or self.moment.isoformat()
        self.log_every = float(log_every)
        if not self.log_every > 0:
            raise ValueError("log_every must be more than 0 seconds")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "waiting": self.waiting, "resumes": self.resumes, "log_every": self.log_every}

    def _left(self) -> float:
        return (self.moment - datetime.now(timezone.utc)).total_seconds()

    def _what(self) -> str:
        return f"{self.waiting} record(s) waiting" if self.waiting else "waiting for Alta's rate limit"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info(
            "Alta batch deferred: %s; resumes %s (in %s)", self._what(), self.resumes, duration(self._left())
        )
        while (left := self._left()) > 0:
            await asyncio.sleep(min(left, self.log_every))
            if (left := self._left()) > 0:
                self.log.info(
                    "Alta batch still deferred: %s; resumes %s (in %s)",
                    self._what(),
                    self.resumes,
                    duration(left),
                )
        self.log.info("Alta batch: resuming now (%s)", self._what())
        event = {"moment": self.moment.isoformat(), "progress": self.progress, "waiting": self.waiting}
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]
