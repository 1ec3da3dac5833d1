"""TriggerAssistantCallOperator: one Alta call per task, from DAG arguments or an upstream record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta import send_record
from airflow_provider_alta.contact_gate import Blocked, ContactGate, guarded_send
from airflow_provider_alta.exceptions import AltaAPIError, AltaConfigurationError, AltaValidationError
from airflow_provider_alta.masking import mask_email, mask_phone, mask_value, scrub_answer
from airflow_provider_alta.operators import _common, _ledger, _mapped, _outcome_wait, _state_store, _window
from airflow_provider_alta.operators._common import (
    KeepsPersonalDataOut,
    keep_mapped_values_literal,
    masked_transfer,
)
from airflow_provider_alta.outcome import call_id_from
from airflow_provider_alta.payload import AssistantCall, build_call, merge_record
from airflow_provider_alta.send_record import FINAL, MAYBE_PLACED, PLACED, ProgressStore

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.config import AltaSettings
    from airflow_provider_alta.hooks.alta import AltaHook

OUTSIDE_CALLING_HOURS = ("defer", "skip", "fail")
_PAYLOAD_FIELDS = ("assistant_id", "name", "phone_number", "email", "timezone", "data", "call_transfer")


class TriggerAssistantCallOperator(KeepsPersonalDataOut, BaseOperator):
    """Have an Alta AI assistant call one person, inside their calling hours.

    Payload fields are templated. With ``prospect`` (one upstream record, e.g. from ``expand``)
    and ``field_map``, the record supplies the per-person fields; record values are data and are
    never rendered as Jinja, whichever way the task is mapped.

    :param assistant_id: the Alta assistant that places the call.
    :param name: name of the person called.
    :param phone_number: E.164, or national with ``default_region``.
    :param email: the person's email.
    :param timezone: IANA timezone of the person; also decides their calling hours.
    :param data: JSON object passed to the assistant during the call.
    :param call_transfer: transfer settings (dict in snake_case or camelCase, or ``CallTransfer``).
    :param prospect: one record whose keys are payload fields, or are mapped by ``field_map``.
    :param field_map: record key -> payload field (``"mobile": "phone_number"``, ``"plan": "data.plan"``).
    :param alta_conn_id: the Alta connection.
    :param default_region: country for numbers without ``+country`` (default: the connection's).
    :param calling_hours: the local window, e.g. ``"08:00-21:00"`` (default), ``"09:00-17:00 mon-fri"``,
        a dict or ``CallingHours``; ``False`` or ``"off"`` turns the check off.
    :param outside_calling_hours: ``"defer"`` (wait in the triggerer), ``"skip"`` or ``"fail"``.
    :param dry_run: validate and log the masked payload, place no call.
    :param include_phone_in_xcom: put the raw phone number in the XCom result (masked by default).
    :param wait_for_outcome: after placing the call, wait in the triggerer until it has ended
        (``GET /calls/{id}``); the result then has the masked ``outcome``. An answer without a call id
        gives ``{"status": "unavailable"}`` and a warning (the call was placed; it is never placed again).
    :param outcome_poll_interval: seconds between two reads of the call while waiting.
    :param outcome_timeout: how long to wait for the call to end (``timedelta`` or seconds); then the
        task fails, and a retry waits for the same call again (Airflow 3.3+).
    :param allow_rerun_without_progress: without Airflow 3.3's task state store (or when
        ``[state_store] clear_on_success`` erased its record), a later try refuses to call, since it
        cannot know whether an earlier try placed the call; ``True`` calls anyway (maybe twice).
    :param contact_policy: how often one person may be called, e.g. ``"1/7d"`` (templated; default:
        the connection's ``contact_policy`` extra, else opt-outs only). Needs the connection's
        ``contact_ledger``. A person it blocks is not called: the task is skipped, with XCom
        ``contact`` = ``{"state": "skipped_recently_called" | "opted_out", "next_allowed": ...}``.
    :param record_key: a value that identifies the record, such as a lead id (templated). It is in
        the XCom result and the ``contact`` XCom, and it is a mapped call's map index in the UI.

    The result has the masked number, Alta's (masked) answer and its ``call_id`` (``None`` if the
    answer had none), with ``wait_for_outcome`` the masked ``outcome``, and ``record_key`` if given.
    Mapped (``partial().expand()``), each call's map index shows its ``record_key``, else its masked
    number: the default ``map_index_template`` is ``"{{ task.call_label }}"``.

    Never twice: on Airflow 3.3+, a record in the task state store, keyed by whom it calls (a hash
    of the number and the assistant), says ``sending`` before the request and how it ended after.
    A later try or cleared re-run that finds the call placed returns the stored (masked) result; one
    that finds ``sending`` fails without a request, as the call may have been placed.
    """

    template_fields: Sequence[str] = (
        *_PAYLOAD_FIELDS,
        "alta_conn_id",
        "default_region",
        "calling_hours",
        "contact_policy",
        "record_key",
    )
    template_fields_renderers = {"data": "json", "call_transfer": "json", "calling_hours": "json"}
    # Rendered, these fields show masked in Airflow (database, UI); the call uses the real values.
    personal_fields = {
        "phone_number": mask_phone,
        "email": mask_email,
        "data": mask_value,
        "call_transfer": masked_transfer,
    }
    ui_color = "#e8e3fc"

    def __init__(
        self,
        *,
        assistant_id: str | None = None,
        name: str | None = None,
        phone_number: str | None = None,
        email: str | None = None,
        timezone: str | None = None,
        data: Mapping[str, Any] | None = None,
        call_transfer: Any = None,
        prospect: Mapping[str, Any] | None = None,
        field_map: Mapping[str, str] | None = None,
        alta_conn_id: str = "alta_default",
        default_region: str | None = None,
        calling_hours: Any = None,
        outside_calling_hours: str = "defer",
        dry_run: bool = False,
        include_phone_in_xcom: bool = False,
        wait_for_outcome: bool = False,
        outcome_poll_interval: float = 30.0,
        outcome_timeout: timedelta | float = timedelta(hours=1),
        allow_rerun_without_progress: bool = False,
        contact_policy: str | None = None,
        record_key: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        if AIRFLOW_V_3_3_PLUS and kwargs.get("retry_policy") is None:
            from airflow_provider_alta.operators.retry import AltaRetryPolicy

            kwargs["retry_policy"] = AltaRetryPolicy()
        raw_task_id = kwargs.get("task_id")
        super().__init__(**kwargs)
        if outside_calling_hours not in OUTSIDE_CALLING_HOURS:
            raise ValueError(
                f"outside_calling_hours must be one of {', '.join(OUTSIDE_CALLING_HOURS)}, "
                f"not {outside_calling_hours!r}"
            )
        self.assistant_id = assistant_id
        self.name = name
        self.phone_number = phone_number
        self.email = email
        self.timezone = timezone
        self.data = data
        self.call_transfer = call_transfer
        self.prospect = prospect
        self.field_map = field_map
        self.alta_conn_id = alta_conn_id
        self.default_region = default_region
        self.calling_hours = calling_hours
        self.outside_calling_hours = outside_calling_hours
        # ``dry_run`` would shadow BaseOperator.dry_run(), which `airflow tasks test --dry-run` calls.
        self.is_dry_run = dry_run
        self.include_phone_in_xcom = include_phone_in_xcom
        self.wait_for_outcome = wait_for_outcome
        self.outcome_poll_interval = _common.positive_seconds("outcome_poll_interval", outcome_poll_interval)
        self.outcome_timeout = timedelta(seconds=_common.positive_seconds("outcome_timeout", outcome_timeout))
        self.allow_rerun_without_progress = allow_rerun_without_progress
        _ledger.check_policy(contact_policy)
        self.contact_policy = contact_policy
        self.record_key = record_key
        self._e164: str | None = None  # the validated number, once built (for the map index)
        keep_mapped_values_literal(self, raw_task_id)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:  # type: ignore[override]
        """``BaseOperator.partial`` with a map index that names each call (see ``call_label``)."""
        return super().partial(**_mapped.with_default_template(kwargs))

    @property
    def call_label(self) -> str:
        """This call's map index: its ``record_key``, else its masked number (``+1202***0143``)."""
        return _mapped.label(self, self._e164)

    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(alta_conn_id=self.alta_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        return self._attempt(context)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after waiting for the calling window: check it again, then call."""
        return self._attempt(context)

    def on_kill(self) -> None:
        """SIGTERM while the wait runs inline (``airflow dags test``) ends it; see ``stop_if_waiting``."""
        _common.stop_if_waiting(self)

    def execute_outcome(
        self, context: Context, event: Any = None, placed: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after waiting for the call to end: the placed result plus its masked outcome."""
        _common.running(self)
        return _outcome_wait.resumed(self, context, self.build_call(), event, placed)

    def _settings(self) -> AltaSettings:
        return self.hook.settings

    def build_call(self) -> AssistantCall:
        """The validated call; a validation error fails the task without retries."""
        shared = {f: self.personal(f) for f in _PAYLOAD_FIELDS}
        try:
            fields = merge_record(shared, self.prospect, self.field_map)
            call = build_call(fields, default_region=_common.default_region(self, self._settings))
        except (AltaValidationError, AltaConfigurationError) as exc:
            raise AirflowFailException(str(exc)) from exc
        self._e164 = call.phone_number
        return call

    # Not ResumableJobMixin: it stores the job id after submitting, so a death between the two
    # submits again (a second real call), and it resubmits after a failed job. Here "sending" is
    # stored before the request, and a try that finds it never sends; the wait is a deferral.
    def _attempt(self, context: Context) -> dict[str, Any]:
        _common.running(self)
        call = self.build_call()
        window = _common.call_window(self.calling_hours)
        if self.is_dry_run:  # a dry run never reads or writes the task state store
            decision = window(call) if window is not None else None
            if decision is not None and not decision.open:
                self.log.info("Dry run: outside calling hours (%s); no call placed", decision.reason)
                return self._result(call, "dry_run", window=decision.reason)
            self.log.info("Dry run: payload is valid: %s; no call placed", _common.masked_payload(call))
            return self._result(call, "dry_run")
        progress, key, attempt = self._record_of(context, call)
        by, resume = _ledger.task_label(context, self), False
        if progress is not None and _state_store.clear_on_success():
            _state_store.warn_clear_on_success(self.log)
        if progress is not None:
            earlier = send_record.read_record(progress.get(key), attempt)
            if earlier.decision == PLACED:
                return self._already_placed(call, earlier, progress, key)
            if earlier.decision == MAYBE_PLACED:
                _ledger.settle_maybe_placed(self.hook, self.contact_policy, call.phone_number, by, self.log)
                raise AirflowFailException(_state_store.maybe_placed(earlier))
            resume = earlier.decision == send_record.SEND and _ledger.resumable(context)
            if earlier.decision == FINAL:
                self.log.info(
                    "%s: Alta rejected this call (%s); nothing was placed", earlier.when, earlier.reason
                )
            elif earlier.state is None:
                _state_store.check_rerun(context, self.allow_rerun_without_progress)
        else:
            _state_store.check_rerun(context, self.allow_rerun_without_progress)
        decision = window(call) if window is not None else None
        if decision is not None and not decision.open:
            _window.outside_window(self, decision, self.call_label)
        with _ledger.opened_gate(self.hook, self.contact_policy) as gate:
            response = self._send(call, progress, key, attempt, gate, by, resume)
        if isinstance(response, Blocked):
            keyed = _mapped.keyed_context(context, self._record_key(call))
            _ledger.skip_blocked(keyed, response, call, gate)
        result = self._result(
            call, "placed", response=self._scrub(response, call), call_id=call_id_from(response)
        )
        if not self.wait_for_outcome:
            return result
        stored = self._result(call, "placed", masked=True, response=response)
        return _outcome_wait.follow(self, call, stored, progress, key, attempt)

    def _send(
        self,
        call: AssistantCall,
        progress: ProgressStore | None,
        key: str,
        attempt: str,
        gate: ContactGate | None,
        by: str,
        resume: bool,
    ) -> Any:
        """Place the call under the contact ledger (``Blocked``: not placed); with a store, its record
        says ``sending`` before and how it ended after."""

        def send() -> Any:
            if progress is None:
                return self.hook.send_call(call)
            return send_record.send_once(
                progress,
                key,
                attempt,
                lambda: self.hook.send_call(call),
                keep=lambda answer: {"result": self._result(call, "placed", masked=True, response=answer)},
            )

        try:
            return guarded_send(gate, call.phone_number, by=by, send=send, resume=resume)
        except send_record.RecordWriteError as exc:
            if exc.sent:
                raise AirflowFailException(f"{exc}: the call may have been placed; not retried") from exc
            raise AirflowException(str(exc)) from exc
        except AltaAPIError as exc:
            if not exc.fails_task:
                raise  # Airflow's retries decide (on 3.3+, AltaRetryPolicy)
            maybe_placed = exc.placed is None
            raise AirflowFailException(
                f"{exc} This task is not retried." if maybe_placed else str(exc)
            ) from exc

    def _already_placed(
        self, call: AssistantCall, earlier: send_record.Earlier, progress: ProgressStore, key: str
    ) -> dict[str, Any]:
        """An earlier try placed this call: its stored result, or the wait for its outcome; no request."""
        stored = _state_store.stored_result(earlier.record) or self._result(call, "placed", masked=True)
        by = earlier.record.get("by", "an earlier try")
        self.log.info(
            "This call was placed by %s (call id %s): not placing it again", by, stored.get("call_id")
        )
        if self.wait_for_outcome and "outcome" not in stored:
            return _outcome_wait.follow(self, call, stored, progress, key, str(by))
        return self._shown(stored, call)

    def _record_of(self, context: Context, call: AssistantCall) -> tuple[ProgressStore | None, str, str]:
        """The durable store (Airflow 3.3+), the record key of whom this task calls, and this try's label."""
        key = send_record.progress_key(("call", call.assistant_id, call.phone_number))
        attempt = f"try {_state_store.try_number(context)}"
        return _state_store.task_state_progress(context), key, attempt

    def _result(
        self, call: AssistantCall, status: str, *, masked: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """The XCom result; ``masked``: the form kept in the store (no raw number, masked answer)."""
        if masked and "response" in extra:
            extra["call_id"] = call_id_from(extra["response"])
            extra["response"] = scrub_answer(extra["response"], call.phone_number, call.email)
        raw = self.include_phone_in_xcom and not masked
        phone = call.phone_number if raw else mask_phone(call.phone_number)
        result = {"status": status, "assistant_id": call.assistant_id, "phone_number": phone, **extra}
        if (record_key := self._record_key(call)) is not None:
            result["record_key"] = record_key
        return result

    def _record_key(self, call: AssistantCall) -> Any:
        """``record_key`` as XCom keeps it (the person's own number or email in it masked)."""
        return _mapped.shown_key(self.record_key, call.phone_number, call.email)

    def _shown(self, stored: Mapping[str, Any], call: AssistantCall) -> dict[str, Any]:
        """A stored (masked) result as XCom shows it: this task's record key; the raw number only with
        include_phone_in_xcom."""
        result = dict(stored)
        if self.include_phone_in_xcom:
            result["phone_number"] = call.phone_number
        if (record_key := self._record_key(call)) is not None:
            result["record_key"] = record_key
        return result

    def _scrub(self, value: Any, call: AssistantCall) -> Any:
        """Mask the person's number and email wherever Alta's answer echoes them."""
        if self.include_phone_in_xcom:
            return value
        return scrub_answer(value, call.phone_number, call.email)


__all__ = ["TriggerAssistantCallOperator"]
