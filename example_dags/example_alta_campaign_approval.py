"""A large campaign waits for a human: preview the calls, approve or reject, then call the approved leads.

1. ``preview`` dry-runs the campaign with the batch's own checks (``preview_campaign``): how many
   would be called, the outcomes (invalid, suppressed, duplicates, outside hours, and recently called
   or opted out when the connection has a contact ledger), the recipients' timezones and a masked
   sample. Nobody is called; nothing unmasked is stored.
2. ``approve`` (Airflow 3.1+ human-in-the-loop ``ApprovalOperator``) shows that preview in the
   Required Actions page. **Approve** runs the batch; **Reject**, or no answer within 12 hours, skips
   it: nobody is called.
3. ``call_campaign`` calls the leads, but only if they are still the records that were previewed
   (same fingerprint); a changed file fails the task before anyone is called.

On Airflow before 3.1 (no human-in-the-loop operators, e.g. 2.11) the DAG still parses, but its
``approve`` task fails with a message saying so, and ``call_campaign`` never runs (upstream failed):
without an approval step nobody is called.
"""

from __future__ import annotations

import csv
import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, dag, task

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

try:  # Airflow 3.1+ with the standard provider; 3.0 raises its own "needs Airflow 3.1+" error
    from airflow.providers.standard.operators.hitl import ApprovalOperator
except Exception:
    ApprovalOperator = None  # type: ignore[assignment,misc]

LEADS_CSV = Path(__file__).parent / "data" / "sample_leads.csv"
COLUMNS = ("lead_id", "full_name", "phone", "email", "timezone", "plan")
FIELD_MAP = {"lead_id": "data.lead_id", "full_name": "name", "phone": "phone_number", "plan": "data.plan"}
# CampaignOptions the preview and the batch share, so the preview counts what the batch would do.
CHOICES: dict[str, Any] = {"record_key": "lead_id", "max_failure_ratio": 0.5}
CONN_ID = "alta_default"
log = logging.getLogger(__name__)


def consented_leads(path: str) -> Iterator[dict[str, str]]:
    """The leads that agreed to be called, with only the columns we send."""
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["consent"].strip().lower() == "yes":
                yield {column: row[column] for column in COLUMNS}


def approved_leads() -> list[dict[str, str]]:
    """The batch's records: the leads again, refused if they differ from what was approved."""
    from airflow.providers.common.compat.sdk import get_current_context

    from airflow_provider_alta.preview import records_fingerprint

    context = get_current_context()
    approved = context["ti"].xcom_pull(task_ids="preview")["fingerprint"]
    leads = list(consented_leads(context["params"]["leads_csv"]))
    if records_fingerprint(leads) != approved:
        raise ValueError("the leads changed after the preview was approved: run the DAG again to review them")
    return leads


@dag(
    dag_id="example_alta_campaign_approval",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
    doc_md=__doc__,
    params={
        "assistant_id": "asst_demo",
        "leads_csv": str(LEADS_CSV),
        "default_region": "US",
        "calling_hours": "08:00-21:00",
    },
)
def example_alta_campaign_approval() -> None:
    @task
    def preview(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Dry-run the campaign (nobody is called) and return the masked preview for the reviewer."""
        import pendulum

        from airflow_provider_alta.campaign import CampaignOptions
        from airflow_provider_alta.preview import preview_campaign

        assert params is not None
        with contact_gate(CONN_ID) as gate:
            result = preview_campaign(
                list(consented_leads(params["leads_csv"])),
                now=pendulum.now("UTC"),
                field_map=FIELD_MAP,
                assistant_id=params["assistant_id"],
                default_region=params["default_region"],
                calling_hours=params["calling_hours"],
                options=CampaignOptions(**CHOICES),
                contact=gate,
            )
        log.info("Alta campaign preview: %s %s", result.subject(), result.outcomes)
        return result.to_dict()

    if ApprovalOperator is not None:
        approve: Any = ApprovalOperator(
            task_id="approve",
            subject="{{ ti.xcom_pull(task_ids='preview')['subject'] }}",
            body="{{ ti.xcom_pull(task_ids='preview')['markdown'] }}",
            defaults="Reject",  # taken when nobody answers in time: nobody is called
            response_timeout=datetime.timedelta(hours=12),
        )
    else:

        @task(task_id="approve")
        def approval_unavailable() -> None:
            """Airflow before 3.1 has no human-in-the-loop operators: refuse rather than call unapproved."""
            raise AirflowFailException(
                "Human approval needs Airflow 3.1+ (human-in-the-loop operators); this Airflow has none, "
                "so the campaign is not called. Use example_alta_bulk_campaign's dry_run=True to review it."
            )

        approve = approval_unavailable()

    call_campaign = BatchTriggerAssistantCallsOperator(
        task_id="call_campaign",
        prospects=approved_leads,
        field_map=FIELD_MAP,
        assistant_id="{{ params.assistant_id }}",
        data={"campaign": "approved", "run_id": "{{ run_id }}"},
        default_region="{{ params.default_region }}",
        calling_hours="{{ params.calling_hours }}",
        pool="alta_api",
        **CHOICES,
    )
    preview() >> approve >> call_campaign


@contextmanager
def contact_gate(conn_id: str) -> Iterator[Any]:
    """The connection's contact ledger (read here, never written) and policy; ``None`` without a ledger."""
    from airflow_provider_alta.contact_gate import ContactGate
    from airflow_provider_alta.contact_policy import ContactPolicy
    from airflow_provider_alta.hooks.alta import AltaHook

    hook = AltaHook(alta_conn_id=conn_id)
    try:
        ledger = hook.contact_ledger()
        policy = hook.settings.contact_policy
        yield None if ledger is None else ContactGate(ledger, ContactPolicy.parse(policy) if policy else None)
    finally:
        hook.close()  # and its ledger


example_alta_campaign_approval()
