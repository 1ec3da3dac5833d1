"""AltaHook with a real Airflow connection, over real loopback HTTP."""

from __future__ import annotations

import json
import logging
import uuid

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


# --- reading calls, and the account's one rate budget --------------------------------------------------

CALL_ID = "0b7c1f9e-2d3a-4c5b-8e6f-7a8b9c0d1e2f"


def test_get_call_and_aget_call_read_the_call_unmasked(httpserver: HTTPServer, hook: AltaHook):
    import asyncio

    the_call = {"id": CALL_ID, "objectType": "call", "to": "+12025550143", "callType": "outbound"}
    httpserver.expect_request(f"/v1/calls/{CALL_ID}", method="GET").respond_with_json(the_call)
    assert hook.get_call(CALL_ID) == the_call
    assert asyncio.run(hook.aget_call(CALL_ID)) == the_call
    assert [r.headers["Authorization"] for r, _ in httpserver.log] == [f"Bearer {TOKEN}"] * 2


def test_aget_call_raises_what_get_call_raises(httpserver: HTTPServer, hook: AltaHook):
    import asyncio

    from airflow_provider_alta.exceptions import AltaNotFoundError

    httpserver.expect_request(f"/v1/calls/{CALL_ID}").respond_with_json(
        {"error": "NotFound", "message": "Call not found"}, status=404
    )
    with pytest.raises(AltaNotFoundError, match="Call not found"):
        asyncio.run(hook.aget_call(CALL_ID))
    assert len(httpserver.log) == 1


def _account_connection(monkeypatch, conn_id: str, url: str, token: str, **extra) -> AltaHook:
    from alta_testing.environment import alta_connection

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", alta_connection(url, token, **extra))
    return AltaHook(conn_id)


def test_the_connection_test_passes_the_accounts_budget(alta_sandbox_factory, monkeypatch):
    """Another hook of the account spent the window: the test says so and sends nothing."""
    sandbox = alta_sandbox_factory(accounts={"acme": ["tok_hook_one", "tok_hook_two"]}, rate_limit="1/60")
    calling = _account_connection(monkeypatch, "alta_one", sandbox.url, "tok_hook_one", account="acme")
    testing = _account_connection(monkeypatch, "alta_two", sandbox.url, "tok_hook_two", account="Acme")
    calling.trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550143")
    ok, message = testing.test_connection()
    assert not ok
    assert "rate limit for this account is spent" in message
    assert sandbox.stats()["requests"] == 1


@pytest.fixture(scope="module")
def redis_url():
    from alta_testing.servers import redis_server

    server = redis_server.RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


def test_two_tokens_of_one_account_share_the_shared_limiter(alta_sandbox_factory, monkeypatch, redis_url):
    """Three permits a minute for the account: the fourth request waits, whichever token sends it."""
    from airflow_provider_alta.bulk import Stopper, StopRequested

    account = f"acme-{uuid.uuid4().hex[:8]}"
    sandbox = alta_sandbox_factory(accounts={account: ["tok_lim_one", "tok_lim_two"]}, rate_limit=None)
    options = {"account": account, "rate_limiter_url": redis_url, "calls_per_minute": 3}
    one = _account_connection(monkeypatch, "alta_lim_one", sandbox.url, "tok_lim_one", **options)
    two = _account_connection(monkeypatch, "alta_lim_two", sandbox.url, "tok_lim_two", **options)
    stopper = Stopper()
    one.sleep = two.sleep = stopper.sleep  # a wait of the limiter raises once a stop is requested
    one.trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550101")
    two.get_call(sandbox.calls()[0]["id"])
    assert two.test_connection()[0] is True
    stopper.request("the test: the window is full")
    with pytest.raises(StopRequested):
        one.trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550102")
    assert sandbox.stats()["requests"] == 3  # the fourth was held back by the account's limiter
    ok, message = _account_connection(
        monkeypatch,
        "alta_lim_other",
        sandbox.url,
        "tok_lim_one",
        rate_limiter_url=redis_url,
        calls_per_minute=3,
    ).test_connection()
    assert ok, message  # a connection without the account has a budget of its own
    one.close()
    two.close()


def test_an_unreachable_redis_is_a_rate_budget_error_and_nothing_is_sent(httpserver: HTTPServer, monkeypatch):
    from airflow_provider_alta.exceptions import AltaRateBudgetError
    from alta_testing.servers.ports import free_port

    hook = _account_connection(
        monkeypatch,
        "alta_no_redis",
        httpserver.url_for("/v1"),
        TOKEN,
        rate_limiter_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    with pytest.raises(AltaRateBudgetError, match="no call was sent"):
        hook.trigger_assistant_call(assistant_id="a", name="B", phone_number="+12025550143")
    ok, message = hook.test_connection()
    assert not ok
    assert "Redis" in message
    assert httpserver.log == []
