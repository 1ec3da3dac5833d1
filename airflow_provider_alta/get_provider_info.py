"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_alta import __version__

_INTEGRATION = "Alta"


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
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_alta.operators.alta"]}
        ],
        "triggers": [
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_alta.triggers.alta"]}
        ],
        "connection-types": [
            {
                "connection-type": "alta",
                "hook-class-name": "airflow_provider_alta.hooks.alta.AltaHook",
                "hook-name": "Alta",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "port", "schema"],
                    "relabeling": {"password": "API token", "host": "Base URL"},
                    "placeholders": {
                        "host": "https://api.altahq.com/v1 (leave empty for production)",
                        "password": "Alta API token from the Alta dashboard",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Timeout (s)",
                        "description": "Seconds (30) or connect,read seconds (5,30). Default 5,30.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "default_region": {
                        "label": "Default region",
                        "description": "ISO country code for numbers written without +country (e.g. US).",
                        "schema": {"type": ["string", "null"], "pattern": "^[A-Za-z]{2}$"},
                    },
                    "calls_per_minute": {
                        "label": "Calls per minute",
                        "description": "Alta's rate limit for this token. Default 100.",
                        "schema": {"type": ["integer", "null"], "default": 100, "minimum": 1},
                    },
                    "rate_limiter_url": {
                        "label": "Shared rate limiter (Redis URL)",
                        "description": "Optional. Every task on this token shares one limit, e.g. redis://host:6379/0.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
