"""The operator tests' sandbox: one per test, with ``alta_default`` pointing at it.

A test module names its token in ``TOKEN``; it may set ``SANDBOX`` (the sandbox's options, default
no rate limit) and ``CONNECTION_EXTRA`` (the connection's extras).
"""

from __future__ import annotations

import pytest

from alta_testing.environment import alta_connection


@pytest.fixture
def sandbox(alta_sandbox_factory, monkeypatch, request):
    module = request.module
    sb = alta_sandbox_factory(token=module.TOKEN, **getattr(module, "SANDBOX", {"rate_limit": None}))
    extra = getattr(module, "CONNECTION_EXTRA", {})
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sb.url, module.TOKEN, **extra))
    return sb
