from __future__ import annotations

import json
from importlib.metadata import entry_points, version
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_alta import __version__
from airflow_provider_alta.config import EXTRA_FIELDS
from airflow_provider_alta.get_provider_info import get_provider_info


def test_valid_against_the_installed_airflow_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_required_keys():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-alta"
    assert info["versions"] == [__version__]
    for key in ("name", "description", "integrations", "hooks", "operators", "connection-types"):
        assert info[key]


def test_connection_type_entry():
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == "alta"
    assert conn["hook-class-name"] == "airflow_provider_alta.hooks.alta.AltaHook"
    assert conn["hook-name"] == "Alta"
    assert set(conn["conn-fields"]) == {
        "timeout",
        "default_region",
        "calls_per_minute",
        "rate_limiter_url",
        "account",
        "contact_ledger",
        "contact_ledger_secret",
        "contact_policy",
    }


def test_conn_fields_are_the_connection_form_table():
    (conn,) = get_provider_info()["connection-types"]
    fields = conn["conn-fields"]
    assert list(fields) == [f.name for f in EXTRA_FIELDS]
    for f in EXTRA_FIELDS:
        assert (fields[f.name]["label"], fields[f.name]["description"]) == (f.label, f.description)
        assert fields[f.name]["schema"]["type"] == [f.type, "null"]
        assert fields[f.name]["schema"].get("default") == f.default


def test_every_listed_module_imports_and_the_batch_operator_is_listed():
    import importlib

    info = get_provider_info()
    modules = [
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for e in info[kind]
        for m in e["python-modules"]
    ]
    assert "airflow_provider_alta.operators.batch" in modules
    assert "airflow_provider_alta.sensors.alta" in modules
    for module in modules:
        importlib.import_module(module)
    batch = importlib.import_module("airflow_provider_alta.operators.batch")
    assert batch.BatchTriggerAssistantCallsOperator.__module__ == "airflow_provider_alta.operators.batch"


def test_entry_point_resolves_to_get_provider_info():
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_alta")
    ]
    assert ep.load() is get_provider_info


def test_installed_distribution_version_is_the_package_version():
    assert version("airflow-provider-alta") == __version__
