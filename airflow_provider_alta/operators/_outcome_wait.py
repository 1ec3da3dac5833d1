"""A placed single call's wait for its outcome: the deferral to the outcome trigger, and the resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta import send_record
from airflow_provider_alta.operators import _common, _state_store
from airflow_provider_alta.outcome import unavailable
from airflow_provider_alta.send_record import CALLED, ProgressStore

if TYPE_CHECKING:
    from airflow_provider_alta.payload import AssistantCall


def follow(
    task: Any,
    call: AssistantCall,
    stored: dict[str, Any],
    progress: ProgressStore | None,
    key: str,
    by: str,
) -> dict[str, Any]:
    """Wait for the placed call (``stored``: its masked result) to end: defer, or say why not."""
    call_id = stored.get("call_id")
    if not call_id:
        reason = "Alta's answer carried no call id, so the call's outcome cannot be followed"
        task.log.warning("%s. The call WAS placed and is not placed again.", reason)
        result = {**stored, "outcome": unavailable(reason)}
        if progress is not None:
            progress.set(key, send_record.record(CALLED, by, result=result))
        return task._shown(result, call)  # type: ignore[no-any-return]
    from airflow_provider_alta.triggers.alta import AltaCallOutcomeTrigger

    deadline = _common.now_utc() + task.outcome_timeout
    task.log.info(
        "Call %s placed; waiting for it to end (a read every %g s, until %s)",
        call_id,
        task.outcome_poll_interval,
        deadline.isoformat(),
    )
    trigger = AltaCallOutcomeTrigger(
        call_id=call_id,
        alta_conn_id=task.alta_conn_id,
        poll_interval=task.outcome_poll_interval,
        deadline=deadline,
    )
    _common.defer_waiting(task, trigger=trigger, method_name="execute_outcome", kwargs={"placed": stored})


def resumed(
    task: Any, context: Any, call: AssistantCall, event: Any, placed: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The placed result plus its masked outcome, from the outcome trigger's ``event``."""
    if not isinstance(event, Mapping) or not event.get("call_id"):
        raise AirflowException("The wait for the call's outcome ended without an event")
    call_id = str(event["call_id"])
    status = event.get("status")
    if status == "timeout":
        raise AirflowException(
            f"Call {call_id} was placed but had not ended after {task.outcome_timeout}. It is never "
            f"placed again: {retry_note()}"
        )
    if status != "ended":
        raise AirflowFailException(
            f"Could not read call {call_id} ({event.get('error')}: {event.get('message')}). The "
            "call was placed and is not placed again."
        )
    progress, key, by = task._record_of(context, call)
    earlier = progress.get(key) if progress is not None else None
    stored = _state_store.stored_result(earlier) or placed or task._result(call, "placed", masked=True)
    result = {**stored, "call_id": call_id, "outcome": event.get("outcome")}
    if progress is not None:
        by = earlier.get("by", by) if isinstance(earlier, Mapping) else by
        progress.set(key, send_record.record(CALLED, by, result=result))
    task.log.info("Call %s ended: %s", call_id, _common.brief_outcome(result["outcome"]))
    return task._shown(result, call)  # type: ignore[no-any-return]


def retry_note() -> str:
    """What a retry after an outcome timeout does."""
    if AIRFLOW_V_3_3_PLUS:
        return "a retry waits for this same call again."
    return (
        "without Airflow 3.3's task state store a retry cannot find this call, and refuses to "
        "call unless allow_rerun_without_progress=True."
    )
