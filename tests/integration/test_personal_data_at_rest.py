"""Nothing Airflow keeps for an Alta task holds a full phone number or email.

A real ``airflow dags test`` run (SQLite, DEBUG logging) places single, mapped and batch calls
against the sandbox; then the test reads what Airflow stored for those tasks: rendered template
fields, XCom, task state, triggers, and every log line the run printed or wrote.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

import airflow_provider_alta
from alta_testing.servers.airflow_env import AirflowEnv

pytestmark = pytest.mark.integration

TOKEN = "sandbox-pii-token"
PEOPLE = [
    {"name": "Grace Hopper", "phone_number": "+12025550171", "email": "Grace.Hopper@Example.com"},
    {"name": "Alan Turing", "phone_number": "+442079460172", "email": "alan@example.org"},
    {"name": "Bad Zone", "phone_number": "+12025550173", "email": "bad@example.net", "timezone": "Mars/Base"},
    {"name": "Bad Number", "phone_number": "+1 202 555 01749", "email": "badnum@example.net"},
]
TRANSFER = "+12025550179"
ALTA_TASKS = ("single", "mapped", "batch")


def secrets_of(people: list[dict[str, str]]) -> list[re.Pattern[str]]:
    """Every full number (as its national digits, whatever the separators) and email (any case)."""
    patterns = []
    for person in people:
        digits = re.sub(r"\D", "", person["phone_number"])
        national = digits[1:] if digits.startswith("1") else digits[2:]
        patterns.append(re.compile(r"[\s().\-/]*".join(national)))
        patterns.append(re.compile(re.escape(person["email"]), re.IGNORECASE))
    patterns.append(re.compile(r"[\s().\-/]*".join(TRANSFER[2:])))
    return patterns


def leaks(text: str, patterns: list[re.Pattern[str]]) -> list[str]:
    return [p.pattern for p in patterns if p.search(text)]


@pytest.fixture
def run(airflow_env: AirflowEnv, alta_sandbox_factory):
    sandbox = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    conn = json.dumps({"conn_type": "alta", "password": TOKEN, "host": sandbox.url})
    result = airflow_env.airflow(
        "dags", "test", "alta_test_personal_data", "-c", json.dumps({"people": PEOPLE, "transfer": TRANSFER}),
        check=False,
        AIRFLOW_CONN_ALTA_DEFAULT=conn,
        AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG",
    )  # fmt: skip
    return sandbox, result


def stored_rows(airflow_env: AirflowEnv) -> dict[str, list[str]]:
    """What Airflow's database holds for the Alta tasks, by table."""
    db = sqlite3.connect(airflow_env.home / "airflow.db")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    marks = ",".join("?" * len(ALTA_TASKS))
    where = f"dag_id = 'alta_test_personal_data' AND task_id IN ({marks})"

    def column(sql: str) -> list[str]:
        return [" ".join(map(str, row)) for row in db.execute(sql, ALTA_TASKS)]

    rows = {
        "rendered": column(f"SELECT rendered_fields FROM rendered_task_instance_fields WHERE {where}"),
        "xcom": column(f"SELECT value FROM xcom WHERE {where}"),
        "map_index": column(f"SELECT rendered_map_index FROM task_instance WHERE {where}"),
        "trigger": [str(kwargs) for (kwargs,) in db.execute("SELECT kwargs FROM trigger")],
    }
    if "task_state_store" in tables:
        rows["task_state"] = column(f"SELECT key, value FROM task_state_store WHERE {where}")
    return rows


def test_the_calls_went_out_with_the_real_values(run):
    sandbox, result = run
    numbers = sorted(call["body"]["phoneNumber"] for call in sandbox.calls())
    # single (person 0), mapped and batch (persons 0 and 1 each; 2 and 3 are invalid)
    assert numbers == sorted(["+12025550171"] * 3 + ["+442079460172"] * 2), result.stdout[-3000:]
    single = next(c["body"] for c in sandbox.calls() if c["body"].get("callTransfer"))
    assert single["email"] == "Grace.Hopper@Example.com"
    assert single["callTransfer"]["phoneNumber"] == TRANSFER
    assert single["data"] == {"note": "call back on +12025550171"}


def test_rendered_fields_xcom_task_state_and_triggers_hold_no_personal_data(run, airflow_env):
    rows = stored_rows(airflow_env)
    assert rows["rendered"], "Airflow stored no rendered fields for the Alta tasks"
    assert rows["xcom"], "the Alta tasks pushed no XCom"
    patterns = secrets_of(PEOPLE)
    for table, values in rows.items():
        for value in values:
            assert not leaks(value, patterns), (table, value[:500])
    rendered = " ".join(rows["rendered"])
    assert "+1202***0171" in rendered  # the number shows masked
    assert "<records" in rendered or "records>" in rendered  # the batch shows a count, not the list


def test_no_log_line_holds_personal_data(run, airflow_env):
    _, result = run
    patterns = secrets_of(PEOPLE)
    output = result.stdout + result.stderr
    assert "[debug" in output or "DEBUG - " in output  # the run really logged at DEBUG
    logs = [path for path in airflow_env.home.glob("logs/**/*") if path.is_file()]
    found = [(path.name, leaks(path.read_text(errors="replace"), patterns)) for path in logs]
    assert all(not hits for _, hits in found), found
    lines = provider_lines(output)
    assert any("Alta batch finished" in line for line in lines)  # the filter kept the provider's lines
    assert [line for line in lines if leaks(line, patterns)] == []


def provider_lines(output: str) -> list[str]:
    """The lines the provider logged (its modules' loggers and its operators' task loggers).

    Airflow's own DEBUG lines echo every XCom message, so they show the user's upstream records
    as the user's task returned them; those are the user's data, not the provider's logging.
    """
    return [line for line in output.splitlines() if "airflow_provider_alta" in line or OUR_FILE.search(line)]


# Airflow 2's log format names the source file, not the logger: ``{batch.py:389} INFO - ...``.
OUR_MODULES = sorted(p.stem for p in Path(airflow_provider_alta.__file__).parent.rglob("*.py"))
OUR_FILE = re.compile(r"\{(?:" + "|".join(m for m in OUR_MODULES if m != "__init__") + r")\.py:\d+\}")
