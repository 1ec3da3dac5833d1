"""AltaNotifier against the sandbox: in-process callbacks, and failing DAGs under `airflow dags test`."""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_alta.exceptions import AltaAmbiguousOutcomeError, AltaValidationError
from airflow_provider_alta.notifications.alta import AltaNotifier
from alta_testing.environment import alta_connection

pytestmark = pytest.mark.integration

TOKEN = "sandbox-notifier-token"
ON_CALL = "+12025550188"  # the number the test DAGs call (dags/alta_test_notifier.py)
DAGS = Path(__file__).parent / "dags"
RUN_ID = "manual__2026-12-01T10:00:00+00:00"


@pytest.fixture
def sandbox(alta_sandbox_factory, monkeypatch):
    sb = alta_sandbox_factory(token=TOKEN, rate_limit=None)
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sb.url, TOKEN))
    return sb


def notifier(tmp_path: Path, **kwargs: object) -> AltaNotifier:
    fields: dict = {
        "assistant_id": "asst_oncall",
        "phone_number": ON_CALL,
        "calling_hours": "off",
        "record_path": str(tmp_path / "records.sqlite3"),
    }
    return AltaNotifier(**{**fields, **kwargs})


def task_failure(try_number: int = 1, store: object = None) -> dict:
    """A task failure callback's context, as far as the notifier reads it."""
    dag = DAG("nightly_load", schedule=None, start_date=datetime.datetime(2026, 1, 1))
    ti = SimpleNamespace(
        dag_id="nightly_load",
        task_id="load",
        run_id=RUN_ID,
        map_index=-1,
        try_number=try_number,
        log_url="http://airflow.example/log",
    )
    context: dict = {"dag": dag, "ti": ti, "run_id": RUN_ID, "exception": ValueError("ask +12025550177")}
    if store is not None:
        context["task_state_store"] = store
    return context


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """What was logged: Airflow 3 logs a notifier's lines through structlog (to stdout)."""
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err


def notify(n: AltaNotifier, context: dict) -> None:
    n.render_template_fields(context)
    n.notify(context)


class StateStore:
    """Airflow 3.3's task state store as a callback gets it (values through JSON)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str, default: object = None) -> object:
        return json.loads(self.data[key]) if key in self.data else default

    def set(self, key: str, value: object, *, retention: object = None) -> None:
        self.data[key] = json.dumps(value)


def test_a_task_failure_calls_with_the_default_data_masked(sandbox, tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO)
    notify(notifier(tmp_path), task_failure(try_number=2))
    (call,) = sandbox.calls()
    assert call["body"]["phoneNumber"] == ON_CALL
    assert call["body"]["data"] == {
        "dag_id": "nightly_load",
        "task_id": "load",
        "run_id": RUN_ID,
        "try_number": 2,
        "error": "ValueError: ask +1202***0177",
        "log_url": "http://airflow.example/log",
    }
    text = logged(caplog, capsys)
    assert "Called +1202***0188 about nightly_load.load" in text
    assert "2025550188" not in text


def test_templated_data_is_rendered_from_the_context(sandbox, tmp_path):
    data = {"what": "{{ ti.task_id }} failed in {{ dag.dag_id }}", "run": "{{ run_id }}"}
    notify(notifier(tmp_path, data=data, name="{{ 'Grace' }}"), task_failure())
    (call,) = sandbox.calls()
    assert call["body"]["data"] == {"what": "load failed in nightly_load", "run": RUN_ID}
    assert call["body"]["name"] == "Grace"


def test_a_callback_that_runs_twice_calls_once(sandbox, tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO)
    notify(notifier(tmp_path), task_failure())
    notify(notifier(tmp_path), task_failure())
    assert len(sandbox.calls()) == 1
    assert "already called +1202***0188" in logged(caplog, capsys)


def test_the_task_state_store_keeps_a_second_machine_from_calling(sandbox, tmp_path):
    store = StateStore()
    notify(notifier(tmp_path), task_failure(store=store))
    elsewhere = tmp_path / "another-machine"  # its own (empty) record file, the same task state store
    elsewhere.mkdir()
    notify(notifier(elsewhere), task_failure(store=store))
    assert len(sandbox.calls()) == 1
    (record,) = (json.loads(v) for v in store.data.values())
    assert record["state"] == "called"
    assert "2025550188" not in json.dumps(store.data)


def test_another_failure_or_person_is_called_again(sandbox, tmp_path):
    notify(notifier(tmp_path), task_failure(try_number=1))
    notify(notifier(tmp_path), task_failure(try_number=3))  # cleared and failed again
    notify(notifier(tmp_path, phone_number="+12025550189"), task_failure(try_number=3))
    assert [c["body"]["phoneNumber"] for c in sandbox.calls()] == [ON_CALL, ON_CALL, "+12025550189"]


def test_a_call_that_may_have_been_placed_is_never_placed_again(sandbox, tmp_path, caplog, capsys):
    sandbox.set_faults(script=["reset_after_accept"])
    with pytest.raises(AltaAmbiguousOutcomeError):
        notify(notifier(tmp_path), task_failure())
    notify(notifier(tmp_path), task_failure())
    assert len(sandbox.calls()) == 1
    assert "A call to +1202***0188 about nightly_load.load (run" in logged(caplog, capsys)


def test_a_bad_number_names_the_field_and_sends_nothing(sandbox, tmp_path):
    with pytest.raises(AltaValidationError, match="phone_number: is not a valid phone number"):
        notify(notifier(tmp_path, phone_number="+1202555018"), task_failure())
    assert sandbox.calls() == []


def test_outside_calling_hours_it_warns_and_does_not_call(sandbox, tmp_path, caplog, capsys):
    closed_day = (datetime.datetime.now(datetime.timezone.utc).isoweekday() + 2) % 7 + 1
    hours = {"start": "00:00", "end": "23:59", "days": [closed_day]}
    notify(notifier(tmp_path, calling_hours=hours, timezone="UTC"), task_failure())
    assert sandbox.calls() == []
    # (Airflow 2 shows the line twice: in the captured log and on the console)
    warning = next(line for line in logged(caplog, capsys).splitlines() if "Not calling" in line)
    assert "warning" in warning.lower()
    assert "Not calling +1202***0188 about nightly_load.load" in warning
    assert "outside calling hours 00:00-23:59" in warning


# --- failing DAGs under `airflow dags test` (tasks and callbacks as Airflow runs them) ---


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("notifier-home")
    shutil.copytree(DAGS, home / "dags")
    run_airflow(home, "db", "migrate")
    return home


def run_airflow(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **extra,
    }
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def dags_test(home: Path, sandbox, dag_id: str, tmp_path: Path) -> str:
    result = run_airflow(
        home,
        "dags",
        "test",
        dag_id,
        AIRFLOW_CONN_ALTA_DEFAULT=alta_connection(sandbox.url, TOKEN),
        ALTA_TEST_NOTIFIER_RECORDS=str(tmp_path / "records.sqlite3"),
    )
    output = result.stdout + result.stderr
    assert "disk full" in output, output[-3000:]  # the task did fail
    return output


def test_one_call_for_a_failure_after_a_retry_with_both_callbacks(airflow_home, sandbox, tmp_path):
    output = dags_test(airflow_home, sandbox, "alta_test_notifier_both_levels", tmp_path)
    (call,) = sandbox.calls()
    data = call["body"]["data"]
    assert data["dag"] == "alta_test_notifier_both_levels"
    assert data["task"] == "boom"
    assert data["run"].startswith("manual__")
    assert data["try"] == "2"  # the failure after the retry; the retry called nobody
    assert call["body"]["name"] == "Grace"
    assert "dag callback" in output  # the DAG-level one ran too
    assert "2025550188" not in output


def test_the_helper_at_dag_level_sends_the_default_data(airflow_home, sandbox, tmp_path):
    output = dags_test(airflow_home, sandbox, "alta_test_notifier_dag_level", tmp_path)
    (call,) = sandbox.calls()
    data = call["body"]["data"]
    assert data["dag_id"] == "alta_test_notifier_dag_level"
    assert data["reason"] == "task_failure"
    assert data["run_id"].startswith("manual__")
    assert "2025550188" not in output


def test_outside_calling_hours_a_failing_dag_calls_nobody(airflow_home, sandbox, tmp_path):
    output = dags_test(airflow_home, sandbox, "alta_test_notifier_closed", tmp_path)
    assert sandbox.calls() == []
    assert "Not calling +1202***0188" in output
    assert "outside calling hours" in output


def test_an_on_call_person_who_opted_out_is_not_called(sandbox, tmp_path, monkeypatch, caplog, capsys):
    from airflow_provider_alta.ledger import ContactLedger

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    extra = {"account": "acme", "contact_ledger": url}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_connection(sandbox.url, TOKEN, **extra))
    notify(notifier(tmp_path), task_failure(try_number=1))  # the ledger allows repeated on-call calls
    with ContactLedger(url, "acme") as ledger:
        ledger.opt_out([ON_CALL], source="on-call rota")
    notify(notifier(tmp_path), task_failure(try_number=2))
    assert len(sandbox.calls()) == 1
    assert "+1202***0188 opted out of calls" in logged(caplog, capsys)
