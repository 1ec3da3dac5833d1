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


def test_the_whole_ui_field_behaviour_is_the_provider_infos():
    from airflow_provider_alta.get_provider_info import get_provider_info

    (conn,) = get_provider_info()["connection-types"]
    declared = conn["ui-field-behaviour"]
    assert AltaHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


def test_airflow_2_form_widgets_match_the_provider_info_field_by_field():
    pytest.importorskip("wtforms", reason="Airflow 2's form; Airflow 3.2+ reads the provider info")
    from wtforms import IntegerField, PasswordField, StringField

    from airflow_provider_alta.config import EXTRA_FIELDS
    from airflow_provider_alta.get_provider_info import get_provider_info

    (conn,) = get_provider_info()["connection-types"]
    declared = conn["conn-fields"]
    widgets = AltaHook.get_connection_form_widgets()
    assert list(widgets) == list(declared) == [f.name for f in EXTRA_FIELDS]
    for name, widget in widgets.items():
        field = declared[name]
        assert str(widget.args[0]) == field["label"], name
        assert widget.kwargs["description"] == field["description"], name
        assert widget.kwargs["default"] == field["schema"].get("default"), name
        kind = IntegerField if "integer" in field["schema"]["type"] else StringField
        if field["schema"].get("format") == "password":  # sensitive in Airflow 3.2+'s form too
            kind = PasswordField
        assert widget.field_class is kind, name


# Secrets that JSON escapes: the text as sent does not contain them, their decoded values do.
ESCAPED_SECRETS = {
    "quote": 'sekr"et_Quote_7f3a',
    "backslash": "sekr\\et_Back_7f3a",
    "tab": "sekr\tet_Tab_7f3a",
    "newline": "sekr\net_Line_7f3a",
    "non-ascii": "sékrét_Ünï_7f3a",
    "astral": "sekr\U0001f642et_Emoji_7f3a",
    "control": "sekr\x01et_Ctl_7f3a",
}


def _body(payload) -> str:
    return json.dumps(payload, separators=(",", ":"))  # as AltaClient sends it


@pytest.fixture(scope="module")
def registered():
    from airflow.providers.common.compat.sdk import mask_secret

    for secret in (*ESCAPED_SECRETS.values(), "plain_sekret_7f3a", "987654321012"):
        mask_secret(secret)
    return ESCAPED_SECRETS


@pytest.mark.parametrize("kind", list(ESCAPED_SECRETS))
@pytest.mark.parametrize(
    ("where", "place"),
    [
        ("name", lambda s: {"name": f"Ada {s}"}),
        ("data", lambda s: {"data": {"note": s}}),
        ("data", lambda s: {"data": {s: "a key"}}),
        ("data", lambda s: {"data": {"deep": [1, {"list": ["x", f"..{s}.."]}]}}),
        ("callTransfer", lambda s: {"callTransfer": {"phoneNumber": "+12025550199", "message": s}}),
    ],
)
def test_the_guard_finds_secrets_in_decoded_values(registered, kind, where, place):
    from airflow_provider_alta.hooks.alta import _refuse_secrets

    secret = registered[kind]
    body = _body({"assistantId": "a", "phoneNumber": "+12025550143", **place(secret)})
    assert secret not in body  # JSON escaped it: comparing the text alone would let it through
    with pytest.raises(AltaValidationError, match="refusing to send") as info:
        _refuse_secrets(body)
    assert [(e.field, e.rule) for e in info.value.errors] == [(where, "must not contain secrets")]
    assert secret not in str(info.value)
    assert secret not in repr(info.value.errors)


def test_the_guard_still_finds_secrets_in_the_text_and_in_numbers(registered):
    from airflow_provider_alta.hooks.alta import _refuse_secrets

    with pytest.raises(AltaValidationError, match="refusing to send"):
        _refuse_secrets(_body({"name": "plain_sekret_7f3a"}))
    with pytest.raises(AltaValidationError) as info:
        _refuse_secrets(_body({"name": "N", "data": {"pin": 987654321012}}))
    assert info.value.errors[0].field == "data"


def test_the_guard_lets_clean_payloads_through(registered):
    from airflow_provider_alta.hooks.alta import _refuse_secrets

    clean = {
        "assistantId": "a",
        "name": 'Ada "the Countess" Lovelace\t\\ é 🙂',
        "phoneNumber": "+12025550143",
        "data": {"password": "not-registered", "n": [1, 2.5, True, None, {"k": "v"}], "sekr": "et"},
    }
    _refuse_secrets(_body(clean))
    deep: dict = {}
    for _ in range(300):
        deep = {"d": [deep]}
    _refuse_secrets(json.dumps({"name": "N", "data": deep}))


# --- the account's rate budget and reading calls ----------------------------------------------------


def _connection(monkeypatch, conn_id: str = "alta_default", **extra) -> None:
    conn = {"conn_type": "alta", "password": TOKEN, "host": "https://api.altahq.com/v1", "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_the_account_extra_names_the_rate_budget(monkeypatch):
    _connection(monkeypatch, account="Acme")
    _connection(monkeypatch, "alta_other_token", account="acme")
    hook, other = AltaHook(), AltaHook("alta_other_token")
    assert hook.settings.account == "Acme"
    assert hook.settings.budget_key == "api.altahq.com:443 account=acme"
    assert hook.rate_budget is other.rate_budget  # one budget per account in this process


def test_a_bad_account_is_a_configuration_error(monkeypatch):
    _connection(monkeypatch, account="acme\nprod")
    with pytest.raises(AltaConfigurationError, match="account"):
        _ = AltaHook().settings


def test_without_a_redis_url_the_client_has_no_shared_limiter(monkeypatch):
    _connection(monkeypatch)
    hook = AltaHook()
    assert hook.client.gates == ()
    assert hook.client.budget is hook.rate_budget


@pytest.mark.parametrize("where", ["connection", "hook"])
def test_a_rate_limiter_url_that_is_not_redis_is_a_configuration_error(monkeypatch, where):
    if where == "connection":
        _connection(monkeypatch, rate_limiter_url="http://cache.internal:6379")
        hook = AltaHook()
    else:
        _connection(monkeypatch)
        hook = AltaHook(rate_limiter_url="memcached://cache.internal")
    with pytest.raises(AltaConfigurationError, match="rate_limiter_url"):
        _ = hook.client


def test_aget_call_is_a_coroutine_function_with_get_calls_signature():
    import inspect

    assert inspect.iscoroutinefunction(AltaHook.aget_call)
    assert list(inspect.signature(AltaHook.aget_call).parameters) == ["self", "call_id"]
    assert list(inspect.signature(AltaHook.get_call).parameters) == ["self", "call_id"]


def test_an_unusable_call_id_is_refused_before_any_request(monkeypatch):
    _connection(monkeypatch)
    with pytest.raises(AltaValidationError, match="call_id"):
        AltaHook().get_call("bad\nid")


def _ledger_connection(monkeypatch, **extra) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_DEFAULT", json.dumps({"conn_type": "alta", "password": TOKEN, "extra": extra})
    )


def test_no_contact_ledger_extra_means_no_ledger(monkeypatch):
    _ledger_connection(monkeypatch)
    assert AltaHook().contact_ledger() is None


def test_the_contact_ledger_is_opened_once_per_hook_for_the_account_and_closed(monkeypatch, tmp_path):
    _ledger_connection(
        monkeypatch,
        contact_ledger=f"sqlite:///{tmp_path / 'ledger.db'}",
        account="Acme",
        contact_policy="1/7d",
    )
    hook = AltaHook()
    ledger = hook.contact_ledger()
    assert ledger is not None
    assert ledger.account == "acme"
    assert hook.contact_ledger() is ledger
    assert (tmp_path / "ledger.db").exists()
    hook.close()
    reopened = hook.contact_ledger()
    assert reopened is not None
    assert reopened is not ledger
    hook.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://alta:L3dgerPw@db/alta", "unsupported database"),
        ("sqlite://", "SQLite needs a file path"),
        ("postgresql+nodriver://alta:L3dgerPw@db/alta", ""),
    ],
)
def test_an_unusable_contact_ledger_url_is_a_configuration_error_with_the_password_masked(
    monkeypatch, url, problem
):
    _ledger_connection(monkeypatch, contact_ledger=url)
    with pytest.raises(AltaConfigurationError, match=r"^contact_ledger \(") as raised:
        AltaHook().contact_ledger()
    assert problem in str(raised.value)
    assert "L3dgerPw" not in str(raised.value)


def test_an_unreachable_contact_ledger_is_retryable_and_masks_its_password(monkeypatch):
    import socket

    from airflow_provider_alta.contact_gate import ContactLedgerUnavailable

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _ledger_connection(monkeypatch, contact_ledger=f"postgresql+psycopg2://alta:L3dgerPw@127.0.0.1:{port}/db")
    with pytest.raises(ContactLedgerUnavailable, match=r"^contact_ledger \(postgresql") as raised:
        AltaHook().contact_ledger()
    assert "L3dgerPw" not in str(raised.value)
    assert raised.value.task_retry


def test_the_ledger_secrets_are_registered_with_the_secrets_masker(monkeypatch, tmp_path):
    from airflow.providers.common.compat.sdk import redact

    _ledger_connection(
        monkeypatch,
        contact_ledger="postgresql+psycopg2://alta:L3dgerPw-unit@db.internal/alta",
        contact_ledger_secret="pepper-unit-7f3a",
    )
    _ = AltaHook().settings
    assert "L3dgerPw-unit" not in str(redact("password L3dgerPw-unit"))
    assert "pepper-unit-7f3a" not in str(redact("secret pepper-unit-7f3a"))
