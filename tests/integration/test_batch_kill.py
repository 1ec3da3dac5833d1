"""SIGKILL a batch worker mid-batch, run the next try: nobody is called twice, everyone is accounted for."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from alta_testing.state_store import start_batch_worker

pytestmark = pytest.mark.integration

TOKEN = "sandbox-kill-token"
COUNT = 40
WORKER = Path(__file__).parents[1] / "batch_worker.py"


def start_worker(store: Path, try_number: int, sandbox, tmp_path: Path) -> subprocess.Popen[str]:
    return start_batch_worker(
        WORKER, store, try_number, COUNT, url=sandbox.url, token=TOKEN, home=tmp_path / "airflow"
    )


def test_sigkill_mid_batch_then_next_try(alta_sandbox_factory, tmp_path):
    sandbox = alta_sandbox_factory(
        token=TOKEN, rate_limit=None, faults={"rates": {"latency": 1.0}, "latency": 0.3}
    )
    store = tmp_path / "state.sqlite"
    first = start_worker(store, 1, sandbox, tmp_path)
    deadline = time.monotonic() + 60
    while len(sandbox.calls()) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.15)  # most likely inside a send: journaled, no answer yet
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    placed_by_first = len(sandbox.calls())
    assert 12 <= placed_by_first < COUNT

    second = start_worker(store, 2, sandbox, tmp_path)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out[-3000:]
    summary = json.loads(out.split("SUMMARY ", 1)[1].splitlines()[0])

    journal = Counter(c["body"]["phoneNumber"] for c in sandbox.calls())
    assert max(journal.values()) == 1  # nobody called twice
    assert summary["total"] == COUNT
    states = Counter(o["state"] for o in summary["outcomes"].values())
    assert set(states) <= {"called", "ambiguous"}
    assert states["ambiguous"] <= 1  # at most the one in flight when the worker died
    assert len(journal) == COUNT  # everyone placed exactly once (the in-flight one by the first try)
    resumed = [o for o in summary["outcomes"].values() if "earlier try" in o.get("reason", "")]
    assert len(resumed) >= placed_by_first - 1
