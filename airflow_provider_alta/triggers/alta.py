"""Triggers: ResumeAtTrigger (wait until a moment, hand a batch's progress back) and
AltaCallOutcomeTrigger (wait until a placed call has ended)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_alta.exceptions import AltaAPIError, AltaAuthenticationError, AltaNotFoundError
from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.outcome import masked_outcome


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


class AltaCallOutcomeTrigger(BaseTrigger):
    """Poll ``GET /calls/{call_id}`` every ``poll_interval`` seconds until the call ends or ``deadline``.

    Fires once with ``{"status", "call_id", ...}``: ``ended`` (with the masked ``outcome``),
    ``timeout`` (with the last masked ``outcome`` seen, if any) or ``error`` (``error``: ``not_found``,
    ``unauthorized`` or ``failed``, and a masked ``message``). Rate limits, connection failures and
    answers that could not be read are waited out: reading a call changes nothing. Its kwargs and
    events hold ids, times and masked outcomes only.
    """

    def __init__(
        self,
        call_id: str,
        alta_conn_id: str = "alta_default",
        poll_interval: float = 30.0,
        deadline: datetime | str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.call_id = call_id
        self.alta_conn_id = alta_conn_id
        self.poll_interval = float(poll_interval)
        if not self.poll_interval > 0:
            raise ValueError("poll_interval must be more than 0 seconds")
        moment = datetime.fromisoformat(deadline) if isinstance(deadline, str) else deadline
        if moment is not None and moment.tzinfo is None:
            raise ValueError("deadline must be timezone-aware")
        self.deadline = moment

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "call_id": self.call_id,
                "alta_conn_id": self.alta_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": None if self.deadline is None else self.deadline.isoformat(),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_alta.hooks.alta import AltaHook

        hook = AltaHook(alta_conn_id=self.alta_conn_id)
        try:
            async for event in self._poll(hook):
                yield TriggerEvent(event)  # type: ignore[no-untyped-call]
                return
        finally:
            hook.close()

    async def _poll(self, hook: Any) -> AsyncIterator[dict[str, Any]]:
        latest: dict[str, Any] | None = None
        while True:
            wait = self.poll_interval
            try:
                call = await hook.aget_call(self.call_id)
            except (AltaNotFoundError, AltaAuthenticationError) as exc:
                kind = "not_found" if isinstance(exc, AltaNotFoundError) else "unauthorized"
                yield self._event("error", error=kind, message=mask_text(str(exc)))
                return
            except AltaAPIError as exc:
                if not exc.task_retry:  # e.g. a 400: asking again gets the same answer
                    yield self._event("error", error="failed", message=mask_text(str(exc)))
                    return
                wait = max(wait, float(getattr(exc, "retry_after", 0) or 0))
                self.log.warning("Reading call %s failed, will read again: %s", self.call_id, exc)
            else:
                latest = masked_outcome(call)
                if latest["ended"]:
                    yield self._event("ended", outcome=latest)
                    return
            left = self._left()
            if left is not None and left <= 0:
                yield self._event("timeout", outcome=latest)
                return
            await asyncio.sleep(wait if left is None else min(wait, left))

    def _left(self) -> float | None:
        if self.deadline is None:
            return None
        return (self.deadline - datetime.now(timezone.utc)).total_seconds()

    def _event(self, status: str, **fields: Any) -> dict[str, Any]:
        return {"status": status, "call_id": self.call_id, **fields}
