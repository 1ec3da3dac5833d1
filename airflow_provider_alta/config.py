"""Client settings read from an Alta connection's fields, and the connection form. Pure Python: no Airflow.

The base URL grammar is :mod:`airflow_provider_alta.base_url` (re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from urllib3.util import parse_url

from airflow_provider_alta.base_url import DEFAULT_BASE_URL, is_loopback, resolve_base_url
from airflow_provider_alta.exceptions import AltaConfigurationError, AltaValidationError, FieldError
from airflow_provider_alta.phone import PhoneNumberError, validate_region

DEFAULT_TIMEOUT = (5.0, 30.0)
DEFAULT_CALLS_PER_MINUTE = 100
CALLS_PATH = "/assistant/calls"
CALL_PATH = "/calls/"  # + the call's id: GET /v1/calls/{callId}
MAX_ACCOUNT_LENGTH = 64
MAX_CALL_ID_LENGTH = 200

__all__ = [
    "DEFAULT_BASE_URL",
    "EXTRA_FIELDS",
    "AltaSettings",
    "ExtraField",
    "is_loopback",
    "parse_account",
    "parse_calls_per_minute",
    "parse_contact_policy_field",
    "parse_timeout",
    "quote_call_id",
    "resolve_base_url",
    "settings_from_fields",
]


@dataclass(frozen=True)
class ExtraField:
    """One extra field of the ``alta`` connection form; the hook and the provider info are built from it."""

    name: str
    label: str
    description: str
    type: Literal["string", "integer"]
    schema: Mapping[str, Any] = field(default_factory=dict)  # JSON-schema keywords beyond type and default
    default: Any = None


# The connection form, declared once: ``get_provider_info`` (Airflow 3.2+) and ``AltaHook`` (older
# Airflow) are generated from these, and ``settings_from_fields`` reads the extras by these names.
EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "timeout",
        "Timeout (s)",
        "Seconds (30) or connect,read seconds (5,30). Default 5,30.",
        "string",
    ),
    ExtraField(
        "default_region",
        "Default region",
        "ISO country code for numbers written without +country, e.g. US.",
        "string",
        {"pattern": "^[A-Za-z]{2}$"},
    ),
    ExtraField(
        "calls_per_minute",
        "Calls per minute",
        f"Alta's rate limit for this account. Default {DEFAULT_CALLS_PER_MINUTE}.",
        "integer",
        {"minimum": 1},
        default=DEFAULT_CALLS_PER_MINUTE,
    ),
    ExtraField(
        "rate_limiter_url",
        "Shared rate limiter (Redis URL)",
        "Optional. Every process on this account shares one limit, e.g. redis://host:6379/0.",
        "string",
    ),
    ExtraField(
        "account",
        "Alta account",
        "Optional. The Alta account this token belongs to: connections naming the same account share "
        "one rate budget. Without it, every connection to the same Alta host without an account "
        "shares one budget.",
        "string",
        {"maxLength": MAX_ACCOUNT_LENGTH},
    ),
    ExtraField(
        "contact_ledger",
        "Contact ledger (SQLAlchemy URL)",
        "Optional. The database of whom this account called and who opted out, shared by every "
        "task on the account, e.g. postgresql+psycopg2://user:pass@host/db or sqlite:////path/ledger.db.",
        "string",
        {"format": "password"},
    ),
    ExtraField(
        "contact_ledger_secret",
        "Contact ledger secret",
        "Optional. A secret mixed into the ledger's hashes of phone numbers (keep it stable).",
        "string",
        {"format": "password"},
    ),
    ExtraField(
        "contact_policy",
        "Contact policy",
        'Optional. How often one person may be called, for every task on this connection, e.g. "1/7d" '
        'or "3/24h". Needs a contact ledger.',
        "string",
    ),
)
#: Extras that hold secrets: a password widget in the form, never shown or logged unmasked.
SENSITIVE_EXTRAS = frozenset(f.name for f in EXTRA_FIELDS if f.schema.get("format") == "password")
HIDDEN_FIELDS = ("login", "port", "schema")
RELABELING = {"password": "API token", "host": "Base URL"}
PLACEHOLDERS = {
    "host": f"{DEFAULT_BASE_URL} (leave empty for production)",
    "password": "Alta API token from the Alta dashboard",
    "extra": '{"timeout": [5, 30], "default_region": "US", "calls_per_minute": 100, "account": "acme"}',
}


def parse_timeout(value: Any) -> tuple[float, float]:
    """Accept seconds (both), ``[connect, read]``, ``"5,30"`` or ``{"connect": .., "read": ..}``."""
    if isinstance(value, str):
        value = value.strip().strip("[]()")
        value = [v for v in value.split(",")] if "," in value else value
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    try:
        if isinstance(value, Mapping):
            pair = (
                float(value.get("connect", DEFAULT_TIMEOUT[0])),
                float(value.get("read", DEFAULT_TIMEOUT[1])),
            )
        elif isinstance(value, list | tuple) and len(value) == 2:
            pair = (float(value[0]), float(value[1]))
        elif isinstance(value, bool):
            raise TypeError
        else:
            pair = (float(value), float(value))
    except (TypeError, ValueError):
        raise AltaConfigurationError(
            f"timeout must be seconds, [connect, read] or {{'connect': s, 'read': s}}, got {value!r}"
        ) from None
    if min(pair) <= 0:
        raise AltaConfigurationError(f"timeout must be positive, got {value!r}")
    return pair


def parse_calls_per_minute(value: Any) -> int:
    """A positive whole number of calls per minute (default 100)."""
    if value is None or value == "":
        return DEFAULT_CALLS_PER_MINUTE
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        rate = int(float(value))
    except (TypeError, ValueError):
        raise AltaConfigurationError(f"calls_per_minute must be a whole number, got {value!r}") from None
    if rate <= 0:
        raise AltaConfigurationError(f"calls_per_minute must be positive, got {value!r}")
    return rate


def parse_account(value: Any) -> str | None:
    """The account's name: a short printable name (1 to 64 characters), or ``None`` when not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AltaConfigurationError(f"account must be a name, got {type(value).__name__}")
    name = str(value).strip()
    if len(name) > MAX_ACCOUNT_LENGTH or not name.isprintable():
        raise AltaConfigurationError(
            f"account must be a short printable name (1 to {MAX_ACCOUNT_LENGTH} characters, no "
            "control characters)"
        )
    return name


def parse_contact_policy_field(value: Any, field_name: str = "contact_policy") -> str | None:
    """A contact policy (``"1/7d"``) without spaces, ``None`` when not given; errors name the field."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    from airflow_provider_alta.contact_policy import ContactPolicy

    try:
        ContactPolicy.parse(value)
    except ValueError as exc:
        raise AltaConfigurationError(f"{field_name}: {exc}") from None
    return "".join(value.split()) if isinstance(value, str) else str(value)


def mask_url_password(url: str) -> str:
    """A database URL with the password (``scheme://user:PASSWORD@host``) shown as ``***``."""
    return re.sub(r"(://[^/@:]*:).*@", r"\1***@", url)


def parse_ledger_url(value: Any) -> str | None:
    """The ``contact_ledger`` URL, or ``None``; errors show it with its password masked."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or "://" not in value:  # not echoed: it may hold a password
        raise AltaConfigurationError(
            "contact_ledger must be a SQLAlchemy URL such as postgresql+psycopg2://user:***@host/db "
            f"or sqlite:////path/ledger.db, got a {type(value).__name__} that is none"
        )
    return value.strip()


def quote_call_id(call_id: Any) -> str:
    """``call_id`` percent-quoted as one path segment; refused (nothing sent) unless a usable id.

    An id is a non-empty string of at most 200 printable characters, and not ``.`` or ``..``.
    """
    problem = None
    if not isinstance(call_id, str) or not call_id:
        problem = "must be a non-empty string"
    elif len(call_id) > MAX_CALL_ID_LENGTH:
        problem = f"must be at most {MAX_CALL_ID_LENGTH} characters"
    elif not call_id.isprintable():
        problem = "must not contain control characters"
    elif call_id.strip(".") == "" and len(call_id) <= 2:
        problem = "must not be . or .."
    if problem is not None:
        raise AltaValidationError(f"call_id: {problem}", errors=[FieldError("call_id", problem)])
    return quote(call_id, safe="")


@dataclass(frozen=True)
class AltaSettings:
    """Everything the client needs to talk to Alta.

    ``account`` names the Alta account the token belongs to. Alta's rate limit is per account,
    shared by all its tokens, so the rate budget belongs to (Alta's host, account): see
    :attr:`budget_key`. Without an account, every connection to the same Alta host without one
    shares one budget: never over the limit when they are one account, slower when they are not.
    """

    base_url: str
    token: str
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    default_region: str | None = None
    calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE
    rate_limiter_url: str | None = None  # Redis URL of a limiter shared by every process on this account
    account: str | None = None
    contact_ledger: str | None = None  # SQLAlchemy URL of the contact ledger (may hold a password)
    contact_ledger_secret: str | None = None  # HMAC pepper of the ledger's person hashes
    contact_policy: str | None = None  # the connection's default contact policy, e.g. "1/7d"

    @property
    def calls_url(self) -> str:
        return self.base_url + CALLS_PATH

    def call_url(self, call_id: str) -> str:
        """The URL of one call (``GET``): the base URL + ``/calls/`` + the quoted id."""
        return self.base_url + CALL_PATH + quote_call_id(call_id)

    @property
    def budget_key(self) -> str:
        """The name of this connection's rate budget: ``host:port``, then `` account=NAME`` if named.

        The account is compared case- and space-insensitively, so ``Acme`` and `` acme`` share.
        """
        parsed = parse_url(self.base_url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host = f"{(parsed.host or '').lower()}:{port}"
        if self.account is None:
            return host
        return f"{host} account={' '.join(self.account.split()).casefold()}"

    @property
    def ledger_account(self) -> str:
        """The account the contact ledger keys people by: the ``account`` extra (compared as in
        :attr:`budget_key`), else Alta's ``host:port``. Renaming the account starts a new history."""
        if self.account is not None:
            return " ".join(self.account.split()).casefold()
        return self.budget_key

    def __repr__(self) -> str:
        ledger = None if self.contact_ledger is None else mask_url_password(self.contact_ledger)
        return (
            f"AltaSettings(base_url={self.base_url!r}, token='***', timeout={self.timeout!r}, "
            f"account={self.account!r}, contact_ledger={ledger!r}, contact_policy={self.contact_policy!r})"
        )


def settings_from_fields(
    *,
    host: str | None,
    password: str | None,
    port: int | None = None,
    schema: str | None = None,
    extra: Mapping[str, Any] | None = None,
    conn_type: str = "alta",
) -> AltaSettings:
    """Read settings from connection fields; extras may be plain or ``extra__alta__``-prefixed.

    Only the extras named in :data:`EXTRA_FIELDS` are read (a name missing there is a ``KeyError``).
    """
    extra = extra or {}
    given = {f.name: extra.get(f.name, extra.get(f"extra__{conn_type}__{f.name}")) for f in EXTRA_FIELDS}
    if not password:
        raise AltaConfigurationError("the Alta connection has no API token: put it in the password field")
    try:
        region = validate_region(given["default_region"])
    except PhoneNumberError as exc:
        raise AltaConfigurationError(f"default_region: {exc}") from None
    return AltaSettings(
        base_url=resolve_base_url(host, port, schema),
        token=password,
        timeout=parse_timeout(given["timeout"]),
        default_region=region,
        calls_per_minute=parse_calls_per_minute(given["calls_per_minute"]),
        rate_limiter_url=given["rate_limiter_url"] or None,
        account=parse_account(given["account"]),
        contact_ledger=parse_ledger_url(given["contact_ledger"]),
        contact_ledger_secret=given["contact_ledger_secret"] or None,
        contact_policy=parse_contact_policy_field(given["contact_policy"]),
    )
