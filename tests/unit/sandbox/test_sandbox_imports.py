"""The sandbox is pure standard library, and its pytest plugin costs nothing to load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_alta
import airflow_provider_alta.sandbox as sandbox_package

ROOT = Path(airflow_provider_alta.__file__).resolve().parent.parent


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120
    )
    return set(json.loads(result.stdout))


def test_the_server_never_imports_airflow_or_third_party_packages() -> None:
    modules = _modules_after("import airflow_provider_alta.sandbox.__main__")
    roots = {name.split(".")[0] for name in modules}
    assert not roots & {"airflow", "yaml", "jsonschema", "pendulum", "requests", "phonenumbers", "pytest"}
    assert "airflow_provider_alta.sandbox.server" in modules


def test_the_pytest_plugin_imports_no_server_code() -> None:
    modules = _modules_after("import airflow_provider_alta.sandbox.pytest_plugin")
    assert "http.server" not in modules
    assert "airflow_provider_alta.sandbox.server" not in modules
    assert not any(name.split(".")[0] == "airflow" for name in modules)


def test_lazy_exports() -> None:
    for name in sandbox_package.__all__:
        assert getattr(sandbox_package, name) is not None
        assert name in dir(sandbox_package)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = sandbox_package.Nope
