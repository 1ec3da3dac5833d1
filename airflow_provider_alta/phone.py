"""Phone number normalisation to E.164 with ``phonenumbers`` (imported lazily: it is heavy)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache


class PhoneNumberError(ValueError):
    """A phone number cannot be normalised. The message names the rule, never the number."""


def validate_region(region: str | None) -> str | None:
    """Return the upper-cased ISO 3166-1 alpha-2 region, or raise ``PhoneNumberError``."""
    if region is None or region == "":
        return None
    import phonenumbers

    code = str(region).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise PhoneNumberError(f"unknown region {region!r}: use an ISO 3166-1 alpha-2 code such as 'US'")
    return code


def normalize_phone(value: str, default_region: str | None = None, *, allow_extension: bool = False) -> str:
    """Return ``value`` in E.164 form, using ``default_region`` for numbers without a country code.

    A call dials only the number, so a number with an extension (``ext. 12``, ``x12``, ``#12``,
    ``;ext=12``...) is refused, and so is one with letters, which ``phonenumbers`` would drop or turn
    into digits (``p12``, ``wait``, ``1-800-FLOWERS``). ``allow_extension=True`` returns the number
    without its extension instead (for matching, never for dialling).
    """
    return _normalize(value.strip(), validate_region(default_region), allow_extension)


@lru_cache(maxsize=4096)
def _normalize(value: str, region: str | None, allow_extension: bool) -> str:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise PhoneNumberError(
                "has no country code: write it in E.164 (+<country><number>) or set default_region"
            ) from None
        raise PhoneNumberError("is not a phone number") from None
    if parsed.extension and not allow_extension:
        raise PhoneNumberError(
            "must not have an extension (ext., x, #, ;ext=...): a call cannot dial one, give the number alone"
        )
    if not parsed.extension and _has_letters(value):
        raise PhoneNumberError(
            "must be written in digits: letters are not dialled as written "
            "(a vanity number such as 1-800-FLOWERS, or a pause such as p or w)"
        )
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneNumberError("is not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _has_letters(value: str) -> bool:
    """True if ``value`` has a letter outside a leading RFC 3966 ``tel:``."""
    if value[:4].lower() == "tel:":
        value = value[4:]
    return any(ch.isalpha() for ch in value)


def candidate_timezones(e164: str) -> tuple[str, ...]:
    """IANA zones that ``phonenumbers`` associates with an E.164 number (may be empty)."""
    import phonenumbers
    from phonenumbers import timezone

    zones = timezone.time_zones_for_number(phonenumbers.parse(e164))
    return tuple(z for z in zones if z != timezone.UNKNOWN_TIMEZONE)


def load_metadata(regions: Iterable[str] = ()) -> None:
    """Import ``phonenumbers`` and its timezone data now, and load the number metadata of ``regions``.

    For a process whose forks run call tasks (see :func:`airflow_provider_alta.preload`): what is
    loaded here is inherited instead of loaded again by each task. Raises ``PhoneNumberError`` for
    an unknown region.
    """
    import phonenumbers
    from phonenumbers import timezone  # noqa: F401  (the zones of numbers given without a timezone)

    for region in regions:
        code = validate_region(region)
        if code is not None:
            phonenumbers.PhoneMetadata.metadata_for_region(code)
