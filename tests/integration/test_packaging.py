"""The published artefacts: a wheel and an sdist built for real, then installed and imported."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib

import airflow_provider_alta

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path.name for path in (REPO / "example_dags").glob("example_*.py"))


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    assert uv, "scripts/test puts the pinned uv on PATH"
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", "--quiet", "--build-constraint", "constraints/build.txt", "-o", str(out)],
        cwd=REPO,
        check=True,
    )
    return out


def only(folder: Path, pattern: str) -> Path:
    [path] = folder.glob(pattern)
    return path


def test_the_wheel_carries_the_license_and_the_metadata_of_a_provider(dist: Path) -> None:
    version = airflow_provider_alta.__version__
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        names = wheel.namelist()
        info = f"airflow_provider_alta-{version}.dist-info"
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        license_text = wheel.read(f"{info}/licenses/LICENSE").decode()
    assert license_text == (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text
    assert "Version 2.0" in license_text
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    classifiers = metadata.get_all("Classifier")
    python_versions = {
        c.rsplit(" :: ", 1)[1] for c in classifiers if c.count(" :: ") == 2 and "Python :: 3." in c
    }
    assert python_versions == {"3.11"}  # exactly the Python scripts/lib.sh tests on
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert {"Homepage", "Source", "Changelog", "Issues"} <= set(urls)
    assert "[apache_airflow_provider]" in entry_points
    assert not any(name.startswith(("tests/", "benchmarks/", "scripts/", "alta_testing/")) for name in names)


def test_the_wheel_ships_the_example_dags_and_their_data(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        names = set(wheel.namelist())
    for example in EXAMPLES:
        assert f"airflow_provider_alta/example_dags/{example}" in names
    assert "airflow_provider_alta/example_dags/__init__.py" in names
    assert "airflow_provider_alta/example_dags/data/sample_leads.csv" in names


def test_the_sdist_carries_the_license_the_changelog_the_docs_and_the_constraints(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "CONTRIBUTING.md", "README.md", "pyproject.toml"} <= names
    assert {f"docs/images/{image.name}" for image in (REPO / "docs" / "images").glob("*.png")} <= names
    assert {f"constraints/{path.name}" for path in (REPO / "constraints").glob("*.txt")} <= names
    assert {f"example_dags/{example}" for example in EXAMPLES} <= names


def test_the_installed_wheel_imports_its_examples_with_their_data(dist: Path, tmp_path: Path) -> None:
    """Installed with no repository around it, every example DAG imports and finds its data."""
    target = tmp_path / "site"
    subprocess.run(
        [
            shutil.which("uv") or "uv",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(only(dist, "*.whl")),
        ],
        check=True,
    )
    code = (
        "import importlib, pathlib, sys\n"
        "import airflow_provider_alta\n"
        "assert pathlib.Path(airflow_provider_alta.__file__).parent.parent == pathlib.Path(sys.argv[1])\n"
        "from airflow_provider_alta.example_dags import example_alta_bulk_campaign as bulk\n"
        "assert bulk.LEADS_CSV.is_file(), bulk.LEADS_CSV\n"
        "for name in sys.argv[2:]:\n"
        "    module = importlib.import_module('airflow_provider_alta.example_dags.' + name[:-3])\n"
        "    print(name, module.__file__.startswith(sys.argv[1]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(target), *EXAMPLES],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [word for example in EXAMPLES for word in (example, "True")]


def test_development_tools_are_not_part_of_any_extra() -> None:
    """Installing the package (with or without [redis]) never pulls test or lint tools."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    tools = ("pytest", "ruff", "mypy", "playwright", "schemathesis", "hypothesis", "celery")
    for requirements in extras.values():
        assert not [req for req in requirements if req.startswith(tools)]
    assert set(project["dependency-groups"]) >= {"test", "lint", "dev"}
