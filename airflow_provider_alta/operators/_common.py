"""What the single-call and batch operators share: mapped-value safety, personal data kept out of
what Airflow stores, calling hours, triggers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, literal

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

    from airflow_provider_alta.calling_hours import CallingHours, WindowDecision
    from airflow_provider_alta.config import AltaSettings
    from airflow_provider_alta.payload import AssistantCall

CALLING_HOURS_OFF = (False, "off")


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
    if value in CALLING_HOURS_OFF:
        return None
    from airflow_provider_alta.calling_hours import CallingHours

    try:
        return CallingHours.parse(value)
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


def datetime_trigger(moment: Any) -> Any:
    """A trigger that fires at ``moment``, on Airflow 3 (standard provider) and 2.11 (core)."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # Airflow 2 without the standard provider
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]
    return DateTimeTrigger(moment=moment)
