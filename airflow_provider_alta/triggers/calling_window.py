"""CallingWindowTrigger: a single call's wait for its calling window, never silent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_alta.campaign import duration

#: While it waits, the trigger logs at least this often (seconds).
LOG_EVERY = 600.0
#: How to stop waiting, for the log: the operator's two settings that do not wait.
HOW_NOT_TO_WAIT = 'to call now, set calling_hours="off"; not to wait, set outside_calling_hours="skip"'


class CallingWindowTrigger(BaseTrigger):
    """Fire at ``moment`` (when the window opens) with ``{"moment": ...}``, logging while it waits.

    ``who`` (the record key or the masked number) and ``opens`` (the moment in the person's local
    time and in UTC) are for the log only; the trigger's kwargs hold no personal data.
    """

    def __init__(
        self, moment: datetime | str, who: str = "the call", opens: str = "", log_every: float = LOG_EVERY
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        if self.moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        self.who = who
        self.opens = opens or f"{self.moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
        self.log_every = float(log_every)
        if not self.log_every > 0:
            raise ValueError("log_every must be more than 0 seconds")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "moment": self.moment.isoformat(),
                "who": self.who,
                "opens": self.opens,
                "log_every": self.log_every,
            },
        )

    def _left(self) -> float:
        return (self.moment - datetime.now(timezone.utc)).total_seconds()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info(
            "Waiting for the calling window of %s: opens %s, in %s (%s)",
            self.who,
            self.opens,
            duration(self._left()),
            HOW_NOT_TO_WAIT,
        )
        while (left := self._left()) > 0:
            await asyncio.sleep(min(left, self.log_every))
            if (left := self._left()) > 0:
                self.log.info(
                    "Still waiting for the calling window of %s: opens %s, in %s",
                    self.who,
                    self.opens,
                    duration(left),
                )
        self.log.info("The calling window of %s is open: resuming the task", self.who)
        yield TriggerEvent({"moment": self.moment.isoformat()})  # type: ignore[no-untyped-call]
