"""The batch's per-record outcomes, moved out of XCom to an ObjectStoragePath when there are many."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.outcome_sink import render_path, write_jsonl

LOCAL_PROTOCOLS = ("", "file", "local")


def check_options(limit: int | None, path: str, total: int | None) -> None:
    """Check ``outcomes_xcom_limit``, ``total`` and ``outcomes_path`` (Jinja: once rendered)."""
    if limit is not None and limit < 0:
        raise ValueError(f"outcomes_xcom_limit must be 0 or more, or None, not {limit!r}")
    if total is not None and total < 0:
        raise ValueError(f"total must be 0 or more, or None, not {total!r}")
    if "{{" not in path and "{%" not in path:
        render_path(path, {})


def push_summary(context: Mapping[str, Any], summary: dict[str, Any]) -> None:
    """The summary in XCom ``summary``, for a task that is about to fail."""
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key="summary", value=summary)


def keep_out_of_xcom(task: Any, context: Mapping[str, Any], summary: dict[str, Any]) -> None:
    """:func:`move_outcomes` with the batch task's options; on a failure the summary is pushed first."""
    try:
        written = move_outcomes(
            summary,
            limit=task.outcomes_xcom_limit,
            template=task.outcomes_path,
            conn_id=task.outcomes_conn_id,
            values=path_values(task, context),
        )
    except AirflowException:
        push_summary(context, summary)
        raise
    if written:
        task.log.info("Alta batch: %d outcomes written to %s", summary["outcomes_count"], written)


def path_values(task: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """The placeholders of ``outcomes_path`` for this task instance (defaults outside a DAG run)."""
    ti = context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or _dag_id(task)
    run_id = context.get("run_id") or getattr(ti, "run_id", None) or "no_run"
    map_index = getattr(ti, "map_index", None)
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task.task_id,
        "map_index": map_index if isinstance(map_index, int) else -1,
        "try_number": getattr(ti, "try_number", None) or 1,
    }


def _dag_id(task: Any) -> str:
    try:
        return str(task.dag_id) if task.has_dag() else "no_dag"
    except Exception:
        return "no_dag"


def move_outcomes(
    summary: dict[str, Any],
    *,
    limit: int | None,
    template: str,
    conn_id: str | None,
    values: Mapping[str, Any],
) -> str | None:
    """With more than ``limit`` outcomes, write them as JSON lines and leave the path in ``summary``.

    Returns the path written, or ``None`` when the outcomes stay in XCom. ``summary["outcomes"]``
    becomes ``{}``; ``outcomes_path`` and ``outcomes_count`` say where they went and how many.
    """
    outcomes = summary.get("outcomes") or {}
    if limit is None or len(outcomes) <= limit:
        return None
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    where = render_path(template, values)
    try:
        path = ObjectStoragePath(where, conn_id=conn_id)
        if path.protocol in LOCAL_PROTOCOLS:
            path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:  # type: ignore[no-untyped-call]
            count = write_jsonl(outcomes, out)
    except Exception as exc:
        summary["outcomes"] = {}
        summary["outcomes_error"] = mask_text(f"{type(exc).__name__}: {exc}")
        raise AirflowException(
            f"Could not write {len(outcomes)} outcomes to {where} ({summary['outcomes_error']}); "
            "a retry calls nobody twice. Counts in XCom 'summary'."
        ) from exc
    summary["outcomes"] = {}
    summary["outcomes_path"] = str(path)
    summary["outcomes_count"] = count
    return str(path)
