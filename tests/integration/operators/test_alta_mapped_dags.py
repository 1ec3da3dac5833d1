"""Mapped single calls in a real `airflow dags test` run: what Airflow's database shows for each.

Each mapped call's map index (``task_instance.rendered_map_index``) is its record key, else its
masked number; its XCom carries the record key. A call waiting for its calling window says when
it resumes and how not to wait, and SIGTERM ends the wait.
"""

from __future__ import annotations

import datetime
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from alta_testing.servers.airflow_env import AirflowEnv

pytestmark = pytest.mark.integration

TOKEN = "sandbox-mapped-token"
WAITING = "Waiting for the calling window of +1202***0143"


def connection(url: str) -> str:
    return json.dumps({"conn_type": "alta", "password": TOKEN, "host": url})


def task_rows(env: AirflowEnv, dag_id: str) -> dict[tuple[str, int], tuple[str | None, str | None]]:
    """``(task_id, map_index) -> (rendered_map_index, state)`` of the DAG's latest run."""
    db = sqlite3.connect(env.home / "airflow.db")
    (run_id,) = db.execute(
        "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
    ).fetchone()
    rows = db.execute(
        "SELECT task_id, map_index, rendered_map_index, state FROM task_instance"
        " WHERE dag_id = ? AND run_id = ?",
        (dag_id, run_id),
    )
    return {(task_id, index): (shown, state) for task_id, index, shown, state in rows}


def xcom_values(env: AirflowEnv, dag_id: str, task_id: str) -> dict[int, object]:
    db = sqlite3.connect(env.home / "airflow.db")
    rows = db.execute(
        "SELECT map_index, value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
        (dag_id, task_id),
    )
    return {index: json.loads(value) for index, value in rows}


def test_mapped_calls_show_their_record_key_or_masked_number(airflow_env: AirflowEnv, alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    result = airflow_env.airflow(
        "dags", "test", "alta_test_mapped_labels", AIRFLOW_CONN_ALTA_DEFAULT=connection(sandbox.url)
    )
    assert sorted(c["body"]["phoneNumber"] for c in sandbox.calls()) == sorted(
        ["+12025550143", "+12025550178"] * 2
    ), result.stdout[-3000:]
    rows = task_rows(airflow_env, "alta_test_mapped_labels")
    assert rows[("keyed", 0)] == ("lead-0001", "success")
    assert rows[("keyed", 1)] == ("lead-0002", "success")
    # Without a key, the masked number, also for a national number normalized with default_region.
    assert rows[("unkeyed", 0)] == ("+1202***0143", "success")
    assert rows[("unkeyed", 1)] == ("+1202***0178", "success")

    keyed = xcom_values(airflow_env, "alta_test_mapped_labels", "keyed")
    assert {index: value["record_key"] for index, value in keyed.items()} == {0: "lead-0001", 1: "lead-0002"}
    assert keyed[0]["phone_number"] == "+1202***0143"
    unkeyed = xcom_values(airflow_env, "alta_test_mapped_labels", "unkeyed")
    assert all("record_key" not in value for value in unkeyed.values())


def closed_window() -> str:
    """A one-hour window in America/New_York that is at least three hours away."""
    now = datetime.datetime.now(ZoneInfo("America/New_York"))
    start = next(h for h in range(23) if min(abs(h - now.hour), 24 - abs(h - now.hour)) >= 3)
    return f"{start:02d}:00-{start + 1:02d}:00"


def test_a_waiting_call_says_when_it_resumes_and_sigterm_ends_the_wait(
    airflow_env: AirflowEnv, alta_sandbox_factory, tmp_path: Path
):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    log = tmp_path / "dags-test.log"
    conf = json.dumps({"calling_hours": closed_window()})
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("airflow")),
                "dags",
                "test",
                "alta_test_mapped_wait",
                "-c",
                conf,
            ],
            env=airflow_env.env(AIRFLOW_CONN_ALTA_DEFAULT=connection(sandbox.url)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while WAITING not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert WAITING in log.read_text(), log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)  # a bound for a wait that would otherwise last hours
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert proc.returncode != 0
    assert "Stopped (SIGTERM) while waiting in the trigger" in output
    assert sandbox.calls() == []
    # The log says when the call resumes, in the person's time and UTC, and how not to wait.
    resumes = next(line for line in output.splitlines() if "The call to +1202***0143 resumes" in line)
    assert "America/New_York (" in resumes
    assert " UTC), in " in resumes
    assert 'to call now, set calling_hours="off"; not to wait, set outside_calling_hours="skip"' in resumes
    assert "seconds remaining; sleeping" not in output  # Airflow's DateTimeTrigger is not used
    assert "2025550143" not in output
    shown, _ = task_rows(airflow_env, "alta_test_mapped_wait")[("waiting", 0)]
    # Airflow 3 renders the map index before execute, so a deferred call shows it; 2.11 only
    # renders it after a try that did not defer.
    assert shown == ("+1202***0143" if AIRFLOW_V_3_0_PLUS else None)
