"""AltaHook with a real Airflow connection, over real loopback HTTP."""

from __future__ import annotations

import json
import logging

import pytest
from pytest_httpserver import HTTPServer

from airflow_provider_alta.exceptions import (
    AltaAuthenticationError,
    AltaConfigurationError,
    AltaValidationError,
)
from airflow_provider_alta.hooks.alta import AltaHook

pytestmark = pytest.mark.integration

TOKEN = "tok_hook_Q7w3_secret"
PATH = "/v1/assistant/calls"


@pytest.fixture
def hook(httpserver: HTTPServer, monkeypatch) -> AltaHook:
    conn = {
        "conn_type": "alta",
        "password": TOKEN,
        "host": httpserver.url_for("/v1"),
        "extra": {"default_region": "US"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    return AltaHook()


def test_trigger_assistant_call(httpserver: HTTPServer, hook: AltaHook):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_json({"id": "call_9"})
    result = hook.trigger_assistant_call(
        assistant_id="asst_1",
        name="Grace Hopper",
        phone_number="(202) 555-0143",
        email="grace@example.com",
        timezone="America/New_York",
        data={"source": "crm"},
        call_transfer={"phone_number": "+12025550199", "receiver_message_mode": "static"},
    )
    assert result == {"id": "call_9"}
    ((req, _),) = httpserver.log
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(req.get_data()) == {
        "assistantId": "asst_1",
        "name": "Grace Hopper",
        "phoneNumber": "+12025550143",
        "email": "grace@example.com",
        "timezone": "America/New_York",
        "data": {"source": "crm"},
        "callTransfer": {"phoneNumber": "+12025550199", "receiverMessageMode": "static"},
    }


def test_invalid_input_makes_no_request(httpserver: HTTPServer, hook: AltaHook):
    with pytest.raises(AltaValidationError) as info:
        hook.trigger_assistant_call(assistant_id="", name="X", phone_number="+1 202 555 01", email="x")
    assert {e.field for e in info.value.errors} == {"assistant_id", "phone_number", "email"}
    assert httpserver.log == []


def test_401_raises_authentication_error(httpserver: HTTPServer, hook: AltaHook):
    httpserver.expect_request(PATH).respond_with_json(
        {"error": "Unauthorized", "message": "Invalid API token"}, status=401
    )
    with pytest.raises(AltaAuthenticationError):
        hook.trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550143")
    assert len(httpserver.log) == 1


def test_test_connection(httpserver: HTTPServer, hook: AltaHook):
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": "ValidationError", "message": "Invalid request body"}, status=400
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": "Unauthorized", "message": "Invalid API token"}, status=401
    )
    assert hook.test_connection()[0] is True
    assert hook.test_connection()[0] is False
    assert [json.loads(r.get_data()) for r, _ in httpserver.log] == [{}, {}]


def test_test_connection_reports_an_unreachable_host(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DOWN",
        json.dumps({"conn_type": "alta", "password": TOKEN, "host": "http://127.0.0.1:9/v1"}),
    )
    ok, message = AltaHook("alta_down").test_connection()
    assert not ok
    assert "could not reach Alta" in message


def test_no_token_or_number_in_any_log(httpserver: HTTPServer, hook: AltaHook, caplog):
    caplog.set_level(logging.DEBUG)
    httpserver.expect_ordered_request(PATH).respond_with_json({"id": "1"})
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": "ValidationError", "message": "phoneNumber +12025550143 is blocked"}, status=400
    )
    hook.trigger_assistant_call(
        assistant_id="a", name="B", phone_number="+12025550143", email="b@example.com"
    )
    with pytest.raises(AltaValidationError) as info:
        hook.trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550143")
    text = caplog.text + str(info.value)
    assert "Alta call to +1202***0143: placed (200)" in caplog.text
    for secret in (TOKEN, "2025550143", "b@example.com"):
        assert secret not in text


@pytest.mark.parametrize(
    "secret", ['hook"quoted_Sec9', "hook\\slashed_Sec9", "hook\ttabbed_Sec9", "höök_ünïcode_Sec9"]
)
def test_a_secret_that_json_escapes_is_refused_before_sending(httpserver: HTTPServer, hook: AltaHook, secret):
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(secret)
    for fields in ({"name": f"Ada {secret}"}, {"name": "Ada", "data": {"note": secret}}):
        with pytest.raises(AltaValidationError, match="refusing to send") as info:
            hook.trigger_assistant_call(assistant_id="a", phone_number="+12025550143", **fields)
        assert secret not in str(info.value)
    assert httpserver.log == []


def test_a_number_with_an_extension_is_refused_before_sending(httpserver: HTTPServer, hook: AltaHook):
    with pytest.raises(AltaValidationError, match="phone_number: must not have an extension"):
        hook.trigger_assistant_call(assistant_id="a", name="B", phone_number="+1 202-555-0143 ext. 12")
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        # urllib.parse reads 127.0.0.1 here; urllib3 would connect to localhost:<port> with this path.
        ("http://localhost:{port}\\@127.0.0.1/v1", "backslash"),
        ("localhost:{port}\\@127.0.0.1", "backslash"),
        # Used to fail only when sent, reported as "the call may have been placed".
        ("http://localhost:{port}%40example.com/v1", "percent-encoding"),
        ("http://localhost:{port}/v1?x=1", "query"),
        ("http://localhost:{port}/v1#frag", "fragment"),
        ("http://localhost:{port}/v1/../v1", "path segment"),
    ],
)
def test_an_ambiguous_host_is_a_configuration_error_before_any_request(
    httpserver: HTTPServer, monkeypatch, host, rule
):
    conn = {"conn_type": "alta", "password": TOKEN, "host": host.format(port=httpserver.port)}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))
    with pytest.raises(AltaConfigurationError, match=rule):
        AltaHook().trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550143")
    ok, message = AltaHook().test_connection()
    assert not ok
    assert rule in message
    assert httpserver.log == []
