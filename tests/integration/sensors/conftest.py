"""The sensor tests' sandbox, ``alta_default`` pointing at it: calls start and end within a second,
or, on ``sandbox.clock`` (moved by hand), only when a test moves it."""

from __future__ import annotations

import pytest

from alta_testing.environment import alta_connection

TOKEN = "sandbox-sensor-token"


class FakeClock:
    """The sandbox's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sandbox(alta_sandbox_factory, monkeypatch):
    sb = alta_sandbox_factory(token=TOKEN, rate_limit=None, call_start_delay=0.2, call_duration=0.3)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sb.url, TOKEN))
    return sb


@pytest.fixture
def held_sandbox(alta_sandbox_factory, monkeypatch):
    """Calls start 10 and end 15 clock seconds after they are placed; ``held_sandbox.clock`` moves."""
    clock = FakeClock()
    sb = alta_sandbox_factory(token=TOKEN, rate_limit=None, clock=clock, call_start_delay=10, call_duration=5)
    sb.clock = clock
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sb.url, TOKEN))
    return sb


@pytest.fixture
def place_call():
    """Place a call through the hook (on whichever sandbox ``alta_default`` points at); returns its id."""
    from airflow_provider_alta.hooks.alta import AltaHook

    def place(summary: str = "The prospect booked a demo.") -> str:
        hook = AltaHook()
        try:
            answer = hook.trigger_assistant_call(
                "asst_1", "Ada", "+12025550143", data={"sandbox_summary": summary}
            )
        finally:
            hook.close()
        return answer["id"]

    return place
