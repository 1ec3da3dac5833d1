"""The base URL of an Alta connection: a narrow, unambiguous URL grammar. Pure Python: no Airflow."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from airflow_provider_alta.exceptions import AltaConfigurationError

DEFAULT_BASE_URL = "https://api.altahq.com/v1"

# The base URL grammar is deliberately narrow: what it accepts, every URL parser reads the same way.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/\[\]]*")
_CHAR_RULES = {
    "\\": "must not contain a backslash",
    "@": "must not contain user info (user@host): put the API token in the password field",
    "%": "must not contain percent-encoding (%): write the characters themselves",
    "?": "must not contain a query (?...)",
    "#": "must not contain a fragment (#...)",
}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://(.*)")
_SCHEME_WITHOUT_SLASHES = re.compile(r"https?:(?!//)", re.IGNORECASE)
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")  # a name ending so is an IPv4 address to resolvers
_SEGMENT = re.compile(r"[A-Za-z0-9\-._~]+")


def _refuse(field: str, rule: str) -> AltaConfigurationError:
    return AltaConfigurationError(f"{field}: {rule}")


def is_loopback(hostname: str) -> bool:
    """True only for exactly ``localhost``, a 127.0.0.0/8 address in dotted decimal, or ``::1``.

    Names that go through DNS (``alta.localhost``, ``localhost.``) and IPv4-mapped IPv6 addresses
    do not count.
    """
    if hostname.lower() == "localhost":
        return True
    inner = hostname[1:-1] if hostname.startswith("[") and hostname.endswith("]") else hostname
    try:
        address = ipaddress.ip_address(inner)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return False
    return address.is_loopback


def resolve_base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """Build the API base URL from a connection's host (a bare host or a full URL), port and schema.

    An empty host means Alta's production URL. A bare host gets ``https`` (``http`` when it is a
    loopback address), the port if given, and the path from ``schema`` or ``/v1``. Plain ``http``
    is refused unless the host is loopback (exactly ``localhost``, 127.0.0.0/8 or ``[::1]``).

    Only an unambiguous URL is accepted: ASCII letters, digits and ``-._~:/[]``; no user info,
    query, fragment, percent-encoding, whitespace or backslash; a host name, a dotted-decimal
    IPv4 address or a bracketed IPv6 address; a port from 1 to 65535. The result is checked
    with urllib3's parser (the one ``requests`` connects with), so it is exactly where the
    token goes. Anything else raises :class:`AltaConfigurationError`, before any request.
    """
    text = (host or "").strip(" \t\r\n")
    if not text:
        return DEFAULT_BASE_URL
    _check_characters(text)
    scheme, rest = _split_scheme(text)
    authority, slash, tail = rest.partition("/")
    hostname, url_port = _host_and_port(authority)
    scheme = scheme or ("http" if is_loopback(hostname) else "https")
    if scheme == "http" and not is_loopback(hostname):
        raise _refuse(
            "host",
            f"refusing plain http to {hostname!r}: the API token would travel unencrypted. Use https "
            "(plain http is allowed only for localhost, 127.0.0.0/8 and [::1], such as the sandbox).",
        )
    final_port = _merge_port(url_port, port)
    path = _merge_path(slash + tail, schema)
    url = f"{scheme}://{hostname}{f':{final_port}' if final_port else ''}{path}"
    given = text if _SCHEME.fullmatch(text) else f"{scheme}://{text}"
    _check_with_urllib3(given, (scheme, hostname, url_port))
    _check_with_urllib3(url, (scheme, hostname, final_port, path, url))
    return url


def _check_characters(text: str) -> None:
    """Refuse anything outside the narrow URL alphabet, naming the first offending rule."""
    if _URL_CHARS.fullmatch(text):
        return
    if not text.isascii():
        raise _refuse("host", "must be ASCII: write an international domain name in its xn-- form")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise _refuse("host", "must not contain whitespace or control characters")
    for char, rule in _CHAR_RULES.items():
        if char in text:
            raise _refuse("host", rule)
    bad = next(ch for ch in text if not _URL_CHARS.fullmatch(ch))
    raise _refuse("host", f"must not contain {bad!r}: only letters, digits and - . _ ~ : / [ ] are allowed")


def _split_scheme(text: str) -> tuple[str | None, str]:
    """``(scheme, rest)`` of ``scheme://rest``, or ``(None, text)`` for a bare host."""
    match = _SCHEME.fullmatch(text)
    if match:
        scheme = match.group(1).lower()
        if scheme not in ("http", "https"):
            raise _refuse(
                "host", f"must be an https:// (or loopback http://) URL or a host name, not {scheme}://"
            )
        return scheme, match.group(2)
    if text.startswith("/"):
        raise _refuse("host", "must start with https:// or a host name, not /")
    if _SCHEME_WITHOUT_SLASHES.match(text):
        raise _refuse("host", "write the scheme with two slashes: https://host or http://host")
    return None, text


def _host_and_port(authority: str) -> tuple[str, int | None]:
    """The normalised host (IPv6 in brackets) and the port of ``host[:port]``."""
    if authority.startswith("["):
        inner, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise _refuse("host", "an IPv6 address must be closed with ]")
        hostname = _ipv6(inner.lower())
        if after and not after.startswith(":"):
            raise _refuse("host", "only :port may follow an IPv6 address in brackets")
        port_text = after[1:] if after else None
    else:
        if "[" in authority or "]" in authority:
            raise _refuse("host", "brackets may only enclose a whole IPv6 address, like [::1]")
        if authority.count(":") > 1:
            raise _refuse("host", "an IPv6 address must be in brackets, like http://[::1]:8080")
        name, colon, after = authority.partition(":")
        hostname = _hostname(name.lower())
        port_text = after if colon else None
    return hostname, None if port_text is None else _port(port_text)


def _ipv6(inner: str) -> str:
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise _refuse("host", "brackets must hold an IPv6 address, like [::1]") from None
    if address.ipv4_mapped is not None:
        raise _refuse("host", "write an IPv4-mapped IPv6 address as the IPv4 address itself")
    return f"[{inner}]"


def _hostname(name: str) -> str:
    if not name:
        raise _refuse("host", "has no host name")
    if name.endswith("."):
        raise _refuse("host", "must not end with a dot")
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise _refuse(
                "host",
                "an IPv4 address must be four decimal numbers from 0 to 255 without leading zeros, "
                "like 127.0.0.1 (short, octal and hex forms are refused)",
            ) from None
        return name
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse(
            "host", "is not a valid host name: labels of letters, digits, - and _ separated by single dots"
        )
    return name


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise _refuse("host", "the port must be a whole number from 1 to 65535")
    return int(text)


def _merge_port(url_port: int | None, port: Any) -> int | None:
    """The URL's port, or the connection's port field; both set and different is an error."""
    if port is None or port == "":
        return url_port
    text = str(port).strip()
    if isinstance(port, bool) or not _PORT.fullmatch(text) or int(text) > 65535:
        raise _refuse("port", "must be a whole number from 1 to 65535")
    number = int(text)
    if url_port is not None and url_port != number:
        raise _refuse("port", f"{number} conflicts with the port {url_port} in host")
    return number


def _merge_path(path: str, schema: str | None) -> str:
    """The URL's path without trailing slashes, or ``/`` + ``schema`` (default ``v1``)."""
    path = path.rstrip("/")
    given = "/" + (schema or "").strip("/")
    if path:
        _check_path(path, "host")
        if given != "/" and given != path:
            raise _refuse("schema", "conflicts with the path in host: set only one of them")
        return path
    path = given if given != "/" else "/v1"
    _check_path(path, "schema")
    return path


def _check_path(path: str, field: str) -> None:
    for segment in path[1:].split("/"):
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise _refuse(
                field,
                "each path segment must be letters, digits, - . _ or ~ (no empty, . or .. segments)",
            )


def _check_with_urllib3(url: str, expected: tuple[Any, ...]) -> None:
    """Refuse ``url`` unless urllib3 (which sends the request) reads it as ``expected``.

    ``expected`` is a prefix of (scheme, host, port, path, the URL urllib3 rebuilds); urllib3 must
    also find no user info, query or fragment.
    """
    try:
        parsed = parse_url(url)
    except LocationParseError:
        raise _refuse("host", "is not a URL that urllib3 can parse") from None
    reading = (parsed.scheme, parsed.host, parsed.port, parsed.path, parsed.url)
    extras = (parsed.auth, parsed.query, parsed.fragment)
    if reading[: len(expected)] != expected or extras != (None, None, None):
        raise _refuse("host", "is read differently by urllib3, which sends the request: write a plain URL")
