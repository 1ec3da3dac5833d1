"""A local stand-in for the Alta API, for tests, demos and users' own DAG tests.

``AltaSandbox`` starts it in a background thread on a free loopback port::

    with AltaSandbox(token="t0k3n", rate_limit="100/6", call_duration=0.5) as sandbox:
        requests.post(sandbox.calls_url, json={...}, headers={"Authorization": "Bearer t0k3n"})
        assert len(sandbox.calls()) == 1
        call_id = sandbox.calls()[0]["id"]
        requests.get(sandbox.call_url(call_id), headers={"Authorization": "Bearer t0k3n"})

The package never imports Airflow from here: the sandbox is pure standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_alta.sandbox.calls import SANDBOX_FROM, SUMMARY_TEMPLATES
    from airflow_provider_alta.sandbox.core import CALL_ID_FIELDS, DEFAULT_TOKEN
    from airflow_provider_alta.sandbox.faults import FAULT_KINDS, Fault, FaultPlan
    from airflow_provider_alta.sandbox.journal import token_fingerprint
    from airflow_provider_alta.sandbox.ratelimit import RateLimit
    from airflow_provider_alta.sandbox.runtime import AltaSandbox, get_call_spec_path, spec_path

__all__ = [
    "CALL_ID_FIELDS",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "SANDBOX_FROM",
    "SUMMARY_TEMPLATES",
    "AltaSandbox",
    "Fault",
    "FaultPlan",
    "RateLimit",
    "get_call_spec_path",
    "spec_path",
    "token_fingerprint",
]

# Imported on first use, so that ``import airflow_provider_alta.sandbox`` (done by the pytest
# plugin in every pytest session of every project that installs the package) costs nothing.
_EXPORTS = {
    "CALL_ID_FIELDS": "core",
    "DEFAULT_TOKEN": "core",
    "SANDBOX_FROM": "calls",
    "SUMMARY_TEMPLATES": "calls",
    "FAULT_KINDS": "faults",
    "Fault": "faults",
    "FaultPlan": "faults",
    "token_fingerprint": "journal",
    "RateLimit": "ratelimit",
    "AltaSandbox": "runtime",
    "spec_path": "runtime",
    "get_call_spec_path": "runtime",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
