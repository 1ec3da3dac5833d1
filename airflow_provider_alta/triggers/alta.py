"""ResumeAtTrigger: wait in the triggerer until a moment, then hand a batch's progress back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ResumeAtTrigger(BaseTrigger):
    """Fire at ``moment`` with ``{"moment": ..., "progress": ...}``.

    The batch operator's progress rides in the event as well as in the deferral's kwargs, so it
    survives every way Airflow resumes a task (including ``dag.test()`` on Airflow 2, which keeps
    only the event).
    """

    def __init__(self, moment: datetime | str, progress: Mapping[str, Any] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        if self.moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        self.progress = dict(progress) if progress is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"moment": self.moment.isoformat(), "progress": self.progress},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (left := (self.moment - datetime.now(timezone.utc)).total_seconds()) > 0:
            await asyncio.sleep(min(left, 60.0))
        yield TriggerEvent({"moment": self.moment.isoformat(), "progress": self.progress})  # type: ignore[no-untyped-call]
