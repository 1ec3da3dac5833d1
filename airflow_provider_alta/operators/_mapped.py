"""What makes mapped single calls easy to follow: a label for the map index, a record key in XCom.

The label is the call's ``record_key`` or else the masked number (``+1202***0143``), never the full
number. Airflow renders ``map_index_template`` with the task in its context: on Airflow 3 once the
fields are rendered (before ``execute``, so a deferred call shows it) and again after the try; on
2.11 only after a try that did not defer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_alta.masking import mask_phone, mask_text, scrub_answer
from airflow_provider_alta.operators._common import unwrap_literal

#: The map index a mapped call shows unless the DAG author sets ``map_index_template``.
DEFAULT_MAP_INDEX_TEMPLATE = "{{ task.call_label }}"
#: Airflow keeps a rendered map index in a 250-character column.
MAX_LABEL = 250
_PHONE_FIELDS = ("phone_number", "phoneNumber")


def with_default_template(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``partial()``'s kwargs with :data:`DEFAULT_MAP_INDEX_TEMPLATE` unless the author gave one."""
    defaults = kwargs.get("default_args") or {}
    if "map_index_template" in kwargs or "map_index_template" in defaults:
        return kwargs
    return {**kwargs, "map_index_template": DEFAULT_MAP_INDEX_TEMPLATE}


def shown_key(value: Any, phone: str | None, email: str | None) -> Any:
    """``record_key`` as XCom and the UI keep it: a string or number as given, else its text.

    A key holding the person's own number is shown as the masked number; their email in it is
    masked; other digits (an id) are kept. Without the number, anything that looks like a phone
    number or an email is masked.
    """
    value = unwrap_literal(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        value = str(value)
    text = str(value)
    if phone and scrub_answer(text, phone, None) != text:
        return mask_phone(phone)
    masked = scrub_answer(text, None, email) if phone else mask_text(text)
    return value if masked == text else masked


def raw_phone(task: Any) -> Any:
    """The number a task calls, as given (its own ``phone_number``, else its ``prospect``'s)."""
    given = task.personal("phone_number")
    if given:
        return given
    record = unwrap_literal(task.prospect)
    if not isinstance(record, Mapping):
        return None
    field_map = unwrap_literal(task.field_map) or {}
    for key, value in record.items():
        if (field_map.get(key, key) if isinstance(field_map, Mapping) else key) in _PHONE_FIELDS:
            return value
    return None


def label(task: Any, e164: str | None = None) -> str:
    """The map index of a call: its record key, else its masked number; ``""`` when neither is known.

    ``e164``: the validated number, once the call is built; before, the number as given is read
    (normalized with the task's own ``default_region`` when it can be). Never raises.
    """
    try:
        phone = e164 or _normalized(raw_phone(task), unwrap_literal(task.default_region))
        key = shown_key(task.record_key, phone, unwrap_literal(task.personal("email")))
        text = str(key) if key is not None else mask_phone(phone) if phone else ""
    except Exception:
        return ""
    return text[:MAX_LABEL]


def _normalized(value: Any, region: Any) -> str | None:
    if value is None or value == "":
        return None
    from airflow_provider_alta.phone import normalize_phone

    try:
        return normalize_phone(str(value), region if isinstance(region, str) else None)
    except Exception:
        return str(value)


class KeyedXComs:
    """A task instance whose XCom pushes of a mapping also carry ``record_key`` (the contact XCom)."""

    def __init__(self, ti: Any, record_key: Any) -> None:
        self._ti = ti
        self._record_key = record_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)

    def xcom_push(self, key: str, value: Any, **kwargs: Any) -> None:
        if isinstance(value, Mapping):
            value = {**value, "record_key": self._record_key}
        self._ti.xcom_push(key=key, value=value, **kwargs)


def keyed_context(context: Any, record_key: Any) -> Any:
    """``context`` whose ``ti`` adds ``record_key`` to what it pushes; as it is without a key."""
    ti = context.get("ti") if context is not None else None
    if record_key is None or ti is None:
        return context
    return {**context, "ti": KeyedXComs(ti, record_key)}
