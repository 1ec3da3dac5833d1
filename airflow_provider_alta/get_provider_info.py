"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_alta import __version__
from airflow_provider_alta.config import EXTRA_FIELDS, HIDDEN_FIELDS, PLACEHOLDERS, RELABELING

_INTEGRATION = "Alta"


def _conn_fields() -> dict[str, Any]:
    """The extra fields of :data:`~airflow_provider_alta.config.EXTRA_FIELDS` as ``conn-fields``."""
    fields = {}
    for f in EXTRA_FIELDS:
        schema: dict[str, Any] = {"type": [f.type, "null"], **f.schema}
        if f.default is not None:
            schema["default"] = f.default
        fields[f.name] = {"label": f.label, "description": f.description, "schema": schema}
    return fields


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata."""
    return {
        "package-name": "airflow-provider-alta",
        "name": "Alta",
        "description": "`Alta <https://www.altahq.com/>`__: AI assistants that place outbound phone calls.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://www.altahq.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_alta.hooks.alta"]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_provider_alta.operators.alta",
                    "airflow_provider_alta.operators.batch",
                    "airflow_provider_alta.operators.opt_out",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_provider_alta.triggers.alta",
                    "airflow_provider_alta.triggers.batch",
                    "airflow_provider_alta.triggers.calling_window",
                ],
            }
        ],
        "sensors": [
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_alta.sensors.alta"]}
        ],
        "notifications": ["airflow_provider_alta.notifications.alta.AltaNotifier"],
        "connection-types": [
            {
                "connection-type": "alta",
                "hook-class-name": "airflow_provider_alta.hooks.alta.AltaHook",
                "hook-name": "Alta",
                "ui-field-behaviour": {
                    "hidden-fields": list(HIDDEN_FIELDS),
                    "relabeling": dict(RELABELING),
                    "placeholders": dict(PLACEHOLDERS),
                },
                "conn-fields": _conn_fields(),
            }
        ],
    }
