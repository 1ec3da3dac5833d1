"""TriggerAssistantCallOperator: one Alta call per task, from DAG arguments or an upstream record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, BaseOperator
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.exceptions import AltaAPIError, AltaConfigurationError, AltaValidationError
from airflow_provider_alta.masking import mask_email, mask_phone, mask_value, scrub_answer
from airflow_provider_alta.operators import _common
from airflow_provider_alta.operators._common import (
    KeepsPersonalDataOut,
    datetime_trigger,
    keep_mapped_values_literal,
    masked_transfer,
)
from airflow_provider_alta.payload import AssistantCall, build_call, merge_record

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.calling_hours import WindowDecision
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
    """

    template_fields: Sequence[str] = (*_PAYLOAD_FIELDS, "alta_conn_id", "default_region", "calling_hours")
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
        keep_mapped_values_literal(self, raw_task_id)

    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(alta_conn_id=self.alta_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        return self._attempt()

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after waiting for the calling window: check it again, then call."""
        return self._attempt()

    def _settings(self) -> AltaSettings:
        return self.hook.settings

    def build_call(self) -> AssistantCall:
        """The validated call; a validation error fails the task without retries."""
        shared = {f: self.personal(f) for f in _PAYLOAD_FIELDS}
        try:
            fields = merge_record(shared, self.prospect, self.field_map)
            return build_call(fields, default_region=_common.default_region(self, self._settings))
        except (AltaValidationError, AltaConfigurationError) as exc:
            raise AirflowFailException(str(exc)) from exc

    def _attempt(self) -> dict[str, Any]:
        call = self.build_call()
        window = _common.call_window(self.calling_hours)
        decision = window(call) if window is not None else None
        if decision is not None and not decision.open:
            if self.is_dry_run:
                self.log.info("Dry run: outside calling hours (%s); no call placed", decision.reason)
                return self._result(call, "dry_run", window=decision.reason)
            self._outside_window(decision)
        if self.is_dry_run:
            self.log.info("Dry run: payload is valid: %s; no call placed", self._masked_payload(call))
            return self._result(call, "dry_run")
        try:
            response = self.hook.send_call(call)
        except AltaAPIError as exc:
            if not exc.fails_task:
                raise  # Airflow's retries decide (on 3.3+, AltaRetryPolicy)
            maybe_placed = exc.placed is None
            raise AirflowFailException(
                f"{exc} This task is not retried." if maybe_placed else str(exc)
            ) from exc
        return self._result(call, "placed", response=self._scrub(response, call))

    def _outside_window(self, decision: WindowDecision) -> None:
        if self.outside_calling_hours == "fail":
            raise AirflowFailException(decision.reason)
        if self.outside_calling_hours == "skip" or decision.opens_at is None:
            raise AirflowSkipException(decision.reason)
        self.log.info("%s; deferring until then", decision.reason)
        self.defer(trigger=datetime_trigger(decision.opens_at), method_name="execute_complete")

    def _masked_payload(self, call: AssistantCall) -> dict[str, Any]:
        body = call.to_json()
        body["phoneNumber"] = mask_phone(call.phone_number)
        if call.email:
            body["email"] = mask_email(call.email)
        if call.call_transfer:
            body["callTransfer"] = {
                **body["callTransfer"],
                "phoneNumber": mask_phone(call.call_transfer.phone_number),
            }
        return body

    def _result(self, call: AssistantCall, status: str, **extra: Any) -> dict[str, Any]:
        phone = call.phone_number if self.include_phone_in_xcom else mask_phone(call.phone_number)
        return {"status": status, "assistant_id": call.assistant_id, "phone_number": phone, **extra}

    def _scrub(self, value: Any, call: AssistantCall) -> Any:
        """Mask the person's number and email wherever Alta's answer echoes them."""
        if self.include_phone_in_xcom:
            return value
        return scrub_answer(value, call.phone_number, call.email)


__all__ = ["TriggerAssistantCallOperator"]
