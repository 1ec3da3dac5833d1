"""The fault suite command passes: no duplicates and no unaccounted records in any row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).parents[2] / "scripts" / "fault_suite.py"


@pytest.mark.timeout(900)
def test_fault_suite_rows_are_all_ok(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", "80"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith(("OK", "FAIL"))]
    assert all(line.rstrip().endswith("OK") for line in rows)
    scheduler = next(line for line in result.stdout.splitlines() if line.startswith("restarted scheduler"))
    names = {line.split("  ")[0] for line in rows}
    assert {"zero waits", "interim answers", "trickled answers", "huge answers"} <= names
    if AIRFLOW_V_3_3_PLUS:  # the row runs a real deployment and kills its scheduler mid-batch
        assert len(rows) == 13
        assert scheduler in rows
    else:
        assert len(rows) == 12
        assert "not run: needs Airflow 3.3+" in scheduler
