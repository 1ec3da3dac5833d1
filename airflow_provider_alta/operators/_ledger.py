"""The contact ledger on the operators' side: the gate a task applies, its label, and a blocked single call.

The rule itself is :mod:`airflow_provider_alta.contact_gate`; this module only reads it off the
task and its connection: ``contact_policy`` (the task's, else the connection's ``contact_policy``
extra, else opt-outs only) and the connection's ``contact_ledger``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_provider_alta.config import parse_contact_policy_field
from airflow_provider_alta.contact_gate import Blocked, ContactGate, blocked_reason, next_allowed_iso
from airflow_provider_alta.contact_policy import ContactPolicy
from airflow_provider_alta.exceptions import AltaConfigurationError
from airflow_provider_alta.masking import mask_phone
from airflow_provider_alta.operators import _state_store

if TYPE_CHECKING:
    from airflow_provider_alta.bulk import Plan
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.payload import AssistantCall

#: The XCom key a skipped single call pushes its contact state under.
XCOM_KEY = "contact"


def check_policy(value: Any) -> None:
    """At construction: a literal ``contact_policy`` must parse (a template is checked once rendered)."""
    if value is None or (isinstance(value, str) and ("{{" in value or "{%" in value)):
        return
    try:
        ContactPolicy.parse(value)
    except ValueError as exc:
        raise ValueError(f"contact_policy: {exc}") from None


def policy_of(hook: AltaHook, contact_policy: Any) -> ContactPolicy | None:
    """The policy a task applies; refused (naming the fields) when there is no ledger to apply it."""
    own = parse_contact_policy_field(contact_policy)
    settings = hook.settings
    text = own if own is not None else settings.contact_policy
    if settings.contact_ledger is None and text is not None:
        source = "contact_policy" if own is not None else "the connection's contact_policy extra"
        raise AltaConfigurationError(
            f"contact_policy {text!r} (from {source}) needs a contact ledger: set the "
            f"{hook.alta_conn_id!r} connection's contact_ledger extra to a SQLAlchemy URL"
        )
    return None if text is None else ContactPolicy.parse(text)


def gate_for(hook: AltaHook, contact_policy: Any) -> ContactGate | None:
    """The task's contact gate, or ``None`` when the connection has no ledger (and no policy)."""
    policy = policy_of(hook, contact_policy)
    ledger = hook.contact_ledger()
    return None if ledger is None else ContactGate(ledger, policy)


def task_label(context: Any, task: Any) -> str:
    """``dag_id/run_id/task_id/map_index``: one task instance, the same on every try; no personal data."""
    ti = context.get("ti") if context is not None else None
    dag_id = getattr(ti, "dag_id", None) or getattr(task, "dag_id", None) or "-"
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "-"
    task_id = getattr(ti, "task_id", None) or task.task_id
    map_index = getattr(ti, "map_index", None)
    return f"{dag_id}/{run_id}/{task_id}/{map_index if isinstance(map_index, int) else -1}"


def resumable(context: Any) -> bool:
    """Whether "no record" in the task state store proves nothing was sent: a store that
    ``[state_store] clear_on_success`` does not erase (Airflow 3.3+)."""
    return context.get("task_state_store") is not None and not _state_store.clear_on_success()


@contextmanager
def opened_gate(hook: AltaHook, contact_policy: Any) -> Iterator[ContactGate | None]:
    """:func:`gate_for`, its ledger closed after; a configuration error fails the task (no retry)."""
    try:
        gate = gate_for(hook, contact_policy)
    except AltaConfigurationError as exc:
        raise AirflowFailException(str(exc)) from exc
    try:
        yield gate
    finally:
        if gate is not None:
            gate.ledger.close()


def skip_blocked(context: Any, blocked: Blocked, call: AssistantCall, gate: ContactGate | None) -> NoReturn:
    """Push the contact state (XCom ``contact``, number masked) and skip the task."""
    state = {
        "state": blocked.reason,
        "next_allowed": next_allowed_iso(blocked),
        "assistant_id": call.assistant_id,
        "phone_number": mask_phone(call.phone_number),
    }
    ti = context.get("ti") if context is not None else None
    push = getattr(ti, "xcom_push", None)
    if callable(push):
        push(key=XCOM_KEY, value=state)
    reason = blocked_reason(blocked, call.phone_number, None if gate is None else gate.policy)
    raise AirflowSkipException(f"{blocked.reason}: {reason}")


def apply_to_plan(plan: Plan, hook: AltaHook, task: Any, context: Any) -> None:
    """Give a batch's plan its contact gate, label and resume proof; a dry run without a usable
    connection has no ledger to read."""
    if task.is_dry_run:
        try:
            _ = hook.settings
        except Exception:
            task.log.info("Dry run without a usable %r connection: no contact ledger", task.alta_conn_id)
            return
    try:
        plan.contact = gate_for(hook, task.contact_policy)
    except AltaConfigurationError as exc:
        raise AirflowFailException(str(exc)) from exc
    plan.contact_by = task_label(context, task)
    plan.contact_resume = not task.is_dry_run and resumable(context)


def settle_maybe_placed(hook: AltaHook, contact_policy: Any, e164: str, by: str, log: Any) -> None:
    """An earlier try may have placed this call: mark its reservation ambiguous (it counts)."""
    try:
        gate = gate_for(hook, contact_policy)
    except Exception as exc:  # the task fails anyway (maybe placed): say why the ledger was not told
        log.warning("Could not open the contact ledger to mark this call ambiguous: %s", exc)
        return
    if gate is not None:
        gate.settle_maybe_placed(e164, by)
        gate.ledger.close()
