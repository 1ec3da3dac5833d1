"""example_alta_campaign_approval end to end: preview, a human's answer through the REST API, the calls.

Airflow 3.1+: ``airflow dags test`` runs the DAG in a real api-server's home; the approval task
parks until the test answers through the api-server's human-in-the-loop REST API. What was called
is read from the sandbox's journal. On Airflow 2.11 the approval step fails and nobody is called.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.campaign_checks import calls_where
from alta_testing.servers.airflow_env import AirflowEnv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "example_alta_campaign_approval"
COLUMNS = ("lead_id", "full_name", "phone", "email", "timezone", "plan", "consent")
# Fictional numbers only: 202-555-01xx and 020 7946 0xxx.
LEADS = [
    ("A1", "Ann", "+1 202-555-0101", "ann@example.com", "America/New_York", "pro", "yes"),
    ("A2", "Bob", "(202) 555-0102", "", "", "team", "yes"),
    ("A3", "Cy", "+44 20 7946 0101", "cy@example.co.uk", "Europe/London", "pro", "yes"),
    ("A4", "Di", "+1 202 555 0103", "", "America/New_York", "pro", "yes"),
    ("A5", "Ann again", "+12025550101", "", "America/New_York", "pro", "yes"),  # duplicate of A1
    ("A6", "Bad", "555-01", "", "America/New_York", "pro", "yes"),  # invalid
    ("A7", "No consent", "+1 202 555 0104", "", "", "pro", "no"),  # never read
]
CALLED = {"A1", "A2", "A3", "A4"}
FULL_NUMBERS = ["+12025550101", "2025550101", "+12025550102", "+12025550103", "+442079460101", "2079460101"]


def write_leads(path: Path, rows: list[tuple[str, ...]]) -> str:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return str(path)


def connection(sandbox: AltaSandbox) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_ALTA_DEFAULT": json.dumps(
            {"conn_type": "alta", "password": sandbox.token, "host": sandbox.base_url}
        )
    }


def called_leads(sandbox: AltaSandbox, run_id: str | None) -> list[str]:
    return sorted(c["body"]["data"]["lead_id"] for c in calls_where(sandbox.calls(), run_id=run_id or "-"))


# --- Airflow 3.1+: a real api-server answers for the human ---------------------------------------

needs_hitl = pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="human-in-the-loop needs Airflow 3.1+")


@pytest.fixture(scope="module")
def api_server() -> Iterator[Any]:
    from alta_testing.servers.api_server import AirflowApiServer

    server = AirflowApiServer()
    server.start()
    try:
        assert server.home is not None
        shutil.copy(REPO / "example_dags" / f"{DAG_ID}.py", server.home / "dags")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AltaSandbox]:
    with AltaSandbox(rate_limit=None) as server:
        yield server


def start_run(api_server: Any, sandbox: AltaSandbox, leads_csv: str) -> Any:
    from alta_testing.servers.dags_test import DagsTestRun

    conf = {"leads_csv": leads_csv, "calling_hours": "off"}
    return DagsTestRun(api_server, DAG_ID, conf=conf, env=connection(sandbox)).start()


@needs_hitl
def test_approve_calls_the_previewed_leads(api_server: Any, sandbox: AltaSandbox, tmp_path: Path) -> None:
    run = start_run(api_server, sandbox, write_leads(tmp_path / "leads.csv", LEADS))
    try:
        detail = run.wait_for_input("approve")
        assert called_leads(sandbox, run.run_id) == []  # nobody is called before the answer
        assert detail["subject"] == "Call 4 of 6 leads?"
        body = detail["body"]
        assert "| would be called now | 4 |" in body
        assert "| duplicates \\(not called\\) | 1 |" in body
        assert "| invalid \\(not called\\) | 1 |" in body
        assert "| America/New\\_York | 3 |" in body
        assert "| Europe/London | 1 |" in body
        assert "\\+1202\\*\\*\\*0101" in body
        shown = json.dumps(detail)
        assert not [n for n in FULL_NUMBERS if n in shown]
        assert "ann@example.com" not in shown
        run.respond("approve", "Approve")
        assert run.wait() == 0, run.output()
        assert run.states() == {"preview": "success", "approve": "success", "call_campaign": "success"}
    finally:
        run.stop()
    assert called_leads(sandbox, run.run_id) == sorted(CALLED)


@needs_hitl
def test_reject_calls_nobody(api_server: Any, sandbox: AltaSandbox, tmp_path: Path) -> None:
    run = start_run(api_server, sandbox, write_leads(tmp_path / "leads.csv", LEADS))
    try:
        run.wait_for_input("approve")
        run.respond("approve", "Reject")
        assert run.wait() == 0, run.output()
        assert run.states() == {"preview": "success", "approve": "success", "call_campaign": "skipped"}
    finally:
        run.stop()
    assert called_leads(sandbox, run.run_id) == []


@needs_hitl
def test_leads_changed_after_the_preview_are_not_called(
    api_server: Any, sandbox: AltaSandbox, tmp_path: Path
) -> None:
    leads = write_leads(tmp_path / "leads.csv", LEADS)
    run = start_run(api_server, sandbox, leads)
    try:
        run.wait_for_input("approve")
        write_leads(
            tmp_path / "leads.csv", [*LEADS, ("A8", "Newcomer", "+1 202 555 0105", "", "", "pro", "yes")]
        )
        run.respond("approve", "Approve")
        run.wait()
        assert run.states()["call_campaign"] == "failed"
        assert re.search(r"the leads changed after the preview was approved", run.output(20000))
    finally:
        run.stop()
    assert called_leads(sandbox, run.run_id) == []


# --- Airflow before 3.1: no approval step, nobody called -------------------------------------------


@pytest.mark.skipif(AIRFLOW_V_3_1_PLUS, reason="Airflow 3.1+ has the approval step")
def test_without_human_in_the_loop_nobody_is_called(
    airflow_env: AirflowEnv, alta_sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox = alta_sandbox_factory(rate_limit=None)
    conf = json.dumps({"leads_csv": write_leads(tmp_path / "leads.csv", LEADS), "calling_hours": "off"})
    result = airflow_env.airflow("dags", "test", DAG_ID, "-c", conf, check=False, **connection(sandbox))
    output = result.stdout + result.stderr
    assert "Human approval needs Airflow 3.1+" in output
    assert re.search(r"Marking task as SUCCESS\. dag_id=\S+, task_id=preview,", output)
    assert re.search(r"Marking task as FAILED\. dag_id=\S+, task_id=approve,", output)
    assert "starting task_id=call_campaign" not in output
    assert sandbox.calls() == []
