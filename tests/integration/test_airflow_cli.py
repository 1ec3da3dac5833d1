"""The provider as a real Airflow sees it: the CLI and the providers manager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def airflow(*args: str, home: Path, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **extra}
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    return subprocess.run(cmd, env=env, check=check, capture_output=True, text=True, timeout=300)


def test_airflow_providers_hooks_lists_alta(tmp_path):
    out = airflow("providers", "hooks", "--output", "plain", home=tmp_path).stdout
    (line,) = [line for line in out.splitlines() if line.split() and line.split()[0] == "alta"]
    assert "airflow_provider_alta.hooks.alta.AltaHook" in line
    assert "alta_conn_id" in line


def test_airflow_providers_list_shows_the_package(tmp_path):
    out = airflow("providers", "list", "--output", "plain", home=tmp_path).stdout
    assert "airflow-provider-alta" in out


def test_providers_manager_knows_the_connection_form():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert pm.hooks["alta"].hook_class_name == "airflow_provider_alta.hooks.alta.AltaHook"
    behaviour = pm.field_behaviours["alta"]
    assert behaviour["hidden_fields"] == ["login", "port", "schema"]
    assert behaviour["relabeling"]["password"] == "API token"


@pytest.mark.parametrize(
    ("token", "verdict"), [("cli-good-token", "Connection success!"), ("wrong-token", "Token rejected")]
)
def test_airflow_connections_test_checks_the_token_without_a_call(
    alta_sandbox_factory, tmp_path, token, verdict
):
    sandbox = alta_sandbox_factory(token="cli-good-token")
    conn = json.dumps({"conn_type": "alta", "password": token, "host": sandbox.url})
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "AIRFLOW_CONN_ALTA_DEFAULT": conn}
    result = airflow("connections", "test", "alta_default", home=tmp_path, check=False, **env)
    assert verdict in result.stdout
    assert sandbox.calls() == []
    assert token not in result.stdout + result.stderr
