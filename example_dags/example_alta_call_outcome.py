"""Place one call, wait until it has ended, then act on how it went.

``wait_for_outcome=True`` waits in the triggerer (no worker slot) until Alta reports the call ended;
the task's result then carries ``call_id`` and a masked ``outcome`` (duration, times, the AI summary
with numbers and emails masked). A summary that asks for a follow-up becomes a CRM task; any other
outcome is only logged. Only masked data reaches the logs.
"""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

log = logging.getLogger(__name__)
# "asked for a follow-up call" is one; "no follow-up is needed" is not.
FOLLOW_UP = re.compile(r"(?<!\bno )\bfollow[- ]?up\b", re.IGNORECASE)


@dag(
    dag_id="example_alta_call_outcome",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
    params={
        "assistant_id": Param("asst_demo", type="string", description="Alta assistant that calls"),
        "name": Param("Ada Lovelace", type="string"),
        "phone_number": Param("+12025550143", type="string", description="E.164, or national US"),
        "timezone": Param("America/New_York", type="string"),
        "data": Param({"notes": "Asked for a demo"}, type="object", description="passed to the assistant"),
        "calling_hours": Param("08:00-21:00", type="string"),
    },
)
def example_alta_call_outcome() -> None:
    # The lead holds a phone number: keep it out of the log.
    @task(multiple_outputs=True, show_return_value_in_logs=False)
    def lead(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The person to call (here from the run's params; in practice, from a CRM)."""
        assert params is not None
        return {k: params[k] for k in ("name", "phone_number", "timezone", "data")}

    person = lead()
    # Values from XCom are data: Airflow never renders them as templates.
    call = TriggerAssistantCallOperator(
        task_id="call",
        assistant_id="{{ params.assistant_id }}",
        name=person["name"],
        phone_number=person["phone_number"],
        timezone=person["timezone"],
        data=person["data"],
        calling_hours="{{ params.calling_hours }}",
        default_region="US",
        wait_for_outcome=True,
        outcome_poll_interval=30,
        outcome_timeout=datetime.timedelta(hours=1),
        pool="alta_api",
    )

    @task.branch
    def route(result: dict[str, Any]) -> str:
        """A summary that asks for a follow-up goes to the CRM; anything else is logged."""
        summary = (result.get("outcome") or {}).get("summary") or ""
        return "create_crm_task" if FOLLOW_UP.search(summary) else "log_outcome"

    @task(show_return_value_in_logs=False)
    def create_crm_task(result: dict[str, Any]) -> dict[str, Any]:
        """Stand-in for a CRM API call: a follow-up task for the person called (masked data only)."""
        outcome = result["outcome"]
        crm_task = {
            "type": "follow_up",
            "call_id": result["call_id"],
            "phone_number": result["phone_number"],  # masked unless include_phone_in_xcom
            "note": outcome.get("summary", ""),
            "due": (datetime.date.today() + datetime.timedelta(days=7)).isoformat(),
        }
        log.info("CRM task created: follow-up for call %s (%s)", crm_task["call_id"], crm_task["note"])
        return crm_task

    @task
    def log_outcome(result: dict[str, Any]) -> None:
        """No follow-up asked for: record how the call went."""
        outcome = result.get("outcome") or {}
        log.info(
            "No follow-up for call %s: %s (%s s)",
            result.get("call_id"),
            outcome.get("summary", outcome.get("status")),
            outcome.get("duration"),
        )

    route(call.output) >> [create_crm_task(call.output), log_outcome(call.output)]


example_alta_call_outcome()
