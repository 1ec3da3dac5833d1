"""What the single-call and batch operators share: mapped-value safety, personal data kept out of
what Airflow stores, calling hours, triggers, masked logs, the batch's stop signals."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowFailException, literal

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

    from airflow_provider_alta.bulk import Stopper
    from airflow_provider_alta.calling_hours import CallingHours, WindowDecision
    from airflow_provider_alta.config import AltaSettings
    from airflow_provider_alta.payload import AssistantCall


def keep_mapped_values_literal(task: BaseOperator, task_id: str | None) -> None:
    """Mark template fields that came from ``expand``/``expand_kwargs`` as literal data.

    Airflow renders strings that ``expand_kwargs`` resolves from XCom (apache/airflow#38745);
    only values the DAG author gave in ``partial()`` may be templates. Call it from ``__init__``
    of an instance that Airflow unmapped (``_BaseOperator__from_mapped``).
    """
    if not getattr(task, "_BaseOperator__from_mapped", False):
        return
    dag = task.dag if task.has_dag() else None  # type: ignore[no-untyped-call]
    mapped = dag.task_dict.get(task_id) if dag is not None and task_id else None
    partial = getattr(mapped, "partial_kwargs", None)
    for name in task.template_fields:
        value = getattr(task, name)
        from_mapping = partial is None or value is not partial.get(name, object())
        if from_mapping and isinstance(value, str | Mapping | list | tuple):
            setattr(task, name, literal(value))


class KeepsPersonalDataOut:
    """Mixin for an operator: Airflow stores and shows only masked personal template fields.

    Airflow keeps every template field's rendered value (in its database and the UI's "Rendered
    Template" view). Right after rendering, each field named in ``personal_fields`` is kept on the
    instance for :meth:`personal`, and the field itself is replaced by its masked display form.
    """

    personal_fields: Mapping[str, Callable[[Any], Any]] = {}

    def _do_render_template_fields(
        self, parent: Any, template_fields: Any, context: Any, jinja_env: Any, seen_oids: Any
    ) -> None:
        super()._do_render_template_fields(  # type: ignore[misc]
            parent, template_fields, context, jinja_env, seen_oids
        )
        if parent is self:
            self.hide_personal_fields()

    def hide_personal_fields(self) -> None:
        """Keep the real values of the personal fields aside; leave masked ones in the fields."""
        kept: dict[str, Any] = getattr(self, "_personal_values", None) or {}
        shown: dict[str, Any] = getattr(self, "_personal_shown", None) or {}
        for name, display in self.personal_fields.items():
            value = getattr(self, name)
            if name in shown and _same(value, shown[name]):
                continue  # hidden already (rendered twice): keep the real value kept earlier
            kept[name] = value
            shown[name] = None if value is None else display(value)
            setattr(self, name, shown[name])
        self._personal_values = kept
        self._personal_shown = shown

    def personal(self, name: str) -> Any:
        """The real value of a template field (masked in the field itself once rendered)."""
        kept: dict[str, Any] = getattr(self, "_personal_values", None) or {}
        return kept[name] if name in kept else getattr(self, name)


def _same(value: Any, shown: Any) -> bool:
    try:
        return bool(value is shown or value == shown)
    except Exception:  # an odd value whose comparison raises is not the masked one we set
        return False


def describe_records(value: Any) -> str:
    """What a batch's ``prospects`` shows in Airflow instead of the records themselves."""
    value = unwrap_literal(value)
    if callable(value):
        return f"<records from {getattr(value, '__qualname__', type(value).__name__)}()>"
    try:
        return f"<{len(value)} records>"
    except TypeError:
        return f"<records from a {type(value).__name__}>"


def masked_transfer(value: Any) -> Any:
    """A call transfer (a ``CallTransfer`` or a mapping) with its number masked, for display."""
    from airflow_provider_alta.masking import mask_value

    to_json = getattr(value, "to_json", None)
    return mask_value(to_json() if callable(to_json) else unwrap_literal(value))


def unwrap_literal(value: Any) -> Any:
    """The value inside ``literal(...)``, for code paths that run before Airflow renders fields."""
    return value.value if type(value) is type(literal(None)) else value


def calling_hours(value: Any) -> CallingHours | None:
    """Parse an operator's ``calling_hours``; ``None`` when the check is off."""
    from airflow_provider_alta.calling_hours import from_setting

    try:
        return from_setting(value)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from exc


def default_region(task: Any, settings: Callable[[], AltaSettings] | None) -> str | None:
    """An operator's ``default_region``, else its connection's (``settings``; ``None``: not read).

    A dry run without a usable connection has no default region; otherwise the error stands.
    """
    given: str | None = task.default_region
    if given:
        return given
    if settings is None:
        return None
    try:
        return settings().default_region
    except Exception:
        if task.is_dry_run:
            task.log.info("Dry run without a usable %r connection: no default region", task.alta_conn_id)
            return None
        raise


def call_window(value: Any) -> Callable[[AssistantCall], WindowDecision] | None:
    """The calling-window decision for a call under an operator's ``calling_hours``, taken now;
    ``None`` when the check is off."""
    hours = calling_hours(value)
    if hours is None:
        return None
    from airflow_provider_alta.calling_hours import decide

    def window(call: AssistantCall) -> WindowDecision:
        return decide(hours, now=now_utc(), timezone=call.timezone, phone_e164=call.phone_number)

    return window


def now_utc() -> Any:
    import pendulum

    return pendulum.now("UTC")


_WAITING = "_alta_waits_in_trigger"


def defer_waiting(
    task: BaseOperator, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None
) -> NoReturn:
    """``task.defer(...)``, noting that the task now waits in its trigger (see :func:`stop_if_waiting`)."""
    setattr(task, _WAITING, True)
    task.defer(trigger=trigger, method_name=method_name, kwargs=kwargs)
    raise AssertionError("defer() always raises TaskDeferred")  # Airflow 2's stubs do not say so


def running(task: BaseOperator) -> None:
    """At each entry point (``execute``, a resume): the task runs; it does not wait in a trigger."""
    setattr(task, _WAITING, False)


def stop_if_waiting(task: BaseOperator) -> None:
    """From ``on_kill``: end the process of a task that deferred yet still runs (``SystemExit`` 143).

    A deferred task's process ends and the triggerer waits. Under ``airflow dags test`` the trigger
    runs inline in the task's process, where Airflow 3's SIGTERM handler only calls ``on_kill``: the
    wait (up to days, for a calling window) would go on.
    """
    if getattr(task, _WAITING, False):
        task.log.warning("Stopped (SIGTERM) while waiting in the trigger: the task was not resumed")
        raise SystemExit(128 + signal.SIGTERM)


def masked_payload(call: AssistantCall) -> dict[str, Any]:
    """A call's JSON body with the person's number, email and transfer number masked, for logs."""
    from airflow_provider_alta.masking import mask_email, mask_phone

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


def positive_seconds(name: str, value: timedelta | float) -> float:
    """``value`` (seconds or a ``timedelta``) as seconds; ``ValueError`` naming ``name`` unless > 0."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be more than 0 seconds, not {value!r}")
    return seconds


def brief_outcome(outcome: Any) -> str:
    """A short, masked line about a call's outcome for the log."""
    if not isinstance(outcome, Mapping):
        return "no outcome"
    parts = [f"{k}={outcome[k]}" for k in ("duration", "endedAt") if k in outcome]
    return ", ".join(parts) or str(outcome.get("status"))


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(stopper: Stopper) -> Iterator[None]:
    """While a batch runs, SIGTERM and SIGINT ask it to stop; a second one acts as before.

    Airflow's own SIGTERM handler only calls ``on_kill`` (3.x) or raises at once, even mid-send
    (2.x); this one lets the send in flight finish. The previous handlers are restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; on_kill still works
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        if stopper.requested:  # asked twice: do what would have happened without us
            _delegate(previous[signal.Signals(signum)], signum, frame)
            return
        stopper.request(f"the task received {signal.Signals(signum).name}")

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def _delegate(handler: Any, signum: int, frame: Any) -> None:
    """Run a signal's earlier disposition: its Python handler, or the default action."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
