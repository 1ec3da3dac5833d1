from __future__ import annotations

import pytest

from airflow_provider_alta.phone import (
    PhoneNumberError,
    candidate_timezones,
    load_metadata,
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


@pytest.mark.parametrize(
    "raw",
    [
        "+1 202-555-0143 ext. 12",
        "+1 202-555-0143 ext 12",
        "+1 202-555-0143 EXT 12",
        "+1 202-555-0143 extension 12",
        "+1 202-555-0143 x12",
        "+1 202 555 0143 x 12",
        "+1 202-555-0143 #12",
        "+1 202-555-0143,12",
        "+12025550143;ext=12",
        "+12025550143;12",
        "tel:+1-202-555-0143;ext=12",
        "+1 (202) 555-0143 доб. 12",
        "+1 202 555 0143 anexo 12",
        "+1 202 555 0143 int 12",
        "+1 202 555 0143 \uff5e12",  # a fullwidth tilde
        "+1 202-555-0143 ext. 0",
        "(202) 555-0143 ext. 12",
    ],
)
def test_a_number_with_an_extension_is_refused(raw):
    with pytest.raises(PhoneNumberError, match="must not have an extension") as info:
        normalize_phone(raw, "US")
    assert "2025550143" not in str(info.value)
    assert "555" not in str(info.value)


def test_an_extension_can_be_dropped_for_matching_only():
    assert normalize_phone("+1 202-555-0143 ext. 12", allow_extension=True) == "+12025550143"
    assert normalize_phone("+12025550143", allow_extension=True) == "+12025550143"


@pytest.mark.parametrize(
    "raw",
    [
        "+49 30 1234567 p12",  # a dialling pause: phonenumbers would dial +4930123456712
        "+49 30 123456 w1",
        "+49 30 1234567 wait",  # read as the keypad digits 9248
        "+1 800 FLOWERS",
        "+1 202-555-0143 ext.",  # an extension marker with no extension
        "+1 202 555 0143 x",
    ],
)
def test_letters_are_refused_rather_than_dropped_or_turned_into_digits(raw):
    with pytest.raises(PhoneNumberError, match="must be written in digits"):
        normalize_phone(raw, "US")


def test_a_tel_uri_is_still_accepted():
    assert normalize_phone("tel:+1-202-555-0143") == "+12025550143"
    assert normalize_phone("TEL:+12025550143") == "+12025550143"


def test_load_metadata_refuses_an_unknown_region():
    with pytest.raises(PhoneNumberError, match="unknown region"):
        load_metadata(["XX"])
