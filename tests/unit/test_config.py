from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from airflow_provider_alta.config import (
    DEFAULT_BASE_URL,
    EXTRA_FIELDS,
    is_loopback,
    parse_account,
    parse_calls_per_minute,
    parse_timeout,
    quote_call_id,
    resolve_base_url,
    settings_from_fields,
)
from airflow_provider_alta.exceptions import AltaConfigurationError, AltaValidationError


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
    assert is_loopback("[::1]")
    assert is_loopback("localhost")
    assert is_loopback("LOCALHOST")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("api.altahq.com")


@pytest.mark.parametrize(
    "name",
    [
        "evil.localhost",  # resolved through DNS, not necessarily to this machine
        "alta.localhost",
        "localhost.",
        "localhost.localdomain",
        "127.1",
        "0x7f.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "127.0.0.1.",
        "::ffff:127.0.0.1",
        "[::ffff:7f00:1]",
        "0.0.0.0",
        "",
    ],
)
def test_only_loopback_literals_and_localhost_are_loopback(name):
    assert not is_loopback(name)


# Every accepted base URL is normalised, and is exactly what requests and urllib3 will connect to.
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("HTTP://127.0.0.1", "http://127.0.0.1/v1"),  # scheme and host are case-insensitive
        ("HTTPS://API.ALTAHQ.COM/V1", "https://api.altahq.com/V1"),  # the path is not
        ("http://LOCALHOST:1", "http://localhost:1/v1"),
        ("http://[::1]:8080", "http://[::1]:8080/v1"),
        ("http://[0:0:0:0:0:0:0:1]:9/v1", "http://[0:0:0:0:0:0:0:1]:9/v1"),
        ("[::1]:9", "http://[::1]:9/v1"),
        ("localhost:8080", "http://localhost:8080/v1"),
        ("127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
        ("http://127.255.255.254/", "http://127.255.255.254/v1"),
        ("alta.localhost:8080", "https://alta.localhost:8080/v1"),  # not loopback, so https
        ("https://10.0.0.5:8443", "https://10.0.0.5:8443/v1"),
        ("https://[2001:db8::1]/v1", "https://[2001:db8::1]/v1"),
        ("https://api.altahq.com:443", "https://api.altahq.com:443/v1"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example/v1"),
        ("https://alta_gw.internal/a-b/c.d/~e", "https://alta_gw.internal/a-b/c.d/~e"),
        ("https://1e100.net", "https://1e100.net/v1"),
        ("  https://api.altahq.com/v1\n", "https://api.altahq.com/v1"),  # surrounding whitespace only
    ],
)
def test_accepted_base_urls_are_normalised_and_read_alike(host, expected):
    import requests
    from urllib3.util import parse_url

    url = resolve_base_url(host)
    assert url == expected
    calls_url = url + "/assistant/calls"
    assert requests.Request("POST", calls_url).prepare().url == calls_url
    parsed = parse_url(calls_url)
    assert (parsed.auth, parsed.query, parsed.fragment) == (None, None, None)
    assert parsed.url == calls_url


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        # urllib.parse and urllib3 disagree about where these go.
        ("http://example.com\\@127.0.0.1/v1", "backslash"),
        ("example.com\\@127.0.0.1", "backslash"),
        ("https://api.altahq.com\\v1", "backslash"),
        ("https://user@api.altahq.com", "user info"),
        ("https://user:tok_in_url_Zq9@api.altahq.com", "user info"),
        ("http://127.0.0.1:8080@example.com/", "user info"),
        ("http://127.0.0.1:80%40example.com/", "percent-encoding"),
        ("https://api.altahq%2Ecom/v1", "percent-encoding"),
        ("http://[fe80::1%25eth0]/", "percent-encoding"),
        ("https://api.altahq.com/v1?x=1", "query"),
        ("https://api.altahq.com/v1?", "query"),
        ("https://api.altahq.com/v1#frag", "fragment"),
        ("https://api.altahq.com/v1#", "fragment"),
        ("https://api.alta hq.com", "whitespace"),
        ("https://api.altahq.com/\tv1", "whitespace"),
        ("https://api.altahq.com\n/v1", "whitespace"),
        ("https://api.altahq.com\x00.evil", "control"),
        ("\x0bhttps://api.altahq.com", "control"),
        ("https://api.altahq.com\x7f", "control"),
        ("https://bücher.example", "ASCII"),
        ("http://127\u30020\u30020\u30021", "ASCII"),  # ideographic full stops
        ("https://api.altahq.com/v1;x", "';'"),
        ("https://api.altahq.com/{v1}", "'{'"),
        # Not a URL, or not one with an http(s) scheme.
        ("http:example.com", "two slashes"),
        ("https:/api.altahq.com", "two slashes"),
        ("HTTPS:api.altahq.com", "two slashes"),
        ("//api.altahq.com", "not /"),
        ("/v1", "not /"),
        ("ftp://api.altahq.com", "not ftp://"),
        ("http:///v1", "no host name"),
        ("https://:8443/v1", "no host name"),
        # Host names that resolve through DNS, or that resolvers read as something else.
        ("http://localhost.", "end with a dot"),
        ("https://api.altahq.com./v1", "end with a dot"),
        ("http://127.0.0.1./v1", "end with a dot"),
        ("http://127.1", "IPv4"),
        ("http://0x7f.0.0.1", "IPv4"),
        ("http://0x7f000001", "IPv4"),
        ("http://2130706433", "IPv4"),
        ("http://0177.0.0.1", "IPv4"),
        ("https://010.0.0.5", "IPv4"),
        ("https://1.2.3.256", "IPv4"),
        ("https://example.123", "IPv4"),
        ("https://a..b", "valid host name"),
        ("https://-a.example", "valid host name"),
        ("https://" + "a" * 64 + ".example", "valid host name"),
        ("http://::1/v1", "in brackets"),
        ("http://[::1", "closed with ]"),
        ("http://[::1]x/v1", "only :port"),
        ("http://[127.0.0.1]/v1", "IPv6 address"),
        ("https://[v1.fe80::a]", "IPv6 address"),
        ("http://a[::1]", "brackets"),
        ("http://[::ffff:127.0.0.1]/v1", "IPv4-mapped"),
        ("http://[::ffff:7f00:1]", "IPv4-mapped"),
        # Ports.
        ("http://127.0.0.1:", "port"),
        ("http://127.0.0.1:0", "port"),
        ("http://127.0.0.1:65536", "port"),
        ("http://127.0.0.1:abc", "port"),
        ("http://127.0.0.1:080", "port"),
        ("http://127.0.0.1:-1", "port"),
        ("http://127.0.0.1:+80", "'\\+'"),
        ("http://[::1]:", "port"),
        ("mailto:x", "port"),
        # Paths that are rewritten before sending.
        ("https://api.altahq.com/a/../v1", "path segment"),
        ("https://api.altahq.com/./v1", "path segment"),
        ("https://api.altahq.com//v1", "path segment"),
    ],
)
def test_ambiguous_or_invalid_base_urls_are_configuration_errors(host, rule):
    with pytest.raises(AltaConfigurationError, match=rule) as info:
        settings_from_fields(host=host, password="t")
    assert str(info.value).startswith("host: ")


@pytest.mark.parametrize(
    "host",
    [
        "http://evil.localhost/v1",
        "http://alta.localhost:8080",
        "http://0.0.0.0:8080",
        "HTTP://localhost.localdomain",
    ],
)
def test_plain_http_needs_a_loopback_literal_or_exactly_localhost(host):
    with pytest.raises(AltaConfigurationError, match="refusing plain http"):
        resolve_base_url(host)


def test_a_token_in_the_url_is_not_repeated_in_the_error():
    for host in (
        "https://:tok_in_url_Zq9@api.altahq.com",
        "http://tok_in_url_Zq9\\@127.0.0.1",
        "tok_in_url_Zq9:x",
    ):
        with pytest.raises(AltaConfigurationError) as info:
            resolve_base_url(host)
        assert "tok_in_url_Zq9" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("127.0.0.1", "8080", None, "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/v1", 8080, "v1", "http://127.0.0.1:8080/v1"),  # the same twice is fine
        ("http://127.0.0.1", 8080, "/alta/v2/", "http://127.0.0.1:8080/alta/v2"),
        ("http://127.0.0.1/v1", None, "/", "http://127.0.0.1/v1"),
    ],
)
def test_port_and_schema_fields(host, port, schema, expected):
    assert resolve_base_url(host, port, schema) == expected


@pytest.mark.parametrize(
    ("host", "port", "schema", "rule"),
    [
        ("127.0.0.1", 0, None, "port: must be a whole number from 1 to 65535"),
        ("127.0.0.1", 65536, None, "port: must be"),
        ("127.0.0.1", -1, None, "port: must be"),
        ("127.0.0.1", "80a", None, "port: must be"),
        ("127.0.0.1", True, None, "port: must be"),
        ("127.0.0.1", 8.5, None, "port: must be"),
        ("http://127.0.0.1:8080", 9090, None, "port: 9090 conflicts with the port 8080 in host"),
        ("http://127.0.0.1/v1", None, "v2", "schema: conflicts with the path in host"),
        ("127.0.0.1", None, "a/../v1", "schema: each path segment"),
        ("127.0.0.1", None, "v1?x=1", "schema: each path segment"),
        ("127.0.0.1", None, "a//b", "schema: each path segment"),
    ],
)
def test_bad_port_and_schema_fields(host, port, schema, rule):
    with pytest.raises(AltaConfigurationError, match=rule.replace("?", "\\?")):
        resolve_base_url(host, port, schema)


def test_a_url_urllib3_reads_differently_is_refused(monkeypatch):
    """The last word is urllib3's: should it ever read a URL otherwise, the URL is refused."""
    from urllib3.util import parse_url

    from airflow_provider_alta import base_url

    monkeypatch.setattr(base_url, "parse_url", lambda url: parse_url(url.replace("127.0.0.1", "127.0.0.2")))
    with pytest.raises(AltaConfigurationError, match="read differently by urllib3"):
        resolve_base_url("http://127.0.0.1:8080/v1")


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


class _RecordingExtra(Mapping):
    """An ``extra`` with one key that is no form field, recording every key read from it."""

    def __init__(self) -> None:
        self.data = {"note": "not a connection form field"}
        self.read: list[str] = []

    def __getitem__(self, key: str) -> object:
        self.read.append(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        self.read.append("<every key>")
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_settings_read_only_the_extras_of_the_connection_form():
    extra = _RecordingExtra()
    settings_from_fields(host=None, password="t", extra=extra)
    names = {f.name for f in EXTRA_FIELDS}
    assert set(extra.read) == names | {f"extra__alta__{name}" for name in names}


# --- the account, the rate budget's name, a call's URL --------------------------------------------


def test_the_account_is_a_form_field_with_its_own_description():
    (account,) = [f for f in EXTRA_FIELDS if f.name == "account"]
    assert account.type == "string"
    assert "share" in account.description  # says what naming an account does
    assert account.schema == {"maxLength": 64}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (" Acme Corp ", "Acme Corp"),
        ("équipe-7", "équipe-7"),
        (42, "42"),
    ],
)
def test_parse_account(value, expected):
    assert parse_account(value) == expected


@pytest.mark.parametrize(
    "bad", ["a" * 65, "acme\nprod", "acme\x00", "tab\there", True, 1.5, ["acme"], {"a": 1}]
)
def test_bad_accounts_are_refused(bad):
    with pytest.raises(AltaConfigurationError, match="account"):
        parse_account(bad)


def _settings(host: str = "https://api.altahq.com/v1", account: str | None = None, token: str = "t"):
    extra = {} if account is None else {"account": account}
    return settings_from_fields(host=host, password=token, extra=extra)


def test_the_budget_belongs_to_the_host_and_the_account_never_the_token():
    one = _settings(account="Acme", token="token-one")
    assert one.account == "Acme"
    assert one.budget_key == "api.altahq.com:443 account=acme"
    # two tokens of one account: one budget; the account is compared without case or extra spaces
    assert _settings(account="  ACME ", token="token-two").budget_key == one.budget_key
    assert _settings(host="https://api.altahq.com:443/v1", account="acme").budget_key == one.budget_key
    assert "token-one" not in one.budget_key
    assert _settings(account="Other").budget_key != one.budget_key
    assert _settings(host="https://eu.altahq.com/v1", account="Acme").budget_key != one.budget_key


def test_without_an_account_every_connection_to_one_host_shares_one_budget():
    first, second = _settings(token="a"), _settings(token="b", host="api.altahq.com")
    assert first.account is None
    assert first.budget_key == second.budget_key == "api.altahq.com:443"
    assert _settings(host="http://127.0.0.1:8080/v1").budget_key == "127.0.0.1:8080"
    assert _settings(host="http://127.0.0.1:8081/v1").budget_key == "127.0.0.1:8081"
    assert _settings(host="http://localhost/v1").budget_key == "localhost:80"


def test_an_account_shows_in_the_settings_repr_but_the_token_does_not():
    text = repr(_settings(account="acme", token="s3cr3t-token"))
    assert "account='acme'" in text
    assert "s3cr3t" not in text


@pytest.mark.parametrize(
    ("call_id", "path"),
    [
        ("0b7c1f9e-2d3a-4c5b-8e6f-7a8b9c0d1e2f", "0b7c1f9e-2d3a-4c5b-8e6f-7a8b9c0d1e2f"),
        ("a/b", "a%2Fb"),  # one path segment, never two
        ("../admin", "..%2Fadmin"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("x y", "x%20y"),
        ("é", "%C3%A9"),
        ("...", "..."),
        ("c" * 200, "c" * 200),
    ],
)
def test_a_calls_url_quotes_its_id_as_one_segment(call_id, path):
    assert _settings().call_url(call_id) == f"https://api.altahq.com/v1/calls/{path}"
    assert quote_call_id(call_id) == path


@pytest.mark.parametrize(
    ("call_id", "rule"),
    [
        ("", "non-empty"),
        (None, "non-empty"),
        (123, "non-empty"),
        ("c" * 201, "at most 200"),
        ("abc\n", "control characters"),
        ("a\x00b", "control characters"),
        ("a\u2028b", "control characters"),
        (".", r"\. or \.\."),
        ("..", r"\. or \.\."),
    ],
)
def test_an_unusable_call_id_is_refused_before_any_request(call_id, rule):
    with pytest.raises(AltaValidationError, match=rule) as info:
        _settings().call_url(call_id)
    assert [e.field for e in info.value.errors] == ["call_id"]


def test_the_contact_ledger_extras_are_read_and_their_secrets_never_shown():
    s = settings_from_fields(
        host=None,
        password="t",
        extra={
            "contact_ledger": "postgresql+psycopg2://alta:L3dgerPw@db.internal/alta",
            "contact_ledger_secret": "pepper-7f3a",
            "contact_policy": " 3 / 24h ",
        },
    )
    assert s.contact_ledger == "postgresql+psycopg2://alta:L3dgerPw@db.internal/alta"
    assert (s.contact_ledger_secret, s.contact_policy) == ("pepper-7f3a", "3/24h")
    text = repr(s)
    assert "L3dgerPw" not in text
    assert "pepper" not in text
    assert "postgresql+psycopg2://alta:***@db.internal/alta" in text
    bare = settings_from_fields(host=None, password="t")
    assert (bare.contact_ledger, bare.contact_ledger_secret, bare.contact_policy) == (None, None, None)


def test_the_ledger_extras_are_sensitive_form_fields():
    from airflow_provider_alta.config import EXTRA_FIELDS, SENSITIVE_EXTRAS

    assert {"contact_ledger", "contact_ledger_secret"} == SENSITIVE_EXTRAS
    by_name = {f.name: f for f in EXTRA_FIELDS}
    assert by_name["contact_ledger"].schema == {"format": "password"}
    assert "format" not in by_name["contact_policy"].schema


@pytest.mark.parametrize("bad", ["1/7", "often", "0/1d", "1/0h", 7])
def test_a_bad_contact_policy_names_the_field(bad):
    with pytest.raises(AltaConfigurationError, match=r"^contact_policy: "):
        settings_from_fields(host=None, password="t", extra={"contact_policy": bad})


@pytest.mark.parametrize("url", ["not a url", "alta:S3cret@nowhere", "postgresql//alta:S3cret@host/db", 5])
def test_a_contact_ledger_that_is_no_url_is_refused_without_echoing_it(url):
    with pytest.raises(AltaConfigurationError, match=r"^contact_ledger must be a SQLAlchemy URL") as raised:
        settings_from_fields(host=None, password="t", extra={"contact_ledger": url})
    assert "S3cret" not in str(raised.value)


def test_mask_url_password():
    from airflow_provider_alta.config import mask_url_password

    assert mask_url_password("postgresql://u:p@ss/w@rd@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url_password("postgresql://u@h/db") == "postgresql://u@h/db"
    assert mask_url_password("sqlite:////var/a@b.db") == "sqlite:////var/a@b.db"


def test_the_ledger_account_is_the_account_else_the_host():
    assert _settings(account=" Acme  Corp ").ledger_account == "acme corp"
    assert _settings(account=None, host="http://127.0.0.1:8080/v1").ledger_account == "127.0.0.1:8080"
