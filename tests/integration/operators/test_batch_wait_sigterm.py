"""SIGTERM a batch while it waits for calling windows: in its process, and under `airflow dags test`.

No timing assertion: each process is given a generous bound to end, where without the stop it would
wait about two hours.
"""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alta_testing.state_store import start_batch_worker

pytestmark = pytest.mark.integration

TOKEN = "sandbox-batch-wait-token"
COUNT = 4
WORKER = Path(__file__).with_name("batch_wait_worker.py")


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 300) -> list[str]:
    """The process's output lines up to the first containing ``marker`` (all of them if it ends first)."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if marker in line:
                found.set()
                return
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return lines


def tagged(out: str, tag: str) -> str:
    return out.split(f"{tag} ", 1)[1].splitlines()[0]


def test_sigterm_stops_a_batch_waiting_in_its_process_with_every_record_accounted_for(sandbox, tmp_path):
    worker = start_batch_worker(
        WORKER, tmp_path / "state.sqlite", 1, COUNT, url=sandbox.url, token=TOKEN, home=tmp_path / "airflow"
    )
    before = "".join(read_until(worker, "in this process"))
    assert "4 record(s) wait for their calling window" in before, before[-3000:]
    assert 'calling_hours="off"' in before
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert tagged(out, "RAISED").startswith("AirflowException: ")  # a retry resumes it
    summary = json.loads(tagged(out, "SUMMARY"))
    assert summary["counts"] == {"not_reached": COUNT}
    assert summary["stopped"] == "asked to stop (the task received SIGTERM)"
    assert sandbox.calls() == []


def closed_window() -> str:
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
    if start.hour == 23 and start.minute > 28:
        start = start.replace(hour=0, minute=30)
    return f"{start:%H:%M}-{start + datetime.timedelta(minutes=30):%H:%M}"


def test_sigterm_stops_airflow_dags_test_while_the_batch_is_deferred(airflow_env, sandbox):
    env = airflow_env.env(
        AIRFLOW_CONN_ALTA_DEFAULT=json.dumps({"conn_type": "alta", "password": TOKEN, "host": sandbox.url})
    )
    conf = json.dumps({"calling_hours": closed_window()})
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), "dags", "test", "alta_test_batch_wait", "-c", conf],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        before = "".join(read_until(process, "Alta batch deferred"))
        assert "Alta batch deferred: 3 record(s) waiting; resumes" in before, before[-4000:]
        assert 'outside_calling_hours="skip"' in before
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert "stopped while deferred" in out, out[-4000:]
    assert sandbox.calls() == []
