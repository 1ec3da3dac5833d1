"""A real Airflow in a throwaway home, driven through its CLI (``alta_testing.servers.airflow_env``)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class AirflowEnv:
    """A real Airflow installation in a throwaway home: SQLite, the example DAGs, the alta_api pool."""

    home: Path
    dags: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "ALTA_EXAMPLE_DATA_DIR": str(self.home / "data"),
            **extra,
        }

    def airflow(self, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(Path(sys.executable).with_name("airflow")), *args]
        result = subprocess.run(cmd, env=self.env(**extra), capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result
