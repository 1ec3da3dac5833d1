from __future__ import annotations

from airflow_provider_alta.masking import mask_email, mask_phone, mask_text


def test_mask_phone_keeps_prefix_and_last_four():
    assert mask_phone("+12025550143") == "+1202***0143"
    assert mask_phone("+442079460123") == "+4420***0123"
    assert mask_phone("12345") == "***45"
    assert mask_phone("12") == "***"
    assert mask_phone(None) == "***"


def test_mask_email():
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_email("nonsense") == "***"


def test_mask_text_masks_numbers_and_emails_inside_messages():
    text = "call +1 202-555-0143 or ada@example.com about +442079460123, id 42"
    masked = mask_text(text)
    assert "555-0143" not in masked
    assert "7946" not in masked
    assert "ada@" not in masked
    assert "a***@example.com" in masked
    assert masked.endswith("id 42")
