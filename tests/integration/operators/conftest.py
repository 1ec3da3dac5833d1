"""The operator tests' sandbox: one per test, with ``alta_default`` pointing at it.

A test module names its token in ``TOKEN``; it may set ``SANDBOX`` (the sandbox's options, default
no rate limit) and ``CONNECTION_EXTRA`` (the connection's extras). ``state_store`` is a task state
store as Airflow 3.3 hands it to a task; ``context(store, try_number)`` builds a task's context.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from alta_testing.environment import alta_connection


@pytest.fixture
def sandbox(alta_sandbox_factory, monkeypatch, request):
    module = request.module
    sb = alta_sandbox_factory(token=module.TOKEN, **getattr(module, "SANDBOX", {"rate_limit": None}))
    extra = getattr(module, "CONNECTION_EXTRA", {})
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sb.url, module.TOKEN, **extra))
    return sb


class StateStore:
    """Airflow 3.3's task state store as an operator sees it (``get``, ``set`` with a retention), in
    memory: values go through JSON as in Airflow's database, and every write is kept in ``writes``."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes: list[tuple[str, dict, object]] = []

    def get(self, key: str, default: object = None) -> object:
        return json.loads(self.data[key]) if key in self.data else default

    def set(self, key: str, value: object, *, retention: object = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.data[key] = json.dumps(value)
        self.writes.append((key, json.loads(self.data[key]), retention))

    def text(self) -> str:
        """Everything stored, as text (to look for personal data)."""
        return json.dumps(self.data)


@pytest.fixture
def state_store() -> StateStore:
    return StateStore()


def task_context(store: StateStore | None, try_number: int = 1) -> dict:
    """The bits of an Airflow context the single-call operator reads."""
    context: dict = {"ti": SimpleNamespace(try_number=try_number)}
    if store is not None:
        context["task_state_store"] = store
    return context


@pytest.fixture
def context():
    return task_context
