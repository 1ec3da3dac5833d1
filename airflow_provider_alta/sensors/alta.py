"""AltaCallSensor: wait until an Alta call has ended; its masked outcome goes to XCom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_alta.exceptions import AltaAPIError, AltaAuthenticationError, AltaNotFoundError
from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.outcome import masked_outcome, valid_call_id

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.hooks.alta import AltaHook


class AltaCallSensor(BaseSensorOperator):
    """Wait until the Alta call ``call_id`` has ended (``GET /calls/{id}`` has ``endedAt``).

    For calls placed elsewhere (for one this DAG places, ``TriggerAssistantCallOperator`` has
    ``wait_for_outcome``). Returns the masked outcome (status, id, duration, masked summary, times,
    masked numbers) as XCom. A call that does not exist (404) or a refused token (401) fails the task.

    :param call_id: the call's id (templated), e.g. ``"{{ ti.xcom_pull('call')['call_id'] }}"``.
    :param alta_conn_id: the Alta connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("call_id", "alta_conn_id")
    ui_color = "#e8e3fc"

    def __init__(
        self,
        *,
        call_id: str,
        alta_conn_id: str = "alta_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 30.0)
        super().__init__(**kwargs)
        self.call_id = call_id
        self.alta_conn_id = alta_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(alta_conn_id=self.alta_conn_id)

    def _call_id(self) -> str:
        try:
            return valid_call_id(self.call_id)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc

    def poke(self, context: Context) -> bool | PokeReturnValue:
        call_id = self._call_id()
        try:
            call = self.hook.get_call(call_id)
        except (AltaNotFoundError, AltaAuthenticationError) as exc:
            raise AirflowFailException(f"Could not read call {call_id}: {mask_text(str(exc))}") from exc
        except AltaAPIError as exc:
            if not exc.task_retry:
                raise AirflowFailException(f"Could not read call {call_id}: {mask_text(str(exc))}") from exc
            self.log.warning("Reading call %s failed, will read again: %s", call_id, exc)
            return False
        outcome = masked_outcome(call)
        if not outcome["ended"]:
            self.log.info("Call %s has not ended yet", call_id)
            return False
        return PokeReturnValue(is_done=True, xcom_value=outcome)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if isinstance(done, PokeReturnValue) and done.is_done:
            return done.xcom_value
        from airflow_provider_alta.triggers.alta import AltaCallOutcomeTrigger

        self.defer(
            trigger=AltaCallOutcomeTrigger(
                call_id=self._call_id(),
                alta_conn_id=self.alta_conn_id,
                poll_interval=self.poke_interval,
                deadline=datetime.now(timezone.utc) + timedelta(seconds=self.timeout),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger fired: the outcome, or why there is none."""
        if not isinstance(event, Mapping):
            raise AirflowFailException("The wait for the call ended without an event")
        status = event.get("status")
        if status == "ended" and isinstance(event.get("outcome"), Mapping):
            return dict(event["outcome"])
        call_id = event.get("call_id")
        if status == "timeout":
            raise AirflowSensorTimeout(f"Call {call_id} had not ended after {self.timeout:g} s")
        raise AirflowFailException(f"Could not read call {call_id}: {event.get('message')}")


__all__ = ["AltaCallSensor"]
