"""What the single-call and batch operators share: mapped-value safety, calling hours, triggers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, literal

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

    from airflow_provider_alta.calling_hours import CallingHours

CALLING_HOURS_OFF = (False, "off")


def keep_mapped_values_literal(task: BaseOperator, task_id: str | None) -> None:
    """Mark template fields that came from ``expand``/``expand_kwargs`` as literal data.

    Airflow renders strings that ``expand_kwargs`` resolves from XCom (apache/airflow#38745);
    only values the DAG author gave in ``partial()`` may be templates. Call it from ``__init__``
    of an instance that Airflow unmapped (``_BaseOperator__from_mapped``).
    """
    if not getattr(task, "_BaseOperator__from_mapped", False):
        return
    dag = task.dag if task.has_dag() else None  # type: ignore[no-untyped-call]
    mapped = dag.task_dict.get(task_id) if dag is not None and task_id else None
    partial = getattr(mapped, "partial_kwargs", None)
    for name in task.template_fields:
        value = getattr(task, name)
        from_mapping = partial is None or value is not partial.get(name, object())
        if from_mapping and isinstance(value, str | Mapping | list | tuple):
            setattr(task, name, literal(value))


def unwrap_literal(value: Any) -> Any:
    """The value inside ``literal(...)``, for code paths that run before Airflow renders fields."""
    return value.value if type(value) is type(literal(None)) else value


def calling_hours(value: Any) -> CallingHours | None:
    """Parse an operator's ``calling_hours``; ``None`` when the check is off."""
    if value in CALLING_HOURS_OFF:
        return None
    from airflow_provider_alta.calling_hours import CallingHours

    try:
        return CallingHours.parse(value)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from exc


def now_utc() -> Any:
    import pendulum

    return pendulum.now("UTC")


def datetime_trigger(moment: Any) -> Any:
    """A trigger that fires at ``moment``, on Airflow 3 (standard provider) and 2.11 (core)."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # Airflow 2 without the standard provider
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]
    return DateTimeTrigger(moment=moment)
