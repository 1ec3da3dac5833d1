"""The process environment of suites, scripts and benchmarks. Nothing here imports Airflow at import time.

Call :func:`prepare_airflow_home` before anything imports Airflow, so that nothing touches a real
Airflow installation.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout
CONN_ENV = "AIRFLOW_CONN_ALTA_DEFAULT"


def prepare_airflow_home() -> str:
    """Point ``AIRFLOW_HOME`` at a throwaway directory (removed at exit). Call before importing Airflow."""
    if "airflow" in sys.modules:
        raise RuntimeError("prepare_airflow_home() must run before Airflow is imported")
    home = tempfile.mkdtemp(prefix="alta-bench-airflow-home-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(home, "dags")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def alta_connection(url: str, token: str, **extra: object) -> str:
    """``alta_default`` as the JSON of an ``AIRFLOW_CONN_`` variable, pointing at the sandbox ``url``."""
    conn: dict[str, object] = {"conn_type": "alta", "password": token, "host": url}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def child_env() -> dict[str, str]:
    """This process's environment, with the checkout first on ``PYTHONPATH``."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def environment_line() -> str:
    """Python, CPUs and Airflow version, for the first line of a report."""
    import airflow

    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Airflow {airflow.__version__}"
