from __future__ import annotations

import pytest

from airflow_provider_alta.phone import (
    PhoneNumberError,
    candidate_timezones,
    normalize_phone,
    validate_region,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(202) 555-0143", "US", "+12025550143"),
        ("202.555.0143", "us", "+12025550143"),
        ("+1 202 555 0143", None, "+12025550143"),
        ("+44 20 7946 0123", "US", "+442079460123"),
        ("020 7946 0123", "GB", "+442079460123"),
        (" +12025550143 ", None, "+12025550143"),
    ],
)
def test_normalise_to_e164(raw, region, expected):
    assert normalize_phone(raw, region) == expected


def test_missing_country_code_without_region():
    with pytest.raises(PhoneNumberError, match="country code"):
        normalize_phone("(202) 555-0143")


def test_invalid_number():
    with pytest.raises(PhoneNumberError, match="not a valid phone number"):
        normalize_phone("+1 202 555 01")


def test_region_codes():
    assert validate_region("gb") == "GB"
    assert validate_region(None) is None
    with pytest.raises(PhoneNumberError, match="ISO 3166"):
        validate_region("Germany")


def test_candidate_timezones():
    assert candidate_timezones("+12025550143") == ("America/New_York",)
    assert candidate_timezones("+442079460123") == ("Europe/London",)
