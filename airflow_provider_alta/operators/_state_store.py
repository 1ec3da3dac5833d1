"""Airflow 3.3+'s task state store as the operators' durable send records (``send_record``), and
what a later try does without one.

Rows of the task state store are scoped to (DAG run, task, map index): retries and clears of a task
instance see them; they go away with their DAG run (a foreign key with ``ON DELETE CASCADE``, so
``airflow db clean`` of ``dag_run`` removes them), when they expire, or, with ``[state_store]
clear_on_success``, when the task instance succeeds. Records are written with ``NEVER_EXPIRE`` so
that the default retention (``default_retention_days``, 30) cannot expire them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from airflow_provider_alta.send_record import SENDING, Earlier, ProgressStore

log = logging.getLogger(__name__)
_warned_clear_on_success = False


class TaskStateProgress:
    """Records in Airflow 3.3+'s task state store, which survives retries, restarts and clears.

    Every record is written with ``retention=NEVER_EXPIRE`` when the store takes a retention
    (Airflow's does; the test tooling's durable store does not).
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._retention = _never_expire(store)

    def get(self, key: str) -> Any:
        return self.store.get(key)

    def set(self, key: str, value: Any) -> None:
        if self._retention is None:
            self.store.set(key, value)
        else:
            self.store.set(key, value, retention=self._retention)


def task_state_progress(context: Any) -> ProgressStore | None:
    """The task state store of ``context`` as a progress store, or ``None`` (Airflow < 3.3)."""
    store = context.get("task_state_store") if context is not None else None
    return None if store is None else TaskStateProgress(store)


def clear_on_success() -> bool:
    """Whether ``[state_store] clear_on_success`` erases a task's records when it succeeds."""
    from airflow.providers.common.compat.sdk import conf

    return bool(conf.getboolean("state_store", "clear_on_success", fallback=False))


def warn_clear_on_success(logger: Any) -> None:
    """Log once (per process, so once per task try) what ``clear_on_success`` costs."""
    global _warned_clear_on_success
    if _warned_clear_on_success:
        return
    _warned_clear_on_success = True
    logger.warning(
        "[state_store] clear_on_success is on: Airflow erases this task's send records when it "
        "succeeds, so a later try without a record cannot know whether the call was placed; it "
        "refuses to call unless allow_rerun_without_progress=True"
    )


def try_number(context: Any) -> int:
    """This try's number (1 without a task instance)."""
    ti = context.get("ti") if context is not None else None
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) and number > 0 else 1


def check_rerun(context: Any, allow: bool) -> None:
    """Fail a later try that cannot know whether an earlier one placed the call, unless ``allow``.

    It cannot know without a task state store (Airflow < 3.3), or with one whose records
    ``clear_on_success`` may have erased; with a plain store, no record means nothing was sent.
    """
    from airflow.providers.common.compat.sdk import AirflowFailException

    has_store = context.get("task_state_store") is not None
    if has_store and not clear_on_success():
        return
    number = try_number(context)
    if number <= 1 or allow:
        return
    why = (
        "[state_store] clear_on_success erased the records of earlier tries"
        if has_store
        else "without Airflow 3.3's task state store"
    )
    raise AirflowFailException(
        f"Refusing to call: this is try {number}, and {why}, so it cannot know whether an "
        "earlier try placed this call. Check the earlier try's log, or set "
        "allow_rerun_without_progress=True to call anyway (may call the person twice)."
    )


def maybe_placed(earlier: Earlier) -> str:
    """Why a try that found an earlier ``sending`` (or ambiguous) record does not call."""
    if earlier.state == SENDING:
        detail = f"{earlier.when} stopped while sending it"
    else:
        detail = f"{earlier.when}: {earlier.reason or earlier.state}"
    return (
        f"Not calling: this call may have been placed ({detail}). Alta has no idempotency key, so it "
        "is never placed again; check in Alta whether the person was called."
    )


def stored_result(value: Any) -> dict[str, Any] | None:
    """The masked result kept in a ``called`` record, if any."""
    stored = value.get("result") if isinstance(value, Mapping) else None
    return dict(stored) if isinstance(stored, Mapping) else None


def _never_expire(store: Any) -> Any:
    """``NEVER_EXPIRE`` if ``store.set`` takes a ``retention``, else ``None``."""
    try:
        from airflow.sdk.execution_time.context import NEVER_EXPIRE
    except ImportError:  # Airflow < 3.3: no retention
        return None
    try:
        params = inspect.signature(store.set).parameters.values()
    except (TypeError, ValueError):
        return NEVER_EXPIRE
    takes = any(p.name == "retention" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return NEVER_EXPIRE if takes else None
