"""A single call outside its calling window: fail, skip, or wait in the triggerer, saying until when."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_provider_alta.campaign import duration
from airflow_provider_alta.operators import _common
from airflow_provider_alta.triggers.calling_window import HOW_NOT_TO_WAIT, CallingWindowTrigger

if TYPE_CHECKING:
    from airflow_provider_alta.calling_hours import WindowDecision

_ZONES_SHOWN = 3


def outside_window(task: Any, decision: WindowDecision, who: str) -> NoReturn:
    """Apply ``task.outside_calling_hours`` to a closed window: fail, skip, or defer until it opens."""
    if task.outside_calling_hours == "fail":
        raise AirflowFailException(decision.reason)
    if task.outside_calling_hours == "skip" or decision.opens_at is None:
        raise AirflowSkipException(decision.reason)
    opens = describe_opening(decision.opens_at, decision.zones)
    task.log.info("%s; deferring until then", decision.reason)
    task.log.info(
        "The call to %s resumes %s, in %s (%s)",
        who,
        opens,
        duration((decision.opens_at - _common.now_utc()).total_seconds()),
        HOW_NOT_TO_WAIT,
    )
    trigger = CallingWindowTrigger(decision.opens_at, who=who, opens=opens)
    _common.defer_waiting(task, trigger=trigger, method_name="execute_complete")


def describe_opening(moment: Any, zones: tuple[str, ...]) -> str:
    """When a window opens, in the person's local time and UTC.

    ``2026-11-24 08:00 America/New_York (13:00 UTC)``; with several zones, each one's local time.
    """
    utc = moment.in_timezone("UTC")
    local = [
        f"{moment.in_timezone(zone):%Y-%m-%d %H:%M} {zone}"
        for zone in zones[:_ZONES_SHOWN]
        if zone not in ("UTC", "Etc/UTC")
    ]
    if not local:
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    more = f" and {len(zones) - _ZONES_SHOWN} more zones" if len(zones) > _ZONES_SHOWN else ""
    return f"{', '.join(local)}{more} ({utc:%Y-%m-%d %H:%M} UTC)"
