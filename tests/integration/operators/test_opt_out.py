"""AltaOptOutOperator over a real SQLite contact ledger: in a task's context, and in a real DAG run."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_alta.ledger import OPTED_OUT, Blocked, ContactLedger
from airflow_provider_alta.operators.opt_out import AltaOptOutOperator
from alta_testing.environment import CONN_ENV, alta_connection
from alta_testing.servers.airflow_env import AirflowEnv

pytestmark = pytest.mark.integration

TOKEN = "sandbox-opt-out-token"
ACCOUNT = "acme"
ANN, BOB, CID = "+12025550143", "+12025550144", "+442079460123"
NEVER_CONTACTED = "http://127.0.0.1:9"  # the operator talks to the ledger only, never to Alta


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    conn = alta_connection(NEVER_CONTACTED, TOKEN, account=ACCOUNT, contact_ledger=url)
    monkeypatch.setenv(CONN_ENV, conn)
    return url


def ledger(url: str) -> ContactLedger:
    """The ledger as the connection's tasks see it (same URL and account)."""
    return ContactLedger(url, ACCOUNT)


def run(context, **kwargs):
    return AltaOptOutOperator(task_id="opt_out", **kwargs).execute(context(None))


def test_adds_opt_outs_logs_invalid_entries_by_index_and_returns_counts_only(
    ledger_url, context, caplog, capsys
):
    caplog.set_level(logging.INFO)
    numbers = ["(202) 555-0143", "+1 202 555 0144 ext. 9", "call me maybe", ANN, "+44 20 7946 0123"]
    counts = run(context, numbers=numbers, default_region="US", source="crm-export")
    assert counts == {"added": 3, "already": 1, "invalid": 1}
    logs = caplog.text + capsys.readouterr().out  # Airflow 3 logs tasks through structlog to stdout
    assert "entry 2: is not a phone number" in logs
    assert "2025550143" not in logs
    assert "79460123" not in logs
    with ledger(ledger_url) as opened:
        assert all(opened.is_opted_out(n) for n in (ANN, BOB, CID))
        assert opened.reserve(ANN, "10/1d", by="campaign") == Blocked(OPTED_OUT, opened.person_key(ANN), None)
    again = run(context, numbers=[ANN, BOB], source="crm-export")
    assert again == {"added": 0, "already": 2, "invalid": 0}


def test_rows_with_a_phone_column_and_removal(ledger_url, context):
    rows = [{"mobile": ANN, "name": "Ann"}, {"mobile": BOB}, {"name": "no number"}]
    assert run(context, numbers=rows, phone_column="mobile") == {"added": 2, "already": 0, "invalid": 1}
    removed = run(context, numbers=[ANN, CID, "12"], action="remove", default_region="US")
    assert removed == {"removed": 1, "already": 1, "invalid": 1}
    with ledger(ledger_url) as opened:
        assert not opened.is_opted_out(ANN)
        assert opened.is_opted_out(BOB)


def test_a_crm_csv_export(ledger_url, context):
    export = "Name,Mobile,Plan\nAnn,(202) 555-0143,pro\nBob,,free\nCid,+44 20 7946 0123,pro\n"
    counts = run(context, numbers=export.encode(), phone_column="Mobile", default_region="US")
    assert counts == {"added": 2, "already": 0, "invalid": 1}
    with pytest.raises(AirflowFailException, match="no 'phone' column"):
        run(context, numbers=export, phone_column="phone")


def test_fails_only_when_every_entry_is_invalid(ledger_url, context):
    with pytest.raises(AirflowFailException, match="None of the 2 entries") as error:
        run(context, numbers=["+1 202 555 01", 12025550143])
    assert "555 01" not in str(error.value)
    assert run(context, numbers=[]) == {"added": 0, "already": 0, "invalid": 0}


def test_without_a_ledger_the_task_fails_naming_the_extra(context, monkeypatch):
    monkeypatch.setenv(CONN_ENV, alta_connection(NEVER_CONTACTED, TOKEN))
    with pytest.raises(AirflowFailException, match="no 'contact_ledger' extra"):
        run(context, numbers=[ANN])


def test_action_is_checked_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="add, remove"):
        AltaOptOutOperator(task_id="opt_out", numbers=[ANN], action="delete")


def test_rendered_fields_show_a_count_and_the_task_uses_the_numbers(ledger_url):
    from airflow.providers.common.compat.sdk import DAG

    with DAG("opt_out_render", schedule=None) as dag:
        op = AltaOptOutOperator(
            task_id="opt_out",
            numbers="Mobile\n{{ params.phone }}\n",
            phone_column="Mobile",
            source="crm {{ params.source }}",
            params={"phone": ANN, "source": "export"},
        )
        listed = AltaOptOutOperator(task_id="listed", numbers=["{{ params.phone }}"])
    context = {"params": {"phone": ANN, "source": "export"}, "dag": dag}
    op.render_template_fields(context)
    listed.render_template_fields(context)
    shown = json.dumps({field: getattr(op, field) for field in op.template_fields}, default=str)
    assert "2025550143" not in shown
    assert op.numbers == "<CSV text, 2 lines>"
    assert op.source == "crm export"
    assert op.execute({}) == {"added": 1, "already": 0, "invalid": 0}
    # a list is data: its strings are not rendered as Jinja
    with pytest.raises(AirflowFailException, match="entry 0: is not a phone number"):
        listed.execute({})


def test_a_real_dag_run_keeps_only_counts_and_masked_fields(airflow_env: AirflowEnv, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    conn = alta_connection(NEVER_CONTACTED, TOKEN, account=ACCOUNT, contact_ledger=url)
    export = "Name,Mobile\nAnn,(202) 555-0143\nBob,+1 202 555 0144\nNobody,n/a\n"
    conf = {"csv": export, "remove": [BOB]}
    result = airflow_env.airflow(
        "dags",
        "test",
        "alta_test_opt_out",
        "-c",
        json.dumps(conf),
        check=False,
        AIRFLOW_CONN_ALTA_DEFAULT=conn,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    db = sqlite3.connect(airflow_env.home / "airflow.db")
    where = "dag_id = 'alta_test_opt_out' AND task_id IN ('opt_out', 'opt_back_in')"
    xcoms = {
        task: json.loads(value)
        for task, value in db.execute(f"SELECT task_id, value FROM xcom WHERE {where}")
    }
    assert xcoms == {
        "opt_out": {"added": 2, "already": 0, "invalid": 1},
        "opt_back_in": {"removed": 1, "already": 0, "invalid": 0},
    }
    rendered = " ".join(
        str(row)
        for row in db.execute(f"SELECT rendered_fields FROM rendered_task_instance_fields WHERE {where}")
    )
    assert "<CSV text, 4 lines>" in rendered
    assert "crm-export" in rendered
    assert "2025550143" not in rendered
    assert "555 0144" not in rendered
    assert "5550144" not in rendered
    with ledger(url) as opened:
        assert opened.is_opted_out(ANN)
        assert not opened.is_opted_out(BOB)
