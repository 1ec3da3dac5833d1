"""SIGTERM a batch worker mid-batch: it stops promptly, finishes the send in flight and reports.

The worker runs the batch operator in its own process behind Airflow's task-runner SIGTERM
handler (see ``batch_sigterm_worker.py``), against the sandbox over loopback HTTP.
"""

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

TOKEN = "sandbox-sigterm-token"
COUNT = 30
WORKER = Path(__file__).with_name("batch_sigterm_worker.py")


def start_worker(store: Path, try_number: int, sandbox, tmp_path: Path) -> subprocess.Popen[str]:
    return start_batch_worker(
        WORKER, store, try_number, COUNT, url=sandbox.url, token=TOKEN, home=tmp_path / "airflow"
    )


def lines(out: str, tag: str) -> str:
    return out.split(f"{tag} ", 1)[1].splitlines()[0]


def test_sigterm_stops_the_batch_after_the_send_in_flight_and_the_next_try_resumes(
    alta_sandbox_factory, tmp_path
):
    sandbox = alta_sandbox_factory(
        token=TOKEN, rate_limit=None, faults={"rates": {"latency": 1.0}, "latency": 0.3}
    )
    store = tmp_path / "state.sqlite"
    first = start_worker(store, 1, sandbox, tmp_path)
    deadline = time.monotonic() + 120
    while len(sandbox.calls()) < 5 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    at_signal = len(sandbox.calls())
    assert at_signal >= 5, first.communicate()[0][-3000:] if first.poll() is not None else "no calls"
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out[-3000:]

    raised = lines(out, "RAISED")
    assert raised.startswith("AirflowException: ")  # fails for a retry (not AirflowFailException)
    assert "not reached" in raised
    assert lines(out, "RESTORED") == "True"
    summary = json.loads(lines(out, "SUMMARY"))
    journal = Counter(c["body"]["phoneNumber"] for c in sandbox.calls())
    assert max(journal.values()) == 1  # nobody called twice
    assert len(journal) <= at_signal + 2  # the send in flight, at most one starting as the signal came
    assert len(journal) < COUNT
    assert summary["total"] == COUNT  # every record accounted for
    assert summary["counts"] == {"called": len(journal), "not_reached": COUNT - len(journal)}
    assert summary["stopped"] == "asked to stop (the task received SIGTERM)"

    second = start_worker(store, 2, sandbox, tmp_path)
    out, _ = second.communicate(timeout=120)
    assert "RAISED" not in out, out[-3000:]
    resumed = json.loads(lines(out, "SUMMARY"))
    assert resumed["counts"] == {"called": COUNT}
    journal = Counter(c["body"]["phoneNumber"] for c in sandbox.calls())
    assert len(journal) == COUNT
    assert max(journal.values()) == 1
