"""Client settings read from an Alta connection's fields. Pure Python: no Airflow import."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_alta.exceptions import AltaConfigurationError
from airflow_provider_alta.phone import PhoneNumberError, validate_region

DEFAULT_BASE_URL = "https://api.altahq.com/v1"
DEFAULT_TIMEOUT = (5.0, 30.0)
DEFAULT_CALLS_PER_MINUTE = 100
CALLS_PATH = "/assistant/calls"
EXTRA_FIELDS = ("timeout", "default_region", "calls_per_minute", "rate_limiter_url")


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """Build the API base URL from a connection's host (a bare host or a full URL), port and schema.

    An empty host means Alta's production URL. A bare host gets ``https`` (``http`` when it is a
    loopback address), the port if given, and the path from ``schema`` or ``/v1``. Plain ``http``
    is refused unless the host is loopback.
    """
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        bare = urlsplit(f"//{host}")
        scheme = "http" if is_loopback(bare.hostname or "") else "https"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AltaConfigurationError(f"Alta host must be an http(s) URL or a host name, got {host!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise AltaConfigurationError(
            f"refusing plain http to {parts.hostname!r}: the API token would travel unencrypted. "
            "Use https (plain http is allowed only for loopback hosts such as the sandbox)."
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{int(port)}"
    path = parts.path.rstrip("/") or "/" + (schema or "v1").strip("/")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


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


@dataclass(frozen=True)
class AltaSettings:
    """Everything the client needs to talk to Alta."""

    base_url: str
    token: str
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    default_region: str | None = None
    calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE
    rate_limiter_url: str | None = None  # Redis URL of a limiter shared by every process on this token

    @property
    def calls_url(self) -> str:
        return self.base_url + CALLS_PATH

    def __repr__(self) -> str:
        return f"AltaSettings(base_url={self.base_url!r}, token='***', timeout={self.timeout!r})"


def settings_from_fields(
    *,
    host: str | None,
    password: str | None,
    port: int | None = None,
    schema: str | None = None,
    extra: Mapping[str, Any] | None = None,
    conn_type: str = "alta",
) -> AltaSettings:
    """Read settings from connection fields; extras may be plain or ``extra__alta__``-prefixed."""
    extra = extra or {}

    def field(name: str) -> Any:
        return extra.get(name, extra.get(f"extra__{conn_type}__{name}"))

    if not password:
        raise AltaConfigurationError("the Alta connection has no API token: put it in the password field")
    try:
        region = validate_region(field("default_region"))
    except PhoneNumberError as exc:
        raise AltaConfigurationError(f"default_region: {exc}") from None
    return AltaSettings(
        base_url=resolve_base_url(host, port, schema),
        token=password,
        timeout=parse_timeout(field("timeout")),
        default_region=region,
        calls_per_minute=parse_calls_per_minute(field("calls_per_minute")),
        rate_limiter_url=field("rate_limiter_url") or None,
    )
