"""SharedLimiter without Redis: arguments, limit and window derivation, key naming, optional imports."""

from __future__ import annotations

import hashlib
import inspect
import math
import sys

import pytest

from airflow_provider_alta.pacing import DEFAULT_MARGIN, Gate
from airflow_provider_alta.shared_limiter import (
    SharedLimiter,
    SharedLimiterError,
    SharedLimiterTimeout,
    SharedLimiterUnavailable,
    bucket_key,
    budget_bucket_key,
    derive_limit,
    enforced_window_ms,
    safe_url,
    token_fingerprint,
)

TOKEN = "sk_live_secret-token-value"
URL = "redis://127.0.0.1:1/0"


# --- limit and window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_minute", "window", "limit"),
    [
        (100, 60, 100),  # Alta: 100 per rolling minute
        (1000, 6, 100),  # time-compressed: 100 per 6 s
        (600, 2, 20),
        (100, 6, 10),
        (100, 0.6, 1),
        (99.5, 60, 99),  # rounded down: never above the configured rate
        (100, 59.99, 99),
        (0.1 * 3, 600, 3),  # float noise just under a whole number still counts it
    ],
)
def test_limit_is_the_rate_over_the_window_rounded_down(per_minute, window, limit):
    assert derive_limit(per_minute, window) == limit


def test_limit_below_one_call_per_window_is_refused():
    with pytest.raises(ValueError, match=r"allows no call in a 0\.5 s window"):
        derive_limit(100, 0.5)


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, True, "100", None])
def test_rate_and_window_must_be_positive_numbers(bad):
    with pytest.raises(ValueError, match="calls_per_minute must be a positive number"):
        derive_limit(bad, 60)
    with pytest.raises(ValueError, match="window_seconds must be a positive number"):
        derive_limit(100, bad)


def test_enforced_window_is_stretched_by_the_margin():
    assert DEFAULT_MARGIN == 0.01
    assert enforced_window_ms(60) == 60607  # 60 s / 0.99, rounded up
    assert enforced_window_ms(6) == 6061
    assert enforced_window_ms(60, margin=0) == 60000
    assert enforced_window_ms(2, margin=0.05) == 2106


@pytest.mark.parametrize("bad", [-0.01, 1, 1.5, math.nan, True])
def test_margin_must_be_in_zero_one(bad):
    with pytest.raises(ValueError, match="margin must be in"):
        enforced_window_ms(60, bad)


# --- keys -----------------------------------------------------------------------------------------


def test_key_is_the_token_fingerprint_never_the_token():
    expected = hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    assert token_fingerprint(TOKEN) == expected
    assert bucket_key(TOKEN) == f"alta:ratelimit:{expected}"
    assert bucket_key(TOKEN, "team-a") == f"team-a:{expected}"
    assert TOKEN not in bucket_key(TOKEN)
    assert bucket_key("other-token") != bucket_key(TOKEN)


def test_an_accounts_key_is_a_fingerprint_of_its_budget_key_apart_from_token_keys():
    from airflow_provider_alta.config import AltaSettings

    settings = AltaSettings(base_url="https://api.altahq.com/v1", token=TOKEN, account="Acme")
    key = budget_bucket_key(settings.budget_key)
    assert key == f"alta:ratelimit:budget:{token_fingerprint(settings.budget_key)}"
    assert TOKEN not in key
    assert "acme" not in key.lower()
    assert key != bucket_key(settings.budget_key)  # never the same Redis key as a token's window
    assert budget_bucket_key(settings.budget_key, "team-a").startswith("team-a:budget:")


def test_urls_in_messages_lose_their_credentials():
    assert safe_url("redis://user:pa55word@10.0.0.5:6380/2") == "redis://10.0.0.5:6380/2"
    assert safe_url("rediss://:pa55word@cache.internal/0") == "rediss://cache.internal/0"
    assert safe_url("redis://[::1]:6379/0") == "redis://[::1]:6379/0"


# --- argument checks happen before any connection ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calls_per_minute": 0}, "calls_per_minute must be a positive number"),
        ({"window_seconds": -6}, "window_seconds must be a positive number"),
        ({"calls_per_minute": 1, "window_seconds": 1}, "allows no call"),
        ({"margin": 1}, "margin must be in"),
        ({"timeout": -1}, "timeout must be None or"),
        ({"timeout": math.inf}, "timeout must be None or"),
        ({"token": ""}, "needs a budget_key or the API token"),
        ({"token": None}, "needs a budget_key or the API token"),
        ({"budget_key": ""}, "budget_key must be a non-empty string"),
        ({"redis_timeout": 0}, "redis_timeout must be a positive number"),
        ({"key_prefix": ""}, "key_prefix must not be empty"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(kwargs, message):
    arguments = {"token": TOKEN, "calls_per_minute": 100, **kwargs}
    with pytest.raises(ValueError, match=message) as caught:
        SharedLimiter(URL, **arguments)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("url", ["", "   ", "http://127.0.0.1:6379", "127.0.0.1:6379", "memcached://x"])
def test_only_redis_urls_are_accepted(url):
    with pytest.raises(ValueError, match=r"Redis URL|redis://"):
        SharedLimiter(url, token=TOKEN, calls_per_minute=100)


def test_a_bad_url_is_reported_without_its_password():
    with pytest.raises(ValueError, match=r"http://example\.invalid/0") as caught:
        SharedLimiter("http://user:pa55word@example.invalid/0", token=TOKEN, calls_per_minute=100)
    assert "pa55word" not in str(caught.value)


# --- errors, protocol and optional dependencies --------------------------------------------------


def test_error_types_can_be_caught_generically():
    assert issubclass(SharedLimiterTimeout, SharedLimiterError)
    assert issubclass(SharedLimiterTimeout, TimeoutError)
    assert issubclass(SharedLimiterUnavailable, SharedLimiterError)
    assert issubclass(SharedLimiterUnavailable, ConnectionError)


def test_it_has_the_gate_signature():
    gate_acquire = inspect.signature(Gate.acquire)
    mine = inspect.signature(SharedLimiter.acquire)
    assert list(mine.parameters) == list(gate_acquire.parameters) == ["self"]
    assert mine.return_annotation == gate_acquire.return_annotation == "float"


def test_a_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # makes ``import module`` fail
    with pytest.raises(ImportError, match=r"pip install 'airflow-provider-alta\[redis\]'"):
        SharedLimiter(URL, token=TOKEN, calls_per_minute=100)


def test_it_releases_like_a_gate():
    assert list(inspect.signature(SharedLimiter.release).parameters) == ["self"]
    assert list(inspect.signature(Gate.release).parameters) == ["self"]
