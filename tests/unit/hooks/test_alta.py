from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from airflow_provider_alta.exceptions import AltaConfigurationError, AltaValidationError
from airflow_provider_alta.hooks.alta import AltaHook

TOKEN = "tok_unit_8f2a9c"


def test_airflow_idioms():
    assert AltaHook.conn_name_attr == "alta_conn_id"
    assert AltaHook.default_conn_name == "alta_default"
    assert AltaHook.conn_type == "alta"
    assert AltaHook.hook_name == "Alta"
    assert AltaHook().alta_conn_id == "alta_default"


def test_connection_from_uri_env_var(monkeypatch):
    host = quote("http://127.0.0.1:8080/v1", safe="")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        f"alta://:{TOKEN}@{host}?timeout=3%2C20&default_region=GB&calls_per_minute=50",
    )
    s = AltaHook().settings
    assert (s.base_url, s.token, s.timeout, s.default_region, s.calls_per_minute) == (
        "http://127.0.0.1:8080/v1",
        TOKEN,
        (3.0, 20.0),
        "GB",
        50,
    )


def test_connection_from_json_env_var(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_JSON",
        json.dumps({"conn_type": "alta", "password": TOKEN, "extra": {"timeout": [2, 9]}}),
    )
    s = AltaHook("alta_json").settings
    assert (s.base_url, s.timeout, s.calls_per_minute) == ("https://api.altahq.com/v1", (2.0, 9.0), 100)


def test_plain_http_to_a_remote_host_is_refused(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        json.dumps({"conn_type": "alta", "password": TOKEN, "host": "http://api.altahq.com"}),
    )
    with pytest.raises(AltaConfigurationError, match="refusing plain http"):
        _ = AltaHook().settings


def test_token_is_registered_with_the_secrets_masker(monkeypatch):
    from airflow.providers.common.compat.sdk import redact

    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps({"conn_type": "alta", "password": TOKEN}))
    _ = AltaHook().settings
    assert TOKEN not in str(redact(f"header Bearer {TOKEN}"))


def test_build_call_uses_the_connection_region(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT",
        json.dumps({"conn_type": "alta", "password": TOKEN, "extra": {"default_region": "US"}}),
    )
    hook = AltaHook()
    fields = {"assistant_id": "a", "name": "N", "phone_number": "(202) 555-0143"}
    assert hook.build_call(fields).phone_number == "+12025550143"
    assert hook.build_call({**fields, "phone_number": "020 7946 0123"}, default_region="GB").phone_number == (
        "+442079460123"
    )
    with pytest.raises(AltaValidationError, match="phone_number"):
        hook.build_call({**fields, "phone_number": "555"})


def test_ui_field_behaviour_matches_provider_info():
    from airflow_provider_alta.get_provider_info import get_provider_info

    (conn,) = get_provider_info()["connection-types"]
    declared = conn["ui-field-behaviour"]
    legacy = AltaHook.get_ui_field_behaviour()
    assert legacy["hidden_fields"] == declared["hidden-fields"] == ["login", "port", "schema"]
    assert legacy["relabeling"] == declared["relabeling"]
    assert legacy["relabeling"]["password"] == "API token"
    assert set(declared["placeholders"]) <= set(legacy["placeholders"])
