"""A leads pipeline: read a CSV, clean, dedupe and filter it, call each lead through Alta, summarise.

The calls are mapped tasks in the ``alta_api`` pool, whose size caps how many run at once
(see the README on sizing it against Alta's 100 calls a minute). Each mapped task gets one
record as ``prospect``: record values are data and are never rendered as templates.
"""

from __future__ import annotations

import csv
import datetime
import logging
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

LEADS_CSV = Path(__file__).parent / "data" / "sample_leads.csv"
log = logging.getLogger(__name__)


@dag(
    dag_id="example_alta_leads_pipeline",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
    params={
        "assistant_id": "asst_demo",
        "leads_csv": str(LEADS_CSV),
        "default_region": "US",
        "calling_hours": "08:00-21:00",
    },
)
def example_alta_leads_pipeline() -> None:
    @task(show_return_value_in_logs=False)  # the rows hold phone numbers: keep them out of the log
    def extract(params: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """Read the leads export."""
        assert params is not None
        with open(params["leads_csv"], newline="") as f:
            return list(csv.DictReader(f))

    @task(show_return_value_in_logs=False)
    def clean(
        rows: list[dict[str, str]], params: dict[str, Any] | None = None, ti: Any = None
    ) -> list[dict[str, Any]]:
        """Keep consented leads, validate them with the provider's model, dedupe by E.164 number.

        Returns the leads to call; the others are pushed as XCom ``rejected``, each with its reason.
        """
        from airflow_provider_alta.exceptions import AltaValidationError
        from airflow_provider_alta.payload import build_call

        assert params is not None
        prospects: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        for row in rows:
            lead_id = row["lead_id"]
            if row.get("consent", "").strip().lower() != "yes":
                rejected.append({"lead_id": lead_id, "reason": "no consent to be called"})
                continue
            record = {
                "name": row["full_name"],
                "phone_number": row["phone"],
                "email": row["email"] or None,
                "timezone": row["timezone"] or None,
                "data": {"lead_id": lead_id, "plan": row["plan"]},
            }
            try:
                call = build_call(
                    {**record, "assistant_id": params["assistant_id"]},
                    default_region=params["default_region"],
                )
            except AltaValidationError as exc:
                rejected.append({"lead_id": lead_id, "reason": "; ".join(str(e) for e in exc.errors)})
                continue
            if call.phone_number in seen:
                rejected.append({"lead_id": lead_id, "reason": f"duplicate of {seen[call.phone_number]}"})
                continue
            seen[call.phone_number] = lead_id
            prospects.append({**record, "phone_number": call.phone_number})
        for item in rejected:
            log.info("Not calling lead %s: %s", item["lead_id"], item["reason"])
        log.info("%d leads to call, %d not called", len(prospects), len(rejected))
        ti.xcom_push(key="rejected", value=rejected)
        return prospects

    prospects = clean(extract())
    calls = TriggerAssistantCallOperator.partial(
        task_id="call_lead",
        assistant_id="{{ params.assistant_id }}",
        default_region="{{ params.default_region }}",
        calling_hours="{{ params.calling_hours }}",
        outside_calling_hours="skip",
        pool="alta_api",
        retries=2,
        retry_delay=datetime.timedelta(seconds=30),
    ).expand(prospect=prospects)

    @task(trigger_rule="all_done")
    def summary(results: Any, prospects: list[dict[str, Any]], ti: Any = None) -> dict[str, int]:
        """Count outcomes: every lead ends up placed, skipped or failed, or rejected before calling."""
        rejected = ti.xcom_pull(task_ids="clean", key="rejected") or []
        placed = [r for r in results if r and r.get("status") == "placed"]
        counts = {
            "leads": len(prospects) + len(rejected),
            "rejected_before_calling": len(rejected),
            "placed": len(placed),
            "not_placed": len(prospects) - len(placed),
        }
        log.info("Alta campaign summary: %s", counts)
        return counts

    summary(calls.output, prospects)


example_alta_leads_pipeline()
