"""Every example DAG parses, and runs end to end with `airflow dags test` against the sandbox."""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
import sys
import time

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from alta_testing.servers.airflow_env import AirflowEnv

pytestmark = pytest.mark.integration

TOKEN = "sandbox-example-token"
EXAMPLE_DAGS = {
    "example_alta_single_call",
    "example_alta_leads_pipeline",
    "example_alta_new_leads_producer",
    "example_alta_call_new_leads",
    "example_alta_bulk_campaign",
    "example_alta_call_outcome",
}
PARSE = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dag_ids)}))
"""


@pytest.fixture
def sandbox(alta_sandbox_factory):
    return alta_sandbox_factory(token=TOKEN, rate_limit=None)


def conn(sandbox) -> str:
    return json.dumps({"conn_type": "alta", "password": TOKEN, "host": sandbox.url})


def dags_test(env: AirflowEnv, sandbox, dag_id: str, conf: dict | None = None, check: bool = True):
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["-c", json.dumps(conf)]
    return env.airflow(
        *args, check=check, AIRFLOW_CONN_ALTA_DEFAULT=conn(sandbox), AIRFLOW_VAR_ALTA_CALLING_HOURS="off"
    )


def bodies(sandbox) -> list[dict]:
    return [c["body"] for c in sandbox.calls()]


def test_every_example_parses_without_errors(airflow_env: AirflowEnv):
    out = subprocess.run(
        [sys.executable, "-c", PARSE, str(airflow_env.dags)],
        env=airflow_env.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    parsed = json.loads(out.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) >= EXAMPLE_DAGS


def test_single_call_example(airflow_env: AirflowEnv, sandbox):
    dags_test(
        airflow_env, sandbox, "example_alta_single_call", {"calling_hours": "off", "notes": "{{ 1 + 1 }}"}
    )
    (body,) = bodies(sandbox)
    assert body["assistantId"] == "asst_demo"
    assert body["name"] == "Ada Lovelace"
    assert body["phoneNumber"] == "+12025550143"
    assert body["timezone"] == "America/New_York"
    assert body["data"]["source"] == "airflow"
    assert body["data"]["run_id"].startswith("manual__")


@pytest.mark.parametrize(
    ("summary", "branch", "skipped"),
    [
        (
            "Ada asked for a follow-up call next week; call her on +1 202 555 0143.",
            "create_crm_task",
            "log_outcome",
        ),
        ("Ada is not interested; no follow-up is needed.", "log_outcome", "create_crm_task"),
    ],
)
def test_call_outcome_example_branches_on_the_summary(
    airflow_env: AirflowEnv, alta_sandbox_factory, summary, branch, skipped
):
    """Place, defer until the call has ended (a compressed lifecycle), branch on its masked summary."""
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None, call_start_delay=0, call_duration=0)
    conf = {"calling_hours": "off", "data": {"notes": "demo", "sandbox_summary": summary}}
    result = dags_test(airflow_env, sandbox, "example_alta_call_outcome", conf)
    (body,) = bodies(sandbox)
    assert body["phoneNumber"] == "+12025550143"
    assert sandbox.stats()["gets"] >= 1  # the outcome was read back
    states = dict(
        sqlite3.connect(airflow_env.home / "airflow.db").execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'example_alta_call_outcome' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'example_alta_call_outcome' "
            "ORDER BY id DESC LIMIT 1)"
        )
    )
    assert states["call"] == states[branch] == "success"
    assert states[skipped] == "skipped"
    output = result.stdout + result.stderr
    assert "2025550143" not in output  # the summary's number is masked in every log line
    if branch == "create_crm_task":
        assert "CRM task created: follow-up for call" in output
    if AIRFLOW_V_3_3_PLUS:  # the call's record: keyed by a hash, masked, with the outcome, never expiring
        db = sqlite3.connect(airflow_env.home / "airflow.db")
        ((key, value, expires_at),) = db.execute(
            "SELECT key, value, expires_at FROM task_state_store WHERE dag_id = 'example_alta_call_outcome' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'example_alta_call_outcome' "
            "ORDER BY id DESC LIMIT 1)"
        ).fetchall()
        record = json.loads(value)
        assert key.startswith("alta:")
        assert expires_at is None
        assert record["state"] == "called"
        assert record["result"]["outcome"]["status"] == "ended"
        assert record["result"]["call_id"] == record["result"]["outcome"]["id"]
        assert "2025550143" not in value


def test_leads_pipeline_calls_every_valid_lead_exactly_once(airflow_env: AirflowEnv, sandbox):
    dags_test(airflow_env, sandbox, "example_alta_leads_pipeline", {"calling_hours": "off"})
    received = bodies(sandbox)
    assert sorted(b["phoneNumber"] for b in received) == sorted(LEADS_PIPELINE_NUMBERS)
    by_number = {b["phoneNumber"]: b for b in received}
    assert by_number["+12025550143"]["data"] == {"lead_id": "L001", "plan": "pro"}
    assert "email" not in by_number["+13125550199"]
    assert {b["assistantId"] for b in received} == {"asst_demo"}


LEADS_PIPELINE_NUMBERS = [
    "+12025550143",  # L001 (L010 is its duplicate)
    "+12025550178",  # L002, national format normalised with the US region
    "+442079460123",  # L003
    "+12135550100",  # L004
    "+13125550199",  # L005
    "+61491570156",  # L006
    "+442079460456",  # L007, no timezone: derived from the number
    "+14155550134",  # L008
    "+61255500123",  # L014
]


def test_bulk_campaign_example(airflow_env: AirflowEnv, sandbox):
    dags_test(airflow_env, sandbox, "example_alta_bulk_campaign", {"calling_hours": "off"})
    received = bodies(sandbox)
    assert sorted(b["phoneNumber"] for b in received) == sorted(LEADS_PIPELINE_NUMBERS)
    assert {b["data"]["campaign"] for b in received} == {"sample"}
    assert {b["data"]["lead_id"] for b in received} == {f"L{n:03d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 14)}


def test_asset_triggered_example(airflow_env: AirflowEnv, sandbox):
    dags_test(airflow_env, sandbox, "example_alta_new_leads_producer")
    dags_test(airflow_env, sandbox, "example_alta_call_new_leads")
    assert sorted(b["phoneNumber"] for b in bodies(sandbox)) == ["+12025550161", "+442079460999"]


def test_upstream_values_are_never_rendered(airflow_env: AirflowEnv, sandbox):
    dags_test(airflow_env, sandbox, "alta_test_literal_mapping")
    received = {b["phoneNumber"]: b for b in bodies(sandbox)}
    assert set(received) == {"+12025550101", "+12025550102", "+12025550103"}
    assert received["+12025550101"]["name"] == "{{ conn.alta_default.password }}"
    assert received["+12025550101"]["data"] == {"note": "{{ 6 * 7 }}"}
    assert received["+12025550102"]["name"] == "{{ conn.alta_default.password }}"
    assert received["+12025550102"]["email"] == "{{ds}}@example.com"
    assert received["+12025550103"]["data"] == {"note": "{{ 6 * 7 }}"}
    # The DAG author's own template in partial() is still rendered.
    assert {b["assistantId"] for b in received.values()} == {"asst_param"}


def test_a_payload_carrying_the_token_is_refused(airflow_env: AirflowEnv, sandbox):
    result = dags_test(airflow_env, sandbox, "alta_test_secret_guard", check=False)
    assert bodies(sandbox) == []
    output = result.stdout + result.stderr
    assert "refusing to send" in output
    assert TOKEN not in output


def test_a_call_outside_the_window_defers_and_is_placed_when_it_opens(airflow_env: AirflowEnv, sandbox):
    now = datetime.datetime.now(datetime.timezone.utc)
    # At least 45 s ahead, so that the window is still closed when `airflow dags test` reaches the task.
    start = (now + datetime.timedelta(seconds=105)).replace(second=0, microsecond=0)
    if start.hour == 23 and start.minute >= 57:  # keep the window inside one day
        time.sleep((start.replace(hour=0, minute=1) + datetime.timedelta(days=1) - now).total_seconds())
        start = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
        start += datetime.timedelta(minutes=1)
    end = start + datetime.timedelta(minutes=2)
    window = f"{start:%H:%M}-{end:%H:%M}"
    result = dags_test(
        airflow_env, sandbox, "alta_test_deferral", {"calling_hours": window, "timezone": "UTC"}
    )
    (call,) = sandbox.calls()
    received = datetime.datetime.fromisoformat(call["received_at"].replace("Z", "+00:00"))
    assert start <= received < end
    assert "deferring until then" in result.stdout + result.stderr


def test_a_batch_defers_through_a_long_429_and_resumes_without_resending(airflow_env: AirflowEnv, sandbox):
    sandbox.set_faults(script=["ok", "ok", "ok", "429:20"])
    result = dags_test(airflow_env, sandbox, "alta_test_batch_defer")
    numbers = [b["phoneNumber"] for b in bodies(sandbox)]
    assert sorted(numbers) == [f"+1202555{i:04d}" for i in range(100, 110)]  # each exactly once
    assert sandbox.stats()["responses"] == {"200": 10, "429": 1}
    assert "deferring until" in result.stdout + result.stderr
    if AIRFLOW_V_3_3_PLUS:  # progress went through Airflow's task state store: one row per person
        db = sqlite3.connect(airflow_env.home / "airflow.db")
        rows = db.execute(
            "SELECT key, value, expires_at FROM task_state_store WHERE dag_id = 'alta_test_batch_defer'"
        ).fetchall()
        assert len(rows) == 10
        assert {json.loads(value)["state"] for _, value, _ in rows} == {"called"}
        assert all(key.startswith("alta:") and "555" not in key for key, _, _ in rows)
        assert {expires_at for _, _, expires_at in rows} == {None}  # NEVER_EXPIRE: no 30-day expiry
