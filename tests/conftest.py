"""Test session set-up: a throwaway AIRFLOW_HOME so no test touches a real Airflow installation."""

from __future__ import annotations

import os
import tempfile

if "AIRFLOW_HOME" not in os.environ or os.environ.get("ALTA_TESTS_KEEP_AIRFLOW_HOME") != "1":
    _home = tempfile.mkdtemp(prefix="alta-tests-airflow-home-")
    os.environ["AIRFLOW_HOME"] = _home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(_home, "dags"))
    import atexit
    import shutil

    atexit.register(shutil.rmtree, _home, ignore_errors=True)
