from __future__ import annotations

import pytest

from airflow_provider_alta.config import (
    DEFAULT_BASE_URL,
    is_loopback,
    parse_calls_per_minute,
    parse_timeout,
    resolve_base_url,
    settings_from_fields,
)
from airflow_provider_alta.exceptions import AltaConfigurationError


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        (None, None, None, DEFAULT_BASE_URL),
        ("", None, None, DEFAULT_BASE_URL),
        ("https://api.altahq.com/v1", None, None, "https://api.altahq.com/v1"),
        ("https://api.altahq.com/v1/", None, None, "https://api.altahq.com/v1"),
        ("https://proxy.example.com:8443/alta/v1", None, None, "https://proxy.example.com:8443/alta/v1"),
        ("api.altahq.com", None, None, "https://api.altahq.com/v1"),
        ("http://127.0.0.1:8080/v1", None, None, "http://127.0.0.1:8080/v1"),
        ("http://localhost:9/v1", None, None, "http://localhost:9/v1"),
        ("http://[::1]:9/v1", None, None, "http://[::1]:9/v1"),
        ("127.0.0.1", 8080, "v1", "http://127.0.0.1:8080/v1"),
        ("https://alta.internal", 8443, None, "https://alta.internal:8443/v1"),
    ],
)
def test_resolve_base_url(host, port, schema, expected):
    assert resolve_base_url(host, port, schema) == expected


@pytest.mark.parametrize(
    "host", ["http://api.altahq.com/v1", "http://10.0.0.5:8080/v1", "http://example.com"]
)
def test_plain_http_is_refused_except_loopback(host):
    with pytest.raises(AltaConfigurationError, match="refusing plain http"):
        resolve_base_url(host)


def test_other_schemes_are_refused():
    with pytest.raises(AltaConfigurationError, match="http"):
        resolve_base_url("ftp://api.altahq.com")


def test_loopback_detection():
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.10")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("api.altahq.com")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (5.0, 30.0)),
        ("", (5.0, 30.0)),
        (10, (10.0, 10.0)),
        ("12.5", (12.5, 12.5)),
        ([3, 20], (3.0, 20.0)),
        ("3,20", (3.0, 20.0)),
        ("[3, 20]", (3.0, 20.0)),
        ({"connect": 2}, (2.0, 30.0)),
    ],
)
def test_parse_timeout(value, expected):
    assert parse_timeout(value) == expected


@pytest.mark.parametrize("value", ["soon", [1, 2, 3], 0, -1, True, {"read": "x"}])
def test_bad_timeouts(value):
    with pytest.raises(AltaConfigurationError, match="timeout"):
        parse_timeout(value)


def test_calls_per_minute():
    assert parse_calls_per_minute(None) == 100
    assert parse_calls_per_minute("60") == 60
    for bad in (0, -5, "fast", 1.5, True):
        with pytest.raises(AltaConfigurationError, match="calls_per_minute"):
            parse_calls_per_minute(bad)


def test_settings_from_fields_reads_plain_and_prefixed_extras():
    s = settings_from_fields(
        host="http://127.0.0.1:1/v1",
        password="s3cr3t-value",
        extra={"timeout": 7, "extra__alta__default_region": "gb", "calls_per_minute": 50},
    )
    assert (s.base_url, s.token, s.timeout, s.default_region, s.calls_per_minute) == (
        "http://127.0.0.1:1/v1",
        "s3cr3t-value",
        (7.0, 7.0),
        "GB",
        50,
    )
    assert s.calls_url == "http://127.0.0.1:1/v1/assistant/calls"
    assert "s3cr3t" not in repr(s)


def test_settings_need_a_token_and_a_known_region():
    with pytest.raises(AltaConfigurationError, match="no API token"):
        settings_from_fields(host=None, password="")
    with pytest.raises(AltaConfigurationError, match="default_region"):
        settings_from_fields(host=None, password="t", extra={"default_region": "Narnia"})
