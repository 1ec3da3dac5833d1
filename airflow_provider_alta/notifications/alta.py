"""AltaNotifier: an Alta assistant calls the on-call person when a DAG or task fails."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.notifier import BaseNotifier
from airflow.providers.common.compat.sdk import redact
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from airflow_provider_alta import send_record
from airflow_provider_alta.client import ResendPolicy
from airflow_provider_alta.contact_gate import Blocked, ContactGate, blocked_reason, guarded_send
from airflow_provider_alta.incident import Incident, IncidentRecords, short_error
from airflow_provider_alta.masking import mask_phone
from airflow_provider_alta.outcome import call_id_from
from airflow_provider_alta.send_record import MAYBE_PLACED, PLACED, SENDING, UNSENT, ProgressStore

if TYPE_CHECKING:
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.payload import AssistantCall

log = logging.getLogger(__name__)

RECORDS_FILE = "alta_notifier.sqlite3"


class AltaNotifier(BaseNotifier):
    """Have an Alta assistant call the on-call person, e.g. as ``on_failure_callback``.

    At most one call per failure and person: a task's failure is its (run, task, map index, try),
    a DAG run's failure its run. A DAG-level callback leaves the call to the failed task when that
    task has an AltaNotifier for the same person. Records: Airflow 3.3's task state store in task
    callbacks, else ``record_path`` (an SQLite file on this machine). A call that may have been
    placed is never placed again. With a contact ledger on the connection, a person who opted out
    is not called (no contact cap applies to on-call calls). A notifier never waits for a calling
    window: outside it, it logs a warning and places no call.

    :param assistant_id: the Alta assistant that calls.
    :param phone_number: the on-call person's number (E.164, or national with ``default_region``).
    :param name: the on-call person's name, as the assistant says it.
    :param data: JSON object for the assistant (templated); default: the DAG, task, run, try, a
        short masked error and the log URL.
    :param alta_conn_id: the Alta connection.
    :param default_region: country for numbers without ``+country`` (default: the connection's).
    :param timezone: IANA timezone of the on-call person; also decides their calling hours.
    :param calling_hours: as the operator's (default ``"08:00-21:00"``); ``"off"`` calls at any hour.
    :param rate_limit_wait: the most seconds the call waits out the account's rate budget.
    :param record_path: the SQLite file of records outside a task state store (default
        ``$AIRFLOW_HOME/alta_notifier.sqlite3``); share it between machines to dedupe across them.
    """

    template_fields: Sequence[str] = (
        "alta_conn_id",
        "assistant_id",
        "phone_number",
        "name",
        "data",
        "default_region",
        "timezone",
        "calling_hours",
    )
    template_fields_renderers = {"data": "json", "calling_hours": "json"}

    def __init__(
        self,
        *,
        assistant_id: str,
        phone_number: str,
        name: str = "On-call engineer",
        data: Mapping[str, Any] | None = None,
        alta_conn_id: str = "alta_default",
        default_region: str | None = None,
        timezone: str | None = None,
        calling_hours: Any = None,
        rate_limit_wait: float = 30.0,
        record_path: str | None = None,
    ) -> None:
        super().__init__()
        self.assistant_id = assistant_id
        self.phone_number = phone_number
        self.name = name
        self.data = data
        self.alta_conn_id = alta_conn_id
        self.default_region = default_region
        self.timezone = timezone
        self.calling_hours = calling_hours
        self.rate_limit_wait = rate_limit_wait
        self.record_path = record_path
        # Whom this notifier calls, as written in the DAG (before rendering): see _leaves_it_to_tasks.
        self.target = (str(alta_conn_id), str(assistant_id), str(phone_number))

    def _make_hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        retry = ResendPolicy(rate_limit_budget=self.rate_limit_wait, rate_limit_resends=2)
        return AltaHook(alta_conn_id=self.alta_conn_id, retry=retry)

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render; a DAG that cannot give a Jinja environment (Airflow 3's ``dag.test()`` hands DAG
        callbacks a serialized DAG) renders in Airflow's plain sandboxed one."""
        if jinja_env is None and not hasattr(context.get("dag"), "get_template_env"):
            jinja_env = self.get_template_env()
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        """Call the on-call person about the failure in ``context``, at most once."""
        dag_level = context.get("reason") is not None
        incident = _incident(context, dag_level)
        if dag_level:
            left = self._leaves_it_to_tasks(context)
            if left:
                self.log.info(
                    "%s: the failed task's own AltaNotifier calls; not calling again", incident.describe()
                )
                return
            # Unknown (a serialized task, as in Airflow 3's dag.test()): this machine's record of the
            # failed task's call decides (the incident is the task's on Airflow 3).
        hook = self._make_hook()
        try:
            call = self._build_call(hook, incident)
            why_not = self._closed_window(call)
            if why_not is not None:
                self.log.warning(
                    "Not calling %s about %s: %s. A notifier never waits; calling_hours='off' calls at "
                    "any hour.",
                    mask_phone(call.phone_number),
                    incident.describe(),
                    why_not,
                )
                return
            store = None if dag_level else context.get("task_state_store")
            by = "dag callback" if dag_level else f"task callback, try {incident.try_number or 1}"
            self._call_once(hook, call, incident, store, by)
        finally:
            hook.close()

    def _build_call(self, hook: AltaHook, incident: Incident) -> AssistantCall:
        """The validated call: the same validation as the operators (an error names the field)."""
        data = self.data if self.data is not None else redact(incident.data())
        fields = {
            "assistant_id": self.assistant_id,
            "name": self.name,
            "phone_number": self.phone_number,
            "timezone": self.timezone,
            "data": data,
        }
        return hook.build_call(fields, default_region=self.default_region)

    def _closed_window(self, call: AssistantCall) -> str | None:
        """Why the on-call person may not be called now, or ``None`` (inside hours, or hours off)."""
        import pendulum

        from airflow_provider_alta.calling_hours import decide, from_setting

        hours = from_setting(self.calling_hours)
        if hours is None:
            return None
        decision = decide(
            hours, now=pendulum.now("UTC"), timezone=call.timezone, phone_e164=call.phone_number
        )
        return None if decision.open else decision.reason

    def _call_once(
        self, hook: AltaHook, call: AssistantCall, incident: Incident, store: Any, by: str
    ) -> None:
        """Place the call unless a record says this failure's call was (or may have been) placed.

        The file's atomic claim keeps two callbacks on this machine apart (a DAG callback and a task
        callback of one failure); the task state store, when given, keeps later tries and other
        machines from calling again.
        """
        key = incident.key(call.assistant_id, call.phone_number)
        masked = mask_phone(call.phone_number)
        records = IncidentRecords(self.record_path or _default_record_path())
        try:
            progress: ProgressStore = records
            earlier: Any = None
            if store is not None:
                progress = _Both(_TaskState(store), records)
                earlier = progress.get(key)
            if earlier is None or send_record.read_record(earlier, by).decision == send_record.SEND:
                earlier = records.claim(key, send_record.record(SENDING, by))
            if earlier is not None:
                self._already(send_record.read_record(earlier, by), masked, incident)
                return
            ledger = hook.contact_ledger()
            gate = ContactGate(ledger) if ledger is not None else None  # opt-outs only, no cap
            answer = send_record.send_once(
                progress,
                key,
                by,
                lambda: guarded_send(gate, call.phone_number, by=key, send=lambda: hook.send_call(call)),
                keep=lambda answer: {"call_id": call_id_from(answer)},
            )
            if isinstance(answer, Blocked):
                progress.set(key, send_record.record(UNSENT, by))
                self.log.warning(
                    "Not calling about %s: %s",
                    incident.describe(),
                    blocked_reason(answer, call.phone_number, None),
                )
                return
        finally:
            records.close()
        self.log.info("Called %s about %s (call id %s)", masked, incident.describe(), call_id_from(answer))

    def _already(self, seen: send_record.Earlier, masked: str, incident: Incident) -> None:
        if seen.decision == PLACED:
            self.log.info(
                "%s already called %s about %s (call id %s); not calling again",
                seen.record.get("by", "an earlier callback"),
                masked,
                incident.describe(),
                seen.record.get("call_id"),
            )
        elif seen.decision == MAYBE_PLACED:
            self.log.warning(
                "A call to %s about %s may have been placed (%s); it is never placed again",
                masked,
                incident.describe(),
                seen.reason or seen.state,
            )
        else:
            self.log.warning(
                "Alta rejected the call to %s about %s earlier (%s); not calling again",
                masked,
                incident.describe(),
                seen.reason,
            )

    def _leaves_it_to_tasks(self, context: Any) -> bool | None:
        """Whether every failed task named by a DAG callback's context has an AltaNotifier for the
        same person among its own ``on_failure_callback`` (that one calls, once); ``None``: a task's
        callbacks cannot be seen (a serialized task)."""
        dag = context.get("dag")
        task_ids = _failed_task_ids(context)
        if dag is None or not task_ids:
            return False
        for task_id in task_ids:
            try:
                task = dag.get_task(task_id)
            except Exception:
                return False
            if not hasattr(task, "on_failure_callback"):
                return None
            callbacks = task.on_failure_callback
            if not isinstance(callbacks, list | tuple):
                callbacks = [callbacks]
            if not any(isinstance(c, AltaNotifier) and c.target == self.target for c in callbacks):
                return False
        return True


send_alta_notification = AltaNotifier


class _Both:
    """Records read from the task state store and written to it and to this machine's file."""

    def __init__(self, primary: ProgressStore, local: ProgressStore) -> None:
        self.primary = primary
        self.local = local

    def get(self, key: str) -> Any:
        return self.primary.get(key)

    def set(self, key: str, value: Any) -> None:
        self.primary.set(key, value)
        self.local.set(key, value)


class _TaskState:
    """Airflow 3.3's task state store of the failed task, written with ``NEVER_EXPIRE``."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, key: str) -> Any:
        return self.store.get(key)

    def set(self, key: str, value: Any) -> None:
        try:
            from airflow.sdk.execution_time.context import NEVER_EXPIRE
        except ImportError:
            self.store.set(key, value)
        else:
            self.store.set(key, value, retention=NEVER_EXPIRE)


def _incident(context: Any, dag_level: bool) -> Incident:
    """The failure in a callback's context, on Airflow 2.11 and 3.x. A DAG callback's task instance
    is the failure's cause on Airflow 3 (the one incident with the task's own callback); on
    Airflow 2 it is any task of the run, so the incident is the run's."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "")
    run_id = context.get("run_id") or getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "")
    reason = short_error(str(context["reason"])) if dag_level else None
    task_id = getattr(ti, "task_id", None)
    if dag_level and not (AIRFLOW_V_3_0_PLUS and isinstance(task_id, str)):
        return Incident(dag_id=str(dag_id), run_id=str(run_id), reason=reason)
    map_index = getattr(ti, "map_index", -1)
    try_number = getattr(ti, "try_number", None)
    return Incident(
        dag_id=str(dag_id),
        run_id=str(run_id),
        task_id=str(task_id or getattr(context.get("task"), "task_id", "")),
        map_index=map_index if isinstance(map_index, int) else -1,
        try_number=try_number if isinstance(try_number, int) else None,
        error=short_error(context.get("exception")),
        log_url=_log_url(ti),
        reason=reason,
    )


def _log_url(ti: Any) -> str | None:
    try:
        url = getattr(ti, "log_url", None)
    except Exception:  # it reads the configuration; a callback never fails for want of it
        return None
    return url if isinstance(url, str) else None


def _failed_task_ids(context: Any) -> list[str]:
    """The failed tasks of a DAG callback: all of the run's on Airflow 2 (its ORM run), else the
    task instance Airflow 3 names as the cause."""
    dag_run = context.get("dag_run")
    get_tis = getattr(dag_run, "get_task_instances", None)
    if callable(get_tis):
        try:
            return sorted({ti.task_id for ti in get_tis(state=["failed"])})
        except Exception as exc:  # no database here: fall back to the task instance named
            log.debug("Could not list the run's failed tasks: %s", exc)
    ti = context.get("ti")
    task_id = getattr(ti, "task_id", None)
    return [task_id] if isinstance(task_id, str) else []


def _default_record_path() -> str:
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return os.path.join(os.path.expanduser(home), RECORDS_FILE)


__all__ = ["AltaNotifier", "send_alta_notification"]
