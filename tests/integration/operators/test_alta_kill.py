"""SIGKILL a single-call task mid-send; the next try fails as "may have been placed" and sends nothing."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from airflow_provider_alta.send_record import progress_key
from alta_testing.state_store import SqliteStateStore, start_batch_worker

pytestmark = pytest.mark.integration

TOKEN = "sandbox-single-kill-token"
WORKER = Path(__file__).with_name("single_call_worker.py")
KEY = progress_key(("call", "asst_kill", "+12025550143"))


def start_worker(store: Path, try_number: int, sandbox, tmp_path: Path) -> subprocess.Popen[str]:
    return start_batch_worker(
        WORKER, store, try_number, 1, url=sandbox.url, token=TOKEN, home=tmp_path / "airflow"
    )


def test_sigkill_mid_send_then_the_retry_sends_nothing(alta_sandbox_factory, tmp_path):
    # Every answer is held back 60 s after the call is journaled: a kill then is surely mid-send.
    sandbox = alta_sandbox_factory(
        token=TOKEN, rate_limit=None, faults={"rates": {"latency": 1.0}, "latency": 60}
    )
    store = tmp_path / "state.sqlite"
    first = start_worker(store, 1, sandbox, tmp_path)
    deadline = time.monotonic() + 60
    while not sandbox.calls() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sandbox.calls()) == 1, (
        first.communicate(timeout=10)[0][-3000:] if first.poll() is not None else ""
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert SqliteStateStore(str(store)).get(KEY)["state"] == "sending"

    second = start_worker(store, 2, sandbox, tmp_path)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 1, out[-3000:]
    assert "FAILED Not calling: this call may have been placed" in out
    assert "stopped while sending it" in out
    assert sandbox.stats()["requests"] == 1  # the retry sent nothing
    assert len(sandbox.calls()) == 1
    assert SqliteStateStore(str(store)).get(KEY)["state"] == "sending"  # still says so for the next one
