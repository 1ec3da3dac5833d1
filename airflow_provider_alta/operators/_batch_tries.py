"""The batch's guard on later tries (never send without knowing whom earlier tries called), its
record source, and how it ends a wait in its own process."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

STARTED = "alta:batch-started"  # with clear_on_success: this task's records exist (not erased)


def check_rerun(log: Any, context: Mapping[str, Any], store: Any, allow: bool) -> None:
    """Refuse a later try that cannot know whom earlier tries called (unless ``allow``).

    Without a task state store it cannot know. With ``[state_store] clear_on_success``, Airflow
    erases the records when the task succeeds: a marker written at the start tells a retry after
    a failure (records kept) from a re-run after a success (records erased).
    """
    from airflow_provider_alta.operators import _state_store

    erasable = store is not None and _state_store.clear_on_success()
    if erasable:
        _state_store.warn_clear_on_success(log)
    try_number = _state_store.try_number(context)
    unknown = store is None or (erasable and store.get(STARTED) is None)
    if try_number > 1 and unknown and not allow:
        why = (
            "[state_store] clear_on_success erased the records of earlier tries"
            if store is not None
            else "without Airflow 3.3's task state store"
        )
        raise AirflowFailException(
            f"Refusing to re-run this batch: {why}, so this try cannot know whom an earlier try "
            "already called. Check the earlier try's summary, or set "
            "allow_rerun_without_progress=True to send again (may call people twice)."
        )
    if erasable:
        _state_store.TaskStateProgress(store).set(STARTED, {"by": f"try {try_number}"})


def check_resume(context: Mapping[str, Any], progress: Any, allow: bool) -> None:
    """Refuse to resume from the triggerer when the progress was lost and no store holds it."""
    if progress is None and context.get("task_state_store") is None and not allow:
        raise AirflowFailException(
            "Refusing to resume this batch: its progress was lost on the way back from the "
            "triggerer, so it cannot know whom it already called. Set allow_rerun_without_progress=True "
            "to send again (may call people twice)."
        )


def read_source(source: Any) -> Iterable[Any]:
    """The records; a callable that raises becomes a source that raises (reported, not a crash)."""
    if not callable(source):
        return source  # type: ignore[no-any-return]
    try:
        records: Iterable[Any] = source()
    except Exception as exc:
        return _raising(exc)
    return records


def task_terminated() -> BaseException:
    """Airflow's ``AirflowTaskTerminated`` (a ``BaseException``: it ends the process's wait)."""
    try:
        from airflow.sdk.exceptions import AirflowTaskTerminated
    except ImportError:  # Airflow 2
        from airflow.exceptions import AirflowTaskTerminated  # type: ignore[no-redef,attr-defined,unused-ignore]
    terminated: BaseException = AirflowTaskTerminated(
        "Alta batch: stopped while deferred (SIGTERM or on_kill)"
    )
    return terminated


def _raising(exc: Exception) -> Iterator[Any]:
    """A record source whose first read raises ``exc``."""
    raise exc
    yield  # a generator
