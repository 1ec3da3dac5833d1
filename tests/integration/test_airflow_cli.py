"""The provider as a real Airflow sees it: the CLI and the providers manager."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def airflow(*args: str, home: Path) -> str:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=300).stdout


def test_airflow_providers_hooks_lists_alta(tmp_path):
    out = airflow("providers", "hooks", "--output", "plain", home=tmp_path)
    (line,) = [line for line in out.splitlines() if line.split() and line.split()[0] == "alta"]
    assert "airflow_provider_alta.hooks.alta.AltaHook" in line
    assert "alta_conn_id" in line


def test_airflow_providers_list_shows_the_package(tmp_path):
    out = airflow("providers", "list", "--output", "plain", home=tmp_path)
    assert "airflow-provider-alta" in out


def test_providers_manager_knows_the_connection_form():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert pm.hooks["alta"].hook_class_name == "airflow_provider_alta.hooks.alta.AltaHook"
    behaviour = pm.field_behaviours["alta"]
    assert behaviour["hidden_fields"] == ["login", "port", "schema"]
    assert behaviour["relabeling"]["password"] == "API token"
