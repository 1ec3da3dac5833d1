"""The fault suite command passes: no duplicates and no unaccounted records in any row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).parents[2] / "scripts" / "fault_suite.py"


def test_fault_suite_rows_are_all_ok(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", "80"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith(("OK", "FAIL"))]
    assert len(rows) == 8
    assert all(line.rstrip().endswith("OK") for line in rows)
    assert "restarted scheduler" in result.stdout
